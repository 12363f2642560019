-- expect: unknown tokenizer plugin 'bpee'
lm.tokenizer("bpee", {})
