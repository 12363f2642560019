-- expect: "cursor" is 99999, but 2 steps into an epoch the run has taken 16 blocks
-- absent: {tmp}/resumed
local dir, resume = dofile("tests/bad_inputs/model_checkpoint.lua")
local files = dofile("tests/bad_inputs/model_files.lua")
os.remove(dir .. "/checksums.json")
files.edit(dir .. "/trainer_state.json", "\"cursor\": 16", "\"cursor\": 99999")
resume(dir)
