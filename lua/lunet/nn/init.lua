--- Neural-network building blocks (see docs/nn.md):
-- `functional` (stateless ops, usually `F`), the `Module` base class and its layers
-- (Conv2d, BatchNorm2d, ReLU, ReLU6, Sigmoid, Linear, Dropout, Sequential, MaxPool2d,
-- GlobalAvgPool2d, Identity, Flatten, ECA, FilterBasis, BasisConv2d), the
-- initialisers `init` and `with_forward_hook`.
-- @module lunet.nn
local Module = require "lunet.nn.module"

local nn = {
  functional = require "lunet.nn.functional",
  Module = Module,
  init = require "lunet.nn.initializers",
  is_module = Module.is_module,
}

for _, part in ipairs { "lunet.nn.layers", "lunet.nn.containers", "lunet.nn.basis" } do
  for name, cls in pairs(require(part)) do nn[name] = cls end
end

--- Calls body(...) and returns its results; during the call every module call invokes
-- fn(module, inputs, output) after the module's forward (inputs: the list of its
-- arguments, with field n). Hooks nest (outer ones are called first). The hook is
-- removed even when body raises an error (re-raised unchanged).
function nn.with_forward_hook(fn, body, ...)
  if type(fn) ~= "function" or type(body) ~= "function" then
    error(("with_forward_hook: expected two functions (hook, body), got %s and %s"):format(
      type(fn), type(body)), 2)
  end
  local hooks = Module._hooks
  local slot = #hooks + 1
  hooks[slot] = fn
  local res = table.pack(pcall(body, ...))
  for i = #hooks, 1, -1 do
    if hooks[i] == fn and i == slot then table.remove(hooks, i); break end
  end
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

return nn
