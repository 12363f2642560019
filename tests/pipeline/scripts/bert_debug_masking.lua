-- Shows one block before and after dynamic masking (reference section 5.3).
local dataset <close> = lm.dataset("wikitext", {path = assert(args.data)})
local tokenizer <close> = lm.tokenizer("wordpiece", {vocab_size = 1024})
tokenizer:train(dataset, "test")
local train <close> = lm.blocks(tokenizer, dataset, "test", {block_size = 32})
local model <close> = lm.architecture("bert", {vocab_size = 1024, num_hidden_layers = 1, num_attention_heads = 2,
  hidden_size = 32, intermediate_size = 64, max_position_embeddings = 64, device = "cpu", threads = 1})
model:init(1)
local objective <close> = lm.objective("mlm", {debug_masking = true})
local trainer <close> = lm.trainer{model = model, objective = objective, tokenizer = tokenizer, train = train,
  max_steps = 1, batch_size = 2, eval_every_epoch = false}
trainer:fit()

-- objective:batch: the same masking, one block at a time, as tables.
local mlm <close> = lm.objective("mlm", {seed = 7})
local first = mlm:batch(model, tokenizer, train, 3, 5)
local again = mlm:batch(model, tokenizer, train, 3, 5)
local block = train:get(3)
local mask_id = tokenizer:token_to_id("[MASK]")
local chosen, masked = 0, 0
for i = 1, #block do
  assert(first.input_ids[i] == again.input_ids[i], "masking is a function of (seed, batch index)")
  if first.labels[i] == -100 then
    assert(first.input_ids[i] == block[i], "an unchosen token is left as it was")
  else
    chosen = chosen + 1
    assert(first.labels[i] == block[i], "the label is the original token")
    if first.input_ids[i] == mask_id then masked = masked + 1 end
  end
end
assert(chosen == first.n_targets and chosen > 0, string.format("%d chosen, n_targets %d", chosen, first.n_targets))
local other = mlm:batch(model, tokenizer, train, 3, 6)
local differs = false
for i = 1, #block do differs = differs or other.labels[i] ~= first.labels[i] end
assert(differs, "another batch index draws other masks")
local ok, err = pcall(mlm.batch, mlm, model, tokenizer, train, train:count())
assert(not ok and err:find("the block index must be an integer between 0 and"), err)
print(string.format("objective:batch ok: %d of %d tokens chosen, %d of them [MASK]", chosen, #block, masked))
