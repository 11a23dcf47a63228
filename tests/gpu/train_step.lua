-- GPU check of a whole training step through the Lua API, run by scripts/gpu_run.sh
-- on the GPU machine (`lunet tests/gpu/train_step.lua`): ResNet20_DoubleShared (CIFAR,
-- 32x32) and a small MobileNetV2_SharedDouble (10 classes, 64x64) each take one step,
-- forward, cross_entropy + 10 * lunet.reg.orthogonality, backward, first on the CPU
-- and then, from the same weights, data and dropout seed, on CUDA after
-- model:to("cuda:0"). The losses and every parameter's gradient must agree: a
-- gradient within GRAD_TOL of its own largest magnitude plus GRAD_FLOOR of the
-- model's largest gradient (gradients that are 0 in exact arithmetic, such as a bias
-- followed by batch norm, are rounding noise on both devices); lunet.cuda.memory_stats() and
-- lunet.cuda.synchronize() are exercised on the way. Exits 77 (skipped) when no CUDA
-- device is usable, unless LUNET_GPU_REHEARSE=1: then the second side is the CPU
-- with the reference kernels, which rehearses the script itself on any machine.
local lunet = require "lunet"
local F = lunet.nn.functional

local device = "cuda:0"
local rehearse = not lunet.cuda.available()
if rehearse then
  if os.getenv("LUNET_GPU_REHEARSE") ~= "1" then
    print("SKIPPED: no CUDA device")
    os.exit(77)
  end
  device = "cpu"
  print("no CUDA device: rehearsing with the reference CPU kernels as the second side")
end

local LOSS_TOL = 1e-4   -- relative
local GRAD_TOL = 1e-3   -- of the gradient's largest magnitude
local GRAD_FLOOR = 1e-5 -- of the model's largest gradient magnitude

local passed, failed = 0, 0
local function check(cond, what)
  if cond then passed = passed + 1 else failed = failed + 1; print("FAIL " .. what) end
  return cond
end

-- max |b| and max |a - b| over all elements (a and b on any device)
local function max_abs_and_diff(a, b)
  local x, y = a:cpu():reshape(-1):totable(), b:cpu():reshape(-1):totable()
  local m, d = 0, 0
  for i = 1, #y do
    m = math.max(m, math.abs(y[i]))
    d = math.max(d, math.abs(x[i] - y[i]))
  end
  return m, d
end

-- One step's loss value; the gradients are left in the parameters' .grad.
local function step(model, x, labels)
  model:zero_grad()
  lunet.manual_seed(99) -- the same dropout mask on both devices (drawn on the host)
  local loss = F.cross_entropy(model(x), labels) + 10 * lunet.reg.orthogonality(model)
  loss:backward()
  return loss:item()
end

-- with LUNET_GPU_BISECT=1, or when a model's gradients disagree: where the devices
-- part ways, module by module (tests/gpu/lib/grad_bisect.lua)
local here = (arg and arg[0] or "tests/gpu/train_step.lua"):match("^(.*)/[^/]*$") or "."
local bisect = dofile(here .. "/lib/grad_bisect.lua")
local always_bisect = os.getenv("LUNET_GPU_BISECT") == "1"

local function run(name, opts, shape)
  local failed_before = failed
  lunet.manual_seed(7)
  local model = lunet.models.build(name, opts)
  local classes = model.config.classes
  local x = lunet.randn(shape)
  local lab = {}
  for i = 1, shape[1] do lab[i] = (i * 7) % classes + 1 end
  local labels = lunet.tensor(lab, { dtype = "i64" })

  local loss_cpu = step(model, x, labels)
  local named = model:named_parameters()
  local want, gmax = {}, 0
  for i, e in ipairs(named) do
    check(e[2].grad ~= nil, name .. ": " .. e[1] .. " has a CPU gradient")
    want[i] = e[2].grad and e[2].grad:clone()
    if want[i] then gmax = math.max(gmax, (max_abs_and_diff(want[i], want[i]))) end
  end

  model:zero_grad()
  model:to(device)
  if rehearse then lunet.set_backend("ref") end
  local loss_gpu = step(model, x:to(device), labels:to(device))
  lunet.set_backend("auto")
  lunet.cuda.synchronize()
  print(("%s: loss %.7f on the CPU, %.7f on %s, %d parameters"):format(
    name, loss_cpu, loss_gpu, device, #named))
  check(math.abs(loss_cpu - loss_gpu) <= LOSS_TOL * math.abs(loss_cpu),
        ("%s: loss %.9g on cuda vs %.9g on the CPU"):format(name, loss_gpu, loss_cpu))
  local worst, worst_name = 0, "-"
  for i, e in ipairs(named) do
    local g = e[2].grad
    if check(g ~= nil and g:device() == device, name .. ": " .. e[1] .. " has a gradient on " .. device)
        and want[i] then
      local m, d = max_abs_and_diff(g, want[i])
      local ratio = d / (GRAD_TOL * m + GRAD_FLOOR * gmax) -- <= 1 passes
      if ratio > worst then worst, worst_name = ratio, e[1] end
      check(ratio <= 1, ("%s: gradient of %s differs by %.3g (its largest value %.3g, the model's %.3g)"):format(
        name, e[1], d, m, gmax))
    end
  end
  print(("%s: worst gradient difference %.3g of the tolerance (%s)"):format(name, worst, worst_name))
  if always_bisect or failed > failed_before then
    local function build()
      lunet.manual_seed(7)
      return lunet.models.build(name, opts)
    end
    bisect.run(build, x, labels, step, device, { second_backend = rehearse and "ref" or nil })
  end

  local s = lunet.cuda.memory_stats()
  check(rehearse or (s.allocated > 0 and s.peak_allocated >= s.allocated and s.n_cuda_malloc > 0),
        name .. ": memory_stats reports the model's device memory")
  print(("%s: cuda memory allocated %.1f MiB, peak %.1f MiB, cached %.1f MiB, %d cudaMalloc, %d reused"):format(
    name, s.allocated / 2 ^ 20, s.peak_allocated / 2 ^ 20, s.cached / 2 ^ 20, s.n_cuda_malloc, s.n_reused))
end

run("ResNet20_DoubleShared", {}, { 8, 3, 32, 32 })
run("MobileNetV2_SharedDouble", { classes = 10 }, { 4, 3, 64, 64 })

collectgarbage("collect")
collectgarbage("collect") -- the dead tensors' blocks back in the cache, then to the driver
lunet.cuda.synchronize()
lunet.cuda.empty_cache()
check(lunet.cuda.memory_stats().cached == 0, "empty_cache leaves nothing cached")

print(("%d passed, %d failed"):format(passed, failed))
os.exit(failed == 0 and 0 or 1)
