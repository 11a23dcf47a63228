--- The module base class (`lunet.nn.Module`): a tree of modules holding parameters
-- (trained tensors) and buffers (saved, not trained), with a `forward` written in Lua
-- (autograd does the backward).
--
-- Layout of an instance: nothing but four private tables is stored in the instance
-- table itself: the registries `_modules`, `_parameters`, `_buffers` (each `{names =
-- {...in order}, items = {name = value}}`) and `_fields` (plain values, `training`
-- among them), so that EVERY assignment `self.name = value` reaches `__newindex`: a
-- Module value registers a child (in order), a tensor assigned to a registered
-- parameter or buffer name replaces it, nil removes, anything else is a plain field.
-- Reads look in the registries, then the plain fields, then the class chain.
--
-- Identity: a tensor is one Lua object (userdata); the same object held by several
-- modules (a shared basis, or one FilterBasis instance assigned into many blocks) is
-- reported once by parameters()/buffers(), under the first path met depth-first.
-- @module lunet.nn.module
local core = require "lunet.core"

local is_tensor = core.is_tensor

-- Forward hooks active now (nn.with_forward_hook), called after every module forward.
local hooks = {}

local Module = {}
Module.__name = "Module"

local REGISTRIES = { "_modules", "_parameters", "_buffers" }

local function new_registry() return { names = {}, items = {} } end

local function is_module(v)
  return type(v) == "table" and Module.is_a(v, Module) -- Module.is_a: defined below
end

