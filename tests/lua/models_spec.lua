-- lunet.models: every entry of ../shared/reference/models.json (parameters with each
-- shared tensor once, shared-basis parameters and tensors, BN running buffers, to
-- the digit), the authors' state-dict keys of ../shared/reference/authors-keys/
-- (names, order, shapes, sharing), forward output shapes, a backward pass through
-- every ILSVRC model at 64x64 (batch 2, CPU) reaching every parameter, the declared
-- regulariser grouping, the initialisation of method.md section 4, a shared basis'
-- gradient equal to the sum of its uses, the options and the errors on bad input.
-- Run from the repository root; ../shared must exist (the spec fails without it).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")
local lunet = require "lunet"
local json = require "dkjson"
local nn = lunet.nn
local F = nn.functional

local SHARED = "../shared/reference/"

local function read_file(path)
  local f = io.open(path, "r")
  if not f then
    error(("cannot open %s (run from the repository root with ../shared beside it)"):format(path))
  end
  local s = f:read("a")
  f:close()
  return s
end

local function reference()
  local doc, _, err = json.decode(read_file(SHARED .. "models.json"))
  assert(doc, err)
  return doc.models
end

local function err_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

local function numel_sum(list)
  local n = 0
  for _, t in ipairs(list) do n = n + t:numel() end
  return n
end

