-- expect: model.safetensors
local dir = dofile("tests/bad_inputs/saved_model.lua")
local f = assert(io.open(dir .. "/model.safetensors", "wb")); f:write(("\0"):rep(16) .. "not safetensors"); f:close()
lm.load_model(dir, {device = "cpu"})
