-- The command-line options of a script, declared once.
--
-- A script lists its options (name, default, a one-line description, type,
-- range, older names) in one table; that table alone drives
--   * the merge of key=value arguments over the defaults (and a preset),
--   * `lmcore run SCRIPT --help` and `lmcore help SCRIPT`,
--   * the unknown-key error and its "did you mean",
--   * the type and range checks.
-- So a typo never silently trains the wrong model, and the help cannot
-- drift from what the script accepts.
--
--   local spec = {
--     script = "gpt2_clm.lua", summary = "GPT-2 trained from scratch ...",
--     options = {
--       options.option("learning_rate", 2e-5, "the peak learning rate",
--                      {type = "number", above = 0, aliases = {"lr"}}),
--       ...
--     },
--     presets = {small = {...}},
--   }
--   local cfg = options.parse(spec, args)   -- nil when --help was asked for
--   if not cfg then return end
local M = {}

-- One option.  extra: type ("int", "number", "string", "bool", "path|bool"
-- for a string that true/false may replace; default: the default's type),
-- min / max (inclusive bounds), above (an exclusive lower bound), choices
-- (the values allowed), aliases (older names), section (a heading in the
-- help), settings (a plugin's own settings, given as SETTINGS.KEY=VALUE and
-- gathered in a table under the option's name),
-- shown_default (how the help shows a default that needs words).
function M.option(name, default, description, extra)
  local o = {name = name, default = default, description = description}
  for k, v in pairs(extra or {}) do o[k] = v end
  if not o.type then
    local t = type(default)
    o.type = t == "boolean" and "bool" or t == "number" and (math.type(default) == "integer" and "int" or "number")
      or "string"
  end
  return o
end

-- ---- did you mean ------------------------------------------------------------------------

-- Levenshtein distance (insertions, deletions, substitutions), two rows.
local function edit_distance(a, b)
  local previous, current = {}, {}
  for j = 0, #b do previous[j] = j end
  for i = 1, #a do
    current[0] = i
    local ca = a:byte(i)
    for j = 1, #b do
      local cost = ca == b:byte(j) and 0 or 1
      current[j] = math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
    end
    previous, current = current, previous
  end
  return previous[#b]
end
M.edit_distance = edit_distance

-- The known name closest to `name`, if close enough to be a typo (a third of
-- its letters at most, at least 2), else nil.
local function closest(name, known)
  local best, best_distance = nil, math.max(2, #name // 3) + 1
  for _, candidate in ipairs(known) do
    local d = edit_distance(name, candidate)
    if d < best_distance then best, best_distance = candidate, d end
  end
  return best
end
M.closest = closest

-- ---- the table -----------------------------------------------------------------------------

local function index(spec)
  if spec.by_name then return spec end
  spec.by_name, spec.by_alias, spec.settings_groups = {}, {}, {}
  for _, o in ipairs(spec.options) do
    if spec.by_name[o.name] then error("option '" .. o.name .. "' is declared twice", 2) end
    spec.by_name[o.name] = o
    for _, alias in ipairs(o.aliases or {}) do spec.by_alias[alias] = o end
    if o.settings then spec.settings_groups[o.settings] = o end
  end
  return spec
end

local function format_value(v)
  if type(v) == "string" then return v == "" and '""' or v end
  if math.type(v) == "float" then return string.format("%g", v) end
  return tostring(v)
end

local function range_text(o)
  local parts = {}
  if o.choices then parts[#parts + 1] = table.concat(o.choices, "|") end
  if o.above ~= nil then parts[#parts + 1] = "> " .. format_value(o.above) end
  if o.min ~= nil and o.max ~= nil then
    parts[#parts + 1] = format_value(o.min) .. ".." .. format_value(o.max)
  elseif o.min ~= nil then
    parts[#parts + 1] = ">= " .. format_value(o.min)
  elseif o.max ~= nil then
    parts[#parts + 1] = "<= " .. format_value(o.max)
  end
  return table.concat(parts, ", ")
end

-- The help text: every option with its default, description, range and
-- older names, grouped by section; then the presets.
function M.help(spec)
  index(spec)
  local out = {}
  local function add(s) out[#out + 1] = s end
  add(string.format("usage: lmcore run %s [key=value ...]", spec.script))
  if spec.summary then add(""); add(spec.summary) end
  local section
  for _, o in ipairs(spec.options) do
    if o.section ~= section then
      section = o.section
      add("")
      add((section or "options") .. ":")
    end
    local left
    if o.settings then
      left = o.settings .. ".KEY=VALUE"
    else
      left = o.name .. "=" .. (o.shown_default or format_value(o.default))
    end
    local notes = {}
    local range = range_text(o)
    if range ~= "" then notes[#notes + 1] = range end
    if o.aliases and #o.aliases > 0 then notes[#notes + 1] = "alias: " .. table.concat(o.aliases, ", ") end
    local note = #notes > 0 and " (" .. table.concat(notes, "; ") .. ")" or ""
    if #left <= 30 then
      add(string.format("  %-30s %s%s", left, o.description, note))
    else
      add("  " .. left)
      add(string.format("  %-30s %s%s", "", o.description, note))
    end
  end
  if spec.presets then
    local names = {}
    for name in pairs(spec.presets) do names[#names + 1] = name end
    table.sort(names)
    if #names > 0 then
      add("")
      add("presets (preset=NAME sets these; arguments given override them):")
      for _, name in ipairs(names) do
        local keys = {}
        for k in pairs(spec.presets[name]) do keys[#keys + 1] = k end
        table.sort(keys)
        local pairs_text = {}
        for _, k in ipairs(keys) do pairs_text[#pairs_text + 1] = k .. "=" .. format_value(spec.presets[name][k]) end
        add(string.format("  %-8s %s", name, table.concat(pairs_text, " ")))
      end
    end
  end
  add("")
  add("Values: integers and decimals are numbers, true/false booleans, the rest text (quote spaces: "
    .. 'prompt="The game").')
  return table.concat(out, "\n") .. "\n"
end

-- ---- checks ----------------------------------------------------------------------------------

local function type_error(o, given_as, v)
  local wanted = ({int = "an integer", number = "a number", string = "text", bool = "true or false",
                   ["path|bool"] = "a path, true or false"})[o.type] or o.type
  local shown = given_as == o.name and "'" .. o.name .. "'" or string.format("'%s' (%s)", given_as, o.name)
  error(string.format("argument %s must be %s, got %s", shown, wanted, format_value(v)), 0)
end

-- The value converted to the option's type, or an error naming the option.
local function check_value(o, given_as, v)
  local t = o.type
  if t == "int" then
    if math.type(v) ~= "integer" then type_error(o, given_as, v) end
  elseif t == "number" then
    if type(v) ~= "number" then type_error(o, given_as, v) end
  elseif t == "bool" then
    if type(v) ~= "boolean" then type_error(o, given_as, v) end
  elseif t == "path|bool" then
    if type(v) == "number" then v = tostring(v) end
    if type(v) ~= "string" and type(v) ~= "boolean" then type_error(o, given_as, v) end
  else -- text: a number given where text is expected (prompt=2010) is its text
    if type(v) == "number" then v = tostring(v) end
    if type(v) ~= "string" then type_error(o, given_as, v) end
  end
  local shown = given_as == o.name and "'" .. o.name .. "'" or string.format("'%s' (%s)", given_as, o.name)
  if o.choices then
    local ok = false
    for _, c in ipairs(o.choices) do ok = ok or c == v end
    if not ok then
      local guess = type(v) == "string" and closest(v, o.choices) or nil
      error(string.format("argument %s must be one of %s, got '%s'%s", shown, table.concat(o.choices, ", "),
                          format_value(v), guess and string.format(": did you mean '%s'?", guess) or ""), 0)
    end
  end
  if type(v) == "number" then
    if (o.min ~= nil and v < o.min) or (o.max ~= nil and v > o.max) or (o.above ~= nil and not (v > o.above))
       or v ~= v then
      error(string.format("argument %s must be %s, got %s", shown, range_text(o), format_value(v)), 0)
    end
  end
  return v
end

-- ---- parse -----------------------------------------------------------------------------------

-- cfg: every option's value under its name (the default, then the preset's,
-- then the argument given under its name or an older name), and the set of
-- options given on the command line (name -> the key used).  nil when
-- args.help is true (`lmcore run SCRIPT --help`): the help is printed.
function M.parse(spec, given)
  index(spec)
  if given.help == true then
    io.write(M.help(spec))
    return nil
  end
  local cfg = {}
  for _, o in ipairs(spec.options) do
    cfg[o.name] = o.default
  end

  local preset = given.preset
  if preset ~= nil then
    local p = spec.presets and spec.presets[preset]
    if not p then
      local names = {}
      for name in pairs(spec.presets or {}) do names[#names + 1] = name end
      table.sort(names)
      error(string.format("unknown preset '%s' (known: %s)", tostring(preset), table.concat(names, ", ")), 0)
    end
    for k, v in pairs(p) do
      local o = spec.by_name[k] or error("preset '" .. preset .. "' sets an undeclared option '" .. k .. "'", 0)
      cfg[o.name] = v
    end
    cfg.preset = preset
  end

  local seen = {} -- option name -> the key it was given under
  local keys = {}
  for k in pairs(given) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = given[k]
    -- dataset.KEY=VALUE (optimizer.KEY=VALUE) goes to the dataset (optimizer)
    -- plugin as its setting KEY: the plugin refuses keys it does not know,
    -- naming the ones it does.
    local group, plugin_key = k:match("^(%a+)%.(.+)$")
    local o = spec.by_name[k] or spec.by_alias[k]
    if group and spec.settings_groups[group] then
      local field = spec.settings_groups[group].name
      cfg[field] = cfg[field] or {}
      cfg[field][plugin_key] = v
    elseif k == "preset" then
      if not spec.presets then error("this script has no presets: drop preset=" .. tostring(v), 0) end
    elseif not o or o.settings then
      local known = {}
      for name, option in pairs(spec.by_name) do
        if not option.settings then known[#known + 1] = name end
      end
      for alias in pairs(spec.by_alias) do known[#known + 1] = alias end
      table.sort(known)
      local guess = closest(k, known)
      local hint = guess and string.format("did you mean '%s'? ", guess) or ""
      error(string.format("unknown argument '%s': %s`lmcore help %s` lists every option", k, hint,
                          spec.script), 0)
    else
      if seen[o.name] then
        error(string.format("arguments '%s' and '%s' both set %s: give only one of them", seen[o.name], k, o.name), 0)
      end
      seen[o.name] = k
      cfg[o.name] = check_value(o, k, v)
    end
  end
  -- A preset's values are checked too (a preset cannot break a range).
  for _, o in ipairs(spec.options) do
    if not o.settings and not seen[o.name] and cfg[o.name] ~= nil then check_value(o, o.name, cfg[o.name]) end
  end
  return cfg, seen
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
