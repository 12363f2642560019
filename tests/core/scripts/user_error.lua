-- A user's mistake caught by an lm.* check: the message alone, no Lua position, no traceback
local x = 1
local logger = lm.logger("test_logger", {pth = "typo"})
