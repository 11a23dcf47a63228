--- `lunet bench`: training throughput of a zoo model on synthetic data.
--
--     lunet bench --model=ResNet34_DoubleShared --batch_size=256 --device=cuda:0 [--steps=20]
--     local r = require("lunet.bench").run { model = "ResNet20", batch_size = 2, steps = 2 }
--     print(r.images_per_s, r.ms_per_step, r.loss)
--
-- One fixed batch (lunet.randn images of the model's input shape, uniform random
-- 1-based labels) is made once on the device; the model is built there in training
-- mode. A step is the training step of lunet.train: opt:zero_grad(), forward,
-- loss = cross_entropy + lambdaR * lunet.reg.orthogonality(model) (the penalty only
-- when lambdaR > 0 and the model has shared bases), loss:backward(), opt:step() with
-- SGD lr 0.1, momentum 0.9, weight decay 1e-4 (bench/torch_train_bench.py runs the
-- same step in PyTorch). `warmup` untimed steps come first; the `steps` timed ones
-- read nothing back from the device, with lunet.cuda.synchronize() before the clock
-- starts and after the last step; the last loss is read once at the end and must be
-- finite. Throughput = batch_size * steps / seconds.
-- @module lunet.bench
local lunet = require "lunet"
local config = require "lunet.config"

local M = {}

local F = lunet.nn.functional

M.SGD = { lr = 0.1, momentum = 0.9, weight_decay = 1e-4 }

--- The options (flags), as lunet.config.KEYS lists keys: name, type, help text.
M.KEYS = {
  { "model", "string", "a model of the zoo (lunet.models.list()); required" },
  { "batch_size", "integer", "images per step (256)" },
  { "device", "string", "cpu, cuda or cuda:N (cpu)" },
  { "steps", "integer", "timed steps (20)" },
  { "warmup", "integer", "untimed steps before them (5)" },
  { "image_size", "integer", "image height and width (the model's dataset: 224 ILSVRC, 32 CIFAR)" },
  { "shared_rank", "integer", "S: rank of the shared bases (ranked models; default: the model's)" },
  { "unique_rank", "integer", "U: unique basis filters per block (ranked models; default: the model's)" },
  { "classes", "integer", "number of classes (default: the model's dataset's)" },
  { "lambdaR", "number", "weight of the orthogonality regulariser (10; 0 for models without shared bases)" },
  { "threads", "integer", "CPU threads of the kernels (0: all cores)" },
  { "cudnn_benchmark", "boolean", "CUDA: time cuDNN's algorithms per shape first (true, as the PyTorch reference)" },
  { "json", "boolean", "print one JSON line instead of the text" },
}

local TYPE_OF = {}
for _, k in ipairs(M.KEYS) do TYPE_OF[k[1]] = k[2] end

local function fail(fmt, ...) error("bench: " .. fmt:format(...), 0) end

local function show(v)
  if type(v) == "string" then return ("%q"):format(v) end
  return tostring(v)
end

