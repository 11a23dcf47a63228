--- MobileNetV2 and its shared variants (docs/method.md section 3): MobileNetV2,
-- MobileNetV2_Shared (a shared expansion conv1x1 per stage 3-6) and
-- MobileNetV2_SharedDouble (shared expansion and projection, plus ECA).
--
-- Layout (names as the authors' checkpoint keys): `pre` = Sequential(conv3x3(in, 32,
-- stride 2, with bias), BN, ReLU6); stages `stage1`..`stage7` (a single block when the
-- stage has one, else a Sequential); before each of stages 3-6 its shared bases
-- (top-level `shared_basis_k` for Shared, `shared_basis_k_1` (expansion) and
-- `shared_basis_k_2` (projection) for SharedDouble, k = stage - 2); `conv1` =
-- Sequential(conv1x1(320, 1280, with bias), BN, ReLU6); avgpool; `classifier` =
-- Sequential(Dropout(0.2), Linear(1280, classes)).
-- @module lunet.models.mobilenetv2
local nn = require "lunet.nn"
local B = require "lunet.models.blocks"

-- (expansion t, output channels, blocks n, stride of the first block) per stage
local STAGES = {
  { 1, 16, 1, 1 }, { 6, 24, 2, 2 }, { 6, 32, 3, 2 }, { 6, 64, 4, 2 },
  { 6, 96, 3, 1 }, { 6, 160, 3, 2 }, { 6, 320, 1, 1 },
}

local MobileNetV2 = nn.Module:extend("MobileNetV2")

--- spec: {sharing = nil | "shared" | "double"}; cfg: {classes, in_channels,
-- orthogonal_init}.
function MobileNetV2:__init(spec, cfg)
  nn.Module.__init(self)
  self.pre = nn.Sequential(nn.Conv2d(cfg.in_channels, 32, 3, { stride = 2, padding = 1 }),
                           nn.BatchNorm2d(32), nn.ReLU6())
  local expands, projects, joint = {}, {}, {}
  local in_planes = 32
  for s, st in ipairs(STAGES) do
    local t, o, n, stride = st[1], st[2], st[3], st[4]
    local expand, project
    if spec.sharing and s >= 3 and s <= 6 then
      local k = s - 2
      expand = nn.FilterBasis(o, t * o, 1)
      expands[#expands + 1] = { shared = { expand } }
      joint[#joint + 1] = { expand }
      if spec.sharing == "double" then
        project = nn.FilterBasis(t * o, o, 1)
        projects[#projects + 1] = { shared = { project } }
        joint[#joint + 1] = { project }
        self["shared_basis_" .. k .. "_1"] = expand
        self["shared_basis_" .. k .. "_2"] = project
      else
        self["shared_basis_" .. k] = expand
      end
    end
    local blocks = {}
    for i = 1, n do
      if i > 1 and expand then
        blocks[i] = B.SharedInvertedResidual(o, expand, project, o < 96 and 1 or 3)
      else
        blocks[i] = B.InvertedResidual(in_planes, o, t, i == 1 and stride or 1)
      end
      in_planes = o
    end
    self["stage" .. s] = n == 1 and blocks[1] or nn.Sequential(table.unpack(blocks))
  end
  self.conv1 = nn.Sequential(nn.Conv2d(320, 1280, 1), nn.BatchNorm2d(1280), nn.ReLU6())
  self.avgpool = nn.GlobalAvgPool2d()
  self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, cfg.classes))

  -- The regulariser's grouping (see lunet.reg): one average over the expansion bases,
  -- plus (SharedDouble) one over the projection bases.
  self.orthogonality_groups = {}
  if #expands > 0 then self.orthogonality_groups[1] = expands end
  if #projects > 0 then self.orthogonality_groups[2] = projects end

  B.init_default(self)
  if cfg.orthogonal_init then B.init_orthogonal(joint) end
end

function MobileNetV2:forward(x)
  x = self.pre(x)
  for s = 1, #STAGES do x = self["stage" .. s](x) end
  x = self.avgpool(self.conv1(x))                      -- (N, 1280, 1, 1)
  return self.classifier(x:reshape(x:size(1), -1))     -- (N, classes)
end

return MobileNetV2
