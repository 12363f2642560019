-- expect: trainer_state.json does not match its checksum in checksums.json
-- absent: {tmp}/resumed
local dir, resume = dofile("tests/bad_inputs/model_checkpoint.lua")
local files = dofile("tests/bad_inputs/model_files.lua")
-- a consistent edit of the state (a later step) is still caught by its checksum
files.edit(dir .. "/trainer_state.json", "\"last_log_step\": 0", "\"last_log_step\": 1")
resume(dir)
