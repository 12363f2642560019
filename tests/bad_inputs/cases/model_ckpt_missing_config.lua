-- expect: config.json is missing (checksums.json lists it)
-- absent: {tmp}/resumed
local dir, resume = dofile("tests/bad_inputs/model_checkpoint.lua")
local files = dofile("tests/bad_inputs/model_files.lua")
os.remove(dir .. "/config.json")
resume(dir)
