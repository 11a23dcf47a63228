--- lunet.optim.SGD: stochastic gradient descent with momentum, weight decay,
-- dampening and Nesterov momentum, with PyTorch's exact update rule (torch.optim.SGD):
--
--     g = grad + weight_decay * p
--     buf = g                                   (first step of p)
--     buf = momentum * buf + (1 - dampening) * g (later steps)
--     g = nesterov and g + momentum * buf or buf (when momentum ~= 0)
--     p = p - lr * g
--
-- The update runs in C (core.sgd_step, in place, no autograd). Each parameter is a
-- distinct tensor object: a shared basis held by many layers is one parameter (the
-- list must not repeat a tensor). Parameters whose .grad is nil are skipped, and their
-- momentum buffers neither created nor decayed (as PyTorch).
--
--     local opt = lunet.optim.SGD(net:parameters(), {lr = 0.1, momentum = 0.9,
--                                                    weight_decay = 1e-4})
--     opt:zero_grad(); loss:backward(); opt:step()
--     opt.lr = 0.01                      -- hyper-parameters are plain fields
--     local sd = opt:state_dict(); opt:load_state_dict(sd)
-- @classmod lunet.optim.SGD
local core = require "lunet.core"

local SGD = {}
SGD.__index = SGD
SGD.__name = "lunet.optim.SGD"

local DEFAULTS = { lr = false, momentum = 0, weight_decay = 0, dampening = 0, nesterov = false }
local HYPER = { "lr", "momentum", "weight_decay", "dampening", "nesterov" }