--- Checks the options of run() and fills in the defaults; returns a fresh table.
-- Bad input (an unknown key or model, a value of the wrong type or range, a CUDA
-- device this build or machine lacks) raises an error starting with "bench: " that
-- names the flag.
function M.resolve(opts)
  if type(opts) ~= "table" then fail("expected a table of options, got %s", type(opts)) end
  local o = {}
  for k, v in pairs(opts) do
    local t = TYPE_OF[k]
    if not t then
      local names = {}
      for i, key in ipairs(M.KEYS) do names[i] = "--" .. key[1] end
      fail("unknown option '%s'; valid options: %s", tostring(k), table.concat(names, ", "))
    end
    if t == "integer" then
      v = math.type(v) and math.tointeger(v)
      if not v then fail("'--%s' must be an integer, got %s", k, show(opts[k])) end
    elseif t == "number" then
      if type(v) ~= "number" or v ~= v or v == math.huge then
        fail("'--%s' must be a finite number, got %s", k, show(v))
      end
    elseif type(v) ~= t then
      fail("'--%s' must be a %s, got %s", k, t, show(v))
    end
    o[k] = v
  end
  if o.model == nil then fail("missing '--model=NAME'") end
  local models = lunet.models
  local known = false
  for _, n in ipairs(models.list()) do known = known or n == o.model end
  if not known then
    fail("unknown model '%s' (--model); valid models: %s", o.model, table.concat(models.list(), ", "))
  end
  local info = models.info(o.model)
  o.batch_size = o.batch_size or 256
  o.device = o.device or "cpu"
  o.steps = o.steps or 20
  o.warmup = o.warmup or 5
  if o.cudnn_benchmark == nil then o.cudnn_benchmark = true end
  o.image_size = o.image_size or info.input_shape[2]
  o.classes = o.classes or info.classes
  o.lambdaR = o.lambdaR or (info.shared and 10 or 0)
  o.threads = o.threads or 0
  for _, k in ipairs { "batch_size", "steps", "image_size", "classes" } do
    if o[k] < 1 then fail("'--%s' must be at least 1, got %d", k, o[k]) end
  end
  for _, k in ipairs { "warmup", "threads", "lambdaR" } do
    if o[k] < 0 then fail("'--%s' must not be negative, got %s", k, show(o[k])) end
  end
  if info.shared_rank == nil then
    for _, k in ipairs { "shared_rank", "unique_rank" } do
      if o[k] ~= nil then fail("'--%s' is given but %s has no ranks", k, o.model) end
    end
  end
  for _, k in ipairs { "shared_rank", "unique_rank" } do
    if o[k] ~= nil and o[k] < 1 then fail("'--%s' must be at least 1, got %d", k, o[k]) end
  end
  local index = o.device:match("^cuda:(%d+)$")
  if not (o.device == "cpu" or o.device == "cuda" or index) then
    fail("'--device' must be cpu, cuda or cuda:N, got %s", show(o.device))
  end
  if o.device ~= "cpu" then
    if not lunet.cuda.available() then
      fail("'--device=%s': this build or machine has no usable CUDA device (lunet.cuda.available() "
           .. "is false); use --device=cpu", o.device)
    end
    local count = lunet.cuda.device_count()
    if index and tonumber(index) >= count then
      fail("'--device=%s': there %s only %d CUDA device%s (cuda:0 to cuda:%d)", o.device,
           count == 1 and "is" or "are", count, count == 1 and "" or "s", count - 1)
    end
  end
  return o
end

-- The synthetic batch on the device: images (N, C, H, W) f32, labels (N) i64 in
-- 1..classes.
local function synthetic_batch(o, channels)
  local device = { device = o.device }
  local images = lunet.randn({ o.batch_size, channels, o.image_size, o.image_size }, device)
  local labels = {}
  for i, u in ipairs(lunet.rand({ o.batch_size }):totable()) do
    labels[i] = math.min(o.classes, math.floor(u * o.classes) + 1)
  end
  return images, lunet.tensor(labels, { dtype = "i64", device = o.device })
end

-- Times the steps of the resolved options o; returns the result table of run().
local function measure(o)
  if o.threads > 0 then lunet.set_num_threads(o.threads) end
  local info = lunet.models.info(o.model)
  local model = lunet.models.build(o.model, { shared_rank = o.shared_rank, unique_rank = o.unique_rank,
                                              classes = o.classes })
  if o.device ~= "cpu" then model:to(o.device) end
  model:train()
  local params = model:parameters()
  local n_params = 0
  for _, p in ipairs(params) do n_params = n_params + p:numel() end
  local opt = lunet.optim.SGD(params, M.SGD)
  local images, labels = synthetic_batch(o, info.in_channels)
  local lambdaR = #(model.orthogonality_groups or {}) > 0 and o.lambdaR or 0

  local cuda = o.device ~= "cpu"
  if cuda then lunet.cuda.cudnn_benchmark(o.cudnn_benchmark) end
  local function step()
    opt:zero_grad()
    local loss = F.cross_entropy(model(images), labels)
    if lambdaR > 0 then loss = loss + lambdaR * lunet.reg.orthogonality(model) end
    loss:backward()
    opt:step()
    return loss
  end
  for _ = 1, o.warmup do step() end
  if cuda then lunet.cuda.synchronize() end
  local t0 = lunet.core.wall_clock()
  local loss
  for _ = 1, o.steps do loss = step() end
  if cuda then lunet.cuda.synchronize() end
  local seconds = lunet.core.wall_clock() - t0
  local loss_v = loss:item()
  if loss_v ~= loss_v or loss_v == math.huge or loss_v == -math.huge then
    fail("the loss is %s after %d steps (%s, batch %d, lambdaR %g): the step diverged", tostring(loss_v),
         o.warmup + o.steps, o.model, o.batch_size, lambdaR)
  end
  return {
    model = o.model, device = o.device, batch_size = o.batch_size, image_size = o.image_size,
    in_channels = info.in_channels, classes = o.classes, shared_rank = model.config.shared_rank,
    unique_rank = model.config.unique_rank, lambdaR = lambdaR, params = n_params,
    steps = o.steps, warmup = o.warmup, seconds = seconds, loss = loss_v,
    images_per_s = o.batch_size * o.steps / math.max(seconds, 1e-9),
    ms_per_step = 1000 * seconds / o.steps,
    threads = not cuda and lunet.get_num_threads() or nil,
    peak_device_bytes = cuda and lunet.cuda.memory_stats().peak_allocated or nil,
  }
