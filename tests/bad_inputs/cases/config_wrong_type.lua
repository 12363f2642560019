-- expect: config key 'n_layer' for architecture 'gpt2' must be an integer, got 'two'
lm.architecture("gpt2", {n_layer = "two", vocab_size = 100, n_embd = 16, n_head = 2, device = "cpu"})
