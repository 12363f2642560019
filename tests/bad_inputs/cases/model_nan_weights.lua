-- expect: tensor 'transformer.wte.weight' holds a non-finite value (NaN at index 5)
-- absent: {tmp}/copy
local dir = dofile("tests/bad_inputs/saved_model.lua")
local files = dofile("tests/bad_inputs/model_files.lua")
files.poke_float(dir .. "/model.safetensors", "transformer.wte.weight", 5, 0 / 0)
local m <close> = lm.load_model(dir, {device = "cpu"})
m:save(args.tmp .. "/copy")
