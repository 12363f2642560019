-- expect: model:save: the gpt2 model's weights were never set
-- once saved a model.safetensors of zeros
-- absent: {tmp}/saved
local m <close> = lm.architecture("gpt2", {vocab_size = 50, n_layer = 1, n_embd = 16, n_head = 2, n_positions = 16, device = "cpu"})
m:save(args.tmp .. "/saved")
