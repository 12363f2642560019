-- expect: config.json
lm.load_model(args.tmp .. "/nothing_here", {device = "cpu"})
