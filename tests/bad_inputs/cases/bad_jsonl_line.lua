-- expect: rows.jsonl:2
local f = assert(io.open(args.tmp .. "/rows.jsonl", "w")); f:write('{"text": "ok"}\n{"text": oops}\n'); f:close()
local ds <close> = lm.dataset("jsonl", {train = args.tmp .. "/rows.jsonl"})
ds:count("train")
