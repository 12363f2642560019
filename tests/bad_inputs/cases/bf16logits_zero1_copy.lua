-- expect: zero_stage=1 keeps fp32 weights only, but this model also keeps a lower-precision copy of them (the built-in models: logits_dtype=bf16 or activation_dtype=bf16, which auto picks on CUDA with precision=bf16): use logits_dtype=fp32 activation_dtype=fp32, or zero_stage=0
local ds <close> = lm.dataset("wikitext", {path = args.data})
local tok <close> = lm.tokenizer("bpe", {vocab_size = 300})
tok:train(ds, "validation")
local b <close> = lm.blocks(tok, ds, "validation", {block_size = 16})
local m <close> = lm.architecture("gpt2", {n_layer = 1, vocab_size = 300, n_embd = 16, n_head = 2, n_positions = 16,
                                          device = "cpu", threads = 1, logits_dtype = "bf16"})
m:init(1)
local o <close> = lm.objective("clm")
local t <close> = lm.trainer{model = m, objective = o, tokenizer = tok, train = b, max_steps = 2, zero_stage = 1}
t:fit()
