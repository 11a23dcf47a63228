-- lunet.nn.functional: every op on small hand-checked values, finite-difference
-- gradient checks in f64 (conv2d, batch_norm2d, linear, cross_entropy, cat,
-- max_pool2d), argument errors naming the argument and shapes, and the 1-based
-- label range of cross_entropy / topk_correct.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")
local lunet = require "lunet"
local F = lunet.nn.functional

-- (1,1,n,n) image holding 1..n*n row-major, and the value at (r, c) (1-based).
local function seq_image(n, dtype)
  local rows = {}
  for r = 1, n do
    rows[r] = {}
    for c = 1, n do rows[r][c] = (r - 1) * n + c end
  end
  return lunet.tensor({ { rows } }, { dtype = dtype })
end

local function err_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return err
end

describe("activations", function()
  it("relu, relu6, sigmoid", function()
    H.assert_close({ 0, 0, 2 }, F.relu(lunet.tensor { -1, 0, 2 }))
    H.assert_close({ 0, 3, 6 }, F.relu6(lunet.tensor { -1, 3, 7 }))
    H.assert_close({ 0.5, 1 / (1 + math.exp(-2)) }, F.sigmoid(lunet.tensor { 0, 2 }))
  end)
end)

describe("arithmetic and reductions", function()
  it("add/sub/mul/div with broadcasting and numbers on either side", function()
    local a = lunet.tensor { { 1, 2, 3 }, { 4, 5, 6 } }
    local b = lunet.tensor { 10, 20, 30 }
    H.assert_close({ { 11, 22, 33 }, { 14, 25, 36 } }, F.add(a, b))
    H.assert_close({ { 11, 22, 33 }, { 14, 25, 36 } }, a + b)
    H.assert_close({ { -9, -18, -27 }, { -6, -15, -24 } }, F.sub(a, b))
    H.assert_close({ { 10, 40, 90 }, { 40, 100, 180 } }, F.mul(a, b))
    H.assert_close({ { 0.1, 0.1, 0.1 }, { 0.4, 0.25, 0.2 } }, F.div(a, b))
    H.assert_close({ 3, 4 }, lunet.tensor { 1, 2 } + 2)
    H.assert_close({ 3, 4 }, 2 + lunet.tensor { 1, 2 })
    H.assert_close({ 1, 0 }, 2 - lunet.tensor { 1, 2 })
    H.assert_close({ -1, 0 }, lunet.tensor { 1, 2 } - 2)
    H.assert_close({ 2, 4 }, 2 * lunet.tensor { 1, 2 })
    H.assert_close({ 0.5, 1 }, lunet.tensor { 1, 2 } / 2)
    H.assert_close({ 2, 1 }, 2 / lunet.tensor { 1, 2 })
    H.assert_close({ -1, -2 }, -lunet.tensor { 1, 2 })
    H.assert_close({ 1, 8 }, lunet.tensor { 1, 2 }:pow(3))
  end)

  it("sum and mean", function()
    local a = lunet.tensor { { 1, 2, 3 }, { 4, 5, 6 } }
    assert.are.equal(21, F.sum(a):item())
    assert.are.equal(3.5, F.mean(a):item())
    H.assert_close({ 2.5, 3.5, 4.5 }, F.mean(a, 1))
    H.assert_close({ { 6 }, { 15 } }, F.sum(a, 2, true))
  end)

  it("matmul", function()
    local a = lunet.tensor { { 1, 2 }, { 3, 4 } }
    local b = lunet.tensor { { 5 }, { 6 } }
    H.assert_close({ { 17 }, { 39 } }, F.matmul(a, b))
    H.assert_close({ { 17 }, { 39 } }, a:matmul(b))
    H.assert_close({ { 17 }, { 39 } }, lunet.matmul(a, b))
    local err = err_of(F.matmul, a, lunet.ones(3, 1))
    assert.matches("matmul", err)
    assert.matches("%[2, 2%]", err)
    assert.matches("%[3, 1%]", err)
  end)

  it("gradchecks matmul in f64", function()
    H.gradcheck(F.matmul, { H.randn64 { 2, 3 }:requires_grad(true), H.randn64 { 3, 2 }:requires_grad(true) })
  end)
end)

