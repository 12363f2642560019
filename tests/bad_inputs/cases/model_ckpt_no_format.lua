-- expect: "format" is missing or not a string
-- absent: {tmp}/resumed
local dir, resume = dofile("tests/bad_inputs/model_checkpoint.lua")
local files = dofile("tests/bad_inputs/model_files.lua")
os.remove(dir .. "/checksums.json")
files.edit(dir .. "/trainer_state.json", "\"format\": \"lmcore%-trainer%-state%-2\",", "")
resume(dir)
