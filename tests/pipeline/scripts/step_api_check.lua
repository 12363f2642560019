-- The step API: a loop written in Lua with trainer:next_batch(),
-- forward_backward(), clip_grad_norm(), optimizer_step(), log() and
-- evaluate() trains bit-identically to trainer:fit() (same weights, same
-- loss averages, same evaluation), with dropout, gradient accumulation over
-- more than one epoch, for GPT-2 and BERT; and with logging off a step
-- reads nothing back from the device.
-- args: model=gpt2|bert data=DIR
local kind = args.model or "gpt2"
local data = assert(args.data, "data=DIR")
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local head_blocks = require("head_blocks")

local dataset <close> = lm.dataset("wikitext", {path = data})
local tokenizer <close> = kind == "gpt2" and lm.tokenizer("bpe", {vocab_size = 600})
  or lm.tokenizer("wordpiece", {vocab_size = 600})
tokenizer:train(dataset, "validation")
local vocab = tokenizer:info()
local opts = {block_size = 32, add_special = kind ~= "gpt2"}
-- Training blocks from the split's first 6,000 characters: about 80
-- blocks, so that two epochs are a handful of steps.
local head_dataset <close>, head_train = head_blocks(tokenizer, data, 6000, opts)
local train <close> = head_train
local eval <close> = lm.blocks(tokenizer, dataset, "test", opts)

local function new_model()
  local m
  if kind == "gpt2" then
    m = lm.architecture("gpt2", {vocab_size = vocab.vocab_size, n_layer = 1, n_head = 2, n_embd = 16,
                                 n_positions = 32, device = "cpu", threads = 1})
  else
    m = lm.architecture("bert", {vocab_size = vocab.vocab_size, num_hidden_layers = 1, num_attention_heads = 2,
                                 hidden_size = 16, intermediate_size = 32, max_position_embeddings = 32,
                                 pad_token_id = vocab.pad_id, device = "cpu", threads = 1})
  end
  m:init(3)
  return m
end

-- Two epochs at batch 4 and accumulation 2, with a cosine schedule.
local function new_trainer(model, objective, extra)
  local settings = {model = model, objective = objective, tokenizer = tokenizer, train = train, eval = eval,
                    lr = 3e-3, batch_size = 4, grad_accum = 2, epochs = 2, seed = 7, warmup_steps = 2,
                    eval_max_batches = 3, log_every = 3, lr_scheduler_type = "cosine"}
  for k, v in pairs(extra or {}) do settings[k] = v end
  return lm.trainer(settings)
end

assert(train:count() >= 40 and train:count() < 400, "training blocks: " .. train:count())

-- 1. trainer:fit()
local model_a <close> = new_model()
local objective_a <close> = lm.objective(kind == "gpt2" and "clm" or "mlm", kind == "bert" and {seed = 11} or nil)
local fitted <close> = new_trainer(model_a, objective_a)
local ra = fitted:fit()

-- 2. The documented loop (docs/lua-api.md, "Writing the loop yourself").
local model_b <close> = new_model()
local objective_b <close> = lm.objective(kind == "gpt2" and "clm" or "mlm", kind == "bert" and {seed = 11} or nil)
local t <close> = new_trainer(model_b, objective_b)
while t.step < t.total_steps do
  for _ = 1, t.grad_accum do
    t:forward_backward(t:next_batch())
  end
  t:clip_grad_norm()
  t:optimizer_step()
  if t.step % t.logging_steps == 0 or t.step == t.total_steps then t:log() end
  if t.epoch_done or t.step == t.total_steps then t:evaluate() end
end
local rb = t:finish()

assert(ra.steps == rb.steps and ra.steps == t.total_steps, "steps " .. ra.steps .. " vs " .. rb.steps)
assert(model_a:weights_hash() == model_b:weights_hash(),
       "weights differ: " .. model_a:weights_hash() .. " vs " .. model_b:weights_hash())
