-- The training pipeline shared by gpt2_clm.lua and bert_mlm.lua:
-- data -> tokenizer -> token blocks -> model + objective -> trainer ->
-- saved model and results.json.
local options = require("options")
local run_report = require("run_report")
local M = {}

-- WikiText-2's folder: the first of data/wikitext-2-raw (where
-- fetch_wikitext2.sh puts it) and ../shared/data/wikitext-2-raw that holds
-- the train split, else the first that holds the test split.
function M.default_data()
  local dirs = {"data/wikitext-2-raw", "../shared/data/wikitext-2-raw"}
  for _, file in ipairs{"wiki.train.raw", "wiki.test.raw"} do
    for _, dir in ipairs(dirs) do
      if options.exists(dir .. "/" .. file) then return dir end
    end
  end
  return dirs[1]
end

-- The options every pipeline accepts, declared once (options.lua): Hugging
-- Face TrainingArguments names, lmcore's older short names as aliases.  A
-- script appends its model's options and hands the list to options.parse.
function M.common_options(name)
  local opt = options.option
  local data_section, train_section = "data", "training (Hugging Face TrainingArguments names)"
  local device_section, eval_section, save_section = "device", "logging and evaluation", "saving and resuming"
  local parallel_section = "data parallel (mpirun / srun, docs/distributed.md)"
  return {
    opt("data", M.default_data(), "folder holding wiki.{train,valid,test}.raw (scripts/fetch_wikitext2.sh)",
        {section = data_section, shown_default = "data/wikitext-2-raw or ../shared/data/wikitext-2-raw"}),
    opt("dataset", "wikitext", "the dataset plugin (`lmcore plugins --kind dataset`)", {section = data_section}),
    opt("dataset_settings", false, "a dataset plugin's own setting KEY (e.g. dataset.train=a.csv); needed for any "
        .. "dataset but wikitext", {section = data_section, settings = "dataset"}),
    opt("train_split", "train", "the split to train on (and to train the tokenizer on)", {section = data_section}),
    opt("eval_split", "validation", "the split to evaluate on", {section = data_section}),
    opt("tokenizer", "", "a tokenizer.json to reuse instead of training one", {section = data_section}),
    opt("min_frequency", 2, "a trained tokenizer's minimum pair/word frequency", {section = data_section, min = 1}),
    opt("vocab_size", 0, "the model's vocabulary (0: the tokenizer's size)", {section = data_section, min = 0}),
    opt("block_size", 128, "tokens per training block", {section = data_section, min = 1}),
    opt("group_lines", 0, "concatenate this many lines per group before cutting blocks (0: the whole split)",
        {section = data_section, min = 0}),
    opt("cache_dir", "", "where token blocks are cached, reused by runs on the same data (\"\": cache/ beside "
        .. "output_dir, runs/cache for runs/NAME)", {section = data_section}),

    opt("num_train_epochs", 3, "passes over the training blocks (2.5: the third stops halfway)",
        {section = train_section, type = "number", min = 0, aliases = {"epochs"}}),
    opt("max_steps", -1, "stop after this many optimizer steps (-1: num_train_epochs decides)",
        {section = train_section, min = -1}),
    opt("per_device_train_batch_size", 8, "blocks per micro-batch", {section = train_section, min = 1,
        aliases = {"batch_size"}}),
    opt("per_device_eval_batch_size", 0, "blocks per evaluation batch (0: the training batch size)",
        {section = train_section, min = 0, aliases = {"eval_batch_size"}}),
    opt("gradient_accumulation_steps", 1, "micro-batches per optimizer step", {section = train_section, min = 1,
        aliases = {"grad_accum"}}),
    opt("learning_rate", 2e-5, "the peak learning rate", {section = train_section, type = "number", above = 0,
        aliases = {"lr"}}),
    opt("weight_decay", 0.01, "AdamW's decoupled weight decay", {section = train_section, type = "number", min = 0}),
    opt("warmup_steps", 0, "steps of linear warmup (below 1: a fraction of the steps, as in transformers 5)",
        {section = train_section, type = "number", min = 0}),
    opt("warmup_ratio", 0.0, "warmup as a fraction of the steps (when warmup_steps is 0)",
        {section = train_section, type = "number", min = 0, max = 1}),
    opt("lr_scheduler_type", "linear", "the learning-rate schedule", {section = train_section,
        choices = {"linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
                   "inverse_sqrt"}}),
    opt("max_grad_norm", 1.0, "clip the gradient norm to this (0: no clipping)", {section = train_section,
        type = "number", min = 0}),
    opt("optimizer", "adamw", "adamw, sgd, lion or any optimizer plugin (`lmcore plugins --kind optimizer`); "
        .. "Hugging Face's names too (adamw_torch, adamw_torch_fused, sgd, lion_32bit)",
        {section = train_section, aliases = {"optim"}}),
    opt("adam_beta1", 0.9, "AdamW's (and Lion's) beta1 (optimizer.beta1)", {section = train_section,
        type = "number", min = 0, max = 1}),
    opt("adam_beta2", 0.999, "AdamW's beta2 (Lion's: 0.99 unless given) (optimizer.beta2)",
        {section = train_section, type = "number", min = 0, max = 1}),
    opt("adam_epsilon", 1e-8, "AdamW's epsilon (optimizer.eps)", {section = train_section, type = "number",
        above = 0}),
    opt("optimizer_settings", false, "an optimizer plugin's own setting KEY (e.g. optimizer.momentum=0.9)",
        {section = train_section, settings = "optimizer"}),
    opt("seed", 42, "the seed of weights, shuffling, dropout and masking", {section = train_section, min = 0}),

    opt("device", "auto", "cpu, cuda, cuda:N, or auto (cuda when a usable GPU is found)", {section = device_section}),
    opt("bf16", false, "bfloat16 matrix products (GPU)", {section = device_section}),
    opt("tf32", false, "TF32 matrix products (GPU)", {section = device_section}),
    opt("precision", "fp32", "the same choice by name (bf16=true is precision=bf16)", {section = device_section,
        choices = {"fp32", "tf32", "bf16"}}),
    opt("threads", 0, "CPU threads (0: one per core)", {section = device_section, min = 0}),
    opt("profile_ops", false, "time every op of the model; the table is logged when the run ends",
        {section = device_section}),
    opt("recompute", "none", "less memory for a little more time (docs/recipes.md)", {section = device_section,
        choices = {"none", "activations", "attention"}}),
    opt("gradient_checkpointing", false, "Hugging Face's name for recomputing in backward: true is "
        .. "recompute=attention (the most memory saved)", {section = device_section}),
    opt("cuda_graph", "auto", "auto: on a GPU, each step part is replayed as a captured CUDA graph; off: eager steps",
        {section = device_section, choices = {"auto", "off"}}),
    opt("attn_implementation", "auto", "eager, sdpa (the fused attention, for long blocks) or auto (docs/recipes.md)",
        {section = device_section, choices = {"auto", "eager", "sdpa"}}),
    opt("pad_vocab_to_multiple_of", "auto", "pad the vocabulary inside the model to a multiple of N for whole GPU "
        .. "tiles (auto: 128 on CUDA, 1 on the CPU; saved files keep the real vocab_size)", {section = device_section}),
    opt("logits_dtype", "auto", "the classifier's logits in bf16 (half their memory) or fp32 (auto: bf16 on CUDA with "
        .. "precision=bf16)", {section = device_section, choices = {"auto", "fp32", "bf16"}}),
    opt("activation_dtype", "auto", "the activations stored for backward in bf16 (the feed-forward and attention "
        .. "blocks': half their memory) or fp32 (auto: bf16 on CUDA with precision=bf16)",
        {section = device_section, choices = {"auto", "fp32", "bf16"}}),

    opt("logging_steps", 50, "log the training loss every N steps", {section = eval_section, min = 1,
        aliases = {"log_every"}}),
    opt("logging_strategy", "steps", "when to log the training loss (steps: every logging_steps)",
        {section = eval_section, choices = {"no", "steps", "epoch"}}),
    opt("logging_first_step", false, "log the first step too (its loss, before the first logging_steps)",
        {section = eval_section}),
    opt("eval_on_start", false, "evaluate the model before training (a baseline, and a check that evaluation "
        .. "works)", {section = eval_section}),
    opt("report_to", "all", "the integrations the logs go to besides the console, log.jsonl and log.csv: all or "
        .. "tensorboard (TensorBoard event files), or none", {section = eval_section}),
    opt("logging_dir", "", "the TensorBoard folder (\"\": <output_dir>/tb)", {section = eval_section}),
    opt("eval_strategy", "epoch", "when to evaluate", {section = eval_section, choices = {"no", "steps", "epoch"}}),
    opt("eval_steps", 0, "steps between evaluations with eval_strategy=steps (0: logging_steps)",
        {section = eval_section, min = 0}),
    opt("eval_max_batches", 0, "evaluate on at most N batches (0: all)", {section = eval_section, min = 0}),
    opt("load_best_model_at_end", false, "end with the best evaluated checkpoint's weights", {section = eval_section}),
    opt("metric_for_best_model", "eval_loss", "the metric that picks the best model", {section = eval_section,
        choices = {"eval_loss", "loss", "perplexity", "eval_perplexity"}}),
    opt("early_stopping_patience", 0, "stop after N evaluations without improvement (0: never)",
        {section = eval_section, min = 0}),

    opt("output_dir", "runs/" .. name, "where the model, logs, report and checkpoints go", {section = save_section}),
    opt("save_strategy", "epoch", "when to save a checkpoint (steps: every save_steps)", {section = save_section,
        choices = {"no", "steps", "epoch"}, shown_default = "epoch (steps when save_steps is set)"}),
    opt("save_steps", 0, "steps between checkpoints (implies save_strategy=steps)", {section = save_section, min = 0,
        aliases = {"save_every"}}),
    opt("save_total_limit", 2, "checkpoints kept (0: all)", {section = save_section, min = 0,
        aliases = {"keep_last"}}),
    opt("save_only_model", false, "checkpoints hold the weights only, not the optimizer state: a third of the "
        .. "size with AdamW, and they cannot resume a run", {section = save_section}),
    opt("init_from", "", "start from a saved model's weights: a folder saved by lmcore or by Hugging Face "
        .. "(config.json + model.safetensors; its tokenizer.json too unless tokenizer= is given)",
        {section = save_section}),
    opt("resume_from_checkpoint", "", "continue a run: a checkpoint-N folder, a checkpoints or run folder (its "
        .. "newest checkpoint), or true/latest (<output_dir>'s newest)", {section = save_section, type = "path|bool",
        aliases = {"resume"}}),

    opt("communicator", "auto", "data parallel under mpirun/srun: auto, mpi, nccl or single (docs/distributed.md)",
        {section = parallel_section}),
    opt("zero_stage", 0, "1: the optimizer state sharded across ranks (ZeRO-1, docs/distributed.md)",
        {section = parallel_section, min = 0}),
    opt("ddp_overlap", true, "data parallel: all-reduce the gradients in buckets during backward (docs/distributed.md)",
        {section = parallel_section}),
    opt("ddp_bucket_cap_mb", 25, "data parallel: the gradient buckets' size in MiB", {section = parallel_section,
        type = "number"}),
  }
