-- lunet.summary and `lunet summary`: every model of ../shared/reference/models.json
-- (params, shared-basis params and tensors, conv+linear multiply-adds and BN running
-- buffers to the digit), the paper's FLOPs of its six ILSVRC rows, the counting
-- conventions on a small hand-made model, the JSON writer, and the command line
-- (acceptance output, --json, --dataset, --classes, bad arguments -> status 2).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")
local lunet = require "lunet"
local summary = require "lunet.summary"
local nn, F = lunet.nn, lunet.nn.functional

local json_decode = H.json_decode

-- The reference figures; a missing ../shared is an error, not a silent pass.
local REF_PATH = "../shared/reference/models.json"
local function load_reference()
  local f = io.open(REF_PATH, "r")
  if not f then
    error(("summary_spec: %s not found (run the specs from the repository root, with shared/ beside it)"):format(REF_PATH))
  end
  local ref = json_decode(f:read("a"))
  f:close()
  return ref.models
end
local REFERENCE = load_reference()

-- The precise FLOPs of method.md section 7 for the six paper rows.
local PAPER_FLOPS = {
  { model = "ResNet34_DoubleShared", shared_rank = 48, unique_rank = 1, g = "3.2617" },
  { model = "ResNet50_SharedSingle", g = "4.1130" },
  { model = "ResNet50_Shared", g = "4.1130" },
  { model = "ResNet101_SharedSingle", g = "7.8355" },
  { model = "MobileNetV2_Shared", g = "0.3287" },
  { model = "MobileNetV2_SharedDouble", g = "0.3287" },
}

local function entry_key(e)
  if e.shared_rank == nil then return e.model end
  return ("%s S%d U%d"):format(e.model, e.shared_rank, e.unique_rank)
end

-- Summaries of the reference entries, computed once.
local reports = {}
local function report_of(e)
  local key = entry_key(e)
  if not reports[key] then
    local model = lunet.models.build(e.model, {
      shared_rank = e.shared_rank, unique_rank = e.unique_rank, classes = e.classes, dataset = e.dataset,
    })
    reports[key] = summary.summary(model, e.input, { name = e.model, dataset = e.dataset })
  end
  return reports[key]
end

