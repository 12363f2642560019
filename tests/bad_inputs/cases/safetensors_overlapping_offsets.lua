-- expect: model.safetensors
local dir = dofile("tests/bad_inputs/saved_model.lua")
local data = assert(io.open(dir .. "/model.safetensors", "rb")):read("a")
local n = 0
-- make the second tensor start where the first one does (overlap), same width
data = data:gsub('"data_offsets":%[(%d+),(%d+)%]', function(a, b)
  n = n + 1
  if n == 2 then return string.format('"data_offsets":[%s,%s]', ("0"):rep(#a), b) end
end)
local f = assert(io.open(dir .. "/model.safetensors", "wb")); f:write(data); f:close()
lm.load_model(dir, {device = "cpu"})
