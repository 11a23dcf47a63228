--- CIFAR ResNets (docs/method.md section 3): ResNet20/32/44/56/110 and their
-- _DoubleShared variants.
--
-- Layout (names as the authors' checkpoint keys): conv1 (3x3, 16 channels), bn1,
-- relu (a layer); for each group g = 1..3 (widths 16, 32, 64, strides 1, 2, 2, n
-- blocks each) the DoubleShared bases `shared_basis_g_1`, `shared_basis_g_2`
-- (conv3x3(width, S*2^(g-1)) each) followed by `layer<g>`, whose first block is plain
-- and the others share the bases with unique rank U*2^(g-1); avgpool, fc. Shortcuts
-- are "option A" (every second pixel, zero channels), so they hold no parameters.
-- @module lunet.models.cifar_resnet
local nn = require "lunet.nn"
local B = require "lunet.models.blocks"

local WIDTHS = { 16, 32, 64 }

local CifarResNet = nn.Module:extend("CifarResNet")

--- spec: {depth_n = blocks per group, sharing = nil | "double"}; cfg: {classes,
-- in_channels, shared_rank, unique_rank, orthogonal_init, stem_stride (default 1)}.
function CifarResNet:__init(spec, cfg)
  nn.Module.__init(self)
  self.conv1 = nn.Conv2d(cfg.in_channels, 16, 3, { stride = cfg.stem_stride or 1, padding = 1,
                                                  bias = false })
  self.bn1 = nn.BatchNorm2d(16)
  self.relu = nn.ReLU()

  local terms, joint = {}, {}
  local in_planes = 16
  for g, width in ipairs(WIDTHS) do
    local stride = g == 1 and 1 or 2
    local b1, b2, u
    if spec.sharing == "double" then
      local scale = 1 << (g - 1)
      local s = cfg.shared_rank * scale
      u = cfg.unique_rank * scale
      b1, b2 = nn.FilterBasis(width, s, 3), nn.FilterBasis(width, s, 3)
      self["shared_basis_" .. g .. "_1"] = b1
      self["shared_basis_" .. g .. "_2"] = b2
      joint[#joint + 1] = { b1, b2 }
    end
    local blocks, unique = {}, {}
    for i = 1, spec.depth_n do
      if i > 1 and b1 then
        local blk = B.SharedBasicBlock(width, u, { b1, b2 })
        unique[#unique + 1] = blk.basis_conv1
        unique[#unique + 1] = blk.basis_conv2
        blocks[i] = blk
      else
        blocks[i] = B.BasicBlock(in_planes, width, i == 1 and stride or 1, "A")
      end
      in_planes = width
    end
    if b1 then terms[#terms + 1] = { shared = { b1, b2 }, unique = unique } end
    self["layer" .. g] = nn.Sequential(table.unpack(blocks))
  end
  self.avgpool = nn.GlobalAvgPool2d()
  self.fc = nn.Linear(64, cfg.classes)

  -- The regulariser's grouping (see lunet.reg): one average; per group, B1 and B2
  -- stacked with every block's unique basis filters.
  self.orthogonality_groups = #terms > 0 and { terms } or {}

  B.init_resnet(self)
  if cfg.orthogonal_init then B.init_orthogonal(joint) end
end

function CifarResNet:forward(x)
  x = self.relu(self.bn1(self.conv1(x)))
  x = self.layer3(self.layer2(self.layer1(x)))
  x = self.avgpool(x)                                   -- (N, 64, 1, 1)
  return self.fc(x:reshape(x:size(1), -1))              -- (N, classes)
end

return CifarResNet
