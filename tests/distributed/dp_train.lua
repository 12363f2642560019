-- A small GPT-2 trained for the data-parallel tests (test_data_parallel.sh,
-- test_faults.sh), one process or N under mpirun:
--   lmcore run dp_train.lua data=DIR out=DIR [batch=8 accum=1 steps=20
--        save_steps=0 resume=CHECKPOINT communicator=auto eval=false device=cpu
--        fail_rank=-1 fail_mode=callback|kill|bad_input|disagree fail_step=3 n_embd=32
--        logits_dtype=auto activation_dtype=auto attn_implementation=auto seed_by_rank=false]
-- Each rank appends "step hash" after every step to out/hashes-rank<R>.txt
-- (plain io, not lm.write_file: every rank writes its own), so the test can
-- compare the ranks' weights step by step; rank 0 saves the model in out.
local a = args
local out = assert(a.out, "out=DIR")
local rank = lm.rank()
local fail_rank = a.fail_rank or -1
local fail_here = rank == fail_rank
lm.mkdir(out)

local data = a.data
if fail_here and a.fail_mode == "bad_input" then data = out .. "/no-such-data" end
local dataset <close> = lm.dataset("wikitext", {path = data})
local tokenizer <close> = lm.tokenizer("bpe", {vocab_size = 384, min_frequency = 2, special_tokens = {"<|endoftext|>"}})
tokenizer:train(dataset, "validation")
local opts = {block_size = 32, cache_dir = out .. "/cache-rank" .. rank}
local train <close> = lm.blocks(tokenizer, dataset, "validation", opts)
local eval <close> = lm.blocks(tokenizer, dataset, "test", opts)
local model <close> = lm.architecture("gpt2", {vocab_size = 384, n_layer = 1, n_head = 2, n_embd = a.n_embd or 32, n_positions = 32,
                                               embd_pdrop = 0, attn_pdrop = 0, resid_pdrop = 0, device = a.device or "cpu",
                                               threads = 1, logits_dtype = a.logits_dtype,
                                               activation_dtype = a.activation_dtype,
                                               attn_implementation = a.attn_implementation})
-- seed_by_rank=true: each rank draws other weights, which rank 0's broadcast replaces.
model:init(a.seed_by_rank and 42 + rank or 42)
local objective <close> = lm.objective("clm", {})

local hashes = assert(io.open(string.format("%s/hashes-rank%d.txt", out, rank), a.resume and "a" or "w"))
local callbacks = {{
  name = "hashes",
  on_step_end = function(_, t)
    hashes:write(string.format("%d %s\n", t.step, model:weights_hash()))
    hashes:flush()
    if fail_here and t.step == (a.fail_step or 3) then
      if a.fail_mode == "callback" then error("injected failure on rank " .. rank) end
      if a.fail_mode == "kill" then
        local stat = io.open("/proc/self/stat"):read("l")
        os.execute("kill -9 " .. stat:match("^(%d+)"))
      end
    end
  end,
}}
local console <close> = lm.logger("console", {every = 5}) -- silent on ranks other than 0
local save_steps = a.save_steps or 0
local trainer <close> = lm.trainer{
  model = model, objective = objective, tokenizer = tokenizer, train = train, eval = eval,
  callbacks = callbacks, loggers = {console},
  lr = 3e-3, batch_size = a.batch or 8, grad_accum = a.accum or 1, max_steps = a.steps or 20,
  seed = (fail_here and a.fail_mode == "disagree") and 7 or 42,
  warmup_steps = 2, log_every = 5, eval_strategy = "no", eval_batch_size = a.batch or 8, eval_max_batches = 50,
  checkpoint_dir = out .. "/checkpoints", save_strategy = save_steps > 0 and "steps" or "no", save_steps = save_steps,
  keep_last = 5, resume = a.resume or "",
  communicator = a.communicator or "auto", zero_stage = a.zero_stage or 0,
}
trainer:fit()
hashes:close()
if a.eval then
  local loss = trainer:evaluate()
  local f = assert(io.open(string.format("%s/eval-rank%d.txt", out, rank), "w"))
  f:write(string.format("%.17g\n", loss))
  f:close()
end
model:save(out)
