-- expect: post_processor BertProcessing cls: the id is not a token id (an integer from 0 to 2147483647)
-- a tokenizer.json whose [CLS] id wraps to a valid id in 32 bits
local ds <close> = lm.dataset("wikitext", {path = args.data})
local tok <close> = lm.tokenizer("wordpiece", {vocab_size = 500})
tok:train(ds, "validation")
tok:save(args.tmp .. "/tokenizer.json")
local f = assert(io.open(args.tmp .. "/tokenizer.json"))
local text = f:read("a")
f:close()
local post = {type = "BertProcessing", sep = {"[SEP]", 3}, cls = {"[CLS]", 4294967298}}
local decoded = lm.json_decode(text)
decoded.post_processor = post
f = assert(io.open(args.tmp .. "/bad.json", "w"))
f:write(lm.json_encode(decoded))
f:close()
lm.tokenizer("wordpiece", {path = args.tmp .. "/bad.json"})
