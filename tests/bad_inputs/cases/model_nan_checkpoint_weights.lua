-- expect: model.safetensors: tensor 'transformer.h.0.ln_2.weight' holds a non-finite value (NaN at index 2)
-- absent: {tmp}/resumed
local dir, resume = dofile("tests/bad_inputs/model_checkpoint.lua")
local files = dofile("tests/bad_inputs/model_files.lua")
files.poke_float(dir .. "/model.safetensors", "transformer.h.0.ln_2.weight", 2, 0 / 0)
os.remove(dir .. "/checksums.json")
resume(dir)
