-- expect: the tokenizer has 600 tokens but the model's vocab_size is 400
-- run: {exe} run {case} data={data} tmp={tmp} > /dev/null && {exe} run scripts/fill_mask.lua model={tmp}/bert "text=the [MASK] ."
local ds <close> = lm.dataset("wikitext", {path = args.data})
local small <close> = lm.tokenizer("wordpiece", {vocab_size = 400})
small:train(ds, "validation")
local m <close> = lm.architecture("bert", {num_hidden_layers = 1, vocab_size = 400, hidden_size = 16,
                                          num_attention_heads = 2, intermediate_size = 32,
                                          max_position_embeddings = 16, device = "cpu", threads = 1})
m:init(1)
local large <close> = lm.tokenizer("wordpiece", {vocab_size = 600})
large:train(ds, "validation")
m:save(args.tmp .. "/bert", {tokenizer = large})
