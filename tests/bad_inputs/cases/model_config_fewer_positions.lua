-- expect: tensor 'transformer.wpe.weight' has shape [32, 16], expected [24, 16]
-- a config a little smaller than the weights: every shape is compared (from
-- the header) before any data is read
local dir = dofile("tests/bad_inputs/saved_model.lua")
local files = dofile("tests/bad_inputs/model_files.lua")
files.edit(dir .. "/config.json", '"n_positions": 32', '"n_positions": 24')
lm.load_model(dir, {device = "cpu"})
