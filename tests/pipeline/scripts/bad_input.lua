-- One bad input per `case`; each must fail with a clear message (checked by
-- test_pipeline.c through the CLI's exit code and stderr).
local case = assert(args.case, "case=NAME")
local data = assert(args.data, "data=DIR")
local dataset <close> = lm.dataset("wikitext", {path = data})
local tokenizer <close> = lm.tokenizer("bpe", {vocab_size = 512})
tokenizer:train(dataset, "test")
local vocab = tokenizer:info()
local block = case == "block_size" and 128 or 32
local train <close> = lm.blocks(tokenizer, dataset, "test", {block_size = block, add_special = false})

local settings = {vocab_size = vocab.vocab_size, n_layer = 1, n_head = 2, n_embd = 16, n_positions = 64,
                  device = "cpu", threads = 1}
if case == "key_typo" then settings.n_layers = 2 end
if case == "small_vocab" then settings.vocab_size = 300 end
local model <close> = lm.architecture("gpt2", settings)
model:init(1)
local objective <close> = lm.objective("clm")
local batch = case == "big_batch" and 1000000 or 4
local lr = case == "nan" and 1e30 or 1e-3
local trainer <close> = lm.trainer{model = model, objective = objective, tokenizer = tokenizer, train = train,
  max_steps = 6, batch_size = batch, lr = lr, max_grad_norm = 0, eval_every_epoch = false}
trainer:fit()
print("no error for case " .. case)
