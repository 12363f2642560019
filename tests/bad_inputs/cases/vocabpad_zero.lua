-- expect: pad_vocab_to_multiple_of must be auto (128 on CUDA, 1 on the CPU) or an integer from 1 to 65536 (the vocabulary is padded inside the model to a multiple of it), got '0'
lm.architecture("gpt2", {n_layer = 1, n_head = 2, n_embd = 32, n_positions = 16, vocab_size = 300, device = "cpu",
                         pad_vocab_to_multiple_of = 0})
