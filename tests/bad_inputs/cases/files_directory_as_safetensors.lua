-- expect: model.safetensors' is a directory, not a regular file
local dir = dofile("tests/bad_inputs/saved_model.lua")
assert(os.remove(dir .. "/model.safetensors"))
assert(os.execute("mkdir " .. dir .. "/model.safetensors"))
lm.load_model(dir, {device = "cpu"})
