-- expect: model.safetensors does not match its checksum
-- absent: {tmp}/resumed
local dir, resume = dofile("tests/bad_inputs/model_checkpoint.lua")
local files = dofile("tests/bad_inputs/model_files.lua")
-- the weights of another checkpoint of the same run: valid, but not this one
files.write(dir .. "/model.safetensors", files.read(args.tmp .. "/ck/checkpoint-4/model.safetensors"))
resume(dir)
