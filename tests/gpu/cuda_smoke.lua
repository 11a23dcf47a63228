-- GPU smoke test through the Lua API, run by scripts/gpu_run.sh on the GPU machine
-- (`lunet tests/gpu/cuda_smoke.lua`): tensors moved to cuda, relu, relu6 and sigmoid
-- forward and backward against the CPU, gradient accumulation on the device, conv2d
-- on the device, and clear errors for mixed devices and bad labels. Exits 77
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

print(string.format("%d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
