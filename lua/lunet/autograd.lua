--- Autograd from Lua: grad-mode scopes and custom differentiable functions.
-- @module lunet.autograd
local core = require "lunet.core"

local M = {}

-- Runs fn(...) with grad mode set to `enabled`, restoring the previous mode even when
-- fn errors (the error is re-raised unchanged).
local function with_grad_mode(enabled, fn, ...)
  if type(fn) ~= "function" then
    error(("expected a function, got %s"):format(type(fn)), 3)
  end
  local prev = core.set_grad_enabled(enabled)
  local res = table.pack(pcall(fn, ...))
  core.set_grad_enabled(prev)
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

--- Calls fn(...) with autograd recording off; returns fn's results. The previous
-- grad mode is restored even if fn raises an error.
function M.no_grad(fn, ...) return with_grad_mode(false, fn, ...) end

--- Calls fn(...) with autograd recording on (inside a no_grad region, say).
function M.enable_grad(fn, ...) return with_grad_mode(true, fn, ...) end

--- The `ctx` a custom Function's forward and backward share.
local FunctionCtx = {}
FunctionCtx.__index = FunctionCtx

--- Keeps tensors for backward (stored detached, so a saved output makes no cycle);
-- read them back as `ctx.saved_tensors` (a list).
function FunctionCtx:save_for_backward(...)
  local saved = table.pack(...)
  for i = 1, saved.n do
    if core.is_tensor(saved[i]) then saved[i] = saved[i]:detach() end
  end
  self.saved_tensors = saved
end

local Function = {}
Function.__index = Function

--- A custom differentiable op defined in Lua.
--     local Square = lunet.autograd.Function{
--       name = "Square",                               -- optional, shown as grad_fn
--       forward = function(ctx, x) ctx:save_for_backward(x); return x * x end,
--       backward = function(ctx, grad) local x = ctx.saved_tensors[1]; return grad * x * 2 end,
--     }
--     local y = Square(x)
-- Calling it runs forward(ctx, ...) under no_grad; forward must return one tensor. When
-- an argument requires grad, ONE autograd node is attached to the result; backward(ctx,
-- grad_output) must return one gradient per forward argument (nil for none), each of
-- the argument's shape, dtype and device. An error in backward becomes an ordinary Lua
-- error of the `backward()` call.
-- @tparam table def {forward = function, backward = function[, name = string]}
function M.Function(def)
  if type(def) ~= "table" then
    error(("Function: expected a table {forward = ..., backward = ...}, got %s"):format(type(def)), 2)
  end
  for k in pairs(def) do
    if k ~= "forward" and k ~= "backward" and k ~= "name" then
      error(("Function: unknown field '%s' (expected forward, backward, name)"):format(tostring(k)), 2)
    end
  end
  if type(def.forward) ~= "function" or type(def.backward) ~= "function" then
    error("Function: 'forward' and 'backward' must be functions", 2)
  end
  if def.name ~= nil and type(def.name) ~= "string" then
    error("Function: 'name' must be a string", 2)
  end
  return setmetatable({ forward = def.forward, backward = def.backward,
                        name = def.name or "Function" }, Function)
end

function Function:__call(...)
  local args = table.pack(...)
  local ctx = setmetatable({ saved_tensors = {} }, FunctionCtx)
  local out = M.no_grad(self.forward, ctx, ...)
  if not core.is_tensor(out) then
    error(("%s: forward must return a tensor, got %s"):format(self.name, type(out)), 2)
  end
  return core.attach_function(out, args, args.n, self.backward, ctx, self.name)
end

function Function:__tostring() return ("lunet.autograd.Function<%s>"):format(self.name) end

return M
