-- expect: tensor 'transformer.wpe.weight' holds a non-finite value (-infinity at index 3)
local dir = dofile("tests/bad_inputs/saved_model.lua")
local files = dofile("tests/bad_inputs/model_files.lua")
files.poke_float(dir .. "/model.safetensors", "transformer.wpe.weight", 3, -math.huge)
local m <close> = lm.architecture("gpt2", {n_layer = 1, vocab_size = 300, n_embd = 16, n_head = 2, n_positions = 32,
                                          device = "cpu", threads = 1})
m:load(dir)
