-- trainer:fit() and the callbacks: the Hugging Face Trainer's loop
-- (inner_training_loop, DefaultFlowCallback, EarlyStoppingCallback),
-- written with the step API any script can call itself:
--
--   while t.step < t.total_steps do
--     for _ = 1, t.grad_accum do t:forward_backward(t:next_batch()) end
--     t:clip_grad_norm()
--     t:optimizer_step()
--     ... log, evaluate, save when the cadence says so
--   end
--   return t:finish()
--
-- Loaded once by the lm module (lua_trainer.c) with the module as its
-- argument; returns {fit, check_callbacks, callbacks}.
local lm = ...
local M = {}

-- The events a callback may handle (TrainerCallback's), in the order of a run.
local EVENTS = {"on_train_begin", "on_epoch_begin", "on_step_begin", "on_step_end", "on_log", "on_evaluate",
                "on_save", "on_epoch_end", "on_train_end"}
local is_event = {}
for _, name in ipairs(EVENTS) do is_event[name] = true end

-- ---- shipped callbacks --------------------------------------------------------------

M.callbacks = {}

-- Early stopping (transformers.EarlyStoppingCallback): stops when the
-- metric_for_best_model has not improved by more than `threshold` for
-- `patience` evaluations in a row.  Its counter is saved with checkpoints.
function M.callbacks.early_stopping(options)
  options = options or {}
  for key in pairs(options) do
    if key ~= "patience" and key ~= "threshold" then
      error(string.format("lm.callbacks.early_stopping: unknown option '%s' (known: patience, threshold)",
                          tostring(key)), 0)
    end
  end
  local patience, threshold = options.patience or 1, options.threshold or 0.0
  if math.type(patience) ~= "integer" or patience < 1 then
    error("lm.callbacks.early_stopping: patience must be an integer >= 1, got " .. tostring(patience), 0)
  end
  if type(threshold) ~= "number" or threshold < 0 then
    error("lm.callbacks.early_stopping: threshold must be a number >= 0, got " .. tostring(threshold), 0)
  end
  return {
    name = "early_stopping", patience = patience, threshold = threshold, waited = 0,
    on_evaluate = function(self, trainer, state, control, metrics)
      local value = metrics[state.metric_name]
      local best = state.best_metric
      local better = best == nil or
        ((state.greater_is_better and value > best) or (not state.greater_is_better and value < best)) and
        math.abs(value - best) > self.threshold
      if better then self.waited = 0 else self.waited = self.waited + 1 end
      if self.waited >= self.patience then
        control.should_training_stop = true
        trainer:message(string.format("early stopping at step %d: %s has not improved for %d evaluations",
                                       trainer.step, state.metric_name, self.waited))
      end
    end,
    state = function(self) return {waited = self.waited} end,
    load_state = function(self, saved) self.waited = saved.waited or 0 end,
  }
end

-- Checks a callbacks list and returns it with shipped callbacks given by
-- name made (a fresh table: the caller's list is not changed).
function M.check_callbacks(list)
  local checked = {}
  if list == nil then return checked end
  if type(list) ~= "table" then
    error("lm.trainer: callbacks must be a list of callback tables, got a " .. type(list), 0)
  end
  local names = {}
  for i, cb in ipairs(list) do
    if type(cb) == "string" then
      local make = M.callbacks[cb]
      if not make then
        local known = {}
        for name in pairs(M.callbacks) do known[#known + 1] = name end
        table.sort(known)
        error(string.format("lm.trainer: unknown callback '%s' (known: %s, or a table of on_* functions)", cb,
                            table.concat(known, ", ")), 0)
      end
      cb = make()
    end
    if type(cb) ~= "table" then
      error(string.format("lm.trainer: callback %d must be a table of on_* functions, got a %s", i, type(cb)), 0)
    end
    for key, value in pairs(cb) do
      if type(key) == "string" and key:sub(1, 3) == "on_" then
        if not is_event[key] then
          error(string.format("lm.trainer: callback %d has unknown event '%s' (known: %s)", i, key,
                              table.concat(EVENTS, ", ")), 0)
        end
        if type(value) ~= "function" then
          error(string.format("lm.trainer: callback %d: %s must be a function, got a %s", i, key, type(value)), 0)
        end
      end
    end
    if (cb.state ~= nil or cb.load_state ~= nil) then
      if type(cb.state) ~= "function" or type(cb.load_state) ~= "function" then
        error(string.format("lm.trainer: callback %d declares state: it needs both state() and load_state()", i), 0)
      end
      if type(cb.name) ~= "string" or cb.name == "" then
        error(string.format("lm.trainer: callback %d declares state: give it a name (its key in checkpoints)", i), 0)
      end
      if names[cb.name] then
        error(string.format("lm.trainer: two callbacks with state are named '%s': names key their saved state",
                            cb.name), 0)
      end
      names[cb.name] = true
    end
    checked[#checked + 1] = cb
  end
  return checked
end

-- ---- fit --------------------------------------------------------------------------------

local function callback_label(cb, i)
  return cb.name and ("'" .. cb.name .. "'") or tostring(i)
end

function M.fit(t)
  local callbacks = t.callbacks
  if t.early_stopping_patience > 0 then
    local present = false
    for _, cb in ipairs(callbacks) do present = present or cb.name == "early_stopping" end
    if not present then
      callbacks[#callbacks + 1] = M.callbacks.early_stopping{patience = t.early_stopping_patience,
                                                             threshold = t.early_stopping_threshold}
    end
  end
  local metric = t.metric_for_best_model
  if metric == "loss" then metric = "eval_loss" elseif metric == "eval_perplexity" then metric = "perplexity" end
  local state = {global_step = t.step, epoch = t.epoch, max_steps = t.total_steps,
                 num_train_epochs = t.num_train_epochs, best_metric = nil, best_model_checkpoint = nil,
                 metric_name = metric, greater_is_better = t.greater_is_better}
  local control = {}

  -- A resumed run continues the loop's own state too.
  local saved = t:resumed_state()
  if saved then
    saved = lm.json_decode(saved, "the checkpoint's trainer_state.json")
    state.best_metric = saved.best_metric
    state.best_model_checkpoint = saved.best_model_checkpoint
    local states = saved.callbacks or {}
    for _, cb in ipairs(callbacks) do
      if cb.load_state and states[cb.name] ~= nil then cb:load_state(states[cb.name]) end
    end
  end

  local function fire(event, extra)
    for i, cb in ipairs(callbacks) do
      local fn = cb[event]
      if fn then
        local ok, err = pcall(fn, cb, t, state, control, extra)
        if not ok then
          error(string.format("callback %s failed in %s at step %d: %s", callback_label(cb, i), event, t.step,
                              tostring(err)), 0)
        end
      end
    end
  end

  local function loop_state_json()
    local states = {}
    for _, cb in ipairs(callbacks) do
      if cb.state then states[cb.name] = cb:state() end
    end
    return lm.json_encode({best_metric = state.best_metric, best_model_checkpoint = state.best_model_checkpoint,
                           callbacks = states})
  end

  local improved_at = nil -- the step whose evaluation improved the metric, until saved
  local function evaluate()
    local _, _, metrics = t:evaluate()
    fire("on_evaluate", metrics)
    local value = metrics[metric]
    if value ~= nil and value == value then -- not NaN
      local best = state.best_metric
      if best == nil or (state.greater_is_better and value > best) or (not state.greater_is_better and value < best) then
        state.best_metric = value
        improved_at = t.step
      end
    end
  end

  local saved_at = nil -- the step last saved
  local function save()
    -- The checkpoint about to be written becomes the best one when this
    -- step's evaluation improved the metric (its path is known in advance).
    if improved_at == t.step then
      state.best_model_checkpoint = t.checkpoint_dir .. "/checkpoint-" .. t.step
    end
    -- Pruning spares the best checkpoint when it is to be loaded at the end.
    local path = t:save(loop_state_json(), t.load_best_model_at_end and state.best_model_checkpoint or nil)
    saved_at = t.step
    fire("on_save", path)
  end

  -- Ctrl-C or SIGTERM: checked once a step is complete (evaluated and
  -- saved as the cadence asks), so that the checkpoint it writes resumes
  -- into exactly the run that was stopped; an evaluation that the signal
  -- cut short leaves that step unevaluated.
  local function interrupted()
    local stopped, by = lm.interrupted() -- by: "Ctrl-C" or "SIGTERM"
    if not stopped then return end
    local where = ""
    if t.checkpoint_dir then
      if saved_at ~= t.step then
        t:save(loop_state_json(), t.load_best_model_at_end and state.best_model_checkpoint or nil)
      end
      where = "; resume from the checkpoint in " .. t.checkpoint_dir
    end
    error(string.format("training interrupted by %s after step %d%s", by, t.step, where), 0)
  end

  local logging, log_every = t.logging_strategy, t.logging_steps
  local evaluating, eval_every = t.eval_strategy, t.eval_steps
  local saving, save_every = t.save_strategy, t.save_steps
  local grad_accum = t.grad_accum

  fire("on_train_begin")
  -- eval_on_start: the untrained (or resumed) model's evaluation, as a
  -- baseline and a check that evaluation works before hours of training.
  if t.eval_on_start then
    local ok, err = pcall(evaluate)
    if not ok then
      interrupted()
      error(err, 0)
    end
  end
  while t.step < t.total_steps do
    if t.step % t.steps_per_epoch == 0 then fire("on_epoch_begin") end
    control.should_log, control.should_evaluate, control.should_save = false, false, false
    control.should_training_stop = false
    fire("on_step_begin")
    for _ = 1, grad_accum do t:forward_backward(t:next_batch()) end
    t:clip_grad_norm()
    t:optimizer_step()
    local step = t.step
    state.global_step, state.epoch = step, t.epoch
    local last = step >= t.total_steps
    -- DefaultFlowCallback's cadence (transformers 5): with "steps", the
    -- last step is evaluated and saved too.  lmcore also logs it, so that
    -- logs and curves end at the last step.
    control.should_log = logging == "steps" and (step % log_every == 0 or last) or
      (t.logging_first_step and logging ~= "no" and step == 1)
    control.should_evaluate = evaluating == "steps" and step % eval_every == 0
    control.should_save = saving == "steps" and (step % save_every == 0 or last)
    fire("on_step_end")
    -- An epoch ends at its last step, and so does a run cut short by max_steps.
    if t.epoch_done or last then
      if logging == "epoch" then control.should_log = true end
      if evaluating == "epoch" then control.should_evaluate = true end
      if saving == "epoch" then control.should_save = true end
      fire("on_epoch_end")
    end
    -- The run's last step is always evaluated (results report its perplexity).
    if last and evaluating ~= "no" then control.should_evaluate = true end
    if control.should_log then fire("on_log", t:log()) end
    if control.should_evaluate then
      if not t.eval then error("a callback asked for an evaluation, but the trainer has no eval blocks", 0) end
      local ok, err = pcall(evaluate)
      if not ok then
        interrupted() -- a Ctrl-C during the evaluation: save, then say so
        error(err, 0)
      end
    end
    if control.should_save then
      if not t.checkpoint_dir then error("a callback asked for a save, but the trainer has no checkpoint_dir", 0) end
      save()
    end
    interrupted()
    if control.should_training_stop then break end
  end
  fire("on_train_end")
  if t.load_best_model_at_end and state.best_model_checkpoint then
    t.model:load(state.best_model_checkpoint)
    t:message(string.format("loaded the best model (%s %.6g) from %s", metric, state.best_metric,
                            state.best_model_checkpoint))
  end
  local result = t:finish()
  result.best_metric = state.best_metric
  result.best_model_checkpoint = state.best_model_checkpoint
  return result
end

return M
