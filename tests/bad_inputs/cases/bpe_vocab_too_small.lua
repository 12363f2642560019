-- expect: vocab_size
local ds <close> = lm.dataset("wikitext", {path = args.data})
local tok <close> = lm.tokenizer("bpe", {vocab_size = 100})
tok:train(ds, "validation")
