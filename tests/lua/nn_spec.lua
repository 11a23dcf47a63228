-- lunet.nn modules: the class system, child/parameter/buffer registration, sharing
-- (parameters once, names at the first path, a shared basis' gradient = the sum of its
-- uses'), train/eval, BatchNorm running statistics, state_dict round trips keeping
-- sharing and load errors, to("f64") in place, tree printing and forward hooks.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")
local lunet = require "lunet"
local nn, F = lunet.nn, lunet.nn.functional

local function err_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

local function names(list)
  local out = {}
  for i, e in ipairs(list) do out[i] = e[1] end
  return out
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

-- A small network with one FilterBasis instance used by two blocks.
local function shared_net(c, rank)
  local basis = nn.FilterBasis(c, rank, 3)
  return nn.Sequential(nn.Conv2d(3, c, 3, { padding = 1, bias = false }),
                       nn.BasisConv2d(basis, 1, c), nn.BasisConv2d(basis, 1, c), nn.ReLU()), basis
end

describe("Module classes", function()
  it("extend builds classes whose instances print their class name", function()
    local Block = nn.Module:extend("Block")
    function Block:__init(c)
      nn.Module.__init(self)
      self.c = c
    end
    function Block:forward(x) return x end
    local Wide = Block:extend("Wide")
    local b, w = Block(3), Wide(5)
    assert.are.equal("Block()", tostring(b))
    assert.are.equal("Wide()", tostring(w))
    assert.are.equal(5, w.c)
    assert.is_true(nn.is_module(w))
    assert.is_true(w:is_a(Wide) and w:is_a(Block) and w:is_a(nn.Module))
    assert.is_false(b:is_a(Wide))
    assert.is_false(nn.is_module(Block))
    assert.is_false(nn.is_module({}))
    assert.are.equal("<class Block>", tostring(Block))
    assert.truthy(err_of(function() nn.Module:extend(3) end):find("extend: the class name"))
  end)

  it("assigning modules registers children in order; other values are plain fields", function()
    local M = nn.Module:extend("M")
    function M:__init()
      nn.Module.__init(self)
      self.b = nn.ReLU()
      self.a = nn.Identity()
      self.k = 7
    end
    local m = M()
    assert.are.same({ "b", "a" }, names(m:named_children()))
    assert.are.equal(7, m.k)
    m.b = nn.ReLU6() -- replacing keeps the position
    assert.are.same({ "b", "a" }, names(m:named_children()))
    assert.are.equal("ReLU6()", tostring(m.b))
    m.a = nil
    assert.are.same({ "b" }, names(m:named_children()))
    assert.truthy(err_of(function() m.b = 3 end):find("'b' is a child module"))
    m.k = nn.Identity() -- a plain field replaced by a module becomes a child
    assert.are.same({ "b", "k" }, names(m:named_children()))
    m.k = nil
    m.note = "plain"
    m.note = nil
    assert.is_nil(m.note)
    assert.are.same({ "b" }, names(m:named_children()))
  end)

  it("register_parameter sets requires_grad; buffers do not; names are checked", function()
    local m = nn.Module()
    local p = m:register_parameter("w", lunet.zeros { 2 })
    assert.is_true(p:requires_grad())
    assert.is_true(rawequal(p, m.w))
    local b = m:register_buffer("steps", lunet.zeros({}, { dtype = "i64" }))
    assert.is_false(b:requires_grad())
    m.w = lunet.ones { 3 } -- assigning a tensor to a parameter name replaces it
    assert.is_true(m.w:requires_grad())
    assert.are.equal(3, m.w:numel())
    assert.truthy(err_of(function() m.w = "x" end):find("'w' is a parameter; assign a tensor"))
    assert.truthy(err_of(function() m:register_parameter("a.b", lunet.zeros { 1 }) end)
      :find("without '%.'"))
    assert.truthy(err_of(function() m:register_buffer("w", lunet.zeros { 1 }) end)
      :find("'w' is already a parameter"))
    assert.truthy(err_of(function() m:register_parameter("v", 1) end):find("must be a tensor"))
  end)

  it("a user module with only forward trains through autograd", function()
    local Affine = nn.Module:extend("Affine")
    function Affine:__init(n)
      nn.Module.__init(self)
      self:register_parameter("w", lunet.tensor { { 1, 2 }, { 3, 4 } })
      self:register_parameter("b", lunet.zeros { n })
    end
    function Affine:forward(x) return F.linear(x, self.w, self.b) end
    local m = Affine(2)
    local x = lunet.tensor { { 1, 0 }, { 2, 5 } }
    m(x):sum():backward()
    -- d sum(x W^T + b) / dW = column sums of x for every row; / db = N
    H.assert_close({ { 3, 5 }, { 3, 5 } }, m.w.grad)
    H.assert_close({ 2, 2 }, m.b.grad)
    m:zero_grad()
    assert.is_nil(m.w.grad)
  end)

  it("a module without forward says so", function()
    assert.truthy(err_of(function() nn.Module()(lunet.zeros { 1 }) end):find("no forward"))
  end)
end)

describe("parameters, buffers and modules with sharing", function()
  it("a module assigned twice is counted once, under its first path", function()
    local net, basis = shared_net(4, 2)
    local params = net:parameters()
    local seen = {}
    for _, p in ipairs(params) do
      assert.is_nil(seen[p])
      seen[p] = true
    end
    local n = names(net:named_parameters())
    assert.are.same({ "0.weight", "1.shared_basis.weight", "1.basis_conv.weight",
      "1.basis_bn.weight", "1.basis_bn.bias", "1.coeff_conv.weight",
      "2.basis_conv.weight", "2.basis_bn.weight", "2.basis_bn.bias", "2.coeff_conv.weight" }, n)
    assert.is_true(rawequal(basis.weight, params[2]))
    local total = 0
    for _, p in ipairs(params) do total = total + p:numel() end
    -- 3*4*9 + 2*4*9 + 2 * (1*4*9 + 3 + 3 + 4*3)
    assert.are.equal(108 + 72 + 2 * (36 + 6 + 12), total)
    local mods = names(net:named_modules())
    assert.are.same({ "", "0", "1", "1.shared_basis", "1.basis_conv", "1.basis_bn",
      "1.coeff_conv", "2", "2.basis_conv", "2.basis_bn", "2.coeff_conv", "3" }, mods)
    assert.are.equal(#mods, #net:modules())
    local visited = {}
    net:apply(function(m) visited[#visited + 1] = m end)
    assert.are.equal(#mods, #visited)
    assert.is_true(rawequal(net, visited[#visited]))
    assert.are.equal(4, #net:children())
  end)

  it("one tensor registered in two modules is one parameter", function()
    local a, b = nn.Linear(3, 3), nn.Linear(3, 3)
    b.weight = a.weight
    local net = nn.Sequential(a, b)
    assert.are.same({ "0.weight", "0.bias", "1.bias" }, names(net:named_parameters()))
  end)

  it("buffers: BatchNorm's running statistics and counter", function()
    local net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))
    assert.are.same({ "1.running_mean", "1.running_var", "1.num_batches_tracked" },
      names(net:named_buffers()))
    local nbt = net[2].num_batches_tracked
    assert.are.equal("i64", nbt:dtype())
    assert.are.equal(0, nbt:dim())
    assert.are.equal(3, #net:buffers())
  end)

  it("a shared FilterBasis' gradient is the sum of two unshared copies' gradients", function()
    lunet.manual_seed(3)
    local shared, basis = shared_net(4, 3)
    local unshared = nn.Sequential(nn.Conv2d(3, 4, 3, { padding = 1, bias = false }),
      nn.BasisConv2d(nn.FilterBasis(4, 3, 3), 1, 4), nn.BasisConv2d(nn.FilterBasis(4, 3, 3), 1, 4),
      nn.ReLU())
    shared:to("f64")
    unshared:to("f64")
    unshared:load_state_dict(shared:state_dict()) -- the alias fills both copies
    local x = lunet.randn({ 2, 3, 6, 6 }, { dtype = "f64" })
    local r = lunet.randn({ 2, 4, 6, 6 }, { dtype = "f64" })
    local y1, y2 = shared(x), unshared(x)
    H.assert_close(y2:totable(), y1, 1e-12)
    F.sum(y1 * r):backward()
    F.sum(y2 * r):backward()
    local sum = unshared[2].shared_basis.weight.grad + unshared[3].shared_basis.weight.grad
    H.assert_close(sum:totable(), basis.weight.grad, 1e-10)
    H.assert_close(unshared[2].coeff_conv.weight.grad:totable(), shared[2].coeff_conv.weight.grad, 1e-10)
  end)
end)

describe("train / eval", function()
  it("set training recursively", function()
    local net = shared_net(4, 2)
    assert.is_true(net.training)
    assert.are.equal(net, net:eval())
    for _, m in ipairs(net:modules()) do assert.is_false(m.training) end
    net:train()
    for _, m in ipairs(net:modules()) do assert.is_true(m.training) end
    net:train(false)
    assert.is_false(net[2].basis_bn.training)
    assert.truthy(err_of(function() net:train("yes") end):find("train: mode must be a boolean"))
  end)

  it("BatchNorm2d updates its running statistics in training only", function()
    local bn = nn.BatchNorm2d(2, { momentum = 0.5 })
    local x = lunet.tensor { { { { 1, 3 } }, { { 2, 2 } } }, { { { 5, 7 } }, { { 0, 4 } } } } -- (2,2,1,2)
    bn(x)
    -- batch means 4 and 2; unbiased variances 20/3 and 8/3
    H.assert_close({ 2, 1 }, bn.running_mean)
    H.assert_close({ 0.5 + 10 / 3, 0.5 + 4 / 3 }, bn.running_var, 1e-5)
    assert.are.equal(1, bn.num_batches_tracked:item())
    bn(x)
    assert.are.equal(2, bn.num_batches_tracked:item())
    bn:eval()
    local before = bn.running_mean:totable()
    local y = bn(x)
    H.assert_close(before, bn.running_mean)
    assert.are.equal(2, bn.num_batches_tracked:item())
    -- eval normalises with the running statistics
    local rm, rv = bn.running_mean:totable(), bn.running_var:totable()
    H.assert_close((1 - rm[1]) / math.sqrt(rv[1] + 1e-5), y:totable()[1][1][1][1], 1e-5)
  end)

  it("Dropout is active in training only", function()
    local d = nn.Dropout(0.5)
    local x = lunet.ones { 1000 }
    local zeros = 0
    for _, v in ipairs(d(x):totable()) do if v == 0 then zeros = zeros + 1 end end
    assert.is_true(zeros > 350 and zeros < 650)
    d:eval()
    H.assert_close(x:totable(), d(x))
  end)
end)

describe("state_dict / load_state_dict", function()
  it("lists each tensor once, with aliases and buffers", function()
    local net = shared_net(4, 2)
    local sd = net:state_dict()
    assert.are.same({ ["2.shared_basis.weight"] = "1.shared_basis.weight" }, sd.aliases)
    assert.are.equal(#sd.order, count(sd.tensors))
    assert.are.equal("0.weight", sd.order[1])
    assert.truthy(sd.tensors["1.basis_bn.num_batches_tracked"])
    assert.are.equal(10 + 2 * 3, #sd.order) -- parameters + BN buffers
    assert.is_true(rawequal(sd.tensors["1.shared_basis.weight"], net[2].shared_basis.weight))
  end)

  it("round trip into a fresh model copies values and keeps sharing", function()
    lunet.manual_seed(5)
    local a = shared_net(4, 2)
    a(lunet.randn { 2, 3, 5, 5 }) -- running statistics move
    local b = shared_net(4, 2)
    local tensor_b = b[2].shared_basis.weight
    b:load_state_dict(a:state_dict())
    for name, t in pairs(a:state_dict().tensors) do
      assert.is_true(t:equal(b:state_dict().tensors[name]), name)
    end
    assert.is_true(rawequal(tensor_b, b[2].shared_basis.weight)) -- same objects
    assert.is_true(rawequal(b[2].shared_basis.weight, b[3].shared_basis.weight))
    -- changing the shared tensor through one path shows through the other
    b[2].shared_basis.weight:fill(0.25)
    assert.are.equal(0.25, b[3].shared_basis.weight:totable()[1][1][1][1])
    assert.are.equal(1, b[2].basis_bn.num_batches_tracked:item())
  end)

  it("loads a flat {name = tensor} table that repeats a shared tensor under every path", function()
    local a, b = shared_net(4, 2), shared_net(4, 2)
    local flat = {}
    for name, t in pairs(a:state_dict().tensors) do flat[name] = t end
    flat["2.shared_basis.weight"] = a[2].shared_basis.weight
    b:load_state_dict(flat)
    assert.is_true(b[3].shared_basis.weight:equal(a[2].shared_basis.weight))
  end)

  it("reports missing, unexpected and mismatched entries clearly", function()
    local net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm2d(3))
    local sd = net:state_dict()
    local missing = { tensors = {}, order = {}, aliases = {} }
    for k, v in pairs(sd.tensors) do missing.tensors[k] = v end
    missing.tensors["0.bias"] = nil
    local e = err_of(function() net:load_state_dict(missing) end)
    assert.truthy(e:find("load_state_dict: Sequential does not match the state dict %(missing: 0.bias%)"))
    local extra = { ["zzz.weight"] = lunet.zeros { 1 } }
    for k, v in pairs(sd.tensors) do extra[k] = v end
    e = err_of(function() net:load_state_dict(extra) end)
    assert.truthy(e:find("unexpected: zzz.weight", 1, true))
    local bad = {}
    for k, v in pairs(sd.tensors) do bad[k] = v end
    bad["0.weight"] = lunet.zeros { 2, 3 }
    e = err_of(function() net:load_state_dict(bad) end)
    assert.truthy(e:find("shape mismatch for '0.weight': this module has [3, 2], the state dict [2, 3]", 1, true))
    -- non-strict: loads what matches, returns the lists
    local _, ml, ul = net:load_state_dict(missing, false)
    assert.are.same({ "0.bias" }, ml)
    assert.are.same({}, ul)
    _, ml, ul = net:load_state_dict(extra, false)
    assert.are.same({}, ml)
    assert.are.same({ "zzz.weight" }, ul)
    assert.truthy(err_of(function() net:load_state_dict(3) end):find("expected a state dict table"))
    assert.truthy(err_of(function() net:load_state_dict({ x = 3 }) end):find("entry 'x' is not a tensor"))
  end)
end)

describe("to", function()
  it("converts to f64 in place, keeping identity, sharing, requires_grad and grads", function()
    local net, basis = shared_net(4, 2)
    local w = basis.weight
    local params = net:parameters()
    net(lunet.randn { 1, 3, 4, 4 }):sum():backward()
    assert.are.equal(net, net:to("f64"))
    assert.is_true(rawequal(w, net[2].shared_basis.weight))
    assert.is_true(rawequal(w, net[3].shared_basis.weight))
    for i, p in ipairs(net:parameters()) do
      assert.is_true(rawequal(params[i], p))
      assert.are.equal("f64", p:dtype())
      assert.is_true(p:requires_grad())
      assert.are.equal("f64", p.grad:dtype())
    end
    assert.are.equal("f64", net[2].basis_bn.running_var:dtype())
    assert.are.equal("i64", net[2].basis_bn.num_batches_tracked:dtype())
    local y = net(lunet.randn({ 1, 3, 4, 4 }, { dtype = "f64" }))
    assert.are.equal("f64", y:dtype())
    y:sum():backward()
    assert.are.equal("f64", w.grad:dtype())
    net:to("cpu")
    net:to("f32")
    assert.are.equal("f32", w:dtype())
  end)

  it("rejects integer dtypes and unknown names", function()
    local net = nn.Linear(2, 2)
    assert.truthy(err_of(function() net:to("i64") end):find("only to a floating dtype"))
    assert.truthy(err_of(function() net:to("gpu7") end):find("neither a dtype"))
    assert.truthy(err_of(function() net:to(3) end):find("to: expected a device or dtype name"))
  end)
end)

describe("printing", function()
  it("prints the tree with arguments, marking a module met again as shared", function()
    local net = shared_net(4, 2)
    local want = table.concat({
      "Sequential(",
      "  (0): Conv2d(3, 4, kernel_size=3, stride=1, padding=1, bias=false)",
      "  (1): BasisConv2d(",
      "    4, 4, unique_rank=1, shared_rank=2",
      "    (shared_basis): FilterBasis(4, 2, kernel_size=3, stride=1)",
      "    (basis_conv): Conv2d(4, 1, kernel_size=3, stride=1, padding=1, bias=false)",
      "    (basis_bn): BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=true)",
      "    (coeff_conv): Conv2d(3, 4, kernel_size=1, stride=1, bias=false)",
      "  )",
      "  (2): BasisConv2d(",
      "    4, 4, unique_rank=1, shared_rank=2",
      "    (shared_basis): FilterBasis(4, 2, kernel_size=3, stride=1)  -- shared: same as 1.shared_basis",
      "    (basis_conv): Conv2d(4, 1, kernel_size=3, stride=1, padding=1, bias=false)",
      "    (basis_bn): BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=true)",
      "    (coeff_conv): Conv2d(3, 4, kernel_size=1, stride=1, bias=false)",
      "  )",
      "  (3): ReLU()",
      ")",
    }, "\n")
    assert.are.equal(want, tostring(net))
  end)

  it("prints every layer's arguments", function()
    assert.are.equal("Linear(in_features=3, out_features=2, bias=true)", tostring(nn.Linear(3, 2)))
    assert.are.equal("Conv2d(4, 8, kernel_size={1, 3}, stride=2, padding={0, 1}, groups=2)",
      tostring(nn.Conv2d(4, 8, { 1, 3 }, { stride = 2, padding = { 0, 1 }, groups = 2 })))
    assert.are.equal("MaxPool2d(kernel=3, stride=2, padding=1)",
      tostring(nn.MaxPool2d { kernel = 3, stride = 2, padding = 1 }))
    assert.are.equal("Dropout(p=0.2)", tostring(nn.Dropout(0.2)))
    assert.are.equal("ECA(kernel_size=3)", tostring(nn.ECA(3)))
  end)
end)

describe("forward hooks", function()
  it("see every module call after its forward, and go away after the body", function()
    local net = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    local calls = {}
    local x = lunet.randn { 4, 2 }
    local out = nn.with_forward_hook(function(m, inputs, output)
      calls[#calls + 1] = { tostring(getmetatable(m).__name), inputs, output }
    end, function(a) return net(a) end, x)
    assert.are.same({ "Linear", "ReLU", "Sequential" }, { calls[1][1], calls[2][1], calls[3][1] })
    assert.is_true(rawequal(x, calls[1][2][1]))
    assert.are.equal(1, calls[1][2].n)
    assert.is_true(rawequal(calls[1][3], calls[2][2][1]))
    assert.is_true(rawequal(out, calls[3][3]))
    net(x)
    assert.are.equal(3, #calls)
  end)

  it("are removed when the body errors, and nest", function()
    local seen = 0
    local e = err_of(nn.with_forward_hook, function() seen = seen + 1 end, function()
      nn.ReLU()(lunet.zeros { 1 })
      error("boom", 0)
    end)
    assert.are.equal("boom", e)
    assert.are.equal(1, seen)
    nn.ReLU()(lunet.zeros { 1 })
    assert.are.equal(1, seen)
    local order = {}
    nn.with_forward_hook(function() order[#order + 1] = "outer" end, function()
      nn.with_forward_hook(function() order[#order + 1] = "inner" end, function()
        nn.Identity()(lunet.zeros { 1 })
      end)
      nn.Identity()(lunet.zeros { 1 })
    end)
    assert.are.same({ "outer", "inner", "outer" }, order)
    assert.truthy(err_of(nn.with_forward_hook, 1, print):find("expected two functions"))
  end)
end)
