-- expect: "loss_sum_run_bits" is nan, not a loss
-- absent: {tmp}/resumed
local dir, resume = dofile("tests/bad_inputs/model_checkpoint.lua")
local files = dofile("tests/bad_inputs/model_files.lua")
os.remove(dir .. "/checksums.json")
files.edit(dir .. "/trainer_state.json", "\"loss_sum_run_bits\": \"%d+\"", "\"loss_sum_run_bits\": \"9221120237041090560\"")
resume(dir)
