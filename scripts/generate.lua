-- Generates text with a saved causal model (a folder written by gpt2_clm.lua).
--   lmcore run scripts/generate.lua model=runs/gpt2_clm prompt="The game began" \
--        max_new_tokens=50 temperature=0.8 top_k=40 top_p=0.95 seed=1 device=cpu
-- temperature=0 (or do_sample=false) is greedy decoding; num_return_sequences=N
-- draws N samples, with seeds seed .. seed+N-1.
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
    opt("repetition_penalty", 1.0, "divides the logits of tokens already in the text (CTRL's; 1: off)",
        {type = "number", above = 0}),
    opt("no_repeat_ngram_size", 0, "no n-gram of this many tokens appears twice (0: off)", {min = 0}),
    opt("do_sample", true, "sample (false: greedy decoding, as temperature=0)"),
    opt("num_return_sequences", 1, "samples drawn from the prompt (seeds seed, seed+1, ...)", {min = 1}),
    opt("seed", 42, "the sampling seed", {min = 0}),
    opt("device", "cpu", "cpu, cuda, cuda:N or auto"),
    opt("stop_at_eos", true, "stop at the end-of-text token"),
  },
}, args)
if not cfg then return end

-- Hugging Face's generate() refuses several sequences from greedy decoding
-- (they would all be the same): so does this.
local greedy = not cfg.do_sample or cfg.temperature == 0
if greedy and cfg.num_return_sequences > 1 then
  error(string.format("num_return_sequences=%d needs sampling: greedy decoding (%s) gives one sequence",
                      cfg.num_return_sequences, cfg.do_sample and "temperature=0" or "do_sample=false"), 0)
end

local tokenizer_json = cfg.model .. "/tokenizer.json"
local f, why = io.open(tokenizer_json, "r")
if not f then error(why .. ": is " .. cfg.model .. " a folder saved by gpt2_clm.lua?", 0) end
local kind = lm.json_decode(f:read("a"), tokenizer_json).model.type
f:close()
local tokenizer <close> = lm.tokenizer(kind == "WordPiece" and "wordpiece" or "bpe", {path = tokenizer_json})
local model <close> = lm.load_model(cfg.model, {device = cfg.device, tokenizer = tokenizer})
local vocab = tokenizer:info()

local prompt = tokenizer:encode(cfg.prompt, {add_special = false})
for n = 1, cfg.num_return_sequences do
  local ids, stats = model:generate(prompt, {max_new_tokens = cfg.max_new_tokens,
    temperature = greedy and 0 or cfg.temperature, top_k = cfg.top_k, top_p = cfg.top_p, seed = cfg.seed + n - 1,
    repetition_penalty = cfg.repetition_penalty, no_repeat_ngram_size = cfg.no_repeat_ngram_size,
    eos_id = cfg.stop_at_eos and vocab.eos_id or -1})
  if cfg.num_return_sequences > 1 then print(string.format("--- sequence %d (seed %d)", n, cfg.seed + n - 1)) end
  print(cfg.prompt .. tokenizer:decode(ids))
  io.stderr:write(string.format("%d tokens in %.2f s (%.1f tokens/s, %s)\n", stats.new_tokens, stats.seconds,
                                stats.tokens_per_second,
                                stats.kv_cache and "KV cache" or "no KV cache: full forward per token"))
end
