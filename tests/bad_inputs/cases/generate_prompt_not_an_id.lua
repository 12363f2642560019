-- expect: prompt token 2 is 70, not an id of the model's vocabulary (0..49)
local m <close> = lm.architecture("gpt2", {vocab_size = 50, n_layer = 1, n_embd = 16, n_head = 2, n_positions = 16, device = "cpu"})
m:init(1)
m:generate({1, 70}, {max_new_tokens = 2})
