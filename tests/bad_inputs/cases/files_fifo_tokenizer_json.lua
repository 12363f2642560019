-- expect: tokenizer.json' is a FIFO (named pipe), not a regular file
local fifo = args.tmp .. "/tokenizer.json"
assert(os.execute("mkfifo " .. fifo))
lm.tokenizer("bpe", {path = fifo})
