-- expect: the tokenizer has 400 tokens but the model's vocab_size is 300: use the tokenizer.json saved with the model
-- absent: {tmp}/copy
local dir = dofile("tests/bad_inputs/saved_model.lua")
local ds <close> = lm.dataset("wikitext", {path = args.data})
local tok <close> = lm.tokenizer("bpe", {vocab_size = 400})
tok:train(ds, "validation")
local m <close> = lm.load_model(dir, {device = "cpu", tokenizer = tok})
m:save(args.tmp .. "/copy")