describe("conv2d", function()
  it("matches hand-computed values (stride, padding, bias)", function()
    local x = seq_image(4)
    local w = lunet.ones(1, 1, 2, 2)
    -- each output sums a 2x2 window: v + (v+1) + (v+4) + (v+5) = 4v + 10
    local expected = {}
    for r = 1, 3 do
      expected[r] = {}
      for c = 1, 3 do expected[r][c] = 4 * ((r - 1) * 4 + c) + 10 end
    end
    H.assert_close({ { expected } }, F.conv2d(x, w))
    H.assert_close({ { { { 14, 22 }, { 46, 54 } } } }, F.conv2d(x, w, nil, { stride = 2 }))
    local y = F.conv2d(x, w, lunet.tensor { 100 }, { padding = 1, stride = { 3, 3 } })
    assert.are.same({ 1, 1, 2, 2 }, y:shape())
    H.assert_close({ { { { 101, 107 }, { 122, 154 } } } }, y)
    -- options may come third when there is no bias
    H.assert_close({ { { { 14, 22 }, { 46, 54 } } } }, F.conv2d(x, w, { stride = 2 }))
  end)

  it("groups convolve channel groups separately", function()
    local x = lunet.tensor { { { { 1, 2 }, { 3, 4 } }, { { 10, 20 }, { 30, 40 } } } } -- (1,2,2,2)
    local w = lunet.tensor { { { { 1 } } }, { { { 2 } } } }                          -- (2,1,1,1)
    H.assert_close({ { { { 1, 2 }, { 3, 4 } }, { { 20, 40 }, { 60, 80 } } } },
                   F.conv2d(x, w, nil, { groups = 2 }))
  end)

  it("gradchecks in f64 (stride, padding, groups, bias)", function()
    local x = H.randn64 { 2, 4, 5, 5 }:requires_grad(true)
    local w = H.randn64 { 4, 2, 3, 3 }:requires_grad(true)
    local b = H.randn64 { 4 }:requires_grad(true)
    H.gradcheck(function(xx, ww, bb)
      return F.conv2d(xx, ww, bb, { stride = { 2, 1 }, padding = 1, groups = 2 })
    end, { x, w, b })
  end)

  it("errors name the arguments and shapes", function()
    local err = err_of(F.conv2d, lunet.zeros(2, 3, 8, 8), lunet.zeros(5, 4, 3, 3))
    assert.matches("conv2d: ", err)
    assert.matches("%[2, 3, 8, 8%]", err)
    assert.matches("%[5, 4, 3, 3%]", err)
    err = err_of(F.conv2d, lunet.zeros(1, 1, 4, 4), lunet.zeros(1, 1, 3, 3), nil, { strid = 2 })
    assert.matches("conv2d: unknown option 'strid' %(expected stride, padding, groups%)", err)
    err = err_of(F.conv2d, lunet.zeros(1, 1, 4, 4), lunet.zeros(1, 1, 3, 3), nil, { stride = "2" })
    assert.matches("conv2d: option 'stride' must be an integer or a pair", err)
    err = err_of(F.conv2d, "x", lunet.zeros(1, 1, 3, 3))
    assert.matches("conv2d: argument 'x' must be a tensor, got string", err)
    err = err_of(F.conv2d, lunet.zeros(1, 1, 4, 4), lunet.zeros(1, 1, 3, 3), nil, { stride = 0 })
    assert.matches("conv2d", err)
  end)
end)

describe("batch_norm2d", function()
  it("normalises with batch statistics and updates running stats (training)", function()
    local x = lunet.tensor { { { { 1, 2 } } }, { { { 3, 4 } } } } -- (2,1,1,2)
    local rm, rv = lunet.zeros(1), lunet.ones(1)
    local y = F.batch_norm2d(x, rm, rv, nil, nil, { training = true })
    local s = math.sqrt(1.25 + 1e-5)
    H.assert_close({ (1 - 2.5) / s, (2 - 2.5) / s, (3 - 2.5) / s, (4 - 2.5) / s }, H.flat(y:totable()), 1e-4)
    H.assert_close({ 0.25 }, rm)
    H.assert_close({ 0.9 + 0.1 * 5 / 3 }, rv)
  end)

  it("uses running statistics, weight and bias in eval", function()
    local x = lunet.tensor { { { { 1, 2 } } } }
    local y = F.batch_norm2d(x, lunet.tensor { 1 }, lunet.tensor { 4 }, lunet.tensor { 2 }, lunet.tensor { 10 },
                             { eps = 0 })
    H.assert_close({ 10, 11 }, H.flat(y:totable()))
  end)

  it("gradchecks in f64 (training, weight and bias)", function()
    local x = H.randn64 { 3, 2, 2, 3 }:requires_grad(true)
    local w = H.randn64 { 2 }:requires_grad(true)
    local b = H.randn64 { 2 }:requires_grad(true)
    local rm, rv = lunet.zeros(2, { dtype = "f64" }), lunet.ones(2, { dtype = "f64" })
    H.gradcheck(function(xx, ww, bb)
      return F.batch_norm2d(xx, rm, rv, ww, bb, { training = true, momentum = 0.2 })
    end, { x, w, b }, { tol = 1e-4 })
  end)

  it("rejects unknown options and mismatched shapes", function()
    local x = lunet.zeros(2, 3, 2, 2)
    local err = err_of(F.batch_norm2d, x, lunet.zeros(3), lunet.ones(3), nil, nil, { trainig = true })
    assert.matches("batch_norm2d: unknown option 'trainig' %(expected training, momentum, eps%)", err)
    err = err_of(F.batch_norm2d, x, lunet.zeros(4), lunet.ones(3))
    assert.matches("batch_norm2d", err)
    assert.matches("running_mean", err)
  end)
end)

