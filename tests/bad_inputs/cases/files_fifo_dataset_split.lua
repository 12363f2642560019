-- expect: is a FIFO (named pipe), not a regular file
-- A named pipe given as a dataset split: refused at once, never waited on.
local fifo = args.tmp .. "/train.txt"
assert(os.execute("mkfifo " .. fifo))
local ds <close> = lm.dataset("text", {train = fifo})
local tok <close> = lm.tokenizer("bpe", {vocab_size = 300})
tok:train(ds, "train")
