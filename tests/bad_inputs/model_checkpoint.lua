-- Trains a tiny GPT-2 for 4 steps with a checkpoint every 2 into <tmp>/ck,
-- and returns the folder of the checkpoint at step 2 and a function that
-- resumes from a folder with the same settings: the cases that tamper with
-- a checkpoint start from it.  The resumed run writes its checkpoints into
-- <tmp>/resumed (absent when the resume is refused).
local ds = lm.dataset("wikitext", {path = args.data})
local tok = lm.tokenizer("bpe", {vocab_size = 300})
tok:train(ds, "validation")
local b = lm.blocks(tok, ds, "validation", {block_size = 16})
local m = lm.architecture("gpt2", {n_layer = 1, vocab_size = 300, n_embd = 16, n_head = 2, n_positions = 16,
                                   device = "cpu", threads = 1})
m:init(1)
local o = lm.objective("clm")
local function settings(extra)
  local run = {model = m, objective = o, tokenizer = tok, train = b, max_steps = 4, save_steps = 2,
               eval_every_epoch = false}
  for k, v in pairs(extra) do run[k] = v end
  return run
end
local first <close> = lm.trainer(settings{checkpoint_dir = args.tmp .. "/ck"})
first:fit()
local function resume(dir)
  local t <close> = lm.trainer(settings{resume = dir, checkpoint_dir = args.tmp .. "/resumed"})
  t:fit()
end
return args.tmp .. "/ck/checkpoint-2", resume
