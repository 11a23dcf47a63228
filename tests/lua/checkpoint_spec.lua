-- lunet.checkpoint and the RNG state: a zoo model with shared bases round trips (each
-- shared tensor stored once, aliases in the metadata, sharing intact and values equal
-- after restore); optimiser momentum buffers, epoch, best accuracy, RNG state, config
-- and extra round trip; training resumed from a checkpoint equals training straight
-- through; the RNG state reproduces the same random numbers; an interrupted save (a
-- simulated full disk, an error before writing) leaves the previous checkpoint
-- loadable and no temporary file; truncated, foreign and mismatched files give clear
-- errors naming the path; a plain safetensors file loads as weights only.
local lunet = require "lunet"
local ckpt = lunet.checkpoint
local lio = lunet.io

local function errmsg(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

local function tmpdir()
  local p = assert(io.popen("mktemp -d"))
  local d = p:read("l")
  p:close()
  return d
end

local function rmdir(d) os.execute("rm -rf '" .. d .. "'") end

local function entries(d)
  local p = assert(io.popen("ls -A '" .. d .. "'"))
  local out = {}
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  return out
end

local function copy_prefix(src, dst, n)
  local f = assert(io.open(src, "rb"))
  local data = f:read("a")
  f:close()
  local g = assert(io.open(dst, "wb"))
  g:write(n and data:sub(1, n) or data)
  g:close()
  return #data
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

-- A small CIFAR model with shared bases, its values scrambled so nothing is default.
local function model(seed)
  lunet.manual_seed(seed)
  local m = lunet.models.build("ResNet20_DoubleShared", { classes = 10 })
  lunet.no_grad(function()
    for _, t in ipairs(m:parameters()) do t:copy(lunet.randn(t:shape(), { dtype = t:dtype() })) end
  end)
  return m
end

-- One training step on a fixed random batch.
local function train_step(m, opt, seed)
  lunet.manual_seed(seed)
  local x = lunet.randn { 4, 3, 8, 8 }
  local y = lunet.tensor({ 1, 2, 3, 4 }, { dtype = "i64" })
  opt:zero_grad()
  local loss = lunet.nn.functional.cross_entropy(m(x), y)
  loss:backward()
  opt:step()
end

describe("lunet.get_rng_state / set_rng_state", function()
  it("restoring the state reproduces the same random numbers", function()
    lunet.manual_seed(99)
    lunet.randn { 5 }
    local s = lunet.get_rng_state()
    assert.are.equal(4, #s)
    for i = 1, 4 do assert.matches("^%d+$", s[i]) end
    local a = lunet.randn { 10 }:totable()
    lunet.randn { 7 }
    lunet.set_rng_state(s)
    assert.are.same(a, lunet.randn { 10 }:totable())
    assert.are.same(s, (function() lunet.set_rng_state(s); return lunet.get_rng_state() end)())
  end)

  it("rejects malformed states", function()
    assert.matches("4 words", errmsg(lunet.set_rng_state, { "1", "2" }))
    assert.matches("not an unsigned 64%-bit decimal", errmsg(lunet.set_rng_state, { "1", "2", "x", "4" }))
    assert.matches("not an unsigned 64%-bit decimal", errmsg(lunet.set_rng_state, { "1", "2", "18446744073709551616", "4" }))
    assert.matches("not an unsigned 64%-bit decimal", errmsg(lunet.set_rng_state, { "1", "2", "-3", "4" }))
    assert.matches("all%-zero", errmsg(lunet.set_rng_state, { "0", "0", "0", "0" }))
    assert.matches("expected a table", errmsg(lunet.set_rng_state, 5))
  end)
end)

describe("lunet.checkpoint", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() rmdir(dir) end)

  it("round trips a zoo model with shared bases: stored once, sharing kept, values equal", function()
    local m = model(1)
    local sd = m:state_dict()
    assert.is_true(count(sd.aliases) > 0, "the model shares tensors")
    local path = dir .. "/net.safetensors"
    ckpt.save(path, { model = m, epoch = 7 })
    local tensors, meta, names = lio.load_safetensors(path)
    assert.are.equal(#sd.order, #names, "each shared tensor once")
    assert.are.same(sd.order, names)
    assert.are.same(sd.aliases, lio.json_decode(meta["lunet.aliases"]))
    assert.are.equal("lunet.checkpoint/1", meta["lunet.format"])
    for alias in pairs(sd.aliases) do assert.is_nil(tensors[alias]) end

    local m2 = model(2)
    local ck = ckpt.restore(path, { model = m2 })
    assert.are.equal(7, ck.epoch)
    local sd2 = m2:state_dict()
    assert.are.same(sd.aliases, sd2.aliases)
    for _, name in ipairs(sd.order) do
      assert.is_true(sd.tensors[name]:equal(sd2.tensors[name]), name)
    end
    -- sharing holds: one tensor object behind every alias, so an update shows everywhere
    local alias, canon = next(sd2.aliases)
    local function at(mod, path_)
      local obj = mod
      for part in path_:gmatch("[^.]+") do obj = tonumber(part) and obj[tonumber(part) + 1] or obj[part] end
      return obj
    end
    local a, c = at(m2, alias), at(m2, canon)
    assert.is_true(rawequal(a, c), "alias " .. alias .. " is " .. canon)
    lunet.no_grad(function() c:fill(0.25) end)
    assert.are.equal(0.25, a:reshape(-1):totable()[1])
  end)

  it("round trips optimiser buffers, epoch, best_acc, RNG state, config and extra", function()
    local m = model(3)
    local opt = lunet.optim.SGD(m:parameters(), { lr = 0.05, momentum = 0.9, weight_decay = 5e-4, nesterov = true })
    train_step(m, opt, 10)
    train_step(m, opt, 11)
    local config = { model = "ResNet20_DoubleShared", lr = 0.05, milestones = { 150, 225 }, nested = { a = true, b = "x\n\"y\"" },
                     lambdaR = 10.0, batch_size = 256 }
    local rng = lunet.get_rng_state()
    local path = dir .. "/full.safetensors"
    ckpt.save(path, { model = m, optimizer = opt, epoch = 42, best_acc = 0.7315, config = config,
                      extra = { history = { 1.5, 0.75 } } })
    local ck = ckpt.load(path)
    assert.are.equal(42, ck.epoch)
    assert.are.equal(0.7315, ck.best_acc)
    assert.are.same(rng, ck.rng)
    assert.are.same(config, ck.config)
    assert.are.equal("integer", math.type(ck.config.batch_size))
    assert.are.equal("float", math.type(ck.config.lambdaR))
    assert.are.same({ history = { 1.5, 0.75 } }, ck.extra)
    assert.are.equal("lunet.optim.SGD", ck.optimizer.class)
    assert.are.equal(2, ck.optimizer.steps)
    assert.is_true(ck.optimizer.nesterov)
    local _, _, names = lio.load_safetensors(path)
    local n_opt = 0
    for _, n in ipairs(names) do
      if n:match("^optimizer%.momentum%.") then n_opt = n_opt + 1 end
    end
    assert.are.equal(#m:parameters(), n_opt)
    assert.is_not_nil(ck.optimizer.buffers.momentum["shared_basis_1_1.weight"])

    local m2 = model(4)
    local opt2 = lunet.optim.SGD(m2:parameters(), { lr = 1 })
    ckpt.restore(path, { model = m2, optimizer = opt2 })
    assert.are.equal(0.05, opt2.lr)
    assert.are.equal(0.9, opt2.momentum)
    assert.are.equal(2, opt2.steps)
    local b1, b2 = opt:state_dict().momentum_buffers, opt2:state_dict().momentum_buffers
    for i = 1, #opt.params do assert.is_true(b1[i]:equal(b2[i]), "buffer " .. i) end
  end)

  it("resuming from a checkpoint continues the run exactly", function()
    local function fresh()
      local m = model(5)
      return m, lunet.optim.SGD(m:parameters(), { lr = 0.1, momentum = 0.9, weight_decay = 1e-4 })
    end
    local ma, oa = fresh()
    for s = 1, 4 do train_step(ma, oa, 20 + s) end
    local mb, ob = fresh()
    for s = 1, 2 do train_step(mb, ob, 20 + s) end
    local path = dir .. "/resume.safetensors"
    ckpt.save(path, { model = mb, optimizer = ob, epoch = 2 })
    local mc, oc = fresh()
    train_step(mc, oc, 99) -- state that the restore must overwrite
    ckpt.restore(path, { model = mc, optimizer = oc, rng = true })
    for s = 3, 4 do train_step(mc, oc, 20 + s) end
    local sa, sc = ma:state_dict(), mc:state_dict()
    for _, name in ipairs(sa.order) do assert.is_true(sa.tensors[name]:equal(sc.tensors[name]), name) end
  end)

  it("restores the RNG state when asked: the same random numbers follow", function()
    local m = model(6)
    lunet.manual_seed(77)
    local path = dir .. "/rng.safetensors"
    ckpt.save(path, { model = m })
    local after = lunet.randn { 6 }:totable()
    lunet.manual_seed(1)
    ckpt.restore(path, { model = m })
    assert.are_not.same(after, lunet.randn { 6 }:totable())
    ckpt.restore(path, { model = m, rng = true })
    assert.are.same(after, lunet.randn { 6 }:totable())
  end)

  it("an interrupted save leaves the previous checkpoint loadable and no temporary file", function()
    local m = model(7)
    local path = dir .. "/last.safetensors"
    ckpt.save(path, { model = m, epoch = 1, best_acc = 0.5 })
    local size = #assert(io.open(path, "rb")):read("a")
    local other = model(8)
    for _, cut in ipairs { 1, 100, 5000, size // 2, size - 100 } do
      local err = errmsg(ckpt.save, path, { model = other, epoch = 2, best_acc = 0.75, fail_after_bytes = cut })
      assert.matches("checkpoint.save:", err)
      assert.matches(path, err, 1, true)
      assert.matches("No space left on device", err, 1, true)
      assert.are.same({ "last.safetensors" }, entries(dir))
      local ck = ckpt.load(path)
      assert.are.equal(1, ck.epoch)
      assert.are.equal(0.5, ck.best_acc)
    end
    -- an error before anything is written (a config that is not JSON) changes nothing
    assert.matches("cannot encode a function", errmsg(ckpt.save, path, { model = m, epoch = 3, config = { f = print } }))
    assert.are.equal(1, ckpt.load(path).epoch)
    assert.are.same({ "last.safetensors" }, entries(dir))
    -- and a good save replaces it
    ckpt.save(path, { model = m, epoch = 4 })
    assert.are.equal(4, ckpt.load(path).epoch)
  end)

  it("truncated, foreign and missing files give clear errors naming the path", function()
    local m = model(9)
    local path = dir .. "/good.safetensors"
    ckpt.save(path, { model = m, epoch = 1 })
    local cut = dir .. "/cut.safetensors"
    local size = copy_prefix(path, cut, 1000)
    assert.matches("cut.safetensors' is truncated", errmsg(ckpt.load, cut))
    copy_prefix(path, cut, size - 3)
    local err = errmsg(ckpt.load, cut)
    assert.matches("checkpoint.load: '" .. cut .. "'", err, 1, true)
    assert.matches("outside the data section", err)
    assert.matches("too short", errmsg(ckpt.load, (function() copy_prefix(path, cut, 5); return cut end)()))

    local text = dir .. "/notes.txt"
    local f = assert(io.open(text, "w"))
    f:write("epoch 3: loss 0.2, accuracy 91%\nthis is not a checkpoint\n")
    f:close()
    err = errmsg(ckpt.load, text)
    assert.matches("notes.txt' is truncated or not a safetensors file", err, 1, true)

    local png = dir .. "/image.png"
    f = assert(io.open(png, "wb"))
    f:write("\137PNG\r\n\26\n\0\0\0\13IHDR\0\0\0\1\0\0\0\1\8\6\0\0\0\31\21\196\137\0\0\0\13IDATx\156c\0\1\0\0\5\0\1\13\10\45\180")
    f:close()
    assert.matches("image.png' is truncated or not a safetensors file", errmsg(ckpt.load, png), 1, true)

    local plain = dir .. "/plain.safetensors"
    lio.save_safetensors(plain, { w = lunet.zeros { 2 }, ["optimizer.x"] = lunet.ones { 1 } }, { format = "pt" })
    local weights = ckpt.load(plain) -- weights exported by another tool: weights only
    assert.is_nil(weights.format)
    assert.is_nil(weights.epoch)
    assert.are.same({ 0, 0 }, weights.tensors.w:totable())
    assert.are.same({ 1 }, weights.tensors["optimizer.x"]:totable())
    assert.are.equal("pt", weights.metadata.format)
    assert.matches("holds no optimiser state",
      errmsg(ckpt.restore, plain, { optimizer = lunet.optim.SGD({ lunet.zeros { 2 } }, { lr = 1 }) }))
    lio.save_safetensors(plain, { w = lunet.zeros { 2 } }, { ["lunet.format"] = "lunet.checkpoint/99" })
    assert.matches("format 'lunet.checkpoint/99'", errmsg(ckpt.load, plain))
    lio.save_safetensors(plain, { w = lunet.zeros { 2 } }, { ["lunet.format"] = "lunet.checkpoint/1", ["lunet.epoch"] = "{" })
    assert.matches("'lunet.epoch' is not valid JSON", errmsg(ckpt.load, plain))
    assert.matches("cannot open '" .. dir .. "/nope.safetensors'", errmsg(ckpt.load, dir .. "/nope.safetensors"), 1, true)
    assert.matches("checkpoint.restore: cannot open", errmsg(ckpt.restore, dir .. "/nope.safetensors", { model = m }))
  end)

  it("restoring into a different model or optimiser names the mismatch", function()
    local m = model(10)
    local path = dir .. "/m.safetensors"
    local opt = lunet.optim.SGD(m:parameters(), { lr = 0.1, momentum = 0.9 })
    train_step(m, opt, 1)
    ckpt.save(path, { model = m, optimizer = opt })
    local other = lunet.models.build("ResNet20", { classes = 10 })
    local err = errmsg(ckpt.restore, path, { model = other })
    assert.matches("checkpoint.restore: '" .. path .. "'", err, 1, true)
    assert.matches("missing:", err)
    ckpt.restore(path, { model = other, strict = false }) -- what matches is loaded
    local wrong_classes = lunet.models.build("ResNet20_DoubleShared", { classes = 100 })
    assert.matches("shape mismatch for 'fc.weight'", errmsg(ckpt.restore, path, { model = wrong_classes }))
    local small = lunet.optim.SGD({ m:parameters()[1] }, { lr = 1 })
    assert.matches("which this optimiser does not hold", errmsg(ckpt.restore, path, { model = m, optimizer = small }))
    local bare = dir .. "/bare.safetensors"
    ckpt.save(bare, { model = m })
    assert.matches("holds no optimiser state", errmsg(ckpt.restore, bare, { model = m, optimizer = opt }))
    assert.matches("unknown option 'modle'", errmsg(ckpt.restore, path, { modle = m }))
    assert.matches("unknown option 'best'", errmsg(ckpt.save, path, { model = m, best = 1 }))
    assert.matches("epoch must be an integer", errmsg(ckpt.save, path, { model = m, epoch = 1.5 }))
  end)
end)
