-- expect: truncated.json
local ds <close> = lm.dataset("wikitext", {path = args.data})
local tok <close> = lm.tokenizer("bpe", {vocab_size = 400})
tok:train(ds, "validation")
tok:save(args.tmp .. "/full.json")
local text = assert(io.open(args.tmp .. "/full.json")):read("a")
local f = assert(io.open(args.tmp .. "/truncated.json", "w")); f:write(text:sub(1, #text // 2)); f:close()
lm.tokenizer("bpe", {path = args.tmp .. "/truncated.json"})
