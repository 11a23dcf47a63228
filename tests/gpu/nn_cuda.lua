-- GPU check of lunet.nn through the Lua API, run by scripts/gpu_run.sh on the GPU
-- machine (`lunet tests/gpu/nn_cuda.lua`): Module:to("cuda") moves every parameter,
-- buffer and gradient in place (the tensor objects and the sharing survive) and back
-- to the CPU unchanged; the initialisers (uniform_, orthogonal_, orthogonal_joint_)
-- fill CUDA tensors; a ReLU module runs on the device. Exits 77 (skipped) when no
-- CUDA device is usable.
local lunet = require "lunet"
local nn = lunet.nn

if not lunet.cuda.available() then
  print("SKIPPED: no CUDA device")
  os.exit(77)
end

local passed, failed = 0, 0
local function check(cond, what)
  if cond then passed = passed + 1 else failed = failed + 1; print("FAIL " .. what) end
end

-- max |M M^T - I| of t viewed as (rows, rest), rows <= rest, computed on the CPU in f64.
local function orth_error(t)
  local m = t:cpu():to("f64")
  m = m:reshape(m:size(1), -1)
  local worst = 0
  for i, row in ipairs(m:matmul(m:t()):totable()) do
    for j, x in ipairs(row) do worst = math.max(worst, math.abs(x - (i == j and 1 or 0))) end
  end
  return worst
end

lunet.manual_seed(5)
local basis = nn.FilterBasis(4, 2, 3)
local net = nn.Sequential(nn.Conv2d(3, 4, 3, { padding = 1 }), nn.BasisConv2d(basis, 1, 4),
                          nn.BasisConv2d(basis, 1, 4), nn.ReLU())
net(lunet.randn { 2, 3, 5, 5 }):sum():backward()
local before = {}
for name, t in pairs(net:state_dict().tensors) do before[name] = t:clone() end
local params = net:parameters()
local w = basis.weight

check(net:to("cuda") == net, "to returns the module")
check(rawequal(w, net[2].shared_basis.weight) and rawequal(w, net[3].shared_basis.weight),
      "the shared basis is one object after to('cuda')")
for i, p in ipairs(net:parameters()) do
  check(rawequal(p, params[i]), "parameter " .. i .. " keeps its identity")
  check(p:device() == "cuda:0", "parameter " .. i .. " on cuda:0")
  check(p:requires_grad(), "parameter " .. i .. " still requires grad")
  check(p.grad ~= nil and p.grad:device() == "cuda:0", "parameter " .. i .. " grad on cuda:0")
end
for _, e in ipairs(net:named_buffers()) do
  check(e[2]:device() == "cuda:0", "buffer " .. e[1] .. " on cuda:0")
end
check(net[2].basis_bn.num_batches_tracked:dtype() == "i64", "num_batches_tracked stays i64")
local y = net[4](lunet.randn { 3, 4 }:cuda())
check(y:device() == "cuda:0", "a ReLU module runs on the device")

net:to("cpu")
for name, t in pairs(net:state_dict().tensors) do
  check(t:device() == "cpu" and t:equal(before[name]), name .. " back on the CPU unchanged")
end

local g = lunet.empty({ 64, 32, 3, 3 }, { device = "cuda" })
nn.init.orthogonal_(g)
check(g:device() == "cuda:0" and orth_error(g) < 1e-5, "orthogonal_ on a CUDA tensor")
local a, b = lunet.empty({ 8, 16 }, { device = "cuda" }), lunet.empty { 8, 16 }
nn.init.orthogonal_joint_({ a, b })
check(orth_error(lunet.cat({ a:cpu(), b }, 1)) < 1e-5, "orthogonal_joint_ over a CUDA and a CPU tensor")
local u = nn.init.uniform_(lunet.empty({ 1000 }, { device = "cuda" }), -0.5, 0.5)
local lo, hi = math.huge, -math.huge
for _, x in ipairs(u:cpu():totable()) do lo, hi = math.min(lo, x), math.max(hi, x) end
check(lo >= -0.5 and hi <= 0.5 and hi - lo > 0.9, "uniform_ on a CUDA tensor")

print(("%d passed, %d failed"):format(passed, failed))
os.exit(failed == 0 and 0 or 1)
