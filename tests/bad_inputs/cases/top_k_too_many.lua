-- expect: model:top_k: top_k must be an integer between 1 and 64, got 100
local m <close> = lm.architecture("gpt2", {vocab_size = 100, n_layer = 1, n_embd = 16, n_head = 2, n_positions = 16, device = "cpu"})
m:init(1)
m:top_k({1, 2}, {1}, 100) -- once returned 64 silently
