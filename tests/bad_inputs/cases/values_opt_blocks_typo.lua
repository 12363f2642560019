-- expect: lm.blocks: unknown option 'block_sise' (known: block_size, group_lines, add_special, cache_dir): did you mean 'block_size'?
local ds <close> = lm.dataset("wikitext", {path = args.data})
local tok <close> = lm.tokenizer("bpe", {vocab_size = 300})
tok:train(ds, "validation")
lm.blocks(tok, ds, "validation", {block_sise = 16})
