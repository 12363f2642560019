-- Part B of the reference experiment: BERT trained from scratch with masked
-- language modelling (dynamic 15 % masking, redrawn for every batch).
--
--   lmcore run scripts/bert_mlm.lua                      # the reference recipe
--   lmcore run scripts/bert_mlm.lua preset=small         # a few minutes on a CPU
--   lmcore run scripts/bert_mlm.lua debug_masking=true   # show one block before/after masking
--
-- The reference recipe: a cased WordPiece tokenizer trained on the train
-- split, bert-base-cased's shape (12 layers, 768 wide, 12 heads, FFN 3072,
-- 512 positions) with the tokenizer's vocabulary, blocks of 128 tokens
-- ([CLS] ... [SEP] around every line before grouping), batch 8, AdamW lr 2e-5
-- weight decay 0.01, 3 epochs, perplexity = exp(validation loss).
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/lib/?.lua;" .. package.path
local options = require("options")
local pipeline = require("pipeline")

local defaults = pipeline.common_defaults("bert_mlm")
defaults.tokenizer_vocab_size = 28996
defaults.num_hidden_layers, defaults.num_attention_heads, defaults.hidden_size = 12, 12, 768
defaults.intermediate_size, defaults.max_position_embeddings = 3072, 512
defaults.dropout = 0.1
defaults.mlm_probability = 0.15
defaults.debug_masking = false
local presets = {
  small = {tokenizer_vocab_size = 8192, num_hidden_layers = 2, num_attention_heads = 2, hidden_size = 128,
           intermediate_size = 512, max_position_embeddings = 256, epochs = 1, lr = 1e-3, warmup_steps = 20,
           log_every = 20},
  tiny = {tokenizer_vocab_size = 2048, num_hidden_layers = 1, num_attention_heads = 2, hidden_size = 64,
          intermediate_size = 128, max_position_embeddings = 128, epochs = 1, max_steps = 30, lr = 1e-3,
          eval_max_batches = 8, log_every = 10},
}
local cfg = options.merge(defaults, args, presets)

pipeline.run{
  name = "BERT", cfg = cfg, add_special = true,
  tokenizer = {plugin = "wordpiece", settings = {vocab_size = cfg.tokenizer_vocab_size,
                                                 min_frequency = cfg.min_frequency}},
  architecture = function(c, vocab)
    return "bert", {
      vocab_size = c.vocab_size > 0 and c.vocab_size or vocab.vocab_size,
      num_hidden_layers = c.num_hidden_layers, num_attention_heads = c.num_attention_heads,
      hidden_size = c.hidden_size, intermediate_size = c.intermediate_size,
      max_position_embeddings = c.max_position_embeddings,
      hidden_dropout_prob = c.dropout, attention_probs_dropout_prob = c.dropout,
      pad_token_id = vocab.pad_id or 0,
      device = c.device, precision = c.precision, threads = c.threads,
      profile_ops = c.profile_ops, recompute = c.recompute,
    }
  end,
  objective = {plugin = "mlm", settings = {mlm_probability = cfg.mlm_probability, seed = cfg.seed}},
  -- debug_masking=true: one block as text, then as the model sees it after
  -- dynamic masking (the reference report's section 5.3).
  before_fit = cfg.debug_masking and function(run)
    local block = run.train:get(0)
    local masked = run.objective:batch(run.model, run.tokenizer, run.train, 0)
    print("block 0 of the training blocks, as text:")
    print("  " .. run.tokenizer:decode(block, true))
    print(string.format("the same block as the model sees it in batch 0 (%d of %d tokens chosen):",
                        masked.n_targets, #block))
    print("  " .. run.tokenizer:decode(masked.input_ids, false):gsub("%[PAD%]", ""))
    local changes = {}
    for i, label in ipairs(masked.labels) do
      if label ~= -100 then
        local seen = run.tokenizer:id_to_token(masked.input_ids[i])
        local truth = run.tokenizer:id_to_token(label)
        changes[#changes + 1] = string.format("%d: %s -> %s", i, truth, seen == truth and "(kept)" or seen)
      end
    end
    print("  chosen positions (original -> input): " .. table.concat(changes, ", "))
  end or nil,
  describe = function(c)
    return string.format("BERT (%d layers, %d heads, %d wide, FFN %d)", c.num_hidden_layers,
                         c.num_attention_heads, c.hidden_size, c.intermediate_size)
  end,
}
