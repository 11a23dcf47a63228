--- Containers of `lunet.nn`: Sequential.
-- @module lunet.nn.containers
local Module = require "lunet.nn.module"

local C = {}

--- Runs its children in order: `Sequential(m1, m2, ...)`. Children are named "0",
-- "1", ... as in PyTorch (so parameter names read `layer1.0.conv1.weight`);
-- `seq[i]` with a 1-based integer i gives the i-th child, `#seq` their count.
local Sequential = Module:extend("Sequential")
C.Sequential = Sequential

function Sequential:__init(...)
  Module.__init(self)
  local n = select("#", ...)
  for i = 1, n do
    local m = select(i, ...)
    if not Module.is_module(m) then
      error(("Sequential: argument %d must be a module, got %s"):format(i, type(m)), 3)
    end
    self:add(m)
  end
end

--- Appends a module (named by its 0-based position). Returns self.
function Sequential:add(m)
  if not Module.is_module(m) then
    error(("Sequential.add: expected a module, got %s"):format(type(m)), 2)
  end
  self:add_module(tostring(#self), m)
  return self
end

function Sequential:forward(x)
  local reg = rawget(self, "_modules")
  for _, name in ipairs(reg.names) do x = reg.items[name](x) end
  return x
end

function Sequential:__len() return #rawget(self, "_modules").names end

local base_index = Module.__index
function Sequential:__index(k)
  if math.type(k) == "integer" then
    local reg = rawget(self, "_modules")
    local name = reg.names[k]
    return name and reg.items[name]
  end
  return base_index(self, k)
end

return C
