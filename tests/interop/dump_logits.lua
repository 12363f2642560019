-- Writes lmcore's token ids and logits (every position) for `text` with a
-- saved model, as JSON, for check_hf_interop.py to compare with transformers.
--   lmcore run tests/interop/dump_logits.lua model=DIR text="..." out=FILE
local dir, text, out = assert(args.model, "model=DIR"), assert(args.text, "text=..."), assert(args.out, "out=FILE")
local f = assert(io.open(dir .. "/tokenizer.json"))
local kind = lm.json_decode(f:read("a")).model.type
f:close()
local tokenizer <close> = lm.tokenizer(kind == "WordPiece" and "wordpiece" or "bpe", {path = dir .. "/tokenizer.json"})
local model <close> = lm.load_model(dir, {device = args.device or "cpu"})
local ids = tokenizer:encode(text)
local logits = {}
for position = 1, #ids do logits[position] = model:logits(ids, position) end
local o = assert(io.open(out, "w"))
o:write(lm.json_encode({ids = ids, logits = logits}, 0))
o:close()
