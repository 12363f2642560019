-- expect: rows.jsonl:1
local f = assert(io.open(args.tmp .. "/rows.jsonl", "w")); f:write('{"body": "no text field"}\n'); f:close()
local ds <close> = lm.dataset("jsonl", {train = args.tmp .. "/rows.jsonl"})
ds:count("train")
