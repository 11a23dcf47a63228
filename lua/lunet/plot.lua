--- Training curves as an SVG file (design.md section 9), rewritten after every epoch
-- next to the metrics log: four panels, all against the epoch (fractional for the
-- per-step samples):
--   loss            training loss (cross-entropy) sampled during the epochs, the
--                   epoch means and the test loss
--   learning rate   the rate at each sample (log scale when it spans > 20x)
--   accuracy        train and test top-1 (and test top-5), in percent
--   regulariser     the orthogonality penalty (without lambdaR), total and per basis
--                   group (log scale when it spans > 20x)
-- Plain SVG 1.1 (lines, polylines, text), readable by any browser.
--
-- `history` is what lunet.train keeps: {epochs = {record...}, steps = {{x =, loss =,
-- lr =}...}}, records as in lunet.train (epoch, train_loss, test_loss, lr, train_acc1,
-- test_acc1, test_acc5, train_reg, reg_groups = {name = value}).
-- @module lunet.plot
local M = {}

local W, H = 1000, 720           -- the picture
local PW, PH = 500, 360          -- one panel
local ML, MR, MT, MB = 70, 20, 36, 44 -- panel margins
local COLORS = { "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
                 "#e377c2", "#7f7f7f", "#bcbd22", "#17becf" }

local function esc(s)
  return (tostring(s):gsub("[<>&\"]", { ["<"] = "&lt;", [">"] = "&gt;", ["&"] = "&amp;", ['"'] = "&quot;" }))
end

local function finite(v) return type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge end

local function fmt(v)
  if v == 0 then return "0" end
  local a = math.abs(v)
  if a >= 1e4 or a < 1e-3 then return ("%.0e"):format(v) end
  return (("%.4g"):format(v))
end

