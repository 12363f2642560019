-- expect: shape
local dir = dofile("tests/bad_inputs/saved_model.lua")
-- config.json says 24 wide, the weights are 16 wide
local cfg = assert(io.open(dir .. "/config.json")):read("a"):gsub('"n_embd": 16', '"n_embd": 24')
local f = assert(io.open(dir .. "/config.json", "w")); f:write(cfg); f:close()
lm.load_model(dir, {device = "cpu"})
