-- Helpers for the cases that tamper with saved files.
local files = {}

function files.read(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("a")
  f:close()
  return data
end

function files.write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

-- Overwrites the float32 at element `index` (from 0) of tensor `name` in a
-- safetensors file with `value` (a float), leaving the header as it is.
function files.poke_float(path, name, index, value)
  local data = files.read(path)
  local header_len = string.unpack("<I8", data)
  local header = lm.json_decode(data:sub(9, 8 + header_len), path)
  local entry = assert(header[name], name .. " not in " .. path)
  local at = 8 + header_len + entry.data_offsets[1] + 4 * index
  files.write(path, data:sub(1, at) .. string.pack("<f", value) .. data:sub(at + 5))
end

-- Replaces the first match of `pattern` in a text file.
function files.edit(path, pattern, replacement)
  local text = files.read(path)
  local edited, n = text:gsub(pattern, replacement, 1)
  assert(n == 1, pattern .. " not found in " .. path)
  files.write(path, edited)
end

return files
