-- expect: lm.log: the level must be one of
-- expect: did you mean 'warn'?
-- A choice checked in C (lm.log's level here) gets the same hint as the
-- scripts' options.
lm.log("warnn", "hello")
