--- The standard layers of `lunet.nn`: Conv2d, Linear, BatchNorm2d, ReLU, ReLU6,
-- Dropout, MaxPool2d, GlobalAvgPool2d, Identity, Flatten. Each holds its
-- hyper-parameters as fields of the same names as its constructor arguments and
-- prints them (extra_repr). Weights start with PyTorch's default initialisation
-- (uniform +-1/sqrt(fan_in) for weight and bias); BatchNorm2d with weight 1, bias 0,
-- running mean 0, running var 1.
-- @module lunet.nn.layers
local core = require "lunet.core"
local Module = require "lunet.nn.module"
local F = require "lunet.nn.functional"
local init = require "lunet.nn.initializers"
local A = require "lunet.nn.args"

local L = {}

-- ------------------------------------------------------------------- Conv2d
--- 2-D convolution. `Conv2d(in, out, k, {stride = 1, padding = 0, groups = 1, bias =
-- true})`; k, stride and padding are integers or pairs {h, w}. Parameters `weight`
-- (out, in/groups, kh, kw) and `bias` (out) unless bias = false.
local Conv2d = Module:extend("Conv2d")
L.Conv2d = Conv2d

function Conv2d:__init(in_channels, out_channels, kernel_size, opts)
  Module.__init(self)
  local C = "Conv2d"
  opts = A.opts(C, opts, { "stride", "padding", "groups", "bias" })
  self.in_channels = A.int(C, "in_channels", in_channels)
  self.out_channels = A.int(C, "out_channels", out_channels)
  local k, kh, kw = A.pair(C, "kernel_size", kernel_size)
  self.kernel_size = k
  self.stride = A.pair(C, "stride", opts.stride or 1)
  self.padding = A.pair(C, "padding", opts.padding or 0, 0)
  self.groups = A.int(C, "groups", opts.groups or 1)
  local bias = opts.bias
  if bias == nil then bias = true end
  A.bool(C, "bias", bias)
  if in_channels % self.groups ~= 0 or out_channels % self.groups ~= 0 then
    error(("Conv2d: groups (%d) must divide in_channels (%d) and out_channels (%d)"):format(
      self.groups, in_channels, out_channels), 2)
  end
  self:register_parameter("weight", core.empty { out_channels, in_channels // self.groups, kh, kw })
  if bias then self:register_parameter("bias", core.empty { out_channels }) end
  self:reset_parameters()
end

--- PyTorch's default init (uniform +-1/sqrt(fan_in) for weight and bias).
function Conv2d:reset_parameters() init.default_conv_(self) end

function Conv2d:forward(x)
  return F.conv2d(x, self.weight, self.bias,
                  { stride = self.stride, padding = self.padding, groups = self.groups })
end

function Conv2d:extra_repr()
  local s = ("%d, %d, kernel_size=%s, stride=%s"):format(self.in_channels, self.out_channels,
    A.show(self.kernel_size), A.show(self.stride))
  if self.padding ~= 0 then s = s .. ", padding=" .. A.show(self.padding) end
  if self.groups ~= 1 then s = s .. ", groups=" .. self.groups end
  if self.bias == nil then s = s .. ", bias=false" end
  return s
end

-- ------------------------------------------------------------------- Linear
--- Fully connected layer `Linear(in, out, {bias = true})`: y = x W^T + b, x (N, in).
-- Parameters `weight` (out, in), `bias` (out).
local Linear = Module:extend("Linear")
L.Linear = Linear

function Linear:__init(in_features, out_features, opts)
  Module.__init(self)
  local C = "Linear"
  opts = A.opts(C, opts, { "bias" })
  self.in_features = A.int(C, "in_features", in_features)
  self.out_features = A.int(C, "out_features", out_features)
  local bias = opts.bias
  if bias == nil then bias = true end
  A.bool(C, "bias", bias)
  self:register_parameter("weight", core.empty { out_features, in_features })
  if bias then self:register_parameter("bias", core.empty { out_features }) end
  self:reset_parameters()
end

function Linear:reset_parameters() init.default_linear_(self) end

function Linear:forward(x) return F.linear(x, self.weight, self.bias) end

function Linear:extra_repr()
  return ("in_features=%d, out_features=%d, bias=%s"):format(
    self.in_features, self.out_features, tostring(self.bias ~= nil))
end

-- ------------------------------------------------------------------- BatchNorm2d
--- Batch normalisation over (N, H, W) per channel: `BatchNorm2d(c, {eps = 1e-5,
-- momentum = 0.1, affine = true})`. Parameters `weight` (c) = 1, `bias` (c) = 0 (when
-- affine); buffers `running_mean` (c) = 0, `running_var` (c) = 1 and
-- `num_batches_tracked` (0-d i64). Training mode normalises with the batch statistics
-- and updates the running ones (and counts the batch); eval uses the running ones.
local BatchNorm2d = Module:extend("BatchNorm2d")
L.BatchNorm2d = BatchNorm2d

function BatchNorm2d:__init(num_features, opts)
  Module.__init(self)
  local C = "BatchNorm2d"
  opts = A.opts(C, opts, { "eps", "momentum", "affine" })
  self.num_features = A.int(C, "num_features", num_features)
  self.eps = A.number(C, "eps", opts.eps or 1e-5, 0)
  self.momentum = A.number(C, "momentum", opts.momentum or 0.1, 0, 1)
  local affine = opts.affine
  if affine == nil then affine = true end
  self.affine = A.bool(C, "affine", affine)
  if affine then
    self:register_parameter("weight", core.ones { num_features })
    self:register_parameter("bias", core.zeros { num_features })
  end
  self:register_buffer("running_mean", core.zeros { num_features })
  self:register_buffer("running_var", core.ones { num_features })
  self:register_buffer("num_batches_tracked", core.zeros({}, { dtype = "i64" }))
end

function BatchNorm2d:forward(x)
  local y = F.batch_norm2d(x, self.running_mean, self.running_var, self.weight, self.bias,
                           { training = self.training, momentum = self.momentum, eps = self.eps })
  if self.training then
    local n = self.num_batches_tracked
    n:fill(n:item() + 1)
  end
  return y
end

function BatchNorm2d:extra_repr()
  return ("%d, eps=%g, momentum=%g, affine=%s"):format(self.num_features, self.eps,
    self.momentum, tostring(self.affine))
end

-- ------------------------------------------------------------------- activations
--- max(x, 0)
local ReLU = Module:extend("ReLU")
L.ReLU = ReLU
function ReLU:forward(x) return F.relu(x) end

--- min(max(x, 0), 6)
local ReLU6 = Module:extend("ReLU6")
L.ReLU6 = ReLU6
function ReLU6:forward(x) return F.relu6(x) end

--- 1 / (1 + exp(-x))
local Sigmoid = Module:extend("Sigmoid")
L.Sigmoid = Sigmoid
function Sigmoid:forward(x) return F.sigmoid(x) end

-- ------------------------------------------------------------------- Dropout
--- Inverted dropout with probability p (default 0.5), active in training mode only.
local Dropout = Module:extend("Dropout")
L.Dropout = Dropout

function Dropout:__init(p)
  Module.__init(self)
  self.p = A.number("Dropout", "p", p or 0.5, 0, 1)
end

function Dropout:forward(x) return F.dropout(x, self.p, self.training) end

function Dropout:extra_repr() return ("p=%g"):format(self.p) end

-- ------------------------------------------------------------------- pooling
--- 2-D max pooling: `MaxPool2d({kernel = k, stride = k, padding = 0})` or
-- `MaxPool2d(k)`; each an integer or a pair {h, w}.
local MaxPool2d = Module:extend("MaxPool2d")
L.MaxPool2d = MaxPool2d

function MaxPool2d:__init(opts)
  Module.__init(self)
  local C = "MaxPool2d"
  if math.type(opts) == "integer" then opts = { kernel = opts } end
  opts = A.opts(C, opts, { "kernel", "stride", "padding" })
  if opts.kernel == nil then error("MaxPool2d: option 'kernel' is required", 2) end
  self.kernel = A.pair(C, "kernel", opts.kernel)
  self.stride = A.pair(C, "stride", opts.stride or self.kernel)
  self.padding = A.pair(C, "padding", opts.padding or 0, 0)
end

function MaxPool2d:forward(x)
  return F.max_pool2d(x, { kernel = self.kernel, stride = self.stride, padding = self.padding })
end

function MaxPool2d:extra_repr()
  return ("kernel=%s, stride=%s, padding=%s"):format(A.show(self.kernel), A.show(self.stride),
    A.show(self.padding))
end

--- Average over H and W: (N, C, H, W) -> (N, C, 1, 1).
local GlobalAvgPool2d = Module:extend("GlobalAvgPool2d")
L.GlobalAvgPool2d = GlobalAvgPool2d
function GlobalAvgPool2d:forward(x) return F.global_avg_pool2d(x) end

-- ------------------------------------------------------------------- shape
--- Returns its input.
local Identity = Module:extend("Identity")
L.Identity = Identity
function Identity:forward(x) return x end

--- (N, ...) -> (N, product of the rest).
local Flatten = Module:extend("Flatten")
L.Flatten = Flatten
function Flatten:forward(x) return x:reshape(x:size(1), -1) end

return L
