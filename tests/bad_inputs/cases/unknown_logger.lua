-- expect: unknown logger plugin 'tensorbored'
lm.logger("tensorbored", {logdir = args.tmp})
