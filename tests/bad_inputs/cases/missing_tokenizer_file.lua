-- expect: no_tokenizer.json
lm.tokenizer("bpe", {path = args.tmp .. "/no_tokenizer.json"})
