--- Training configurations: the keys, their types and defaults, recipe files and
-- command-line flags (design.md section 6, method.md section 6).
--
--     local config = require "lunet.config"
--     local cfg = config.resolve(config.load_recipe("recipes/cifar10_resnet56_s16u1.lua"),
--                                config.parse_flags({"--lr=0.05", "--epochs=3"}))
--
-- A configuration is a flat table of the keys in `config.KEYS` (the flag names of the
-- paper's scripts among them). Resolution: the per-setup defaults of method.md
-- section 6 (chosen by dataset, and for ILSVRC by model family) < the recipe < the
-- flags. Unknown keys and flags are errors listing the valid ones; every value is
-- type-checked; a dataset other than Fashion-MNIST needs `dataset_path`, and the path
-- must exist. Errors are raised as strings starting with "config: ".
-- @module lunet.config
local M = {}

local FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
M.DATASETS = { "ilsvrc", "cifar10", "cifar100", "fashion-mnist" }
M.SCHEDULES = { "multistep", "cosine", "constant" }
M.PROGRESS = { "auto", "bar", "lines", "none" }

--- Every key: name, type and what it means (the `lunet train --help` text). Types:
-- "string", "integer", "number", "boolean", "integers" (a list; on the command line
-- comma-separated), "number|numbers", "string|boolean", "string|function".
M.KEYS = {
  { "name", "string", "label of the run (default: MODEL-DATASET)" },
  { "model", "string", "a model of the zoo (lunet.models.list())" },
  { "dataset", "string", "ilsvrc, cifar10, cifar100 or fashion-mnist (default: the model's)" },
  { "dataset_path", "string", "dataset folder (default only for fashion-mnist: " .. FASHION_MNIST_DIR .. ")" },
  { "shared_rank", "integer", "S: rank of the shared bases (ranked models)" },
  { "unique_rank", "integer", "U: unique basis filters per block (ranked models)" },
  { "stem_stride", "integer", "CIFAR ResNets: stride of the stem convolution, 1 (the paper's) or 2" },
  { "orthogonal_init", "boolean", "orthogonal initialisation of the shared bases (default: the model's)" },
  { "pretrained", "string", "checkpoint whose weights start the run (weights only; a lunet checkpoint or a PyTorch .pth)" },
  { "starting_epoch", "integer", "first epoch to train (1-based); the schedule starts there (default 1)" },
  { "epochs", "integer", "last epoch" },
  { "batch_size", "integer", "training batch size" },
  { "eval_batch_size", "integer", "evaluation batch size (default: batch_size)" },
  { "lr", "number", "base learning rate" },
  { "momentum", "number", "SGD momentum (0.9)" },
  { "weight_decay", "number", "weight decay, added to every parameter's gradient" },
  { "nesterov", "boolean", "Nesterov momentum (false)" },
  { "lambdaR", "number", "weight of the orthogonality regulariser (10)" },
  { "schedule", "string|function", "learning-rate schedule: multistep, cosine or constant "
    .. "(in Lua also a function(epoch, fraction) -> lr)" },
  { "milestones", "integers", "multistep: epochs after which the rate is multiplied by gamma" },
  { "gamma", "number|numbers", "multistep: the factor, or one factor per milestone" },
  { "min_lr", "number", "cosine: the final learning rate (0)" },
  { "warmup_epochs", "integer", "linear warm-up length in epochs (0: none)" },
  { "warmup_start_factor", "number", "warm-up: the first rate as a fraction of the scheduled one (0.1)" },
  { "augment", "boolean", "training augmentation of the dataset (true)" },
  { "workers", "integer", "data loading threads (2)" },
  { "threads", "integer", "CPU threads of the kernels (0: all cores)" },
  { "seed", "integer", "random seed: initialisation and data order (1)" },
  { "device", "string", "cpu, cuda or cuda:N (cpu)" },
  { "visible_device", "string", "GPU ids, e.g. 0 or 0,1,2,3 (one GPU for now)" },
  { "out", "string", "output folder: checkpoints, metrics.jsonl, curves.svg (runs/NAME)" },
  { "resume", "string|boolean", "continue a run: true for OUT/last.safetensors, or a checkpoint file" },
  { "save_every", "integer", "also keep epoch_NNN.safetensors every N epochs (5; 0: never)" },
  { "log_every", "number", "seconds between progress lines when not on a terminal (30)" },
  { "progress", "string", "auto (a bar on a terminal, else lines), bar, lines or none" },
}

local TYPE_OF = {}
for _, k in ipairs(M.KEYS) do TYPE_OF[k[1]] = k[2] end

--- The sorted key names.
function M.key_names()
  local l = {}
  for _, k in ipairs(M.KEYS) do l[#l + 1] = k[1] end
  table.sort(l)
  return l
end

-- The training setups of method.md section 6 (and one for Fashion-MNIST, which the
-- paper has not: a short cosine schedule with warm-up).
local COMMON = { momentum = 0.9, nesterov = false, lambdaR = 10, min_lr = 0, warmup_epochs = 0,
                 warmup_start_factor = 0.1, augment = true, workers = 2, threads = 0, seed = 1,
                 device = "cpu", starting_epoch = 1, resume = false, save_every = 5,
                 log_every = 30, progress = "auto" }
M.SETUPS = {
  ilsvrc_resnet = { lr = 0.1, batch_size = 256, weight_decay = 1e-4, epochs = 150,
                    schedule = "multistep", milestones = { 60, 100, 140 }, gamma = 0.1 },
  ilsvrc_mobilenet = { lr = 0.1, batch_size = 256, weight_decay = 1e-5, epochs = 300,
                       schedule = "multistep", milestones = { 150, 225, 285 },
                       gamma = { 0.1, 0.1, 0.5 } },
  cifar = { lr = 0.1, batch_size = 256, weight_decay = 5e-4, epochs = 300,
            schedule = "multistep", milestones = { 150, 225 }, gamma = 0.1 },
  fashion = { lr = 0.1, batch_size = 128, weight_decay = 5e-4, epochs = 15,
              schedule = "cosine", warmup_epochs = 1 },
}

--- The name of the setup (a key of SETUPS) for a model on a dataset.
function M.setup_name(model, dataset)
  if dataset == "ilsvrc" then
    return model:match("^MobileNetV2") and "ilsvrc_mobilenet" or "ilsvrc_resnet"
  elseif dataset == "fashion-mnist" then
    return "fashion"
  end
  return "cifar"
end

local function fail(fmt, ...) error("config: " .. fmt:format(...), 0) end

local function show(v)
  if type(v) == "string" then return ("%q"):format(v) end
  return tostring(v)
end

local function one_of(list, v)
  for _, x in ipairs(list) do if x == v then return true end end
  return false
end

local function is_list_of(v, check)
  if type(v) ~= "table" then return false end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  if n ~= #v then return false end
  for _, x in ipairs(v) do if not check(x) then return false end end
  return true
end

local function is_int(v) return math.type(v) == "integer" or (math.type(v) == "float" and math.tointeger(v) ~= nil) end
local function is_num(v) return type(v) == "number" end

-- Checks (and normalises: integral floats -> integers, lists copied) one value.
local function check_value(key, v, where)
  local t = TYPE_OF[key]
  local function bad()
    fail("%s'%s' must be %s, got %s (%s)", where, key, ({
      string = "a string", integer = "an integer", number = "a number", boolean = "a boolean",
      integers = "a list of integers", ["number|numbers"] = "a number or a list of numbers",
      ["string|boolean"] = "a string or a boolean", ["string|function"] = "a string or a function",
    })[t], show(v), math.type(v) or type(v))
  end
  if t == "string" then
    if type(v) ~= "string" then bad() end
  elseif t == "integer" then
    if not is_int(v) then bad() end
    v = math.tointeger(v)
  elseif t == "number" then
    if not is_num(v) then bad() end
  elseif t == "boolean" then
    if type(v) ~= "boolean" then bad() end
  elseif t == "integers" then
    if not is_list_of(v, is_int) then bad() end
    local l = {}
    for i, x in ipairs(v) do l[i] = math.tointeger(x) end
    v = l
  elseif t == "number|numbers" then
    if is_list_of(v, is_num) then
      v = { table.unpack(v) }
    elseif not is_num(v) then
      bad()
    end
  elseif t == "string|boolean" then
    if type(v) ~= "string" and type(v) ~= "boolean" then bad() end
  elseif t == "string|function" then
    if type(v) ~= "string" and type(v) ~= "function" then bad() end
  end
  return v
end

-- Raises the unknown-key error for `key` found in `where`.
local function unknown_key(key, where)
  fail("unknown key '%s'%s; valid keys: %s", tostring(key), where, table.concat(M.key_names(), ", "))
end

--- Checks a table of configuration values (a recipe, or a partial configuration):
-- every key known, every value of its type. Returns a normalised copy.
-- @param t the table
-- @param where (optional) named in messages, e.g. "in recipe r.lua"
function M.check(t, where)
  if type(t) ~= "table" then fail("expected a table of settings, got %s", type(t)) end
  local suffix = where and (" " .. where) or ""
  local prefix = where and (where .. ": ") or ""
  local out = {}
  for k, v in pairs(t) do
    if type(k) ~= "string" or not TYPE_OF[k] then unknown_key(k, suffix) end
    out[k] = check_value(k, v, prefix)
  end
  return out
end

--- Loads a recipe file: a Lua chunk returning a table of settings (checked).
function M.load_recipe(path)
  local chunk, err = loadfile(path, "t", setmetatable({}, { __index = _G }))
  if not chunk then fail("cannot load recipe %s", err) end
  local ok, t = pcall(chunk)
  if not ok then fail("recipe %s failed: %s", path, tostring(t)) end
  if type(t) ~= "table" then fail("recipe %s must return a table, got %s", path, type(t)) end
  return M.check(t, "in recipe " .. path)
end

-- Converts the text of a flag to the type t of its key.
local function flag_value(key, text, t)
  local function bad(what)
    fail("flag '--%s' must be %s, got '%s'", key, what, text)
  end
  if t == "string" then
    return text
  elseif t == "integer" then
    local n = text:match("^%s*[+-]?%d+%s*$") and math.tointeger(tonumber(text))
    if not n then bad("an integer") end
    return n
  elseif t == "number" then
    local n = tonumber(text)
    if not n then bad("a number") end
    return n
  elseif t == "boolean" then
    local b = ({ ["true"] = true, ["1"] = true, yes = true, ["false"] = false, ["0"] = false,
                 no = false })[text:lower()]
    if b == nil then bad("true or false") end
    return b
  elseif t == "integers" or t == "number|numbers" then
    local l = {}
    for part in (text .. ","):gmatch("([^,]*),") do
      local n = tonumber(part)
      if t == "integers" then n = n and math.tointeger(n) end
      if not n then bad(t == "integers" and "comma-separated integers" or "a number or comma-separated numbers") end
      l[#l + 1] = n
    end
    if t == "number|numbers" and #l == 1 then return l[1] end
    return l
  elseif t == "string|boolean" then
    local b = ({ ["true"] = true, ["false"] = false })[text]
    if b ~= nil then return b end
    return text
  elseif t == "string|function" then
    return text
  end
end

--- Parses `--key=value` arguments (a list of strings). A boolean flag alone
-- (`--nesterov`, `--resume`) means true. Returns the settings table, the list of
-- the other arguments (positional ones, in order) and whether --help was given.
-- keys (optional): the flags accepted, a list like KEYS ({name, type, text}); default
-- KEYS (other commands, e.g. `lunet bench`, pass their own).
function M.parse_flags(args, keys)
  local type_of, names = TYPE_OF, M.key_names()
  if keys then
    type_of, names = {}, {}
    for i, k in ipairs(keys) do type_of[k[1]], names[i] = k[2], k[1] end
    table.sort(names)
  end
  local flags, positional, help = {}, {}, false
  for _, a in ipairs(args) do
    if a == "--help" or a == "-h" then
      help = true
    elseif a:sub(1, 2) == "--" then
      local key, value = a:match("^%-%-([%w_%-]+)=(.*)$")
      if not key then key = a:match("^%-%-([%w_%-]+)$") end
      if not key or not type_of[key] then
        local shown = {}
        for i, k in ipairs(names) do shown[i] = "--" .. k end
        fail("unknown flag '%s'; valid flags: %s", a, table.concat(shown, ", "))
      end
      if flags[key] ~= nil then fail("flag '--%s' given twice", key) end
      local t = type_of[key]
      if value == nil then
        if t ~= "boolean" and t ~= "string|boolean" then fail("flag '--%s' needs a value: --%s=VALUE", key, key) end
        flags[key] = true
      else
        flags[key] = flag_value(key, value, t)
      end
    else
      positional[#positional + 1] = a
    end
  end
  return flags, positional, help
end

local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() end
  return f ~= nil
end

-- Deep copy of plain values (lists of numbers).
local function copy(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = copy(x) end
  return t
end

--- Resolves a configuration: layers (each a table of settings; later ones win,
-- usually recipe then flags) over the defaults of the model's setup. Checks types,
-- the model and dataset names, ranks against the model, the schedule's fields, and
-- that the dataset path exists. Returns a fresh, complete table (every key of the
-- setup filled in; the optional ones may stay nil).
function M.resolve(...)
  local merged = {}
  for i = 1, select("#", ...) do
    local layer = select(i, ...)
    if layer ~= nil then
      for k, v in pairs(M.check(layer)) do merged[k] = v end
    end
  end
  local models = require "lunet.models"
  if merged.model == nil then
    fail("no model: give --model=NAME or a recipe with model = \"NAME\"")
  end
  local known = false
  for _, n in ipairs(models.list()) do known = known or n == merged.model end
  if not known then
    fail("unknown model '%s'; valid models: %s", merged.model, table.concat(models.list(), ", "))
  end
  local info = models.info(merged.model)
  merged.dataset = merged.dataset or info.dataset
  if not one_of(M.DATASETS, merged.dataset) then
    fail("'dataset' must be one of %s, got %s", table.concat(M.DATASETS, ", "), show(merged.dataset))
  end
  local cfg = {}
  for k, v in pairs(COMMON) do cfg[k] = copy(v) end
  for k, v in pairs(M.SETUPS[M.setup_name(merged.model, merged.dataset)]) do cfg[k] = copy(v) end
  for k, v in pairs(merged) do cfg[k] = v end
  cfg.name = cfg.name or (cfg.model .. "-" .. cfg.dataset)
  cfg.out = cfg.out or ("runs/" .. cfg.name)
  cfg.eval_batch_size = cfg.eval_batch_size or cfg.batch_size

  if info.shared_rank == nil then
    for _, k in ipairs { "shared_rank", "unique_rank" } do
      if cfg[k] ~= nil then
        local ranked = {}
        for _, n in ipairs(models.list()) do
          if models.info(n).shared_rank then ranked[#ranked + 1] = n end
        end
        fail("'%s' is given but %s has no ranks (the models with ranks: %s)", k, cfg.model,
             table.concat(ranked, ", "))
      end
    end
  end
  if cfg.stem_stride ~= nil and (info.family ~= "cifar10" or (cfg.stem_stride ~= 1 and cfg.stem_stride ~= 2)) then
    fail("'stem_stride' must be 1 or 2, and only for the CIFAR ResNets (%s: %s)", cfg.model, show(cfg.stem_stride))
  end
  if cfg.orthogonal_init ~= nil and not info.shared then
    fail("'orthogonal_init' is given but %s has no shared basis", cfg.model)
  end
  for _, k in ipairs { "epochs", "batch_size", "eval_batch_size", "starting_epoch" } do
    if cfg[k] < 1 then fail("'%s' must be at least 1, got %d", k, cfg[k]) end
  end
  for _, k in ipairs { "shared_rank", "unique_rank", "workers", "threads", "save_every", "warmup_epochs" } do
    if cfg[k] ~= nil and cfg[k] < 0 then fail("'%s' must not be negative, got %d", k, cfg[k]) end
  end
  if cfg.shared_rank == 0 then fail("'shared_rank' must be at least 1") end
  for _, k in ipairs { "lr", "momentum", "weight_decay", "lambdaR", "min_lr", "log_every" } do
    if cfg[k] < 0 or cfg[k] ~= cfg[k] then fail("'%s' must be a non-negative number, got %s", k, show(cfg[k])) end
  end
  if cfg.starting_epoch > cfg.epochs then
    fail("'starting_epoch' (%d) is after the last epoch 'epochs' (%d)", cfg.starting_epoch, cfg.epochs)
  end
  if type(cfg.schedule) == "string" then
    if not one_of(M.SCHEDULES, cfg.schedule) then
      fail("'schedule' must be one of %s, got %s", table.concat(M.SCHEDULES, ", "), show(cfg.schedule))
    end
    if cfg.schedule == "multistep" then
      if cfg.milestones == nil then fail("schedule 'multistep' needs 'milestones'") end
      if type(cfg.gamma) == "table" and #cfg.gamma ~= #cfg.milestones then
        fail("'gamma' lists %d factors for %d milestones", #cfg.gamma, #cfg.milestones)
      end
      cfg.gamma = cfg.gamma or 0.1
    end
  end
  if not one_of(M.PROGRESS, cfg.progress) then
    fail("'progress' must be one of %s, got %s", table.concat(M.PROGRESS, ", "), show(cfg.progress))
  end

  -- devices: --visible_device picks the GPU (one for now)
  if cfg.visible_device ~= nil then
    local ids = {}
    for part in (cfg.visible_device .. ","):gmatch("([^,]*),") do
      local n = part:match("^%s*%d+%s*$") and math.tointeger(tonumber(part))
      if not n then fail("'visible_device' must be GPU ids like 0 or 0,1,2,3, got %s", show(cfg.visible_device)) end
      ids[#ids + 1] = n
    end
    if #ids > 1 then
      fail("'visible_device' lists %d GPUs; training on several GPUs is not supported yet "
           .. "(give one id)", #ids)
    end
    if cfg.device ~= "cpu" and cfg.device ~= "cuda" and cfg.device ~= "cuda:" .. ids[1] then
      fail("'device' %s contradicts 'visible_device' %s", show(cfg.device), show(cfg.visible_device))
    end
    cfg.device = "cuda:" .. ids[1]
  end
  if not (cfg.device == "cpu" or cfg.device == "cuda" or cfg.device:match("^cuda:%d+$")) then
    fail("'device' must be cpu, cuda or cuda:N, got %s", show(cfg.device))
  end

  -- the dataset's files
  if cfg.dataset_path == nil then
    if cfg.dataset ~= "fashion-mnist" then
      fail("'dataset_path' is required for dataset %s (%s)", cfg.dataset, ({
        ilsvrc = "the folder holding train/<class>/ and val/<class>/",
        cifar10 = "the folder of the CIFAR-10 binary batches",
        cifar100 = "the folder of the CIFAR-100 binary files",
      })[cfg.dataset])
    end
    cfg.dataset_path = FASHION_MNIST_DIR
  end
  if not exists(cfg.dataset_path) then
    fail("dataset_path '%s' does not exist", cfg.dataset_path)
  end
  if type(cfg.pretrained) == "string" and not exists(cfg.pretrained) then
    fail("pretrained checkpoint '%s' does not exist", cfg.pretrained)
  end
  return cfg
end

--- The configuration as text, one `key = value` line per key in KEYS order (what
-- training prints at start).
function M.format(cfg)
  local lines = {}
  for _, k in ipairs(M.KEYS) do
    local v = cfg[k[1]]
    if v ~= nil then
      local s
      if type(v) == "table" then
        local parts = {}
        for i, x in ipairs(v) do parts[i] = tostring(x) end
        s = "{" .. table.concat(parts, ", ") .. "}"
      elseif type(v) == "string" then
        s = v
      elseif type(v) == "function" then
        s = "(a Lua function)"
      else
        s = tostring(v)
      end
      lines[#lines + 1] = ("  %-20s %s"):format(k[1], s)
    end
  end
  return table.concat(lines, "\n")
end

--- A copy of the configuration holding only data (functions become the string
-- "(a Lua function)"), for checkpoints and logs.
function M.serialisable(cfg)
  local out = {}
  for k, v in pairs(cfg) do
    out[k] = type(v) == "function" and "(a Lua function)" or copy(v)
  end
  return out
end

return M
