-- expect: trainer_state.json' is a FIFO (named pipe), not a regular file
-- Resuming from a checkpoint whose trainer_state.json is a FIFO.
local ds <close> = lm.dataset("wikitext", {path = args.data})
local tok <close> = lm.tokenizer("bpe", {vocab_size = 300})
tok:train(ds, "validation")
local b <close> = lm.blocks(tok, ds, "validation", {block_size = 16})
local m <close> = lm.architecture("gpt2", {n_layer = 1, vocab_size = 300, n_embd = 16, n_head = 2, n_positions = 16,
                                          device = "cpu"})
m:init(1)
local o <close> = lm.objective("clm")
do
  local t <close> = lm.trainer{model = m, objective = o, tokenizer = tok, train = b, max_steps = 2,
                               checkpoint_dir = args.tmp .. "/ck", save_steps = 2}
  t:fit()
end
local state = args.tmp .. "/ck/checkpoint-2/trainer_state.json"
assert(os.remove(state))
assert(os.execute("mkfifo " .. state))
local t <close> = lm.trainer{model = m, objective = o, tokenizer = tok, train = b, max_steps = 4,
                             resume = args.tmp .. "/ck/checkpoint-2"}
