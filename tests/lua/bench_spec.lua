-- lunet.bench and `lunet bench`: the training-throughput benchmark on synthetic data,
-- on the CPU with a small CIFAR ResNet (batch 2, a few steps), its text and JSON
-- output, and its errors for bad flags (status 2, the flag named, no traceback).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")
local lunet = require "lunet"
local bench = require "lunet.bench"

local function finite(x) return type(x) == "number" and x == x and x ~= math.huge and x ~= -math.huge end

local SMALL = "--model=ResNet20 --batch_size=2 --image_size=32 --steps=2 --warmup=1"

describe("lunet.bench.run", function()
  it("times training steps of ResNet20 on the CPU", function()
    local threads = lunet.get_num_threads()
    local r = bench.run { model = "ResNet20", batch_size = 2, image_size = 32, steps = 2, warmup = 1,
                          threads = 1 }
    assert.are.equal(threads, lunet.get_num_threads()) -- restored
    assert.are.equal("ResNet20", r.model)
    assert.are.equal("cpu", r.device)
    assert.are.equal(2, r.batch_size)
    assert.are.equal(32, r.image_size)
    assert.are.equal(10, r.classes)
    assert.are.equal(269722, r.params)
    assert.are.equal(0, r.lambdaR) -- no shared basis
    assert.are.equal(1, r.threads)
    assert.are.equal(2, r.steps)
    assert.are.equal(1, r.warmup)
    assert.is_true(r.images_per_s > 0 and finite(r.images_per_s))
    assert.is_true(r.ms_per_step > 0 and finite(r.ms_per_step))
    assert.is_true(math.abs(r.images_per_s * r.ms_per_step / 1000 - 2) < 1e-9)
    assert.is_true(finite(r.loss) and r.loss >= 0)
    assert.is_nil(r.peak_device_bytes)
  end)

  it("defaults lambdaR to 10, the ranks and the image size to the model's", function()
    local o = bench.resolve { model = "ResNet20_DoubleShared" }
    assert.are.same({ 256, "cpu", 20, 5, 32, 10, 10, 0 },
                    { o.batch_size, o.device, o.steps, o.warmup, o.image_size, o.classes, o.lambdaR, o.threads })
    o = bench.resolve { model = "MobileNetV2" }
    assert.are.same({ 224, 1000, 0 }, { o.image_size, o.classes, o.lambdaR })
    local r = bench.run { model = "ResNet14_DoubleShared", shared_rank = 4, unique_rank = 1, batch_size = 2,
                          image_size = 8, steps = 1, warmup = 0, classes = 3 }
    assert.are.same({ 4, 1, 10, 3, 8 }, { r.shared_rank, r.unique_rank, r.lambdaR, r.classes, r.image_size })
    assert.is_true(finite(r.loss) and r.images_per_s > 0)
  end)

  it("rejects bad options with a message naming the flag", function()
    local cases = {
      { { model = "NoSuchNet" }, "unknown model 'NoSuchNet' (--model); valid models: ResNet18" },
      { { batch_size = 2 }, "missing '--model=NAME'" },
      { { model = "ResNet20", steps = 0 }, "'--steps' must be at least 1, got 0" },
      { { model = "ResNet20", batch_size = 0 }, "'--batch_size' must be at least 1, got 0" },
      { { model = "ResNet20", warmup = -1 }, "'--warmup' must not be negative, got -1" },
      { { model = "ResNet20", steps = 1.5 }, "'--steps' must be an integer, got 1.5" },
      { { model = "ResNet20", steps = "3" }, "'--steps' must be an integer, got \"3\"" },
      { { model = "ResNet20", lambdaR = 0 / 0 }, "'--lambdaR' must be a finite number" },
      { { model = "ResNet20", shared_rank = 4 }, "'--shared_rank' is given but ResNet20 has no ranks" },
      { { model = "ResNet20", device = "gpu" }, "'--device' must be cpu, cuda or cuda:N, got \"gpu\"" },
      { { model = "ResNet20", epochs = 3 }, "unknown option 'epochs'; valid options: --model, --batch_size" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(bench.run, c[1])
      assert.is_false(ok)
      assert.matches("bench: " .. c[2], err, 1, true)
    end
  end)
end)

describe("lunet bench", function()
  it("prints the setup and the rate line", function()
    local out, err, code = H.lunet("bench " .. SMALL)
    assert.are.equal(0, code, err)
    assert.matches("lunet bench: ResNet20, 269,722 parameters, device cpu (", out, 1, true)
    assert.matches("batch 2, images 3x32x32, 10 classes", out, 1, true)
    assert.matches("\n[%d.]+ img/s, [%d.]+ ms/step over 2 steps %(warm%-up 1%)", out)
  end)

  it("prints one JSON line with --json", function()
    local out, err, code = H.lunet("bench " .. SMALL .. " --json --threads=1")
    assert.are.equal(0, code, err)
    assert.matches("^{[^\n]*}\n$", out)
    local j = H.json_decode(out)
    assert.are.equal("ResNet20", j.model)
    assert.are.equal(269722, j.params)
    assert.are.equal(1, j.threads)
    assert.are.same({ 2, 1, 2, 32 }, { j.steps, j.warmup, j.batch_size, j.image_size })
    assert.is_true(j.images_per_s > 0 and j.ms_per_step > 0 and finite(j.loss))
  end)

  it("lists its flags with --help", function()
    local out, _, code = H.lunet("bench --help")
    assert.are.equal(0, code)
    assert.matches("usage: lunet bench --model=NAME", out, 1, true)
    assert.matches("--image_size", out, 1, true)
    out = H.lunet("--help")
    assert.matches("  bench --model=NAME", out, 1, true)
  end)

  local bad = {
    { "--model=ResNet20 --bogus=1", "unknown flag '--bogus=1'; valid flags: --batch_size, --classes, --cudnn_benchmark, --device" },
    { "--model=NoSuchNet", "unknown model 'NoSuchNet' (--model)" },
    { "--model=ResNet20 --steps=0", "'--steps' must be at least 1, got 0" },
    { "--model=ResNet20 --steps=many", "flag '--steps' must be an integer, got 'many'" },
    { "--model=ResNet20 --batch_size=0", "'--batch_size' must be at least 1, got 0" },
    { "--batch_size=2", "missing '--model=NAME'" },
    { "--model=ResNet20 extra", "unexpected argument 'extra'" },
  }
  if not lunet.cuda.available() then
    bad[#bad + 1] = { "--model=ResNet20 --device=cuda:0", "'--device=cuda:0': this build or machine has no usable CUDA device" }
  end
  for _, case in ipairs(bad) do
    it(("exits with status 2 on '%s'"):format(case[1]), function()
      local out, err, code = H.lunet("bench " .. case[1])
      assert.are.equal(2, code, err)
      assert.are.equal("", out)
      assert.matches("lunet bench: " .. case[2], err, 1, true)
      assert.is_nil(err:find("traceback", 1, true))
    end)
  end

  it("exits with status 1 and the op's message when a step fails", function()
    local out, err, code = H.lunet("bench --model=ResNet18 --batch_size=1 --image_size=4 --steps=1 --warmup=0")
    assert.are.equal(1, code, err)
    assert.are.equal("", out)
    assert.matches("^lunet bench: ", err)
    assert.is_nil(err:find("traceback", 1, true))
    assert.matches("batch_norm2d: expected more than 1 value per channel", err, 1, true)
  end)

  it("exits with status 1 when the last loss is not finite", function()
    local out, err, code = H.lunet("bench --model=ResNet20_DoubleShared --batch_size=2 --image_size=8 "
                                   .. "--steps=3 --warmup=0 --lambdaR=1e30")
    assert.are.equal(1, code, err)
    assert.are.equal("", out)
    assert.matches("^lunet bench: the loss is %-?[infa]+ after 3 steps %(ResNet20_DoubleShared.*diverged", err)
  end)
end)
