-- expect: unknown key 'lerning_rate'
-- absent: {tmp}/log.csv
-- absent: {tmp}/log.jsonl
-- absent: {tmp}/tb
-- absent: {tmp}/report
-- Every file logger, not only the pipeline's: made before a trainer that
-- fails, none of them writes anything.
local csv <close> = lm.logger("csv", {path = args.tmp .. "/log.csv"})
local jsonl <close> = lm.logger("jsonl", {path = args.tmp .. "/log.jsonl"})
local tb <close> = lm.logger("tensorboard", {logdir = args.tmp .. "/tb"})
local report <close> = lm.logger("report", {dir = args.tmp .. "/report"})
local ds <close> = lm.dataset("wikitext", {path = args.data})
local tok <close> = lm.tokenizer("bpe", {vocab_size = 300})
tok:train(ds, "validation")
local b <close> = lm.blocks(tok, ds, "validation", {block_size = 16})
local m <close> = lm.architecture("gpt2", {n_layer = 1, vocab_size = 300, n_embd = 16, n_head = 2, n_positions = 16,
                                          device = "cpu"})
m:init(1)
local o <close> = lm.objective("clm")
local t <close> = lm.trainer{model = m, objective = o, tokenizer = tok, train = b, loggers = {csv, jsonl, tb, report},
                             max_steps = 2, lerning_rate = 1e-3}
