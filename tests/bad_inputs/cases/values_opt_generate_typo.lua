-- expect: model:generate: unknown option 'max_new_token' (known: max_new_tokens, temperature, top_k, top_p, seed, eos_id, repetition_penalty, no_repeat_ngram_size): did you mean 'max_new_tokens'?
-- once ignored, and 50 tokens were sampled
local m <close> = lm.architecture("gpt2", {vocab_size = 50, n_layer = 1, n_embd = 16, n_head = 2, n_positions = 16, device = "cpu"})
m:init(1)
m:generate({1, 2}, {max_new_token = 3})
