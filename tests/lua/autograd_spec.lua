-- Autograd from Lua: backward values, accumulation (a tensor used twice, several
-- backward calls), no_grad, custom Functions (incl. errors in backward), and the
-- errors of backward itself.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")
local lunet = require "lunet"
local F = lunet.nn.functional

describe("backward", function()
  it("computes gradients of a scalar", function()
    local x = lunet.tensor({ 1, -2, 3 }, { requires_grad = true })
    assert.is_nil(x.grad)
    local y = (x * x):sum()
    assert.are.equal(14, y:item())
    y:backward()
    H.assert_close({ 2, -4, 6 }, x.grad)
    assert.is_true(x.grad == x.grad) -- the same tensor each time
  end)

  it("accumulates when a tensor is used twice in one graph", function()
    local x = lunet.tensor({ 1, 2 }, { requires_grad = true })
    local w = lunet.tensor { 3, 5 }
    local y = (x * w + x):sum()
    y:backward()
    H.assert_close({ 4, 6 }, x.grad)
  end)

  it("accumulates across backward calls until zero_grad", function()
    local x = lunet.tensor({ 1, 2 }, { requires_grad = true })
    for _ = 1, 3 do (x * 2):sum():backward() end
    H.assert_close({ 6, 6 }, x.grad)
    x:zero_grad()
    assert.is_nil(x.grad)
    local y = (x * 2):sum()
    y:backward()
    H.assert_close({ 2, 2 }, x.grad)
  end)

  it("flows through relu, sigmoid, views and reductions", function()
    local x = lunet.tensor({ { -1, 2 }, { 3, -4 } }, { requires_grad = true, dtype = "f64" })
    local y = F.relu(x):t():reshape(4):mean()
    y:backward()
    H.assert_close({ { 0, 0.25 }, { 0.25, 0 } }, x.grad)
  end)

  it("takes an explicit gradient for non-scalar outputs", function()
    local x = lunet.tensor({ 1, 2 }, { requires_grad = true })
    local y = x * 3
    local ok, err = pcall(y.backward, y)
    assert.is_false(ok)
    assert.matches("backward: gradient can be implicitly created only for a one%-element tensor", err)
    y:backward(lunet.tensor { 1, 10 })
    H.assert_close({ 3, 30 }, x.grad)
  end)

  it("errors on a second backward through a freed graph, unless retain_graph", function()
    local x = lunet.tensor({ 1, 2 }, { requires_grad = true })
    local y = F.sigmoid(x):sum()
    y:backward()
    local ok, err = pcall(y.backward, y)
    assert.is_false(ok)
    assert.matches("backward: trying to backward through the graph a second time", err)
    local z = F.sigmoid(x):sum()
    x:zero_grad()
    z:backward({ retain_graph = true })
    z:backward()
    local s = 1 / (1 + math.exp(-1))
    H.assert_close({ 2 * s * (1 - s) }, x.grad:narrow(1, 1, 1))
    ok, err = pcall(z.backward, z, nil, { retain = true })
    assert.is_false(ok)
    assert.matches("backward: unknown option 'retain' %(expected retain_graph%)", err)
  end)

  it("errors on tensors that do not require grad", function()
    local t = lunet.ones(1)
    local ok, err = pcall(t.backward, t)
    assert.is_false(ok)
    assert.matches("backward: tensor does not require grad", err)
  end)

  it("refuses requires_grad on non-leaves and integer tensors", function()
    local x = lunet.ones({ 2 }, { requires_grad = true })
    local y = F.relu(x)
    local ok, err = pcall(y.requires_grad, y, false)
    assert.is_false(ok)
    assert.matches("only be set on a leaf tensor; this one is the result of 'relu'", err)
    local i = lunet.ones({ 2 }, { dtype = "i64" })
    ok, err = pcall(i.requires_grad, i, true)
    assert.is_false(ok)
    assert.matches("only floating tensors", err)
    assert.are.equal(x, x:requires_grad(true))
  end)

  it("lets t.grad be cleared or set", function()
    local x = lunet.ones({ 2 }, { requires_grad = true })
    x.grad = lunet.tensor { 5, 6 }
    assert.are.same({ 5, 6 }, x.grad:totable())
    x.grad = nil
    assert.is_nil(x.grad)
    local ok, err = pcall(function() x.grad = lunet.ones(3) end)
    assert.is_false(ok)
    assert.matches("must match the tensor", err)
  end)
end)

describe("no_grad", function()
  it("disables recording and restores the mode", function()
    local x = lunet.ones({ 2 }, { requires_grad = true })
    assert.is_true(lunet.is_grad_enabled())
    local y, extra = lunet.no_grad(function(a, b)
      assert.is_false(lunet.is_grad_enabled())
      return a * b, "extra"
    end, x, 2)
    assert.are.equal("extra", extra)
    assert.is_false(y:requires_grad())
    assert.is_true(lunet.is_grad_enabled())
  end)

  it("restores grad mode when the function errors", function()
    local ok, err = pcall(lunet.no_grad, function() error("inner failure") end)
    assert.is_false(ok)
    assert.matches("inner failure", err)
    assert.is_true(lunet.is_grad_enabled())
    lunet.no_grad(function()
      lunet.autograd.enable_grad(function() assert.is_true(lunet.is_grad_enabled()) end)
      assert.is_false(lunet.is_grad_enabled())
    end)
  end)
end)

