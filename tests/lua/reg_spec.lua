-- lunet.reg.orthogonality (method.md section 5): a differentiable 0-d tensor, ~0 right
-- after orthogonal initialisation, > 0 once perturbed, equal to the formula on a
-- hand-made case (computed here with an explicit D = M M^T - I), finite-difference
-- gradients in f64, and the groupings of the zoo: ILSVRC DoubleShared (B1 and B2
-- stacked), CIFAR DoubleShared (shared rows against all rows plus each unique basis
-- against itself), two averages for MobileNetV2_SharedDouble; errors on bad input.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")
local lunet = require "lunet"
local orthogonality = lunet.reg.orthogonality

-- Rows (Lua lists) of a weight viewed as (rows, in*k*k).
local function rows_of(w)
  return w:reshape(w:size(1), -1):to("f64"):totable()
end

local function dot(a, b)
  local s = 0
  for k = 1, #a do s = s + a[k] * b[k] end
  return s
end

-- One term by the definition: M = rows of shared then unique weights, D = M M^T - I;
-- sum of D[i][j]^2 over the ns shared rows i and all j, plus over each unique
-- weight's own block; returns numerator and count.
local function term_by_definition(shared, unique)
  local m, ns = {}, 0
  for _, w in ipairs(shared) do
    for _, r in ipairs(rows_of(w)) do m[#m + 1] = r end
  end
  ns = #m
  local blocks = {}
  for _, w in ipairs(unique or {}) do
    local first = #m + 1
    for _, r in ipairs(rows_of(w)) do m[#m + 1] = r end
    blocks[#blocks + 1] = { first, #m }
  end
  local function d(i, j) return dot(m[i], m[j]) - (i == j and 1 or 0) end
  local num, count = 0, 0
  for i = 1, ns do
    for j = 1, #m do num = num + d(i, j) ^ 2 end
  end
  count = ns * #m
  for _, b in ipairs(blocks) do
    for i = b[1], b[2] do
      for j = b[1], b[2] do num = num + d(i, j) ^ 2 end
    end
    count = count + (b[2] - b[1] + 1) ^ 2
  end
  return num, count
end

-- A module stand-in: the regulariser only reads `weight`.
local function holder(w) return { weight = w } end

local function perturb(w, scale)
  local prev = lunet.set_grad_enabled(false)
  w:copy(w + lunet.randn(w:shape(), { dtype = w:dtype() }) * scale)
  lunet.set_grad_enabled(prev)
end

describe("lunet.reg.orthogonality", function()
  it("is ~0 right after orthogonal init and > 0 once a basis is perturbed", function()
    lunet.manual_seed(11)
    for _, name in ipairs { "ResNet34_DoubleShared", "ResNet34_SingleShared" } do
      local m = lunet.models.build(name, { shared_rank = 8 })
      local r = orthogonality(m)
      assert.are.equal(0, r:dim())
      assert.is_true(math.abs(r:item()) < 1e-6, name .. ": " .. r:item())
      perturb(m.layer3[2].basis_conv1.weight, 1)          -- not a shared basis: no change
      assert.is_true(math.abs(orthogonality(m):item()) < 1e-6)
      perturb(m.layer3[2][name:match("Double") and "shared_basis_1" or "shared_basis"].weight, 0.05)
      assert.is_true(orthogonality(m):item() > 1e-4)
    end
  end)

  it("ILSVRC DoubleShared stacks B1 and B2 of each group", function()
    lunet.manual_seed(12)
    local m = lunet.models.build("ResNet34_DoubleShared", { shared_rank = 2 })
    for g = 1, 4 do perturb(m["shared_basis_" .. g .. "_" .. (g % 2 + 1)].weight, 0.02) end
    local num, count = 0, 0
    for g = 1, 4 do
      local n, c = term_by_definition { m["shared_basis_" .. g .. "_1"].weight,
                                        m["shared_basis_" .. g .. "_2"].weight }
      num, count = num + n, count + c
    end
    assert.are.equal(4 ^ 2 + 8 ^ 2 + 16 ^ 2 + 32 ^ 2, count)
    H.assert_close({ num / count }, orthogonality(m), 1e-4)
  end)

  it("CIFAR DoubleShared: shared rows against all rows, plus each unique basis against itself", function()
    lunet.manual_seed(13)
    local m = lunet.models.build("ResNet20_DoubleShared")
    local num, count = 0, 0
    for g = 1, 3 do
      local unique = {}
      local layer = m["layer" .. g]
      for i = 2, #layer do
        unique[#unique + 1] = layer[i].basis_conv1.weight
        unique[#unique + 1] = layer[i].basis_conv2.weight
      end
      local n, c = term_by_definition({ m["shared_basis_" .. g .. "_1"].weight,
                                        m["shared_basis_" .. g .. "_2"].weight }, unique)
      num, count = num + n, count + c
    end
    -- group g: 2 S' shared rows, 4 unique bases of U' rows (S' = 16*2^(g-1), U' = 2^(g-1))
    local want = 0
    for g = 1, 3 do
      local s, u = 16 * 2 ^ (g - 1), 2 ^ (g - 1)
      want = want + 2 * s * (2 * s + 4 * u) + 4 * u * u
    end
    assert.are.equal(want, count)
    H.assert_close({ num / count }, orthogonality(m), 1e-4)
  end)

  it("MobileNetV2_SharedDouble: two averages (expansions, projections)", function()
    lunet.manual_seed(14)
    -- orthogonal bases: a tall (rows > columns) basis keeps ||B B^T - I||^2 = rows -
    -- columns, a wide one 0; so avg_1 = sum(r - c) / sum(r^2) over the expansions
    -- (c, 6c) and avg_2 = 0 over the projections
    local m = lunet.models.build("MobileNetV2_SharedDouble", { orthogonal_init = true })
    local num, den = 0, 0
    for _, c in ipairs { 32, 64, 96, 160 } do
      num, den = num + 5 * c, den + (6 * c) ^ 2
    end
    H.assert_close({ num / den }, orthogonality(m), 1e-4)
    assert.are.equal(2, #m.orthogonality_groups)
    -- MobileNetV2_Shared: one average over the expansions, the same value here
    local s = lunet.models.build("MobileNetV2_Shared", { orthogonal_init = true })
    H.assert_close({ num / den }, orthogonality(s), 1e-4)
  end)

  it("equals the formula on a hand-made case (two averages, a term with unique bases)", function()
    local function w(shape, values) return lunet.tensor(H.nest(values, shape), { dtype = "f64" }) end
    local a = w({ 2, 1, 1, 3 }, { 1, 0, 0, 0.5, 0.5, 0 })
    local b = w({ 1, 1, 1, 3 }, { 0, 0.2, 1 })
    local u1 = w({ 1, 1, 1, 3 }, { 2, 0, 1 })
    local u2 = w({ 2, 1, 1, 3 }, { 0, 1, 0, 1, 1, 1 })
    local c = w({ 2, 1, 2, 2 }, { 1, 1, 0, 0, 0, 1, 1, 0 })
    local model = { orthogonality_groups = {
      { { shared = { holder(a), holder(b) }, unique = { holder(u1), holder(u2) } },
        { shared = { holder(a) } } },
      { { shared = { holder(c) } } },
    } }
    -- by hand: M = [a; b; u1; u2], rows
    --   a1 = (1, 0, 0), a2 = (0.5, 0.5, 0), b1 = (0, 0.2, 1), u1 = (2, 0, 1),
    --   u21 = (0, 1, 0), u22 = (1, 1, 1)
    -- shared rows against all rows (D = M M^T - I):
    --   a1: (0, .5, 0, 2, 0, 1)            -> 0 + .25 + 0 + 4 + 0 + 1        = 5.25
    --   a2: (.5, -.5, .1, 1, .5, 1)        -> .25 + .25 + .01 + 1 + .25 + 1  = 2.76
    --   b1: (0, .1, .04, 1, .2, 1.2)       -> 0 + .01 + .0016 + 1 + .04 + 1.44 = 2.4916
    -- u1 against itself: (5 - 1)^2 = 16; u2: [[0, 1], [1, 2]] -> 0 + 1 + 1 + 4 = 6
    -- term 1: 5.25 + 2.76 + 2.4916 + 16 + 6 = 32.5016 over 3 * 6 + 1 + 4 = 23 terms
    -- term 2: a alone: [[0, .5], [.5, -.5]] -> 0.75 over 4
    -- average 1 = (32.5016 + 0.75) / 27; average 2: c rows (1, 1, 0, 0), (0, 1, 1, 0):
    --   [[1, 1], [1, 1]] -> 4 over 4 = 1
    local want = (32.5016 + 0.75) / 27 + 1
    local n1, c1 = term_by_definition({ a, b }, { u1, u2 })
    assert.are.equal(23, c1)
    H.assert_close({ 32.5016 }, { n1 }, 1e-12)
    H.assert_close({ want }, orthogonality(model), 1e-12)
  end)

  it("has finite-difference gradients in f64", function()
    lunet.manual_seed(15)
    local function r(shape) return lunet.randn(shape, { dtype = "f64", requires_grad = true }) end
    local inputs = { r { 3, 2, 2, 2 }, r { 2, 2, 2, 2 }, r { 1, 2, 2, 2 }, r { 2, 2, 2, 2 }, r { 4, 3, 1, 1 } }
    local function fn(a, b, u1, u2, t)
      return orthogonality { orthogonality_groups = {
        { { shared = { holder(a), holder(b) }, unique = { holder(u1), holder(u2) } },
          { shared = { holder(b) } } },
        { { shared = { holder(t) } } },
      } }
    end
    assert.is_true(H.gradcheck(fn, inputs))
  end)

  it("flows gradients to the shared bases of a model through autograd", function()
    lunet.manual_seed(16)
    local m = lunet.models.build("ResNet20_DoubleShared")
    perturb(m.shared_basis_2_1.weight, 0.1)
    orthogonality(m):backward()
    assert.is_not_nil(m.shared_basis_2_1.weight.grad)
    assert.is_not_nil(m.layer2[2].basis_conv1.weight.grad)    -- unique bases are penalised too
    assert.is_nil(m.layer2[2].coeff_conv1.weight.grad)
  end)

  it("is a 0-d zero for a model without shared bases; errors on bad input", function()
    local z = orthogonality(lunet.models.build("ResNet20"))
    assert.are.equal(0, z:dim())
    assert.are.equal(0, z:item())
    local function err(v)
      local ok, e = pcall(orthogonality, v)
      assert.is_false(ok)
      return tostring(e)
    end
    assert.is_truthy(err(nil):find("expected a model", 1, true))
    assert.is_truthy(err({}):find("declares no 'orthogonality_groups'", 1, true))
    assert.is_truthy(err({ orthogonality_groups = { { { unique = {} } } } })
      :find("average 1, term 1 must be a table", 1, true))
  end)
end)
