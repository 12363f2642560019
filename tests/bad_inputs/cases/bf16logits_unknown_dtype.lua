-- expect: architecture 'gpt2': logits_dtype 'fp16' is unknown: use auto (bf16 on CUDA with precision=bf16, else fp32), fp32 or bf16
lm.architecture("gpt2", {n_layer = 1, n_head = 2, n_embd = 32, n_positions = 16, vocab_size = 300, device = "cpu",
                         logits_dtype = "fp16"})
