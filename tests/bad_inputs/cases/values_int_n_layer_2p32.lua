-- expect: config key 'n_layer' for architecture 'gpt2' must be an integer between 1 and 4096, got 4294967298
-- 2^32 + 2 layers once built (and saved) a 2-layer model
local m <close> = lm.architecture("gpt2", {vocab_size = 50, n_layer = 4294967298, n_embd = 16, n_head = 2, n_positions = 16, device = "cpu"})
