--- The shared-filter-basis layers of `lunet.nn` (method.md sections 1-2) and ECA:
--
-- * `FilterBasis(in, rank, k, {stride = 1})`: a k x k convolution from `in` to `rank`
--   channels with padding k//2 and no bias, `weight` (rank, in, k, k). It is the
--   shareable part: the SAME instance is assigned into every block that uses it, so
--   parameters() reports its weight once and backward sums the gradients of all uses.
-- * `BasisConv2d(basis, unique_rank, out)`: the factorised convolution of a shared-basis
--   block: cat(unique k x k conv (u outputs), basis (s outputs)) (unique first) -> BN(u+s)
--   -> 1x1 coefficients conv to `out`. Children, in order: `shared_basis`, `basis_conv`
--   (absent when u = 0), `basis_bn`, `coeff_conv`.
-- * `ECA(k)`: efficient channel attention: x * sigmoid(conv1d_channels(avgpool(x))).
-- @module lunet.nn.basis
local core = require "lunet.core"
local Module = require "lunet.nn.module"
local F = require "lunet.nn.functional"
local init = require "lunet.nn.initializers"
local layers = require "lunet.nn.layers"
local A = require "lunet.nn.args"

local B = {}

-- ------------------------------------------------------------------- FilterBasis
local FilterBasis = Module:extend("FilterBasis")
B.FilterBasis = FilterBasis

function FilterBasis:__init(in_channels, rank, kernel_size, opts)
  Module.__init(self)
  local C = "FilterBasis"
  opts = A.opts(C, opts, { "stride" })
  self.in_channels = A.int(C, "in_channels", in_channels)
  self.rank = A.int(C, "rank", rank)
  self.kernel_size = A.int(C, "kernel_size", kernel_size)
  self.stride = A.int(C, "stride", opts.stride or 1)
  self.padding = kernel_size // 2
  self:register_parameter("weight", core.empty { rank, in_channels, kernel_size, kernel_size })
  self:reset_parameters()
end

--- PyTorch's default conv init; the zoo re-initialises shared bases orthogonally.
function FilterBasis:reset_parameters() init.default_conv_(self) end

function FilterBasis:forward(x)
  return F.conv2d(x, self.weight, nil, { stride = self.stride, padding = self.padding })
end

function FilterBasis:extra_repr()
  return ("%d, %d, kernel_size=%d, stride=%d"):format(self.in_channels, self.rank,
    self.kernel_size, self.stride)
end

-- ------------------------------------------------------------------- BasisConv2d
local BasisConv2d = Module:extend("BasisConv2d")
B.BasisConv2d = BasisConv2d

function BasisConv2d:__init(basis, unique_rank, out_channels)
  Module.__init(self)
  local C = "BasisConv2d"
  if not (Module.is_module(basis) and basis.rank and basis.kernel_size and basis.in_channels) then
    error(("BasisConv2d: basis must be a FilterBasis, got %s"):format(
      Module.is_module(basis) and tostring(getmetatable(basis).__name) or A.describe(basis)), 2)
  end
  self.in_channels = basis.in_channels
  self.unique_rank = A.int(C, "unique_rank", unique_rank, 0)
  self.shared_rank = basis.rank
  self.out_channels = A.int(C, "out_channels", out_channels)
  self.kernel_size = basis.kernel_size
  self.stride = basis.stride
  local width = unique_rank + basis.rank
  self.shared_basis = basis
  if unique_rank > 0 then
    self.basis_conv = layers.Conv2d(basis.in_channels, unique_rank, basis.kernel_size,
      { stride = basis.stride, padding = basis.padding, bias = false })
  end
  self.basis_bn = layers.BatchNorm2d(width)
  self.coeff_conv = layers.Conv2d(width, out_channels, 1, { bias = false })
end

function BasisConv2d:forward(x)
  local h = self.shared_basis(x)
  if self.basis_conv then h = F.cat({ self.basis_conv(x), h }, 2) end
  return self.coeff_conv(self.basis_bn(h))
end

function BasisConv2d:extra_repr()
  return ("%d, %d, unique_rank=%d, shared_rank=%d"):format(self.in_channels,
    self.out_channels, self.unique_rank, self.shared_rank)
end

-- ------------------------------------------------------------------- ECA
local ECA = Module:extend("ECA")
B.ECA = ECA

--- `ECA(k)`: k odd (kernel of the 1-D conv across channels), `weight` (1, 1, k).
function ECA:__init(k)
  Module.__init(self)
  self.kernel_size = A.int("ECA", "k", k)
  if k % 2 ~= 1 then error(("ECA: k must be odd, got %d"):format(k), 2) end
  self:register_parameter("weight", core.empty { 1, 1, k })
  self:reset_parameters()
end

function ECA:reset_parameters() init.default_conv_(self) end

function ECA:forward(x)
  local y = F.conv1d_channels(F.global_avg_pool2d(x), self.weight, (self.kernel_size - 1) // 2)
  return x * F.sigmoid(y)
end

function ECA:extra_repr() return ("kernel_size=%d"):format(self.kernel_size) end

return B