-- Adds or replaces name -> value in a registry, keeping the first insertion's order.
local function reg_set(reg, name, value)
  if reg.items[name] == nil then reg.names[#reg.names + 1] = name end
  reg.items[name] = value
end

local function reg_remove(reg, name)
  if reg.items[name] == nil then return end
  reg.items[name] = nil
  for i, n in ipairs(reg.names) do
    if n == name then table.remove(reg.names, i); break end
  end
end

-- The registry of `self` that holds `name`, if any.
local function registry_of(self, name)
  for _, r in ipairs(REGISTRIES) do
    local reg = rawget(self, r)
    if reg and reg.items[name] ~= nil then return reg, r end
  end
end

local function class_name(m) return getmetatable(m).__name or "Module" end

local function instance_index(self, k)
  for _, r in ipairs(REGISTRIES) do
    local reg = rawget(self, r)
    if reg then
      local v = reg.items[k]
      if v ~= nil then return v end
    end
  end
  local fields = rawget(self, "_fields")
  local v = fields and fields[k]
  if v ~= nil then return v end
  return getmetatable(self)[k]
end

local function instance_newindex(self, k, v)
  if type(k) ~= "string" then
    error(("%s: module fields must be named by strings, got a %s key"):format(
      class_name(self), type(k)), 2)
  end
  local reg, which = registry_of(self, k)
  if is_module(v) then
    if reg and which ~= "_modules" then
      error(("%s: '%s' is a %s; cannot replace it by a module"):format(
        class_name(self), k, which == "_parameters" and "parameter" or "buffer"), 2)
    end
    rawget(self, "_fields")[k] = nil
    reg_set(rawget(self, "_modules"), k, v)
  elseif reg then
    if v == nil then
      reg_remove(reg, k)
    elseif which == "_modules" then
      error(("%s: '%s' is a child module; assign a module or nil, got %s"):format(
        class_name(self), k, type(v)), 2)
    elseif not is_tensor(v) then
      error(("%s: '%s' is a %s; assign a tensor or nil, got %s"):format(
        class_name(self), k, which == "_parameters" and "parameter" or "buffer", type(v)), 2)
    else
      if which == "_parameters" and not v:requires_grad() and v:is_leaf() then
        v:requires_grad(true)
      end
      reg_set(reg, k, v)
    end
  else
    rawget(self, "_fields")[k] = v
  end
end

-- Sets up the registries of a fresh instance (before any __init runs).
local function prepare(obj)
  for _, r in ipairs(REGISTRIES) do rawset(obj, r, new_registry()) end
  rawset(obj, "_fields", { training = true })
end

-- Metamethods every class carries (Lua looks metamethods up with rawget).
local METAMETHODS = { "__index", "__newindex", "__call", "__tostring", "__len", "__close" }

local class_mt = {}

--- Calling a class builds an instance: `Block(16)` runs `Block.__init(self, 16)`.
function class_mt.__call(cls, ...)
  local obj = setmetatable({}, cls)
  prepare(obj)
  obj:__init(...)
  return obj
end

function class_mt.__tostring(cls) return ("<class %s>"):format(rawget(cls, "__name")) end

--- A new class derived from this one (`nn.Module:extend("Block")`, and subclasses of
-- subclasses the same way). Instances print their class name.
-- @tparam string name the class name
function Module:extend(name)
  if type(name) ~= "string" or name == "" then
    error(("extend: the class name must be a non-empty string, got %s"):format(
      type(name) == "string" and '""' or type(name)), 2)
  end
  local cls = { __name = name }
  for _, mm in ipairs(METAMETHODS) do cls[mm] = rawget(self, mm) end
  return setmetatable(cls, { __index = self, __call = class_mt.__call,
                             __tostring = class_mt.__tostring })
end

Module.__index = instance_index
Module.__newindex = instance_newindex
setmetatable(Module, { __call = class_mt.__call, __tostring = class_mt.__tostring })

--- True when this module is an instance of class `cls` or of a subclass of it.
function Module:is_a(cls)
  local c = getmetatable(self)
  while type(c) == "table" do
    if c == cls then return true end
    local cmt = getmetatable(c)
    c = cmt and rawget(cmt, "__index")
  end
  return false
end

--- Constructor of the base class. Subclasses call `nn.Module.__init(self)` first (it
-- is harmless to call again: the registries exist before any __init runs).
function Module:__init()
  if self.training == nil then self.training = true end
end

--- The computation; every concrete module defines it.
function Module:forward()
  error(("%s: no forward method defined"):format(class_name(self)), 2)
end

--- `module(...)`: runs forward, then every active forward hook.
function Module:__call(...)
  local out = self:forward(...)
  if #hooks > 0 then
    local inputs = table.pack(...)
    for i = 1, #hooks do hooks[i](self, inputs, out) end
  end
  return out
end

--- Registers (or replaces) a trained tensor under `name`; sets requires_grad on it.
-- Returns the tensor.
function Module:register_parameter(name, t)
  if type(name) ~= "string" or name == "" or name:find(".", 1, true) then
    error(("register_parameter: name must be a non-empty string without '.', got %s"):format(
      tostring(name)), 2)
  end
  if not is_tensor(t) then
    error(("register_parameter: '%s' must be a tensor, got %s"):format(name, type(t)), 2)
  end
  local reg, which = registry_of(self, name)
  if reg and which ~= "_parameters" then
    error(("register_parameter: '%s' is already a %s of this %s"):format(
      name, which == "_modules" and "child module" or "buffer", class_name(self)), 2)
  end
  if rawget(self, "_fields")[name] ~= nil then
    error(("register_parameter: '%s' is already an ordinary field of this %s"):format(
      name, class_name(self)), 2)
  end
  if not t:requires_grad() then t:requires_grad(true) end
  reg_set(rawget(self, "_parameters"), name, t)
  return t
end

--- Registers (or replaces) a saved but untrained tensor (running statistics...).
-- Returns the tensor.
function Module:register_buffer(name, t)
  if type(name) ~= "string" or name == "" or name:find(".", 1, true) then
    error(("register_buffer: name must be a non-empty string without '.', got %s"):format(
      tostring(name)), 2)
  end
  if not is_tensor(t) then
    error(("register_buffer: '%s' must be a tensor, got %s"):format(name, type(t)), 2)
  end
  local reg, which = registry_of(self, name)
  if reg and which ~= "_buffers" then
    error(("register_buffer: '%s' is already a %s of this %s"):format(
      name, which == "_modules" and "child module" or "parameter", class_name(self)), 2)
  end
  if rawget(self, "_fields")[name] ~= nil then
    error(("register_buffer: '%s' is already an ordinary field of this %s"):format(
      name, class_name(self)), 2)
  end
  reg_set(rawget(self, "_buffers"), name, t)
  return t
end

--- Registers a child module under `name` (what `self.name = module` does).
function Module:add_module(name, m)
  if type(name) ~= "string" or name == "" or name:find(".", 1, true) then
    error(("add_module: name must be a non-empty string without '.', got %s"):format(
      tostring(name)), 2)
  end
  if not is_module(m) then
    error(("add_module: '%s' must be a module, got %s"):format(name, type(m)), 2)
  end
  instance_newindex(self, name, m)
  return m
end

-- ------------------------------------------------------------------- traversal
-- Visits every (path, module) depth-first in registration order, each PATH once (a
-- module reached by two paths is visited twice; a module inside itself is not
-- re-entered). fn(prefix, module) where prefix is "" or "a.b.".
local function walk(m, prefix, fn, stack)
  stack = stack or {}
  stack[m] = true
  fn(prefix, m)
  local reg = rawget(m, "_modules")
  for _, name in ipairs(reg.names) do
    local child = reg.items[name]
    if not stack[child] then walk(child, prefix .. name .. ".", fn, stack) end
  end
  stack[m] = nil
end

-- Every (path, tensor) of one registry kind over the tree, aliases included.
local function all_named(self, which)
  local out = {}
  walk(self, "", function(prefix, m)
    local reg = rawget(m, which)
    for _, name in ipairs(reg.names) do out[#out + 1] = { prefix .. name, reg.items[name] } end
  end)
  return out
end

-- Keeps the first entry of each distinct value (by object identity).
local function unique(named)
  local seen, out = {}, {}
  for _, e in ipairs(named) do
    if not seen[e[2]] then
      seen[e[2]] = true
      out[#out + 1] = e
    end
  end
  return out
end

local function values(named)
  local out = {}
  for i, e in ipairs(named) do out[i] = e[2] end
  return out
end

--- List of `{name, tensor}`: every parameter once, under the dotted path where it is
-- first met (depth-first, own parameters before the children's).
function Module:named_parameters() return unique(all_named(self, "_parameters")) end

--- Every parameter tensor once (shared ones too), in named_parameters() order.
function Module:parameters() return values(self:named_parameters()) end

--- List of `{name, tensor}` of the buffers, each once.
function Module:named_buffers() return unique(all_named(self, "_buffers")) end

--- Every buffer tensor once.
function Module:buffers() return values(self:named_buffers()) end

--- List of `{name, module}` of the direct children (each once).
function Module:named_children()
  local reg = rawget(self, "_modules")
  local out = {}
  for _, name in ipairs(reg.names) do out[#out + 1] = { name, reg.items[name] } end
  return unique(out)
end

--- The direct children, each once.
function Module:children() return values(self:named_children()) end

--- List of `{name, module}` of every module of the tree, self first (name ""), each
-- once under the first path met.
function Module:named_modules()
  local out = {}
  walk(self, "", function(prefix, m) out[#out + 1] = { prefix:sub(1, -2), m } end)
  return unique(out)
end

--- Every module of the tree once, self first.
function Module:modules() return values(self:named_modules()) end

--- Calls fn(m) for every module of the tree once (children before their parent, as
-- PyTorch's apply). Returns self.
function Module:apply(fn)
  if type(fn) ~= "function" then
    error(("apply: expected a function, got %s"):format(type(fn)), 2)
  end
  local mods = self:modules()
  for i = #mods, 1, -1 do fn(mods[i]) end
  return self
end

--- Sets training mode (default true) on this module and every descendant.
-- Returns self.
function Module:train(mode)
  if mode == nil then mode = true end
  if type(mode) ~= "boolean" then
    error(("train: mode must be a boolean, got %s"):format(type(mode)), 2)
  end
  for _, m in ipairs(self:modules()) do m.training = mode end
  return self
end

--- Evaluation mode: `train(false)`. Returns self.
function Module:eval() return self:train(false) end

--- Clears the `.grad` of every parameter. Returns self.
function Module:zero_grad()
  for _, p in ipairs(self:parameters()) do p:zero_grad() end
  return self
end

local FLOAT = { f32 = true, f64 = true }
-- dtype names (and aliases) -> canonical name; anything else is taken as a device
local DTYPES = {
  f32 = "f32", float32 = "f32", float = "f32", f64 = "f64", float64 = "f64", double = "f64",
  i64 = "i64", int64 = "i64", long = "i64", i32 = "i32", int32 = "i32", int = "i32",
  u8 = "u8", uint8 = "u8", byte = "u8",
}

--- Moves every parameter and buffer to a device ("cpu", "cuda", "cuda:N") or converts
-- the floating ones to a floating dtype ("f32", "f64"), IN PLACE: each tensor object
-- keeps its identity (sharing and optimiser references survive); gradients follow.
-- Integer buffers (num_batches_tracked) keep their dtype. Returns self.
function Module:to(target)
  if type(target) ~= "string" then
    error(("to: expected a device or dtype name, got %s"):format(type(target)), 2)
  end
  local dtype = DTYPES[target]
  if dtype and not FLOAT[dtype] then
    error(("to: modules convert only to a floating dtype (f32, f64), got '%s'"):format(target), 2)
  end
  local tensors = self:parameters()
  for _, t in ipairs(self:buffers()) do tensors[#tensors + 1] = t end
  for _, t in ipairs(tensors) do
    if not dtype or FLOAT[t:dtype()] then
      local ok, moved = pcall(t.to, t, target)
      if not ok then error(moved, 2) end
      if not rawequal(moved, t) then
        local rg, g = t:requires_grad(), t.grad
        t:set_(moved)
        if rg then t:requires_grad(true) end
        if g then t.grad = g:to(target) end
      end
    end
  end
  return self
end

-- ------------------------------------------------------------------- state dicts
--- The saved state: `{tensors = {name = tensor}, order = {names...}, aliases =
-- {alias = canonical}}`. Every parameter and buffer once under its canonical (first,
-- depth-first) path; every other path reaching the same tensor is an alias. The
-- tensors are the module's own objects (not copies).
function Module:state_dict()
  local tensors, order, aliases, canonical = {}, {}, {}, {}
  walk(self, "", function(prefix, m)
    for _, which in ipairs { "_parameters", "_buffers" } do
      local reg = rawget(m, which)
      for _, name in ipairs(reg.names) do
        local t, path = reg.items[name], prefix .. name
        local first = canonical[t]
        if first then
          aliases[path] = first
        else
          canonical[t] = path
          tensors[path] = t
          order[#order + 1] = path
        end
      end
    end
  end)
  return { tensors = tensors, order = order, aliases = aliases }
end

local function shape_str(t) return "[" .. table.concat(t:shape(), ", ") .. "]" end

local function sorted_list(set)
  local l = {}
  for k in pairs(set) do l[#l + 1] = k end
  table.sort(l)
  return table.concat(l, ", ")
end

--- Copies the values of a state dict into this module's existing tensors (so sharing
-- is kept). `sd` is what state_dict() returns, or a plain `{name = tensor}` table
-- (which may list a shared tensor under several names). A tensor reachable by several
-- paths takes its value from the first of its paths (canonical first) that sd holds.
-- Shapes must match. strict (default true): names of this module missing from sd, or
-- names of sd unknown here, are an error listing them. Returns self, plus the lists
-- of missing and unexpected names.
function Module:load_state_dict(sd, strict)
  if strict == nil then strict = true end
  if type(sd) ~= "table" or is_tensor(sd) then
    error(("load_state_dict: expected a state dict table, got %s"):format(
      is_tensor(sd) and "a tensor" or type(sd)), 2)
  end
  local src, aliases = sd, {}
  if type(sd.tensors) == "table" and not is_tensor(sd.tensors) then
    src, aliases = sd.tensors, sd.aliases or {}
  end
  for name, t in pairs(src) do
    if not is_tensor(t) then
      error(("load_state_dict: entry '%s' is not a tensor (%s)"):format(tostring(name), type(t)), 2)
    end
  end
  local function source(name)
    local t = src[name]
    if t == nil and aliases[name] ~= nil then t = src[aliases[name]] end
    return t
  end
  -- every path of ours, grouped by tensor (canonical first)
  local mine = self:state_dict()
  local paths = {}
  for _, name in ipairs(mine.order) do paths[mine.tensors[name]] = { name } end
  local known = {}
  for _, name in ipairs(mine.order) do known[name] = true end
  for alias, canon in pairs(mine.aliases) do
    known[alias] = true
    local l = paths[mine.tensors[canon]]
    l[#l + 1] = alias
  end
  for t, l in pairs(paths) do
    local first = l[1]
    table.sort(l, function(a, b)
      if a == first or b == first then return a == first and b ~= first end
      return a < b
    end)
    paths[t] = l
  end
  local missing, unexpected, plan = {}, {}, {}
  for _, name in ipairs(mine.order) do
    local t = mine.tensors[name]
    local found
    for _, p in ipairs(paths[t]) do
      found = source(p)
      if found then break end
    end
    if found then
      if shape_str(t) ~= shape_str(found) then
        error(("load_state_dict: shape mismatch for '%s': this module has %s, the state dict %s"):format(
          name, shape_str(t), shape_str(found)), 2)
      end
      plan[#plan + 1] = { t, found }
    else
      missing[name] = true
    end
  end
  for name in pairs(src) do
    if not known[name] then unexpected[name] = true end
  end
  for name in pairs(aliases) do
    if not known[name] then unexpected[name] = true end
  end
  if strict and (next(missing) or next(unexpected)) then
    local parts = {}
    if next(missing) then parts[#parts + 1] = "missing: " .. sorted_list(missing) end
    if next(unexpected) then parts[#parts + 1] = "unexpected: " .. sorted_list(unexpected) end
    error(("load_state_dict: %s does not match the state dict (%s)"):format(
      class_name(self), table.concat(parts, "; ")), 2)
  end
  for _, p in ipairs(plan) do
    if not rawequal(p[1], p[2]) then p[1]:copy(p[2]) end
  end
  local ml, ul = {}, {}
  for k in pairs(missing) do ml[#ml + 1] = k end
  for k in pairs(unexpected) do ul[#ul + 1] = k end
  table.sort(ml); table.sort(ul)
  return self, ml, ul
end

-- ------------------------------------------------------------------- printing
--- One-line description of this module's arguments (what its constructor took);
-- classes override it. The default is empty.
function Module:extra_repr() return "" end

local function repr(m, path, seen, indent)
  local extra = m:extra_repr()
  local reg = rawget(m, "_modules")
  if #reg.names == 0 then return class_name(m) .. "(" .. extra .. ")" end
  local lines = { class_name(m) .. "(" }
  local pad = ("  "):rep(indent + 1)
  if extra ~= "" then lines[2] = pad .. extra end
  for _, name in ipairs(reg.names) do
    local child = reg.items[name]
    local cpath = path == "" and name or (path .. "." .. name)
    local text
    if seen[child] then
      text = class_name(child) .. "(" .. child:extra_repr() .. ")  -- shared: same as " .. seen[child]
    else
      seen[child] = cpath
      text = repr(child, cpath, seen, indent + 1)
    end
    lines[#lines + 1] = pad .. "(" .. name .. "): " .. text
  end
  lines[#lines + 1] = ("  "):rep(indent) .. ")"
  return table.concat(lines, "\n")
end

--- The module tree, one line per child with its arguments (as PyTorch prints it). A
-- module met a second time (a shared basis) prints as `-- shared: same as <path>`.
function Module:__tostring() return repr(self, "", { [self] = "(root)" }, 0) end

Module.is_module = is_module
Module._hooks = hooks

return Module
