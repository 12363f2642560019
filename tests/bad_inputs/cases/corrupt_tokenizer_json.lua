-- expect: garbage.json:1
local f = assert(io.open(args.tmp .. "/garbage.json", "w")); f:write("{this is not json"); f:close()
lm.tokenizer("bpe", {path = args.tmp .. "/garbage.json"})
