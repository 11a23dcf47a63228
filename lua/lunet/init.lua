--- lunet: tensors, autograd and the ops of a small CNN toolkit, scripted from Lua 5.4.
-- `local lunet = require "lunet"` gives the user-facing module. It is built on the C
-- module `lunet.core` (bindings/), which this file re-exports with Lua sugar:
-- constructors, grad mode, threads, CUDA queries, `lunet.nn.functional` and
-- `lunet.autograd.Function`. Positions are 1-based everywhere (dims, narrow start,
-- class labels).
-- @module lunet
local core = require "lunet.core"
local autograd = require "lunet.autograd"
require "lunet.tensor" -- installs the Lua-side tensor methods and printing

local lunet = {
  core = core,
  Tensor = core.Tensor,
  autograd = autograd,
  version = "0.1.0",
}

--- Constructors.
-- `tensor(data[, opts])`: data is a number, a nested table of numbers, or a tensor
-- (copied). `zeros/ones/empty/randn/rand(shape[, opts])` take the shape as a table or
-- as numbers; `full(shape, value[, opts])` takes a table. opts:
-- `{dtype = "f32"|"f64"|"i64"|"i32"|"u8" (or an alias), device = "cpu"|"cuda[:N]",
-- requires_grad = bool}`.
-- @section constructors
lunet.tensor = core.tensor
lunet.zeros = core.zeros
lunet.ones = core.ones
lunet.empty = core.empty
lunet.full = core.full
lunet.randn = core.randn
lunet.rand = core.rand

--- True for a live tensor.
lunet.is_tensor = core.is_tensor

--- Seeds the context's random number generator.
lunet.manual_seed = core.manual_seed
lunet.initial_seed = core.initial_seed
--- The context RNG's state: 4 unsigned 64-bit words as decimal strings (checkpoints).
lunet.get_rng_state = core.get_rng_state
lunet.set_rng_state = core.set_rng_state

--- Grad mode.
-- @section grad
lunet.no_grad = autograd.no_grad
lunet.enable_grad = autograd.enable_grad
lunet.is_grad_enabled = core.is_grad_enabled
lunet.set_grad_enabled = core.set_grad_enabled

--- CPU threads used by the kernels (n <= 0: all cores).
lunet.set_num_threads = core.set_num_threads
lunet.get_num_threads = core.get_num_threads

--- Which kernels CPU ops use: "auto" (fast f32 kernels) or "ref" (the reference).
lunet.set_backend = core.set_backend
lunet.get_backend = core.get_backend

--- CUDA: whether this build has CUDA and a usable device, and how many devices.
lunet.cuda = {
  available = core.cuda_available,
  device_count = core.cuda_device_count,
}

lunet.nn = require "lunet.nn"

--- Parts loaded on first use: `lunet.models` (the model zoo), `lunet.reg` (the
-- orthogonality regulariser), `lunet.data` (datasets and loaders), `lunet.optim`
-- (SGD, schedules), `lunet.checkpoint`, `lunet.io` (safetensors, JSON) and
-- `lunet.summary(model, input_shape)`.
lunet.summary = function(...) return require("lunet.summary").summary(...) end
--- `lunet.train(config)`: the training loop (lua/lunet/train.lua).
lunet.train = function(...) return require("lunet.train").train(...) end
setmetatable(lunet, {
  __index = function(t, k)
    if k == "models" or k == "reg" or k == "data" or k == "optim" or k == "checkpoint"
        or k == "io" then
      local m = require("lunet." .. k)
      rawset(t, k, m)
      return m
    end
  end,
})

--- Ops on tensors, also reachable as lunet.X: matmul, cat, sum, mean...
for _, name in ipairs { "add", "sub", "mul", "div", "matmul", "cat", "sum", "mean",
                        "reshape", "transpose", "narrow", "contiguous", "pow" } do
  lunet[name] = core[name]
end

return lunet