-- Shared tensors: those reachable through more than one path (state_dict aliases).
local function shared_tensors(model)
  local sd, seen, out = model:state_dict(), {}, {}
  for _, canon in pairs(sd.aliases) do
    if not seen[canon] then
      seen[canon] = true
      out[#out + 1] = sd.tensors[canon]
    end
  end
  return out
end

local function bn_running(model)
  local n = 0
  for _, nb in ipairs(model:named_buffers()) do
    if nb[1]:match("running_mean$") or nb[1]:match("running_var$") then n = n + nb[2]:numel() end
  end
  return n
end

local function shape_key(t)
  if t:dim() == 0 then return "scalar" end
  return table.concat(t:shape(), "x")
end

-- The authors' key file for an entry, or nil: <dataset>_<model>[_S<s>U<u>].tsv.
local function keys_file(e)
  local name = e.dataset .. "_" .. e.model
  if e.shared_rank then name = name .. ("_S%dU%d"):format(e.shared_rank, e.unique_rank) end
  local f = io.open(SHARED .. "authors-keys/" .. name .. ".tsv", "r")
  if not f then return nil end
  local lines = {}
  for line in f:lines() do
    if line ~= "" then
      local key, shape, dtype, same = line:match("^([^\t]+)\t([^\t]+)\t([^\t]+)\t?(.*)$")
      lines[#lines + 1] = { key = key, shape = shape, dtype = dtype,
                            same = same:match("^same tensor as (.+)$") }
    end
  end
  f:close()
  return lines, name
end

local DTYPES = { float32 = "f32", int64 = "i64" }

-- Our state dict against the authors' keys: same canonical names in the same order,
-- the same aliases, shapes and dtypes.
local function check_keys(model, lines, file)
  local sd = model:state_dict()
  local canon, n_alias = {}, 0
  for _, l in ipairs(lines) do
    if l.same then
      n_alias = n_alias + 1
      assert(sd.aliases[l.key] == l.same,
        ("%s: %s should be an alias of %s, got %s"):format(file, l.key, l.same, tostring(sd.aliases[l.key])))
    else
      canon[#canon + 1] = l.key
      local t = sd.tensors[l.key]
      assert(t, ("%s: no tensor named %s"):format(file, l.key))
      assert(shape_key(t) == l.shape,
        ("%s: %s has shape %s, expected %s"):format(file, l.key, shape_key(t), l.shape))
      assert(t:dtype() == DTYPES[l.dtype],
        ("%s: %s is %s, expected %s"):format(file, l.key, t:dtype(), l.dtype))
    end
  end
  assert.are.same(canon, sd.order)
  local ours = 0
  for _ in pairs(sd.aliases) do ours = ours + 1 end
  assert.are.equal(n_alias, ours)
end

-- The grouping method.md section 5 prescribes: {averages, terms per average, shared
-- modules per term, unique modules per term}.
local function expected_grouping(e)
  local m = e.model
  local cifar = e.dataset ~= "ilsvrc"
  if cifar and m:match("_DoubleShared$") then
    local n = ({ ResNet20 = 3, ResNet32 = 5, ResNet44 = 7, ResNet56 = 9, ResNet110 = 18 })[m:match("^(ResNet%d+)")]
    return { 1, 3, 2, 2 * (n - 1) }
  elseif m:match("_DoubleShared$") then
    return { 1, 4, 2, 0 }
  elseif m:match("_SingleShared$") or m:match("_SharedSingle$") or m == "MobileNetV2_Shared" then
    return { 1, 4, 1, 0 }
  elseif m:match("_Shared$") or m == "MobileNetV2_SharedDouble" then
    return { 2, 4, 1, 0 }
  end
  return { 0 }
end

local function check_grouping(model, e, shared)
  local want = expected_grouping(e)
  local groups = model.orthogonality_groups
  assert.are.equal(want[1], #groups)
  local seen, count = {}, 0
  for _, avg in ipairs(groups) do
    assert.are.equal(want[2], #avg)
    for _, term in ipairs(avg) do
      assert.are.equal(want[3], #term.shared)
      assert.are.equal(want[4], #(term.unique or {}))
      for _, b in ipairs(term.shared) do
        assert.is_nil(seen[b.weight], "a shared basis appears twice in the grouping")
        seen[b.weight] = true
        count = count + 1
      end
    end
  end
  -- every shared tensor of the model is in the grouping, and only those
  assert.are.equal(#shared, count)
  for _, t in ipairs(shared) do assert.is_true(seen[t] ~= nil) end
end

local CLASSES = { ilsvrc = 1000, cifar10 = 10, cifar100 = 100 }

describe("lunet.models registry", function()
  it("lists every model of method.md section 3", function()
    local want = {
      "ResNet18", "ResNet34", "ResNet34_DoubleShared", "ResNet34_SingleShared", "ResNet50",
      "ResNet50_SharedSingle", "ResNet50_Shared", "ResNet101", "ResNet101_SharedSingle",
      "ResNet101_Shared", "MobileNetV2", "MobileNetV2_Shared", "MobileNetV2_SharedDouble",
      "ResNet14", "ResNet20", "ResNet32", "ResNet44", "ResNet56", "ResNet110",
      "ResNet14_DoubleShared", "ResNet20_DoubleShared", "ResNet32_DoubleShared",
      "ResNet44_DoubleShared", "ResNet56_DoubleShared", "ResNet110_DoubleShared",
    }
    assert.are.same(want, lunet.models.list())
    local l = lunet.models.list()
    l[1] = "changed"
    assert.are.equal("ResNet18", lunet.models.list()[1])
  end)

  it("info gives the defaults of a model", function()
    local i = lunet.models.info("ResNet34_DoubleShared")
    assert.are.same({ 3, 224, 224 }, i.input_shape)
    assert.are.equal(48, i.shared_rank)
    assert.are.equal(1, i.unique_rank)
    assert.are.equal(1000, i.classes)
    i = lunet.models.info("ResNet56_DoubleShared")
    assert.are.equal(16, i.shared_rank)
    assert.are.equal("cifar10", i.dataset)
    assert.is_nil(lunet.models.info("ResNet50_Shared").shared_rank)
    assert.is_true(lunet.models.info("MobileNetV2_Shared").shared)
    assert.is_false(lunet.models.info("ResNet18").shared)
  end)
end)

describe("every reference model (models.json)", function()
  for _, e in ipairs(reference()) do
    local label = e.model .. (e.shared_rank and (" S%dU%d"):format(e.shared_rank, e.unique_rank) or "")
    it(label .. " on " .. e.dataset, function()
      local opts = { dataset = e.dataset, classes = e.classes,
                     shared_rank = e.shared_rank, unique_rank = e.unique_rank }
      local model = lunet.models.build(e.model, opts)
      assert.are.equal(e.classes, CLASSES[e.dataset])
      assert.are.same(e.input, model.input_shape)

      local shared = shared_tensors(model)
      assert.are.equal(e.params, numel_sum(model:parameters()))
      assert.are.equal(e.shared_basis_params, numel_sum(shared))
      assert.are.equal(e.shared_basis_tensors, #shared)
      assert.are.equal(e.bn_running_buffers, bn_running(model))
      check_grouping(model, e, shared)

      local lines, file = keys_file(e)
      if lines then check_keys(model, lines, file) end

      -- forward (and, for ILSVRC models, backward at 64x64, batch 2)
      local ilsvrc = e.dataset == "ilsvrc"
      local size = ilsvrc and 64 or e.input[2]
      local x = lunet.randn { 2, e.input[1], size, size }
      local y = model(x)
      assert.are.same({ 2, e.classes }, y:shape())
      if ilsvrc then
        F.cross_entropy(y, lunet.tensor({ 1, e.classes }, { dtype = "i64" })):backward()
        for _, np in ipairs(model:named_parameters()) do
          local g = np[2].grad
          assert(g, np[1] .. " received no gradient")
          local s = (g * g):sum():item()
          assert(s == s and s < math.huge, np[1] .. " has a non-finite gradient")
        end
      end
      model, x, y = nil, nil, nil
      collectgarbage()
    end)
  end
end)

describe("initialisation (method.md section 4)", function()
  -- Standard deviation of a tensor's values.
  local function std(t)
    local v = H.flat(t:totable())
    local s, s2 = 0, 0
    for _, a in ipairs(v) do s = s + a; s2 = s2 + a * a end
    local m = s / #v
    return math.sqrt(s2 / #v - m * m), m
  end

  -- max |M M^T - I| for the rows of the given weights stacked.
  local function max_off_orthonormal(weights)
    local rows = {}
    for _, w in ipairs(weights) do
      for _, r in ipairs(w:reshape(w:size(1), -1):totable()) do rows[#rows + 1] = r end
    end
    local worst = 0
    for i = 1, #rows do
      for j = i, #rows do
        local d = 0
        for k = 1, #rows[i] do d = d + rows[i][k] * rows[j][k] end
        if i == j then d = d - 1 end
        worst = math.max(worst, math.abs(d))
      end
    end
    return worst
  end

  it("ResNets: Kaiming normal fan_out convolutions, BN 1/0, default FC, orthogonal joint bases", function()
    lunet.manual_seed(7)
    local m = lunet.models.build("ResNet56_DoubleShared")
    local w = m.layer3[1].conv2.weight             -- (64, 64, 3, 3): std sqrt(2 / (64*9))
    local s, mean = std(w)
    assert.is_true(math.abs(s / math.sqrt(2 / 576) - 1) < 0.03, "std " .. s)
    assert.is_true(math.abs(mean) < 0.003)
    s = std(m.layer2[3].coeff_conv1.weight)         -- (32, 34, 1, 1): sqrt(2 / 32)
    assert.is_true(math.abs(s / math.sqrt(2 / 32) - 1) < 0.1, "std " .. s)
    for _, t in ipairs { m.bn1.weight, m.layer1[2].basis_bn1.weight, m.layer3[9].bn2.weight } do
      for _, v in ipairs(H.flat(t:totable())) do assert.are.equal(1, v) end
    end
    for _, v in ipairs(H.flat(m.layer2[1].bn1.bias:totable())) do assert.are.equal(0, v) end
    local bound = 1 / math.sqrt(64)
    for _, v in ipairs(H.flat(m.fc.weight:totable())) do assert.is_true(math.abs(v) <= bound) end
    for _, v in ipairs(H.flat(m.fc.bias:totable())) do assert.is_true(math.abs(v) <= bound) end
    -- B1 and B2 of each group: one orthogonal matrix, so orthogonal to each other too
    for g = 1, 3 do
      local b1, b2 = m["shared_basis_" .. g .. "_1"].weight, m["shared_basis_" .. g .. "_2"].weight
      assert.is_true(max_off_orthonormal { b1, b2 } < 1e-5)
    end
    -- orthogonal_init = false keeps the Kaiming normal bases
    local k = lunet.models.build("ResNet20_DoubleShared", { orthogonal_init = false })
    assert.is_true(max_off_orthonormal { k.shared_basis_1_1.weight } > 0.1)
  end)

  it("MobileNetV2s: PyTorch default init, orthogonal bases only on request", function()
    lunet.manual_seed(8)
    local m = lunet.models.build("MobileNetV2_SharedDouble")
    local function within(t, fan_in)
      local b = 1 / math.sqrt(fan_in)
      local worst = 0
      for _, v in ipairs(H.flat(t:totable())) do worst = math.max(worst, math.abs(v)) end
      assert.is_true(worst <= b and worst > 0.9 * b, ("max %g, bound %g"):format(worst, b))
    end
    within(m.pre[1].weight, 27)
    within(m.pre[1].bias, 27)
    within(m.stage4[2].conv2.weight, 9)                 -- depthwise: fan_in 1*3*3
    within(m.shared_basis_1_1.weight, 32)               -- expansion (192, 32, 1, 1)
    within(m.shared_basis_2_2.weight, 384)              -- projection (64, 384, 1, 1)
    within(m.conv1[1].bias, 320)
    within(m.classifier[2].weight, 1280)
    within(m.stage5[2].chan_attention.conv.weight, 3)
    assert.is_true(max_off_orthonormal { m.shared_basis_1_2.weight } > 0.5)
    local o = lunet.models.build("MobileNetV2_SharedDouble", { orthogonal_init = true })
    assert.is_true(max_off_orthonormal { o.shared_basis_1_2.weight } < 1e-5)  -- (32, 192): rows
    local e = o.shared_basis_1_1.weight                                       -- (192, 32): columns
    assert.is_true(max_off_orthonormal { e:reshape(192, 32):transpose(1, 2):contiguous() } < 1e-5)
  end)
end)

describe("structure", function()
  it("shares one FilterBasis instance through a group", function()
    local m = lunet.models.build("ResNet34_SingleShared", { shared_rank = 4 })
    assert.is_true(rawequal(m.shared_basis_2, m.layer2[2].shared_basis))
    assert.is_true(rawequal(m.shared_basis_2, m.layer2[4].shared_basis))
    assert.is_nil(m.layer2[1].shared_basis)
    assert.are.same({ 8, 128, 3, 3 }, m.shared_basis_2.weight:shape())
    assert.are.same({ 2, 128, 3, 3 }, m.layer2[3].basis_conv1.weight:shape())
    local d = lunet.models.build("ResNet56_DoubleShared")
    assert.is_true(rawequal(d.shared_basis_3_2, d.layer3[9].shared_basis_2))
    assert.is_false(rawequal(d.shared_basis_3_1, d.shared_basis_3_2))
  end)

  it("activations counted as layers are modules, in-block ones are functional", function()
    local r = lunet.models.build("ResNet20")
    assert.is_true(nn.ReLU ~= nil and getmetatable(r.relu) == nn.ReLU)
    assert.is_true(getmetatable(r.avgpool) == nn.GlobalAvgPool2d)
    local mb = lunet.models.build("MobileNetV2")
    assert.is_true(getmetatable(mb.pre[3]) == nn.ReLU6)
    assert.is_true(getmetatable(mb.conv1[3]) == nn.ReLU6)
    for _, nm in ipairs(r.layer1:named_modules()) do
      assert.is_true(getmetatable(nm[2]) ~= nn.ReLU, "a ReLU module inside a block: " .. nm[1])
    end
  end)

  it("options: classes, in_channels, dataset", function()
    local m = lunet.models.build("ResNet20", { dataset = "fashion-mnist" })
    assert.are.same({ 1, 28, 28 }, m.input_shape)
    assert.are.same({ 16, 1, 3, 3 }, m.conv1.weight:shape())
    assert.are.same({ 2, 10 }, m(lunet.randn { 2, 1, 28, 28 }):shape())
    m = lunet.models.build("ResNet32_DoubleShared", { dataset = "cifar100", unique_rank = 2 })
    assert.are.equal(100, m.fc.weight:size(1))
    assert.are.same({ 4, 32, 3, 3 }, m.layer2[2].basis_conv2.weight:shape())
    assert.are.equal(2, m.config.unique_rank)
    assert.are.equal(16, m.config.shared_rank)
    m = lunet.models.build("MobileNetV2", { classes = 7, in_channels = 1 })
    assert.are.same({ 7, 1280 }, m.classifier[2].weight:shape())
    assert.are.same({ 32, 1, 3, 3 }, m.pre[1].weight:shape())
    assert.are.equal("MobileNetV2", m.name)
  end)
end)

describe("a shared basis' gradient", function()
  it("is the sum of its uses' gradients (vs an unshared copy)", function()
    lunet.manual_seed(3)
    local a = lunet.models.build("ResNet20_DoubleShared"):to("f64")
    local b = lunet.models.build("ResNet20_DoubleShared"):to("f64")
    b:load_state_dict(a:state_dict())
    -- unshare b: every block gets its own copy of the group's bases
    for g = 1, 3 do
      local layer = b["layer" .. g]
      for i = 2, #layer do
        for _, key in ipairs { "shared_basis_1", "shared_basis_2" } do
          local orig = layer[i][key]
          local copy = nn.FilterBasis(orig.in_channels, orig.rank, orig.kernel_size):to("f64")
          copy.weight:copy(orig.weight)
          layer[i][key] = copy
        end
      end
    end
    assert.are.equal(0, #shared_tensors(b))
    local x = lunet.randn({ 2, 3, 8, 8 }, { dtype = "f64" })
    local r = lunet.randn({ 2, 10 }, { dtype = "f64" })
    local ya, yb = a(x), b(x)
    H.assert_close(ya:totable(), yb, 1e-10);
    (ya * r):sum():backward();
    (yb * r):sum():backward()
    for g = 1, 3 do
      for k = 1, 2 do
        local sum
        local layer = b["layer" .. g]
        for i = 2, #layer do
          local gi = layer[i]["shared_basis_" .. k].weight.grad
          sum = sum and sum + gi or gi
        end
        local ga = a["shared_basis_" .. g .. "_" .. k].weight.grad
        H.assert_close(sum:totable(), ga, 1e-9)
      end
    end
    H.assert_close(b.layer2[3].coeff_conv1.weight.grad:totable(), a.layer2[3].coeff_conv1.weight.grad, 1e-9)
    H.assert_close(b.conv1.weight.grad:totable(), a.conv1.weight.grad, 1e-9)
  end)
end)

describe("bad input", function()
  local build = lunet.models.build

  it("an unknown model name lists the valid ones", function()
    local e = err_of(build, "ResNet35")
    assert.is_truthy(e:find("unknown model 'ResNet35'", 1, true))
    assert.is_truthy(e:find("ResNet34_DoubleShared", 1, true))
    assert.is_truthy(e:find("MobileNetV2_SharedDouble", 1, true))
    assert.is_truthy(e:find("ResNet110_DoubleShared", 1, true))
    assert.is_truthy(err_of(build, 42):find("must be a string", 1, true))
    assert.is_truthy(err_of(lunet.models.info, "nope"):find("unknown model 'nope'", 1, true))
  end)

  it("wrong option types, unknown keys and impossible ranks are clear errors", function()
    local function has(e, s) assert.is_truthy(e:find(s, 1, true), e) end
    has(err_of(build, "ResNet34_DoubleShared", { shared_rank = "x" }),
        "option 'shared_rank' must be a positive integer, got \"x\" (string)")
    has(err_of(build, "ResNet34_DoubleShared", { shared_rank = 0 }), "'shared_rank' must be a positive integer, got 0")
    has(err_of(build, "ResNet34_DoubleShared", { unique_rank = -1 }), "'unique_rank' must be a positive integer, got -1")
    has(err_of(build, "ResNet56_DoubleShared", { shared_rank = 1.5 }), "got 1.5 (float)")
    has(err_of(build, "ResNet56_DoubleShared", { unique_rank = true }), "'unique_rank' must be a positive integer")
    has(err_of(build, "ResNet50_Shared", { unique_rank = 1 }), "ResNet50_Shared has no unique_rank")
    has(err_of(build, "MobileNetV2_Shared", { shared_rank = 8 }), "MobileNetV2_Shared has no shared_rank")
    has(err_of(build, "ResNet18", { orthogonal_init = true }), "ResNet18 has no shared basis")
    has(err_of(build, "ResNet20_DoubleShared", { orthogonal_init = 1 }), "'orthogonal_init' must be a boolean")
    has(err_of(build, "ResNet18", { sharedrank = 4 }), "unknown option 'sharedrank'")
    has(err_of(build, "ResNet18", { classes = 0 }), "'classes' must be a positive integer")
    has(err_of(build, "ResNet18", { in_channels = "3" }), "'in_channels' must be a positive integer")
    has(err_of(build, "ResNet18", { dataset = "mnist" }),
        "'dataset' must be one of ilsvrc, cifar10, cifar100, fashion-mnist, got mnist")
    has(err_of(build, "ResNet18", "big"), "options must be a table")
    -- an integral float is accepted
    assert.are.equal(8, build("ResNet20_DoubleShared", { shared_rank = 8.0 }).config.shared_rank)
  end)
end)
