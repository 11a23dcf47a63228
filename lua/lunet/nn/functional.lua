--- Stateless differentiable ops on tensors (`lunet.nn.functional`, usually `F`).
-- Images are NCHW. Every op records autograd when an input requires grad and grad
-- mode is on. Options tables reject unknown keys; errors name the op, the argument
-- and the shapes involved. Class labels are i64 tensors of 1-BASED class indices
-- (1..C), as Lua users count; they are checked and converted for the C core.
-- @module lunet.nn.functional
local core = require "lunet.core"

local F = {}

-- Checks an options table (nil allowed) against `allowed` (a list of key names).
local function check_opts(fn, opts, allowed)
  if opts == nil then return {} end
  if type(opts) ~= "table" or core.is_tensor(opts) then
    error(("%s: options must be a table, got %s"):format(fn, core.is_tensor(opts) and "tensor" or type(opts)), 3)
  end
  for k in pairs(opts) do
    local known = false
    for _, a in ipairs(allowed) do known = known or k == a end
    if not known then
      error(("%s: unknown option '%s' (expected %s)"):format(fn, tostring(k), table.concat(allowed, ", ")), 3)
    end
  end
  return opts
end

-- An option that is an integer or a pair {h, w}; returns h, w.
local function pair(fn, name, v, default)
  if v == nil then return default, default end
  if math.type(v) == "integer" then return v, v end
  if type(v) == "table" and #v == 2 and math.type(v[1]) == "integer" and math.type(v[2]) == "integer" then
    return v[1], v[2]
  end
  error(("%s: option '%s' must be an integer or a pair {h, w} of integers, got %s"):format(
    fn, name, type(v) == "table" and "a table" or tostring(v)), 3)
end

local function number_opt(fn, name, v, default)
  if v == nil then return default end
  if type(v) ~= "number" then
    error(("%s: option '%s' must be a number, got %s"):format(fn, name, type(v)), 3)
  end
  return v
end

local function bool_opt(fn, name, v, default)
  if v == nil then return default end
  if type(v) ~= "boolean" then
    error(("%s: option '%s' must be a boolean, got %s"):format(fn, name, type(v)), 3)
  end
  return v
end

--- 2-D convolution.
-- @param x input (N, Cin, H, W)
-- @param w weight (Cout, Cin/groups, KH, KW)
-- @param b bias (Cout) or nil (the options may then come third)
-- @tparam[opt] table opts {stride = 1 or {sh, sw}, padding = 0 or {ph, pw}, groups = 1}
-- @return (N, Cout, OH, OW)
function F.conv2d(x, w, b, opts)
  if opts == nil and type(b) == "table" and not core.is_tensor(b) then b, opts = nil, b end
  opts = check_opts("conv2d", opts, { "stride", "padding", "groups" })
  local sh, sw = pair("conv2d", "stride", opts.stride, 1)
  local ph, pw = pair("conv2d", "padding", opts.padding, 0)
  local groups = opts.groups or 1
  return core.conv2d(x, w, b, sh, sw, ph, pw, groups)
end

--- 2-D batch normalisation over (N, H, W) per channel.
-- Training uses the batch statistics and updates running_mean/running_var in place
-- (running = (1 - momentum) * running + momentum * batch, unbiased variance); eval
-- uses the running statistics.
-- @param x (N, C, H, W)
-- @param running_mean (C)
-- @param running_var (C)
-- @param weight (C) or nil
-- @param bias (C) or nil
-- @tparam[opt] table opts {training = false, momentum = 0.1, eps = 1e-5}
function F.batch_norm2d(x, running_mean, running_var, weight, bias, opts)
  opts = check_opts("batch_norm2d", opts, { "training", "momentum", "eps" })
  local training = bool_opt("batch_norm2d", "training", opts.training, false)
  local momentum = number_opt("batch_norm2d", "momentum", opts.momentum, 0.1)
  local eps = number_opt("batch_norm2d", "eps", opts.eps, 1e-5)
  return core.batch_norm2d(x, running_mean, running_var, weight, bias, training, momentum, eps)
end

--- max(x, 0)
F.relu = core.relu
--- min(max(x, 0), 6)
F.relu6 = core.relu6
--- 1 / (1 + exp(-x))
F.sigmoid = core.sigmoid

--- x @ w^T + b.
-- @param x (N, in)
-- @param w (out, in)
-- @param b (out) or nil
F.linear = core.linear

--- 2-D max pooling.
-- @param x (N, C, H, W)
-- @tparam table|int opts {kernel = k or {kh, kw}, stride = kernel, padding = 0}, or
-- just the kernel size
function F.max_pool2d(x, opts)
  if math.type(opts) == "integer" then opts = { kernel = opts } end
  opts = check_opts("max_pool2d", opts, { "kernel", "stride", "padding" })
  if opts.kernel == nil then error("max_pool2d: option 'kernel' is required", 2) end
  local kh, kw = pair("max_pool2d", "kernel", opts.kernel)
  local sh, sw = kh, kw
  if opts.stride ~= nil then sh, sw = pair("max_pool2d", "stride", opts.stride) end
  local ph, pw = pair("max_pool2d", "padding", opts.padding, 0)
  return core.max_pool2d(x, kh, kw, sh, sw, ph, pw)
end

--- Average over H and W: (N, C, H, W) -> (N, C, 1, 1).
F.global_avg_pool2d = core.global_avg_pool2d

--- Concatenation of a list of tensors along a 1-based dimension (default 2: channels).
function F.cat(list, dim) return core.cat(list, dim or 2) end

--- Mean cross-entropy of log-softmax(logits) over the batch.
-- @param logits (N, C) floating
-- @param labels (N) i64 holding 1-BASED class indices in 1..C. A label outside 1..C
-- is an error naming the label, its (1-based) position and the class count.
-- @return a 0-d tensor
F.cross_entropy = core.cross_entropy

--- Number of rows of logits (N, C) whose 1-based label (i64 (N)) is among the k
-- largest logits (default k = 1). Not differentiable; returns an integer.
function F.topk_correct(logits, labels, k) return core.topk_correct(logits, labels, k or 1) end

--- a (M, K) @ b (K, N) -> (M, N)
F.matmul = core.matmul

--- Inverted dropout: zeroes each value with probability p (default 0.5) and scales
-- the others by 1/(1-p) when training (default true); otherwise returns a copy.
function F.dropout(x, p, training)
  if training == nil then training = true end
  return core.dropout(x, p or 0.5, training)
end

--- ECA's 1-D convolution across channels (no bias): x (N, C, 1, 1) or (N, C), w (K)
-- or (1, 1, K), zero padding `pad` (default 0) on each side; same shape as x.
function F.conv1d_channels(x, w, pad) return core.conv1d_channels(x, w, pad or 0) end

--- The option-A shortcut of CIFAR ResNets: x[:, :, ::stride, ::stride] then `pad`
-- zero channels on each side: (N, C, H, W) -> (N, C + 2 pad, H', W').
F.shortcut_a = core.shortcut_a

--- Elementwise arithmetic with broadcasting (tensors or numbers), as `a + b` etc.
F.add = core.add
F.sub = core.sub
F.mul = core.mul
F.div = core.div

--- Sum or mean over everything (0-d result) or over a 1-based dim (keepdim optional).
F.sum = core.sum
F.mean = core.mean

return F
