-- Throughput of data-parallel training on the CPU (bench_distributed.sh):
-- a small GPT-2 (2 layers, 128 wide, blocks of 128) trained for `steps`
-- steps at `batch` blocks per rank; rank 0 prints the global tokens/s.
--   lmcore run bench_distributed.lua data=DIR out=DIR [steps=30 batch=8 threads=1 device=cpu communicator=auto
--        ddp_overlap=true ddp_bucket_cap_mb=25]
local a = args
lm.mkdir(a.out)
local dataset <close> = lm.dataset("wikitext", {path = a.data})
local tokenizer <close> = lm.tokenizer("bpe", {vocab_size = 2048, min_frequency = 2, special_tokens = {"<|endoftext|>"}})
tokenizer:train(dataset, "test")
local train <close> = lm.blocks(tokenizer, dataset, "test", {block_size = 128, cache_dir = a.out .. "/cache-" .. lm.rank()})
local model <close> = lm.architecture("gpt2", {vocab_size = 2048, n_layer = 2, n_head = 2, n_embd = 128, n_positions = 128,
                                               device = a.device or "cpu", threads = a.threads or 1})
model:init(42)
local objective <close> = lm.objective("clm", {})
local trainer <close> = lm.trainer{model = model, objective = objective, tokenizer = tokenizer, train = train,
                                   lr = 1e-3, batch_size = a.batch or 8, max_steps = a.steps or 30, log_every = 1000,
                                   eval_strategy = "no", communicator = a.communicator or "auto",
                                   ddp_overlap = a.ddp_overlap == nil and true or a.ddp_overlap,
                                   ddp_bucket_cap_mb = a.ddp_bucket_cap_mb or 25}
local result = trainer:fit()
print(string.format("tokens_per_second %.1f ranks %d", result.tokens_per_second, lm.world_size()))
