-- expect: optimizer.safetensors does not match its checksum in checksums.json
-- absent: {tmp}/resumed
local dir, resume = dofile("tests/bad_inputs/model_checkpoint.lua")
local files = dofile("tests/bad_inputs/model_files.lua")
local data = files.read(dir .. "/optimizer.safetensors")
files.write(dir .. "/optimizer.safetensors", data:sub(1, #data - 64))
resume(dir)