end

--- Runs the benchmark. opts: the keys of KEYS (model required; json is ignored).
-- Returns {model, device, batch_size, image_size, in_channels, classes, shared_rank,
-- unique_rank (ranked models), lambdaR (0 when no penalty ran), params (each shared
-- tensor once), steps, warmup, seconds (of the timed steps), loss (the last step's),
-- images_per_s, ms_per_step, threads (CPU), peak_device_bytes (CUDA: the allocator's
-- peak since the process started)}. The number of CPU threads is restored afterwards.
function M.run(opts)
  local o = M.resolve(opts)
  o.json = nil
  local threads = lunet.get_num_threads()
  local ok, r = pcall(measure, o)
  lunet.set_num_threads(threads)
  if not ok then error(r, 0) end
  return r
end

--- The result as text: the setup line, the rate line and, on CUDA, the memory line.
function M.format(r)
  local format_int = require("lunet.summary").format_int
  local ranks = r.shared_rank and (" S%dU%d"):format(r.shared_rank, r.unique_rank) or ""
  local lines = {
    ("lunet bench: %s%s, %s parameters, device %s%s, batch %d, images %dx%dx%d, %d classes, lambdaR %g")
      :format(r.model, ranks, format_int(r.params), r.device,
              r.threads and (" (%d threads)"):format(r.threads) or "", r.batch_size, r.in_channels,
              r.image_size, r.image_size, r.classes, r.lambdaR),
    ("%.1f img/s, %.2f ms/step over %d steps (warm-up %d); last loss %.4f"):format(
      r.images_per_s, r.ms_per_step, r.steps, r.warmup, r.loss),
  }
  if r.peak_device_bytes then
    lines[#lines + 1] = ("peak device memory %.1f MiB"):format(r.peak_device_bytes / 2^20)
  end
  return table.concat(lines, "\n")
end

-------------------------------------------------------------------------- the CLI
function M.usage()
  local lines = {
    "usage: lunet bench --model=NAME [--batch_size=256] [--device=cpu|cuda|cuda:N] [--steps=20] [--json]\n",
    "Training images/s of a zoo model on one synthetic batch: SGD (lr 0.1, momentum 0.9,\n",
    "weight decay 1e-4) on cross-entropy + lambdaR x orthogonality, as lunet train steps.\n",
    "Flags:\n",
  }
  for _, k in ipairs(M.KEYS) do
    lines[#lines + 1] = ("  --%-14s %s\n"):format(k[1], k[3])
  end
  return table.concat(lines)
end

local function strip(msg) return (tostring(msg):gsub("^config: ", ""):gsub("^bench: ", "")) end

--- `lunet bench ...`: returns the exit status: 0, 2 for bad arguments (the message on
-- stderr), 1 when the run fails (an op's error, a diverged loss).
function M.main(...)
  local ok, flags, positional, help = pcall(config.parse_flags, { ... }, M.KEYS)
  local function usage_error(msg)
    io.stderr:write("lunet bench: ", strip(msg), "\n(`lunet bench --help` lists the flags)\n")
    return 2
  end
  if not ok then return usage_error(flags) end
  if help then
    io.stdout:write(M.usage())
    return 0
  end
  if #positional > 0 then return usage_error(("unexpected argument '%s'"):format(positional[1])) end
  local json = flags.json
  flags.json = nil
  local okr, o = pcall(M.resolve, flags)
  if not okr then return usage_error(o) end
  local okm, r = pcall(M.run, o)
  if not okm then
    io.stderr:write("lunet bench: ", strip(r), "\n")
    return 1
  end
  if json then
    io.stdout:write(lunet.io.json_encode(r), "\n")
  else
    io.stdout:write(M.format(r), "\n")
  end
  return 0
end

return M
