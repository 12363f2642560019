-- The training step as captured CUDA graphs (cuda_graph=auto, the default)
-- trains the same bits as eager steps (cuda_graph=off): the graphs queue the
-- same kernels in the same order, reading the batch and the step state from
-- the same device addresses.  For GPT-2 and BERT, with dropout, gradient
-- accumulation (a first and an accumulating micro-batch), an epoch whose
-- last batch is shorter (a graph of its own), three epochs, logging every
-- 3 steps and evaluation after every epoch (host reads between launches):
--   1. fit() with cuda_graph=off, 2. fit() with cuda_graph=auto,
--   3. the documented hand-written loop with cuda_graph=auto,
-- same weights (every bit), same training and evaluation losses.  On the
-- GPU, the steps of both models must have been replayed from graphs (BERT's
-- too: the loss reads its count of masked tokens on the device and the
-- sparse MLM head runs on a bucket of rows, mlm_head_rows=auto, so batches
-- with different counts share a graph), and steps without logging must
-- neither read the device nor wait for it.  On the CPU
-- (device=cpu, a CPU test) there are no graphs: auto runs eagerly, the same.
-- Exits 77 (skipped) without a usable GPU unless LMCORE_REQUIRE_GPU=1.
-- args: out=PATH (a scratch file prefix) device=cuda|cpu
local out = assert(args.out, "out=PATH")
local device = args.device or "cuda"

local lines = {}
for i = 1, 300 do
  lines[#lines + 1] = string.format("line %d: the model reads this text %d times and learns %s", i, i % 7,
                                    i % 3 == 0 and "nothing much" or "a little")
end
local path = out .. ".txt"
local f = assert(io.open(path, "w"))
f:write(table.concat(lines, "\n"), "\n")
f:close()
local dataset <close> = lm.dataset("text", {train = path})

local function probe_device()
  local ok, m = pcall(lm.architecture, "gpt2", {vocab_size = 300, n_layer = 1, n_head = 2, n_embd = 16,
                                                n_positions = 32, device = device})
  if not ok then
    if os.getenv("LMCORE_REQUIRE_GPU") == "1" then error("LMCORE_REQUIRE_GPU=1 but: " .. tostring(m), 0) end
    print("skipped: " .. tostring(m))
    os.remove(path)
    os.exit(77, true)
  end
  m:close()
end
probe_device()

