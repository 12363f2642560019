-- Part A of the reference experiment: GPT-2 trained from scratch with
-- causal language modelling on WikiText-2.
--
--   lmcore run scripts/gpt2_clm.lua                      # the reference recipe
--   lmcore run scripts/gpt2_clm.lua preset=small         # a few minutes on a CPU
--   lmcore run scripts/gpt2_clm.lua data=../shared/data/wikitext-2-raw \
--        train_split=test eval_split=validation n_layer=2 n_embd=128 epochs=1
--
-- The reference recipe: a byte-level BPE tokenizer trained on the train
-- split, GPT-2 124M (12 layers, 12 heads, 768 wide, 1024 positions), blocks
-- of 128 tokens, batch 8, AdamW lr 2e-5 weight decay 0.01, 3 epochs, an
-- evaluation after each epoch, perplexity = exp(validation loss).
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/lib/?.lua;" .. package.path
local options = require("options")

local defaults = {
  data = options.first_existing({"data/wikitext-2-raw", "../shared/data/wikitext-2-raw"}, "wiki.train.raw"),
  train_split = "train", eval_split = "validation",
  tokenizer = "",            -- a tokenizer.json to reuse instead of training one
  tokenizer_vocab_size = 50257, min_frequency = 2,
  vocab_size = 0,            -- model vocabulary; 0 = the tokenizer's size
  n_layer = 12, n_head = 12, n_embd = 768, n_positions = 1024,
  dropout = 0.1,
  block_size = 128, group_lines = 0,
  epochs = 3, max_steps = -1, batch_size = 8, grad_accum = 1,
  lr = 2e-5, weight_decay = 0.01, warmup_steps = 0, max_grad_norm = 1.0,
  seed = 42, device = "auto", precision = "fp32", threads = 0,
  eval_max_batches = 0, log_every = 50,
  output_dir = "runs/gpt2_clm", cache_dir = "runs/cache",
}
-- small: a model that trains on two CPU cores in a few minutes and shows the
-- validation loss falling (a higher learning rate than the reference: with
-- 2e-5 a tiny model barely moves in one epoch).
local presets = {
  small = {tokenizer_vocab_size = 8192, n_layer = 2, n_head = 2, n_embd = 128, n_positions = 256,
           epochs = 1, lr = 1e-3, warmup_steps = 20, log_every = 20},
  tiny = {tokenizer_vocab_size = 2048, n_layer = 1, n_head = 2, n_embd = 64, n_positions = 128,
          epochs = 1, max_steps = 30, lr = 1e-3, eval_max_batches = 8, log_every = 10},
}
local cfg = options.merge(defaults, args, presets)

local console <close> = lm.logger("console", {every = cfg.log_every})
local jsonl <close> = lm.logger("jsonl", {path = cfg.output_dir .. ".log.jsonl", every = cfg.log_every})

local dataset <close> = lm.dataset("wikitext", {path = cfg.data})
console:message(string.format("data: %s (training on '%s', evaluating on '%s')", cfg.data, cfg.train_split,
                              cfg.eval_split))

local tokenizer
if cfg.tokenizer ~= "" then
  tokenizer = lm.tokenizer("bpe", {path = cfg.tokenizer})
else
  tokenizer = lm.tokenizer("bpe", {vocab_size = cfg.tokenizer_vocab_size, min_frequency = cfg.min_frequency,
                                   special_tokens = {"<|endoftext|>"}})
  tokenizer:train(dataset, cfg.train_split)
end
local vocab = tokenizer:info()
console:message(string.format("tokenizer: byte-level BPE, %d tokens", vocab.vocab_size))

local blocks_opts = {block_size = cfg.block_size, group_lines = cfg.group_lines, add_special = false,
                     cache_dir = cfg.cache_dir}
local train = lm.blocks(tokenizer, dataset, cfg.train_split, blocks_opts)
local eval = lm.blocks(tokenizer, dataset, cfg.eval_split, blocks_opts)
console:message(string.format("blocks: %d for training, %d for evaluation (%d tokens each)", train:count(),
                              eval:count(), cfg.block_size))

local model <close> = lm.architecture("gpt2", {
  vocab_size = cfg.vocab_size > 0 and cfg.vocab_size or vocab.vocab_size,
  n_layer = cfg.n_layer, n_head = cfg.n_head, n_embd = cfg.n_embd, n_positions = cfg.n_positions,
  embd_pdrop = cfg.dropout, attn_pdrop = cfg.dropout, resid_pdrop = cfg.dropout,
  bos_token_id = vocab.bos_id, eos_token_id = vocab.eos_id,
  device = cfg.device, precision = cfg.precision, threads = cfg.threads,
})
model:init(cfg.seed)
local info = model:info()
console:message(string.format("model: GPT-2, %d layers, %d heads, %d wide, %.1fM parameters, on %s",
                              cfg.n_layer, cfg.n_head, cfg.n_embd, info.n_params / 1e6, info.device))

local objective <close> = lm.objective("clm")
local trainer <close> = lm.trainer{
  model = model, objective = objective, tokenizer = tokenizer, train = train, eval = eval,
  loggers = {console, jsonl},
  lr = cfg.lr, weight_decay = cfg.weight_decay, epochs = cfg.epochs, max_steps = cfg.max_steps,
  batch_size = cfg.batch_size, grad_accum = cfg.grad_accum, warmup_steps = cfg.warmup_steps,
  max_grad_norm = cfg.max_grad_norm, seed = cfg.seed, eval_max_batches = cfg.eval_max_batches,
  log_every = cfg.log_every,
}
local result = trainer:fit()
model:save(cfg.output_dir, {tokenizer = tokenizer, args_json = trainer:args_json()})
print(string.format("Perplexity: %.2f (validation loss %.4f on '%s')", result.perplexity, result.eval_loss,
                    cfg.eval_split))
print(string.format("saved model.safetensors, config.json and tokenizer.json to %s", cfg.output_dir))
tokenizer:close()
