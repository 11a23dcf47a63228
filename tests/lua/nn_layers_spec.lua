-- lunet.nn layers and lunet.nn.init: output shapes and values of every layer, their
-- default initialisation, constructor errors naming the argument, Sequential
-- indexing, FilterBasis / BasisConv2d structure, and the initialisers (Kaiming std,
-- uniform bounds, orthogonality, joint orthogonality).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")
local lunet = require "lunet"
local nn, F = lunet.nn, lunet.nn.functional
local init = nn.init

local function err_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

local function stats(t)
  local v = H.flat(t:totable())
  local sum, lo, hi = 0, math.huge, -math.huge
  for _, x in ipairs(v) do
    sum = sum + x
    lo, hi = math.min(lo, x), math.max(hi, x)
  end
  local mean = sum / #v
  local ss = 0
  for _, x in ipairs(v) do ss = ss + (x - mean) ^ 2 end
  return mean, math.sqrt(ss / #v), lo, hi
end

-- max |M M^T - I| for M (r, c) given as a tensor (rows <= cols), or M^T M otherwise.
local function orth_error(t)
  local m = t:reshape(t:size(1), -1):to("f64")
  local g = m:size(1) <= m:size(2) and m:matmul(m:t()) or m:t():matmul(m)
  local worst = 0
  for i, row in ipairs(g:totable()) do
    for j, x in ipairs(row) do worst = math.max(worst, math.abs(x - (i == j and 1 or 0))) end
  end
  return worst
end

describe("layers", function()
  it("Conv2d: shape, options, PyTorch default init", function()
    lunet.manual_seed(1)
    local c = nn.Conv2d(4, 6, 3, { stride = 2, padding = 1 })
    assert.are.same({ 6, 4, 3, 3 }, c.weight:shape())
    assert.are.same({ 2, 6, 4, 4 }, c(lunet.randn { 2, 4, 8, 8 }):shape())
    local bound = 1 / math.sqrt(4 * 9)
    local _, _, lo, hi = stats(c.weight)
    assert.is_true(lo >= -bound and hi <= bound and hi - lo > bound)
    _, _, lo, hi = stats(c.bias)
    assert.is_true(lo >= -bound and hi <= bound)
    local g = nn.Conv2d(4, 8, 3, { groups = 2, bias = false })
    assert.are.same({ 8, 2, 3, 3 }, g.weight:shape())
    assert.is_nil(g.bias)
    assert.are.same({ 1, 8, 3, 3 }, g(lunet.randn { 1, 4, 5, 5 }):shape())
    -- the module computes F.conv2d with its own tensors
    local x = lunet.randn { 1, 4, 6, 6 }
    H.assert_close(F.conv2d(x, c.weight, c.bias, { stride = 2, padding = 1 }):totable(), c(x))
  end)

  it("Conv2d / Linear / BatchNorm2d constructor errors name the argument", function()
    assert.truthy(err_of(nn.Conv2d, 0, 3, 3):find("Conv2d: in_channels must be an integer >= 1, got 0"))
    assert.truthy(err_of(nn.Conv2d, 2, 3, 3, { pad = 1 }):find("Conv2d: unknown option 'pad'"))
    assert.truthy(err_of(nn.Conv2d, 3, 4, 3, { groups = 2 }):find("groups %(2%) must divide"))
    assert.truthy(err_of(nn.Conv2d, 3, 4, "3"):find("kernel_size must be"))
    assert.truthy(err_of(nn.Conv2d, 3, 4, 3, { bias = 1 }):find("bias must be a boolean"))
    assert.truthy(err_of(nn.Linear, 3, 2.5):find("Linear: out_features must be an integer"))
    assert.truthy(err_of(nn.BatchNorm2d, 3, { momentum = 2 }):find("momentum must be a number in %[0, 1%]"))
    assert.truthy(err_of(nn.MaxPool2d, {}):find("option 'kernel' is required"))
    assert.truthy(err_of(nn.Dropout, 1.5):find("Dropout: p must be a number in %[0, 1%]"))
    assert.truthy(err_of(nn.ECA, 2):find("ECA: k must be odd"))
    assert.truthy(err_of(nn.Sequential, nn.ReLU(), 3):find("Sequential: argument 2 must be a module"))
  end)

  it("Linear, BatchNorm2d (affine or not), activations, pools, Identity, Flatten", function()
    local lin = nn.Linear(3, 2)
    assert.are.same({ 2, 3 }, lin.weight:shape())
    assert.are.same({ 5, 2 }, lin(lunet.randn { 5, 3 }):shape())
    assert.is_nil(nn.Linear(3, 2, { bias = false }).bias)
    local bn = nn.BatchNorm2d(3)
    H.assert_close({ 1, 1, 1 }, bn.weight)
    H.assert_close({ 0, 0, 0 }, bn.bias)
    H.assert_close({ 0, 0, 0 }, bn.running_mean)
    H.assert_close({ 1, 1, 1 }, bn.running_var)
    local plain = nn.BatchNorm2d(3, { affine = false })
    assert.is_nil(plain.weight)
    assert.are.equal(0, #plain:parameters())
    assert.are.same({ 2, 3, 4, 4 }, plain(lunet.randn { 2, 3, 4, 4 }):shape())
    H.assert_close({ 0, 0, 2 }, nn.ReLU()(lunet.tensor { -1, 0, 2 }))
    H.assert_close({ 0, 6 }, nn.ReLU6()(lunet.tensor { -1, 7 }))
    H.assert_close({ 0.5 }, nn.Sigmoid()(lunet.tensor { 0 }))
    assert.are.same({ 1, 2, 4, 4 }, nn.MaxPool2d({ kernel = 3, stride = 2, padding = 1 })(lunet.randn { 1, 2, 8, 8 }):shape())
    assert.are.same({ 1, 2, 4, 4 }, nn.MaxPool2d(2)(lunet.randn { 1, 2, 8, 8 }):shape())
    local x = lunet.randn { 2, 3, 4, 5 }
    assert.are.same({ 2, 3, 1, 1 }, nn.GlobalAvgPool2d()(x):shape())
    assert.is_true(rawequal(x, nn.Identity()(x)))
    assert.are.same({ 2, 60 }, nn.Flatten()(x):shape())
  end)

  it("ECA scales channels by sigmoid(conv1d(avgpool))", function()
    local eca = nn.ECA(3)
    assert.are.same({ 1, 1, 3 }, eca.weight:shape())
    local x = lunet.randn { 2, 5, 3, 3 }
    local want = x * F.sigmoid(F.conv1d_channels(F.global_avg_pool2d(x), eca.weight, 1))
    H.assert_close(want:totable(), eca(x))
  end)

  it("Sequential: children named 0.., 1-based indexing, # and add", function()
    local a, b = nn.ReLU(), nn.Identity()
    local s = nn.Sequential(a, b)
    assert.is_true(rawequal(a, s[1]))
    assert.is_true(rawequal(b, s[2]))
    assert.is_nil(s[3])
    assert.are.equal(2, #s)
    s:add(nn.Linear(2, 2))
    assert.are.equal("2.weight", s:named_parameters()[1][1])
    H.assert_close({ 0, 3 }, nn.Sequential(nn.ReLU(), nn.Identity())(lunet.tensor { -1, 3 }))
  end)

  it("FilterBasis and BasisConv2d", function()
    local basis = nn.FilterBasis(4, 3, 3, { stride = 2 })
    assert.are.same({ 3, 4, 3, 3 }, basis.weight:shape())
    assert.are.equal(1, basis.padding)
    assert.are.same({ 1, 3, 4, 4 }, basis(lunet.randn { 1, 4, 8, 8 }):shape())
    local bc = nn.BasisConv2d(basis, 2, 6)
    local n = {}
    for i, e in ipairs(bc:named_children()) do n[i] = e[1] end
    assert.are.same({ "shared_basis", "basis_conv", "basis_bn", "coeff_conv" }, n)
    assert.are.same({ 2, 4, 3, 3 }, bc.basis_conv.weight:shape())
    assert.are.equal(5, bc.basis_bn.num_features)
    assert.are.same({ 6, 5, 1, 1 }, bc.coeff_conv.weight:shape())
    local x = lunet.randn { 2, 4, 8, 8 }
    local y = bc(x)
    assert.are.same({ 2, 6, 4, 4 }, y:shape())
    -- unique outputs first, then the basis
    local h = F.cat({ bc.basis_conv(x), basis(x) }, 2)
    local bc2 = nn.BasisConv2d(basis, 2, 6)
    bc2:load_state_dict(bc:state_dict())
    H.assert_close(bc2.coeff_conv(bc2.basis_bn(h)):totable(), y, 1e-5)
    local only_shared = nn.BasisConv2d(basis, 0, 6)
    assert.is_nil(only_shared.basis_conv)
    assert.are.same({ 2, 6, 4, 4 }, only_shared(x):shape())
    assert.truthy(err_of(nn.BasisConv2d, nn.ReLU(), 1, 4):find("basis must be a FilterBasis, got ReLU"))
  end)
end)

describe("nn.init", function()
  it("kaiming_normal_: std = sqrt(2 / fan) within 5%", function()
    lunet.manual_seed(11)
    local w = lunet.empty { 64, 32, 3, 3 }
    init.kaiming_normal_(w, { mode = "fan_out", nonlinearity = "relu" })
    local mean, std = stats(w)
    local want = math.sqrt(2 / (64 * 9))
    assert.is_true(math.abs(std / want - 1) < 0.05, ("std %g, want %g"):format(std, want))
    assert.is_true(math.abs(mean) < 0.05 * want)
    init.kaiming_normal_(w) -- fan_in, leaky_relu with a = 0
    _, std = stats(w)
    want = math.sqrt(2 / (32 * 9))
    assert.is_true(math.abs(std / want - 1) < 0.05, ("std %g, want %g"):format(std, want))
    assert.truthy(err_of(init.kaiming_normal_, w, { mode = "fan" }):find("mode must be 'fan_in' or 'fan_out'"))
    assert.truthy(err_of(init.kaiming_normal_, w, { nonlinearity = "swish" }):find("unknown nonlinearity 'swish'"))
    assert.truthy(err_of(init.kaiming_normal_, lunet.empty { 5 }):find("at least 2 dimensions"))
  end)

  it("uniform_, kaiming_uniform_, default_conv_ / default_linear_ bounds", function()
    local t = lunet.empty { 4000 }
    init.uniform_(t, -0.3, 0.2)
    local mean, _, lo, hi = stats(t)
    assert.is_true(lo >= -0.3 and hi <= 0.2 and lo < -0.29 and hi > 0.19)
    assert.is_true(math.abs(mean + 0.05) < 0.01)
    local w = lunet.empty { 50, 20, 2, 2 }
    init.kaiming_uniform_(w, { nonlinearity = "relu" })
    _, _, lo, hi = stats(w)
    local b = math.sqrt(2) * math.sqrt(3 / 80)
    assert.is_true(lo >= -b and hi <= b and hi > 0.9 * b)
    local conv = nn.Conv2d(6, 4, 3, { groups = 2 })
    conv.weight:fill(9)
    init.default_conv_(conv)
    _, _, lo, hi = stats(conv.weight)
    local bound = 1 / math.sqrt(3 * 9)
    assert.is_true(lo >= -bound and hi <= bound)
    local lin = nn.Linear(100, 30)
    init.default_linear_(lin)
    _, _, lo, hi = stats(lin.bias)
    assert.is_true(lo >= -0.1 and hi <= 0.1)
    init.zeros_(lin.bias)
    H.assert_close({ 0 }, lin.bias:sum())
    init.normal_(t, 2, 0.5)
    mean = stats(t)
    assert.is_true(math.abs(mean - 2) < 0.05)
    assert.truthy(err_of(init.uniform_, lunet.zeros({ 2 }, { dtype = "i64" })):find("needs a floating tensor"))
  end)

  it("orthogonal_: orthonormal rows, or columns when rows > columns; f32 and f64", function()
    local a = init.orthogonal_(lunet.empty { 16, 8, 3, 3 })
    assert.is_true(orth_error(a) < 1e-5)
    local tall = init.orthogonal_(lunet.empty { 40, 6, 1, 1 })
    assert.is_true(orth_error(tall) < 1e-5)
    local d = init.orthogonal_(lunet.empty({ 12, 30 }, { dtype = "f64" }))
    assert.is_true(orth_error(d) < 1e-12)
    local g = init.orthogonal_(lunet.empty({ 3, 5 }, { dtype = "f64" }), 2)
    H.assert_close({ 4, 4, 4 }, (g * g):sum(2))
    local p = nn.FilterBasis(8, 4, 3).weight -- a parameter that requires grad
    init.orthogonal_(p)
    assert.is_true(p:is_leaf() and p:requires_grad())
    assert.truthy(err_of(init.orthogonal_, lunet.empty { 5 }):find("orthogonal_: 't' needs at least 2 dimensions"))
  end)

  it("orthogonal_joint_: rows orthogonal within and across tensors", function()
    local b1, b2 = lunet.empty { 6, 4, 3, 3 }, lunet.empty { 6, 4, 3, 3 }
    init.orthogonal_joint_({ b1, b2 })
    assert.is_true(orth_error(lunet.cat({ b1, b2 }, 1)) < 1e-5)
    assert.is_true(orth_error(b1) < 1e-5 and orth_error(b2) < 1e-5)
    assert.truthy(err_of(init.orthogonal_joint_, { b1, lunet.empty { 2, 3 } }):find("same number of columns"))
    assert.truthy(err_of(init.orthogonal_joint_, {}):find("non%-empty list"))
    assert.truthy(err_of(init.orthogonal_joint_, { b1, 3 }):find("entry 2 is a number"))
  end)
end)
