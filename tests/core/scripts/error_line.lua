-- The error below must be reported as error_line.lua:3
local x = 1
local logger = lm.logger("test_logger", {pth = "typo"})
