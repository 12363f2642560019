-- The side-by-side table of the reference report's section 6.2 for any
-- set of runs (folders written by gpt2_clm.lua / bert_mlm.lua).
--   lmcore run scripts/compare_runs.lua runs="runs/gpt2_clm runs/bert_mlm" [out=comparison.md]
local list = args.runs or error('pass runs="DIR1 DIR2 ..."', 0)
local rows = {}
for dir in list:gmatch("%S+") do
  local f = io.open(dir .. "/results.json", "r")
  if not f then error(dir .. "/results.json not found: is it a folder written by gpt2_clm.lua or bert_mlm.lua?", 0) end
  local r = lm.json_decode(f:read("a"), dir .. "/results.json")
  f:close()
  r.dir = dir
  rows[#rows + 1] = r
end
local lines = {
  "| Model | Architecture | Objective | Validation loss | Perplexity | Steps | Runtime | Data (train / eval) | Run |",
  "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | --- |",
}
for _, r in ipairs(rows) do
  lines[#lines + 1] = string.format("| %s | %s | %s | %.4f | %.2f | %d | %.0f s | %s / %s | %s |", r.model,
    r.architecture, string.upper(r.objective), r.eval_loss, r.perplexity, r.steps, r.runtime_seconds,
    r.train_split, r.eval_split, r.dir)
end
local text = table.concat(lines, "\n") .. "\n"
io.write(text)
if args.out then
  local f = assert(io.open(args.out, "w"))
  f:write(text)
  f:close()
end
