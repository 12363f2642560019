-- Fills [MASK] tokens with a saved masked language model.
--   lmcore run scripts/fill_mask.lua model=runs/bert_mlm text="The [MASK] began development in [MASK] ." top_k=5
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/lib/?.lua;" .. package.path
local options = require("options")
local opt = options.option
local cfg = options.parse({
  script = "fill_mask.lua", summary = "Fills [MASK] tokens with a saved masked language model (bert_mlm.lua's folder).",
  options = {
    opt("model", "", "the model folder (model.safetensors, config.json, tokenizer.json)"),
    opt("text", "", "the text, with one or more [MASK] tokens"),
    opt("top_k", 5, "candidates shown per [MASK]", {min = 1}),
    opt("device", "cpu", "cpu, cuda, cuda:N or auto"),
  },
}, args)
if not cfg then return end
if cfg.model == "" then error("pass model=DIR (a folder saved by bert_mlm.lua)", 0) end
if cfg.text == "" then error('pass text="... [MASK] ..."', 0) end
local model_dir, text, top_k, device = cfg.model, cfg.text, cfg.top_k, cfg.device

-- A causal model has no [MASK] to fill: say so before its tokenizer (a BPE
-- one) is refused for not being WordPiece.
do
  local path = model_dir .. "/config.json"
  local f = io.open(path, "r")
  if f then
    local model_type = lm.json_decode(f:read("a"), path).model_type
    f:close()
    if model_type == "gpt2" then
      error(string.format("fill_mask.lua needs a masked language model (bert_mlm.lua's), and %s holds a causal "
                          .. "'%s' model: use scripts/generate.lua model=%s", model_dir, model_type, model_dir), 0)
    end
  end
end
local tokenizer <close> = lm.tokenizer("wordpiece", {path = model_dir .. "/tokenizer.json"})
local model <close> = lm.load_model(model_dir, {device = device, tokenizer = tokenizer})
local vocab = tokenizer:info()
if not vocab.mask_id then error("the tokenizer in " .. model_dir .. " has no [MASK] token", 0) end

local ids = tokenizer:encode(text)
local positions = {}
for i, id in ipairs(ids) do
  if id == vocab.mask_id then positions[#positions + 1] = i end
end
if #positions == 0 then error("the text has no [MASK] token", 0) end

local predictions = model:top_k(ids, positions, top_k)
print(text)
for n, candidates in ipairs(predictions) do
  print(string.format("[MASK] #%d:", n))
  for rank, c in ipairs(candidates) do
    print(string.format("  %d. %-15s %.4f", rank, tokenizer:decode({c.id}), c.prob))
  end
end
-- The sentence with every [MASK] filled by its likeliest token (the
-- `sequence` of Hugging Face's fill-mask pipeline).
local filled = {}
for i, id in ipairs(ids) do filled[i] = id end
for n, position in ipairs(positions) do filled[position] = predictions[n][1].id end
print("sequence: " .. tokenizer:decode(filled, true))
