-- expect: bad.txt:2
local f = assert(io.open(args.tmp .. "/bad.txt", "wb")); f:write("fine line\nbad \xff\xfe byte\n"); f:close()
local ds <close> = lm.dataset("text", {train = args.tmp .. "/bad.txt"})
ds:row("train", 1)
