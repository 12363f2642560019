-- What the GPU speed benchmarks (train_speed.lua, throughput.lua) share:
-- the text they train on and a timed run with the peak GPU memory read
-- back from the trainer's system metrics.
local M = {}

-- The tokenizer trained on DATA's test split (wiki.test.raw: the train split
-- is not at hand) and its blocks.  GPT-2: byte-level BPE; BERT: WordPiece,
-- blocks with [CLS]/[SEP].  Returns dataset, tokenizer, blocks (close all three).
function M.tokenized(model_kind, data, vocab_size, block_size)
  local dataset = lm.dataset("wikitext", {path = data})
  local tokenizer = model_kind == "gpt2"
    and lm.tokenizer("bpe", {vocab_size = vocab_size, special_tokens = {"<|endoftext|>"}})
    or lm.tokenizer("wordpiece", {vocab_size = vocab_size})
  tokenizer:train(dataset, "test")
  local blocks = lm.blocks(tokenizer, dataset, "test", {block_size = block_size, add_special = model_kind ~= "gpt2"})
  return dataset, tokenizer, blocks
end

-- `warmup` steps, then `steps` timed steps, each run through its own
-- trainer.  t: model, objective, tokenizer, blocks, batch_size, lr,
-- weight_decay, warmup, steps, log_every, metrics (a jsonl path).  Returns
-- the timed fit's result and the largest gpu_memory_mb (memory in use on the
-- GPU, NVML, the whole device) the metrics saw: 0 where there is none.
function M.timed_fit(t)
  local metrics <close> = lm.logger("jsonl", {path = t.metrics, every = 1})
  local function run(n)
    local trainer <close> = lm.trainer{model = t.model, objective = t.objective, tokenizer = t.tokenizer,
      train = t.blocks, loggers = {metrics}, max_steps = n, batch_size = t.batch_size, lr = t.lr,
      weight_decay = t.weight_decay, eval_every_epoch = false, log_every = t.log_every}
    return trainer:fit()
  end
  run(t.warmup)
  local result = run(t.steps)
  metrics:close()
  local peak_mib = 0
  for line in io.lines(t.metrics) do
    local mib = lm.json_decode(line).gpu_memory_mb
    if type(mib) == "number" and mib > peak_mib then peak_mib = mib end
  end
  return result, peak_mib
end

return M
