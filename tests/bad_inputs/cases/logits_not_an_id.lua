-- expect: token 2 of the sequence is not an id of this model's vocabulary (0..49)
local m <close> = lm.architecture("gpt2", {vocab_size = 50, n_layer = 1, n_embd = 16, n_head = 2, n_positions = 16, device = "cpu"})
m:init(1)
m:logits({1, 2.5}, 1) -- 2.5 once became id 2 silently
