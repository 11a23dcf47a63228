-- lunet.data from Lua: datasets (image folder, CIFAR fixture, Fashion-MNIST, synthetic),
-- the loader's iteration with 1-based labels and indices, its statistics and log of
-- skipped files, identical batches whatever the worker count, closing and collecting
-- a loader whose threads are busy, option errors, and the `lunet bench-data` command.
local lunet = require "lunet"
local data = require "lunet.data"
local F = lunet.nn.functional
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")
local fixtures = here .. "../fixtures"

local function sh(cmd) assert(os.execute(cmd), cmd) end

local function copy(src, dst)
  local i = assert(io.open(src, "rb"))
  local o = assert(io.open(dst, "wb"))
  o:write(i:read("a"))
  i:close()
  o:close()
end

-- A temporary image folder from the image fixtures: classes a, b and an empty c;
-- 3 bad files (text, 0-byte, truncated) and some to convert (grayscale, CMYK...).
local tmp = os.tmpname()
os.remove(tmp)
local root, cache = tmp .. "/images", tmp .. "/cache"
sh("mkdir -p " .. H.quote(root .. "/train/a") .. " " .. H.quote(root .. "/train/b") .. " " ..
   H.quote(root .. "/train/c") .. " " .. H.quote(root .. "/val/a"))
local layout = {
  a = { "photo.jpg", "big.jpg", "gray.jpg", "text.JPEG", "empty.JPEG", "prog444.jpg" },
  b = { "cmyk.jpg", "png_named.JPEG", "truncated.jpg", "tall422.jpg" },
}
for cls, files in pairs(layout) do
  for _, f in ipairs(files) do copy(fixtures .. "/image/" .. f, ("%s/train/%s/%s"):format(root, cls, f)) end
end
copy(fixtures .. "/image/photo.jpg", root .. "/val/a/photo.jpg")
local BAD = { ["text.JPEG"] = true, ["empty.JPEG"] = true, ["truncated.jpg"] = true }

local function quiet() end

local function folder(opts)
  opts = opts or {}
  local o = { root = root, cache_dir = cache, size = 32, resize = 40, log = opts.log or quiet }
  for k, v in pairs(opts) do if k ~= "log" then o[k] = v end end
  return data.image_folder(o)
end

