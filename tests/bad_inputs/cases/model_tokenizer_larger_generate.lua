-- expect: the tokenizer has 400 tokens but the model's vocab_size is 300
-- run: {exe} run {case} data={data} tmp={tmp} > /dev/null && {exe} run scripts/generate.lua model={tmp}/model max_new_tokens=3
-- A larger tokenizer.json beside the model (another run's): refused, not gibberish.
local dir = dofile("tests/bad_inputs/saved_model.lua")
local ds <close> = lm.dataset("wikitext", {path = args.data})
local tok <close> = lm.tokenizer("bpe", {vocab_size = 400})
tok:train(ds, "validation")
tok:save(dir .. "/tokenizer.json")