describe("pooling", function()
  it("max_pool2d (stride defaults to the kernel)", function()
    local x = seq_image(4)
    H.assert_close({ { { { 6, 8 }, { 14, 16 } } } }, F.max_pool2d(x, { kernel = 2 }))
    H.assert_close({ { { { 6, 8 }, { 14, 16 } } } }, F.max_pool2d(x, 2))
    H.assert_close({ { { { 6, 7, 8 }, { 10, 11, 12 }, { 14, 15, 16 } } } }, F.max_pool2d(x, { kernel = 2, stride = 1 }))
    H.assert_close({ { { { 1, 3, 4 }, { 9, 11, 12 }, { 13, 15, 16 } } } },
                   F.max_pool2d(x, { kernel = 2, stride = 2, padding = 1 }))
    assert.matches("max_pool2d: option 'kernel' is required", err_of(F.max_pool2d, x, {}))
    assert.matches("max_pool2d: unknown option 'size'", err_of(F.max_pool2d, x, { size = 2 }))
  end)

  it("gradchecks max_pool2d in f64", function()
    H.gradcheck(function(t) return F.max_pool2d(t, { kernel = 3, stride = 2, padding = 1 }) end,
                { H.randn64 { 2, 2, 5, 5 }:requires_grad(true) })
  end)

  it("global_avg_pool2d", function()
    local x = lunet.tensor { { { { 1, 2 }, { 3, 4 } }, { { 10, 20 }, { 30, 40 } } } }
    local y = F.global_avg_pool2d(x)
    assert.are.same({ 1, 2, 1, 1 }, y:shape())
    H.assert_close({ 2.5, 25 }, H.flat(y:totable()))
  end)
end)

describe("linear", function()
  it("computes x w^T + b", function()
    local x = lunet.tensor { { 1, 2 } }
    local w = lunet.tensor { { 1, 0 }, { 0, 1 }, { 1, 1 } }
    H.assert_close({ { 1.5, 2.5, 3.5 } }, F.linear(x, w, lunet.tensor { 0.5, 0.5, 0.5 }))
    H.assert_close({ { 1, 2, 3 } }, F.linear(x, w))
  end)

  it("gradchecks in f64", function()
    H.gradcheck(F.linear, { H.randn64 { 3, 4 }:requires_grad(true), H.randn64 { 2, 4 }:requires_grad(true),
                            H.randn64 { 2 }:requires_grad(true) })
  end)

  it("errors name the shapes", function()
    local err = err_of(F.linear, lunet.zeros(3, 4), lunet.zeros(2, 5))
    assert.matches("linear", err)
    assert.matches("%[3, 4%]", err)
    assert.matches("%[2, 5%]", err)
  end)
end)

describe("cat", function()
  it("concatenates along a 1-based dim (default 2, channels)", function()
    local a = lunet.tensor { { { 1, 2 } } } -- (1,1,2)
    local b = lunet.tensor { { { 3, 4 } } }
    H.assert_close({ { { 1, 2 }, { 3, 4 } } }, F.cat { a, b })
    H.assert_close({ { { 1, 2, 3, 4 } } }, F.cat({ a, b }, 3))
    H.assert_close({ { { 1, 2 } }, { { 3, 4 } } }, lunet.cat({ a, b }, 1))
  end)

  it("gradchecks in f64", function()
    H.gradcheck(function(p, q) return F.cat({ p, q }, 2) end,
                { H.randn64 { 2, 3, 2 }:requires_grad(true), H.randn64 { 2, 1, 2 }:requires_grad(true) })
  end)

  it("errors on bad lists and shapes", function()
    assert.matches("cat: expected a non%-empty list", err_of(F.cat, {}))
    assert.matches("cat: list entry 2 must be a tensor, got number", err_of(F.cat, { lunet.ones(1), 5 }))
    local err = err_of(F.cat, { lunet.ones(1, 2), lunet.ones(2, 3) }, 1)
    assert.matches("cat", err)
    assert.matches("cat: dimension 3 is out of range", err_of(F.cat, { lunet.ones(1, 2) }, 3))
  end)
end)

