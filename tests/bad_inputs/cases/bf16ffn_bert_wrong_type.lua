-- expect: activation_dtype
lm.architecture("bert", {num_hidden_layers = 1, vocab_size = 300, hidden_size = 32, num_attention_heads = 4,
                         intermediate_size = 64, device = "cpu", activation_dtype = true})
