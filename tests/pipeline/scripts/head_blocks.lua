-- Training blocks from the first `chars` characters of WikiText-2's
-- validation split (written to a text file for the text dataset), so that
-- an epoch is a handful of steps.  Returns the blocks and the dataset they
-- were read from (the caller closes both).
--   local head_blocks = require("head_blocks")
--   local head_dataset <close>, blocks = head_blocks(tokenizer, data, 6000, opts)
--   local train <close> = blocks
return function(tokenizer, data, chars, opts)
  local head = os.tmpname()
  local src, dst, n = assert(io.open(data .. "/wiki.valid.raw")), assert(io.open(head, "w")), 0
  for line in src:lines() do
    dst:write(line, "\n")
    n = n + #line
    if n > chars then break end
  end
  src:close()
  dst:close()
  local dataset = lm.dataset("text", {train = head})
  local ok, blocks = pcall(lm.blocks, tokenizer, dataset, "train", opts)
  os.remove(head)
  if not ok then
    dataset:close()
    error(blocks, 0)
  end
  return dataset, blocks
end
