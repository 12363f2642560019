-- expect: the optimizer state is corrupt: tensor 'transformer.h.0.mlp.c_fc.weight.exp_avg_sq' holds a non-finite value (NaN at index 7)
-- absent: {tmp}/resumed
local dir, resume = dofile("tests/bad_inputs/model_checkpoint.lua")
local files = dofile("tests/bad_inputs/model_files.lua")
files.poke_float(dir .. "/optimizer.safetensors", "transformer.h.0.mlp.c_fc.weight.exp_avg_sq", 7, 0 / 0)
os.remove(dir .. "/checksums.json") -- as an older checkpoint: the tensors' own check applies
resume(dir)
