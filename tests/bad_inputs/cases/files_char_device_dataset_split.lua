-- expect: '/dev/zero' is a character device, not a regular file
-- /dev/zero as a split would be read until memory runs out.
local ds <close> = lm.dataset("text", {train = "/dev/zero"})
ds:count("train")
