-- expect: the checkpoint is at global_step 4, the last step of this run (total_steps 4): that run is finished and nothing is left to train
-- absent: {tmp}/resumed
local dir, resume = dofile("tests/bad_inputs/model_checkpoint.lua")
local files = dofile("tests/bad_inputs/model_files.lua")
os.remove(dir .. "/checksums.json")
files.edit(dir .. "/trainer_state.json", "\"global_step\": 2", "\"global_step\": 4")
resume(dir)
