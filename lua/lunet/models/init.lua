--- The model zoo: every network of docs/method.md section 3, built by name.
--
--     local net = lunet.models.build("ResNet34_DoubleShared", {shared_rank = 48, unique_rank = 1})
--     for _, name in ipairs(lunet.models.list()) do print(name) end
--
-- Options (all optional; unknown keys are an error):
--   shared_rank, unique_rank  the S and U of the paper (models with a rank only:
--                             ResNet34_DoubleShared, ResNet34_SingleShared and the
--                             CIFAR *_DoubleShared). Group g uses S*2^(g-1) shared and
--                             U*2^(g-1) unique basis filters. Defaults: S48U1 on
--                             ILSVRC (the paper's ResNet34-S48U1), S16U1 on CIFAR.
--   dataset                   "ilsvrc", "cifar10", "cifar100" or "fashion-mnist": sets
--                             the defaults of classes (1000, 10, 100, 10) and
--                             in_channels (1 for fashion-mnist, else 3) and the
--                             model's input_shape. Default: "ilsvrc" for the ILSVRC
--                             models, "cifar10" for the CIFAR ones. It never changes
--                             the architecture.
--   classes, in_channels      positive integers.
--   stem_stride               (CIFAR ResNets only) stride of the 3x3 stem convolution,
--                             1 (default, the paper's) or 2: every feature map is then
--                             4x smaller, so training is about 4x cheaper, with the
--                             same parameters (the Fashion-MNIST demo uses 2).
--   orthogonal_init           (models with shared bases) re-initialise the shared
--                             bases orthogonally (method.md section 4). Default true
--                             for ResNets, false for MobileNetV2s (the published
--                             setup uses the default initialisation there).
--
-- A built model carries: `name`, `config` (the resolved options), `input_shape`
-- ({C, H, W} of one image of its dataset) and `orthogonality_groups` (the
-- regulariser's grouping, read by lunet.reg).
-- @module lunet.models
local M = {}

local DATASETS = {
  ilsvrc = { classes = 1000, in_channels = 3, size = 224 },
  cifar10 = { classes = 10, in_channels = 3, size = 32 },
  cifar100 = { classes = 100, in_channels = 3, size = 32 },
  ["fashion-mnist"] = { classes = 10, in_channels = 1, size = 28 },
}
local DATASET_NAMES = { "ilsvrc", "cifar10", "cifar100", "fashion-mnist" }

-- Every model in list() order: file (module under lunet.models), family (its
-- default dataset), spec (passed to the class) and, for models with ranks, their
-- defaults.
local MODELS, BY_NAME = {}, {}
local function add(name, file, family, spec, ranks)
  local e = { name = name, file = file, family = family, spec = spec, ranks = ranks,
              shared = spec.sharing ~= nil }
  MODELS[#MODELS + 1] = e
  BY_NAME[name] = e
end

local BASIC34, BOTTLE50, BOTTLE101 = { 3, 4, 6, 3 }, { 3, 4, 6, 3 }, { 3, 4, 23, 3 }
add("ResNet18", "resnet", "ilsvrc", { block = "basic", blocks = { 2, 2, 2, 2 } })
add("ResNet34", "resnet", "ilsvrc", { block = "basic", blocks = BASIC34 })
add("ResNet34_DoubleShared", "resnet", "ilsvrc",
    { block = "basic", blocks = BASIC34, sharing = "double" }, { shared = 48, unique = 1 })
add("ResNet34_SingleShared", "resnet", "ilsvrc",
    { block = "basic", blocks = BASIC34, sharing = "single" }, { shared = 48, unique = 1 })
add("ResNet50", "resnet", "ilsvrc", { block = "bottleneck", blocks = BOTTLE50 })
add("ResNet50_SharedSingle", "resnet", "ilsvrc",
    { block = "bottleneck", blocks = BOTTLE50, sharing = "shared_single" })
add("ResNet50_Shared", "resnet", "ilsvrc",
    { block = "bottleneck", blocks = BOTTLE50, sharing = "shared" })
add("ResNet101", "resnet", "ilsvrc", { block = "bottleneck", blocks = BOTTLE101 })
add("ResNet101_SharedSingle", "resnet", "ilsvrc",
    { block = "bottleneck", blocks = BOTTLE101, sharing = "shared_single" })
add("ResNet101_Shared", "resnet", "ilsvrc",
    { block = "bottleneck", blocks = BOTTLE101, sharing = "shared" })
add("MobileNetV2", "mobilenetv2", "ilsvrc", {})
add("MobileNetV2_Shared", "mobilenetv2", "ilsvrc", { sharing = "shared" })
add("MobileNetV2_SharedDouble", "mobilenetv2", "ilsvrc", { sharing = "double" })
for _, d in ipairs { { 20, 3 }, { 32, 5 }, { 44, 7 }, { 56, 9 }, { 110, 18 } } do
  add("ResNet" .. d[1], "cifar_resnet", "cifar10", { depth_n = d[2] })
end
for _, d in ipairs { { 20, 3 }, { 32, 5 }, { 44, 7 }, { 56, 9 }, { 110, 18 } } do
  add("ResNet" .. d[1] .. "_DoubleShared", "cifar_resnet", "cifar10",
      { depth_n = d[2], sharing = "double" }, { shared = 16, unique = 1 })
end

local OPTIONS = { "classes", "dataset", "in_channels", "orthogonal_init", "shared_rank",
                  "stem_stride", "unique_rank" }

--- The names of every model `build` knows, in a fixed order (ILSVRC ResNets,
-- MobileNetV2s, CIFAR ResNets). A fresh list.
function M.list()
  local out = {}
  for i, e in ipairs(MODELS) do out[i] = e.name end
  return out
end

local function entry(fn, name)
  if type(name) ~= "string" then
    error(("models.%s: the model name must be a string, got %s"):format(fn, type(name)), 3)
  end
  local e = BY_NAME[name]
  if not e then
    error(("models.%s: unknown model '%s'; valid names: %s"):format(
      fn, name, table.concat(M.list(), ", ")), 3)
  end
  return e
end

--- What `build(name)` uses by default: `{family = "ilsvrc"|"cifar10", dataset =,
-- classes =, in_channels =, input_shape = {C, H, W}, shared_rank =, unique_rank =
-- (nil for models without ranks), shared = (has shared bases)}`.
function M.info(name)
  local e = entry("info", name)
  local d = DATASETS[e.family]
  return {
    family = e.family, dataset = e.family, classes = d.classes, in_channels = d.in_channels,
    input_shape = { d.in_channels, d.size, d.size },
    shared_rank = e.ranks and e.ranks.shared, unique_rank = e.ranks and e.ranks.unique,
    shared = e.shared,
  }
end

-- A positive integer option (an integral float is accepted as its integer).
local function positive_int(name, key, v)
  local i = math.type(v) == "float" and math.tointeger(v) or v
  if math.type(i) ~= "integer" or i <= 0 then
    local shown = type(v) == "string" and ("%q"):format(v) or tostring(v)
    error(("models.build: %s: option '%s' must be a positive integer, got %s (%s)"):format(
      name, key, shown, math.type(v) or type(v)), 3)
  end
  return i
end

--- Builds a freshly initialised model.
-- @tparam string name one of list()
-- @tparam[opt] table opts {shared_rank =, unique_rank =, classes =, in_channels =,
-- dataset =, stem_stride =, orthogonal_init =} (see the module comment)
-- @return the model (an nn.Module), in training mode, f32 on the CPU
function M.build(name, opts)
  local e = entry("build", name)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    error(("models.build: %s: options must be a table, got %s"):format(name, type(opts)), 2)
  end
  for k in pairs(opts) do
    local known = false
    for _, o in ipairs(OPTIONS) do known = known or k == o end
    if not known then
      error(("models.build: %s: unknown option '%s' (expected %s)"):format(
        name, tostring(k), table.concat(OPTIONS, ", ")), 2)
    end
  end
  local dataset = opts.dataset or e.family
  local d = DATASETS[dataset]
  if type(dataset) ~= "string" or not d then
    error(("models.build: %s: option 'dataset' must be one of %s, got %s"):format(
      name, table.concat(DATASET_NAMES, ", "), tostring(dataset)), 2)
  end
  local cfg = { dataset = dataset }
  cfg.classes = opts.classes == nil and d.classes or positive_int(name, "classes", opts.classes)
  cfg.in_channels = opts.in_channels == nil and d.in_channels
                    or positive_int(name, "in_channels", opts.in_channels)
  for _, key in ipairs { "shared_rank", "unique_rank" } do
    if opts[key] ~= nil and not e.ranks then
      error(("models.build: %s has no %s (only ResNet34_DoubleShared, ResNet34_SingleShared "
             .. "and the CIFAR *_DoubleShared models take ranks)"):format(name, key), 2)
    end
    if e.ranks then
      local default = key == "shared_rank" and e.ranks.shared or e.ranks.unique
      cfg[key] = opts[key] == nil and default or positive_int(name, key, opts[key])
    end
  end
  if opts.stem_stride ~= nil then
    if e.file ~= "cifar_resnet" then
      error(("models.build: %s: option 'stem_stride' is only for the CIFAR ResNets"):format(name), 2)
    end
    if opts.stem_stride ~= 1 and opts.stem_stride ~= 2 then
      error(("models.build: %s: option 'stem_stride' must be 1 or 2, got %s"):format(
        name, tostring(opts.stem_stride)), 2)
    end
    cfg.stem_stride = math.tointeger(opts.stem_stride)
  end
  if opts.orthogonal_init ~= nil then
    if not e.shared then
      error(("models.build: %s has no shared basis, so no option 'orthogonal_init'"):format(
        name), 2)
    end
    if type(opts.orthogonal_init) ~= "boolean" then
      error(("models.build: %s: option 'orthogonal_init' must be a boolean, got %s"):format(
        name, type(opts.orthogonal_init)), 2)
    end
    cfg.orthogonal_init = opts.orthogonal_init
  elseif e.shared then
    cfg.orthogonal_init = e.file ~= "mobilenetv2"
  end

  local class = require("lunet.models." .. e.file)
  local model = class(e.spec, cfg)
  model.name = name
  model.config = cfg
  model.input_shape = { cfg.in_channels, d.size, d.size }
  return model
end

return M
