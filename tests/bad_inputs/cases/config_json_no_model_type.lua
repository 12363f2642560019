-- expect: model_type
local dir = dofile("tests/bad_inputs/saved_model.lua")
local f = assert(io.open(dir .. "/config.json", "w")); f:write('{"n_layer": 1}'); f:close()
lm.load_model(dir, {device = "cpu"})
