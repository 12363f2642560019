-- Looks at the data before training, like sections 3.1-3.2 of the reference
-- report: a raw row, five random rows, a tokenized row, a decoded block.
--   lmcore run scripts/inspect_data.lua data=../shared/data/wikitext-2-raw train_split=test
--   options: tokenizer=bpe|wordpiece vocab_size=N block_size=128 row=10 seed=42
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/lib/?.lua;" .. package.path
local options = require("options")
local opt = options.option
local cfg = options.parse({
  script = "inspect_data.lua",
  summary = "Shows the data before training: a raw row, five random rows, a tokenized row, a decoded block.",
  options = {
    opt("data", require("pipeline").default_data(), "folder holding wiki.{train,valid,test}.raw",
        {shown_default = "data/wikitext-2-raw or ../shared/data/wikitext-2-raw"}),
    opt("train_split", "train", "the split to look at (and train the tokenizer on)"),
    opt("tokenizer", "bpe", "the tokenizer to train", {choices = {"bpe", "wordpiece"}}),
    opt("vocab_size", 8192, "the tokenizer's vocabulary", {min = 16}),
    opt("block_size", 128, "tokens per block", {min = 1}),
    opt("row", 10, "the row shown in figure 1", {min = 0}),
    opt("seed", 42, "the seed of the five random rows", {min = 0}),
    opt("cache_dir", "", "cache the token blocks there (\"\": no cache)"),
  },
}, args)
if not cfg then return end

local dataset <close> = lm.dataset("wikitext", {path = cfg.data})
local split = cfg.train_split

local function show(s)
  return (s:gsub("\n", "\\n"))
end

print(string.format('Figure 1: datasets["%s"][%d]', split, cfg.row))
print(string.format("{'text': '%s'}", show(dataset:row(split, cfg.row))))
print()

print(string.format('Figure 2: five random rows of "%s" (seed %d)', split, cfg.seed))
print(string.format("%5s | %s", "row", "text"))
for _, r in ipairs(dataset:sample(split, 5, cfg.seed)) do
  local t = show(r.text)
  if #t > 160 then t = t:sub(1, 157) .. "..." end
  print(string.format("%5d | %s", r.index, t))
end
print()

local settings = {vocab_size = cfg.vocab_size}
if cfg.tokenizer == "bpe" then settings.special_tokens = {"<|endoftext|>"} end
local tokenizer <close> = lm.tokenizer(cfg.tokenizer, settings)
tokenizer:train(dataset, split)
local ids, mask = tokenizer:encode(dataset:row(split, 1), {add_special = cfg.tokenizer == "wordpiece"})
print(string.format('Figure 3: tokenized_datasets["%s"][1] (%s tokenizer, %d tokens)', split, cfg.tokenizer,
                    tokenizer:vocab_size()))
print(string.format("{'input_ids': [%s],\n 'attention_mask': [%s]}", table.concat(ids, ", "), table.concat(mask, ", ")))
print()

local blocks <close> = lm.blocks(tokenizer, dataset, split, {block_size = cfg.block_size,
  add_special = cfg.tokenizer == "wordpiece", cache_dir = cfg.cache_dir ~= "" and cfg.cache_dir or nil})
print(string.format('Figure 4: tokenizer.decode(lm_datasets["%s"][1]["input_ids"]) (%d blocks of %d tokens)',
                    split, blocks:count(), cfg.block_size))
print("'" .. show(tokenizer:decode(blocks:get(1))) .. "'")
