-- On the GPU, a training step without logging reads nothing back from the
-- device and never waits for it: the trainer's step (batch upload, forward,
-- the loss into the step state, backward, clipping, schedule, optimizer,
-- step end) only queues work.  Counted by the CUDA backend (downloads and
-- syncs, lm_device_counters), in fp32 and in bf16, with and without
-- gradient accumulation, as CUDA graphs (cuda_graph=auto, the default:
-- the measured steps are replays) and eagerly (cuda_graph=off); then one
-- log() is exactly one read.  BERT with dynamic masking too: its batches'
-- counts of masked tokens differ, yet every measured step is replayed (the
-- count is read on the device and the MLM head runs on a bucket of rows).
-- Exits 77 (skipped) without a usable GPU unless LMCORE_REQUIRE_GPU=1.
-- args: out=PATH (a scratch file prefix)
local out = assert(args.out, "out=PATH")

-- A small text of its own, so that the check needs no dataset download.
local lines = {}
for i = 1, 400 do
  lines[#lines + 1] = string.format("line %d: the model reads this text %d times and learns nothing much", i, i % 7)
end
local path = out .. ".txt"
local f = assert(io.open(path, "w"))
f:write(table.concat(lines, "\n"), "\n")
f:close()

local dataset <close> = lm.dataset("text", {train = path})
local tokenizer <close> = lm.tokenizer("bpe", {vocab_size = 300, min_frequency = 1})
tokenizer:train(dataset, "train")
local blocks <close> = lm.blocks(tokenizer, dataset, "train", {block_size = 32})

local function gpt2(precision)
  return lm.architecture("gpt2", {vocab_size = 300, n_layer = 2, n_head = 2, n_embd = 64, n_positions = 32,
                                  device = "cuda", precision = precision})
end

local ok, probe = pcall(gpt2, "fp32")
if not ok then
  if os.getenv("LMCORE_REQUIRE_GPU") == "1" then error("LMCORE_REQUIRE_GPU=1 but: " .. tostring(probe), 0) end
  print("skipped: " .. tostring(probe))
  os.exit(77, true)
end
probe:close()

local function steps(t, n)
  for _ = 1, n do
    for _ = 1, t.grad_accum do t:forward_backward(t:next_batch()) end
    t:clip_grad_norm()
    t:optimizer_step()
  end
end

-- BERT's own tokenizer and blocks ([CLS] ... [SEP] per line).
local wordpiece <close> = lm.tokenizer("wordpiece", {vocab_size = 300})
wordpiece:train(dataset, "train")
local bert_blocks <close> = lm.blocks(wordpiece, dataset, "train", {block_size = 32, add_special = true})

local function bert(precision)
  return lm.architecture("bert", {vocab_size = wordpiece:info().vocab_size, num_hidden_layers = 2,
                                  num_attention_heads = 2, hidden_size = 64, intermediate_size = 128,
                                  max_position_embeddings = 32, pad_token_id = wordpiece:info().pad_id,
                                  device = "cuda", precision = precision})
end

for _, case in ipairs({{"fp32", 1, "auto"}, {"bf16", 1, "auto"}, {"fp32", 2, "auto"}, {"fp32", 2, "off"},
                       {"fp32", 2, "auto", "bert"}, {"bf16", 1, "auto", "bert"}}) do
  local precision, accumulation, graphs, kind = case[1], case[2], case[3], case[4] or "gpt2"
  local model <close> = kind == "bert" and bert(precision) or gpt2(precision)
  model:init(1)
  local objective <close> = kind == "bert" and lm.objective("mlm", {seed = 3}) or lm.objective("clm")
  local t <close> = lm.trainer{model = model, objective = objective,
                               tokenizer = kind == "bert" and wordpiece or tokenizer,
                               train = kind == "bert" and bert_blocks or blocks,
                               max_steps = 20, batch_size = 4, grad_accum = accumulation, lr = 1e-3,
                               logging_strategy = "no", eval_strategy = "no", cuda_graph = graphs}
  steps(t, 2) -- the first steps allocate activations and build GEMM plans; then graphs are captured
  t:check()
  local before, graphs_before = t:device_counters(), t:graph_stats()
  steps(t, 5)
  local after, graphs_after = t:device_counters(), t:graph_stats()
  local label = string.format("%s %s, %d micro-batch(es) per step, cuda_graph=%s", kind, precision, accumulation,
                              graphs)
  local replayed = graphs_after.replayed - graphs_before.replayed
  assert(replayed == (graphs == "auto" and 5 * (accumulation + 1) or 0),
         string.format("%s: 5 steps replayed %d graphs", label, replayed))
  assert(after.downloads == before.downloads and after.syncs == before.syncs,
         string.format("%s: 5 steps read the device %d times and waited %d times", label,
                       after.downloads - before.downloads, after.syncs - before.syncs))
  assert(after.uploads > before.uploads, label .. ": the batches were uploaded")
  local logs = t:log()
  local read = t:device_counters()
  assert(read.downloads == after.downloads + 1, label .. ": log() reads the step state once")
  assert(logs.step == 7 and logs.loss == logs.loss and logs.grad_norm > 0,
         string.format("%s: logs at step %d: loss %g, grad norm %g", label, logs.step, logs.loss, logs.grad_norm))
  print(string.format("%s: 5 steps, 0 reads, 0 waits, %d graph launches; loss %.4f", label, replayed, logs.loss))
end
os.remove(path)
print("OK gpu step reads")
