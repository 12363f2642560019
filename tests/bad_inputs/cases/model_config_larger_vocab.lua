-- expect: needs 1608624 parameters (vocab_size 100300): config.json does not match these weights
local dir = dofile("tests/bad_inputs/saved_model.lua")
local files = dofile("tests/bad_inputs/model_files.lua")
files.edit(dir .. "/config.json", '"vocab_size": 300', '"vocab_size": 100300')
lm.load_model(dir, {device = "cpu"})
