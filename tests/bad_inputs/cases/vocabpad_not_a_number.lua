-- expect: pad_vocab_to_multiple_of must be auto (128 on CUDA, 1 on the CPU) or an integer from 1 to 65536 (the vocabulary is padded inside the model to a multiple of it), got 'x128'
lm.architecture("bert", {num_hidden_layers = 1, vocab_size = 300, hidden_size = 32, num_attention_heads = 4,
                         intermediate_size = 64, device = "cpu", pad_vocab_to_multiple_of = "x128"})
