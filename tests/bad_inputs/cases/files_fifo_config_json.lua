-- expect: config.json' is a FIFO (named pipe), not a regular file
local dir = dofile("tests/bad_inputs/saved_model.lua")
assert(os.remove(dir .. "/config.json"))
assert(os.execute("mkfifo " .. dir .. "/config.json"))
lm.load_model(dir, {device = "cpu"})
