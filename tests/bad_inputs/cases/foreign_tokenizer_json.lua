-- expect: WordPiece
local ds <close> = lm.dataset("wikitext", {path = args.data})
local wp <close> = lm.tokenizer("wordpiece", {vocab_size = 400})
wp:train(ds, "validation")
wp:save(args.tmp .. "/wordpiece.json")
lm.tokenizer("bpe", {path = args.tmp .. "/wordpiece.json"})
