-- Trains a small GPT-2 on the text column of two CSV files, through the
-- 'csv' dataset plugin built outside lmcore (docs/writing-plugins.md):
--   lmcore --plugin-path <dir with lm_dataset_csv.so> run gpt2_clm preset=tiny \
--       dataset=csv dataset.train=train.csv dataset.validation=valid.csv dataset.column=text
-- This script does the same by hand, to show the pieces:
--   lmcore --plugin-path <dir> run train_on_csv.lua train=train.csv validation=valid.csv [steps=20]
local data <close> = lm.dataset("csv", {train = args.train, validation = args.validation})
local tokenizer <close> = lm.tokenizer("bpe", {vocab_size = 400, min_frequency = 1})
tokenizer:train(data, "train")
local opts = {block_size = 32, add_special = false}
local train <close> = lm.blocks(tokenizer, data, "train", opts)
local eval <close> = lm.blocks(tokenizer, data, "validation", opts)
local model <close> = lm.architecture("gpt2", {vocab_size = tokenizer:vocab_size(), n_positions = 32, n_embd = 32,
                                              n_layer = 1, n_head = 2, device = "cpu"})
model:init(1)
local objective <close> = lm.objective("clm")
local trainer <close> = lm.trainer{model = model, objective = objective, tokenizer = tokenizer, train = train,
                                   eval = eval, lr = 3e-3, batch_size = 4, max_steps = args.steps or 20}
local before = trainer:evaluate(eval)
local result = trainer:fit()
print(string.format("csv training: validation loss %.3f -> %.3f", before, result.eval_loss))
assert(result.eval_loss < before, "the validation loss did not fall")
