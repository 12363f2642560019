-- expect: n_head
lm.architecture("gpt2", {n_layer = 1, vocab_size = 100, n_embd = 30, n_head = 4, device = "cpu"})
