-- Throughput shape of the CUDA issue: GPT-2 124M, blocks of 1024 tokens,
-- batch `batch_size`, bf16, training steps per second after warm-up.  Prints
--   RESULT side=lmcore shape=throughput batch=B tokens_per_second=... mfu=... peak_gpu_memory_mib=...
-- (bench/gpu/throughput.sh puts it beside PyTorch + torch.compile).  MFU is
-- model FLOPs (6·N + 12·L·C·T per token, N without the position
-- embeddings, as nanoGPT counts them) over `peak_tflops` (default: the
-- H100 SXM's dense bf16, 989.4).  Peak memory: the largest gpu_memory_mb the
-- trainer's system metrics saw (NVML, the whole GPU).
--   lmcore run bench/gpu/throughput.lua data=DIR batch_size=16 [precision=bf16 steps=30 warmup=5 device=cuda]
--   (small shapes for a smoke test: n_layer=, n_embd=, n_head=, block_size=, vocab_size=;
--    profile_ops=true logs the op table at the end, as in train_speed.lua;
--    recompute=none keeps every layer's activations: by default
--    recompute=attention rebuilds them in backward, as PyTorch's fused
--    attention recomputes its probabilities, so that the largest batch fits)
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/lib/?.lua;" .. package.path
local speed = require("speed")
local data = args.data or "../shared/data/wikitext-2-raw"
local batch = args.batch_size or 16
local block = args.block_size or 1024
local steps = args.steps or 30
local warmup = args.warmup or 5
local precision = args.precision or "bf16"
local device = args.device or "cuda"
local peak_tflops = args.peak_tflops or 989.4
local n_layer, n_head, n_embd = args.n_layer or 12, args.n_head or 12, args.n_embd or 768
local vocab = args.vocab_size or 50257

local d, t, b = speed.tokenized("gpt2", data, vocab, block)
local dataset <close> = d
local tokenizer <close> = t
local blocks <close> = b
assert(blocks:count() >= batch, string.format("%d blocks of %d tokens: fewer than the batch of %d",
                                              blocks:count(), block, batch))
local model <close> = lm.architecture("gpt2", {vocab_size = vocab, n_positions = block, n_layer = n_layer,
                                               n_head = n_head, n_embd = n_embd, device = device,
                                               precision = precision, profile_ops = args.profile_ops == true,
                                               recompute = args.recompute or "attention"})
model:init(42)
local objective <close> = lm.objective("clm")
local r, peak_mib = speed.timed_fit{model = model, objective = objective, tokenizer = tokenizer, blocks = blocks,
  batch_size = batch, lr = 6e-4, weight_decay = 0.1, warmup = warmup, steps = steps, log_every = 1,
  metrics = args.metrics or "/tmp/lmcore-throughput-metrics.jsonl"}

local info = model:info()
local non_embedding = info.n_params - block * n_embd
local flops_per_token = 6 * non_embedding + 12 * n_layer * n_embd * block
local mfu = r.tokens_per_second * flops_per_token / (peak_tflops * 1e12)
print(string.format("RESULT side=lmcore shape=throughput model=gpt2 params=%d batch=%d block=%d precision=%s "
                    .. "device=%q steps_per_second=%.3f tokens_per_second=%.0f mfu=%.3f peak_gpu_memory_mib=%.0f",
                    info.n_params, batch, block, precision, info.device, r.steps_per_second, r.tokens_per_second,
                    mfu, peak_mib))
