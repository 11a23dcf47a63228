-- Tensors from Lua: construction (nested tables, dtypes, shapes), metadata, values,
-- printing, views with 1-based dims, conversions, identity/equality, release, and
-- the error messages for bad input.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")
local lunet = require "lunet"

describe("tensor construction", function()
  it("builds from nested tables (f32 by default)", function()
    local t = lunet.tensor { { 1, 2, 3 }, { 4, 5, 6 } }
    assert.are.same({ 2, 3 }, t:shape())
    assert.are.equal(2, t:dim())
    assert.are.equal(6, t:numel())
    assert.are.equal("f32", t:dtype())
    assert.are.equal("cpu", t:device())
    assert.are.same({ { 1, 2, 3 }, { 4, 5, 6 } }, t:totable())
    assert.is_false(t:requires_grad())
  end)

  it("accepts every dtype and its aliases", function()
    local cases = {
      f32 = "f32", float32 = "f32", float = "f32",
      f64 = "f64", float64 = "f64", double = "f64",
      i64 = "i64", int64 = "i64", long = "i64",
      i32 = "i32", int32 = "i32", int = "i32",
      u8 = "u8", uint8 = "u8", byte = "u8",
    }
    for alias, name in pairs(cases) do
      local t = lunet.tensor({ 1, 2, 200 }, { dtype = alias })
      assert.are.equal(name, t:dtype())
      assert.are.same({ 1, 2, 200 }, t:totable())
    end
  end)

  it("keeps f64 precision and integer values exactly", function()
    assert.are.equal(0.1, lunet.tensor({ 0.1 }, { dtype = "f64" }):totable()[1])
    local big = lunet.tensor({ 2 ^ 40 + 1 }, { dtype = "i64" }):totable()[1]
    assert.are.equal(math.tointeger(2 ^ 40 + 1), big)
    assert.are.equal("integer", math.type(big))
  end)

  it("makes 0-d tensors from numbers, and empty tensors", function()
    local s = lunet.tensor(3.5)
    assert.are.equal(0, s:dim())
    assert.are.same({}, s:shape())
    assert.are.equal(3.5, s:item())
    assert.are.equal(3.5, s:totable())
    local e = lunet.tensor {}
    assert.are.same({ 0 }, e:shape())
    assert.are.equal(0, e:numel())
  end)

  it("item returns integers for integer dtypes", function()
    local v = lunet.tensor({ 7 }, { dtype = "i64" }):item()
    assert.are.equal(7, v)
    assert.are.equal("integer", math.type(v))
    assert.are.equal("float", math.type(lunet.tensor { 7 }:item()))
  end)

  it("copies a tensor given to lunet.tensor", function()
    local a = lunet.tensor { 1, 2 }
    local b = lunet.tensor(a, { dtype = "f64" })
    a:fill(9)
    assert.are.same({ 1, 2 }, b:totable())
    assert.are.equal("f64", b:dtype())
  end)

  it("zeros/ones/full/empty take a shape table or numbers, and options", function()
    assert.are.same({ { 0, 0, 0 }, { 0, 0, 0 } }, lunet.zeros { 2, 3 }:totable())
    assert.are.same({ { 0, 0, 0 }, { 0, 0, 0 } }, lunet.zeros(2, 3):totable())
    assert.are.same({ 1, 1 }, lunet.ones(2):totable())
    assert.are.equal("i64", lunet.ones(2, 2, { dtype = "i64" }):dtype())
    assert.are.same({ 7, 7 }, lunet.full({ 2 }, 7):totable())
    assert.are.same({ 4, 5 }, lunet.empty(4, 5):shape())
    assert.are.equal(0, lunet.zeros():dim())
    assert.is_true(lunet.zeros({ 2 }, { requires_grad = true }):requires_grad())
  end)

  it("randn/rand follow the seed and their distributions", function()
    lunet.manual_seed(42)
    local a = lunet.randn(1000)
    lunet.manual_seed(42)
    local b = lunet.randn { 1000 }
    assert.is_true(a:equal(b))
    local v = H.flat(a:totable())
    local mean, var = 0, 0
    for _, x in ipairs(v) do mean = mean + x / #v end
    for _, x in ipairs(v) do var = var + (x - mean) ^ 2 / #v end
    assert.is_true(math.abs(mean) < 0.15 and math.abs(var - 1) < 0.2)
    for _, x in ipairs(H.flat(lunet.rand(500):totable())) do
      assert.is_true(x >= 0 and x < 1)
    end
    assert.are.equal("f64", lunet.rand(3, { dtype = "f64" }):dtype())
  end)
end)

