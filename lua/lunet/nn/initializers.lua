--- Parameter initialisers (`lunet.nn.init`): each fills a tensor IN PLACE from the
-- context's RNG (`lunet.manual_seed` makes them repeatable) and returns it. Fills are
-- not recorded by autograd, so they work on parameters that require grad.
-- Fans of a weight (out, in, k...) : fan_in = in * k..., fan_out = out * k...
-- @module lunet.nn.init
local core = require "lunet.core"

local I = {}

local function check_tensor(fn, t)
  if not core.is_tensor(t) then
    error(("%s: expected a tensor, got %s"):format(fn, type(t)), 3)
  end
  local dt = t:dtype()
  if dt ~= "f32" and dt ~= "f64" then
    error(("%s: needs a floating tensor (f32, f64), got %s"):format(fn, dt), 3)
  end
end

--- fan_in, fan_out of a weight of 2 or more dimensions.
function I.fans(t)
  local shape = t:shape()
  if #shape < 2 then
    error(("fans: a weight needs at least 2 dimensions, got shape [%s]"):format(
      table.concat(shape, ", ")), 2)
  end
  local receptive = 1
  for i = 3, #shape do receptive = receptive * shape[i] end
  return shape[2] * receptive, shape[1] * receptive
end

--- The recommended gain of a nonlinearity (PyTorch's calculate_gain): "linear",
-- "conv2d", "sigmoid" 1; "tanh" 5/3; "relu" sqrt(2); "leaky_relu" sqrt(2/(1+a^2))
-- (a default 0.01); "selu" 3/4.
function I.gain(nonlinearity, a)
  if nonlinearity == "linear" or nonlinearity == "conv2d" or nonlinearity == "sigmoid" then
    return 1
  elseif nonlinearity == "tanh" then
    return 5 / 3
  elseif nonlinearity == "relu" then
    return math.sqrt(2)
  elseif nonlinearity == "leaky_relu" then
    a = a or 0.01
    return math.sqrt(2 / (1 + a * a))
  elseif nonlinearity == "selu" then
    return 3 / 4
  end
  error(("gain: unknown nonlinearity '%s' (expected linear, conv2d, sigmoid, tanh, relu, "
    .. "leaky_relu, selu)"):format(tostring(nonlinearity)), 2)
end

-- std of Kaiming's init for t with opts {mode, nonlinearity, a}.
local function kaiming_std(fn, t, opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    error(("%s: options must be a table, got %s"):format(fn, type(opts)), 3)
  end
  for k in pairs(opts) do
    if k ~= "mode" and k ~= "nonlinearity" and k ~= "a" then
      error(("%s: unknown option '%s' (expected mode, nonlinearity, a)"):format(fn, tostring(k)), 3)
    end
  end
  local mode = opts.mode or "fan_in"
  if mode ~= "fan_in" and mode ~= "fan_out" then
    error(("%s: mode must be 'fan_in' or 'fan_out', got '%s'"):format(fn, tostring(mode)), 3)
  end
  local fan_in, fan_out = I.fans(t)
  local fan = mode == "fan_in" and fan_in or fan_out
  local g = I.gain(opts.nonlinearity or "leaky_relu", opts.a or 0)
  return g / math.sqrt(fan)
end

--- Kaiming (He) normal: N(0, std^2), std = gain / sqrt(fan).
-- @tparam[opt] table opts {mode = "fan_in" (default) | "fan_out", nonlinearity =
-- "leaky_relu" (default, with a = 0: the ReLU gain sqrt(2)) | "relu" | ..., a = 0}
function I.kaiming_normal_(t, opts)
  check_tensor("kaiming_normal_", t)
  return core.normal_(t, 0, kaiming_std("kaiming_normal_", t, opts))
end

--- Kaiming (He) uniform: U(-b, b), b = gain * sqrt(3 / fan); options as kaiming_normal_.
function I.kaiming_uniform_(t, opts)
  check_tensor("kaiming_uniform_", t)
  return core.uniform_(t, -math.sqrt(3) * kaiming_std("kaiming_uniform_", t, opts),
                       math.sqrt(3) * kaiming_std("kaiming_uniform_", t, opts))
end

--- U(a, b), default U(0, 1).
function I.uniform_(t, a, b)
  check_tensor("uniform_", t)
  return core.uniform_(t, a or 0, b or 1)
end

--- N(mean, std^2), default N(0, 1).
function I.normal_(t, mean, std)
  check_tensor("normal_", t)
  return core.normal_(t, mean or 0, std or 1)
end

--- Every element = v.
function I.constant_(t, v)
  check_tensor("constant_", t)
  return t:fill(v)
end

function I.zeros_(t) return I.constant_(t, 0) end
function I.ones_(t) return I.constant_(t, 1) end

-- PyTorch's default init of a layer's weight and bias: uniform +-1/sqrt(fan_in).
local function default_layer(fn, m)
  if type(m) ~= "table" or not core.is_tensor(m.weight) then
    error(("%s: expected a layer with a 'weight' tensor, got %s"):format(fn, type(m)), 3)
  end
  local fan_in = I.fans(m.weight)
  local bound = 1 / math.sqrt(fan_in)
  core.uniform_(m.weight, -bound, bound)
  if m.bias ~= nil then core.uniform_(m.bias, -bound, bound) end
  return m
end

--- PyTorch's default init of a convolution (Conv2d, FilterBasis, ECA...): weight and
-- bias uniform in +-1/sqrt(fan_in), fan_in = in/groups * k * k (what
-- kaiming_uniform_ with a = sqrt(5) gives). Returns the module.
function I.default_conv_(conv) return default_layer("default_conv_", conv) end

--- PyTorch's default init of a Linear: weight and bias uniform in +-1/sqrt(in).
function I.default_linear_(lin) return default_layer("default_linear_", lin) end

--- (Semi-)orthogonal init: t viewed as a matrix of t:size(1) rows and the other
-- dimensions flattened into columns becomes Q of the QR factorisation of a Gaussian
-- matrix, sign-corrected (R's diagonal positive): orthonormal rows (rows <= columns)
-- or orthonormal columns (rows > columns), as PyTorch's orthogonal_. Optional gain
-- scales the result.
function I.orthogonal_(t, gain)
  check_tensor("orthogonal_", t)
  core.orthogonal_(t)
  if gain ~= nil and gain ~= 1 then
    local prev = core.set_grad_enabled(false)
    t:copy(t * gain)
    core.set_grad_enabled(prev)
  end
  return t
end

--- One orthogonal matrix split by rows over several tensors ({t1, t2, ...}, each
-- (rows_i, same columns...)): every tensor gets orthonormal rows, orthogonal to the
-- other tensors' rows too (the sum of the rows must not exceed the columns; if it
-- does, the stacked matrix gets orthonormal columns instead). Returns the list.
function I.orthogonal_joint_(list)
  if type(list) ~= "table" or core.is_tensor(list) or #list == 0 then
    error("orthogonal_joint_: expected a non-empty list of tensors", 2)
  end
  for i, t in ipairs(list) do
    if not core.is_tensor(t) then
      error(("orthogonal_joint_: entry %d is a %s, not a tensor"):format(i, type(t)), 2)
    end
  end
  core.orthogonal_joint_(list)
  return list
end

return I
