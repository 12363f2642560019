-- Exact resume: a run of 8 steps that saves at step 4, and a second run
-- resumed from that checkpoint (into a model initialised differently),
-- must end with bit-identical weights and loss averages.  Also: keep_last
-- pruning, and refusals of mismatched checkpoints.
-- args: model=gpt2|bert data=DIR out=DIR
local kind = args.model or "gpt2"
local data = assert(args.data, "data=DIR")
local out = assert(args.out, "out=DIR")

local dataset <close> = lm.dataset("wikitext", {path = data})
local tokenizer <close> = kind == "gpt2" and lm.tokenizer("bpe", {vocab_size = 600})
  or lm.tokenizer("wordpiece", {vocab_size = 600})
tokenizer:train(dataset, "test")
local vocab = tokenizer:info()
local train <close> = lm.blocks(tokenizer, dataset, "test", {block_size = 32, add_special = kind ~= "gpt2"})

local function new_model(vocab_size)
  if kind == "gpt2" then
    return lm.architecture("gpt2", {vocab_size = vocab_size, n_layer = 1, n_head = 2, n_embd = 16,
                                    n_positions = 32, device = "cpu", threads = 1})
  end
  return lm.architecture("bert", {vocab_size = vocab_size, num_hidden_layers = 1, num_attention_heads = 2,
                                  hidden_size = 16, intermediate_size = 32, max_position_embeddings = 32,
                                  device = "cpu", threads = 1})
end

local function fit(model, settings)
  local objective <close> = lm.objective(kind == "gpt2" and "clm" or "mlm")
  local config = {model = model, objective = objective, tokenizer = tokenizer, train = train, max_steps = 8,
                  batch_size = 4, lr = 3e-3, seed = 5, eval_every_epoch = false}
  for k, v in pairs(settings) do config[k] = v end
  local trainer <close> = lm.trainer(config)
  return trainer:fit()
end

local a = new_model(vocab.vocab_size)
a:init(1)
local ra = fit(a, {checkpoint_dir = out .. "/a", save_every = 2, keep_last = 2})
local function exists(p) local f = io.open(p) if f then f:close() return true end return false end
assert(exists(out .. "/a/checkpoint-8/trainer_state.json") and exists(out .. "/a/checkpoint-6/optimizer.safetensors"))
assert(not exists(out .. "/a/checkpoint-4/trainer_state.json"), "keep_last=2 must prune checkpoint-4")

-- A second run that saved at step 4 (same settings), then one resumed from it.
local c = new_model(vocab.vocab_size)
c:init(1)
fit(c, {checkpoint_dir = out .. "/c", save_every = 4, keep_last = 0})
c:close()
local b = new_model(vocab.vocab_size)
b:init(99) -- different weights: the checkpoint must replace them
local csv <close> = lm.logger("csv", {path = out .. "/resumed.csv"})
local rb = fit(b, {resume = out .. "/c/checkpoint-4", loggers = {csv}, log_every = 3})
csv:close()
assert(rb.steps == 8 and ra.steps == 8)
-- The resumed run's first step (5, not a multiple of log_every) sampled the
-- system metrics, so the CSV has their columns.
local header = assert(io.open(out .. "/resumed.csv")):read("l")
assert(header:find("rss_mb", 1, true), "resumed log.csv lacks the system columns: " .. header)
assert(rb.train_loss == ra.train_loss, string.format("train loss %.17g vs %.17g", rb.train_loss, ra.train_loss))
local ids = train:get(0)
for _, position in ipairs({1, 32}) do
  local x, y = a:logits(ids, position), b:logits(ids, position)
  for i = 1, #x do
    assert(x[i] == y[i], string.format("logit %d at %d differs after resume: %.9g vs %.9g", i, position, x[i], y[i]))
  end
end

-- Refusals: another vocabulary; another schedule.
local other <close> = new_model(vocab.vocab_size + 8)
local ok, err = pcall(fit, other, {resume = out .. "/c/checkpoint-4"})
assert(not ok and err:find("vocab_size"), tostring(err))
local same <close> = new_model(vocab.vocab_size)
ok, err = pcall(fit, same, {resume = out .. "/c/checkpoint-4", max_steps = 9})
assert(not ok and err:find("the run was 8 steps long, this one 9 (max_steps, num_train_epochs)", 1, true) and
       not err:find("batch_size", 1, true), tostring(err))
