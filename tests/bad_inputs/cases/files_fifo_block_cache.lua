-- expect: is a FIFO (named pipe), not a regular file: remove it
-- A FIFO where the token cache file is: refused, naming the cache file.
local ds <close> = lm.dataset("wikitext", {path = args.data})
local tok <close> = lm.tokenizer("bpe", {vocab_size = 300})
tok:train(ds, "validation")
local cache = args.tmp .. "/cache"
local first <close> = lm.blocks(tok, ds, "validation", {block_size = 16, cache_dir = cache})
assert(os.execute("for f in " .. cache .. "/*.lmblocks; do rm \"$f\" && mkfifo \"$f\"; done"))
lm.blocks(tok, ds, "validation", {block_size = 16, cache_dir = cache})
