-- expect: attn_implementation 'flash' is unknown: use auto (the default), eager
lm.architecture("gpt2", {n_layer = 1, vocab_size = 100, n_embd = 32, n_head = 4, device = "cpu",
                         attn_implementation = "flash"})
