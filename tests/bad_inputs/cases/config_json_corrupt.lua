-- expect: config.json:1
local dir = dofile("tests/bad_inputs/saved_model.lua")
local f = assert(io.open(dir .. "/config.json", "w")); f:write('{"model_type": "gpt2",'); f:close()
lm.load_model(dir, {device = "cpu"})
