-- Hugging Face TrainingArguments habits that lm.trainer honours:
--   warmup_steps below 1 is a fraction of the steps (transformers 5);
--   num_train_epochs is a float: E epochs are ceil(E x steps per epoch)
--   steps (Trainer's rule), the same run as max_steps = that count, bit for
--   bit, with an evaluation at the end of epoch 1 and at the end;
--   optim names (adamw_torch, lion_32bit) pick the plugin computing that
--   update, and adam_beta1/adam_beta2/adam_epsilon reach it: the same
--   weights as the plugin's own name and settings.
-- args: data=DIR
local data = assert(args.data, "data=DIR")
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local head_blocks = require("head_blocks")

local dataset <close> = lm.dataset("wikitext", {path = data})
local tokenizer <close> = lm.tokenizer("bpe", {vocab_size = 600})
tokenizer:train(dataset, "validation")
local vocab = tokenizer:info()
local opts = {block_size = 32}
-- Training blocks from the split's first 3,000 characters: a few dozen.
local head_dataset <close>, head_train = head_blocks(tokenizer, data, 3000, opts)
local train <close> = head_train
local eval <close> = lm.blocks(tokenizer, dataset, "test", opts)

local function new_model()
  local m = lm.architecture("gpt2", {vocab_size = vocab.vocab_size, n_layer = 1, n_head = 2, n_embd = 16,
                                     n_positions = 32, device = "cpu", threads = 1})
  m:init(3)
  return m
end

-- Trains a fresh model with these settings; returns the result, the
-- trainer's plan, the evaluations' epochs and the weights' hash.
local function run(extra)
  local model <close> = new_model()
  local objective <close> = lm.objective("clm")
  local evaluated_at, eval_steps, log_steps = {}, {}, {}
  local recorder = {
    on_evaluate = function(_, _, _, _, metrics)
      evaluated_at[#evaluated_at + 1] = metrics.epoch
      eval_steps[#eval_steps + 1] = metrics.step
    end,
    on_log = function(_, _, _, _, logs) log_steps[#log_steps + 1] = logs.step end,
  }
  local settings = {model = model, objective = objective, tokenizer = tokenizer, train = train, eval = eval,
                    learning_rate = 3e-3, per_device_train_batch_size = 4, seed = 7, eval_max_batches = 2,
                    logging_steps = 2, callbacks = {recorder}}
  for k, v in pairs(extra) do settings[k] = v end
  local t <close> = lm.trainer(settings)
  local plan = {total_steps = t.total_steps, steps_per_epoch = t.steps_per_epoch, epochs = t.num_train_epochs}
  local result = t:fit()
  return result, plan, evaluated_at, model:weights_hash(), eval_steps, log_steps
end

local n = train:count()
assert(n >= 12 and n < 200, "training blocks: " .. n)

-- 1. num_train_epochs = 1 and half a step's worth: ceil gives one step
-- more than a whole number of steps would (floor would not)
local per_epoch = (n + 3) // 4
local epochs = 1 + 0.5 / per_epoch
local r, plan, evals, hash = run({num_train_epochs = epochs})
assert(plan.steps_per_epoch == per_epoch, "steps per epoch " .. plan.steps_per_epoch .. ", expected " .. per_epoch)
local expected = per_epoch + 1
assert(plan.total_steps == expected and r.steps == expected,
       string.format("1 + 1/2 step's epochs of %d steps: %d planned, %d run, expected %d", per_epoch, plan.total_steps, r.steps,
                     expected))
assert(plan.epochs == 2, "epochs begun: " .. plan.epochs)
assert(#evals == 2 and evals[1] == 1 and evals[2] > 1 and evals[2] < 2,
       "evaluations at epochs " .. table.concat(evals, ", "))
local r_steps, _, _, hash_steps = run({num_train_epochs = 1, max_steps = expected})
assert(hash == hash_steps and r.train_loss == r_steps.train_loss,
       "num_train_epochs=" .. epochs .. " and max_steps=" .. expected .. " trained differently")
-- a fraction shorter than one step still trains one
local r_tiny = run({num_train_epochs = 1e-6})
assert(r_tiny.steps == 1, "num_train_epochs=1e-6 ran " .. r_tiny.steps .. " steps")

-- warmup_steps below 1 is a fraction of the steps (transformers 5)
local _, _, _, warm_fraction = run({max_steps = 6, warmup_steps = 0.5, lr_scheduler_type = "cosine"})
local _, _, _, warm_ratio = run({max_steps = 6, warmup_ratio = 0.5, lr_scheduler_type = "cosine"})
local _, _, _, warm_steps = run({max_steps = 6, warmup_steps = 3, lr_scheduler_type = "cosine"})
local _, _, _, no_warmup = run({max_steps = 6, lr_scheduler_type = "cosine"})
assert(warm_fraction == warm_ratio and warm_ratio == warm_steps, "warmup_steps=0.5 of 6 steps is not 3 steps")
assert(warm_steps ~= no_warmup, "warmup changed nothing")
local bad_ok, bad_err = pcall(run, {max_steps = 6, warmup_steps = 2.5})
assert(not bad_ok and tostring(bad_err):find("warmup_steps must be a whole number", 1, true), tostring(bad_err))

-- 2. optim names and adam_* settings
local steps = 3
local _, _, _, torch_named = run({max_steps = steps, optim = "adamw_torch", adam_beta1 = 0.8, adam_beta2 = 0.95,
                                  adam_epsilon = 1e-6})
local _, _, _, plugin_named = run({max_steps = steps, optimizer = "adamw",
                                   optimizer_args = {beta1 = 0.8, beta2 = 0.95, eps = 1e-6}})
local _, _, _, defaults = run({max_steps = steps, optimizer = "adamw"})
assert(torch_named == plugin_named, "optim=adamw_torch with adam_* differs from adamw with the same settings")
assert(torch_named ~= defaults, "adam_beta1/adam_beta2/adam_epsilon changed nothing")
local _, _, _, lion_hf = run({max_steps = steps, optim = "lion_32bit", weight_decay = 0})
local _, _, _, lion = run({max_steps = steps, optimizer = "lion", weight_decay = 0})
assert(lion_hf == lion, "optim=lion_32bit differs from optimizer=lion")
assert(lion ~= defaults, "lion trained like adamw")

-- 3. eval_on_start evaluates before step 1, logging_first_step logs step 1;
-- neither changes what is trained.
local r_plain, _, _, plain_hash, plain_evals, plain_logs = run({max_steps = 5})
local r_both, _, _, both_hash, both_evals, both_logs = run({max_steps = 5, eval_on_start = true,
                                                           logging_first_step = true})
assert(table.concat(plain_evals, ",") == "5" and table.concat(both_evals, ",") == "0,5",
       "evaluations at steps " .. table.concat(both_evals, ",") .. " (without eval_on_start: " ..
       table.concat(plain_evals, ",") .. ")")
assert(table.concat(plain_logs, ",") == "2,4,5" and table.concat(both_logs, ",") == "1,2,4,5",
       "logs at steps " .. table.concat(both_logs, ",") .. " (without logging_first_step: " ..
       table.concat(plain_logs, ",") .. ")")
assert(both_hash == plain_hash and r_both.train_loss == r_plain.train_loss and r_both.eval_loss == r_plain.eval_loss,
       "eval_on_start / logging_first_step changed the training")

local ok, err = pcall(run, {max_steps = steps, optim = "adafactor"})
assert(not ok and tostring(err):find("optim 'adafactor' is a Hugging Face optimizer that lmcore has no plugin for",
                                     1, true), tostring(err))
ok, err = pcall(run, {max_steps = steps, optim = "sgd", optimizer = "adamw"})
assert(not ok and tostring(err):find("optimizer and optim", 1, true), tostring(err))
ok, err = pcall(run, {num_train_epochs = -0.5})
assert(not ok and tostring(err):find("num_train_epochs must be a number >= 0", 1, true), tostring(err))
print("OK hf args")