describe("tensor construction errors", function()
  it("names the position of a ragged entry", function()
    local ok, err = pcall(lunet.tensor, { { 1, 2 }, { 3 } })
    assert.is_false(ok)
    assert.matches("ragged", err)
    assert.matches("element %[2%] has 1 entries, expected 2", err)
    ok, err = pcall(lunet.tensor, { { 1, 2 }, { 3, "x" } })
    assert.is_false(ok)
    assert.matches("element %[2%]%[2%] is a string, expected a number", err)
    ok, err = pcall(lunet.tensor, { { 1, 2 }, 3 })
    assert.is_false(ok)
    assert.matches("element %[2%] is a number, expected a table of 2 entries", err)
    ok, err = pcall(lunet.tensor, { 1, { 2 } })
    assert.is_false(ok)
    assert.matches("element %[2%] is a table, expected a number", err)
  end)

  it("rejects bad dtypes, devices, options and shapes", function()
    local ok, err = pcall(lunet.tensor, { 1 }, { dtype = "f16" })
    assert.is_false(ok)
    assert.matches("unknown dtype 'f16'", err)
    ok, err = pcall(lunet.zeros, { 2 }, { dtyp = "f32" })
    assert.is_false(ok)
    assert.matches("zeros: unknown option 'dtyp' %(expected dtype, device, requires_grad%)", err)
    ok, err = pcall(lunet.zeros, { 2 }, { device = "gpu" })
    assert.is_false(ok)
    assert.matches("unknown device 'gpu'", err)
    ok, err = pcall(lunet.zeros, { 2, -3 })
    assert.is_false(ok)
    assert.matches("zeros: shape entry 2 must be non%-negative", err)
    ok, err = pcall(lunet.zeros, { 2, 1.5 })
    assert.is_false(ok)
    assert.matches("shape entry 2 must be an integer", err)
    ok, err = pcall(lunet.tensor, "abc")
    assert.is_false(ok)
    assert.matches("tensor: expected a number, a nested table", err)
    ok, err = pcall(lunet.ones, { 2 }, { dtype = "i64", requires_grad = true })
    assert.is_false(ok)
    assert.matches("only floating tensors", err)
    ok, err = pcall(lunet.randn, { 2 }, { dtype = "i32" })
    assert.is_false(ok)
    assert.matches("randn: random tensors must be f32 or f64", err)
  end)
end)

describe("tensor printing", function()
  it("prints small tensors in full, PyTorch-like", function()
    local s = tostring(lunet.tensor { { 1, 2.5 }, { -3, 4 } })
    assert.are.equal("tensor([[ 1.0000,  2.5000],\n        [-3.0000,  4.0000]], dtype=f32, device=cpu)", s)
    assert.are.equal("tensor([1., 2., 3.], dtype=f32, device=cpu)", tostring(lunet.tensor { 1, 2, 3 }))
    assert.are.equal("tensor([1, 2, 3], dtype=i64, device=cpu)",
                     tostring(lunet.tensor({ 1, 2, 3 }, { dtype = "i64" })))
    assert.are.equal("tensor(2.5000, dtype=f64, device=cpu)", tostring(lunet.tensor(2.5, { dtype = "f64" })))
    assert.are.equal("tensor([], size=[0], dtype=f32, device=cpu)", tostring(lunet.tensor {}))
  end)

  it("uses scientific notation for wide ranges and names nan/inf", function()
    local s = tostring(lunet.tensor({ 1e-6, 1e6, 0 / 0, math.huge }, { dtype = "f64" }))
    assert.matches("1.0000e%-06", s)
    assert.matches("1.0000e%+06", s)
    assert.matches("nan", s)
    assert.matches("inf", s)
  end)

  it("summarises large tensors", function()
    local s = tostring(lunet.zeros(100, 100))
    assert.matches("%.%.%.", s)
    assert.matches("size=%[100, 100%]", s)
    local lines = 0
    for _ in s:gmatch("\n") do lines = lines + 1 end
    assert.is_true(lines < 10)
  end)

  it("shows requires_grad and grad_fn", function()
    local x = lunet.ones({ 2 }, { requires_grad = true })
    assert.matches("requires_grad=true", tostring(x))
    assert.matches("grad_fn=<relu>", tostring(lunet.nn.functional.relu(x)))
  end)

  it("prints a freed tensor without crashing", function()
    local t = lunet.ones(2)
    t:free()
    assert.are.equal("tensor(<freed>)", tostring(t))
  end)
end)

