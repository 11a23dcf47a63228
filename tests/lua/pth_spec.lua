-- lunet.pth: PyTorch checkpoints (tests/fixtures/pth, made by PyTorch 1.13 with
-- make_pth_fixtures.py) read into Lua values; state dicts found, flattened and
-- stripped of "module."; mapped onto zoo models whose logits then equal PyTorch's on
-- the fixtures' input; shared-basis copies verified; shape mismatches and
-- missing/unexpected keys reported; values and models written back (the authors' key
-- order of ../shared/reference/authors-keys); hostile files refused; the `lunet
-- import` and `lunet export` commands, `lunet eval` and `lunet train` given a .pth.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")
local lunet = require "lunet"
local pth = require "lunet.pth"
local nn = lunet.nn

local FIX = "tests/fixtures/pth/"
local KEYS = "../shared/reference/authors-keys/"

local function tmpname(ext)
  local n = os.tmpname()
  os.remove(n)
  return n .. (ext or ".pth")
end

local function max_abs_diff(a, b)
  local m = 0
  local fa, fb = H.flat(a:totable()), H.flat(b:totable())
  for i = 1, #fa do m = math.max(m, math.abs(fa[i] - fb[i])) end
  return m
end

local function authors_keys(tsv)
  local keys = {}
  for line in io.lines(KEYS .. tsv) do
    if line ~= "" then keys[#keys + 1] = line:match("^([^\t]+)") end
  end
  return keys
end

describe("pth.load", function()
  it("reads the zip format into Lua values", function()
    local v, format = pth.load(FIX .. "small_zip.pth")
    assert.are.equal("zip", format)
    assert.are.same({ "net_state_dict", "optimizer_state_dict", "acc", "epoch", "extra" }, pth.keys(v))
    assert.are.equal(7, v.epoch)
    assert.are.equal(0.75, v.acc:item()) -- saved from cuda:0, loaded on the host
    assert.are.equal("cpu", v.acc:device())
    local nested = v.extra.nested
    assert.are.same({ 1, 2.5 }, { nested[1], nested[2] })
    assert.are.equal(pth.None, nested[3])
    assert.is_true(nested[4])
    assert.are.equal("text", nested[5])
    assert.are.equal(pth.tuple_mt, getmetatable(nested[6]))
    assert.are.equal(2 ^ 40, v.extra.big)
    assert.are.equal("integer", math.type(v.extra.big))
    local sd = v.net_state_dict
    assert.are.equal("module.conv.weight", pth.keys(sd)[1])
    assert.is_true(getmetatable(sd).pth_ordered)
    H.assert_close({ { 0, 4, 8 }, { 1, 5, 9 }, { 2, 6, 10 }, { 3, 7, 11 } }, sd["module.t_view"], 0)
    H.assert_close({ 0.5, -1.25, 65504, 2 ^ -24, 0, 3.140625 }, sd["module.half"], 0)
    assert.are.equal("f32", sd["module.half"]:dtype())
    assert.are.equal("i64", sd["module.count"]:dtype())
    assert.are.equal(123456789012, sd["module.count"]:item())
    assert.is_true(rawequal(sd["module.shared_a"], sd["module.shared_b"]))
    assert.are.same({ 0, 3 }, sd["module.empty"]:shape())
    assert.are.equal(0.1, v.optimizer_state_dict.param_groups[1].lr)
    assert.is_true(lunet.is_tensor(v.optimizer_state_dict.state[0].momentum_buffer))
  end)

  it("reads the legacy, deflated and zip64 forms to the same tensors", function()
    local ref = pth.load(FIX .. "small_zip.pth").net_state_dict
    for _, f in ipairs { "small_legacy.pth", "small_deflate.pth", "small_zip64.pth" } do
      local v, format = pth.load(FIX .. f)
      local sd = v.net_state_dict or v
      assert.are.equal(f == "small_legacy.pth" and "legacy" or "zip", format)
      for _, k in ipairs(pth.keys(ref)) do
        assert.is_true(ref[k]:equal(sd[k]), f .. ": " .. k)
      end
    end
  end)

  it("refuses hostile or foreign files with a message", function()
    local cases = {
      { "evil_system.pth", "global 'posix.system' is not allowed" },
      { "evil_legacy.pth", "global '__builtin__.eval' is not allowed" },
      { "short_storage.pth", "but its record holds" },
      { "not_pth.bin", "not a PyTorch checkpoint" },
      { "no_such.pth", "cannot open" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(pth.load, FIX .. c[1])
      assert.is_false(ok, c[1])
      assert.matches(c[2], err, 1, true)
    end
  end)
end)

describe("pth.read_state_dict", function()
  it("finds the state dict, strips module. and keeps epoch and accuracy", function()
    local sd = pth.read_state_dict(FIX .. "small_zip.pth")
    assert.are.equal("net_state_dict", sd.container)
    assert.are.equal("module.", sd.prefix)
    assert.are.equal(16, #sd.order)
    assert.are.equal("conv.weight", sd.order[1])
    assert.are.equal(7, sd.epoch)
    assert.are.equal(0.75, sd.acc)
    local bare = pth.read_state_dict(FIX .. "small_legacy.pth")
    assert.are.equal("", bare.container)
    assert.are.equal("module.", bare.prefix)
    assert.are.same(sd.order, bare.order)
  end)

  it("descends nested wrappers and flattens nested dicts", function()
    local path = tmpname()
    local w = lunet.ones { 2 }
    pth.save(path, { model = { state_dict = { conv = { weight = w, bias = lunet.zeros { 1 } } } },
                     epoch = 3 })
    local sd = pth.read_state_dict(path)
    os.remove(path)
    assert.are.equal("model.state_dict", sd.container)
    assert.are.same({ "conv.bias", "conv.weight" }, sd.order)
    assert.are.equal("", sd.prefix)
    assert.are.equal(3, sd.epoch)
    local ok, err = pcall(pth.read_state_dict, { epoch = 1, lr = 0.1 })
    assert.is_false(ok)
    assert.matches("no state dict found", err)
  end)
end)

describe("pth.load_into", function()
  local Tiny = nn.Module:extend("Tiny")
  function Tiny:__init(out)
    nn.Module.__init(self)
    self.conv = nn.Conv2d(3, out, 3)
  end

  it("loads matching keys, reports the rest, and is strict by default", function()
    local sd = pth.read_state_dict(FIX .. "small_zip.pth")
    local ok, err = pcall(pth.load_into, Tiny(2), sd)
    assert.is_false(ok)
    assert.matches("does not fit Tiny %(unexpected: module.bf16, module.byte", err)
    local m = Tiny(2)
    local report = pth.load_into(m, sd, { strict = false })
    assert.are.equal(2, report.loaded)
    assert.are.equal(14, #report.unexpected)
    assert.are.same({}, report.missing)
    H.assert_close({ 0.5, -0.25 }, m.conv.bias, 0)
    assert.is_true(m.conv.weight:requires_grad()) -- the model's own tensor, filled in place
  end)

  it("refuses a shape mismatch naming the key and both shapes", function()
    local ok, err = pcall(pth.load_into, Tiny(4), pth.read_state_dict(FIX .. "small_zip.pth"), { strict = false })
    assert.is_false(ok)
    assert.matches("shape mismatch for 'module.conv.weight': the checkpoint has [2, 3, 3, 3], the model (conv.weight) [4, 3, 3, 3]",
                   err, 1, true)
  end)

  it("verifies the copies of a shared basis and loads them into the one tensor", function()
    local Net = nn.Module:extend("Net")
    function Net:__init()
      nn.Module.__init(self)
      self.basis = nn.FilterBasis(2, 3, 1)
      self.block = nn.Sequential(self.basis)
    end
    local w = lunet.randn { 3, 2, 1, 1 }
    local net = Net()
    local report = pth.load_into(net, { ["basis.weight"] = w, ["block.0.weight"] = w:clone() })
    assert.are.equal(1, report.loaded)
    assert.are.equal(1, report.copies_checked)
    assert.is_true(net.basis.weight:equal(w))
    assert.is_true(rawequal(net.basis.weight, net.block[1].weight))
    local ok, err = pcall(pth.load_into, Net(), { ["basis.weight"] = w, ["block.0.weight"] = w * 2 })
    assert.is_false(ok)
    assert.matches("'basis.weight' and 'block.0.weight' are one shared tensor in the model but hold different values", err, 1, true)
    -- one copy alone is enough
    report = pth.load_into(Net(), { ["block.0.weight"] = w })
    assert.are.equal(1, report.loaded)
  end)
end)

describe("the authors' models", function()
  for _, c in ipairs {
    { "ResNet34_DoubleShared", "resnet34ds.pth", 394, 24, "ilsvrc_ResNet34_DoubleShared_S48U1.tsv" },
    { "MobileNetV2_SharedDouble", "mnv2sd_legacy.pth", 339, 18, "ilsvrc_MobileNetV2_SharedDouble.tsv" },
  } do
    local name, file, nkeys, ncopies, tsv = table.unpack(c)
    it(name .. ": PyTorch's logits on the fixture's input, and back to the authors' layout", function()
      local sd = pth.read_state_dict(FIX .. file)
      assert.are.equal(nkeys, #sd.order)
      assert.are.same(authors_keys(tsv), sd.order)
      local opts = pth.infer_options(name, sd.tensors)
      assert.are.equal(10, opts.classes)
      assert.are.equal(3, opts.in_channels)
      local model, report = pth.build_model(name, sd)
      assert.are.equal(ncopies, report.copies_checked)
      local root = pth.load(FIX .. file)
      local y = lunet.no_grad(function() return model(root.test_input) end)
      assert.is_true(max_abs_diff(y, root.test_logits) < 2e-4)

      local path = tmpname()
      assert.are.equal(nkeys, pth.export(path, model, { epoch = 5, acc = 0.5, prefix = "module." }))
      local back = pth.load(path)
      os.remove(path)
      assert.are.same({ "net_state_dict", "acc", "epoch" }, pth.keys(back))
      assert.are.equal(5, back.epoch)
      local keys = pth.keys(back.net_state_dict)
      for i, k in ipairs(authors_keys(tsv)) do assert.are.equal("module." .. k, keys[i]) end
      local again = pth.read_state_dict(back)
      for _, k in ipairs(sd.order) do
        assert.is_true(sd.tensors[k]:equal(again.tensors[k]), k)
      end
    end)
  end
end)

describe("pth.save", function()
  it("round-trips plain values", function()
    local path = tmpname()
    local t = lunet.tensor { { 1, 2 }, { 3, 4 } }
    local value = pth.dict({ "b", "a" }, {
      b = { 1, 2.5, "x", true, pth.None, setmetatable({ 1, 2 }, pth.tuple_mt) },
      a = { t = t, tt = t:transpose(1, 2), big = 2 ^ 40 // 1, neg = -7, s = "größe" },
    })
    pth.save(path, value)
    local back = pth.load(path)
    os.remove(path)
    assert.are.same({ "b", "a" }, pth.keys(back))
    assert.are.same({ 1, 2.5, "x", true, pth.None }, { table.unpack(back.b, 1, 5) })
    assert.are.equal(pth.tuple_mt, getmetatable(back.b[6]))
    assert.are.same({ "big", "neg", "s", "t", "tt" }, pth.keys(back.a))
    assert.are.equal(2 ^ 40 // 1, back.a.big)
    assert.are.equal("größe", back.a.s)
    H.assert_close({ { 1, 3 }, { 2, 4 } }, back.a.tt, 0)
  end)

  it("refuses values it cannot write", function()
    local path = tmpname()
    local cyc = {}
    cyc.self = cyc
    for _, c in ipairs {
      { { f = print }, "cannot save a function" },
      { cyc, "nested deeper than" },
      { { [true] = 1 }, "a dict key is a boolean" },
      { { s = "\xff" }, "not valid UTF-8" },
    } do
      local ok, err = pcall(pth.save, path, c[1])
      assert.is_false(ok)
      assert.matches(c[2], err, 1, true)
    end
    assert.is_nil(io.open(path))
  end)
end)

describe("lunet import / export", function()
  it("imports a PyTorch checkpoint and exports it back", function()
    local ck, back = tmpname(".lunet"), tmpname()
    local out, err, code = H.lunet(("import %s --model=ResNet34_DoubleShared --out=%s"):format(
      FIX .. "resnet34ds.pth", H.quote(ck)))
    assert.are.equal(0, code, err)
    assert.matches("394 tensors under 'net_state_dict', prefix 'module.' removed", out, 1, true)
    assert.matches("loaded 370 tensors into ResNet34_DoubleShared (S48U1, 10 classes); 24 shared-basis copies verified identical",
                   out, 1, true)
    out, err, code = H.lunet(("export %s --format=pth --out=%s --wrap=none"):format(H.quote(ck), H.quote(back)))
    assert.are.equal(0, code, err)
    assert.matches("394 keys of ResNet34_DoubleShared", out, 1, true)
    local sd = pth.read_state_dict(back)
    local ref = pth.read_state_dict(FIX .. "resnet34ds.pth")
    assert.are.equal("", sd.container)
    assert.are.same(ref.order, sd.order)
    for _, k in ipairs(ref.order) do assert.is_true(ref.tensors[k]:equal(sd.tensors[k]), k) end
    os.remove(ck)
    os.remove(back)
  end)

  it("evaluates a .pth directly, as its imported checkpoint, and fine-tunes from it", function()
    local ck = tmpname(".lunet")
    local _, err, code = H.lunet(("import %s --model=ResNet34_DoubleShared --out=%s"):format(
      FIX .. "resnet34ds.pth", H.quote(ck)))
    assert.are.equal(0, code, err)
    local data = "--dataset=cifar10 --dataset_path=tests/fixtures"
    local direct, err1, code1 = H.lunet(("eval --model=ResNet34_DoubleShared --pretrained=%s %s"):format(
      FIX .. "resnet34ds.pth", data))
    assert.are.equal(0, code1, err1)
    assert.matches("24 shared-basis copies verified identical", direct, 1, true)
    local imported, err2, code2 = H.lunet(("eval --pretrained=%s %s"):format(H.quote(ck), data))
    assert.are.equal(0, code2, err2)
    os.remove(ck)
    local function errors(out) return out:match("(top%-1 error .-\ntop%-5 error [^\n]*)") end
    assert.is_not_nil(errors(direct))
    assert.are.equal(errors(direct), errors(imported))

    local out = tmpname("")
    local _, err3, code3 = H.lunet(("train --model=ResNet34_DoubleShared %s --pretrained=%s --epochs=1 "
      .. "--batch_size=20 --lr=0 --progress=none --out=%s"):format(data, FIX .. "resnet34ds.pth", H.quote(out)))
    assert.are.equal(0, code3, err3)
    local trained = lunet.checkpoint.load(out .. "/last.safetensors").tensors
    os.execute("rm -rf " .. H.quote(out))
    local ref = pth.read_state_dict(FIX .. "resnet34ds.pth").tensors
    for _, k in ipairs { "conv1.weight", "shared_basis_4_2.weight", "layer4.2.coeff_conv2.weight", "fc.bias" } do
      assert.is_true(ref[k]:equal(trained[k]), k) -- lr 0: the weights stay the .pth's
    end
  end)

  it("explains bad usage (status 2) and failures (status 1)", function()
    local cases = {
      { "import " .. FIX .. "small_zip.pth --out=x", 2, "missing '--model=NAME'" },
      { "import --model=ResNet34 --out=x", 2, "expected one .pth file" },
      { "import " .. FIX .. "small_zip.pth --model=ResNet34 --out=x --bogus=1", 2, "unknown option '--bogus'" },
      { "import " .. FIX .. "small_zip.pth --model=ResNet34 --out=x --classes=0", 2, "must be a positive integer" },
      { "export x --out=y", 2, "missing '--format=pth'" },
      { "export x --format=onnx --out=y", 2, "unknown format 'onnx'" },
      { "import " .. FIX .. "evil_system.pth --model=ResNet34 --out=x", 1, "global 'posix.system' is not allowed" },
      { "import " .. FIX .. "small_zip.pth --model=ResNet34 --out=x", 1, "lunet import: pth: tests/fixtures/pth/small_zip.pth: the checkpoint does not fit ResNet34 (missing: conv1.weight, bn1.weight" },
      { "import " .. FIX .. "resnet34ds.pth --model=NoSuchNet --out=x", 1, "unknown model 'NoSuchNet'" },
    }
    for _, c in ipairs(cases) do
      local out, err, code = H.lunet(c[1])
      assert.are.equal(c[2], code, c[1] .. ": " .. err)
      assert.are.equal("", out)
      assert.matches(c[3], err, 1, true)
    end
    assert.is_nil(io.open("x"))
    local out, _, code = H.lunet("import --help")
    assert.are.equal(0, code)
    assert.matches("usage: lunet import", out, 1, true)
  end)
end)
