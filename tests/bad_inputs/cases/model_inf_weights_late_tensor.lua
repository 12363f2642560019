-- expect: tensor 'transformer.ln_f.bias' holds a non-finite value (+infinity at index 15)
-- absent: {tmp}/copy
local dir = dofile("tests/bad_inputs/saved_model.lua")
local files = dofile("tests/bad_inputs/model_files.lua")
-- the last element of the last tensor: the check covers every value
files.poke_float(dir .. "/model.safetensors", "transformer.ln_f.bias", 15, math.huge)
local m <close> = lm.load_model(dir, {device = "cpu"})
m:save(args.tmp .. "/copy")