describe("lunet.summary on the reference models", function()
  assert.are.equal(20, #REFERENCE)
  for _, e in ipairs(REFERENCE) do
    it(entry_key(e) .. " matches models.json to the digit", function()
      local r = report_of(e)
      for _, k in ipairs { "params", "shared_basis_params", "shared_basis_tensors",
                           "macs_conv_linear", "bn_running_buffers" } do
        assert.are.equal(e[k], r[k], ("%s: %s"):format(entry_key(e), k))
      end
      assert.are.equal(0, r.unused_params)
      -- the rows add up to the totals; each shared basis is listed with its uses
      local params, macs = 0, 0
      for _, row in ipairs(r.layers) do
        params, macs = params + row.params, macs + row.macs
      end
      assert.are.equal(r.params, params)
      assert.are.equal(r.macs_conv_linear, macs)
      local basis_params = 0
      for _, b in ipairs(r.bases) do
        basis_params = basis_params + b.params
        assert.is_true(b.layers >= 2, b.name)
      end
      assert.are.equal(r.shared_basis_params, basis_params)
      assert.are.equal(r.shared_basis_tensors, #r.bases)
    end)
  end

  for _, p in ipairs(PAPER_FLOPS) do
    it(p.model .. " has the paper's FLOPs " .. p.g .. "G", function()
      local e
      for _, x in ipairs(REFERENCE) do
        if x.model == p.model and x.shared_rank == p.shared_rank and x.unique_rank == p.unique_rank then e = x end
      end
      assert.is_not_nil(e, p.model .. " is not in models.json")
      local r = report_of(e)
      local target = tonumber(p.g) * 1e9
      assert.is_true(math.abs(r.flops_paper - target) <= 0.01 * target,
        ("%s: %d FLOPs, more than 1%% from %sG"):format(p.model, r.flops_paper, p.g))
      assert.are.equal(p.g, ("%.4f"):format(r.flops_paper / 1e9))
    end)
  end
end)

-- basis (4 -> 4, 3x3) shared by two blocks; each block: dw conv of the basis output, + x
local Block = nn.Module:extend("SpecBlock")
function Block:__init(basis)
  nn.Module.__init(self)
  self.shared = basis
  self.dw = nn.Conv2d(4, 4, 3, { padding = 1, groups = 4, bias = false })
end
function Block:forward(x) return F.relu(self.dw(self.shared(x))) + x end

local Tiny = nn.Module:extend("SpecTiny")
function Tiny:__init()
  nn.Module.__init(self)
  self.basis = nn.FilterBasis(4, 4, 3)
  self.conv = nn.Conv2d(2, 4, 3, { padding = 1 })
  self.bn = nn.BatchNorm2d(4)
  self.relu = nn.ReLU()
  self.b1 = Block(self.basis)
  self.b2 = Block(self.basis)
  self.pool = nn.MaxPool2d({ kernel = 2, stride = 2 })
  self.gap = nn.GlobalAvgPool2d()
  self.flatten = nn.Flatten()
  self.fc = nn.Linear(4, 5)
end
function Tiny:forward(x)
  x = self.relu(self.bn(self.conv(x)))
  x = self.b2(self.b1(x))
  return self.fc(self.flatten(self.gap(self.pool(x))))
end

describe("lunet.summary counting", function()
  -- input (1, 2, 8, 8); every conv output has 4 * 8 * 8 = 256 elements
  local expected = {
    { "conv", "Conv2d", { 1, 4, 8, 8 }, 76, 256 * 2 * 9, 256 * 2 * 9 + 256 },
    { "bn", "BatchNorm2d", { 1, 4, 8, 8 }, 8, 0, 2 * 256 },
    { "relu", "ReLU", { 1, 4, 8, 8 }, 0, 0, 256 },
    { "b1.shared", "FilterBasis", { 1, 4, 8, 8 }, 144, 256 * 4 * 9, 256 * 4 * 9 },
    { "b1.dw", "Conv2d", { 1, 4, 8, 8 }, 36, 256 * 9, 256 * 9 },
    { "b2.shared", "FilterBasis", { 1, 4, 8, 8 }, 0, 256 * 4 * 9, 256 * 4 * 9 },
    { "b2.dw", "Conv2d", { 1, 4, 8, 8 }, 36, 256 * 9, 256 * 9 },
    { "pool", "MaxPool2d", { 1, 4, 4, 4 }, 0, 0, 256 },
    { "gap", "GlobalAvgPool2d", { 1, 4, 1, 1 }, 0, 0, 0 },
    { "flatten", "Flatten", { 1, 4 }, 0, 0, 0 },
    { "fc", "Linear", { 1, 5 }, 25, 20, 25 },
  }

  it("names every call by its path and counts params, MACs and FLOPs per layer", function()
    local r = lunet.summary(Tiny(), { 2, 8, 8 })
    assert.are.equal(#expected, #r.layers)
    local params, macs, flops = 0, 0, 0
    for i, want in ipairs(expected) do
      local row = r.layers[i]
      assert.are.same(
        { want[1], want[2], want[3], want[4], want[5], want[6] },
        { row.name, row.type, row.output, row.params, row.macs, row.flops })
      params, macs, flops = params + want[4], macs + want[5], flops + want[6]
    end
    assert.are.equal(params, r.params)
    assert.are.equal(macs, r.macs_conv_linear)
    assert.are.equal(flops, r.flops_paper)
    assert.are.equal(144, r.shared_basis_params)
    assert.are.equal(1, r.shared_basis_tensors)
    assert.are.equal(8, r.bn_running_buffers)
    assert.are.same({ { name = "basis", params = 144, layers = 2 } }, r.bases)
    assert.is_false(r.layers[4].shared)
    assert.is_true(r.layers[6].shared)
    assert.are.equal("basis", r.layers[4].basis)
    assert.are.equal("basis", r.layers[6].basis)
    assert.is_nil(r.layers[5].basis)
    assert.are.same({ 2, 8, 8 }, r.input)
  end)

  it("prints the table and the totals with thousands separators", function()
    local text = tostring(summary.summary(Tiny(), { 2, 8, 8 }, { name = "Tiny" }))
    assert.matches("model: Tiny", text, 1, true)
    assert.matches("b2%.shared%s+FilterBasis%s+1x4x8x8%s+shared%s+9,216%s+basis", text)
    assert.matches("params: 325", text, 1, true)
    assert.matches("multiply-adds (conv + linear): 27,668", text, 1, true)
    assert.matches("FLOPs (paper convention): 28,953", text, 1, true)
    assert.matches("basis%s+144 params, serves 2 layers", text)
  end)

  it("leaves the model's mode and BN statistics as they were", function()
    local m = Tiny()
    m:train()
    local mean = m.bn.running_mean:totable()
    summary.summary(m, { 2, 8, 8 })
    assert.is_true(m.training)
    assert.is_true(m.bn.training)
    assert.are.same(mean, m.bn.running_mean:totable())
    m:eval()
    summary.summary(m, { 2, 8, 8 })
    assert.is_false(m.training)
  end)

  it("writes the report as one JSON object", function()
    local r = summary.summary(Tiny(), { 2, 8, 8 }, { name = "Tiny" })
    local j = json_decode(r:json())
    assert.are.equal("Tiny", j.model)
    assert.are.same({ 2, 8, 8 }, j.input)
    for _, k in ipairs { "params", "shared_basis_params", "shared_basis_tensors", "macs_conv_linear",
                         "flops_paper", "bn_running_buffers" } do
      assert.are.equal(r[k], j[k], k)
    end
    assert.are.equal(#r.layers, #j.layers)
    assert.are.equal("b2.shared", j.layers[6].name)
    assert.is_true(j.layers[6].shared)
    assert.are.equal("basis", j.bases[1].name)
  end)

  it("rejects bad arguments with clear errors", function()
    assert.has_error(function() summary.summary(42, { 3, 8, 8 }) end,
      "summary: model must be an nn.Module, got number")
    assert.has_error(function() summary.summary(Tiny(), {}) end,
      "summary: input_shape must be a list of positive integers (one sample, no batch), got an empty table")
    assert.has_error(function() summary.summary(Tiny(), { 2, 8.5, 8 }) end,
      "summary: input_shape[2] must be a positive integer, got 8.5")
    assert.has_error(function() summary.summary(Tiny(), { 2, 8, 8 }, { batch = 2 }) end,
      "summary: unknown option 'batch' (expected name, dataset)")
    local ok, err = pcall(summary.summary, Tiny(), { 3, 8, 8 })
    assert.is_false(ok)
    assert.matches("conv2d", err)
  end)
end)

describe("lunet.summary helpers", function()
  it("formats integers with thousands separators", function()
    assert.are.equal("0", summary.format_int(0))
    assert.are.equal("999", summary.format_int(999))
    assert.are.equal("1,000", summary.format_int(1000))
    assert.are.equal("11,786,968", summary.format_int(11786968))
    assert.are.equal("-1,234,567", summary.format_int(-1234567))
  end)

  it("writes JSON that a reader reads back", function()
    local o = summary.json_object
    local text = summary.json_encode(o {
      { "s", 'a "q" \\ \n\t\1' }, { "i", 12345678901 }, { "f", 0.5 }, { "nan", 0 / 0 },
      { "b", true }, { "skipped", nil }, { "l", { 1, 2, o { { "x", "y" } } } }, { "e", {} },
    })
    assert.are.equal('{"s":"a \\"q\\" \\\\ \\n\\t\\u0001","i":12345678901,"f":0.5,"nan":null,' ..
      '"b":true,"l":[1,2,{"x":"y"}],"e":[]}', text)
    local back = json_decode(text)
    assert.are.equal('a "q" \\ \n\t\1', back.s)
    assert.are.equal(12345678901, back.i)
    assert.are.equal("y", back.l[3].x)
  end)
end)

describe("lunet summary (command line)", function()
  it("prints 11,786,968 parameters for ResNet34_DoubleShared S48 U1", function()
    local out, err, code = H.lunet("summary --model=ResNet34_DoubleShared --shared_rank=48 --unique_rank=1")
    assert.are.equal(0, code, err)
    assert.matches("params: 11,786,968", out, 1, true)
    assert.matches("layer1%.1%.[%w_.]*%s+FilterBasis", out)
    assert.matches("multiply-adds (conv + linear): 3,249,508,352", out, 1, true)
    assert.matches("FLOPs %(paper convention%): [%d,]+ %(3%.2617G%)", out)
  end)

  local function json_run(args)
    local out, err, code = H.lunet("summary " .. args .. " --json")
    assert.are.equal(0, code, err)
    return json_decode(out)
  end

  it("prints one JSON object with --json, on the model's own dataset by default", function()
    local j = json_run("--model=ResNet20")
    assert.are.equal("ResNet20", j.model)
    assert.are.equal("cifar10", j.dataset)
    assert.are.same({ 3, 32, 32 }, j.input)
    assert.are.equal(269722, j.params)
    assert.are.equal(40551040, j.macs_conv_linear)
    for _, k in ipairs { "shared_basis_params", "shared_basis_tensors", "flops_paper", "bn_running_buffers" } do
      assert.are.equal("number", type(j[k]), k)
    end
  end)

  it("takes the input shape, channels and classes from --dataset and --classes", function()
    local j = json_run("--model=ResNet20 --dataset=fashion-mnist")
    assert.are.same({ 1, 28, 28 }, j.input)
    assert.are.equal(269722 - 2 * 16 * 9, j.params) -- stem conv with 1 input channel
    j = json_run("--model=ResNet20 --dataset=cifar100")
    assert.are.equal(269722 + 90 * 64 + 90, j.params) -- fc to 100 classes
    j = json_run("--model ResNet20 --classes=7")
    assert.are.equal(269722 - 3 * 64 - 3, j.params)
  end)

  it("lists the usage with --help", function()
    local out, _, code = H.lunet("summary --help")
    assert.are.equal(0, code)
    assert.matches("usage: lunet summary --model=NAME", out, 1, true)
  end)

  local bad = {
    { "--model=ResNet20 --bogus=1", "unknown option '--bogus=1'" },
    { "", "missing '--model=NAME'" },
    { "--shared_rank=4", "missing '--model=NAME'" },
    { "--model=NoSuchNet", "unknown model 'NoSuchNet'; valid models: ", "ResNet34_DoubleShared" },
    { "--model=ResNet34_DoubleShared --shared_rank=abc --unique_rank=1", "'--shared_rank' must be a positive integer, got 'abc'" },
    { "--model=ResNet34_DoubleShared --shared_rank=0 --unique_rank=1", "'--shared_rank' must be a positive integer, got '0'" },
    { "--model=ResNet20 --classes=-3", "'--classes' must be a positive integer, got '-3'" },
    { "--model=ResNet20 --dataset=mnist", "unknown dataset 'mnist'" },
    { "--model=ResNet20 --json=yes", "'--json' takes no value" },
    { "--model=ResNet20 --model=ResNet32", "'--model' given twice" },
    { "--model=ResNet20 extra", "unexpected argument 'extra'" },
    { "--model", "'--model' needs a value" },
    { "--model=ResNet50 --shared_rank=48", "models.build: ResNet50 has no shared_rank" },
  }
  for _, case in ipairs(bad) do
    it(("exits with status 2 on '%s'"):format(case[1]), function()
      local out, err, code = H.lunet("summary " .. case[1])
      assert.are.equal(2, code, err)
      assert.are.equal("", out)
      assert.matches("lunet summary: " .. case[2], err, 1, true)
      if case[3] then assert.matches(case[3], err, 1, true) end
      assert.matches("usage: lunet summary", err, 1, true)
    end)
  end
end)