describe("views and 1-based dims", function()
  local function seq(shape)
    local n = 1
    for _, s in ipairs(shape) do n = n * s end
    local v = {}
    for i = 1, n do v[i] = i end
    return lunet.tensor(H.nest(v, shape))
  end

  it("reports sizes by 1-based (or negative) dim", function()
    local t = lunet.zeros(2, 3, 4)
    assert.are.equal(2, t:size(1))
    assert.are.equal(4, t:size(3))
    assert.are.equal(4, t:size(-1))
    assert.are.equal(2, t:size(-3))
    assert.are.same({ 2, 3, 4 }, t:size())
    assert.are.equal(2, #t)
  end)

  it("reshapes and views, inferring -1", function()
    local t = seq { 2, 3 }
    assert.are.same({ { 1, 2 }, { 3, 4 }, { 5, 6 } }, t:reshape { 3, 2 }:totable())
    assert.are.same({ { 1, 2, 3, 4, 5, 6 } }, t:view(1, -1):totable())
    assert.are.same({ 6 }, t:reshape(-1):shape())
  end)

  it("transposes with 1-based dims", function()
    local t = seq { 2, 3 }
    assert.are.same({ { 1, 4 }, { 2, 5 }, { 3, 6 } }, t:transpose(1, 2):totable())
    assert.are.same({ { 1, 4 }, { 2, 5 }, { 3, 6 } }, t:t():totable())
    assert.are.same({ { 1, 4 }, { 2, 5 }, { 3, 6 } }, t:transpose(-1, -2):contiguous():totable())
    assert.is_false(t:t():is_contiguous())
    assert.is_true(t:t():contiguous():is_contiguous())
  end)

  it("narrows with a 1-based dim and start", function()
    local t = seq { 3, 4 }
    assert.are.same({ { 2, 3 }, { 6, 7 }, { 10, 11 } }, t:narrow(2, 2, 2):totable())
    assert.are.same({ { 9, 10, 11, 12 } }, t:narrow(1, 3, 1):totable())
    assert.are.same({ { 4 }, { 8 }, { 12 } }, t:narrow(2, -1, 1):totable())
  end)

  it("reduces over a 1-based dim", function()
    local t = seq { 2, 3 }
    assert.are.same({ 5, 7, 9 }, t:sum(1):totable())
    assert.are.same({ 6, 15 }, t:sum(2):totable())
    assert.are.same({ { 6 }, { 15 } }, t:sum(2, true):totable())
    assert.are.same({ 2, 5 }, t:mean(-1):totable())
    assert.are.equal(21, t:sum():item())
    assert.are.equal(3.5, t:mean():item())
  end)

  it("rejects bad dims with a clear message", function()
    local t = lunet.zeros(2, 3)
    local ok, err = pcall(t.size, t, 3)
    assert.is_false(ok)
    assert.matches("size: dimension 3 is out of range %(expected 1%.%.2, or %-2%.%.%-1 from the end%)", err)
    ok, err = pcall(t.sum, t, 0)
    assert.is_false(ok)
    assert.matches("sum: dimension 0 is out of range", err)
    ok, err = pcall(t.transpose, t, 1, 5)
    assert.is_false(ok)
    assert.matches("transpose: dimension 5 is out of range", err)
    ok, err = pcall(t.narrow, t, 2, 4, 1)
    assert.is_false(ok)
    assert.matches("narrow: start 4 is out of range", err)
    ok, err = pcall(t.narrow, t, 2, 2, 5)
    assert.is_false(ok)
    assert.matches("narrow", err)
    ok, err = pcall(t.size, t, "x")
    assert.is_false(ok)
    assert.matches("size: dimension must be an integer, got string", err)
    ok, err = pcall(t.reshape, t, 4, 2)
    assert.is_false(ok)
    assert.matches("reshape", err)
    ok, err = pcall(function() return lunet.zeros(2):t() end)
    assert.is_false(ok)
    assert.matches("t: expects a 2%-D tensor", err)
  end)
end)

describe("conversions and copies", function()
  it("converts dtypes", function()
    local t = lunet.tensor { 1.5, -2.5 }
    assert.are.equal("f64", t:double():dtype())
    assert.are.equal("f32", t:double():float():dtype())
    assert.are.same({ 1, -2 }, t:long():totable())
    assert.are.equal("i64", t:to("i64"):dtype())
    assert.are.same({ 3, 200 }, lunet.tensor({ 3, 200 }):to("u8"):totable())
    assert.are.equal(t, t:to("f32"))
    assert.are.equal(t, t:to("cpu"))
    assert.are.equal(t, t:cpu())
    local ok, err = pcall(t.to, t, "banana")
    assert.is_false(ok)
    assert.matches("'banana' is neither a dtype", err)
  end)

  it("clones, detaches, fills and copies", function()
    local a = lunet.tensor { 1, 2, 3 }
    local c = a:clone()
    c:fill(0)
    assert.are.same({ 1, 2, 3 }, a:totable())
    assert.are.same({ 0, 0, 0 }, c:totable())
    assert.are.equal(c, c:copy(a))
    assert.are.same({ 1, 2, 3 }, c:totable())
    local x = lunet.ones({ 2 }, { requires_grad = true })
    local d = (x * 2):detach()
    assert.is_false(d:requires_grad())
    assert.is_true(d:is_leaf())
    assert.are.same({ 3, 4, 5 }, a:clone():add_(lunet.ones(3), 2):totable())
  end)

  it("compares by identity with == and by value with equal", function()
    local a = lunet.tensor { 1, 2 }
    local b = lunet.tensor { 1, 2 }
    assert.is_true(a == a)
    assert.is_false(a == b)
    assert.is_true(a:equal(b))
    assert.is_false(a:equal(lunet.tensor { 1, 3 }))
    assert.is_false(a:equal(lunet.tensor { { 1, 2 } }))
  end)
end)

describe("release", function()
  it("frees with :free() and <close>; a freed tensor errors clearly", function()
    local t = lunet.ones(3)
    t:free()
    t:free() -- idempotent
    local ok, err = pcall(t.numel, t)
    assert.is_false(ok)
    assert.matches("freed tensor", err)
    local kept
    do
      local c <close> = lunet.ones(2)
      kept = c
      assert.are.equal(2, c:numel())
    end
    assert.are.equal("tensor(<freed>)", tostring(kept))
  end)

  it("keeps views valid after their base is freed", function()
    local base = lunet.tensor { { 1, 2 }, { 3, 4 } }
    local v = base:narrow(1, 2, 1)
    base:free()
    collectgarbage()
    assert.are.same({ { 3, 4 } }, v:totable())
  end)
end)

describe("Lua type errors", function()
  it("names the function and argument", function()
    local F = lunet.nn.functional
    local ok, err = pcall(F.relu, "abc")
    assert.is_false(ok)
    assert.matches("relu: argument 'x' must be a tensor, got string", err)
    local t = lunet.ones(2)
    ok, err = pcall(function() return t + "abc" end)
    assert.is_false(ok)
    assert.matches("add: expected tensors or numbers, got tensor and string", err)
    ok, err = pcall(function() t.foo = 1 end)
    assert.is_false(ok)
    assert.matches("cannot set field 'foo'", err)
    ok, err = pcall(function() return t[1] end)
    assert.is_false(ok)
    assert.matches("cannot be indexed with a number", err)
    ok, err = pcall(t.fill, t, "x")
    assert.is_false(ok)
    assert.matches("fill: argument 'value' must be a number, got string", err)
    ok, err = pcall(t.requires_grad, t, "yes")
    assert.is_false(ok)
    assert.matches("requires_grad: argument must be a boolean", err)
  end)
end)

describe("robustness", function()
  it("survives every core function called with bad arguments", function()
    local core = require "lunet.core"
    local freed = lunet.ones(2)
    freed:free()
    local pool = {
      false, 0, -1, 3, 1.5, 2 ^ 62, -2 ^ 62, "x", "f64", {}, { 2, -3 }, { { 1 }, { 2, 3 } },
      lunet.ones(2, 3), lunet.ones({ 2 }, { dtype = "i64" }), lunet.tensor(1), lunet.tensor {},
      lunet.ones(1, 2, 4, 4), freed, print,
    }
    local skip = { stdin_is_tty = true, pth_save = true } -- pth_save writes files named by its argument
    local names = {}
    for name, fn in pairs(core) do
      if type(fn) == "function" and not skip[name] then names[#names + 1] = name end
    end
    table.sort(names)
    local calls = 0
    math.randomseed(7)
    for _, name in ipairs(names) do
      for _ = 1, 300 do
        local args, n = {}, math.random(0, 5)
        for i = 1, n do
          local k = math.random(0, #pool)
          args[i] = k > 0 and pool[k] or nil
        end
        pcall(core[name], table.unpack(args, 1, n))
        calls = calls + 1
      end
    end
    for _, m in ipairs { "shape", "size", "sum", "reshape", "narrow", "to", "backward", "copy", "equal" } do
      for _ = 1, 200 do
        local a, b, c = pool[math.random(#pool)], pool[math.random(#pool)], pool[math.random(#pool)]
        pcall(core.Tensor[m], a, b, c)
      end
    end
    core.set_grad_enabled(true)
    core.set_num_threads(0)
    core.set_backend("auto")
    assert.is_true(calls > 1000)
    assert.are.equal(3, lunet.tensor { 1, 2 }:numel() + 1)
  end)
end)
