-- expect: "global_step" is 9, outside [0, 4] for this run
-- absent: {tmp}/resumed
local dir, resume = dofile("tests/bad_inputs/model_checkpoint.lua")
local files = dofile("tests/bad_inputs/model_files.lua")
-- as an older checkpoint without checksums: the fields are checked one by one
os.remove(dir .. "/checksums.json")
files.edit(dir .. "/trainer_state.json", "\"global_step\": 2", "\"global_step\": 9")
resume(dir)
