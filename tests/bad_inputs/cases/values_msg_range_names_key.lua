-- expect: lmcore: error: lm.blocks: option 'block_size' must be an integer between 2 and 1048576, got 1
local ds <close> = lm.dataset("wikitext", {path = args.data})
local tok <close> = lm.tokenizer("bpe", {vocab_size = 300})
tok:train(ds, "validation")
lm.blocks(tok, ds, "validation", {block_size = 1})
