-- expect: "global_step" 3 does not follow from "epoch" 0 and "steps_in_epoch" 2
-- absent: {tmp}/resumed
local dir, resume = dofile("tests/bad_inputs/model_checkpoint.lua")
local files = dofile("tests/bad_inputs/model_files.lua")
os.remove(dir .. "/checksums.json")
files.edit(dir .. "/trainer_state.json", "\"global_step\": 2", "\"global_step\": 3")
files.edit(dir .. "/trainer_state.json", "\"micro_batches\": \"2\"", "\"micro_batches\": \"3\"")
resume(dir)
