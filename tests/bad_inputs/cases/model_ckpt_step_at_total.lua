-- expect: the checkpoint is at global_step 4, the last step of this run (total_steps 4): that run is finished and nothing is left to train
-- absent: {tmp}/resumed
local dir, resume = dofile("tests/bad_inputs/model_checkpoint.lua")
local files = dofile("tests/bad_inputs/model_files.lua")
os.remove(dir .. "/checksums.json")
-- a consistent state of the run's last step: resuming it used to train nothing and report perplexity NaN, exit 0
for _, edit in ipairs{{'global_step": 2', 'global_step": 4'}, {'steps_in_epoch": 2', 'steps_in_epoch": 4'},
                      {'cursor": 16', 'cursor": 32'}, {'micro_batches": "2"', 'micro_batches": "4"'}} do
  files.edit(dir .. "/trainer_state.json", edit[1], edit[2])
end
resume(dir)
