-- GPU check of lunet.io and lunet.checkpoint, run by scripts/gpu_run.sh on the GPU
-- machine (`lunet tests/gpu/checkpoint_cuda.lua`): CUDA tensors (strided ones too) are
-- written to safetensors with their values; a model moved to CUDA saves a checkpoint
-- equal to its values, restores into another CUDA model (values equal, sharing and
-- devices kept); optimiser momentum buffers are restored onto the parameters' device.
-- Exits 77 (skipped) when no CUDA device is usable.
local lunet = require "lunet"

if not lunet.cuda.available() then
  print("SKIPPED: no CUDA device")
  os.exit(77)
end

local passed, failed = 0, 0
local function check(cond, what)
  if cond then passed = passed + 1 else failed = failed + 1; print("FAIL " .. what) end
end

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p '" .. dir .. "'")

-- io: a CUDA tensor and a strided CUDA view
lunet.manual_seed(1)
local a = lunet.randn { 3, 5 }
local g = a:to("cuda")
lunet.io.save_safetensors(dir .. "/t.safetensors", { g = g, gt = g:transpose(1, 2), i = lunet.tensor({ 1, 2 }, { dtype = "i64" }):to("cuda") })
local back = lunet.io.load_safetensors(dir .. "/t.safetensors")
check(back.g:device() == "cpu" and back.g:equal(a), "CUDA tensor written with its values")
check(back.gt:equal(a:transpose(1, 2):contiguous()), "strided CUDA view written row-major")
check(back.i:dtype() == "i64" and back.i:totable()[2] == 2, "i64 CUDA tensor")

-- checkpoint of a CUDA model with shared bases
local function model(seed)
  lunet.manual_seed(seed)
  local m = lunet.models.build("ResNet20_DoubleShared", { classes = 10 })
  lunet.no_grad(function()
    for _, t in ipairs(m:parameters()) do t:copy(lunet.randn(t:shape(), { dtype = t:dtype() })) end
  end)
  return m
end
local m = model(2):to("cuda")
local opt = lunet.optim.SGD(m:parameters(), { lr = 0.1, momentum = 0.9 })
local bufs = {}
for i, p in ipairs(m:parameters()) do bufs[i] = lunet.randn(p:shape()) end
opt:load_state_dict({ momentum_buffers = bufs, steps = 3 })
check(opt:state_dict().momentum_buffers[1]:device() == "cuda:0", "buffers restored on the parameters' device")
local path = dir .. "/ck.safetensors"
lunet.checkpoint.save(path, { model = m, optimizer = opt, epoch = 5 })
local ck = lunet.checkpoint.load(path)
local sd = m:state_dict()
local all_equal = true
for name, t in pairs(sd.tensors) do
  if not (ck.tensors[name] and ck.tensors[name]:equal(t:cpu())) then all_equal = false; print("differs: " .. name) end
end
check(all_equal, "every tensor of the CUDA model saved with its values")
local buf_equal = true
for i, p in ipairs(opt.params) do
  local name
  for n, t in pairs(sd.tensors) do if rawequal(t, p) then name = n end end
  if not ck.optimizer.buffers.momentum[name]:equal(bufs[i]) then buf_equal = false end
end
check(buf_equal, "momentum buffers saved from the device")

local m2 = model(3):to("cuda")
local opt2 = lunet.optim.SGD(m2:parameters(), { lr = 1 })
lunet.checkpoint.restore(path, { model = m2, optimizer = opt2 })
local sd2 = m2:state_dict()
local same, on_device = true, true
for name, t in pairs(sd.tensors) do
  if not sd2.tensors[name]:cpu():equal(t:cpu()) then same = false end
  if sd2.tensors[name]:device() ~= "cuda:0" then on_device = false end
end
check(same, "restored CUDA model equals the saved one")
check(on_device, "restored tensors stay on cuda:0")
local alias, canon = next(sd2.aliases)
check(alias ~= nil and sd2.aliases[alias] == canon, "aliases kept")
check(opt2.steps == 3 and opt2:state_dict().momentum_buffers[2]:device() == "cuda:0", "optimiser restored on the device")

-- a checkpoint saved from the CPU restores into a CUDA model
local cpu = model(4)
lunet.checkpoint.save(dir .. "/cpu.safetensors", { model = cpu })
local m3 = model(5):to("cuda")
lunet.checkpoint.restore(dir .. "/cpu.safetensors", { model = m3 })
local ok3 = true
for name, t in pairs(cpu:state_dict().tensors) do
  if not m3:state_dict().tensors[name]:cpu():equal(t) then ok3 = false end
end
check(ok3, "CPU checkpoint restored into a CUDA model")

os.execute("rm -rf '" .. dir .. "'")
print(("%d passed, %d failed"):format(passed, failed))
os.exit(failed == 0 and 0 or 1)
