--- Tensor methods written in Lua (sugar over the C methods of `lunet.core`) and the
-- PyTorch-like printing behind `tostring(t)` / `print(t)`.
-- Printing: all values up to 1000 elements, otherwise the first and last 3 entries of
-- every dimension with "..." between; floats as `1.0000`, `1.` (all integral) or
-- `1.0000e+05` (wide ranges); then size (when summarised or empty), dtype, device and
-- the autograd state (`grad_fn=<conv2d>` or `requires_grad=true`).
-- @module lunet.tensor
local core = require "lunet.core"

local Tensor = core.Tensor

local THRESHOLD = 1000 -- summarise tensors with more elements than this
local EDGE = 3         -- entries kept at each end of a summarised dimension
local LINEWIDTH = 80

--- `t:view(...)` is `t:reshape(...)`.
function Tensor:view(...) return self:reshape(...) end

--- Transpose of a 2-D tensor.
function Tensor:t()
  if self:dim() ~= 2 then
    error(("t: expects a 2-D tensor, got shape [%s]"):format(table.concat(self:shape(), ", ")), 2)
  end
  return self:transpose(1, 2)
end

function Tensor:float() return self:to("f32") end
function Tensor:double() return self:to("f64") end
function Tensor:long() return self:to("i64") end
function Tensor:int() return self:to("i32") end
function Tensor:byte() return self:to("u8") end
function Tensor:cpu() return self:to("cpu") end
--- `t:cuda()` moves to "cuda" (device 0), `t:cuda(n)` to "cuda:n" (CUDA's ordinal).
function Tensor:cuda(n) return self:to(n and ("cuda:" .. n) or "cuda") end

-- ------------------------------------------------------------------- printing
local function flatten(v, depth, out)
  if depth == 0 then
    out[#out + 1] = v
  else
    for _, x in ipairs(v) do flatten(x, depth - 1, out) end
  end
  return out
end

-- Returns a function formatting one element, chosen from all the shown values.
local function element_format(values, is_float)
  if not is_float then return function(x) return ("%d"):format(x) end end
  local all_int, maxabs, minabs = true, 0, math.huge
  for _, x in ipairs(values) do
    if x == x and x ~= math.huge and x ~= -math.huge then
      local a = math.abs(x)
      if x ~= math.floor(x) then all_int = false end
      if a > maxabs then maxabs = a end
      if a ~= 0 and a < minabs then minabs = a end
    end
  end
  local sci
  if all_int then
    sci = maxabs > 1e8
  else
    sci = maxabs > 1e8 or (minabs < 1e-4) or (minabs ~= math.huge and maxabs / minabs > 1000)
  end
  local pattern = sci and "%.4e" or (all_int and "%.0f." or "%.4f")
  return function(x)
    if x ~= x then return "nan" end
    if x == math.huge then return "inf" end
    if x == -math.huge then return "-inf" end
    return pattern:format(x)
  end
end

local function render(v, d, shape, indent, cell, edge)
  local nd = #shape
  local cut = edge > 0 and shape[d] > 2 * edge
  if d == nd then -- a row, wrapped at LINEWIDTH
    local items = {}
    for i, x in ipairs(v) do
      items[#items + 1] = cell(x)
      if cut and i == edge then items[#items + 1] = "..." end
    end
    local width = 0
    for _, s in ipairs(items) do width = math.max(width, #s) end
    local per_line = math.max(1, (LINEWIDTH - indent - 2) // (width + 2))
    local lines = {}
    for i = 1, #items, per_line do
      lines[#lines + 1] = table.concat(items, ", ", i, math.min(i + per_line - 1, #items))
    end
    return "[" .. table.concat(lines, ",\n" .. (" "):rep(indent + 1)) .. "]"
  end
  local parts = {}
  for i, sub in ipairs(v) do
    parts[#parts + 1] = render(sub, d + 1, shape, indent + 1, cell, edge)
    if cut and i == edge then parts[#parts + 1] = "..." end
  end
  local sep = "," .. ("\n"):rep(nd - d) .. (" "):rep(indent + 1)
  return "[" .. table.concat(parts, sep) .. "]"
end

--- The printed form of a tensor.
local function format_tensor(t)
  if not core.is_tensor(t) then return "tensor(<freed>)" end
  local shape, numel, dtype = t:shape(), t:numel(), t:dtype()
  local is_float = dtype == "f32" or dtype == "f64"
  local edge = numel > THRESHOLD and EDGE or 0
  local suffix = {}
  if edge > 0 or numel == 0 then
    suffix[#suffix + 1] = "size=[" .. table.concat(shape, ", ") .. "]"
  end
  suffix[#suffix + 1] = "dtype=" .. dtype
  suffix[#suffix + 1] = "device=" .. t:device()
  local grad_fn = t:grad_fn()
  if grad_fn then
    suffix[#suffix + 1] = "grad_fn=<" .. grad_fn .. ">"
  elseif t:requires_grad() then
    suffix[#suffix + 1] = "requires_grad=true"
  end
  local body
  if numel == 0 then
    body = "[]"
  else
    local values = core.edge_values(t, edge)
    local flat = flatten(values, #shape, {})
    local fmt = element_format(flat, is_float)
    local width = 0
    for _, x in ipairs(flat) do width = math.max(width, #fmt(x)) end
    local function cell(x)
      local s = fmt(x)
      return (" "):rep(width - #s) .. s
    end
    if #shape == 0 then
      body = fmt(values)
    else
      body = render(values, 1, shape, #"tensor(", cell, edge)
    end
  end
  return "tensor(" .. body .. ", " .. table.concat(suffix, ", ") .. ")"
end

core.metatable.__tostring = format_tensor

return { format = format_tensor }
