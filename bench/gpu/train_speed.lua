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

local function run(n)
  local trainer <close> = lm.trainer{model = model, objective = objective, tokenizer = tokenizer, train = blocks,
    max_steps = n, batch_size = batch, lr = 2e-5, weight_decay = 0.01, eval_every_epoch = false}
  return trainer:fit()
end
run(warmup)
local r = run(steps)
local info = model:info()
print(string.format("RESULT side=lmcore model=%s precision=%s device=%q steps=%d steps_per_second=%.3f "
                    .. "tokens_per_second=%.0f projected_6747_steps_s=%.1f final_loss=%.4f",
                    model_kind, precision, info.device, r.steps, r.steps_per_second, r.tokens_per_second,
                    6747 / r.steps_per_second, r.train_loss))
