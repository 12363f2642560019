-- expect: model.safetensors
local dir = dofile("tests/bad_inputs/saved_model.lua")
local data = assert(io.open(dir .. "/model.safetensors", "rb")):read("a")
data = data:gsub('"F32"', '"Q32"', 1)
local f = assert(io.open(dir .. "/model.safetensors", "wb")); f:write(data); f:close()
lm.load_model(dir, {device = "cpu"})
