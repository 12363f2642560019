-- expect: empty
local f = assert(io.open(args.tmp .. "/empty.txt", "w")); f:close()
local ds <close> = lm.dataset("text", {train = args.tmp .. "/empty.txt"})
local tok <close> = lm.tokenizer("bpe", {vocab_size = 300})
tok:train(ds, "train")
