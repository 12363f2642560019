-- expect: unknown option 'temprature'
-- once ignored: sampling at temperature 1 instead of greedy decoding
local m <close> = lm.architecture("gpt2", {vocab_size = 50, n_layer = 1, n_embd = 16, n_head = 2, n_positions = 16, device = "cpu"})
m:init(1)
m:generate({1, 2}, {temprature = 0})
