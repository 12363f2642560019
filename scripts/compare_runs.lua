-- The side-by-side table of the reference report's section 6.2 for any
-- set of runs (folders written by gpt2_clm.lua / bert_mlm.lua), and an SVG
-- of their validation-loss curves.
--   lmcore run scripts/compare_runs.lua runs="runs/gpt2_clm runs/bert_mlm" \
--        [out=comparison.md] [out_svg=runs/comparison.svg] [x=step|epoch]
-- The curves come from each run's "<run folder>.log.jsonl" (the jsonl
-- logger's file): its "eval" lines carry step, epoch and eval_loss.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/lib/?.lua;" .. package.path
local options = require("options")
local opt = options.option
local cfg = options.parse({
  script = "compare_runs.lua",
  summary = "A table of runs side by side (markdown) and an SVG of their validation-loss curves.",
  options = {
    opt("runs", "", "the run folders, separated by spaces (quote them: runs=\"runs/a runs/b\")"),
    opt("out", "", "also write the table to this file"),
    opt("out_svg", "", "the SVG's path (\"\": comparison.svg beside the first run's folder)"),
    opt("x", "step", "the x-axis", {choices = {"step", "epoch"}}),
  },
}, args)
if not cfg then return end
local list = cfg.runs ~= "" and cfg.runs or error('pass runs="DIR1 DIR2 ..."', 0)
local first_run = list:match("%S+") or error('pass runs="DIR1 DIR2 ..."', 0)
local out_svg = cfg.out_svg ~= "" and cfg.out_svg or
  ((first_run:gsub("/+$", ""):match("^(.*)/[^/]*$") or ".") .. "/comparison.svg")
local x_key = cfg.x

