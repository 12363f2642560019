-- expect: vocab_size
local ds <close> = lm.dataset("wikitext", {path = args.data})
local tok <close> = lm.tokenizer("wordpiece", {vocab_size = 10})
tok:train(ds, "validation")
