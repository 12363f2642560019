-- expect: model.safetensors
local dir = dofile("tests/bad_inputs/saved_model.lua")
local data = assert(io.open(dir .. "/model.safetensors", "rb")):read("a")
local f = assert(io.open(dir .. "/model.safetensors", "wb")); f:write(data:sub(1, #data - 100)); f:close()
lm.load_model(dir, {device = "cpu"})
