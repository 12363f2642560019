-- expect: objective 'clm' needs a causal architecture
local ds <close> = lm.dataset("wikitext", {path = args.data})
local tok <close> = lm.tokenizer("wordpiece", {vocab_size = 500})
tok:train(ds, "validation")
local b <close> = lm.blocks(tok, ds, "validation", {block_size = 16})
local m <close> = lm.architecture("bert", {num_hidden_layers = 1, vocab_size = 500, hidden_size = 16, num_attention_heads = 2,
  intermediate_size = 32, max_position_embeddings = 16, device = "cpu"})
local o <close> = lm.objective("clm")
lm.trainer{model = m, objective = o, tokenizer = tok, train = b}
