-- expect: checksums.json has no checksum for optimizer.safetensors
-- absent: {tmp}/resumed
local dir, resume = dofile("tests/bad_inputs/model_checkpoint.lua")
local files = dofile("tests/bad_inputs/model_files.lua")
files.edit(dir .. "/checksums.json", "\"optimizer.safetensors\"", "\"optimizer.bak\"")
resume(dir)
