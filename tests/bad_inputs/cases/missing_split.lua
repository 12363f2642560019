-- expect: fetch_wikitext2.sh
local ds <close> = lm.dataset("wikitext", {path = args.data})
ds:count("train")
