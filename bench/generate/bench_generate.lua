-- lmcore side of the generation benchmark (run by bench_generate.sh).
--   lmcore run bench/generate/bench_generate.lua model=DIR prompt=1,2,3 new_tokens=128 threads=2 repeats=3
--   lmcore run bench/generate/bench_generate.lua save=DIR seed=1234 n_layer=4 n_head=4 n_embd=256 \
--        vocab_size=8192 n_positions=512 initializer_range=0.02
-- save=DIR writes a randomly initialised GPT-2 (model.safetensors + config.json,
-- loadable by transformers' GPT2LMHeadModel.from_pretrained) and exits.
-- Otherwise: loads DIR, runs one warm-up generation, then `repeats` greedy
-- generations of new_tokens tokens after the prompt through model:generate
-- (the KV cache when the plugin has it), and prints one JSON line with the
-- tokens/s of each run (new tokens / generation seconds, prompt included)
-- and the generated ids.
local function integer(key, default)
  local v = args[key]
  if v == nil then return default end
  return math.tointeger(v) or error(key .. " must be an integer", 0)
end

if args.save then
  local model <close> = lm.model("gpt2", {n_layer = integer("n_layer", 4), n_head = integer("n_head", 4),
    n_embd = integer("n_embd", 256), vocab_size = integer("vocab_size", 8192),
    n_positions = integer("n_positions", 512), initializer_range = tonumber(args.initializer_range or 0.02),
    device = "cpu"})
  model:init(integer("seed", 1234))
  model:save(args.save)
  io.stderr:write(string.format("saved a GPT-2 of %d parameters to %s\n", model:n_params(), args.save))
  return
end

local model_dir = args.model or error("model=DIR is required", 0)
local prompt = {}
for id in tostring(args.prompt or error("prompt=ID,ID,... is required", 0)):gmatch("%d+") do
  prompt[#prompt + 1] = math.tointeger(id)
end
local new_tokens, repeats = integer("new_tokens", 128), integer("repeats", 3)
local model <close> = lm.load_model(model_dir, {device = "cpu", threads = integer("threads", 2)})
local greedy = {max_new_tokens = new_tokens, temperature = 0, eos_id = -1}

model:generate(prompt, {max_new_tokens = 8, temperature = 0, eos_id = -1}) -- warm-up (page faults, thread pool)
local rates, ids, kv_cache = {}, nil, nil
for r = 1, repeats do
  local out, stats = model:generate(prompt, greedy)
  assert(#out == new_tokens, "generated " .. #out .. " tokens")
  if ids then
    for i = 1, #out do assert(out[i] == ids[i], "greedy generation differs between runs") end
  end
  ids, kv_cache = out, stats.kv_cache
  rates[r] = stats.new_tokens / stats.seconds
end
print(lm.json_encode({impl = "lmcore", tokens_per_s = rates, ids = ids, kv_cache = kv_cache,
                      threads = integer("threads", 2), prompt_tokens = #prompt}, 0))
