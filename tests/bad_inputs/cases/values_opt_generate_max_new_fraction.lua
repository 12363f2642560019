-- expect: model:generate: option 'max_new_tokens' must be an integer between 0 and 1048576, got 2.5
-- 2.5 was once truncated to 2
local m <close> = lm.architecture("gpt2", {vocab_size = 50, n_layer = 1, n_embd = 16, n_head = 2, n_positions = 16, device = "cpu"})
m:init(1)
m:generate({1, 2}, {max_new_tokens = 2.5})
