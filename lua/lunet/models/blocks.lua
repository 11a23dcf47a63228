--- The residual blocks of the model zoo (docs/method.md section 2) and the
-- initialisation recipes of section 4.
--
-- Child names follow the authors' checkpoint keys (shared/reference/authors-keys/):
-- a plain block has conv1, bn1, conv2, bn2 (conv3, bn3) and a `shortcut`
-- Sequential(conv, bn) when it changes shape; a shared-basis block holds the group's
-- FilterBasis instance(s) under `shared_basis_1`/`shared_basis_2` (or
-- `shared_basis` when one basis serves the whole block), assigned there by the
-- network that owns them. Activations inside blocks are functional (F.relu), so that
-- the summary counts only the layers the paper's FLOPs convention counts.
-- @module lunet.models.blocks
local lunet = require "lunet"
local nn = lunet.nn
local F = nn.functional
local init = nn.init

local B = {}

-- conv(i, o, k, stride): padding k//2, no bias (method.md section 2).
local function conv(i, o, k, stride, groups)
  return nn.Conv2d(i, o, k, { stride = stride or 1, padding = k // 2, groups = groups or 1,
                              bias = false })
end

-- Rows (output filters) of a FilterBasis: its rank.
local function rank_of(basis) return basis.weight:size(1) end

-- ------------------------------------------------------------------ basic blocks
--- Plain basic block (ResNet-18/34, CIFAR ResNets): conv3x3(i,o,stride) BN ReLU
-- conv3x3(o,o) BN, plus the shortcut, then ReLU. shortcut "B": conv1x1(i,o,stride) BN
-- when the shape changes (a `shortcut` child); "A": every second pixel and zero
-- channels (o-i)/2 on each side (CIFAR, no parameters).
B.BasicBlock = nn.Module:extend("BasicBlock")

function B.BasicBlock:__init(i, o, stride, shortcut)
  nn.Module.__init(self)
  self.in_planes, self.planes, self.stride = i, o, stride
  self.conv1 = conv(i, o, 3, stride)
  self.bn1 = nn.BatchNorm2d(o)
  self.conv2 = conv(o, o, 3)
  self.bn2 = nn.BatchNorm2d(o)
  if stride ~= 1 or i ~= o then
    if shortcut == "A" then
      self.option_a_pad = (o - i) // 2
    else
      self.shortcut = nn.Sequential(conv(i, o, 1, stride), nn.BatchNorm2d(o))
    end
  end
end

function B.BasicBlock:residual(x)
  if self.option_a_pad then return F.shortcut_a(x, self.stride, self.option_a_pad) end
  if self.shortcut then return self.shortcut(x) end
  return x
end

function B.BasicBlock:forward(x)
  local out = F.relu(self.bn1(self.conv1(x)))
  out = self.bn2(self.conv2(out))
  return F.relu(out + self:residual(x))
end

function B.BasicBlock:extra_repr()
  return ("%d, %d, stride=%d"):format(self.in_planes, self.planes, self.stride)
end

--- Shared-basis basic block (blocks 2..n of a group; stride 1, planes -> planes):
--   h = cat(basis_conv1(x) -> u, shared_basis_1(x) -> s); basis_bn1; coeff_conv1 (1x1
--   u+s -> planes); bn1; ReLU; the same again with basis_conv2/shared_basis_2,
--   basis_bn2, coeff_conv2, bn2; out = ReLU(g + x).
-- `bases` is {B1, B2} (DoubleShared: children shared_basis_1, shared_basis_2) or {B}
-- (SingleShared: one child `shared_basis`, used by both convolutions).
B.SharedBasicBlock = nn.Module:extend("SharedBasicBlock")

