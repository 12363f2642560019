-- expect: checkpoint_dir '/tmp/
-- run: sh -c 'mkdir {tmp}/ck && exec flock {tmp}/ck/.lmcore.lock {exe} run {case} data={data} tmp={tmp}'
-- absent: {tmp}/ck/checkpoint-2
-- A trainer saving into a checkpoint_dir that another run holds is
-- refused when it is made, not when its checkpoints collide.
local ds <close> = lm.dataset("wikitext", {path = args.data})
local tok <close> = lm.tokenizer("bpe", {vocab_size = 300})
tok:train(ds, "validation")
local b <close> = lm.blocks(tok, ds, "validation", {block_size = 16})
local m <close> = lm.architecture("gpt2", {n_layer = 1, vocab_size = 300, n_embd = 16, n_head = 2, n_positions = 16,
                                          device = "cpu"})
m:init(1)
local o <close> = lm.objective("clm")
local t <close> = lm.trainer{model = m, objective = o, tokenizer = tok, train = b, max_steps = 2,
                             checkpoint_dir = args.tmp .. "/ck", save_steps = 2}
t:fit()
