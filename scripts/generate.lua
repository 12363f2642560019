-- Generates text with a saved causal model (a folder written by gpt2_clm.lua).
--   lmcore run scripts/generate.lua model=runs/gpt2_clm prompt="The game began" \
--        max_new_tokens=50 temperature=0.8 top_k=40 top_p=0.95 seed=1 device=cpu
-- temperature=0 is greedy decoding.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/lib/?.lua;" .. package.path
local options = require("options")
local cfg = options.merge({model = "runs/gpt2_clm", prompt = "The", max_new_tokens = 50, temperature = 1.0,
                           top_k = 0, top_p = 1.0, seed = 42, device = "cpu", stop_at_eos = true}, args)

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
