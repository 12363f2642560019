-- expect: model:top_k: the bert model's weights were never set
local m <close> = lm.architecture("bert", {vocab_size = 50, num_hidden_layers = 1, hidden_size = 16, num_attention_heads = 2, intermediate_size = 32, max_position_embeddings = 16, device = "cpu"})
m:top_k({1, 2, 3}, {2}, 3)
