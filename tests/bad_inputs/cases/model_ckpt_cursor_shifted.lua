-- expect: "cursor" is 17, but 2 steps into an epoch the run has taken 16 blocks
-- absent: {tmp}/resumed
local dir, resume = dofile("tests/bad_inputs/model_checkpoint.lua")
local files = dofile("tests/bad_inputs/model_files.lua")
-- in range, but it would silently shift every later batch by one block
os.remove(dir .. "/checksums.json")
files.edit(dir .. "/trainer_state.json", "\"cursor\": 16", "\"cursor\": 17")
resume(dir)
