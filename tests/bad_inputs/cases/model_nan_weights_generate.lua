-- expect: holds a non-finite value (NaN at index 0): the weights are damaged
-- run: {exe} run {case} data={data} tmp={tmp} > /dev/null && {exe} run scripts/generate.lua model={tmp}/model max_new_tokens=3
local dir = dofile("tests/bad_inputs/saved_model.lua")
local files = dofile("tests/bad_inputs/model_files.lua")
files.poke_float(dir .. "/model.safetensors", "transformer.h.0.attn.c_attn.weight", 0, 0 / 0)
