-- trainer:fit() with callbacks and Hugging Face cadence options:
-- on_* events in order, a callback that stops the run, changes the learning
-- rate, asks for an evaluation and a save, generates a sample without
-- changing the training; eval_strategy "steps"; load_best_model_at_end with
-- early stopping; a Lua function as the schedule; and the errors for a
-- callback that raises or names an unknown event.
-- args: data=DIR out=DIR
local data = assert(args.data, "data=DIR")
local out = assert(args.out, "out=DIR")

local dataset <close> = lm.dataset("wikitext", {path = data})
local tokenizer <close> = lm.tokenizer("bpe", {vocab_size = 600, special_tokens = {"<|endoftext|>"}})
tokenizer:train(dataset, "validation")
local vocab = tokenizer:info()
local train <close> = lm.blocks(tokenizer, dataset, "validation", {block_size = 32, add_special = false})
local eval <close> = lm.blocks(tokenizer, dataset, "test", {block_size = 32, add_special = false})

local function new_model()
  local m = lm.architecture("gpt2", {vocab_size = vocab.vocab_size, n_layer = 1, n_head = 2, n_embd = 16,
                                     n_positions = 32, device = "cpu", threads = 1})
  m:init(5)
  return m
end

local function run(extra)
  local model = new_model()
  local objective = lm.objective("clm")
  local settings = {model = model, objective = objective, tokenizer = tokenizer, train = train, eval = eval,
                    lr = 2e-3, batch_size = 8, max_steps = 12, seed = 1, eval_max_batches = 2, log_every = 4}
  for k, v in pairs(extra or {}) do settings[k] = v end
  local trainer = lm.trainer(settings)
  local result = trainer:fit()
  local hash = model:weights_hash()
  trainer:close()
  objective:close()
  model:close()
  return result, hash
end

local function raises(fn, needle)
  local ok, err = pcall(fn)
  assert(not ok, "expected an error containing '" .. needle .. "'")
  assert(tostring(err):find(needle, 1, true), "expected '" .. needle .. "' in: " .. tostring(err))
end