ok, err = pcall(fit, same, {resume = out .. "/nowhere"})
assert(not ok and err:find("nowhere"), tostring(err))

-- Another optimizer (SGD with Nesterov momentum: its momentum buffers are
-- saved), another schedule (cosine with warmup) and a callback that declares
-- state (a step counter, saved in trainer_state.json) resume exactly too.
local function counter()
  return {name = "counter", steps = 0,
          on_step_end = function(self) self.steps = self.steps + 1 end,
          state = function(self) return {steps = self.steps} end,
          load_state = function(self, saved) self.steps = saved.steps end}
end
local sgd = {optimizer = "sgd", optimizer_args = {momentum = 0.9, nesterov = true}, lr = 0.05,
             lr_scheduler_type = "cosine", warmup_steps = 2}
local function with(extra)
  local all = {}
  for k, v in pairs(sgd) do all[k] = v end
  for k, v in pairs(extra) do all[k] = v end
  return all
end
local whole_count, half_count = counter(), counter()
local d = new_model(vocab.vocab_size)
d:init(1)
local rd = fit(d, with({checkpoint_dir = out .. "/d", save_every = 4, keep_last = 0, callbacks = {whole_count}}))
local e = new_model(vocab.vocab_size)
e:init(42)
local re = fit(e, with({resume = out .. "/d/checkpoint-4", callbacks = {half_count}}))
assert(d:weights_hash() == e:weights_hash(), "SGD run resumed from step 4 ended with other weights")
assert(rd.train_loss == re.train_loss, string.format("train loss %.17g vs %.17g", rd.train_loss, re.train_loss))
assert(whole_count.steps == 8 and half_count.steps == 8,
       "the callback's state did not resume: " .. whole_count.steps .. " and " .. half_count.steps)
-- A checkpoint of one optimizer does not resume with another.
local f = new_model(vocab.vocab_size)
ok, err = pcall(fit, f, {resume = out .. "/d/checkpoint-4", lr_scheduler_type = "cosine", warmup_steps = 2})
assert(not ok and err:find("trained with optimizer 'sgd' and this run uses 'adamw'", 1, true), tostring(err))

-- A checkpoint at an epoch's end starts the next epoch: resumed from it,
-- the run writes the very same trainer state (every loss sum's bits, the
-- cursor, the counters) at the next epoch's end.  Training blocks from the
-- split's first 4,000 characters, so that an epoch is a few steps.
local head = os.tmpname()
do
  local src, dst, n = assert(io.open(data .. "/wiki.test.raw")), assert(io.open(head, "w")), 0
  for line in src:lines() do
    dst:write(line, "\n")
    n = n + #line
    if n > 4000 then break end
  end
  src:close()
  dst:close()
end
local head_dataset <close> = lm.dataset("text", {train = head})
local small <close> = lm.blocks(tokenizer, head_dataset, "train", {block_size = 32, add_special = kind ~= "gpt2"})
os.remove(head)
local function fit_small(model, settings)
  local config = {train = small, epochs = 3, max_steps = 0, grad_accum = 2, save_strategy = "epoch", keep_last = 0}
  for k, v in pairs(settings) do config[k] = v end
  return fit(model, config)
end
local g = new_model(vocab.vocab_size)
g:init(1)
local rg = fit_small(g, {checkpoint_dir = out .. "/g"})
local per_epoch = rg.steps // 3
assert(per_epoch >= 2 and rg.steps == 3 * per_epoch, "steps " .. rg.steps)
local h = new_model(vocab.vocab_size)
h:init(7)
fit_small(h, {checkpoint_dir = out .. "/h", resume = out .. "/g/checkpoint-" .. per_epoch})
local function state_text(dir)
  return (assert(io.open(dir .. "/checkpoint-" .. 2 * per_epoch .. "/trainer_state.json")):read("a"):gsub(dir, "DIR"))
end
local whole, resumed = state_text(out .. "/g"), state_text(out .. "/h")
assert(whole == resumed, "trainer_state.json after resuming at an epoch's end differs:\n" .. whole .. "\n" .. resumed)
assert(whole:find('"steps_in_epoch": 0', 1, true) and whole:find('"loss_sum_epoch_bits": "0"', 1, true),
       "an epoch-end checkpoint starts the next epoch: " .. whole)
assert(g:weights_hash() == h:weights_hash(), "run resumed at an epoch's end ended with other weights")
print("OK resume " .. kind)
