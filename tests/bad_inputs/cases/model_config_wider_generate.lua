-- expect: config.json does not match these weights
-- run: {exe} run {case} data={data} tmp={tmp} > /dev/null && {exe} run scripts/generate.lua model={tmp}/model max_new_tokens=3
local dir = dofile("tests/bad_inputs/saved_model.lua")
local files = dofile("tests/bad_inputs/model_files.lua")
files.edit(dir .. "/config.json", '"n_embd": 16', '"n_embd": 4096')
files.edit(dir .. "/config.json", '"n_head": 2', '"n_head": 32')