function B.SharedBasicBlock:__init(planes, unique_rank, bases)
  nn.Module.__init(self)
  self.planes, self.unique_rank = planes, unique_rank
  local b1, b2 = bases[1], bases[2] or bases[1]
  if bases[2] then
    self.shared_basis_1 = b1
    self.shared_basis_2 = b2
  else
    self.shared_basis = b1
  end
  local r1, r2 = unique_rank + rank_of(b1), unique_rank + rank_of(b2)
  self.basis_conv1 = conv(planes, unique_rank, 3)
  self.basis_bn1 = nn.BatchNorm2d(r1)
  self.coeff_conv1 = conv(r1, planes, 1)
  self.bn1 = nn.BatchNorm2d(planes)
  self.basis_conv2 = conv(planes, unique_rank, 3)
  self.basis_bn2 = nn.BatchNorm2d(r2)
  self.coeff_conv2 = conv(r2, planes, 1)
  self.bn2 = nn.BatchNorm2d(planes)
end

--- The block's two shared bases (the same one twice for SingleShared).
function B.SharedBasicBlock:bases()
  if self.shared_basis then return self.shared_basis, self.shared_basis end
  return self.shared_basis_1, self.shared_basis_2
end

function B.SharedBasicBlock:forward(x)
  local b1, b2 = self:bases()
  local h = F.cat({ self.basis_conv1(x), b1(x) }, 2)          -- (N, u+s, H, W)
  h = F.relu(self.bn1(self.coeff_conv1(self.basis_bn1(h))))   -- (N, planes, H, W)
  local g = F.cat({ self.basis_conv2(h), b2(h) }, 2)
  g = self.bn2(self.coeff_conv2(self.basis_bn2(g)))
  return F.relu(g + x)
end

function B.SharedBasicBlock:extra_repr()
  return ("%d, unique_rank=%d"):format(self.planes, self.unique_rank)
end

-- ------------------------------------------------------------------ bottlenecks
--- Plain bottleneck (ResNet-50/101): conv1x1(i,p) BN ReLU conv3x3(p,p,stride) BN ReLU
-- conv1x1(p,4p) BN, plus the option-B shortcut, then ReLU.
B.Bottleneck = nn.Module:extend("Bottleneck")

function B.Bottleneck:__init(i, planes, stride)
  nn.Module.__init(self)
  local o = 4 * planes
  self.in_planes, self.planes, self.stride = i, planes, stride
  self.conv1 = conv(i, planes, 1)
  self.bn1 = nn.BatchNorm2d(planes)
  self.conv2 = conv(planes, planes, 3, stride)
  self.bn2 = nn.BatchNorm2d(planes)
  self.conv3 = conv(planes, o, 1)
  self.bn3 = nn.BatchNorm2d(o)
  if stride ~= 1 or i ~= o then
    self.shortcut = nn.Sequential(conv(i, o, 1, stride), nn.BatchNorm2d(o))
  end
end

function B.Bottleneck:forward(x)
  local out = F.relu(self.bn1(self.conv1(x)))
  out = F.relu(self.bn2(self.conv2(out)))
  out = self.bn3(self.conv3(out))
  return F.relu(out + (self.shortcut and self.shortcut(x) or x))
end

function B.Bottleneck:extra_repr()
  return ("%d, %d, stride=%d"):format(self.in_planes, self.planes, self.stride)
end

--- Shared bottleneck (blocks 2..n of a group, 4p -> 4p, stride 1): its own conv1 and
-- BNs; the group's shared conv3x3(p,p) replaces conv2 and, when `last` is given
-- (ResNet*_Shared), the group's shared conv1x1(p,4p) replaces conv3. Children:
-- conv1, bn1, shared_basis (SharedSingle) or shared_basis_1 (Shared), bn2,
-- conv3 (SharedSingle) or shared_basis_2 (Shared), bn3.
B.SharedBottleneck = nn.Module:extend("SharedBottleneck")

function B.SharedBottleneck:__init(planes, middle, last)
  nn.Module.__init(self)
  self.planes = planes
  self.conv1 = conv(4 * planes, planes, 1)
  self.bn1 = nn.BatchNorm2d(planes)
  if last then self.shared_basis_1 = middle else self.shared_basis = middle end
  self.bn2 = nn.BatchNorm2d(planes)
  if last then self.shared_basis_2 = last else self.conv3 = conv(planes, 4 * planes, 1) end
  self.bn3 = nn.BatchNorm2d(4 * planes)
