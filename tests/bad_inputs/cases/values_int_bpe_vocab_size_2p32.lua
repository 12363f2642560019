-- expect: config key 'vocab_size' for tokenizer 'bpe' must be an integer at most 1073741823, got 4294967596
-- once refused as "too small" (the 256 byte tokens and 1 special token(s) need 257)
lm.tokenizer("bpe", {vocab_size = 4294967296 + 300})
