-- What the pipeline tells the report logger that training events do not
-- carry: a title naming the run, a note when the data is not the usual
-- split, the model, the data and every hyperparameter (markdown); and, for a
-- resumed run, the log of the run before the resume, so that the report,
-- the plot and log.jsonl cover the whole run.
local M = {}

local function read_all(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return text
end

-- The run folder a resume_from_checkpoint value belongs to: the folder of
-- <run>/checkpoints/checkpoint-N, of <run>/checkpoints, or the run folder
-- itself (resume_from_checkpoint=true: output_dir).
function M.run_folder_of(resume)
  local path = resume:gsub("/+$", "")
  local run = path:match("^(.*)/checkpoints/checkpoint%-%d+$")
  if run then return run end
  run = path:match("^(.*)/checkpoints$")
  if run then return run end
  if path == "checkpoints" then return "." end
  if path:match("^checkpoints/checkpoint%-%d+$") then return "." end
  return path
end

-- The log.jsonl text of the run a resume continues, or nil.  Read before
-- the loggers are created: the jsonl logger starts its file afresh.
function M.history(resume)
  if resume == "" then return nil end
  return read_all(M.run_folder_of(resume) .. "/log.jsonl")
end

-- log.jsonl after a resumed run: the earlier run's lines up to the step
-- the resume went on from, then this run's, so that the file (which
-- compare_runs.lua reads) holds the whole run.
function M.merge_log(path, history, resumed_at)
  if not history or resumed_at <= 0 then return end
  local now = read_all(path)
  if not now then return end
  local kept = {}
  for line in history:gmatch("[^\n]+") do
    local ok, event = pcall(lm.json_decode, line, path)
    if ok and type(event) == "table" and type(event.step) == "number" and event.step <= resumed_at and
       event.event ~= "run_end" then
      kept[#kept + 1] = line
    end
  end
  if #kept == 0 then return end
  lm.write_file(path, table.concat(kept, "\n") .. "\n" .. now)
end

-- A warning for the report and the plot when the data is not the usual
-- train/validation split of the dataset, else nil.
function M.note(cfg)
  if cfg.train_split == "train" and cfg.eval_split == "validation" then return nil end
  local why = ""
  if cfg.train_split == "test" then why = " (the test split stands in for the missing train split)" end
  return string.format("Trained on the '%s' split, evaluated on '%s'%s: not the reference recipe's data; compare "
                       .. "only with runs on the same splits.", cfg.train_split, cfg.eval_split, why)
end

local function cell(v)
  local text = type(v) == "table" and lm.json_encode(v) or tostring(v)
  if math.type(v) == "float" then text = string.format("%g", v) end
  if text == "" then text = '""' end
  return (text:gsub("|", "\\|"):gsub("\n", " "))
end

-- Markdown: the model, the data and its splits, and every option of the
-- script with its value (bold where it differs from the default, with the
-- name it was given under when that was an older alias).
function M.details(cfg, spec, facts)
  local out = {}
  local function add(s) out[#out + 1] = s end
  add("## Model")
  add("")
  add("| | |")
  add("| --- | --- |")
  add(string.format("| Model | %s |", cell(facts.model)))
  add(string.format("| Parameters | %d (%.2fM) |", facts.n_params, facts.n_params / 1e6))
  add(string.format("| Device | %s, %s |", cell(facts.device), cell(facts.precision)))
  add(string.format("| Tokenizer | %s |", cell(facts.tokenizer)))
  if facts.init_from then add(string.format("| Started from | %s |", cell(facts.init_from))) end
  add("")
  add("## Data")
  add("")
  add("| | |")
  add("| --- | --- |")
  add(string.format("| Dataset | %s |", cell(facts.data)))
  add(string.format("| Training | split '%s': %d blocks of %d tokens |", cell(cfg.train_split), facts.train_blocks,
                    cfg.block_size))
  add(string.format("| Evaluation | split '%s': %d blocks of %d tokens |", cell(cfg.eval_split), facts.eval_blocks,
                    cfg.block_size))
  add("")
  add("## Hyperparameters")
  add("")
  add("Every option of `" .. spec.script .. "` (bold: not the default; `lmcore help " .. spec.script
      .. "` describes each).")
  add("")
  add("| Option | Value |")
  add("| --- | --- |")
  for _, o in ipairs(spec.options) do
    local v = cfg[o.name]
    if o.settings then
      if v then add(string.format("| %s.* | %s |", o.settings, cell(v))) end
    else
      local text = cell(v)
      if v ~= o.default then text = "**" .. text .. "**" end
      local given_as = cfg.given and cfg.given[o.name]
      if given_as and given_as ~= o.name then text = text .. " (as `" .. given_as .. "`)" end
      add(string.format("| %s | %s |", o.name, text))
    end
  end
  if cfg.preset then add(string.format("| preset | %s |", cell(cfg.preset))) end
  return table.concat(out, "\n") .. "\n"
end

-- A callback that generates text from `prompt` every `every` steps (and at
-- the last step) and sends it to the loggers as "sample at step N: TEXT":
-- the console prints it, the report lists it.
function M.sampler(model, tokenizer, cfg)
  local vocab = tokenizer:info()
  local prompt = tokenizer:encode(cfg.prompt, {add_special = false})
  if #prompt == 0 then error("prompt is empty after tokenizing: give some text, e.g. prompt=\"The game\"", 0) end
  return {
    on_step_end = function(_, trainer)
      if trainer.step % cfg.sample_every ~= 0 and trainer.step < trainer.total_steps then return end
      local ids = model:generate(prompt, {max_new_tokens = cfg.sample_tokens, temperature = 0.8, top_k = 40,
                                          seed = cfg.seed, eos_id = vocab.eos_id or -1})
      local text = (cfg.prompt .. tokenizer:decode(ids)):gsub("%s+", " ")
      trainer:message(string.format("sample at step %d: %s", trainer.step, text))
    end,
  }
end

return M
