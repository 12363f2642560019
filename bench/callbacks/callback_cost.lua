-- What a Lua on_step_end callback costs a training step, at the shape of
-- scripts/gpt2_clm.lua preset=small (GPT-2, 2 layers, 2 heads, 128 wide,
-- blocks of 128, batch 8, AdamW) on the WikiText-2 text at hand (trained on
-- wiki.test.raw: the train split cannot be downloaded here).
--
--   lmcore run bench/callbacks/callback_cost.lua [data=DIR] [steps=40] [pairs=5] [threads=0]
--
-- Runs fit() over `steps` steps without a callback and with one that does
-- what a light callback does every step (reads the state table, counts,
-- checks a condition), alternately (A B A B ...) `pairs` times, each run on
-- a fresh model from the same seed, and prints each run's seconds per step,
-- the medians, and the ratio with / without.  The two trainings are
-- bit-identical (checked): the callback changes nothing but time.
local data = args.data or "../shared/data/wikitext-2-raw"
local steps, pairs_n, threads = args.steps or 40, args.pairs or 5, args.threads or 0

local dataset <close> = lm.dataset("wikitext", {path = data})
local tokenizer <close> = lm.tokenizer("bpe", {vocab_size = 8192, min_frequency = 2,
                                               special_tokens = {"<|endoftext|>"}})
tokenizer:train(dataset, "test")
local vocab = tokenizer:info()
local train <close> = lm.blocks(tokenizer, dataset, "test", {block_size = 128, add_special = false})

local function run(with_callback)
  local model <close> = lm.architecture("gpt2", {vocab_size = vocab.vocab_size, n_layer = 2, n_head = 2,
                                                 n_embd = 128, n_positions = 256, device = "cpu",
                                                 threads = threads})
  model:init(42)
  local objective <close> = lm.objective("clm")
  local seen = 0
  local callbacks = with_callback and {{on_step_end = function(_, t, state, control)
    seen = seen + 1
    if state.global_step ~= t.step then control.should_training_stop = true end
  end}} or nil
  local trainer <close> = lm.trainer{model = model, objective = objective, tokenizer = tokenizer, train = train,
    max_steps = steps, batch_size = 8, lr = 1e-3, warmup_steps = 20, log_every = 20, eval_strategy = "no",
    callbacks = callbacks}
  local result = trainer:fit()
  assert(not with_callback or seen == steps)
  return result.runtime / steps, model:weights_hash()
end

local function median(list)
  local sorted = {table.unpack(list)}
  table.sort(sorted)
  local n = #sorted
  return n % 2 == 1 and sorted[(n + 1) // 2] or (sorted[n // 2] + sorted[n // 2 + 1]) / 2
end

run(false) -- warm-up: page cache, thread pool, allocator
local without, with, ratios = {}, {}, {}
local reference
for i = 1, pairs_n do
  local a, hash_a = run(false)
  local b, hash_b = run(true)
  reference = reference or hash_a
  assert(hash_a == reference and hash_b == reference, "the callback changed the training")
  without[i], with[i], ratios[i] = a, b, b / a
  print(string.format("pair %d: %.4f s/step without, %.4f s/step with an on_step_end callback (%.4f)", i, a, b,
                      b / a))
end
print(string.format("median: %.4f s/step without, %.4f with; with/without %.4f (median of pair ratios %.4f)",
                    median(without), median(with), median(with) / median(without), median(ratios)))
