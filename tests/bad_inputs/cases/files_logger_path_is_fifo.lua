-- expect: it is a FIFO (named pipe), not a regular file
-- A log file path that is a FIFO would block the first write until a
-- reader came: refused when the logger is made.
local fifo = args.tmp .. "/log.jsonl"
assert(os.execute("mkfifo " .. fifo))
lm.logger("jsonl", {path = fifo})
