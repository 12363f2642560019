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
local pipeline = require("pipeline")

local opt = options.option
local model_section = "model (GPT-2's config.json names)"
local spec = {
  script = "gpt2_clm.lua", model_type = "gpt2",
  summary = "GPT-2 trained from scratch with causal language modelling (default: the reference recipe, GPT-2 "
    .. "124M on WikiText-2;\npreset=small trains in minutes on a CPU).",
  options = pipeline.common_options("gpt2_clm"),
  -- small: trains on two CPU cores in a few minutes and shows the validation
  -- loss falling (a higher learning rate than the reference: with 2e-5 a tiny
  -- model barely moves in one epoch).  tiny: a smoke test for CI.
  presets = {
    small = {tokenizer_vocab_size = 8192, n_layer = 2, n_head = 2, n_embd = 128, n_positions = 256,
             num_train_epochs = 1, learning_rate = 1e-3, warmup_steps = 20, logging_steps = 20},
    tiny = {tokenizer_vocab_size = 2048, n_layer = 1, n_head = 2, n_embd = 64, n_positions = 128,
            num_train_epochs = 1, max_steps = 30, learning_rate = 1e-3, eval_max_batches = 8, logging_steps = 10},
  },
}
for _, o in ipairs{
  opt("tokenizer_vocab_size", 50257, "the byte-level BPE tokenizer's vocabulary", {section = model_section, min = 258}),
  opt("n_layer", 12, "transformer blocks", {section = model_section, model = true, min = 1}),
  opt("n_head", 12, "attention heads (n_embd must be a multiple)", {section = model_section, model = true, min = 1}),
  opt("n_embd", 768, "hidden width", {section = model_section, model = true, min = 1}),
  opt("n_positions", 1024, "positions (block_size at most)", {section = model_section, model = true, min = 1}),
  opt("dropout", 0.1, "dropout of embeddings, attention and residuals", {section = model_section, type = "number",
      min = 0, max = 1}),
  opt("sample_every", 0, "generate a sample from prompt= every N steps (console and report; 0: never)",
      {section = "samples during training", min = 0}),
  opt("prompt", "The", "the text samples continue", {section = "samples during training"}),
  opt("sample_tokens", 30, "tokens per sample", {section = "samples during training", min = 1}),
} do spec.options[#spec.options + 1] = o end
local cfg = pipeline.parse(spec, args)
if not cfg then return end

pipeline.run{
  name = "GPT-2", cfg = cfg, add_special = false,
  tokenizer = {plugin = "bpe", settings = {vocab_size = cfg.tokenizer_vocab_size, min_frequency = cfg.min_frequency,
                                           special_tokens = {"<|endoftext|>"}}},
  architecture = function(c, vocab)
    return "gpt2", {
      vocab_size = c.vocab_size > 0 and c.vocab_size or vocab.vocab_size,
      n_layer = c.n_layer, n_head = c.n_head, n_embd = c.n_embd, n_positions = c.n_positions,
      embd_pdrop = c.dropout, attn_pdrop = c.dropout, resid_pdrop = c.dropout,
      bos_token_id = vocab.bos_id, eos_token_id = vocab.eos_id,
      device = c.device, precision = c.precision, threads = c.threads,
      profile_ops = c.profile_ops, recompute = c.recompute, attn_implementation = c.attn_implementation,
      pad_vocab_to_multiple_of = c.pad_vocab_to_multiple_of, logits_dtype = c.logits_dtype,
      activation_dtype = c.activation_dtype,
    }
  end,
  objective = {plugin = "clm", settings = {}},
  describe = function(c)
    return string.format("GPT-2 (%d layer%s, %d head%s, %d wide)", c.n_layer, c.n_layer == 1 and "" or "s", c.n_head,
                         c.n_head == 1 and "" or "s", c.n_embd)
  end,
}
