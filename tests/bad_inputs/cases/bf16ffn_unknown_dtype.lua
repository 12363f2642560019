-- expect: architecture 'gpt2': activation_dtype 'fp16' is unknown: use auto (bf16 on CUDA with precision=bf16, else fp32), fp32 or bf16 (the feed-forward and attention blocks' activations stored in bfloat16: half their memory)
lm.architecture("gpt2", {n_layer = 1, n_head = 2, n_embd = 32, n_positions = 16, vocab_size = 300, device = "cpu",
                         activation_dtype = "fp16"})
