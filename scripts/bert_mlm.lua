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

local opt = options.option
local model_section = "model (BERT's config.json names)"
local spec = {
  script = "bert_mlm.lua", model_type = "bert",
  summary = "BERT trained from scratch with masked language modelling (default: the reference recipe, "
    .. "bert-base-cased's shape\non WikiText-2; preset=small trains in minutes on a CPU).",
  options = pipeline.common_options("bert_mlm"),
  presets = {
    small = {tokenizer_vocab_size = 8192, num_hidden_layers = 2, num_attention_heads = 2, hidden_size = 128,
             intermediate_size = 512, max_position_embeddings = 256, num_train_epochs = 1, learning_rate = 1e-3,
             warmup_steps = 20, logging_steps = 20},
    tiny = {tokenizer_vocab_size = 2048, num_hidden_layers = 1, num_attention_heads = 2, hidden_size = 64,
            intermediate_size = 128, max_position_embeddings = 128, num_train_epochs = 1, max_steps = 30,
            learning_rate = 1e-3, eval_max_batches = 8, logging_steps = 10},
  },
}
for _, o in ipairs{
  opt("tokenizer_vocab_size", 28996, "the WordPiece tokenizer's vocabulary", {section = model_section, min = 16}),
  opt("num_hidden_layers", 12, "transformer layers", {section = model_section, model = true, min = 1}),
  opt("num_attention_heads", 12, "attention heads (hidden_size must be a multiple)", {section = model_section,
      model = true,
      min = 1}),
  opt("hidden_size", 768, "hidden width", {section = model_section, model = true, min = 1}),
  opt("intermediate_size", 3072, "the feed-forward layer's width", {section = model_section, model = true, min = 1}),
  opt("max_position_embeddings", 512, "positions (block_size at most)", {section = model_section, model = true,
      min = 1}),
  opt("dropout", 0.1, "hidden and attention-probability dropout", {section = model_section, type = "number", min = 0,
      max = 1}),
  opt("mlm_probability", 0.15, "the share of tokens chosen for masking", {section = model_section,
      type = "number", above = 0, max = 1}),
  opt("debug_masking", false, "show one block before and after masking, then train", {section = model_section}),
} do spec.options[#spec.options + 1] = o end
local cfg = pipeline.parse(spec, args)
if not cfg then return end

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
      profile_ops = c.profile_ops, recompute = c.recompute, attn_implementation = c.attn_implementation,
      pad_vocab_to_multiple_of = c.pad_vocab_to_multiple_of, logits_dtype = c.logits_dtype,
      activation_dtype = c.activation_dtype,
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
    return string.format("BERT (%d layer%s, %d head%s, %d wide, FFN %d)", c.num_hidden_layers,
                         c.num_hidden_layers == 1 and "" or "s", c.num_attention_heads,
                         c.num_attention_heads == 1 and "" or "s", c.hidden_size, c.intermediate_size)
  end,
}
