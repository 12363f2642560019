-- expect: model:generate: prompt item 2 is 4294967298, not a token id of the model's vocabulary (0..49)
-- (int32) 4294967298 is 2: once generated from a prompt the script never gave
local m <close> = lm.architecture("gpt2", {vocab_size = 50, n_layer = 1, n_embd = 16, n_head = 2, n_positions = 16, device = "cpu"})
m:init(1)
m:generate({1, 4294967298}, {max_new_tokens = 2})
