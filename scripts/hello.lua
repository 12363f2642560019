-- The smallest pipeline: load the console logger plugin and log through it.
--   lmcore run scripts/hello.lua [name=you]
local console <close> = lm.logger("console")
console:message(string.format("hello from lmcore %s, %s", lm.version(), args.name or "world"))
for _, p in ipairs(lm.plugins()) do
  console:message(string.format("  %-12s %-10s %s", p.kind, p.name, p.description), "debug")
end
