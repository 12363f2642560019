-- expect: architecture 'gpt2': n_ctx must be an integer between 1 and 1048576, got 4294967312 (hf_config
-- GPT-2's old name of n_positions, the default when n_positions is absent: once unchecked, wrapping to 16
lm.mkdir(args.tmp .. "/m")
local f = assert(io.open(args.tmp .. "/m/config.json", "w"))
f:write('{"model_type": "gpt2", "vocab_size": 50, "n_layer": 1, "n_embd": 16, "n_head": 2, "n_ctx": 4294967312}\n')
f:close()
lm.load_model(args.tmp .. "/m", {device = "cpu"})