local function check_model(kind)
  local tokenizer <close> = kind == "gpt2" and lm.tokenizer("bpe", {vocab_size = 300, min_frequency = 1})
    or lm.tokenizer("wordpiece", {vocab_size = 300})
  tokenizer:train(dataset, "train")
  local vocab = tokenizer:info()
  local blocks <close> = lm.blocks(tokenizer, dataset, "train", {block_size = 32, add_special = kind ~= "gpt2"})
  -- A batch size that leaves a shorter last batch in every epoch.
  local batch_size
  for _, b in ipairs({6, 7, 5, 9}) do
    if not batch_size and blocks:count() % b ~= 0 then batch_size = b end
  end
  assert(batch_size, "no batch size leaves a remainder of " .. blocks:count() .. " blocks")

  local function new_model()
    local m
    if kind == "gpt2" then
      m = lm.architecture("gpt2", {vocab_size = vocab.vocab_size, n_layer = 2, n_head = 2, n_embd = 32,
                                   n_positions = 32, device = device})
    else
      m = lm.architecture("bert", {vocab_size = vocab.vocab_size, num_hidden_layers = 2, num_attention_heads = 2,
                                   hidden_size = 32, intermediate_size = 64, max_position_embeddings = 32,
                                   pad_token_id = vocab.pad_id, device = device})
    end
    m:init(3)
    return m
  end
  local function new_objective()
    return lm.objective(kind == "gpt2" and "clm" or "mlm", kind == "bert" and {seed = 11} or nil)
  end
  local function new_trainer(model, objective, mode, extra)
    local settings = {model = model, objective = objective, tokenizer = tokenizer, train = blocks, eval = blocks,
                      lr = 3e-3, batch_size = batch_size, grad_accum = 2, epochs = 3, seed = 7, warmup_steps = 2,
                      eval_max_batches = 2, log_every = 3, lr_scheduler_type = "cosine", cuda_graph = mode}
    for k, v in pairs(extra or {}) do settings[k] = v end
    return lm.trainer(settings)
  end

  -- 1. eager, 2. graphs, through fit()
  local model_a <close> = new_model()
  local objective_a <close> = new_objective()
  local eager <close> = new_trainer(model_a, objective_a, "off")
  local ra = eager:fit()
  local model_b <close> = new_model()
  local objective_b <close> = new_objective()
  local graphed <close> = new_trainer(model_b, objective_b, "auto")
  local rb = graphed:fit()
  -- 3. graphs, through the documented loop, with a log() in the middle of the run
  local model_c <close> = new_model()
  local objective_c <close> = new_objective()
  local t <close> = new_trainer(model_c, objective_c, "auto")
  while t.step < t.total_steps do
    for _ = 1, t.grad_accum do t:forward_backward(t:next_batch()) end
    t:clip_grad_norm()
    t:optimizer_step()
    if t.step % t.logging_steps == 0 or t.step == t.total_steps then t:log() end
    if t.epoch_done or t.step == t.total_steps then t:evaluate() end
  end
  local rc = t:finish()

  local label = kind .. " on " .. device
  for _, case in ipairs({{"fit() with graphs", rb, model_b}, {"the loop with graphs", rc, model_c}}) do
    local name, r, m = case[1], case[2], case[3]
    assert(r.steps == ra.steps, string.format("%s, %s: %d steps, eager %d", label, name, r.steps, ra.steps))
    assert(m:weights_hash() == model_a:weights_hash(),
           string.format("%s, %s: weights %s, eager %s", label, name, m:weights_hash(), model_a:weights_hash()))
    assert(r.train_loss == ra.train_loss,
           string.format("%s, %s: train loss %.17g, eager %.17g", label, name, r.train_loss, ra.train_loss))
    assert(r.eval_loss == ra.eval_loss,
           string.format("%s, %s: eval loss %.17g, eager %.17g", label, name, r.eval_loss, ra.eval_loss))
  end
  local off, sb, sc = eager:graph_stats(), graphed:graph_stats(), t:graph_stats()
  assert(not off.enabled and off.captured == 0 and off.replayed == 0, label .. ": cuda_graph=off captured graphs")
  if device == "cpu" then
    assert(not sb.enabled and sb.captured == 0 and sb.replayed == 0, label .. ": the CPU device captured graphs")
  else
    -- first micro-batch, accumulating micro-batch, update, and the short last batch's (BERT: every
    -- micro-batch of this run has 9 to 36 masked tokens, one bucket of 64 head rows)
    assert(sb.enabled, label .. ": graphs were given up (see the warning above)")
    assert(sb.captured >= 3 and sb.replayed > sb.captured,
           string.format("%s: %d captured, %d replayed", label, sb.captured, sb.replayed))
  end
  print(string.format("%s: %d steps, %d blocks in batches of %d; bit-identical to eager (fit and loop); graphs: "
                      .. "%d parts eager, %d captured, %d replayed (fit), %d replayed (loop)", label, ra.steps,
                      blocks:count(), batch_size, sb.eager, sb.captured, sb.replayed, sc.replayed))

  -- 4. Steps without logging, replayed, neither read the device nor wait.
  local model_d <close> = new_model()
  local objective_d <close> = new_objective()
  local quiet <close> = new_trainer(model_d, objective_d, "auto", {logging_strategy = "no", eval_strategy = "no"})
  local function steps(n)
    for _ = 1, n do
      for _ = 1, quiet.grad_accum do quiet:forward_backward(quiet:next_batch()) end
      quiet:clip_grad_norm()
      quiet:optimizer_step()
    end
  end
  steps(2) -- warm-up, then capture
  quiet:check()
  local before, graphs_before = quiet:device_counters(), quiet:graph_stats()
  steps(3)
  local after, graphs_after = quiet:device_counters(), quiet:graph_stats()
  assert(after.downloads == before.downloads and after.syncs == before.syncs,
         string.format("%s: 3 steps read the device %d times and waited %d times", label,
                       after.downloads - before.downloads, after.syncs - before.syncs))
  if device ~= "cpu" then
    assert(quiet.total_steps // 3 > 5, "steps 3 to 5 are not all in the first epoch")
    assert(graphs_after.replayed - graphs_before.replayed == 9,
           string.format("%s: 3 steps replayed %d parts (2 micro-batches and the update each)", label,
                         graphs_after.replayed - graphs_before.replayed))
  end
  print(string.format("%s: 3 steps with graphs, 0 reads, 0 waits, %d parts replayed", label,
                      graphs_after.replayed - graphs_before.replayed))
end

check_model("gpt2")
check_model("bert")
os.remove(path)
print("OK graph parity on " .. device)
