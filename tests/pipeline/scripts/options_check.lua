-- scripts/lib/options.lua and the pipeline's option table: aliases,
-- presets, ranges, "did you mean", help; and every name training_args.json
-- uses (args_json=PATH, written by a run) is an option of the scripts.
package.path = "scripts/lib/?.lua;" .. package.path
local options = require("options")
local pipeline = require("pipeline")

local function raises(f, needle)
  local ok, err = pcall(f)
  assert(not ok, "expected an error containing: " .. needle)
  assert(tostring(err):find(needle, 1, true), "error '" .. tostring(err) .. "' lacks '" .. needle .. "'")
end

local spec = {script = "t.lua", options = pipeline.common_options("t"),
              presets = {small = {learning_rate = 1e-3, num_train_epochs = 1}}}
local cfg, given = options.parse(spec, {lr = 5e-4, batch_size = 4, preset = "small"})
assert(cfg.learning_rate == 5e-4 and cfg.per_device_train_batch_size == 4 and cfg.num_train_epochs == 1)
assert(given.learning_rate == "lr" and given.num_train_epochs == nil)
assert(cfg.lr == nil, "aliases are not keys of cfg")
cfg = options.parse(spec, {["optimizer.momentum"] = 0.9, ["dataset.train"] = "a.csv"})
assert(cfg.optimizer_settings.momentum == 0.9 and cfg.dataset_settings.train == "a.csv")
assert(options.parse(spec, {help = true}) == nil)
raises(function() options.parse(spec, {logging_step = 5}) end, "did you mean 'logging_steps'?")
raises(function() options.parse(spec, {kep_last = 5}) end, "did you mean 'keep_last'?")
raises(function() options.parse(spec, {zzzzzz = 1}) end, "unknown argument 'zzzzzz': `lmcore help t.lua`")
raises(function() options.parse(spec, {warmup_ratio = 1.5}) end, "must be 0..1, got 1.5")
raises(function() options.parse(spec, {learning_rate = 0}) end, "must be > 0, got 0")
raises(function() options.parse(spec, {batch_size = 1.5}) end, "'batch_size' (per_device_train_batch_size) must be an integer")
assert(options.parse(spec, {epochs = 1.5}).num_train_epochs == 1.5, "num_train_epochs is a float, as in TrainingArguments")
raises(function() options.parse(spec, {dataset_settings = "x"}) end, "unknown argument 'dataset_settings'")
raises(function() options.parse(spec, {preset = "huge"}) end, "unknown preset 'huge' (known: small)")
assert(options.edit_distance("kitten", "sitting") == 3)
local help = options.help(spec)
assert(help:find("learning_rate=2e-05", 1, true) and help:find("alias: lr", 1, true), help)
assert(pipeline.parse(spec, {bf16 = true}).precision == "bf16")
assert(pipeline.parse(spec, {gradient_checkpointing = true}).recompute == "attention")
assert(pipeline.parse(spec, {gradient_checkpointing = true, recompute = "activations"}).recompute == "activations")
assert(pipeline.parse(spec, {}).recompute == "none")
raises(function() pipeline.parse(spec, {gradient_checkpointing = true, recompute = "none"}) end, "disagree")
raises(function() pipeline.parse(spec, {bf16 = true, precision = "tf32"}) end, "disagree")

-- training_args.json: written by the core (trainer:args_json()) with the
-- names the options use.
if args.args_json then
  local f = assert(io.open(args.args_json, "r"))
  local written = lm.json_decode(f:read("a"), args.args_json)
  f:close()
  local declared = {}
  for _, o in ipairs(spec.options) do
    declared[o.name] = true
    for _, alias in ipairs(o.aliases or {}) do declared[alias] = true end
  end
  -- the optimizer's own settings are optimizer.KEY=VALUE
  local not_options = {optim_args = true}
  local n = 0
  for key in pairs(written) do
    assert(declared[key] or not_options[key], "training_args.json key '" .. key .. "' is not an option name")
    n = n + 1
  end
  assert(n >= 15, "training_args.json has only " .. n .. " keys")
end
print("OK options")
