-- expect: lmcore: error: model:logits: position must be an integer between 1 and 2 (the sequence's length), got 1.5
local m <close> = lm.architecture("gpt2", {vocab_size = 50, n_layer = 1, n_embd = 16, n_head = 2, n_positions = 16, device = "cpu"})
m:init(1)
m:logits({1, 2}, 1.5)
