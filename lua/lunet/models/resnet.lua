--- ILSVRC ResNets (docs/method.md section 3): ResNet-18/34/50/101 and their shared
-- variants ResNet34_DoubleShared, ResNet34_SingleShared, ResNet{50,101}_SharedSingle
-- and ResNet{50,101}_Shared.
--
-- Layout (names as the authors' checkpoint keys): conv1 (7x7, stride 2), bn1, relu
-- (a layer: the paper counts it), maxpool (3x3, stride 2, padding 1); then for each
-- group g = 1..4 its shared bases (top-level `shared_basis_g_1`, `shared_basis_g_2`
-- or `shared_basis_g`) followed by `layer<g>`, a Sequential of blocks whose first is
-- always plain; avgpool, fc. Groups have widths 64, 128, 256, 512 and strides
-- 1, 2, 2, 2.
-- @module lunet.models.resnet
local nn = require "lunet.nn"
local B = require "lunet.models.blocks"

local WIDTHS = { 64, 128, 256, 512 }

local ResNet = nn.Module:extend("ResNet")

--- Builds the network described by `spec` and the resolved options `cfg`.
-- spec: {block = "basic"|"bottleneck", blocks = {n1, n2, n3, n4}, sharing = nil |
-- "double" | "single" (basic blocks, ranks S*2^(g-1) shared and U*2^(g-1) unique) |
-- "shared_single" | "shared" (bottlenecks: shared 3x3, and 1x1 for "shared")}.
-- cfg: {classes, in_channels, shared_rank, unique_rank, orthogonal_init}.
function ResNet:__init(spec, cfg)
  nn.Module.__init(self)
  local bottleneck = spec.block == "bottleneck"
  local expansion = bottleneck and 4 or 1
  self.conv1 = nn.Conv2d(cfg.in_channels, 64, 7, { stride = 2, padding = 3, bias = false })
  self.bn1 = nn.BatchNorm2d(64)
  self.relu = nn.ReLU()
  self.maxpool = nn.MaxPool2d { kernel = 3, stride = 2, padding = 1 }

  local sharing = spec.sharing
  local first_avg, second_avg, joint = {}, {}, {}
  local in_planes = 64
  for g, width in ipairs(WIDTHS) do
    local n, stride = spec.blocks[g], g == 1 and 1 or 2
    local scale = 1 << (g - 1)
    local make_shared -- function() -> a shared block of this group
    if sharing == "double" then
      local s, u = cfg.shared_rank * scale, cfg.unique_rank * scale
      local b1, b2 = nn.FilterBasis(width, s, 3), nn.FilterBasis(width, s, 3)
      self["shared_basis_" .. g .. "_1"] = b1
      self["shared_basis_" .. g .. "_2"] = b2
      joint[#joint + 1] = { b1, b2 }
      first_avg[#first_avg + 1] = { shared = { b1, b2 } }
      make_shared = function() return B.SharedBasicBlock(width, u, { b1, b2 }) end
    elseif sharing == "single" then
      local s, u = cfg.shared_rank * scale, cfg.unique_rank * scale
      local b = nn.FilterBasis(width, s, 3)
      self["shared_basis_" .. g] = b
      joint[#joint + 1] = { b }
      first_avg[#first_avg + 1] = { shared = { b } }
      make_shared = function() return B.SharedBasicBlock(width, u, { b }) end
    elseif sharing == "shared_single" then
      local b = nn.FilterBasis(width, width, 3)
      self["shared_basis_" .. g] = b
      joint[#joint + 1] = { b }
      first_avg[#first_avg + 1] = { shared = { b } }
      make_shared = function() return B.SharedBottleneck(width, b) end
    elseif sharing == "shared" then
      local b1, b2 = nn.FilterBasis(width, width, 3), nn.FilterBasis(width, 4 * width, 1)
      self["shared_basis_" .. g .. "_1"] = b1
      self["shared_basis_" .. g .. "_2"] = b2
      joint[#joint + 1] = { b1 }
      joint[#joint + 1] = { b2 }
      first_avg[#first_avg + 1] = { shared = { b1 } }
      second_avg[#second_avg + 1] = { shared = { b2 } }
      make_shared = function() return B.SharedBottleneck(width, b1, b2) end
    end

    local blocks = {}
    for i = 1, n do
      if i > 1 and make_shared then
        blocks[i] = make_shared()
      elseif bottleneck then
        blocks[i] = B.Bottleneck(in_planes, width, i == 1 and stride or 1)
      else
        blocks[i] = B.BasicBlock(in_planes, width, i == 1 and stride or 1, "B")
      end
      in_planes = width * expansion
    end
    self["layer" .. g] = nn.Sequential(table.unpack(blocks))
  end
  self.avgpool = nn.GlobalAvgPool2d()
  self.fc = nn.Linear(512 * expansion, cfg.classes)

  -- The regulariser's grouping (see lunet.reg): one average over the groups' bases
  -- (DoubleShared: B1 and B2 of a group stacked), plus one over the 1x1 bases for
  -- ResNet*_Shared.
  self.orthogonality_groups = {}
  if #first_avg > 0 then self.orthogonality_groups[1] = first_avg end
  if #second_avg > 0 then self.orthogonality_groups[2] = second_avg end

  B.init_resnet(self)
  if cfg.orthogonal_init then B.init_orthogonal(joint) end
end

function ResNet:forward(x)
  x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
  x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
  x = self.avgpool(x)                                   -- (N, C, 1, 1)
  return self.fc(x:reshape(x:size(1), -1))              -- (N, classes)
end

return ResNet