-- "Nice" tick positions covering [lo, hi] (linear).
local function linear_ticks(lo, hi)
  local span = hi - lo
  local raw = span / 5
  local mag = 10 ^ math.floor(math.log(raw, 10))
  local step = mag
  for _, m in ipairs { 1, 2, 5, 10 } do
    if raw <= m * mag then step = m * mag; break end
  end
  local ticks = {}
  local t = math.ceil(lo / step - 1e-9) * step
  while t <= hi + step * 1e-9 do
    ticks[#ticks + 1] = math.abs(t) < step * 1e-9 and 0 or t
    t = t + step
  end
  return ticks
end

-- One panel. series: list of {name, points = {{x, y}...}, color, width, dots}.
-- opts: title, ylabel, log (allow log scale), ymin (force a lower bound), x_max.
local function panel(out, x0, y0, series, opts)
  local xs, ys = {}, {}
  local xmin, xmax = math.huge, -math.huge
  local ymin, ymax = math.huge, -math.huge
  for _, s in ipairs(series) do
    for _, p in ipairs(s.points) do
      if finite(p[1]) and finite(p[2]) then
        xmin, xmax = math.min(xmin, p[1]), math.max(xmax, p[1])
        ymin, ymax = math.min(ymin, p[2]), math.max(ymax, p[2])
      end
    end
  end
  local left, top = x0 + ML, y0 + MT
  local w, h = PW - ML - MR, PH - MT - MB
  out[#out + 1] = ('<text x="%d" y="%d" font-size="15" font-weight="bold">%s</text>'):format(
    left, y0 + 22, esc(opts.title))
  out[#out + 1] = ('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>'):format(
    left, top, w, h)
  if xmin > xmax then
    out[#out + 1] = ('<text x="%d" y="%d" font-size="13" fill="#777">no data yet</text>'):format(
      left + w / 2 - 35, top + h / 2)
    return
  end
  xmin = math.min(xmin, 0)
  if opts.x_max then xmax = math.max(xmax, opts.x_max) end
  if xmax <= xmin then xmax = xmin + 1 end
  local log = opts.log and ymin > 0 and ymax / ymin > 20
  if opts.ymin then ymin = math.min(ymin, opts.ymin) end
  local ty = function(v) return v end
  if log then
    ty = function(v) return math.log(v, 10) end
    ymin, ymax = math.floor(ty(ymin)), math.ceil(ty(ymax))
  end
  if ymax <= ymin then
    local pad = ymax == 0 and 1 or math.abs(ymax) * 0.1
    ymin, ymax = ymin - pad, ymax + pad
  elseif not log then
    local pad = (ymax - ymin) * 0.05
    ymin, ymax = (opts.ymin and ymin) or ymin - pad, ymax + pad
  end
  local function px(x) return left + (x - xmin) / (xmax - xmin) * w end
  local function py(y) return top + h - (ty(y) - ymin) / (ymax - ymin) * h end

  -- grid and ticks
  local yt = {}
  if log then
    for e = ymin, ymax do yt[#yt + 1] = 10 ^ e end
  else
    yt = linear_ticks(ymin, ymax)
  end
  for _, v in ipairs(yt) do
    local y = py(v)
    out[#out + 1] = ('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e5e5e5"/>'):format(left, y, left + w, y)
    out[#out + 1] = ('<text x="%.1f" y="%.1f" font-size="11" text-anchor="end">%s</text>'):format(
      left - 5, y + 4, fmt(v))
  end
  for _, v in ipairs(linear_ticks(xmin, xmax)) do
    local x = px(v)
    out[#out + 1] = ('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e5e5e5"/>'):format(x, top, x, top + h)
    out[#out + 1] = ('<text x="%.1f" y="%.1f" font-size="11" text-anchor="middle">%s</text>'):format(
      x, top + h + 16, fmt(v))
  end
  out[#out + 1] = ('<text x="%.1f" y="%d" font-size="12" text-anchor="middle">epoch</text>'):format(
    left + w / 2, top + h + 34)
  if opts.ylabel then
    out[#out + 1] = ('<text x="%d" y="%.1f" font-size="12" text-anchor="middle" transform="rotate(-90 %d %.1f)">%s</text>'):format(
      x0 + 16, top + h / 2, x0 + 16, top + h / 2, esc(opts.ylabel .. (log and " (log)" or "")))
  end

  -- the series and the legend
  for i, s in ipairs(series) do
    local color = s.color or COLORS[(i - 1) % #COLORS + 1]
    local pts = {}
    for _, p in ipairs(s.points) do
      if finite(p[1]) and finite(p[2]) and (not log or p[2] > 0) then
        pts[#pts + 1] = ("%.1f,%.1f"):format(px(p[1]), py(p[2]))
      end
    end
    if #pts > 1 then
      out[#out + 1] = ('<polyline fill="none" stroke="%s" stroke-width="%s" points="%s"/>'):format(
        color, s.width or 2, table.concat(pts, " "))
    end
    if s.dots or #pts == 1 then
      for _, xy in ipairs(pts) do
        local x, y = xy:match("([^,]+),([^,]+)")
        out[#out + 1] = ('<circle cx="%s" cy="%s" r="3" fill="%s"/>'):format(x, y, color)
      end
    end
    local ly = top + 14 + (i - 1) * 15
    out[#out + 1] = ('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>'):format(
      left + w - 150, ly - 4, left + w - 132, ly - 4, color)
    out[#out + 1] = ('<text x="%d" y="%d" font-size="11">%s</text>'):format(left + w - 127, ly, esc(s.name))
  end
end

local function column(records, key)
  local pts = {}
  for _, r in ipairs(records) do
    if r[key] ~= nil then pts[#pts + 1] = { r.epoch, r[key] } end
  end
  return pts
end

--- The SVG text of a history. opts: title, epochs (the planned last epoch, so the
-- x axes show the whole run).
function M.svg(history, opts)
  opts = opts or {}
  local records, steps = history.epochs or {}, history.steps or {}
  local out = {
    '<?xml version="1.0" encoding="UTF-8"?>',
    ('<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif">'):format(W, H, W, H),
    ('<rect width="%d" height="%d" fill="white"/>'):format(W, H),
  }
  if opts.title then
    out[#out + 1] = ('<title>%s</title>'):format(esc(opts.title))
  end
  local step_loss, step_lr = {}, {}
  for _, s in ipairs(steps) do
    step_loss[#step_loss + 1] = { s.x, s.loss }
    step_lr[#step_lr + 1] = { s.x, s.lr }
  end
  local lr_points = step_lr
  if #lr_points == 0 then lr_points = column(records, "lr") end
  panel(out, 0, 0, {
    { name = "train (samples)", points = step_loss, width = 1, color = "#9ecae1" },
    { name = "train (epoch)", points = column(records, "train_loss"), dots = true, color = "#1f77b4" },
    { name = "test", points = column(records, "test_loss"), dots = true, color = "#d62728" },
  }, { title = "loss", ylabel = "cross-entropy", x_max = opts.epochs })
  panel(out, PW, 0, {
    { name = "learning rate", points = lr_points, color = "#2ca02c" },
  }, { title = "learning rate", ylabel = "lr", log = true, x_max = opts.epochs })
  panel(out, 0, PH, {
    { name = "train top-1", points = column(records, "train_acc1"), dots = true, color = "#1f77b4" },
    { name = "test top-1", points = column(records, "test_acc1"), dots = true, color = "#d62728" },
    { name = "test top-5", points = column(records, "test_acc5"), dots = true, color = "#ff7f0e" },
  }, { title = "accuracy", ylabel = "%", x_max = opts.epochs })
  local reg_series = { { name = "mean over epoch", points = column(records, "train_reg"), dots = true } }
  local names = {}
  for _, r in ipairs(records) do
    for name in pairs(r.reg_groups or {}) do names[name] = true end
  end
  local sorted = {}
  for name in pairs(names) do sorted[#sorted + 1] = name end
  table.sort(sorted)
  for i, name in ipairs(sorted) do
    if i > 8 then break end
    local pts = {}
    for _, r in ipairs(records) do
      local v = r.reg_groups and r.reg_groups[name]
      if v then pts[#pts + 1] = { r.epoch, v } end
    end
    reg_series[#reg_series + 1] = { name = name, points = pts, width = 1, dots = true }
  end
  panel(out, PW, PH, reg_series, { title = "orthogonality regulariser", ylabel = "penalty",
                                   log = true, x_max = opts.epochs })
  out[#out + 1] = "</svg>"
  return table.concat(out, "\n") .. "\n"
end

--- Writes the SVG to path (through a temporary file renamed over it, so a reader
-- never sees half a picture).
function M.write(path, history, opts)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "w")
  if not f then error("plot: cannot write " .. tostring(err), 2) end
  f:write(M.svg(history, opts))
  f:close()
  local ok, rerr = os.rename(tmp, path)
  if not ok then error("plot: cannot rename " .. tmp .. ": " .. tostring(rerr), 2) end
end

return M