describe("cross_entropy", function()
  local function labels(t) return lunet.tensor(t, { dtype = "i64" }) end

  it("takes 1-based labels", function()
    assert.is_true(math.abs(F.cross_entropy(lunet.zeros(2, 3), labels { 1, 3 }):item() - math.log(3)) < 1e-6)
    local l = F.cross_entropy(lunet.tensor { { 1, 2, 3 } }, labels { 3 }):item()
    local expected = -math.log(math.exp(3) / (math.exp(1) + math.exp(2) + math.exp(3)))
    assert.is_true(math.abs(l - expected) < 1e-5)
    local l1 = F.cross_entropy(lunet.tensor { { 1, 2, 3 } }, labels { 1 }):item()
    assert.is_true(math.abs(l1 - (expected + 2)) < 1e-5)
  end)

  it("gradchecks in f64", function()
    H.gradcheck(function(t) return F.cross_entropy(t, labels { 2, 1, 4 }) end,
                { H.randn64 { 3, 4 }:requires_grad(true) })
  end)

  it("rejects labels out of 1..C, naming label, position and class count", function()
    local logits = lunet.zeros(3, 3)
    assert.matches("cross_entropy: label 0 at position 2 is out of range for 3 classes %(labels are 1%-based: 1%.%.3%)",
                   err_of(F.cross_entropy, logits, labels { 1, 0, 2 }))
    assert.matches("cross_entropy: label 4 at position 3 is out of range for 3 classes",
                   err_of(F.cross_entropy, logits, labels { 1, 2, 4 }))
    assert.matches("cross_entropy: argument 'labels' must be an i64 tensor of 1%-based class indices, got f32",
                   err_of(F.cross_entropy, logits, lunet.tensor { 1, 2, 3 }))
    assert.matches("cross_entropy", err_of(F.cross_entropy, logits, labels { 1, 2 }))
  end)
end)

describe("topk_correct", function()
  it("counts rows whose 1-based label is among the top k", function()
    local logits = lunet.tensor { { 1, 2, 3 }, { 3, 2, 1 } }
    local y = lunet.tensor({ 3, 3 }, { dtype = "i64" })
    assert.are.equal(1, F.topk_correct(logits, y))
    assert.are.equal(1, F.topk_correct(logits, y, 2))
    assert.are.equal(2, F.topk_correct(logits, y, 3))
    assert.matches("topk_correct: label 4 at position 1",
                   err_of(F.topk_correct, logits, lunet.tensor({ 4, 1 }, { dtype = "i64" }), 1))
  end)
end)

describe("dropout", function()
  it("is the identity when not training or p = 0", function()
    local x = lunet.tensor { 1, 2, 3 }
    H.assert_close({ 1, 2, 3 }, F.dropout(x, 0.5, false))
    H.assert_close({ 1, 2, 3 }, F.dropout(x, 0, true))
  end)

  it("zeroes about p of the values and scales the rest by 1/(1-p)", function()
    local y = H.flat(F.dropout(lunet.ones(2000), 0.5, true):totable())
    local zeros = 0
    for _, v in ipairs(y) do
      assert.is_true(v == 0 or math.abs(v - 2) < 1e-6)
      if v == 0 then zeros = zeros + 1 end
    end
    assert.is_true(zeros > 850 and zeros < 1150)
  end)
end)

describe("conv1d_channels and shortcut_a", function()
  it("conv1d_channels convolves across channels with zero padding", function()
    local x = lunet.tensor { { { { 1 } }, { { 2 } }, { { 3 } }, { { 4 } } } } -- (1,4,1,1)
    local y = F.conv1d_channels(x, lunet.tensor { 1, 1, 1 }, 1)
    assert.are.same({ 1, 4, 1, 1 }, y:shape())
    H.assert_close({ 3, 6, 9, 7 }, H.flat(y:totable()))
  end)

  it("shortcut_a subsamples and zero-pads channels", function()
    local x = lunet.tensor { { seq_image(4):totable()[1][1], seq_image(4):totable()[1][1] } } -- (1,2,4,4)
    local y = F.shortcut_a(x, 2, 1)
    assert.are.same({ 1, 4, 2, 2 }, y:shape())
    H.assert_close({ { { { 0, 0 }, { 0, 0 } }, { { 1, 3 }, { 9, 11 } }, { { 1, 3 }, { 9, 11 } },
                       { { 0, 0 }, { 0, 0 } } } }, y)
  end)
end)
