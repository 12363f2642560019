-- expect: prompts.txt' is a FIFO (named pipe), not a regular file
-- io.lines and io.input on a FIFO: refused (io.open returns nil, message).
local fifo = args.tmp .. "/prompts.txt"
assert(os.execute("mkfifo " .. fifo))
local f, why = io.open(fifo)
assert(f == nil and why:find("FIFO", 1, true))
assert(not pcall(io.input, fifo))
for line in io.lines(fifo) do print(line) end
