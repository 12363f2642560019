-- Generates text with a saved causal model (a folder written by gpt2_clm.lua).
--   lmcore run scripts/generate.lua model=runs/gpt2_clm prompt="The game began" \
--        max_new_tokens=50 temperature=0.8 top_k=40 top_p=0.95 seed=1 device=cpu
-- temperature=0 is greedy decoding.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/lib/?.lua;" .. package.path
local options = require("options")
local opt = options.option
local cfg = options.parse({
  script = "generate.lua", summary = "Generates text with a saved causal model (a folder written by gpt2_clm.lua).",
  options = {
    opt("model", "runs/gpt2_clm", "the model folder (model.safetensors, config.json, tokenizer.json)"),
    opt("prompt", "The", "the text to continue"),
    opt("max_new_tokens", 50, "tokens to generate", {min = 1}),
    opt("temperature", 1.0, "sampling temperature (0: greedy)", {type = "number", min = 0}),
    opt("top_k", 0, "sample from the k likeliest tokens (0: all)", {min = 0}),
    opt("top_p", 1.0, "sample from the smallest set with this much probability", {type = "number", above = 0,
        max = 1}),
    opt("seed", 42, "the sampling seed", {min = 0}),
    opt("device", "cpu", "cpu, cuda, cuda:N or auto"),
    opt("stop_at_eos", true, "stop at the end-of-text token"),
  },
}, args)
if not cfg then return end

local tokenizer_json = cfg.model .. "/tokenizer.json"
local f, why = io.open(tokenizer_json, "r")
if not f then error(why .. ": is " .. cfg.model .. " a folder saved by gpt2_clm.lua?", 0) end
local kind = lm.json_decode(f:read("a"), tokenizer_json).model.type
f:close()
local tokenizer <close> = lm.tokenizer(kind == "WordPiece" and "wordpiece" or "bpe", {path = tokenizer_json})
local model <close> = lm.load_model(cfg.model, {device = cfg.device, tokenizer = tokenizer})
local vocab = tokenizer:info()

local prompt = tokenizer:encode(cfg.prompt, {add_special = false})
local ids, stats = model:generate(prompt, {max_new_tokens = cfg.max_new_tokens, temperature = cfg.temperature,
  top_k = cfg.top_k, top_p = cfg.top_p, seed = cfg.seed, eos_id = cfg.stop_at_eos and vocab.eos_id or -1})
print(cfg.prompt .. tokenizer:decode(ids))
io.stderr:write(string.format("%d tokens in %.2f s (%.1f tokens/s, %s)\n", stats.new_tokens, stats.seconds,
                              stats.tokens_per_second, stats.kv_cache and "KV cache" or "no KV cache: full forward per token"))
