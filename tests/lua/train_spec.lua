-- The training loop end to end on small real subsets of Fashion-MNIST (written as IDX
-- files from /usr/share/datasets/fashion-mnist): the loss of a small shared-basis
-- ResNet falls, `lunet eval` reproduces the accuracy training printed, the metrics
-- lines parse and the curves are well-formed SVG; resuming (at an epoch boundary and
-- after a Ctrl-C inside an epoch) gives the weights of a straight run; a NaN loss stops
-- the run and keeps the last good checkpoint.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")
local lunet = require "lunet"

local MODEL = "ResNet14_DoubleShared" -- the demo's (with shared_rank 8, stem_stride 2)
local FASHION = "/usr/share/datasets/fashion-mnist"

local function have_fashion()
  local f = io.open(FASHION .. "/t10k-labels-idx1-ubyte.gz", "rb") or io.open(FASHION .. "/t10k-labels-idx1-ubyte", "rb")
  if f then f:close() end
  return f ~= nil
end

local function tmpdir()
  local name = os.tmpname()
  os.remove(name)
  assert(os.execute("mkdir -p " .. H.quote(name)))
  return name
end

local function rm_rf(dir) os.execute("rm -rf " .. H.quote(dir)) end

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- Writes the first n_train training and n_test test images of Fashion-MNIST as plain
-- IDX files in dir (the values round-trip exactly: bytes / 255 and back).
local function write_subset(dir, n_train, n_test)
  local function be32(n) return string.char((n >> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255) end
  for _, split in ipairs { "train", "t10k" } do
    local n = split == "train" and n_train or n_test
    local ds = lunet.data.fashion_mnist { train = split == "train", mean = 0, std = 1 }
    local img, lab = { be32(0x803), be32(n), be32(28), be32(28) }, { be32(0x801), be32(n) }
    for i = 1, n do
      local x, y = ds:get(i)
      local bytes = {}
      for j, v in ipairs(x:reshape(784):totable()) do bytes[j] = string.char(math.floor(v * 255 + 0.5)) end
      img[#img + 1] = table.concat(bytes)
      lab[#lab + 1] = string.char(y - 1)
    end
    for kind, parts in pairs { ["images-idx3-ubyte"] = img, ["labels-idx1-ubyte"] = lab } do
      local f = assert(io.open(("%s/%s-%s"):format(dir, split, kind), "wb"))
      f:write(table.concat(parts))
      f:close()
    end
  end
end

local json_decode = H.json_decode

-- Checks that text is well-formed XML: one root, every tag closed in order, quoted
-- attributes. Returns the root element's name.
local function check_xml(text)
  local body = text:gsub("^<%?xml[^>]*%?>", "")
  local stack, root = {}, nil
  for tag in body:gmatch("<([^>]*)>") do
    if tag:sub(1, 1) == "/" then
      local name = tag:match("^/([%w:_-]+)%s*$")
      assert(name and stack[#stack] == name, "mismatched closing tag </" .. tostring(name) .. ">")
      stack[#stack] = nil
    else
      local name, attrs, selfclose = tag:match("^([%w:_-]+)(.-)(/?)$")
      assert(name, "bad tag <" .. tag .. ">")
      local rest = attrs:gsub('%s+[%w:_-]+="[^"<]*"', "")
      assert(rest:match("^%s*$"), "bad attributes in <" .. tag .. ">")
      if not root then root = name end
      assert(#stack > 0 or name == root, "a second root element <" .. name .. ">")
      if selfclose == "" then stack[#stack + 1] = name end
    end
  end
  assert(#stack == 0, "unclosed <" .. tostring(stack[#stack]) .. ">")
  assert(not body:gsub("<[^>]*>", ""):find("[<>]"), "stray angle bracket")
  return root
end

-- The flat values of every parameter and buffer of a checkpoint, by name.
local function weights(path)
  local ck = require("lunet.checkpoint").load(path)
  local out = {}
  for name, t in pairs(ck.tensors) do out[name] = t:to("f64"):reshape(-1):totable() end
  return out, ck
end

local function assert_same_weights(a, b)
  local wa, wb = weights(a), weights(b)
  local n = 0
  for name, va in pairs(wa) do
    local vb = assert(wb[name], "missing " .. name)
    assert.are.equal(#va, #vb)
    for i = 1, #va do
      if va[i] ~= vb[i] then
        error(("%s[%d]: %.9g vs %.9g"):format(name, i, va[i], vb[i]), 2)
      end
    end
    n = n + 1
  end
  assert.is_true(n > 10)
end

local function describe_if(cond, name, fn)
  if cond then describe(name, fn) else pending(name .. " (no Fashion-MNIST at " .. FASHION .. ")") end
end

describe_if(have_fashion(), "lunet train on Fashion-MNIST subsets", function()
  local data2k, data_small, work
  setup(function()
    data2k, data_small, work = tmpdir(), tmpdir(), tmpdir()
    write_subset(data2k, 2000, 1000)
    write_subset(data_small, 192, 128)
  end)
  teardown(function()
    rm_rf(data2k); rm_rf(data_small); rm_rf(work)
  end)

  -- A configuration on the small subset: 3 steps of 64 per epoch.
  local function small(out, extra)
    local cfg = { model = MODEL, shared_rank = 8, stem_stride = 2, dataset = "fashion-mnist", dataset_path = data_small, out = out,
                  batch_size = 64, epochs = 2, lr = 0.05, workers = 1, progress = "none",
                  save_every = 1 }
    for k, v in pairs(extra or {}) do cfg[k] = v end
    return cfg
  end

  it("the loss falls; lunet eval reproduces the printed accuracy; metrics and curves are valid", function()
    local out = work .. "/main"
    local stdout, err, code = H.lunet(("train --model=%s --shared_rank=8 --stem_stride=2 --dataset=fashion-mnist --dataset_path=%s "
      .. "--epochs=2 --batch_size=64 --lr=0.1 --warmup_epochs=1 --out=%s --progress=lines --workers=1"):format(
      MODEL, H.quote(data2k), H.quote(out)))
    assert.are.equal(0, code, err)
    -- the resolved configuration is printed first
    assert.matches("configuration:\n", stdout, 1, true)
    assert.matches("\n  lambdaR%s+10\n", stdout)
    assert.matches("done: best test top%-1 accuracy", stdout)
    -- metrics.jsonl: every line parses; a start line, one per epoch, a done line
    local records, events = {}, {}
    for line in io.lines(out .. "/metrics.jsonl") do
      local r = json_decode(line)
      if r.event ~= "step" then events[#events + 1] = r.event end -- periodic ones: timing-dependent
      if r.event == "epoch" then records[#records + 1] = r end
    end
    assert.are.same({ "start", "epoch", "epoch", "done" }, events)
    assert.are.equal(2, #records)
    local r1, r2 = records[1], records[2]
    assert.is_true(r2.train_loss < r1.train_loss, ("train loss %g -> %g"):format(r1.train_loss, r2.train_loss))
    assert.is_true(r1.train_loss < 2.2, "first epoch loss " .. r1.train_loss) -- below ln(10) = 2.30
    assert.is_true(r2.test_acc1 > 50, "test accuracy " .. r2.test_acc1)
    assert.is_true(r2.train_reg >= 0)
    assert.is_truthy(next(r2.reg_groups))
    for _, k in ipairs { "images_per_s", "data_wait_s", "train_acc1", "train_acc5", "test_acc5", "lr" } do
      assert.is_number(r2[k], k)
    end
    -- the printed epoch line and lunet eval agree on the test accuracy, to the count
    local printed = stdout:match("epoch 2/2  loss [^\n]* test top1 (%d+%.%d+)%%")
    assert.are.equal(("%.2f"):format(r2.test_acc1), printed)
    local eval_out, eval_err, eval_code = H.lunet(("eval --pretrained=%s --batch_size=64"):format(
      H.quote(out .. "/last.safetensors")))
    assert.are.equal(0, eval_code, eval_err)
    local wrong, count = eval_out:match("top%-1 error %d+%.%d+%% %((%d+)/(%d+)%)")
    assert.are.equal(1000, tonumber(count))
    assert.are.equal(r2.test_count - r2.test_correct1, tonumber(wrong))
    assert.matches(("top-1 error %.2f%%"):format(100 - r2.test_acc1), eval_out, 1, true)
    wrong = eval_out:match("top%-5 error %d+%.%d+%% %((%d+)/1000%)")
    assert.are.equal(r2.test_count - r2.test_correct5, tonumber(wrong))
    -- the same with the model and the path named, as the paper's command line does
    local eval2 = H.lunet(("eval --model=%s --shared_rank=8 --stem_stride=2 --dataset=fashion-mnist --pretrained=%s --dataset_path=%s --batch_size=64"):format(
      MODEL, H.quote(out .. "/last.safetensors"), H.quote(data2k)))
    assert.matches(("top-1 error %.2f%%"):format(100 - r2.test_acc1), eval2, 1, true)
    -- the curves: well-formed SVG with the four panels
    local svg = slurp(out .. "/curves.svg")
    assert.are.equal("svg", check_xml(svg))
    for _, title in ipairs { ">loss<", ">learning rate<", ">accuracy<", ">orthogonality regulariser<" } do
      assert.matches(title, svg, 1, true)
    end
    assert.matches("<polyline", svg, 1, true)
    -- checkpoints: best and last
    local _, ck = weights(out .. "/best.safetensors")
    assert.are.equal(MODEL, ck.config.model)
  end)

  it("2 epochs straight == 1 epoch + resume + 1 epoch, and == a Ctrl-C inside epoch 2 + resume", function()
    -- a schedule that does not depend on the number of epochs (cosine does), as the paper's
    local step = { schedule = "multistep", milestones = { 1 }, gamma = 0.5 }
    local function with(t) for k, v in pairs(step) do t[k] = v end return t end
    local a = lunet.train(small(work .. "/straight", with {}))
    assert.are.equal("done", a.status)
    local b1 = lunet.train(small(work .. "/split", with { epochs = 1 }))
    assert.are.equal("done", b1.status)
    local b2 = lunet.train(small(work .. "/split", with { resume = true }))
    assert.are.equal("done", b2.status)
    assert_same_weights(work .. "/straight/last.safetensors", work .. "/split/last.safetensors")
    assert.are.equal(a.last.train_loss, b2.last.train_loss)
    assert.are.equal(a.last.test_correct1, b2.last.test_correct1)

    -- a real SIGINT to this process after step 2 of epoch 2
    local pid = slurp("/proc/self/stat"):match("^(%d+)")
    local c1 = lunet.train(small(work .. "/interrupted", with {}), {
      on_step = function(epoch, step)
        if epoch == 2 and step == 2 then
          io.popen("kill -INT " .. pid):close() -- not os.execute: system() ignores SIGINT meanwhile
          local t0 = lunet.core.wall_clock()
          while lunet.core.wall_clock() - t0 < 0.05 do end
        end
      end,
    })
    assert.are.same({ "interrupted", 1, 2 }, { c1.status, c1.epoch, c1.step })
    local c2 = lunet.train(small(work .. "/interrupted", with { resume = work .. "/interrupted/last.safetensors" }))
    assert.are.equal("done", c2.status)
    assert_same_weights(work .. "/straight/last.safetensors", work .. "/interrupted/last.safetensors")
    assert.are.equal(a.last.train_loss, c2.last.train_loss)
    assert.are.equal(a.last.train_acc1, c2.last.train_acc1)
    assert.are.same(a.history.steps, c2.history.steps)
  end)

  it("Ctrl-C on the command line saves a resumable checkpoint and exits 130", function()
    local out = work .. "/cli_int"
    os.execute("mkdir -p " .. H.quote(out))
    -- start a long run, wait for its first epoch, then send SIGINT as Ctrl-C does
    local script = ("%s train --model=%s --shared_rank=8 --stem_stride=2 --dataset=fashion-mnist "
      .. "--dataset_path=%s --epochs=500 --batch_size=32 --out=%s --progress=lines --workers=1 & "
      .. "pid=$!; for i in $(seq 1 1200); do grep -qs '\"event\":\"epoch\"' %s && break; sleep 0.05; done; "
      .. "kill -INT $pid; wait $pid"):format(H.quote(H.exe), MODEL, H.quote(data_small), H.quote(out),
                                             H.quote(out .. "/metrics.jsonl"))
    local stdout, err, code = H.run("sh -c " .. H.quote(script))
    assert.are.equal(130, code, err)
    assert.matches("interrupted at epoch %d+, step %d+: resumable checkpoint .*last%.safetensors", stdout)
    local _, ck = weights(out .. "/last.safetensors")
    local done = math.tointeger(ck.epoch)
    -- resume from the checkpoint alone (its configuration), one more epoch
    stdout, err, code = H.lunet(("train --resume=%s --epochs=%d --progress=lines"):format(
      H.quote(out .. "/last.safetensors"), done + 1))
    assert.are.equal(0, code, err)
    assert.matches("resuming from", stdout, 1, true)
    _, ck = weights(out .. "/last.safetensors")
    assert.are.equal(done + 1, math.tointeger(ck.epoch))
  end)

  it("a NaN loss stops the run naming epoch and step, keeping the last good checkpoint", function()
    local out = work .. "/nan"
    local cfg = small(out, { epochs = 3, schedule = function(epoch) return epoch == 1 and 0.05 or 1e30 end })
    local ok, err = pcall(lunet.train, cfg)
    assert.is_false(ok)
    assert.are.equal("diverged", err.kind)
    assert.are.equal(2, err.epoch)
    assert.matches("lunet.train: the loss is %-?nan at epoch 2, step %d of 3 %(lr 1e%+30%); training stopped, "
                   .. "the last good checkpoint is .*last%.safetensors %(epoch 1%)", tostring(err))
    local _, ck = weights(out .. "/last.safetensors")
    assert.are.equal(1, math.tointeger(ck.epoch))
    local events = {}
    for line in io.lines(out .. "/metrics.jsonl") do
      local e = json_decode(line).event
      if e ~= "step" then events[#events + 1] = e end
    end
    assert.are.same({ "start", "epoch", "diverged" }, events)
    -- the kept checkpoint resumes (with a sane rate)
    local r = lunet.train(small(out, { epochs = 2, resume = true }))
    assert.are.equal("done", r.status)
    assert.is_true(r.last.train_loss == r.last.train_loss)
  end)

  it("lunet demo trains, then prints the accuracy, the parameter counts and where the outputs are", function()
    local out = work .. "/demo"
    local stdout, err, code = H.lunet(("demo --dataset_path=%s --epochs=1 --warmup_epochs=0 --out=%s --progress=none"):format(
      H.quote(data_small), H.quote(out)))
    assert.are.equal(0, code, err)
    assert.matches("^lunet demo: a shared%-basis ResNet %(ResNet14_DoubleShared%) learns Fashion%-MNIST", stdout)
    local acc, correct, count = stdout:match("\ntest accuracy (%d+%.%d+)%% %((%d+)/(%d+)%) after 1 epoch in %d+:%d%d\n")
    assert.is_truthy(acc, stdout)
    assert.are.equal(128, tonumber(count))
    assert.are.equal(("%.2f"):format(100 * tonumber(correct) / 128), acc)
    -- the shared model against the same network without sharing
    local shared, plain = stdout:match("parameters: ([%d,]+) for ResNet14_DoubleShared, ([%d,]+) for the unshared ResNet14")
    local function n(s) return tonumber((s:gsub(",", ""))) end
    local function count_params(name, opts)
      local c = 0
      for _, p in ipairs(lunet.models.build(name, opts):parameters()) do c = c + p:numel() end
      return c
    end
    assert.are.same({ count_params(MODEL, { dataset = "fashion-mnist", shared_rank = 8 }),
                      count_params("ResNet14", { dataset = "fashion-mnist" }) }, { n(shared), n(plain) })
    assert.are.same({ 136182, 172218 }, { n(shared), n(plain) })
    for _, what in ipairs { "checkpoint", "log", "plot" } do
      local path = stdout:match("\n" .. what .. ": +(%S+)")
      assert.is_truthy(path, what)
      assert.is_truthy(io.open(path, "rb"), path)
    end
  end)

  it("--pretrained loads weights only and --starting_epoch starts the schedule there", function()
    local src = work .. "/straight/best.safetensors"
    local seen = {}
    local r = lunet.train(small(work .. "/pre", { pretrained = src, starting_epoch = 2, epochs = 2, log_every = 0,
                                                  schedule = "multistep", milestones = { 1 }, gamma = 0.5 }),
                          { on_step = function(epoch) seen[#seen + 1] = epoch end })
    assert.are.equal("done", r.status)
    assert.are.same({ 2, 2, 2 }, seen)
    assert.are.equal(1, #r.history.epochs)
    assert.are.equal(0.025, r.history.epochs[1].lr)
    -- log_every = 0: a "step" line in metrics.jsonl after every step
    local steps = {}
    for line in io.lines(work .. "/pre/metrics.jsonl") do
      local e = json_decode(line)
      if e.event == "step" then steps[#steps + 1] = { e.epoch, e.step, e.lr } end
      assert.is_number(e.time)
    end
    assert.are.same({ { 2, 1, 0.025 }, { 2, 2, 0.025 }, { 2, 3, 0.025 } }, steps)
  end)
end)
