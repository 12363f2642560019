-- Training speed of lmcore at the reference recipe's shape (batch 8 x 128
-- tokens), steps/s over `steps` steps after `warmup` steps.  Prints one line
--   RESULT model=gpt2 precision=fp32 steps_per_second=... tokens_per_second=...
-- that bench/gpu/bench_gpu.sh puts side by side with the Hugging Face
-- Trainer's figure from hf_trainer_speed.py on the same GPU.
--   lmcore run bench/gpu/train_speed.lua data=DIR model=gpt2|bert precision=fp32|tf32|bf16
local model_kind = args.model or "gpt2"
local data = args.data or "../shared/data/wikitext-2-raw"
local steps = args.steps or 200
local warmup = args.warmup or 20
local precision = args.precision or "fp32"
local device = args.device or "cuda"
local batch = args.batch_size or 8
local block = args.block_size or 128

local dataset <close> = lm.dataset("wikitext", {path = data})
local tokenizer <close> = model_kind == "gpt2"
  and lm.tokenizer("bpe", {vocab_size = 50257, special_tokens = {"<|endoftext|>"}})
  or lm.tokenizer("wordpiece", {vocab_size = 28996})
tokenizer:train(dataset, "test")
local blocks <close> = lm.blocks(tokenizer, dataset, "test", {block_size = block, add_special = model_kind ~= "gpt2"})

local model <close> = model_kind == "gpt2"
  and lm.architecture("gpt2", {vocab_size = 50257, device = device, precision = precision})
  or lm.architecture("bert", {vocab_size = 28996, device = device, precision = precision})
model:init(42)
local objective <close> = lm.objective(model_kind == "gpt2" and "clm" or "mlm")

-- The GPU's memory in use, as NVML reports it in the trainer's system
-- metrics, sampled every 10 steps through a jsonl logger.
local metrics_path = args.metrics or "/tmp/lmcore-train-speed-metrics.jsonl"
local metrics <close> = lm.logger("jsonl", {path = metrics_path, every = 1})

local function run(n)
  local trainer <close> = lm.trainer{model = model, objective = objective, tokenizer = tokenizer, train = blocks,
    loggers = {metrics}, max_steps = n, batch_size = batch, lr = 2e-5, weight_decay = 0.01, eval_every_epoch = false,
    log_every = 10}
  return trainer:fit()
end
run(warmup)
local r = run(steps)
metrics:close()
local peak_mib = 0
for line in io.lines(metrics_path) do
  local mib = lm.json_decode(line).gpu_memory_mb
  if type(mib) == "number" and mib > peak_mib then peak_mib = mib end
end
local info = model:info()
print(string.format("RESULT side=lmcore model=%s precision=%s device=%q steps=%d steps_per_second=%.3f "
                    .. "tokens_per_second=%.0f projected_6747_steps_s=%.1f final_loss=%.4f peak_gpu_memory_mib=%.0f",
                    model_kind, precision, info.device, r.steps, r.steps_per_second, r.tokens_per_second,
                    6747 / r.steps_per_second, r.train_loss, peak_mib))
