-- expect: transformer.h.1.ln_1.weight
-- two layers in config.json and the weights of one, with the file padded so
-- that the value count matches: the missing tensor is named
local dir = dofile("tests/bad_inputs/saved_model.lua")
local files = dofile("tests/bad_inputs/model_files.lua")
local m <close> = lm.architecture("gpt2", {n_layer = 2, vocab_size = 300, n_embd = 16, n_head = 2, n_positions = 32,
                                          device = "cpu", threads = 1})
m:init(1)
m:save(args.tmp .. "/two")
-- one layer's tensors, plus an unrelated tensor as large as a layer
local one = files.read(dir .. "/model.safetensors")
files.write(dir .. "/config.json", files.read(args.tmp .. "/two/config.json"))
local header_len = string.unpack("<I8", one)
local header = one:sub(9, 8 + header_len)
local data = one:sub(9 + header_len)
local pad = 3280 * 4
local last = #data
header = header:gsub("}%s*$", string.format(',"padding":{"dtype":"F32","shape":[3280],"data_offsets":[%d,%d]}}', last,
                                         last + pad))
files.write(dir .. "/model.safetensors", string.pack("<I8", #header) .. header .. data .. string.rep("\0", pad))
lm.load_model(dir, {device = "cpu"})
