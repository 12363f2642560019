-- A small GPT-2 or BERT trained on N ranks for the gradient-bucket test
-- (test_ddp_buckets.sh):
--   lmcore run bucket_train.lua data=DIR out=DIR [model=gpt2|bert layers=3 batch=2 accum=2 steps=6
--        ddp_overlap=true ddp_bucket_cap_mb=25 zero_stage=0]
-- Each rank writes "step hash" after every step to out/hashes-rank<R>.txt;
-- rank 0 saves the model in out.  Dropout is on (the masks are per rank
-- and micro-batch) so that every rank's gradients differ.
local a = args
local out = assert(a.out, "out=DIR")
local kind = a.model or "gpt2"
local rank = lm.rank()
lm.mkdir(out)

local dataset <close> = lm.dataset("wikitext", {path = assert(a.data, "data=DIR")})
local tokenizer <close> = kind == "gpt2"
  and lm.tokenizer("bpe", {vocab_size = 384, min_frequency = 2, special_tokens = {"<|endoftext|>"}})
  or lm.tokenizer("wordpiece", {vocab_size = 600})
tokenizer:train(dataset, "validation")
local vocab = tokenizer:info()
local opts = {block_size = 32, add_special = kind ~= "gpt2", cache_dir = out .. "/cache-rank" .. rank}
local train <close> = lm.blocks(tokenizer, dataset, "validation", opts)
local layers = a.layers or 3
local model <close> = kind == "gpt2"
  and lm.architecture("gpt2", {vocab_size = vocab.vocab_size, n_layer = layers, n_head = 2, n_embd = 32,
                               n_positions = 32, device = "cpu", threads = 1})
  or lm.architecture("bert", {vocab_size = vocab.vocab_size, num_hidden_layers = layers, num_attention_heads = 2,
                              hidden_size = 32, intermediate_size = 64, max_position_embeddings = 32,
                              pad_token_id = vocab.pad_id, device = "cpu", threads = 1})
model:init(42)
local objective <close> = lm.objective(kind == "gpt2" and "clm" or "mlm", {})

local hashes = assert(io.open(string.format("%s/hashes-rank%d.txt", out, rank), "w"))
local callbacks = {{
  name = "hashes",
  on_step_end = function(_, t)
    hashes:write(string.format("%d %s\n", t.step, model:weights_hash()))
    hashes:flush()
  end,
}}
local trainer <close> = lm.trainer{
  model = model, objective = objective, tokenizer = tokenizer, train = train, callbacks = callbacks,
  lr = 3e-3, batch_size = a.batch or 2, grad_accum = a.accum or 2, max_steps = a.steps or 6, seed = 42,
  warmup_steps = 1, log_every = 100, eval_strategy = "no",
  communicator = "auto", zero_stage = a.zero_stage or 0,
  ddp_overlap = a.ddp_overlap == nil and true or a.ddp_overlap, ddp_bucket_cap_mb = a.ddp_bucket_cap_mb or 25,
}
trainer:fit()
hashes:close()
model:save(out)
