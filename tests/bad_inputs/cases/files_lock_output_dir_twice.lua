-- expect: is in use by another run: this process (pid
-- The same folder locked twice: the second is refused and names the holder.
local first <close> = lm.lock_dir(args.tmp .. "/out")
lm.lock_dir(args.tmp .. "/out")
