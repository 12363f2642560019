-- Merges `args` (key=value pairs from the command line) into a table of
-- defaults; an unknown key is an error that lists the known ones, so a
-- typo never silently trains the wrong model.
local M = {}

function M.merge(defaults, given, presets)
  local cfg = {}
  for k, v in pairs(defaults) do cfg[k] = v end
  local preset = given.preset
  if preset ~= nil then
    local p = presets and presets[preset]
    if not p then
      local names = {}
      for name in pairs(presets or {}) do names[#names + 1] = name end
      table.sort(names)
      error(string.format("unknown preset '%s' (known: %s)", tostring(preset), table.concat(names, ", ")), 0)
    end
    for k, v in pairs(p) do cfg[k] = v end
    cfg.preset = preset
  end
  for k, v in pairs(given) do
    -- dataset.KEY=VALUE (optimizer.KEY=VALUE) goes to the dataset (optimizer)
    -- plugin as its setting KEY: the plugin refuses keys it does not know,
    -- naming the ones it does.
    local part, plugin_key = nil, nil
    if type(k) == "string" then part, plugin_key = k:match("^(%a+)%.(.+)$") end
    local settings = part and part .. "_settings"
    if settings and defaults[settings] ~= nil then
      cfg[settings] = cfg[settings] or {}
      cfg[settings][plugin_key] = v
    elseif k ~= "preset" then
      if defaults[k] == nil then
        local known = {}
        for name in pairs(defaults) do known[#known + 1] = name end
        table.sort(known)
        error(string.format("unknown argument '%s' (known: %s)", k, table.concat(known, ", ")), 0)
      end
      if defaults[k] ~= false and type(defaults[k]) ~= type(v) and not (type(defaults[k]) == "number" and type(v) == "number") then
        error(string.format("argument '%s' must be a %s, got %s", k, type(defaults[k]), tostring(v)), 0)
      end
      cfg[k] = v
    end
  end
  return cfg
end

-- Returns the first directory of the list that holds `file`, else the first.
function M.first_existing(dirs, file)
  for _, d in ipairs(dirs) do
    local f = io.open(d .. "/" .. file, "r")
    if f then f:close(); return d end
  end
  return dirs[1]
end

function M.exists(path)
  local f = io.open(path, "r")
  if f then f:close(); return true end
  return false
end

return M
