-- Trains a tiny GPT-2 for 4 steps with checkpoints every 2 and the test
-- logger: the trainer must ask it to flush after each checkpoint and at the
-- end of the run.
local text = {}
for i = 1, 200 do text[#text + 1] = string.format("line %d of a small text about flushing logs", i) end
local path = args.out .. ".txt"
local f = assert(io.open(path, "w"))
f:write(table.concat(text, "\n"), "\n")
f:close()
local ds <close> = lm.dataset("text", {train = path})
local tok <close> = lm.tokenizer("bpe", {vocab_size = 280, min_frequency = 1})
tok:train(ds, "train")
local b <close> = lm.blocks(tok, ds, "train", {block_size = 16})
local m <close> = lm.architecture("gpt2", {vocab_size = 280, n_layer = 1, n_embd = 16, n_head = 2, n_positions = 16,
                                          device = "cpu", threads = 1})
m:init(1)
local o <close> = lm.objective("clm")
local log <close> = lm.logger("test_logger", {path = args.out})
local t <close> = lm.trainer{model = m, objective = o, tokenizer = tok, train = b, loggers = {log}, max_steps = 4,
                             batch_size = 2, checkpoint_dir = args.out .. ".ckpt", save_every = 2, keep_last = 1,
                             log_every = 2}
t:fit()
