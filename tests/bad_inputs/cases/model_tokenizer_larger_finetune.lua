-- expect: the tokenizer has 400 tokens but the model's vocab_size is 300: set the model's vocab_size to at least 400
-- absent: {tmp}/ft
-- A loaded model fine-tuned with another, larger tokenizer: the trainer's
-- check (the same function as lm.load_model's) refuses it.
local dir = dofile("tests/bad_inputs/saved_model.lua")
local ds <close> = lm.dataset("wikitext", {path = args.data})
local tok <close> = lm.tokenizer("bpe", {vocab_size = 400})
tok:train(ds, "validation")
local b <close> = lm.blocks(tok, ds, "validation", {block_size = 16})
local m <close> = lm.load_model(dir, {device = "cpu"})
local o <close> = lm.objective("clm")
lm.trainer{model = m, objective = o, tokenizer = tok, train = b, max_steps = 2, checkpoint_dir = args.tmp .. "/ft"}
