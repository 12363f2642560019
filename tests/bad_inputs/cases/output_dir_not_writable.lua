-- expect: /dev/null/out
local dir = dofile("tests/bad_inputs/saved_model.lua")
local m <close> = lm.load_model(dir, {device = "cpu"})
m:save("/dev/null/out")
