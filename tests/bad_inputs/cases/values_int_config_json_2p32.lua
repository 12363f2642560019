-- expect: architecture 'gpt2': n_embd must be an integer between 1 and 65536, got 4294967312 (hf_config
-- a config.json whose width wraps to 16 in 32 bits
lm.mkdir(args.tmp .. "/m")
local f = assert(io.open(args.tmp .. "/m/config.json", "w"))
f:write('{"model_type": "gpt2", "vocab_size": 50, "n_layer": 1, "n_embd": 4294967312, "n_head": 2, "n_positions": 16}\n')
f:close()
lm.load_model(args.tmp .. "/m", {device = "cpu"})
