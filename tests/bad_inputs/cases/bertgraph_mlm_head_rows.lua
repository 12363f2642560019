-- expect: mlm_head_rows 'bucket' is unknown: use auto (the default: padded on a device that captures CUDA graphs, exact elsewhere), exact or padded
lm.architecture("bert", {num_hidden_layers = 1, vocab_size = 100, hidden_size = 32, num_attention_heads = 4,
                         intermediate_size = 64, device = "cpu", mlm_head_rows = "bucket"})
