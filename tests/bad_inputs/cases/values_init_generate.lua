-- expect: model:generate: the gpt2 model's weights were never set (they are all zero): call model:init(seed) for new weights or model:load(dir) for saved ones first
-- once generated from all-zero weights with exit 0
local m <close> = lm.architecture("gpt2", {vocab_size = 50, n_layer = 1, n_embd = 16, n_head = 2, n_positions = 16, device = "cpu"})
m:generate({1, 2}, {max_new_tokens = 2})
