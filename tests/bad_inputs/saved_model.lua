-- Saves a tiny GPT-2 (with its tokenizer) into <tmp>/model and returns the
-- folder: the cases that corrupt model files start from it.
local dir = args.tmp .. "/model"
local ds <close> = lm.dataset("wikitext", {path = args.data})
local tok <close> = lm.tokenizer("bpe", {vocab_size = 300})
tok:train(ds, "validation")
local m <close> = lm.architecture("gpt2", {n_layer = 1, vocab_size = 300, n_embd = 16, n_head = 2, n_positions = 32,
                                          device = "cpu", threads = 1})
m:init(1)
m:save(dir, {tokenizer = tok})
return dir
