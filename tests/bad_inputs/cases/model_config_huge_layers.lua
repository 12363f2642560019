-- expect: holds 8624 values but the model described by config.json needs
-- absent: {tmp}/copy
-- a 48-layer, 2048-wide config (2.4 billion parameters, 9.7 GB) beside the
-- weights of a tiny model: refused from the file's header, before the model
-- allocates anything (it used to fail "out of host memory").
local dir = dofile("tests/bad_inputs/saved_model.lua")
local files = dofile("tests/bad_inputs/model_files.lua")
files.edit(dir .. "/config.json", '"n_layer": 1', '"n_layer": 48')
files.edit(dir .. "/config.json", '"n_embd": 16', '"n_embd": 2048')
files.edit(dir .. "/config.json", '"n_head": 2', '"n_head": 16')
local m <close> = lm.load_model(dir, {device = "cpu"})
m:save(args.tmp .. "/copy")