end

-- The precision the options ask for: bf16=true / tf32=true (Hugging Face's
-- flags) or precision=NAME, which must agree.
local function precision_of(cfg, given)
  if cfg.bf16 and cfg.tf32 then error("bf16=true and tf32=true: choose one precision", 0) end
  local flag = cfg.bf16 and "bf16" or cfg.tf32 and "tf32" or nil
  if flag and given.precision and cfg.precision ~= flag then
    error(string.format("%s=true and precision=%s disagree: give one of them", flag, cfg.precision), 0)
  end
  return flag or cfg.precision
end

-- Whether report_to (Hugging Face's list of integrations: "all", "none",
-- or names separated by commas or spaces) asks for TensorBoard, the one
-- integration lmcore writes; another integration's name is an error.
local function reports_to_tensorboard(report_to)
  local names, tensorboard = {}, false
  for name in tostring(report_to):gmatch("[^,%s]+") do names[#names + 1] = name end
  if #names == 0 then error("report_to is empty: give all, tensorboard or none", 0) end
  for _, name in ipairs(names) do
    if name == "all" or name == "tensorboard" then
      tensorboard = true
    elseif name == "none" then
      if #names > 1 then error("report_to: 'none' cannot be combined with '" .. report_to .. "'", 0) end
    else
      error(string.format("report_to '%s': lmcore's integration is TensorBoard (report_to=tensorboard or all; none "
                          .. "turns it off), and log.jsonl and log.csv are always written; a logger plugin can send "
                          .. "the logs anywhere else (docs/writing-plugins.md)", name), 0)
    end
  end
  return tensorboard
end

-- training_args.json: the trainer's settings (trainer:args_json(), in its
-- order), then the TrainingArguments that only the script knows (where the
-- run went, the precision flags, the integrations), as Hugging Face's
-- file lists them.
local function training_args_json(trainer, cfg)
  local lines = {(trainer:args_json():gsub("%s*}%s*$", ""))}
  local function add(key, json) lines[#lines + 1] = string.format(',\n  "%s": %s', key, json) end
  add("output_dir", lm.json_encode(cfg.output_dir))
  add("logging_dir", lm.json_encode(cfg.logging_dir ~= "" and cfg.logging_dir or cfg.output_dir .. "/tb"))
  add("report_to", cfg.tensorboard and '["tensorboard"]' or "[]")
  add("bf16", tostring(cfg.precision == "bf16"))
  add("tf32", tostring(cfg.precision == "tf32"))
  return table.concat(lines) .. "\n}\n"
end

-- Parses the command line of a training script: spec = {script, summary,
-- options (common_options plus the model's), presets}.  Returns cfg (nil
-- after --help) with cfg.precision resolved and the keys given on the
-- command line in cfg.given.
function M.parse(spec, args)
  local cfg, given = options.parse(spec, args)
  if not cfg then return nil end
  cfg.precision = precision_of(cfg, given)
  -- gradient_checkpointing=true (the Trainer's flag) asks for recomputing;
  -- lmcore's nearest to a whole layer rebuilt in backward is 'attention'.
  if cfg.gradient_checkpointing then
    if given.recompute and cfg.recompute == "none" then
      error("gradient_checkpointing=true and recompute=none disagree: give one of them", 0)
    end
    if not given.recompute then cfg.recompute = "attention" end
  end
  cfg.tensorboard = reports_to_tensorboard(cfg.report_to)
  if cfg.logging_dir ~= "" and not cfg.tensorboard then
    error("logging_dir is TensorBoard's folder, and report_to=" .. cfg.report_to .. " turns TensorBoard off", 0)
  end
  cfg.given = given
  cfg.spec = spec
  return cfg
end

-- The token-block cache: cache_dir, else cache/ beside output_dir (runs/cache
-- for runs/NAME, as before), so that a run whose output_dir is elsewhere
-- does not write into the current folder.
function M.cache_dir(cfg)
  if cfg.cache_dir ~= "" then return cfg.cache_dir end
  local parent = cfg.output_dir:gsub("/+$", ""):match("^(.*)/[^/]*$")
  if parent == "" then parent = "/" end
  return (parent or ".") .. "/cache"
end

-- The checkpoint resume_from_checkpoint names ("" for none).
-- true or "latest" (Hugging Face's resume_from_checkpoint=True) is the run's
-- own output_dir; a run folder or a checkpoints folder stands for its newest
-- complete checkpoint (the trainer picks it: lm_checkpoint_resolve).
function M.resume_path(cfg)
  local r = cfg.resume_from_checkpoint
  if r == false or r == "false" then return "" end
  if r == true or r == "true" or r == "latest" then return cfg.output_dir end
  return r
end

-- spec: {name, cfg, tokenizer = {plugin, settings}, add_special,
--        architecture = function(cfg, vocab) -> plugin name, settings,
--        objective = {plugin, settings}, describe = function(cfg, info) -> string,
--        before_fit = nil or function({model, tokenizer, objective, train, eval})}
-- Opens the dataset and checks that both splits are there, before anything
-- is written: a run that cannot train leaves no folder behind.
local function open_data(cfg)
  local settings = cfg.dataset_settings
  if not settings then
    if cfg.dataset ~= "wikitext" then
      error(string.format("dataset '%s' needs its settings as dataset.KEY=VALUE arguments (e.g. dataset.train=FILE)",
                          cfg.dataset), 0)
    end
    settings = {path = cfg.data}
  end
  local dataset = lm.dataset(cfg.dataset, settings)
  for _, split in ipairs{cfg.train_split, cfg.eval_split} do
    local ok, err = pcall(dataset.count, dataset, split)
    if not ok then
      -- This project's machines (and anyone who copied only the valid and
      -- test files) have no train split: say which command-line options
      -- fix it, not the plugin's settings.
      local has_test = pcall(dataset.count, dataset, "test")
      if cfg.dataset == "wikitext" and split == "train" and has_test then
        dataset:close()
        error(string.format("%s has no training split (wiki.train.raw), only the validation and test splits: add "
          .. "train_split=test to train on the test split (the quickstart does), or fetch the full WikiText-2 with "
          .. "scripts/fetch_wikitext2.sh", cfg.data), 0)
      end
      dataset:close()
      -- The plugin's hint names its own settings (path=, train=); on the
      -- command line the folder is data=.
      local what = cfg.dataset == "wikitext" and not cfg.dataset_settings and
        tostring(err):match("^(.-); run scripts/fetch_wikitext2.sh")
      if what then
        error(what .. "; pass data=FOLDER (the folder of wiki.train.raw, wiki.valid.raw and wiki.test.raw), or "
          .. "fetch WikiText-2 with scripts/fetch_wikitext2.sh", 0)
      end
      -- A file dataset's hint names its setting (validation=<file>): on the
      -- command line it is dataset.validation=FILE.
      local missing, key = tostring(err):match("^(dataset '[^']*' has no split '[^']*'): give its files with ([%w_]+)=")
      if missing and cfg.dataset_settings then
        error(string.format("%s: give it as dataset.%s=FILE%s", missing, key,
                            split == cfg.eval_split and ", or evaluate on another split (eval_split=NAME)" or ""), 0)
      end
      error(err, 0)
    end
  end
  return dataset
end

-- init_from=DIR: the saved model's folder (lmcore's, or Hugging Face's
-- GPT2LMHeadModel / BertForMaskedLM: config.json + model.safetensors), checked
-- before anything is written.  Its config.json sets the model's shape: the
-- model options (named as in config.json) take its values, and giving one
-- on the command line as well is refused.  Returns the tokenizer.json to
-- reuse ("" for none).
local function check_init_from(cfg, spec)
  local dir = cfg.init_from
  for _, file in ipairs{"config.json", "model.safetensors"} do
    if not options.exists(dir .. "/" .. file) then
      error(string.format("init_from=%s: no %s there: pass a folder saved by lmcore or by Hugging Face's "
                          .. "save_pretrained (config.json + model.safetensors)", dir, file), 0)
    end
  end
  local f = io.open(dir .. "/config.json", "r")
  local config = lm.json_decode(f:read("a"), dir .. "/config.json")
  f:close()
  if config.model_type ~= spec.model_type then
    error(string.format("init_from=%s holds a '%s' model, but %s trains '%s' models", dir,
                        tostring(config.model_type), spec.script, spec.model_type), 0)
  end
  for _, o in ipairs(spec.options) do
    if o.model and config[o.name] ~= nil then
      if cfg.given[o.name] then
        error(string.format("%s is set by init_from's config.json (%s): drop %s=%s", o.name,
                            tostring(config[o.name]), cfg.given[o.name], tostring(cfg[o.name])), 0)
      end
      cfg[o.name] = config[o.name]
    end
  end
  if cfg.tokenizer ~= "" then return cfg.tokenizer end
  if not options.exists(dir .. "/tokenizer.json") then
    error(string.format("init_from=%s has no tokenizer.json: pass tokenizer=PATH, the tokenizer the model was "
                        .. "trained with", dir), 0)
  end
  return dir .. "/tokenizer.json"
end

-- device=cuda (or cuda:N) on a machine or build without a usable GPU: a
-- model of a few parameters on that device fails in a moment, where the
-- real one would fail only after the tokenizer and the blocks were made.
local function check_device(cfg, model_type)
  if cfg.device == "cpu" or cfg.device == "auto" then return end
  local tiny = model_type == "bert" and
    {num_hidden_layers = 1, num_attention_heads = 1, hidden_size = 8, intermediate_size = 8,
     max_position_embeddings = 8, vocab_size = 16, device = cfg.device, precision = cfg.precision}
    or {n_layer = 1, n_head = 1, n_embd = 8, n_positions = 8, vocab_size = 16, device = cfg.device,
        precision = cfg.precision}
  local ok, probe = pcall(lm.architecture, model_type, tiny)
  if not ok then error(string.format("device=%s: %s", cfg.device, tostring(probe)), 0) end
  probe:close()
end

function M.run(spec)
  local cfg = spec.cfg
  local options_spec = cfg.spec
  check_device(cfg, options_spec.model_type)
  local tokenizer_path = cfg.tokenizer
  if cfg.init_from ~= "" then tokenizer_path = check_init_from(cfg, options_spec) end
  local dataset <close> = open_data(cfg)
  local resume = M.resume_path(cfg)
  -- Nothing to resume from: say so before anything is written.
  if resume ~= "" and not options.exists(resume) then
    if resume == cfg.output_dir then
      error(string.format("resume_from_checkpoint: output_dir '%s' does not exist, so it has no checkpoint to "
                          .. "continue from: train without resume_from_checkpoint first", resume), 0)
    end
    error(string.format("resume from '%s': no such folder: pass a checkpoint-N folder, a checkpoints folder or a "
                        .. "run's output_dir", resume), 0)
  end
  local history = run_report.history(resume) -- before the jsonl logger starts its file
  -- One run per output_dir (created here; removed again if this run fails
  -- before writing anything): a second run is refused, naming the first.
  local output_lock <close> = lm.lock_dir(cfg.output_dir, "output_dir")
  -- The trainer decides the logging points (logging_steps, the last step,
  -- logging_first_step): the loggers write each one (every = 1).
  local console <close> = lm.logger("console", {every = 1})
  local jsonl <close> = lm.logger("jsonl", {path = cfg.output_dir .. "/log.jsonl", every = 1})
  local csv <close> = lm.logger("csv", {path = cfg.output_dir .. "/log.csv"})
  local tensorboard <close> = cfg.tensorboard and
    lm.logger("tensorboard", {logdir = cfg.logging_dir ~= "" and cfg.logging_dir or cfg.output_dir .. "/tb"}) or nil

  local source = cfg.dataset_settings and cfg.dataset or cfg.data
  console:message(string.format("data: %s (training on '%s', evaluating on '%s')", source, cfg.train_split,
                                cfg.eval_split))

  local reuse = tokenizer_path ~= ""
  local tokenizer <close> = lm.tokenizer(spec.tokenizer.plugin,
                                         reuse and {path = tokenizer_path} or spec.tokenizer.settings)
  if not reuse then tokenizer:train(dataset, cfg.train_split) end
  local vocab = tokenizer:info()
  console:message(string.format("tokenizer: %s, %d tokens%s", spec.tokenizer.plugin, vocab.vocab_size,
                                reuse and " (from " .. tokenizer_path .. ")" or ""))

  local blocks_opts = {block_size = cfg.block_size, group_lines = cfg.group_lines, add_special = spec.add_special,
                       cache_dir = M.cache_dir(cfg)}
  local train <close> = lm.blocks(tokenizer, dataset, cfg.train_split, blocks_opts)
  local eval <close> = lm.blocks(tokenizer, dataset, cfg.eval_split, blocks_opts)
  console:message(string.format("blocks: %d for training, %d for evaluation (%d tokens each)", train:count(),
                                eval:count(), cfg.block_size))

  local arch_name, arch_settings = spec.architecture(cfg, vocab)
  local model <close> = cfg.init_from ~= "" and
    lm.load_model(cfg.init_from, {device = arch_settings.device, precision = arch_settings.precision,
                                  threads = arch_settings.threads, profile_ops = arch_settings.profile_ops,
                                  recompute = arch_settings.recompute,
                                  attn_implementation = arch_settings.attn_implementation,
                                  pad_vocab_to_multiple_of = arch_settings.pad_vocab_to_multiple_of,
                                  logits_dtype = arch_settings.logits_dtype,
                                  activation_dtype = arch_settings.activation_dtype})
    or lm.architecture(arch_name, arch_settings)
  if cfg.init_from == "" then model:init(cfg.seed) end
  local info = model:info()
  console:message(string.format("model: %s, %.1fM parameters, on %s (%s)%s", spec.describe(cfg),
                                info.n_params / 1e6, info.device, info.precision,
                                cfg.init_from ~= "" and ", weights from " .. cfg.init_from or ""))

  local objective <close> = lm.objective(spec.objective.plugin, spec.objective.settings)
  if spec.before_fit then
    spec.before_fit{model = model, tokenizer = tokenizer, objective = objective, train = train, eval = eval}
  end
  local report <close> = lm.logger("report", {
    dir = cfg.output_dir,
    title = string.format("%s: %s, %.1fM parameters", cfg.output_dir:gsub("/+$", ""):match("[^/]*$"),
                          spec.describe(cfg), info.n_params / 1e6),
    note = run_report.note(cfg),
    details = run_report.details(cfg, options_spec, {
      model = spec.describe(cfg), n_params = info.n_params, device = info.device, precision = info.precision,
      tokenizer = string.format("%s, %d tokens (%s)", spec.tokenizer.plugin, vocab.vocab_size,
                                reuse and "from " .. tokenizer_path or "trained on '" .. cfg.train_split .. "'"),
      init_from = cfg.init_from ~= "" and cfg.init_from or nil, data = source,
      train_blocks = train:count(), eval_blocks = eval:count()}),
    history = history,
  })
  local callbacks = nil
  if (cfg.sample_every or 0) > 0 then
    if not info.causal then error("sample_every needs a causal model (gpt2_clm.lua) to generate text", 0) end
    callbacks = {run_report.sampler(model, tokenizer, cfg)}
  end
  -- Checkpoints every epoch by default (every save_steps when set: the
  -- trainer's own default); load_best_model_at_end needs them at the
  -- evaluations (Hugging Face's rule).
  local eval_steps = cfg.eval_steps > 0 and cfg.eval_steps or cfg.logging_steps
  local save_strategy = cfg.given.save_strategy and cfg.save_strategy or nil
  local save_steps = cfg.save_steps
  if cfg.load_best_model_at_end then
    save_strategy = cfg.eval_strategy
    if cfg.eval_strategy == "steps" then save_steps = eval_steps end
  end
  -- optimizer.weight_decay=X is the optimizer's own setting: then the
  -- trainer's weight_decay (default 0.01) is not passed as well.
  local optimizer_settings = cfg.optimizer_settings or nil
  local weight_decay = cfg.weight_decay
  if optimizer_settings and optimizer_settings.weight_decay ~= nil then weight_decay = nil end
  local trainer <close> = lm.trainer{
    model = model, objective = objective, tokenizer = tokenizer, train = train, eval = eval,
    loggers = tensorboard and {console, jsonl, csv, tensorboard, report} or {console, jsonl, csv, report},
    callbacks = callbacks,
    optimizer = cfg.optimizer, optimizer_args = optimizer_settings,
    lr_scheduler_type = cfg.lr_scheduler_type,
    learning_rate = cfg.learning_rate, weight_decay = weight_decay, num_train_epochs = cfg.num_train_epochs,
    -- the Adam settings go to the optimizer only when given: SGD has none,
    -- and Lion's beta2 default (0.99) is not AdamW's
    adam_beta1 = cfg.given.adam_beta1 and cfg.adam_beta1 or nil,
    adam_beta2 = cfg.given.adam_beta2 and cfg.adam_beta2 or nil,
    adam_epsilon = cfg.given.adam_epsilon and cfg.adam_epsilon or nil,
    max_steps = cfg.max_steps, per_device_train_batch_size = cfg.per_device_train_batch_size,
    per_device_eval_batch_size = cfg.per_device_eval_batch_size > 0 and cfg.per_device_eval_batch_size or nil,
    gradient_accumulation_steps = cfg.gradient_accumulation_steps, warmup_steps = cfg.warmup_steps,
    warmup_ratio = cfg.warmup_ratio, max_grad_norm = cfg.max_grad_norm, seed = cfg.seed,
    eval_max_batches = cfg.eval_max_batches, logging_steps = cfg.logging_steps,
    eval_strategy = cfg.eval_strategy, eval_steps = cfg.eval_strategy == "steps" and eval_steps or nil,
    load_best_model_at_end = cfg.load_best_model_at_end, metric_for_best_model = cfg.metric_for_best_model,
    early_stopping_patience = cfg.early_stopping_patience,
    eval_on_start = cfg.eval_on_start, logging_first_step = cfg.logging_first_step,
    logging_strategy = cfg.logging_strategy,
    checkpoint_dir = cfg.output_dir .. "/checkpoints", save_strategy = save_strategy, save_steps = save_steps,
    save_total_limit = cfg.save_total_limit, save_only_model = cfg.save_only_model,
    resume_from_checkpoint = resume,
    communicator = cfg.communicator, zero_stage = cfg.zero_stage,
    ddp_overlap = cfg.ddp_overlap, ddp_bucket_cap_mb = cfg.ddp_bucket_cap_mb,
    cuda_graph = cfg.cuda_graph,
  }
  local resumed_at = trainer.step
  local result = trainer:fit()
  model:save(cfg.output_dir, {tokenizer = tokenizer, args_json = training_args_json(trainer, cfg)})
  -- A resumed run's log.jsonl begins with the earlier run's lines.
  jsonl:close()
  run_report.merge_log(cfg.output_dir .. "/log.jsonl", history, resumed_at)

  local results = {
    model = spec.name, model_type = info.model_type, objective = spec.objective.plugin,
    architecture = info.causal and "causal (unidirectional)" or "bidirectional (masked)",
    n_params = info.n_params, device = info.device, precision = info.precision,
    data = source, train_split = cfg.train_split, eval_split = cfg.eval_split,
    train_blocks = train:count(), eval_blocks = eval:count(), block_size = cfg.block_size,
    steps = result.steps, epochs = result.epochs, train_loss = result.train_loss,
    eval_loss = result.eval_loss, perplexity = result.perplexity, runtime_seconds = result.runtime,
    samples_per_second = result.samples_per_second, tokens_per_second = result.tokens_per_second,
    log = cfg.output_dir .. "/log.jsonl",
  }
  lm.write_file(cfg.output_dir .. "/results.json", lm.json_encode(results) .. "\n")
  print(string.format("Perplexity: %.2f (validation loss %.4f on '%s')", result.perplexity, result.eval_loss,
                      cfg.eval_split))
  print(string.format("saved model.safetensors, config.json, tokenizer.json and results.json to %s", cfg.output_dir))
  return result
end

return M
