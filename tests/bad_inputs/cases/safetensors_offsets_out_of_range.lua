-- expect: model.safetensors
local dir = dofile("tests/bad_inputs/saved_model.lua")
local data = assert(io.open(dir .. "/model.safetensors", "rb")):read("a")
-- push the first data_offsets end far beyond the file, keeping the header length
data = data:gsub('"data_offsets":%[(%d+),(%d+)%]', function(a, b) return string.format('"data_offsets":[%s,%s]', a, ("9"):rep(#b)) end, 1)
local f = assert(io.open(dir .. "/model.safetensors", "wb")); f:write(data); f:close()
lm.load_model(dir, {device = "cpu"})