local function valid_list()
  local l = {}
  for k in pairs(DEFAULTS) do l[#l + 1] = k end
  table.sort(l)
  return table.concat(l, ", ")
end

-- Checks the hyper-parameters of opt (a table with the HYPER fields); level for error.
local function check_hyper(h, level)
  level = level + 1
  for _, k in ipairs { "lr", "momentum", "weight_decay", "dampening" } do
    local v = h[k]
    if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then
      error(("SGD: %s must be a finite number, got %s"):format(k, tostring(v)), level)
    end
  end
  if type(h.nesterov) ~= "boolean" then
    error(("SGD: nesterov must be a boolean, got %s"):format(type(h.nesterov)), level)
  end
  if h.lr < 0 then error(("SGD: lr must be >= 0, got %g"):format(h.lr), level) end
  if h.momentum < 0 then error(("SGD: momentum must be >= 0, got %g"):format(h.momentum), level) end
  if h.weight_decay < 0 then error(("SGD: weight_decay must be >= 0, got %g"):format(h.weight_decay), level) end
  if h.nesterov and (h.momentum <= 0 or h.dampening ~= 0) then
    error(("SGD: nesterov momentum requires momentum > 0 and dampening 0 (got momentum %g, dampening %g)")
      :format(h.momentum, h.dampening), level)
  end
end

--- SGD(params, opts): params is a list of tensors (each once) or a module (its
-- parameters()); opts: lr (required), momentum, weight_decay, dampening, nesterov.
local function new(params, opts)
  if type(params) == "table" and type(params.parameters) == "function" and not core.is_tensor(params) then
    params = params:parameters()
  end
  if type(params) ~= "table" or core.is_tensor(params) then
    error(("SGD: params must be a list of tensors or a module, got %s"):format(
      core.is_tensor(params) and "a tensor" or type(params)), 2)
  end
  if type(opts) ~= "table" then
    error(("SGD: expected an options table {lr = ...}, got %s"):format(type(opts)), 2)
  end
  for k in pairs(opts) do
    if DEFAULTS[k] == nil then
      error(("SGD: unknown option '%s' (valid: %s)"):format(tostring(k), valid_list()), 2)
    end
  end
  if opts.lr == nil then error("SGD: option 'lr' is required", 2) end
  local self = setmetatable({ params = {}, state = {}, steps = 0 }, SGD)
  for _, k in ipairs(HYPER) do
    if opts[k] == nil then self[k] = DEFAULTS[k] else self[k] = opts[k] end
  end
  check_hyper(self, 2)
  local seen = {}
  local n = #params
  for k in pairs(params) do
    if math.type(k) ~= "integer" or k < 1 or k > n then
      error(("SGD: params must be a list (sequence) of tensors; found key %s"):format(tostring(k)), 2)
    end
  end
  for i = 1, n do
    local p = params[i]
    if not core.is_tensor(p) then error(("SGD: params[%d] is a %s, not a tensor"):format(i, type(p)), 2) end
    if seen[p] then
      error(("SGD: params[%d] is the same tensor as params[%d] (list each parameter once)"):format(i, seen[p]), 2)
    end
    if p:dtype() ~= "f32" and p:dtype() ~= "f64" then
      error(("SGD: params[%d] has dtype %s; only f32 and f64 tensors can be optimised"):format(i, p:dtype()), 2)
    end
    seen[p] = i
    self.params[i] = p
  end
  return self
end

--- One update of every parameter that has a gradient. Returns self.
function SGD:step()
  check_hyper(self, 2)
  local lr, mom, wd, damp, nest = self.lr, self.momentum, self.weight_decay, self.dampening, self.nesterov
  for i, p in ipairs(self.params) do
    local g = p.grad
    if g then
      local buf, first = nil, false
      if mom ~= 0 then
        buf = self.state[i]
        if not buf then
          buf = core.zeros(p:shape(), { dtype = p:dtype(), device = p:device() })
          self.state[i] = buf
          first = true
        end
      end
      core.sgd_step(p, g, buf, first, lr, mom, wd, damp, nest)
    end
  end
  self.steps = self.steps + 1
  return self
end

--- Clears the .grad of every parameter (sets it to nil). Returns self.
function SGD:zero_grad()
  for _, p in ipairs(self.params) do p:zero_grad() end
  return self
end

--- The optimiser's state: `{lr, momentum, weight_decay, dampening, nesterov, steps,
-- momentum_buffers = {[i] = tensor}}`, buffers indexed by the parameter's position
-- (absent for parameters not yet stepped). The buffers are the optimiser's own
-- tensors, not copies.
function SGD:state_dict()
  local sd = { steps = self.steps, momentum_buffers = {} }
  for _, k in ipairs(HYPER) do sd[k] = self[k] end
  for i in ipairs(self.params) do sd.momentum_buffers[i] = self.state[i] end
  return sd
end

local SD_KEYS = { lr = true, momentum = true, weight_decay = true, dampening = true, nesterov = true,
                  steps = true, momentum_buffers = true }

--- Restores a state_dict(): hyper-parameters, step count and momentum buffers (copied
-- into fresh tensors of each parameter's dtype and device). Every buffer must match
-- its parameter's shape. Returns self.
function SGD:load_state_dict(sd)
  if type(sd) ~= "table" or core.is_tensor(sd) then
    error(("load_state_dict: expected an SGD state table, got %s"):format(type(sd)), 2)
  end
  for k in pairs(sd) do
    if not SD_KEYS[k] then error(("load_state_dict: unknown SGD state field '%s'"):format(tostring(k)), 2) end
  end
  local h = {}
  for _, k in ipairs(HYPER) do
    if sd[k] == nil then h[k] = self[k] else h[k] = sd[k] end
  end
  check_hyper(h, 2)
  local steps = sd.steps or 0
  if math.type(steps) ~= "integer" or steps < 0 then
    error(("load_state_dict: steps must be an integer >= 0, got %s"):format(tostring(steps)), 2)
  end
  local bufs = sd.momentum_buffers or {}
  if type(bufs) ~= "table" then error("load_state_dict: momentum_buffers must be a table", 2) end
  local state = {}
  for i, b in pairs(bufs) do
    local p = math.type(i) == "integer" and self.params[i]
    if not p then
      error(("load_state_dict: momentum buffer %s has no parameter (the optimiser has %d)"):format(
        tostring(i), #self.params), 2)
    end
    if not core.is_tensor(b) then error(("load_state_dict: momentum buffer %d is not a tensor"):format(i), 2) end
    local ps, bs = table.concat(p:shape(), ", "), table.concat(b:shape(), ", ")
    if ps ~= bs or #p:shape() ~= #b:shape() then
      error(("load_state_dict: momentum buffer %d has shape [%s] but its parameter [%s]"):format(i, bs, ps), 2)
    end
    local copy = core.zeros(p:shape(), { dtype = p:dtype(), device = p:device() })
    copy:copy(b)
    state[i] = copy
  end
  for _, k in ipairs(HYPER) do self[k] = h[k] end
  self.steps = steps
  self.state = state
  return self
end

function SGD:__tostring()
  return ("SGD(lr=%g, momentum=%g, weight_decay=%g, dampening=%g, nesterov=%s; %d parameters, %d steps)")
    :format(self.lr, self.momentum, self.weight_decay, self.dampening, tostring(self.nesterov),
            #self.params, self.steps)
end

return setmetatable({ new = new, class = SGD }, { __call = function(_, ...) return new(...) end })
