-- expect: is not a regular file: remove it
-- A FIFO in the lock file's place is refused, never waited on.
assert(os.execute("mkdir " .. args.tmp .. "/out && mkfifo " .. args.tmp .. "/out/.lmcore.lock"))
lm.lock_dir(args.tmp .. "/out")