-- 1. Events, their order, and what a callback can do.
local seen = {}
local samples = 0
local spy = {
  name = "spy",
  on_train_begin = function(_, t) seen[#seen + 1] = "train_begin@" .. t.step end,
  on_epoch_end = function(_, t) seen[#seen + 1] = "epoch_end@" .. t.step end,
  on_step_end = function(_, t, state, control)
    assert(state.global_step == t.step)
    if t.step == 2 then control.should_evaluate, control.should_save = true, true end
    if t.step == 3 then
      -- a sample mid-training: eval mode, its own buffers; training goes on unchanged
      local ids = t.model:generate(t.tokenizer:encode("The game", false), {max_new_tokens = 4, temperature = 0})
      samples = samples + #ids
    end
    if t.step == 9 then control.should_training_stop = true end
  end,
  on_log = function(_, t, _, _, logs) seen[#seen + 1] = string.format("log@%d", logs.step) end,
  on_evaluate = function(_, t, _, _, metrics)
    assert(metrics.eval_loss == metrics.eval_loss and metrics.step == t.step)
    seen[#seen + 1] = "evaluate@" .. t.step
  end,
  on_save = function(_, t, _, _, path)
    assert(path:find("checkpoint%-" .. t.step .. "$"), path)
    seen[#seen + 1] = "save@" .. t.step
  end,
  on_train_end = function(_, t) seen[#seen + 1] = "train_end@" .. t.step end,
}
local r = run({callbacks = {spy}, checkpoint_dir = out .. "/spy", save_strategy = "no"})
assert(r.steps == 9, "on_step_end stopped the run at step 9, it ran " .. r.steps)
assert(samples == 4, "the callback generated a sample")
local expected = "train_begin@0 evaluate@2 save@2 log@4 log@8 train_end@9"
assert(table.concat(seen, " ") == expected, table.concat(seen, " "))

-- 2. Generating in a callback does not change training (same weights as without it).
local quiet_result, quiet_hash = run({max_steps = 4})
local sampled_result, sampled_hash = run({max_steps = 4, callbacks = {{on_step_end = function(_, t)
  t.model:generate(t.tokenizer:encode("The", false), {max_new_tokens = 3, temperature = 0.7, seed = 2})
end}}})
assert(quiet_hash == sampled_hash and quiet_result.train_loss == sampled_result.train_loss,
       "a sample generated in on_step_end changed the training")

-- 3. Changing the learning rate from a callback (constant schedule: the log shows it).
local lrs = {}
run({lr_scheduler_type = "constant", log_every = 1, max_steps = 4, callbacks = {{
  on_step_end = function(_, t) if t.step == 2 then t:set_learning_rate(5e-4) end end,
  on_log = function(_, _, _, _, logs) lrs[#lrs + 1] = logs.learning_rate end}}})
assert(lrs[1] == 2e-3 and lrs[2] == 2e-3 and lrs[3] == 5e-4 and lrs[4] == 5e-4,
       "learning rates " .. table.concat(lrs, ", "))

-- 4. A Lua function as the schedule: what it returns is the learning rate.
lrs = {}
run({max_steps = 4, log_every = 1, lr_scheduler_type = function(step, total) return 1e-3 * (total - step) / total end,
     callbacks = {{on_log = function(_, _, _, _, logs) lrs[#lrs + 1] = logs.learning_rate end}}})
assert(math.abs(lrs[1] - 1e-3) < 1e-18 and math.abs(lrs[4] - 2.5e-4) < 1e-18, table.concat(lrs, ", "))
raises(function() run({lr_scheduler_type = function() return 0 / 0 end}) end,
       "lr_scheduler_type: the schedule function returned")
raises(function() run({lr_scheduler_type = function() return -1 end}) end, "it must return a finite learning rate")

-- 5. eval_strategy "steps": an evaluation every eval_steps steps, in the loggers' files.
local jsonl = lm.logger("jsonl", {path = out .. "/steps.jsonl"})
run({eval_strategy = "steps", eval_steps = 5, loggers = {jsonl}})
jsonl:close()
local eval_steps = {}
for line in io.lines(out .. "/steps.jsonl") do
  local event = lm.json_decode(line)
  if event.event == "eval" then eval_steps[#eval_steps + 1] = event.step end
end
assert(table.concat(eval_steps, ",") == "5,10,12", "evaluations at " .. table.concat(eval_steps, ","))

-- 6. load_best_model_at_end + early stopping.  With greater_is_better the
-- best evaluation is the first (the validation loss falls), and a threshold
-- no change can pass makes early stopping stop after `patience` more
-- evaluations: the run ends at step 6, and the weights it ends with are
-- checkpoint-2's, which pruning (keep_last = 1) kept because it is the best.
local best, best_hash = run({max_steps = 40, eval_strategy = "steps", eval_steps = 2, checkpoint_dir = out .. "/best",
                             save_strategy = "steps", save_steps = 2, keep_last = 1, load_best_model_at_end = true,
                             greater_is_better = true, early_stopping_patience = 2, early_stopping_threshold = 100})
assert(best.steps == 6, "early stopping after 2 evaluations without improvement: stopped at " .. best.steps)
assert(best.best_model_checkpoint == out .. "/best/checkpoint-2", tostring(best.best_model_checkpoint))
local reloaded <close> = lm.load_model(best.best_model_checkpoint, {device = "cpu"})
assert(reloaded:weights_hash() == best_hash, "the run did not end with the best checkpoint's weights")

-- 7. Errors: a callback that raises, an unknown event, an unknown shipped callback.
raises(function() run({callbacks = {{name = "boom", on_step_end = function() error("no luck") end}}}) end,
       "callback 'boom' failed in on_step_end at step 1: ")
raises(function() run({callbacks = {{on_stpe_end = function() end}}}) end,
       "callback 1 has unknown event 'on_stpe_end' (known: on_train_begin")
raises(function() run({callbacks = {"early_stoping"}}) end, "unknown callback 'early_stoping' (known: early_stopping")
raises(function() run({eval_strategy = "steps", eval_steps = 0}) end, "eval_steps must be >= 1")
raises(function() run({lr_scheduler_type = "cosine_annealing"}) end,
       "lr_scheduler_type 'cosine_annealing' is unknown: use linear, cosine, cosine_with_restarts")
raises(function() run({optimizer = "adam"}) end, "unknown optimizer plugin 'adam'")
print("OK callbacks")
