--- Argument checks shared by the layer constructors of `lunet.nn`: each error names
-- the class, the argument and the bad value. Private to lua/lunet/nn/.
-- @module lunet.nn.args
local core = require "lunet.core"

local A = {}

local function describe(v)
  if type(v) == "string" then return ("'%s'"):format(v) end
  if core.is_tensor(v) then return "a tensor" end
  if type(v) == "table" then return "a table" end
  return tostring(v)
end
A.describe = describe

--- An integer >= min (default 1).
function A.int(cls, name, v, min)
  min = min or 1
  if math.type(v) ~= "integer" or v < min then
    error(("%s: %s must be an integer >= %d, got %s"):format(cls, name, min, describe(v)), 3)
  end
  return v
end

--- An integer >= min or a pair {h, w} of them; returns the value as given (integer
-- when both are equal) and h, w.
function A.pair(cls, name, v, min)
  min = min or 1
  if math.type(v) == "integer" and v >= min then return v, v, v end
  if type(v) == "table" and not core.is_tensor(v) and #v == 2 and
     math.type(v[1]) == "integer" and math.type(v[2]) == "integer" and
     v[1] >= min and v[2] >= min then
    if v[1] == v[2] then return v[1], v[1], v[1] end
    return { v[1], v[2] }, v[1], v[2]
  end
  error(("%s: %s must be an integer >= %d or a pair {h, w} of them, got %s"):format(
    cls, name, min, describe(v)), 3)
end

--- A number (optionally in [lo, hi]).
function A.number(cls, name, v, lo, hi)
  if type(v) ~= "number" or (lo and v < lo) or (hi and v > hi) then
    local range = lo and hi and (" in [%g, %g]"):format(lo, hi) or ""
    error(("%s: %s must be a number%s, got %s"):format(cls, name, range, describe(v)), 3)
  end
  return v
end

function A.bool(cls, name, v)
  if type(v) ~= "boolean" then
    error(("%s: %s must be a boolean, got %s"):format(cls, name, describe(v)), 3)
  end
  return v
end

--- An options table (nil allowed) whose keys are all in `allowed`; returns it or {}.
function A.opts(cls, opts, allowed)
  if opts == nil then return {} end
  if type(opts) ~= "table" or core.is_tensor(opts) then
    error(("%s: options must be a table, got %s"):format(cls, describe(opts)), 3)
  end
  for k in pairs(opts) do
    local known = false
    for _, a in ipairs(allowed) do known = known or k == a end
    if not known then
      error(("%s: unknown option '%s' (expected %s)"):format(cls, tostring(k),
        table.concat(allowed, ", ")), 3)
    end
  end
  return opts
end

--- "3" or "{3, 5}" for printing an integer-or-pair value.
function A.show(v)
  if type(v) == "table" then return "{" .. table.concat(v, ", ") .. "}" end
  return tostring(v)
end

return A
