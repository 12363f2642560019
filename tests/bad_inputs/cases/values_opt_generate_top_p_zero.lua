-- expect: model:generate: option 'top_p' must be above 0 (at most 1), got 0
local m <close> = lm.architecture("gpt2", {vocab_size = 50, n_layer = 1, n_embd = 16, n_head = 2, n_positions = 16, device = "cpu"})
m:init(1)
m:generate({1, 2}, {max_new_tokens = 2, top_p = 0})
