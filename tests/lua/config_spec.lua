-- Training configurations (lunet.config) and the `lunet train` / `lunet eval` command
-- lines: every recipe in recipes/ loads and resolves, unknown keys and flags list the
-- valid ones, wrong types, missing dataset paths, flag parsing, the setups' defaults.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")
local config = require "lunet.config"

local ROOT = here .. "../../"
local FIXTURE_CIFAR10 = ROOT .. "tests/fixtures/cifar-10-batches-bin"

-- The recipe files, sorted.
local function recipes()
  local p = io.popen("ls " .. H.quote(ROOT .. "recipes") .. "/*.lua")
  local l = {}
  for line in p:lines() do l[#l + 1] = line end
  p:close()
  table.sort(l)
  return l
end

-- Runs fn, which must raise an error; returns its message.
local function error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

describe("recipes", function()
  it("one per paper row, baseline, CIFAR setup and Fashion-MNIST run, each loads and resolves", function()
    local files = recipes()
    local models = {}
    for _, f in ipairs(files) do
      local r = config.load_recipe(f)
      local flags = {}
      if r.dataset ~= "fashion-mnist" then flags.dataset_path = ROOT end
      local cfg = config.resolve(r, flags)
      assert.are.equal(r.model, cfg.model)
      assert.is_string(cfg.name)
      models[cfg.name] = cfg
    end
    for _, name in ipairs { "ResNet34-S48U1", "ResNet50-Shared", "ResNet50-Shared++", "ResNet101-Shared",
                            "MobileNetV2-Shared", "MobileNetV2-Shared++", "ResNet34", "ResNet50",
                            "MobileNetV2", "CIFAR10-ResNet56-S16U1", "CIFAR10-ResNet56",
                            "CIFAR100-ResNet56-S16U1", "CIFAR100-ResNet56" } do
      assert.is_truthy(models[name], "no recipe named " .. name)
    end
    local fashion = 0
    for _, cfg in pairs(models) do
      if cfg.dataset == "fashion-mnist" then fashion = fashion + 1 end
    end
    assert.is_true(fashion >= 2)
    -- the paper's rows as method.md section 6 says
    local r34 = models["ResNet34-S48U1"]
    assert.are.equal("ResNet34_DoubleShared", r34.model)
    assert.are.same({ 48, 1 }, { r34.shared_rank, r34.unique_rank })
    assert.are.same({ 60, 100, 140 }, r34.milestones)
    assert.are.same({ 0.1, 256, 1e-4, 10, 150 }, { r34.lr, r34.batch_size, r34.weight_decay, r34.lambdaR, r34.epochs })
    local mb = models["MobileNetV2-Shared++"]
    assert.are.equal("MobileNetV2_SharedDouble", mb.model)
    assert.are.same({ 150, 225, 285 }, mb.milestones)
    assert.are.same({ 0.1, 0.1, 0.5 }, mb.gamma)
    assert.are.same({ 1e-5, 300 }, { mb.weight_decay, mb.epochs })
    local c = models["CIFAR100-ResNet56-S16U1"]
    assert.are.same({ "ResNet56_DoubleShared", "cifar100", 5e-4, 300 }, { c.model, c.dataset, c.weight_decay, c.epochs })
    assert.are.same({ 150, 225 }, c.milestones)
  end)

  it("the demo's recipe file is the configuration lunet demo embeds", function()
    local demo = require "lunet.demo"
    assert.are.same(demo.recipe, config.load_recipe(ROOT .. "recipes/fashion_mnist_demo.lua"))
  end)

  it("a recipe with an unknown key is an error listing the valid keys", function()
    local f = H.tmpfile('return { model = "ResNet20", learning_rate = 0.1 }')
    local msg = error_of(config.load_recipe, f)
    os.remove(f)
    assert.matches("unknown key 'learning_rate' in recipe", msg, 1, true)
    assert.matches("valid keys: augment, batch_size, dataset, dataset_path,", msg, 1, true)
    assert.matches("lambdaR", msg, 1, true)
  end)

  it("a recipe that does not return a table, or fails, is an error naming the file", function()
    local f = H.tmpfile("return 42")
    assert.matches("must return a table, got number", error_of(config.load_recipe, f))
    os.remove(f)
    f = H.tmpfile("error('boom')")
    assert.matches("recipe .* failed: .*boom", error_of(config.load_recipe, f))
    os.remove(f)
    assert.matches("cannot load recipe", error_of(config.load_recipe, "/nonexistent/r.lua"))
  end)
end)

describe("lunet.config.resolve", function()
  it("fills the defaults of the setup (method.md section 6) under recipe and flags", function()
    local cfg = config.resolve({ model = "ResNet56", dataset_path = FIXTURE_CIFAR10 })
    assert.are.same({ "cifar10", 0.1, 256, 5e-4, 10, 300, 0.9, "multistep" },
                    { cfg.dataset, cfg.lr, cfg.batch_size, cfg.weight_decay, cfg.lambdaR, cfg.epochs,
                      cfg.momentum, cfg.schedule })
    assert.are.same({ 150, 225 }, cfg.milestones)
    assert.are.equal(256, cfg.eval_batch_size)
    assert.are.equal("runs/ResNet56-cifar10", cfg.out)
    cfg = config.resolve({ model = "ResNet50", dataset_path = ROOT })
    assert.are.same({ 1e-4, 150 }, { cfg.weight_decay, cfg.epochs })
    assert.are.same({ 60, 100, 140 }, cfg.milestones)
    cfg = config.resolve({ model = "MobileNetV2_Shared", dataset_path = ROOT }, { lr = 0.05 })
    assert.are.same({ 1e-5, 300, 0.05 }, { cfg.weight_decay, cfg.epochs, cfg.lr })
    assert.are.same({ 0.1, 0.1, 0.5 }, cfg.gamma)
    -- later layers win; fashion-mnist needs no path
    cfg = config.resolve({ model = "ResNet20", dataset = "fashion-mnist", lr = 0.2 }, { lr = 0.3, epochs = 2 })
    assert.are.same({ 0.3, 2, "/usr/share/datasets/fashion-mnist" }, { cfg.lr, cfg.epochs, cfg.dataset_path })
  end)

  it("resolving a resolved configuration changes nothing", function()
    local cfg = config.resolve({ model = "ResNet20_DoubleShared", dataset = "fashion-mnist", shared_rank = 8 })
    assert.are.same(cfg, config.resolve(cfg))
  end)

  it("rejects unknown keys, listing the valid ones", function()
    local msg = error_of(config.resolve, { model = "ResNet20", lrate = 1 })
    assert.matches("config: unknown key 'lrate'; valid keys: augment, batch_size,", msg, 1, true)
    assert.matches("weight_decay, workers", msg, 1, true)
  end)

  it("checks types, naming the key, the value and its type", function()
    assert.matches("'lr' must be a number, got \"0.1\" (string)",
                   error_of(config.resolve, { model = "ResNet20", lr = "0.1" }), 1, true)
    assert.matches("'epochs' must be an integer, got 2.5 (float)",
                   error_of(config.resolve, { model = "ResNet20", epochs = 2.5 }), 1, true)
    assert.matches("'nesterov' must be a boolean, got 1 (integer)",
                   error_of(config.resolve, { model = "ResNet20", nesterov = 1 }), 1, true)
    assert.matches("'milestones' must be a list of integers",
                   error_of(config.resolve, { model = "ResNet20", milestones = { 1, "x" } }), 1, true)
    assert.matches("'gamma' must be a number or a list of numbers",
                   error_of(config.resolve, { model = "ResNet20", gamma = "big" }), 1, true)
    -- an integral float is an integer
    local cfg = config.resolve({ model = "ResNet20", dataset = "fashion-mnist", epochs = 3.0 })
    assert.are.equal(math.type(3), math.type(cfg.epochs))
  end)

  it("checks values: model and dataset names, ranks, ranges, schedules, devices", function()
    local function msg(t) return error_of(config.resolve, t) end
    assert.matches("no model", msg({ dataset = "cifar10" }))
    assert.matches("unknown model 'ResNet21'; valid models: ResNet18,", msg({ model = "ResNet21" }))
    assert.matches("'dataset' must be one of ilsvrc, cifar10, cifar100, fashion%-mnist, got \"mnist\"",
                   msg({ model = "ResNet20", dataset = "mnist" }))
    assert.matches("'shared_rank' is given but ResNet50 has no ranks", msg({ model = "ResNet50", shared_rank = 4 }))
    assert.matches("'orthogonal_init' is given but ResNet20 has no shared basis",
                   msg({ model = "ResNet20", orthogonal_init = true }))
    assert.matches("'epochs' must be at least 1", msg({ model = "ResNet20", dataset = "fashion-mnist", epochs = 0 }))
    assert.matches("'lr' must be a non%-negative number", msg({ model = "ResNet20", dataset = "fashion-mnist", lr = -1 }))
    assert.matches("'starting_epoch' %(9%) is after the last epoch 'epochs' %(3%)",
                   msg({ model = "ResNet20", dataset = "fashion-mnist", epochs = 3, starting_epoch = 9 }))
    assert.matches("'schedule' must be one of multistep, cosine, constant",
                   msg({ model = "ResNet20", dataset = "fashion-mnist", schedule = "step" }))
    assert.matches("'gamma' lists 2 factors for 3 milestones",
                   msg({ model = "ResNet20", dataset = "fashion-mnist", schedule = "multistep",
                         milestones = { 1, 2, 3 }, gamma = { 0.1, 0.1 } }))
    assert.matches("'device' must be cpu, cuda or cuda:N",
                   msg({ model = "ResNet20", dataset = "fashion-mnist", device = "tpu" }))
    assert.matches("several GPUs is not supported yet",
                   msg({ model = "ResNet20", dataset = "fashion-mnist", visible_device = "0,1" }))
    assert.matches("'visible_device' must be GPU ids",
                   msg({ model = "ResNet20", dataset = "fashion-mnist", visible_device = "a" }))
    local cfg = config.resolve({ model = "ResNet20", dataset = "fashion-mnist", visible_device = "1" })
    assert.are.equal("cuda:1", cfg.device)
  end)

  it("needs an existing dataset path for every dataset but Fashion-MNIST", function()
    assert.matches("'dataset_path' is required for dataset cifar10",
                   error_of(config.resolve, { model = "ResNet56" }), 1, true)
    assert.matches("'dataset_path' is required for dataset ilsvrc (the folder holding train/<class>/",
                   error_of(config.resolve, { model = "ResNet50" }), 1, true)
    assert.matches("dataset_path '/no/such/dir' does not exist",
                   error_of(config.resolve, { model = "ResNet56", dataset_path = "/no/such/dir" }), 1, true)
    assert.matches("pretrained checkpoint '/no/such.safetensors' does not exist",
                   error_of(config.resolve, { model = "ResNet20", dataset = "fashion-mnist",
                                              pretrained = "/no/such.safetensors" }), 1, true)
  end)

  it("formats the configuration one key per line", function()
    local text = config.format(config.resolve({ model = "ResNet20", dataset = "fashion-mnist" }))
    assert.matches("\n  lr%s+0.1\n", text)
    assert.is_nil(text:find("milestones", 1, true)) -- unset keys are left out
    assert.matches("  model%s+ResNet20", text)
  end)
end)

describe("lunet.config.parse_flags", function()
  it("converts --key=value to the key's type; a bare boolean flag means true", function()
    local flags, positional, help = config.parse_flags {
      "r.lua", "--lr=0.05", "--epochs=7", "--nesterov", "--milestones=3,6", "--gamma=0.2",
      "--model=ResNet20", "--resume", "--augment=false", "--visible_device=0",
    }
    assert.are.same({ "r.lua" }, positional)
    assert.is_false(help)
    assert.are.same({ lr = 0.05, epochs = 7, nesterov = true, milestones = { 3, 6 }, gamma = 0.2,
                      model = "ResNet20", resume = true, augment = false, visible_device = "0" }, flags)
    assert.are.equal("integer", math.type(flags.epochs))
    flags = config.parse_flags { "--gamma=0.1,0.1,0.5", "--resume=runs/x/last.safetensors" }
    assert.are.same({ 0.1, 0.1, 0.5 }, flags.gamma)
    assert.are.equal("runs/x/last.safetensors", flags.resume)
    assert.is_true(select(3, config.parse_flags { "--help" }))
  end)

  it("rejects unknown flags listing the valid ones, bad values, repeats, missing values", function()
    assert.matches("unknown flag '--learning_rate=1'; valid flags: --augment, --batch_size,",
                   error_of(config.parse_flags, { "--learning_rate=1" }), 1, true)
    assert.matches("flag '--epochs' must be an integer, got '2.5'", error_of(config.parse_flags, { "--epochs=2.5" }), 1, true)
    assert.matches("flag '--lr' must be a number, got 'fast'", error_of(config.parse_flags, { "--lr=fast" }), 1, true)
    assert.matches("flag '--nesterov' must be true or false, got 'maybe'",
                   error_of(config.parse_flags, { "--nesterov=maybe" }), 1, true)
    assert.matches("flag '--milestones' must be comma-separated integers",
                   error_of(config.parse_flags, { "--milestones=1,x" }), 1, true)
    assert.matches("flag '--lr' given twice", error_of(config.parse_flags, { "--lr=1", "--lr=2" }), 1, true)
    assert.matches("flag '--lr' needs a value", error_of(config.parse_flags, { "--lr" }), 1, true)
  end)
end)

describe("lunet train / lunet eval command lines", function()
  it("--help lists every flag of the paper's scripts", function()
    local out, _, code = H.lunet("train --help")
    assert.are.equal(0, code)
    for _, f in ipairs { "lr", "momentum", "weight_decay", "lambdaR", "shared_rank", "unique_rank",
                         "batch_size", "dataset_path", "model", "pretrained", "starting_epoch",
                         "visible_device", "resume", "out" } do
      assert.matches("%-%-" .. f .. " ", out)
    end
    out, _, code = H.lunet("eval --help")
    assert.are.equal(0, code)
    assert.matches("usage: lunet eval --model=NAME --pretrained=FILE --dataset_path=DIR", out, 1, true)
  end)

  it("exit 2 with a message for unknown flags, wrong types, missing paths and recipes", function()
    local _, err, code = H.lunet("train --model=ResNet20 --dataset=fashion-mnist --learning_rate=3")
    assert.are.equal(2, code)
    assert.matches("lunet train: unknown flag '--learning_rate=3'; valid flags: --augment,", err, 1, true)
    _, err, code = H.lunet("train --model=ResNet20 --epochs=many")
    assert.are.equal(2, code)
    assert.matches("flag '--epochs' must be an integer, got 'many'", err, 1, true)
    _, err, code = H.lunet("train --model=ResNet56")
    assert.are.equal(2, code)
    assert.matches("'dataset_path' is required for dataset cifar10", err, 1, true)
    _, err, code = H.lunet("train --model=ResNet56 --dataset_path=/no/such/dir")
    assert.are.equal(2, code)
    assert.matches("dataset_path '/no/such/dir' does not exist", err, 1, true)
    _, err, code = H.lunet("train /no/such/recipe.lua")
    assert.are.equal(2, code)
    assert.matches("cannot load recipe", err, 1, true)
    local bad = H.tmpfile('return { model = "ResNet20", dataset = "fashion-mnist", lr = "high" }')
    _, err, code = H.lunet("train " .. H.quote(bad))
    os.remove(bad)
    assert.are.equal(2, code)
    assert.matches("'lr' must be a number, got \"high\" (string)", err, 1, true)
    if not require("lunet").cuda.available() then
      _, err, code = H.lunet("train --model=ResNet20 --dataset=fashion-mnist --device=cuda:0 --epochs=1")
      assert.are.equal(1, code)
      assert.matches("device 'cuda:0' asked for, but this build has no usable CUDA device", err, 1, true)
    end
    _, err, code = H.lunet("eval --model=ResNet20 --dataset=fashion-mnist")
    assert.are.equal(2, code)
    assert.matches("missing '--pretrained=FILE'", err, 1, true)
    _, err, code = H.lunet("eval --pretrained=x --lr=3")
    assert.are.equal(2, code)
    assert.matches("unknown flag '--lr'; valid flags: --batch_size, --dataset,", err, 1, true)
  end)
end)
