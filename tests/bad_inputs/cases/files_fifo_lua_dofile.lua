-- expect: settings.lua' is a FIFO (named pipe), not a regular file
-- Lua's own openers (io.open, io.lines, loadfile, dofile) refuse it too.
local fifo = args.tmp .. "/settings.lua"
assert(os.execute("mkfifo " .. fifo))
assert(io.open(fifo, "r") == nil)
assert(loadfile(fifo) == nil)
dofile(fifo)
