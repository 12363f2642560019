-- Steps/s of the same training with the step replayed as CUDA graphs
-- (cuda_graph=auto) and eagerly (cuda_graph=off), on a model small enough
-- that launching kernels, not running them, bounds the step (where graphs
-- help).  Prints one line
--   RESULT graph_speed model=gpt2 layers=4 width=128 batch=8x64 eager_steps_per_second=... graph_steps_per_second=... speedup=...
-- and checks that both trained the same weights.
--   lmcore run bench/gpu/graph_speed.lua out=PATH [steps=200] [device=cuda]
local out = assert(args.out, "out=PATH (a scratch file prefix)")
local steps = args.steps or 200
local device = args.device or "cuda"

local lines = {}
for i = 1, 2000 do
  lines[#lines + 1] = string.format("line %d: a text of no interest, read %d times by a model that times itself", i,
                                    i % 11)
end
local path = out .. ".txt"
local f = assert(io.open(path, "w"))
f:write(table.concat(lines, "\n"), "\n")
f:close()
local dataset <close> = lm.dataset("text", {train = path})
local tokenizer <close> = lm.tokenizer("bpe", {vocab_size = 512, min_frequency = 1})
tokenizer:train(dataset, "train")
local blocks <close> = lm.blocks(tokenizer, dataset, "train", {block_size = 64})

-- steps/s as fit() measures it (run start to finish, whose read waits for
-- the queued steps); the graphs' warm-up and capture steps are among them.
local function timed(mode)
  local model <close> = lm.architecture("gpt2", {vocab_size = 512, n_layer = 4, n_head = 4, n_embd = 128,
                                                 n_positions = 64, device = device})
  model:init(1)
  local objective <close> = lm.objective("clm")
  local t <close> = lm.trainer{model = model, objective = objective, tokenizer = tokenizer, train = blocks,
                               max_steps = steps, batch_size = 8, lr = 1e-3, logging_strategy = "no",
                               eval_strategy = "no", cuda_graph = mode}
  local r = t:fit()
  return r.steps_per_second, model:weights_hash(), t:graph_stats()
end

local eager, eager_hash = timed("off")
local graph, graph_hash, stats = timed("auto")
os.remove(path)
assert(eager_hash == graph_hash, "graphs trained other weights: " .. graph_hash .. " vs " .. eager_hash)
print(string.format("RESULT graph_speed model=gpt2 layers=4 width=128 batch=8x64 eager_steps_per_second=%.1f "
                    .. "graph_steps_per_second=%.1f speedup=%.2f replayed=%d", eager, graph, graph / eager,
                    stats.replayed))
