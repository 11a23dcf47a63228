-- PyTorch checkpoints and CUDA tensors, run on the GPU machine by scripts/gpu_run.sh
-- (`lunet tests/gpu/pth_cuda.lua` from the repository root): a .pth loaded into a
-- model that lives on the device, a device model exported back (the writer copies
-- each storage to the host once, shared bases stay one storage), and device tensors
-- and their strided views saved and read back. Exits 77 (skipped) without a device.
local lunet = require "lunet"
local pth = require "lunet.pth"

if not lunet.cuda.available() then
  print("SKIPPED: no CUDA device")
  os.exit(77)
end

local passed, failed = 0, 0
local function check(cond, what)
  if cond then passed = passed + 1 else failed = failed + 1; print("FAIL " .. what) end
end

local FIX = "tests/fixtures/pth/resnet34ds.pth"
local sd = pth.read_state_dict(FIX)

-- a model on the device takes the .pth's values (host -> device copies)
local model = lunet.models.build("ResNet34_DoubleShared", pth.infer_options("ResNet34_DoubleShared", sd.tensors))
model:to("cuda")
local report = pth.load_into(model, sd)
check(report.loaded == 370 and report.copies_checked == 24, "load_into a CUDA model: 370 tensors, 24 copies")
local mine = model:state_dict()
local same = true
for name, t in pairs(mine.tensors) do
  check(t:device():match("^cuda") ~= nil, name .. " stays on the device")
  same = same and t:cpu():equal(sd.tensors[name])
end
check(same, "device tensors hold the file's values")
check(rawequal(model.shared_basis_2_1.weight, model.layer2[2].shared_basis_1.weight), "sharing kept on the device")

-- the device model exported: every key of the authors' layout, values equal
local path = os.tmpname() .. ".pth"
local n = pth.export(path, model, { prefix = "module.", epoch = 1 })
check(n == 394, "export of a CUDA model: 394 keys")
local back = pth.read_state_dict(path)
os.remove(path)
local equal = #back.order == #sd.order
for _, k in ipairs(sd.order) do equal = equal and back.tensors[k] ~= nil and back.tensors[k]:equal(sd.tensors[k]) end
check(equal, "exported values equal the file's")

-- a device tensor and a transposed view of it
local t = lunet.randn { 3, 5 }
local d = t:cuda()
path = os.tmpname() .. ".pth"
pth.save(path, pth.dict({ "d", "dt" }, { d = d, dt = d:transpose(1, 2) }))
local v = pth.load(path)
os.remove(path)
check(v.d:device() == "cpu" and v.d:equal(t), "device tensor saved and read back on the host")
check(v.dt:equal(t:transpose(1, 2)), "device view saved with its strides")

print(("pth_cuda: %d passed, %d failed"):format(passed, failed))
os.exit(failed == 0 and 0 or 1)
