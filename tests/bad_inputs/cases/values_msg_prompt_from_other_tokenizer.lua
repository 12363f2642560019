-- expect: prompt token 2 is 250, not an id of the model's vocabulary (0..49): the prompt was encoded by a tokenizer that does not match this model (use the tokenizer.json saved beside it)
-- once only "prompt token 2 is 250 ...", which hid the cause: a tokenizer with a larger vocabulary
local m <close> = lm.architecture("gpt2", {vocab_size = 50, n_layer = 1, n_embd = 16, n_head = 2, n_positions = 16, device = "cpu"})
m:init(1)
m:generate({1, 250}, {max_new_tokens = 2})
