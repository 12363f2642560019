-- Prints each argument with its Lua type, sorted by key.
local keys = {}
for k in pairs(args) do keys[#keys + 1] = k end
table.sort(keys)
for _, k in ipairs(keys) do
  local v = args[k]
  local t = math.type(v) or type(v)
  print(k .. "=" .. tostring(v) .. " (" .. t .. ")")
end
