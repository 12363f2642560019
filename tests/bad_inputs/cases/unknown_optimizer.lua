-- expect: unknown optimizer plugin 'adam': did you mean 'adamw'? (available: adamw
local ds <close> = lm.dataset("wikitext", {path = args.data})
local tok <close> = lm.tokenizer("bpe", {vocab_size = 300})
tok:train(ds, "validation")
local b <close> = lm.blocks(tok, ds, "validation", {block_size = 16})
local m <close> = lm.architecture("gpt2", {n_layer = 1, vocab_size = 300, n_embd = 16, n_head = 2, n_positions = 16, device = "cpu", threads = 1})
m:init(1)
local o <close> = lm.objective("clm")
lm.trainer{model = m, objective = o, tokenizer = tok, train = b, max_steps = 2, optimizer = "adam"}
