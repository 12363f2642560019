-- Shows one block before and after dynamic masking (reference section 5.3).
local dataset <close> = lm.dataset("wikitext", {path = assert(args.data)})
local tokenizer <close> = lm.tokenizer("wordpiece", {vocab_size = 1024})
tokenizer:train(dataset, "test")
local train <close> = lm.blocks(tokenizer, dataset, "test", {block_size = 32})
local model <close> = lm.architecture("bert", {vocab_size = 1024, num_hidden_layers = 1, num_attention_heads = 2,
  hidden_size = 32, intermediate_size = 64, max_position_embeddings = 64, device = "cpu", threads = 1})
model:init(1)
local objective <close> = lm.objective("mlm", {debug_masking = true})
local trainer <close> = lm.trainer{model = model, objective = objective, tokenizer = tokenizer, train = train,
  max_steps = 1, batch_size = 2, eval_every_epoch = false}
trainer:fit()
