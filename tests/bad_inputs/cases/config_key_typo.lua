-- expect: unknown key 'n_layers' for architecture 'gpt2' (known:
lm.architecture("gpt2", {n_layers = 2, vocab_size = 100, n_embd = 16, n_head = 2, device = "cpu"})
