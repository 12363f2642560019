-- expect: expected add_special as a boolean or {add_special = boolean}
local tok <close> = lm.tokenizer("bpe", {vocab_size = 260})
tok:encode("hello", "no")
