-- expect: unknown architecture plugin 'llama'
local dir = dofile("tests/bad_inputs/saved_model.lua")
local f = assert(io.open(dir .. "/config.json", "w")); f:write('{"model_type": "llama"}'); f:close()
lm.load_model(dir, {device = "cpu"})
