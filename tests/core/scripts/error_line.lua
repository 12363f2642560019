-- An internal error (a bug in a script): reported as error_line.lua:3, with a traceback
local settings = nil
local path = settings.path