-- Every batch of one epoch: images, labels and indices as flat lists.
local function epoch_of(loader, e)
  local out = { x = {}, y = {}, i = {}, sizes = {} }
  for x, y, i in loader:epoch(e) do
    out.sizes[#out.sizes + 1] = x:size(1)
    for _, v in ipairs(H.flat(x:totable())) do out.x[#out.x + 1] = v end
    for _, v in ipairs(y:totable()) do out.y[#out.y + 1] = v end
    for _, v in ipairs(i:totable()) do out.i[#out.i + 1] = v end
  end
  return out
end

describe("lunet.data.image_folder", function()
  it("indexes the ILSVRC layout, classes sorted, the empty one logged, cache reused", function()
    local msgs = {}
    local ds = folder { log = function(m) msgs[#msgs + 1] = m end }
    assert.are.equal(10, #ds)
    assert.are.equal(3, ds.classes)
    assert.are.same({ "a", "b", "c" }, ds.class_names)
    assert.are.same({ 3, 32, 32 }, ds.sample_shape)
    assert.are.equal("image_folder", ds.kind)
    local joined = table.concat(msgs, "\n")
    assert.matches("class 3 'c' has no images", joined)
    local path, hit = folder():index_cache()
    assert.is_true(hit)
    assert.are.equal(cache, path:sub(1, #cache))
  end)

  it("fails clearly on a missing split folder", function()
    local ok, err = pcall(folder, { split = "test" })
    assert.is_false(ok)
    assert.matches("no 'test' folder in '" .. root:gsub("%p", "%%%0") .. "'", err)
  end)

  it("rejects unknown options and transforms", function()
    assert.has_error(function() folder { sise = 3 } end)
    local ok, err = pcall(folder, { transform = "random" })
    assert.is_false(ok)
    assert.matches("transform must be \"train\" or \"eval\"", err)
  end)
end)

describe("lunet.data.loader", function()
  it("rejects an unknown device, and a CUDA one where there is none, by name", function()
    local ds = lunet.data.synthetic { shape = { 1, 4, 4 }, classes = 2, size = 4 }
    local ok, err = pcall(lunet.data.loader, { dataset = ds, device = "tpu" })
    assert.is_false(ok)
    assert.matches("unknown device 'tpu'", tostring(err), 1, true)
    if not lunet.cuda.available() then
      ok, err = pcall(lunet.data.loader, { dataset = ds, device = "cuda:0" })
      assert.is_false(ok)
      assert.matches("loader: device cuda:0", tostring(err), 1, true)
      ok, err = pcall(function() return lunet.zeros { 2 }:pin_memory() end)
      assert.is_false(ok)
      assert.matches("pin_memory", tostring(err), 1, true)
    end
    assert.is_false(lunet.zeros { 2 }:is_pinned())
  end)

  it("yields full batches with 1-based labels and indices; skips, names and counts bad files", function()
    local ds = folder()
    local log = {}
    local loader = data.loader { dataset = ds, batch_size = 4, workers = 2, seed = 3,
                                 log = function(m) log[#log + 1] = m end }
    assert.are.equal(3, #loader)
    local e = epoch_of(loader, 1)
    assert.are.same({ 4, 4, 2 }, e.sizes)
    local seen, converted = {}, 0
    for r = 1, #e.i do
      local name = ds:describe(e.i[r]):match("[^/]+$")
      assert.is_nil(BAD[name], "a bad file was delivered")
      if select(3, ds:get(e.i[r])) then converted = converted + 1 end
      local cls = ds:describe(e.i[r]):match("/train/(%a)/")
      assert.are.equal(cls == "a" and 1 or 2, e.y[r]) -- 1-based class
      seen[e.i[r]] = true
    end
    local st = loader:stats()
    assert.are.equal(3, st.skipped)
    assert.are.equal(3, st.bad_files)
    assert.are.equal(converted, st.converted)
    assert.is_true(converted >= 2) -- gray.jpg and cmyk.jpg at least
    assert.are.equal(10, st.images)
    assert.is_true(st.finished and st.images_per_s > 0 and st.wait_seconds >= 0)
    assert.are.equal(3, #log)
    for name in pairs(BAD) do
      assert.matches(name:gsub("%p", "%%%0"), table.concat(log, "\n"))
    end
    epoch_of(loader, 2)
    assert.are.equal(3, #log) -- named once
    assert.are.equal(3, loader:stats().skipped)
  end)

  it("gives the same batches with 0, 1 and 4 workers", function()
    local ds = folder()
    local runs = {}
    for _, w in ipairs { 0, 1, 4 } do
      local loader <close> = data.loader { dataset = ds, batch_size = 3, workers = w, seed = 11, log = quiet }
      runs[#runs + 1] = epoch_of(loader, 5)
    end
    assert.are.same(runs[1], runs[2])
    assert.are.same(runs[2], runs[3])
  end)

  it("covers every sample once per epoch, honours drop_last and shuffle = false", function()
    local ds = data.cifar { root = fixtures }
    local loader = data.loader { dataset = ds, batch_size = 6, workers = 2, seed = 1 }
    local e = epoch_of(loader, 1)
    local seen = {}
    for _, i in ipairs(e.i) do seen[i] = (seen[i] or 0) + 1 end
    for i = 1, 20 do assert.are.equal(1, seen[i]) end
    local dl = data.loader { dataset = ds, batch_size = 6, workers = 2, drop_last = true, shuffle = false }
    local d = epoch_of(dl, 1)
    assert.are.same({ 6, 6, 6 }, d.sizes)
    for r = 1, 18 do assert.are.equal(r, d.i[r]) end
    -- the default epoch counter: loader() starts the next epoch
    local n = 0
    for x in dl() do n = n + x:size(1) end
    assert.are.equal(18, n)
    assert.are.equal(2, dl:stats().epoch)
  end)

  it("labels feed cross_entropy directly", function()
    local ds = data.cifar { root = fixtures, train = false }
    local loader = data.loader { dataset = ds, batch_size = 5, workers = 1 }
    for x, y in loader:epoch(1) do
      assert.are.equal("i64", y:dtype())
      local logits = lunet.randn(x:size(1), ds.classes)
      local loss = F.cross_entropy(logits, y):item()
      assert.is_true(loss > 0)
    end
  end)

  it("closes and collects a loader whose workers are busy", function()
    local ds = data.synthetic { shape = { 3, 64, 64 }, classes = 5, size = 5000 }
    local loader = data.loader { dataset = ds, batch_size = 8, workers = 4 }
    local it = loader:epoch(1)
    local x, y = it()
    assert.are.same({ 8, 3, 64, 64 }, x:shape())
    for _, v in ipairs(y:totable()) do assert.is_true(v >= 1 and v <= 5) end
    loader:close()
    assert.has_error(function() loader:stats() end)
    local t0 = os.clock()
    do
      local busy = data.loader { dataset = ds, batch_size = 8, workers = 4 }
      busy:epoch(1)()
    end
    collectgarbage()
    collectgarbage()
    assert.is_true(os.clock() - t0 < 5)
  end)

  it("checks its options", function()
    local ds = data.synthetic {}
    local ok, err = pcall(data.loader, { dataset = ds, batch = 3 })
    assert.matches("unknown option 'batch'", err)
    ok, err = pcall(data.loader, { dataset = {}, batch_size = 3 })
    assert.matches("must be a lunet.data dataset", err)
    ok, err = pcall(data.loader, { dataset = ds, workers = -1 })
    assert.is_false(ok)
    assert.matches("workers", err)
  end)
end)

describe("lunet.data datasets in memory", function()
  it("reads the CIFAR fixture (1-based labels, class names)", function()
    local ds = data.cifar { root = fixtures, train = true }
    assert.are.equal(20, #ds)
    assert.are.equal("airplane", ds.class_names[1])
    local _, label = ds:get(1)
    assert.are.equal(2, label) -- the file's first label byte is 1
    local c100 = data.cifar { root = fixtures, version = 100, train = false }
    assert.are.equal(4, #c100)
    assert.are.equal(87, select(2, c100:get(1))) -- fine label 86
  end)

  it("reads Fashion-MNIST from Debian's package", function()
    local f = io.open("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz", "rb")
    if not f then
      print("SKIPPED: Fashion-MNIST not installed (dataset-fashion-mnist)")
      return
    end
    f:close()
    local ds = data.fashion_mnist { train = false }
    assert.are.equal(10000, #ds)
    assert.are.same({ 1, 28, 28 }, ds.sample_shape)
    local _, label = ds:get(1)
    assert.are.equal(10, label) -- 9 in the file: Ankle boot
    assert.are.equal("Ankle boot", ds.class_names[label])
  end)

  it("makes synthetic data of any shape", function()
    local ds = data.synthetic { shape = { 5 }, classes = 3, size = 7, seed = 2 }
    assert.are.equal(7, #ds)
    local x, y = ds:get(7)
    assert.are.same({ 5 }, x:shape())
    assert.is_true(y >= 1 and y <= 3)
  end)
end)

describe("lunet bench-data", function()
  it("measures the train and eval transforms", function()
    local out, err, code = H.run(("LUNET_CACHE_DIR=%s %s bench-data --dataset_path=%s --workers=1 " ..
                                  "--epochs=1 --torchvision=no"):format(H.quote(cache), H.quote(H.exe), H.quote(root)))
    assert.are.equal(0, code, err)
    assert.matches("lunet train +[%d%.]+ images/s", out)
    assert.matches("lunet eval +[%d%.]+ images/s", out)
    assert.matches("skipped 3", out)
  end)

  it("rejects unknown arguments and is listed in --help", function()
    local _, err, code = H.lunet("bench-data --dataset_path=/x --wrokers=2")
    assert.are.equal(1, code)
    assert.matches("unknown argument '%-%-wrokers=2'", err)
    local out = H.lunet("--help")
    assert.matches("bench%-data %-%-dataset_path=DIR", out)
  end)
end)

teardown(function() sh("rm -rf " .. H.quote(tmp)) end)
