-- The smallest pipeline: load the console logger plugin and log through it.
--   lmcore run scripts/hello.lua [name=you]
-- (`lmcore --log-level debug run ...` also lists the plugins it finds)
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/lib/?.lua;" .. package.path
local options = require("options")
local cfg = options.parse({
  script = "hello.lua",
  summary = "Says hello through the console logger plugin, and lists the plugins it finds at --log-level debug.",
  options = {
    options.option("name", "world", "who to greet"),
  },
}, args)
if not cfg then return end -- --help was printed

local console <close> = lm.logger("console")
console:message(string.format("hello from lmcore %s, %s", lm.version(), cfg.name))
for _, p in ipairs(lm.plugins()) do
  console:message(string.format("  %-12s %-10s %s", p.kind, p.name, p.description), "debug")
end