end

function B.SharedBottleneck:forward(x)
  local middle = self.shared_basis or self.shared_basis_1
  local last = self.shared_basis_2 or self.conv3
  local out = F.relu(self.bn1(self.conv1(x)))
  out = F.relu(self.bn2(middle(out)))
  out = self.bn3(last(out))
  return F.relu(out + x)
end

function B.SharedBottleneck:extra_repr() return ("%d"):format(self.planes) end

-- ------------------------------------------------------------------ MobileNetV2
--- The 1-D convolution across channels of ECA, as a layer holding its kernel
-- `weight` (1, 1, k) (no bias): (N, C, 1, 1) -> (N, C, 1, 1), zero padding (k-1)/2.
B.ChannelConv1d = nn.Module:extend("ChannelConv1d")

function B.ChannelConv1d:__init(k)
  nn.Module.__init(self)
  self.kernel_size = k
  self:register_parameter("weight", lunet.empty { 1, 1, k })
  init.default_conv_(self)
end

function B.ChannelConv1d:forward(y)
  return F.conv1d_channels(y, self.weight, (self.kernel_size - 1) // 2)
end

function B.ChannelConv1d:extra_repr() return ("kernel_size=%d"):format(self.kernel_size) end

--- ECA channel attention with the authors' layout: the kernel lives in a child
-- `conv` (key `chan_attention.conv.weight`). x * sigmoid(conv(avgpool(x))), the
-- pooling and sigmoid functional (they are no layers in the paper's counting).
B.ChannelAttention = nn.ECA:extend("ECA")

function B.ChannelAttention:__init(k)
  nn.Module.__init(self)
  self.kernel_size = k
  self.conv = B.ChannelConv1d(k)
end

function B.ChannelAttention:reset_parameters() init.default_conv_(self.conv) end

function B.ChannelAttention:forward(x)
  return x * F.sigmoid(self.conv(F.global_avg_pool2d(x)))   -- (N, C, H, W)
end

--- MobileNetV2 inverted residual (expansion t, stride s): conv1x1(i, t*i) BN ReLU,
-- depthwise conv3x3(t*i, stride s) BN ReLU, conv1x1(t*i, o) BN, plus the input when
-- s == 1 and i == o. (ReLU, not ReLU6, inside blocks, as the authors' model.)
B.InvertedResidual = nn.Module:extend("InvertedResidual")

function B.InvertedResidual:__init(i, o, t, stride)
  nn.Module.__init(self)
  local h = t * i
  self.in_planes, self.planes, self.expansion, self.stride = i, o, t, stride
  self.conv1 = conv(i, h, 1)
  self.bn1 = nn.BatchNorm2d(h)
  self.conv2 = conv(h, h, 3, stride, h)
  self.bn2 = nn.BatchNorm2d(h)
  self.conv3 = conv(h, o, 1)
  self.bn3 = nn.BatchNorm2d(o)
  self.residual = stride == 1 and i == o
end

function B.InvertedResidual:forward(x)
  local out = F.relu(self.bn1(self.conv1(x)))
  out = F.relu(self.bn2(self.conv2(out)))
  out = self.bn3(self.conv3(out))
  if self.residual then out = out + x end
  return out
end

function B.InvertedResidual:extra_repr()
  return ("%d, %d, expansion=%d, stride=%d"):format(self.in_planes, self.planes,
                                                    self.expansion, self.stride)
end

--- Shared inverted residual (blocks 2..n of stages 3-6; c -> c, stride 1, t = 6).
-- "Shared": the stage's shared expansion conv1x1(c, 6c) replaces conv1 (children
-- shared_basis1, bn1, conv2, bn2, conv3, bn3). "SharedDouble" (`project` given): the
-- stage's shared projection conv1x1(6c, c) replaces conv3 too, and ECA channel
-- attention (kernel eca_k) scales the projection output before the residual add
-- (children shared_basis1, shared_basis2, bn1, conv2, bn2, bn3, chan_attention).
B.SharedInvertedResidual = nn.Module:extend("SharedInvertedResidual")

function B.SharedInvertedResidual:__init(c, expand, project, eca_k)
  nn.Module.__init(self)
  local h = rank_of(expand)
  self.planes = c
  self.shared_basis1 = expand
  if project then self.shared_basis2 = project end
  self.bn1 = nn.BatchNorm2d(h)
  self.conv2 = conv(h, h, 3, 1, h)
  self.bn2 = nn.BatchNorm2d(h)
  if not project then self.conv3 = conv(h, c, 1) end
  self.bn3 = nn.BatchNorm2d(c)
  if project then self.chan_attention = B.ChannelAttention(eca_k) end
end

function B.SharedInvertedResidual:forward(x)
  local out = F.relu(self.bn1(self.shared_basis1(x)))
  out = F.relu(self.bn2(self.conv2(out)))
  out = self.bn3((self.shared_basis2 or self.conv3)(out))
  if self.chan_attention then out = self.chan_attention(out) end
  return out + x
end

function B.SharedInvertedResidual:extra_repr() return ("%d"):format(self.planes) end

-- ------------------------------------------------------------------ initialisation
-- True when m is an instance of class cls or of a subclass of it.
local function is_a(m, cls)
  local c = getmetatable(m)
  while c do
    if rawequal(c, cls) then return true end
    local mt = getmetatable(c)
    c = mt and rawget(mt, "__index")
    if type(c) ~= "table" then return false end
  end
  return false
end

--- ResNet initialisation (method.md section 4, before the orthogonal step): every
-- convolution, shared bases included, Kaiming normal (fan_out, ReLU gain); BN weight
-- 1, bias 0, running mean 0, running var 1; fully connected layers PyTorch's default.
function B.init_resnet(model)
  for _, m in ipairs(model:modules()) do
    if is_a(m, nn.Conv2d) or is_a(m, nn.FilterBasis) then
      init.kaiming_normal_(m.weight, { mode = "fan_out", nonlinearity = "relu" })
    elseif is_a(m, nn.BatchNorm2d) then
      m.weight:fill(1); m.bias:fill(0)
      m.running_mean:fill(0); m.running_var:fill(1)
    elseif is_a(m, nn.Linear) then
      init.default_linear_(m)
    end
  end
end

--- PyTorch's default initialisation everywhere (MobileNetV2 models): convolution,
-- shared basis, ECA and fully connected weights (and biases) uniform in
-- +-1/sqrt(fan_in) with fan_in = in/groups*k*k; BN weight 1, bias 0.
function B.init_default(model)
  for _, m in ipairs(model:modules()) do
    if is_a(m, nn.Conv2d) or is_a(m, nn.FilterBasis) or is_a(m, B.ChannelConv1d) then
      init.default_conv_(m)
    elseif is_a(m, nn.Linear) then
      init.default_linear_(m)
    elseif is_a(m, nn.BatchNorm2d) then
      m.weight:fill(1); m.bias:fill(0)
      m.running_mean:fill(0); m.running_var:fill(1)
    end
  end
end

--- Orthogonal re-initialisation of shared bases: `joint` is a list of lists of
-- FilterBasis modules initialised together (one orthogonal matrix split by rows
-- over them, e.g. {B1, B2} of a DoubleShared group); a list of one is initialised
-- alone.
function B.init_orthogonal(joint)
  for _, set in ipairs(joint) do
    if #set == 1 then
      init.orthogonal_(set[1].weight)
    else
      local ws = {}
      for i, b in ipairs(set) do ws[i] = b.weight end
      init.orthogonal_joint_(ws)
    end
  end
end

return B
