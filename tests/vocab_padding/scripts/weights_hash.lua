-- What Lua sees of a padded model (run by test_vocab_padding_resume):
-- weights_hash(), n_params(), info() and logits() those of the unpadded
-- model, the padding rows outside all of them.
local settings = {vocab_size = 300, n_layer = 1, n_head = 2, n_embd = 32, n_positions = 16, device = "cpu"}
local function model(pad)
  local s = {}
  for k, v in pairs(settings) do s[k] = v end
  s.pad_vocab_to_multiple_of = pad
  local m = lm.architecture("gpt2", s)
  m:init(7)
  return m
end
local plain, padded = model(1), model(128)
assert(plain:weights_hash() == padded:weights_hash(),
       "weights_hash: " .. padded:weights_hash() .. " padded, " .. plain:weights_hash() .. " unpadded")
assert(plain:n_params() == padded:n_params(), "n_params differ")
assert(padded:info().vocab_size == 300, "vocab_size " .. padded:info().vocab_size)
local a, b = plain:logits({1, 2, 299}, 3), padded:logits({1, 2, 299}, 3)
assert(#a == 300 and #b == 300, "logits of " .. #a .. " and " .. #b .. " ids")
for i = 1, 300 do
  assert(math.abs(a[i] - b[i]) <= 1e-6 * (math.abs(a[i]) + 1), "logit " .. i .. ": " .. b[i] .. " vs " .. a[i])
end
print("weights_hash " .. padded:weights_hash() .. " on both")
