-- expect: attn_implementation 'flash_attention_2' is not available: lmcore's fused attention
lm.architecture("bert", {num_hidden_layers = 1, vocab_size = 100, hidden_size = 32, num_attention_heads = 4,
                         device = "cpu", attn_implementation = "flash_attention_2"})
