-- Exercises every binding of the spine; test_lua.c checks the result file.
local out = assert(args.out, "pass out=FILE")

assert(type(lm.version()) == "string")
assert(math.type(args.n) == "integer" and args.n == 12, "n should be the integer 12")
assert(math.type(args.f) == "float" and args.f == 0.5, "f should be the float 0.5")
assert(args.b == true and args.nb == false, "b/nb should be booleans")
assert(args.s == "hello world", "s should be a string")

-- plugins listing, filtered
local loggers = lm.plugins("logger")
local names = {}
for _, p in ipairs(loggers) do
  assert(p.kind == "logger")
  names[p.name] = true
end
assert(names.console and names.test_logger, "console and test_logger must be listed")

-- objects, methods, __tostring, close (idempotent) and __close
do
  local rec <close> = lm.logger("test_logger", {path = out})
  rec:message("hello from lua")
  assert(tostring(rec) == "logger 'test_logger'", tostring(rec))
  assert(rec:name() == "test_logger")
end
local console = lm.logger("console", {every = 10})
console:message("a console message", "warn")
console:close()
console:close()
local ok, err = pcall(function() console:message("after close") end)
assert(not ok and err:find("closed"), "use after close must raise: " .. tostring(err))

-- errors are raised with the script's file:line
ok, err = pcall(lm.logger, "no_such_logger")
assert(not ok and err:find("unknown logger plugin 'no_such_logger'"), err)
ok, err = pcall(lm.logger, "test_logger", {pth = "x"})
assert(not ok and err:find("unknown key 'pth'"), err)
ok, err = pcall(lm.logger, "test_logger", {path = {1, {}}})
assert(not ok and err:find("list item 2 must be a string"), err)
ok, err = pcall(lm.tokenizer, "no_such_tokenizer", {})
assert(not ok and err:find("unknown tokenizer plugin"), err)
collectgarbage()

local f = assert(io.open(out, "a"))
f:write("script finished\n")
f:close()
