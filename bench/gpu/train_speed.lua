-- Training speed of lmcore at the reference recipe's shape (batch 8 x 128
-- tokens), steps/s over `steps` steps after `warmup` steps.  Prints one line
--   RESULT model=gpt2 precision=fp32 steps_per_second=... tokens_per_second=...
-- that bench/gpu/bench_gpu.sh puts side by side with the Hugging Face
-- Trainer's figure from hf_trainer_speed.py on the same GPU.
--   lmcore run bench/gpu/train_speed.lua data=DIR model=gpt2|bert precision=fp32|tf32|bf16 [profile_ops=true]
--        [recompute=none|activations|attention] [storage=auto|fp32]
--   storage=fp32: logits_dtype=fp32 activation_dtype=fp32 (with precision=bf16: bf16 GEMMs on fp32
--   storage, the path before bf16 storage); auto: the model's default (bf16 storage with precision=bf16)
-- profile_ops=true: the model times every op on the device and logs the
-- table (at info level) when the script ends; the steps/s are then those of
-- a profiled run (two event records per op).
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/lib/?.lua;" .. package.path
local speed = require("speed")
local model_kind = args.model or "gpt2"
local data = args.data or "../shared/data/wikitext-2-raw"
local steps = args.steps or 200
local warmup = args.warmup or 20
local precision = args.precision or "fp32"
local device = args.device or "cuda"
local batch = args.batch_size or 8
local block = args.block_size or 128
local profile_ops = args.profile_ops == true
local storage = args.storage or "auto"
if storage ~= "auto" and storage ~= "fp32" then
  error("storage must be auto or fp32 (the logits' and activations' dtype), not " .. tostring(storage), 0)
end

local d, t, b = speed.tokenized(model_kind, data, model_kind == "gpt2" and 50257 or 28996, block)
local dataset <close> = d
local tokenizer <close> = t
local blocks <close> = b

local model <close> = lm.architecture(model_kind, {vocab_size = model_kind == "gpt2" and 50257 or 28996,
                                                   device = device, precision = precision, profile_ops = profile_ops,
                                                   recompute = args.recompute or "none",
                                                   logits_dtype = storage, activation_dtype = storage})
model:init(42)
local objective <close> = lm.objective(model_kind == "gpt2" and "clm" or "mlm")

local r, peak_mib = speed.timed_fit{model = model, objective = objective, tokenizer = tokenizer, blocks = blocks,
  batch_size = batch, lr = 2e-5, weight_decay = 0.01, warmup = warmup, steps = steps, log_every = 10,
  metrics = args.metrics or "/tmp/lmcore-train-speed-metrics.jsonl"}
local info = model:info()
print(string.format("RESULT side=lmcore model=%s precision=%s storage=%s device=%q steps=%d steps_per_second=%.3f "
                    .. "tokens_per_second=%.0f projected_6747_steps_s=%.1f final_loss=%.4f peak_gpu_memory_mib=%.0f",
                    model_kind, precision, storage, info.device, r.steps, r.steps_per_second, r.tokens_per_second,
                    6747 / r.steps_per_second, r.train_loss, peak_mib))
-- With profile_ops=true the model logs its op table when it is closed, just after this.
