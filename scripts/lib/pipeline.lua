-- The training pipeline shared by gpt2_clm.lua and bert_mlm.lua:
-- data -> tokenizer -> token blocks -> model + objective -> trainer ->
-- saved model and results.json.
local M = {}

-- Options every pipeline accepts (merged into each script's defaults).
function M.common_defaults(name)
  local options = require("options")
  return {
    data = options.first_existing({"data/wikitext-2-raw", "../shared/data/wikitext-2-raw"}, "wiki.train.raw"),
    -- The dataset plugin; anything but wikitext takes its settings as
    -- dataset.KEY=VALUE arguments (e.g. dataset=csv dataset.train=a.csv).
    dataset = "wikitext", dataset_settings = false,
    train_split = "train", eval_split = "validation",
    tokenizer = "",            -- a tokenizer.json to reuse instead of training one
    min_frequency = 2,
    vocab_size = 0,            -- model vocabulary; 0 = the tokenizer's size
    block_size = 128, group_lines = 0,
    epochs = 3, max_steps = -1, batch_size = 8, grad_accum = 1,
    lr = 2e-5, weight_decay = 0.01, warmup_steps = 0, warmup_ratio = 0.0, max_grad_norm = 1.0,
    optimizer = "adamw",       -- or sgd, lion, any optimizer plugin (`lmcore plugins --kind optimizer`);
    optimizer_settings = false, -- its own settings as optimizer.KEY=VALUE (e.g. optimizer.momentum=0.9)
    lr_scheduler_type = "linear", -- or cosine, cosine_with_restarts, polynomial, constant, constant_with_warmup, inverse_sqrt
    seed = 42, device = "auto", precision = "fp32", threads = 0,
    profile_ops = false,       -- time every op of the model; the table is logged when the run ends
    recompute = "none",        -- or "activations", "attention": less memory, a little more time (docs/recipes.md)
    eval_max_batches = 0, log_every = 50,
    eval_strategy = "epoch", eval_steps = 0,  -- "steps": evaluate every eval_steps (0: every log_every)
    load_best_model_at_end = false, metric_for_best_model = "eval_loss", early_stopping_patience = 0,
    output_dir = "runs/" .. name, cache_dir = "runs/cache",
    save_every = 0, keep_last = 2,   -- checkpoints in <output_dir>/checkpoints (every epoch, and on Ctrl-C)
    resume = "",                     -- a checkpoint folder to continue from, exactly
    communicator = "auto",           -- data parallel under mpirun/srun: auto, mpi, nccl, single (docs/distributed.md)
    zero_stage = 0,
  }
end

-- spec: {name, cfg, tokenizer = {plugin, settings}, add_special,
--        architecture = function(cfg, vocab) -> plugin name, settings,
--        objective = {plugin, settings}, describe = function(cfg, info) -> string,
--        before_fit = nil or function({model, tokenizer, objective, train, eval})}
function M.run(spec)
  local cfg = spec.cfg
  -- One run per output_dir (created here; removed again if this run fails
  -- before writing anything): a second run is refused, naming the first.
  local output_lock <close> = lm.lock_dir(cfg.output_dir, "output_dir")
  local console <close> = lm.logger("console", {every = cfg.log_every})
  local jsonl <close> = lm.logger("jsonl", {path = cfg.output_dir .. "/log.jsonl", every = cfg.log_every})
  local csv <close> = lm.logger("csv", {path = cfg.output_dir .. "/log.csv"})
  local tensorboard <close> = lm.logger("tensorboard", {logdir = cfg.output_dir .. "/tb"})
  local report <close> = lm.logger("report", {dir = cfg.output_dir})

  local dataset_settings = cfg.dataset_settings
  if not dataset_settings then
    if cfg.dataset ~= "wikitext" then
      error(string.format("dataset '%s' needs its settings as dataset.KEY=VALUE arguments (e.g. dataset.train=FILE)",
                          cfg.dataset), 0)
    end
    dataset_settings = {path = cfg.data}
  end
  local dataset <close> = lm.dataset(cfg.dataset, dataset_settings)
  local source = cfg.dataset_settings and cfg.dataset or cfg.data
  console:message(string.format("data: %s (training on '%s', evaluating on '%s')", source, cfg.train_split,
                                cfg.eval_split))

  local reuse = cfg.tokenizer ~= ""
  local tokenizer <close> = lm.tokenizer(spec.tokenizer.plugin, reuse and {path = cfg.tokenizer} or spec.tokenizer.settings)
  if not reuse then tokenizer:train(dataset, cfg.train_split) end
  local vocab = tokenizer:info()
  console:message(string.format("tokenizer: %s, %d tokens", spec.tokenizer.plugin, vocab.vocab_size))

  local blocks_opts = {block_size = cfg.block_size, group_lines = cfg.group_lines, add_special = spec.add_special,
                       cache_dir = cfg.cache_dir}
  local train <close> = lm.blocks(tokenizer, dataset, cfg.train_split, blocks_opts)
  local eval <close> = lm.blocks(tokenizer, dataset, cfg.eval_split, blocks_opts)
  console:message(string.format("blocks: %d for training, %d for evaluation (%d tokens each)", train:count(),
                                eval:count(), cfg.block_size))

  local arch_name, arch_settings = spec.architecture(cfg, vocab)
  local model <close> = lm.architecture(arch_name, arch_settings)
  model:init(cfg.seed)
  local info = model:info()
  console:message(string.format("model: %s, %.1fM parameters, on %s (%s)", spec.describe(cfg), info.n_params / 1e6,
                                info.device, info.precision))

  local objective <close> = lm.objective(spec.objective.plugin, spec.objective.settings)
  if spec.before_fit then
    spec.before_fit{model = model, tokenizer = tokenizer, objective = objective, train = train, eval = eval}
  end
  -- Checkpoints every epoch by default; load_best_model_at_end needs them
  -- at the evaluations (Hugging Face's rule).
  local eval_steps = cfg.eval_steps > 0 and cfg.eval_steps or cfg.log_every
  local save_strategy, save_steps = nil, cfg.save_every
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
    loggers = {console, jsonl, csv, tensorboard, report},
    optimizer = cfg.optimizer, optimizer_args = optimizer_settings,
    lr_scheduler_type = cfg.lr_scheduler_type,
    lr = cfg.lr, weight_decay = weight_decay, epochs = cfg.epochs, max_steps = cfg.max_steps,
    batch_size = cfg.batch_size, grad_accum = cfg.grad_accum, warmup_steps = cfg.warmup_steps,
    warmup_ratio = cfg.warmup_ratio, max_grad_norm = cfg.max_grad_norm, seed = cfg.seed,
    eval_max_batches = cfg.eval_max_batches, log_every = cfg.log_every,
    eval_strategy = cfg.eval_strategy, eval_steps = cfg.eval_strategy == "steps" and eval_steps or nil,
    load_best_model_at_end = cfg.load_best_model_at_end, metric_for_best_model = cfg.metric_for_best_model,
    early_stopping_patience = cfg.early_stopping_patience,
    checkpoint_dir = cfg.output_dir .. "/checkpoints", save_strategy = save_strategy, save_steps = save_steps,
    keep_last = cfg.keep_last,
    resume = cfg.resume,
    communicator = cfg.communicator, zero_stage = cfg.zero_stage,
  }
  local result = trainer:fit()
  model:save(cfg.output_dir, {tokenizer = tokenizer, args_json = trainer:args_json()})

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
