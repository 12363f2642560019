-- expect: model:save: unknown option 'tokeniser' (known: tokenizer, args_json): did you mean 'tokenizer'?
-- absent: {tmp}/saved
local m <close> = lm.architecture("gpt2", {vocab_size = 50, n_layer = 1, n_embd = 16, n_head = 2, n_positions = 16, device = "cpu"})
m:init(1)
m:save(args.tmp .. "/saved", {tokeniser = "x"})
