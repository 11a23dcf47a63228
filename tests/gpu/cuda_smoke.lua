-- GPU smoke test through the Lua API, run by scripts/gpu_run.sh on the GPU machine
-- (`lunet tests/gpu/cuda_smoke.lua`): tensors moved to cuda, relu, relu6 and sigmoid
-- forward and backward against the CPU, gradient accumulation on the device, conv2d
-- on the device, clear errors for mixed devices and bad labels, pinned memory and a
-- loader with device = "cuda:0". Exits 77
-- (skipped) when no CUDA device is usable.
local lunet = require "lunet"
local F = lunet.nn.functional

if not lunet.cuda.available() then
  print("SKIPPED: no CUDA device")
  os.exit(77)
end

local passed, failed = 0, 0
local function check(cond, what)
  if cond then passed = passed + 1 else failed = failed + 1; print("FAIL " .. what) end
end
local function max_abs_diff(a, b)
  local x, y = a:cpu():reshape(-1):totable(), b:cpu():reshape(-1):totable()
  local m = 0
  for i = 1, #x do m = math.max(m, math.abs(x[i] - y[i])) end
  return m
end

print("cuda devices: " .. lunet.cuda.device_count())
lunet.manual_seed(3)
for _, n in ipairs({1, 1000, 4097, 1 << 20}) do
  for _, name in ipairs({"relu", "relu6", "sigmoid"}) do
    local xc = (lunet.randn{n} * 4):requires_grad(true)
    local xg = xc:detach():cuda():requires_grad(true)
    check(xg:device() == "cuda:0", "tensor moved to cuda:0")
    local yc, yg = F[name](xc), F[name](xg)
    check(yg:device() == "cuda:0", name .. " output stays on the device")
    check(max_abs_diff(yc, yg) <= 1e-6, name .. " forward matches the CPU, n=" .. n)
    local gc = lunet.randn{n}
    yc:backward(gc)
    yg:backward(gc:cuda())
    check(xg.grad ~= nil and xg.grad:device() == "cuda:0", name .. " gradient on the device")
    check(max_abs_diff(xc.grad, xg.grad) <= 1e-6, name .. " backward matches the CPU, n=" .. n)
  end
end

-- a tensor used twice on the device: gradients add up
local x = lunet.randn{64}:cuda():requires_grad(true)
local g = lunet.ones{64}:cuda()
F.relu(x):backward(g)
F.relu(x):backward(g)
local want = (x:cpu():totable())
local got = x.grad:cpu():totable()
local ok = true
for i = 1, 64 do ok = ok and got[i] == (want[i] > 0 and 2 or 0) end
check(ok, "gradient accumulation on the device")

-- mixed devices and missing kernels are errors with messages, not crashes
local okm, msg = pcall(function() return lunet.randn{3}:cuda() + lunet.randn{3} end)
check(not okm and tostring(msg):find("device"), "mixed-device add is an error: " .. tostring(msg))
local cx, cw = lunet.randn{2, 3, 7, 7}, lunet.randn{4, 3, 3, 3}
local okc, yc = pcall(F.conv2d, cx:cuda(), cw:cuda(), nil, { padding = 1 })
check(okc and yc:device() == "cuda:0", "conv2d runs on cuda: " .. tostring(okc and "" or yc))
check(okc and max_abs_diff(yc, F.conv2d(cx, cw, nil, { padding = 1 })) <= 1e-4, "conv2d on cuda matches the CPU")
local okl, msgl = pcall(F.cross_entropy, lunet.randn{2, 3}:cuda(), lunet.tensor({1, 4}, { dtype = "i64" }):cuda())
check(not okl and tostring(msgl):find("label"), "a bad label on cuda is an error: " .. tostring(msgl))

-- pinned memory and a loader that hands out device batches
local h = lunet.randn{64, 5}
local p = h:pin_memory()
check(p:is_pinned() and not h:is_pinned() and p:device() == "cpu", "pin_memory gives a pinned CPU tensor")
local d = p:to("cuda:0")
p = nil
collectgarbage("collect")
check(max_abs_diff(d, h) == 0, "a pinned tensor copies to the device unchanged")
check(lunet.cuda.memory_stats().pinned_cached > 0, "memory_stats reports the pinned cache")
local ds = lunet.data.synthetic { shape = { 3, 8, 8 }, classes = 4, size = 20, seed = 2 }
local lc = lunet.data.loader { dataset = ds, batch_size = 6, workers = 2, seed = 1 }
local lg = lunet.data.loader { dataset = ds, batch_size = 6, workers = 2, seed = 1, device = "cuda:0" }
local nextc, nextg = lc:epoch(1), lg:epoch(1)
local same, n = true, 0
while true do
  local xc, yc = nextc()
  local xg, yg = nextg()
  if xc == nil or xg == nil then same = same and xc == xg; break end
  n = n + 1
  same = same and xg:device() == "cuda:0" and yg:device() == "cuda:0"
         and max_abs_diff(xg, xc) == 0 and max_abs_diff(yg:to("f32"), yc:to("f32")) == 0
end
check(same and n == 4, "a cuda loader gives the CPU loader's batches on the device")
lc:close()
lg:close()

print(string.format("%d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