describe("custom Function", function()
  local Square = lunet.autograd.Function {
    name = "Square",
    forward = function(ctx, x)
      ctx:save_for_backward(x)
      return x * x
    end,
    backward = function(ctx, grad)
      local x = ctx.saved_tensors[1]
      return grad * x * 2
    end,
  }

  it("runs forward under no_grad and attaches one node", function()
    local x = lunet.tensor({ 1, 2, 3 }, { requires_grad = true })
    local y = Square(x)
    assert.are.equal("Square", y:grad_fn())
    assert.matches("grad_fn=<Square>", tostring(y))
    y:sum():backward()
    H.assert_close({ 2, 4, 6 }, x.grad)
  end)

  it("does not record when no input requires grad", function()
    local y = Square(lunet.tensor { 2 })
    assert.is_nil(y:grad_fn())
    assert.are.same({ 4 }, y:totable())
  end)

  it("handles several inputs, non-tensor arguments and nil gradients", function()
    local Scale = lunet.autograd.Function {
      forward = function(ctx, a, s, b)
        ctx.s = s
        ctx:save_for_backward(a, b)
        return a * s + b
      end,
      backward = function(ctx, grad)
        return grad * ctx.s, nil, nil
      end,
    }
    local a = lunet.tensor({ 1, 2 }, { requires_grad = true })
    local b = lunet.tensor({ 3, 4 }, { requires_grad = true })
    local y = Scale(a, 10, b)
    assert.are.same({ 13, 24 }, y:totable())
    y:sum():backward()
    H.assert_close({ 10, 10 }, a.grad)
    assert.is_nil(b.grad)
  end)

  it("composes with built-in ops and gradchecks in f64", function()
    local x = H.randn64 { 3, 2 }:requires_grad(true)
    H.gradcheck(function(t) return F.sigmoid(Square(t)) end, { x })
  end)

  it("turns an error in backward into a Lua error, not a crash", function()
    local Bad = lunet.autograd.Function {
      name = "Bad",
      forward = function(_, x) return x * 1 end,
      backward = function() error("backward exploded") end,
    }
    local x = lunet.ones({ 2 }, { requires_grad = true })
    local y = Bad(x):sum()
    local ok, err = pcall(y.backward, y)
    assert.is_false(ok)
    assert.matches("backward: Bad backward: .*backward exploded", err)
    -- the state is intact: other graphs still work
    local z = Square(x):sum()
    z:backward()
    H.assert_close({ 2, 2 }, x.grad)
  end)

  it("checks the shapes and types of returned gradients", function()
    local WrongShape = lunet.autograd.Function {
      forward = function(_, x) return x * 1 end,
      backward = function() return lunet.ones(3) end,
    }
    local x = lunet.ones({ 2 }, { requires_grad = true })
    local ok, err = pcall(function() WrongShape(x):sum():backward() end)
    assert.is_false(ok)
    assert.matches("gradient 1 has shape %[3%] but input 1 has shape %[2%]", err)
    local NotTensor = lunet.autograd.Function {
      forward = function(_, x) return x * 1 end,
      backward = function() return "grad" end,
    }
    ok, err = pcall(function() NotTensor(x):sum():backward() end)
    assert.is_false(ok)
    assert.matches("gradient 1 must be a tensor or nil, got string", err)
  end)

  it("rejects a forward that returns no tensor, and bad definitions", function()
    local NoTensor = lunet.autograd.Function {
      forward = function() return 42 end,
      backward = function(_, g) return g end,
    }
    local ok, err = pcall(NoTensor, lunet.ones(1))
    assert.is_false(ok)
    assert.matches("forward must return a tensor, got number", err)
    ok, err = pcall(lunet.autograd.Function, { forward = function() end })
    assert.is_false(ok)
    assert.matches("'forward' and 'backward' must be functions", err)
    ok, err = pcall(lunet.autograd.Function, { forward = print, backward = print, bakward = 1 })
    assert.is_false(ok)
    assert.matches("unknown field 'bakward'", err)
  end)

  it("works on a forward that returns its input unchanged", function()
    local Id = lunet.autograd.Function {
      forward = function(_, x) return x end,
      backward = function(_, g) return g * 3 end,
    }
    local x = lunet.ones({ 2 }, { requires_grad = true })
    local y = Id(x)
    assert.is_true(x:is_leaf())
    y:sum():backward()
    H.assert_close({ 3, 3 }, x.grad)
  end)

  it("refuses a backward pass started inside a custom backward", function()
    local Nested = lunet.autograd.Function {
      forward = function(_, x) return x * 1 end,
      backward = function(_, g)
        local w = lunet.ones({ 1 }, { requires_grad = true })
        lunet.autograd.enable_grad(function() (w * 2):sum():backward() end)
        return g
      end,
    }
    local x = lunet.ones({ 2 }, { requires_grad = true })
    local ok, err = pcall(function() Nested(x):sum():backward() end)
    assert.is_false(ok)
    assert.matches("cannot start a backward pass inside a custom Function's backward", err)
  end)

  it("releases its saved state with the graph", function()
    local x = lunet.ones({ 64 }, { requires_grad = true })
    collectgarbage()
    local before = collectgarbage("count")
    for _ = 1, 200 do
      local y = Square(x):sum()
      y:backward()
    end
    x:zero_grad()
    collectgarbage()
    collectgarbage()
    assert.is_true(collectgarbage("count") - before < 200)
  end)
end)
