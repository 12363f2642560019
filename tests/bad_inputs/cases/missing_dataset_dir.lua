-- expect: wiki.train.raw
local ds <close> = lm.dataset("wikitext", {path = args.tmp .. "/no_such_dir"})
ds:count("train")