assert(ra.train_loss == rb.train_loss, string.format("train loss %.17g vs %.17g", ra.train_loss, rb.train_loss))
assert(ra.eval_loss == rb.eval_loss, string.format("eval loss %.17g vs %.17g", ra.eval_loss, rb.eval_loss))
assert(ra.eval_loss == ra.eval_loss and ra.eval_loss < math.log(vocab.vocab_size) + 1, "eval loss " .. ra.eval_loss)

-- 3. Logging off: a step reads nothing back (no download, no wait).
local model_c <close> = new_model()
local objective_c <close> = lm.objective(kind == "gpt2" and "clm" or "mlm", kind == "bert" and {seed = 11} or nil)
local quiet <close> = new_trainer(model_c, objective_c, {logging_strategy = "no", eval_strategy = "no"})
local before = quiet:device_counters()
for _ = 1, 3 do
  for _ = 1, quiet.grad_accum do quiet:forward_backward(quiet:next_batch()) end
  quiet:clip_grad_norm()
  quiet:optimizer_step()
end
local after = quiet:device_counters()
assert(after.downloads == before.downloads and after.syncs == before.syncs,
       string.format("3 steps read the device: downloads %d -> %d, syncs %d -> %d", before.downloads,
                     after.downloads, before.syncs, after.syncs))
assert(after.uploads > before.uploads, "the batches were uploaded")
local logs = quiet:log()
local read = quiet:device_counters()
assert(read.downloads == after.downloads + 1, "log() reads the step state once")
assert(logs.step == 3 and logs.loss == logs.loss and logs.grad_norm > 0, "logs " .. logs.loss)
-- fit() with logging and evaluation off reads the device once per run (the end).
local model_d <close> = new_model()
local objective_d <close> = lm.objective(kind == "gpt2" and "clm" or "mlm", kind == "bert" and {seed = 11} or nil)
local silent <close> = new_trainer(model_d, objective_d, {logging_strategy = "no", eval_strategy = "no"})
local c0 = silent:device_counters()
silent:fit()
local c1 = silent:device_counters()
assert(c1.downloads - c0.downloads == 1,
       string.format("fit() without logging read the device %d times", c1.downloads - c0.downloads))

-- 4. A batch from next_batch() must go through forward_backward() before
-- anything makes another one (the objective reuses its memory) or ends the step.
local model_e <close> = new_model()
local objective_e <close> = lm.objective(kind == "gpt2" and "clm" or "mlm", kind == "bert" and {seed = 11} or nil)
local strict <close> = new_trainer(model_e, objective_e, {grad_accum = 1})
local pending = strict:next_batch()
for _, call in ipairs({"evaluate", "next_batch", "optimizer_step"}) do
  local ok, err = pcall(strict[call], strict)
  assert(not ok and err:find(call .. ": the batch next_batch() returned has not gone through forward_backward()",
                             1, true), call .. ": " .. tostring(err))
end
strict:forward_backward(pending)
strict:optimizer_step()
strict:evaluate()
assert(strict.step == 1)

-- 5. optimizer_args may give weight_decay when the trainer's table does not
-- (the trainer's default 0.01 gives way); both at once is refused.
local model_f <close> = new_model()
local objective_f <close> = lm.objective(kind == "gpt2" and "clm" or "mlm")
local decayed <close> = new_trainer(model_f, objective_f, {optimizer = "adamw", optimizer_args = {weight_decay = 0.1}})
assert(decayed.optimizer:settings().weight_decay == 0.1, "weight_decay " .. decayed.optimizer:settings().weight_decay)
local ok, err = pcall(new_trainer, model_f, objective_f, {optimizer_args = {weight_decay = 0.1}, weight_decay = 0.2})
assert(not ok and err:find("'weight_decay' is given twice", 1, true), tostring(err))
assert(ra.epochs == 2, "the run covers two epochs: " .. ra.epochs)
print("OK step api " .. kind .. " (" .. ra.steps .. " steps over 2 epochs)")