local rows = {}
for dir in list:gmatch("%S+") do
  local f = io.open(dir .. "/results.json", "r")
  if not f then error(dir .. "/results.json not found: is it a folder written by gpt2_clm.lua or bert_mlm.lua?", 0) end
  local r = lm.json_decode(f:read("a"), dir .. "/results.json")
  f:close()
  r.dir = dir
  rows[#rows + 1] = r
end

local function fmt(format, v)
  return type(v) == "number" and v == v and string.format(format, v) or "n/a"
end

local lines = {
  "| Model | Architecture | Objective | Validation loss | Perplexity | Steps | Runtime | Data (train / eval) | Run |",
  "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | --- |",
}
for _, r in ipairs(rows) do
  lines[#lines + 1] = string.format("| %s | %s | %s | %s | %s | %s | %s | %s / %s | %s |", r.model,
    r.architecture, string.upper(r.objective), fmt("%.4f", r.eval_loss), fmt("%.2f", r.perplexity),
    fmt("%d", r.steps), fmt("%.0f s", r.runtime_seconds), r.train_split, r.eval_split, r.dir)
end
local text = table.concat(lines, "\n") .. "\n"
io.write(text)
if cfg.out ~= "" then lm.write_file(cfg.out, text) end

-- ---- validation curves ---------------------------------------------------------------

-- The (x, eval_loss) points of a run's jsonl log, or nil and why.
local function eval_points(r)
  local candidates = {r.dir .. ".log.jsonl"}
  if type(r.log) == "string" then candidates[2] = r.log end
  for _, path in ipairs(candidates) do
    local f = io.open(path, "r")
    if f then
      local points, n = {}, 0
      for line in f:lines() do
        n = n + 1
        if line:find('"event":"eval"', 1, true) then
          local ev = lm.json_decode(line, path .. ":" .. n)
          local x, y = ev[x_key], ev.eval_loss
          if type(x) == "number" and type(y) == "number" then points[#points + 1] = {x = x, y = y} end
        end
      end
      f:close()
      return points, path
    end
  end
  return nil, "no " .. table.concat(candidates, " or ")
end

local function escape(s)
  return (tostring(s):gsub("&", "&amp;"):gsub("<", "&lt;"):gsub(">", "&gt;"):gsub('"', "&quot;"))
end

-- Tick spacing of 1, 2 or 5 x 10^k giving about `target` intervals.
local function nice_axis(lo, hi, target)
  if not (hi > lo) then
    local pad = lo ~= 0 and math.abs(lo) * 0.05 or 0.5
    lo, hi = lo - pad, hi + pad
  end
  local raw = (hi - lo) / target
  local magnitude = 10 ^ math.floor(math.log(raw, 10))
  local norm = raw / magnitude
  local step = (norm < 1.5 and 1 or norm < 3 and 2 or norm < 7 and 5 or 10) * magnitude
  return {lo = math.floor(lo / step + 1e-9) * step, hi = math.ceil(hi / step - 1e-9) * step, step = step}
end

local function decimals(step) return math.max(0, math.min(6, math.ceil(-math.log(step, 10) - 1e-9))) end

local palette = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}
-- The legend goes under the plot, one row per run: it can never cover a
-- point (in the plot's corner it once hid one).
local W, LEFT, RIGHT, TOP, BOTTOM = 960, 80, 930, 70, 476
local LEGEND_TOP = BOTTOM + 64
local H = LEGEND_TOP + 20 * #rows + 16

local series = {}
local x_hi, y_lo, y_hi = 1, math.huge, -math.huge
for _, r in ipairs(rows) do
  local points, where = eval_points(r)
  if not points then
    io.stderr:write(string.format("compare_runs: no curve for %s (%s)\n", r.dir, where))
  elseif #points == 0 then
    io.stderr:write(string.format("compare_runs: no evaluation in %s\n", where))
  else
    series[#series + 1] = {label = string.format("%s (%s)", r.model or "?", r.dir), points = points}
    for _, p in ipairs(points) do
      x_hi, y_lo, y_hi = math.max(x_hi, p.x), math.min(y_lo, p.y), math.max(y_hi, p.y)
    end
  end
end
if #series == 0 then y_lo, y_hi = 0, 1 end
local ax, ay = nice_axis(0, x_hi, 8), nice_axis(y_lo, y_hi, 6)
local function px(v) return LEFT + (v - ax.lo) / (ax.hi - ax.lo) * (RIGHT - LEFT) end
local function py(v) return BOTTOM - (v - ay.lo) / (ay.hi - ay.lo) * (BOTTOM - TOP) end

local svg = {
  '<?xml version="1.0" encoding="UTF-8"?>',
  string.format('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
    .. 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif">', W, H, W, H),
  '  <rect width="100%" height="100%" fill="white"/>',
  string.format('  <text x="%d" y="32" font-size="20" font-weight="bold" text-anchor="middle" fill="#111111">'
    .. 'Validation loss of %d run%s</text>', W / 2, #rows, #rows == 1 and "" or "s"),
  '  <g font-size="12" fill="#333333">',
}
local function add(s) svg[#svg + 1] = s end
local xd, yd = decimals(ax.step), decimals(ay.step)
for v = ax.lo, ax.hi + ax.step * 1e-6, ax.step do
  local x = px(v)
  add(string.format('    <line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e5e5e5"/>', x, TOP, x, BOTTOM))
  add(string.format('    <text x="%.1f" y="%d" text-anchor="middle">%.' .. xd .. 'f</text>', x, BOTTOM + 19, v))
end
for v = ay.lo, ay.hi + ay.step * 1e-6, ay.step do
  local y = py(v)
  add(string.format('    <line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e5e5e5"/>', LEFT, y, RIGHT, y))
  add(string.format('    <text x="%d" y="%.1f" text-anchor="end">%.' .. yd .. 'f</text>', LEFT - 8, y + 4, v))
end
add(string.format('    <rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333333"/>', LEFT, TOP,
                  RIGHT - LEFT, BOTTOM - TOP))
add(string.format('    <text x="%d" y="%d" text-anchor="middle" font-size="14">%s</text>', (LEFT + RIGHT) / 2,
                  BOTTOM + 42, x_key == "epoch" and "epoch" or "optimizer step"))
add(string.format('    <text x="24" y="%d" text-anchor="middle" font-size="14" transform="rotate(-90 24 %d)">'
  .. 'validation loss</text>', (TOP + BOTTOM) / 2, (TOP + BOTTOM) / 2))
add('  </g>')
if #series == 0 then
  add(string.format('  <text x="%d" y="%d" font-size="16" text-anchor="middle" fill="#888888">'
    .. 'no evaluation found in the runs\' .log.jsonl files</text>', (LEFT + RIGHT) / 2, (TOP + BOTTOM) / 2))
end
for i, s in ipairs(series) do
  local color = palette[(i - 1) % #palette + 1]
  local coords = {}
  for _, p in ipairs(s.points) do coords[#coords + 1] = string.format("%.1f,%.1f", px(p.x), py(p.y)) end
  add(string.format('  <polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>', color,
                    table.concat(coords, " ")))
  for _, p in ipairs(s.points) do
    add(string.format('  <circle cx="%.1f" cy="%.1f" r="4" fill="%s" stroke="white" stroke-width="1.5"/>', px(p.x),
                      py(p.y), color))
  end
  local last = s.points[#s.points]
  local lx = px(last.x)
  add(string.format('  <text x="%.1f" y="%.1f" font-size="12" font-weight="bold" fill="%s" stroke="white" '
    .. 'stroke-width="3" paint-order="stroke" text-anchor="%s">%.3f</text>',
                    lx > RIGHT - 60 and lx - 8 or lx + 8, py(last.y) - 9, color, lx > RIGHT - 60 and "end" or "start",
                    last.y))
end
if #series > 0 then
  local lx, ly = LEFT, LEGEND_TOP
  add('  <g font-size="12" fill="#333333">')
  for i, s in ipairs(series) do
    local color, y = palette[(i - 1) % #palette + 1], ly + 15 + 20 * (i - 1)
    add(string.format('    <line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>', lx + 10, y, lx + 40,
                      y, color))
    add(string.format('    <text x="%d" y="%d">%s</text>', lx + 50, y + 4, escape(s.label)))
  end
  add('  </g>')
end
add('</svg>')
lm.write_file(out_svg, table.concat(svg, "\n") .. "\n")
print("wrote " .. out_svg)
