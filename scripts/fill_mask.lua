-- Fills [MASK] tokens with a saved masked language model.
--   lmcore run scripts/fill_mask.lua model=runs/bert_mlm text="The [MASK] began development in [MASK] ." top_k=5
local model_dir = args.model or error("pass model=DIR (a folder saved by bert_mlm.lua)", 0)
local text = args.text or error('pass text="... [MASK] ..."', 0)
local top_k = args.top_k or 5
local device = args.device or "cpu"
for k in pairs(args) do
  if k ~= "model" and k ~= "text" and k ~= "top_k" and k ~= "device" then
    error(string.format("unknown argument '%s' (known: model, text, top_k, device)", k), 0)
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
