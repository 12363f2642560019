-- expect: lmcore: error: lm.trainer: 'model' must be a model (lm.architecture or lm.load_model), got nothing (nil)
-- once "bad argument #-1 to 'trainer'"
local o <close> = lm.objective("clm")
lm.trainer{objective = o, max_steps = 1}
