-- lunet.optim: SGD against torch.optim.SGD on the numbers of
-- tests/fixtures/sgd/sgd_fixture.json (made by make_sgd_fixture.py with python3-torch:
-- momentum, weight decay, dampening, Nesterov, a learning rate changed between steps,
-- a parameter without gradient), in f64 and f32; state_dict round trip; errors. The
-- schedules: the paper's three multistep ones at their boundary epochs, cosine,
-- warm-up, and their argument checks.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local lunet = require "lunet"
local SGD = lunet.optim.SGD
local S = lunet.optim.schedules

local function read_fixture()
  local f = assert(io.open(here .. "../fixtures/sgd/sgd_fixture.json", "r"))
  local text = f:read("a")
  f:close()
  return lunet.io.json_decode(text)
end

-- max |got - want| / max(1, |want|) over a tensor and a flat list
local function max_err(t, want)
  local got = t:reshape(-1):to("f64"):totable()
  assert.are.equal(#want, #got)
  local m = 0
  for i = 1, #want do m = math.max(m, math.abs(got[i] - want[i]) / math.max(1, math.abs(want[i]))) end
  return m
end

local function errmsg(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

local function param(values, shape, dtype)
  local t = lunet.tensor(values, { dtype = dtype }):reshape(shape)
  return lunet.tensor(t, { dtype = dtype }):requires_grad(true)
end

describe("lunet.optim.SGD", function()
  local fixture = read_fixture()

  it("has a fixture made by torch.optim.SGD with 8 cases of 3 steps", function()
    assert.are.equal(3, fixture.steps)
    assert.are.equal(8, #fixture.cases)
  end)

  for _, dtype in ipairs { "f64", "f32" } do
    local tol = dtype == "f64" and 1e-12 or 1e-6
    for _, case in ipairs(fixture.cases) do
      it(("matches PyTorch (%s): %s"):format(dtype, case.name), function()
        local params = {}
        for i, shape in ipairs(case.shapes) do params[i] = param(case.init[i], shape, dtype) end
        local opt = SGD(params, { lr = case.lr[1], momentum = case.momentum, weight_decay = case.weight_decay,
                                  dampening = case.dampening, nesterov = case.nesterov })
        for step = 1, fixture.steps do
          opt:zero_grad()
          opt.lr = case.lr[step]
          for i, p in ipairs(params) do
            local g = case.grads[step][i]
            if g ~= lunet.io.null then p.grad = lunet.tensor(g, { dtype = dtype }):reshape(case.shapes[i]) end
          end
          opt:step()
          for i, p in ipairs(params) do
            local e = max_err(p, case.params[step][i])
            assert.is_true(e <= tol, ("step %d param %d: error %g"):format(step, i, e))
            local want_buf = case.momentum_buffers[step][i]
            local buf = opt:state_dict().momentum_buffers[i]
            if want_buf == lunet.io.null then
              assert.is_nil(buf, ("step %d param %d: no momentum buffer yet"):format(step, i))
            else
              e = max_err(buf, want_buf)
              assert.is_true(e <= tol, ("step %d buffer %d: error %g"):format(step, i, e))
            end
          end
        end
        assert.are.equal(3, opt.steps)
      end)
    end
  end

  it("state_dict / load_state_dict continue a run exactly", function()
    lunet.manual_seed(3)
    local function make()
      lunet.manual_seed(4)
      return { lunet.randn({ 3, 4 }, { dtype = "f64" }):requires_grad(true),
               lunet.randn({ 5 }, { dtype = "f64" }):requires_grad(true) }
    end
    local grads = {}
    for s = 1, 4 do grads[s] = { lunet.randn({ 3, 4 }, { dtype = "f64" }), lunet.randn({ 5 }, { dtype = "f64" }) } end
    local hyper = { lr = 0.1, momentum = 0.9, weight_decay = 1e-3, nesterov = true }
    local function steps(opt, params, from, to)
      for s = from, to do
        opt:zero_grad()
        for i, p in ipairs(params) do p.grad = grads[s][i]:clone() end
        opt:step()
      end
    end
    local pa = make()
    local a = SGD(pa, hyper)
    steps(a, pa, 1, 4)
    local pb = make()
    local b = SGD(pb, hyper)
    steps(b, pb, 1, 2)
    local sd = b:state_dict()
    local pc = { pb[1]:detach():clone():requires_grad(true), pb[2]:detach():clone():requires_grad(true) }
    local c = SGD(pc, { lr = 5 })
    c:load_state_dict(sd)
    assert.are.equal(0.1, c.lr)
    assert.are.equal(2, c.steps)
    assert.is_false(rawequal(c:state_dict().momentum_buffers[1], sd.momentum_buffers[1]), "buffers are copied")
    steps(c, pc, 3, 4)
    for i = 1, 2 do assert.is_true(pa[i]:equal(pc[i])) end
  end)

  it("takes a module's parameters (a shared tensor once) and skips parameters without grad", function()
    local nn = lunet.nn
    local net = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    local shared = nn.Linear(3, 3)
    net:add_module("again", shared)
    net:add_module("again_alias", shared)
    local opt = SGD(net, { lr = 0.5 })
    assert.are.equal(#net:parameters(), #opt.params)
    assert.are.equal(4, #opt.params)
    local before = opt.params[1]:clone()
    opt:step() -- no grads anywhere: nothing moves
    assert.is_true(before:equal(opt.params[1]))
    assert.are.equal(1, opt.steps)
  end)

  it("rejects bad options and parameters with clear errors", function()
    local p = lunet.zeros({ 2 }):requires_grad(true)
    assert.matches("unknown option 'momentun'", errmsg(SGD, { p }, { lr = 0.1, momentun = 0.9 }))
    assert.matches("valid: dampening, lr, momentum, nesterov, weight_decay", errmsg(SGD, { p }, { lr = 0.1, x = 1 }))
    assert.matches("'lr' is required", errmsg(SGD, { p }, { momentum = 0.9 }))
    assert.matches("lr must be >= 0", errmsg(SGD, { p }, { lr = -1 }))
    assert.matches("lr must be a finite number", errmsg(SGD, { p }, { lr = 0 / 0 }))
    assert.matches("nesterov momentum requires momentum > 0", errmsg(SGD, { p }, { lr = 1, nesterov = true }))
    assert.matches("nesterov must be a boolean", errmsg(SGD, { p }, { lr = 1, nesterov = 1 }))
    assert.matches("same tensor as params%[1%]", errmsg(SGD, { p, p }, { lr = 1 }))
    assert.matches("params%[2%] is a number", errmsg(SGD, { p, 3 }, { lr = 1 }))
    assert.matches("dtype i64", errmsg(SGD, { lunet.zeros({ 2 }, { dtype = "i64" }) }, { lr = 1 }))
    assert.matches("list of tensors or a module", errmsg(SGD, p, { lr = 1 }))
    local opt = SGD({ p }, { lr = 0.1, momentum = 0.9 })
    opt.lr = -3
    assert.matches("lr must be >= 0", errmsg(opt.step, opt))
    opt.lr = 0.1
    assert.matches("shape %[3%] but its parameter %[2%]",
      errmsg(opt.load_state_dict, opt, { momentum_buffers = { lunet.zeros({ 3 }) } }))
    assert.matches("has no parameter",
      errmsg(opt.load_state_dict, opt, { momentum_buffers = { [2] = lunet.zeros({ 2 }) } }))
    assert.matches("unknown SGD state field 'foo'", errmsg(opt.load_state_dict, opt, { foo = 1 }))
    assert.matches("steps must be an integer", errmsg(opt.load_state_dict, opt, { steps = 1.5 }))
  end)
end)

describe("lunet.optim.schedules", function()
  local function near(want, got)
    assert.is_true(math.abs(got - want) <= 1e-12 * math.abs(want) + 1e-18,
      ("expected %.17g, got %.17g"):format(want, got))
  end

  it("ILSVRC ResNets: 0.1 until 60, 0.01 from 61, 0.001 from 101, 1e-4 from 141", function()
    for _, f in ipairs { S.paper.ilsvrc_resnet(0.1), S.multistep { lr = 0.1, milestones = { 60, 100, 140 } } } do
      local want = { [1] = 0.1, [60] = 0.1, [61] = 0.01, [100] = 0.01, [101] = 0.001, [140] = 0.001,
                     [141] = 1e-4, [150] = 1e-4 }
      for e, lr in pairs(want) do near(lr, f(e)) end
      near(0.1, f(60, 0.999))
      near(0.01, f(61, 0))
    end
  end)

  it("ILSVRC MobileNetV2s: x0.1 after 150 and 225, x0.5 after 285", function()
    local f = S.paper.ilsvrc_mobilenetv2(0.1)
    local g = S.multistep { lr = 0.1, milestones = { 150, 225, 285 }, factors = { 0.1, 0.1, 0.5 } }
    local want = { [1] = 0.1, [150] = 0.1, [151] = 0.01, [225] = 0.01, [226] = 0.001, [285] = 0.001,
                   [286] = 5e-4, [300] = 5e-4 }
    for e, lr in pairs(want) do near(lr, f(e)); near(lr, g(e, 0.5)) end
  end)

  it("CIFAR ResNets: x0.1 after 150 and 225", function()
    local f = S.paper.cifar_resnet(0.1)
    local want = { [1] = 0.1, [150] = 0.1, [151] = 0.01, [225] = 0.01, [226] = 0.001, [300] = 0.001 }
    for e, lr in pairs(want) do near(lr, f(e)) end
    near(0.05, S.multistep { lr = 0.5, milestones = { 2 }, gamma = 0.1 }(3))
  end)

  it("cosine goes from lr at the start of epoch 1 to min_lr at the end", function()
    local f = S.cosine { lr = 0.1, epochs = 10, min_lr = 0.001 }
    near(0.1, f(1, 0))
    near(0.001, f(10, 1))
    near(0.001, f(12))
    near((0.1 + 0.001) / 2, f(6, 0))
    near(0.001 + 0.099 * (1 + math.cos(math.pi * 2.25 / 10)) / 2, f(3, 0.25))
    local prev = math.huge
    for e = 1, 10 do
      for _, fr in ipairs { 0, 0.5 } do
        local v = f(e, fr)
        assert.is_true(v < prev)
        prev = v
      end
    end
    near(0.05, S.cosine { lr = 0.1, epochs = 4 }(3, 0))
  end)

  it("warmup ramps linearly from start_factor, then follows the schedule", function()
    local f = S.warmup(S.constant { lr = 0.1 }, { epochs = 5, start_factor = 0.1 })
    near(0.01, f(1, 0))
    near(0.1 * (0.1 + 0.9 * 2 / 5), f(3, 0))
    near(0.1 * (0.1 + 0.9 * 2.5 / 5), f(3, 0.5))
    near(0.1, f(5, 1))
    near(0.1, f(6, 0))
    local g = S.warmup(S.paper.ilsvrc_resnet(0.1), { epochs = 5 })
    near(0.1 / 3, g(1, 0))
    near(0.01, g(61))
    near(0.1, S.warmup(S.constant { lr = 0.1 }, { epochs = 0 })(1, 0))
  end)

  it("schedules are pure: the same arguments give the same rate in any order", function()
    local f = S.warmup(S.cosine { lr = 0.2, epochs = 30 }, { epochs = 3, start_factor = 0.25 })
    local a = { f(20, 0.3), f(2, 0.5), f(20, 0.3), f(1, 0) }
    assert.are.equal(a[1], a[3])
    assert.are.equal(f(2, 0.5), a[2])
    assert.are.equal(f(1), a[4])
  end)

  it("rejects bad options and arguments", function()
    assert.matches("unknown option 'milestone' %(valid: factors, gamma, lr, milestones%)",
      errmsg(S.multistep, { lr = 0.1, milestone = { 3 } }))
    assert.matches("milestones must increase", errmsg(S.multistep, { lr = 0.1, milestones = { 5, 5 } }))
    assert.matches("milestone 1 must be an integer", errmsg(S.multistep, { lr = 0.1, milestones = { 1.5 } }))
    assert.matches("'factors' must be a list of 2", errmsg(S.multistep, { lr = 0.1, milestones = { 1, 2 }, factors = { 1 } }))
    assert.matches("not both", errmsg(S.multistep, { lr = 0.1, milestones = { 1 }, factors = { 1 }, gamma = 0.5 }))
    assert.matches("'lr' must be a finite number", errmsg(S.multistep, { milestones = {} }))
    assert.matches("'epochs' must be an integer >= 1", errmsg(S.cosine, { lr = 0.1 }))
    assert.matches("'start_factor' must be in", errmsg(S.warmup, S.constant { lr = 1 }, { epochs = 1, start_factor = 0 }))
    assert.matches("expected a schedule function", errmsg(S.warmup, 0.1, { epochs = 1 }))
    local f = S.paper.cifar_resnet()
    assert.matches("epochs count from 1", errmsg(f, 0))
    assert.matches("epoch must be an integer", errmsg(f, 1.5))
    assert.matches("iteration_fraction must be in", errmsg(f, 2, 1.5))
  end)
end)
