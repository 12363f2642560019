-- expect: lmcore: error: tokenizer:id_to_token: the id must be an integer between 0 and 2147483647, got 4294967298
-- (int32) 4294967298 is 2: once returned the token of id 2
local ds <close> = lm.dataset("wikitext", {path = args.data})
local tok <close> = lm.tokenizer("bpe", {vocab_size = 300})
tok:train(ds, "validation")
print(tok:id_to_token(4294967298))
