--- `lunet demo` (`make demo`): trains a shared-basis ResNet on Fashion-MNIST
-- (/usr/share/datasets/fashion-mnist, Debian's dataset-fashion-mnist) in a few minutes
-- on a laptop-class CPU, then prints the test accuracy, the parameter count against
-- the same network without sharing, and where the checkpoint, the log and the plot are.
--
-- The run is lunet.train with the configuration `recipe` below (the same as
-- recipes/fashion_mnist_demo.lua); flags override it as for `lunet train`, e.g.
-- `lunet demo --out=/tmp/demo --epochs=5`.
-- @module lunet.demo
local lunet = require "lunet"
local config = require "lunet.config"

local M = {}

--- The demo's configuration: ResNet14_DoubleShared S8U1 (the CIFAR ResNet layout of
-- method.md section 3 with 2 blocks per group: groups of 16/32/64 channels whose
-- second block is built on the group's two shared 3x3 bases of 8*2^(g-1) filters) for
-- 28x28 grayscale images with a stride-2 stem, so that the feature maps are 14x14,
-- 7x7 and 4x4; no augmentation (a short run underfits); 4 epochs of a one-cycle-like
-- schedule (linear warm-up over the first epoch, then cosine to zero). Measured on
-- the 2-core development machine while other jobs loaded it: 91.95% test accuracy in
-- 6 min 46 s.
M.recipe = {
  name = "FashionMNIST-ResNet14-S8U1 (demo)",
  model = "ResNet14_DoubleShared", shared_rank = 8, unique_rank = 1, stem_stride = 2,
  dataset = "fashion-mnist", augment = false,
  batch_size = 128, lr = 0.1, momentum = 0.9, weight_decay = 5e-4, lambdaR = 10,
  epochs = 4, schedule = "cosine", warmup_epochs = 1, warmup_start_factor = 0.1,
  out = "runs/demo",
}

local function count_params(model)
  local n = 0
  for _, p in ipairs(model:parameters()) do n = n + p:numel() end
  return n
end

local function thousands(n)
  local s = tostring(n)
  repeat
    local k
    s, k = s:gsub("^(%d+)(%d%d%d)", "%1,%2")
  until k == 0
  return s
end

--- Runs the demo with optional `--key=value` flags; returns the exit status.
-- (The lunet executable runs OpenMP with passive waits unless OMP_WAIT_POLICY is
-- set: spinning threads would starve the data loader; see bindings/main.c.)
function M.run(...)
  local args = { ... }
  if type(args[1]) == "table" then args = {} end -- called as a library function without flags
  local ok, flags, positional, help = pcall(config.parse_flags, args)
  if not ok then
    io.stderr:write("lunet demo: ", (tostring(flags):gsub("^config: ", "")), "\n")
    return 2
  end
  if help then
    io.stdout:write("usage: lunet demo [--key=value ...]   (the keys of `lunet train --help`)\n")
    return 0
  end
  if #positional > 0 then
    io.stderr:write(("lunet demo: unexpected argument '%s'\n"):format(positional[1]))
    return 2
  end
  local okc, cfg = pcall(config.resolve, M.recipe, flags)
  if not okc then
    io.stderr:write("lunet demo: ", (tostring(cfg):gsub("^config: ", "")), "\n")
    return 2
  end
  io.stdout:write(("lunet demo: a shared-basis ResNet (%s) learns Fashion-MNIST (60,000 training "
                   .. "and 10,000 test images of clothing, 28x28) for %d epochs on the CPU.\n"):format(
    cfg.model, cfg.epochs))
  local t0 = lunet.core.wall_clock()
  local result = lunet.train(cfg)
  local seconds = lunet.core.wall_clock() - t0
  if result.status ~= "done" then
    io.stdout:write(("interrupted: continue with `lunet demo --resume` (checkpoint %s)\n"):format(
      result.checkpoint))
    return 130
  end
  local last = result.last
  local unshared_name = cfg.model:gsub("_DoubleShared$", "")
  local shared_n = count_params(result.model)
  local plain_n = count_params(lunet.models.build(unshared_name, { dataset = cfg.dataset,
                                                                  stem_stride = cfg.stem_stride }))
  io.stdout:write(("\ntest accuracy %.2f%% (%d/%d) after %d epoch%s in %s\n"):format(
    last.test_acc1, last.test_correct1, last.test_count, cfg.epochs, cfg.epochs == 1 and "" or "s",
    require("lunet.progress").duration(seconds)))
  io.stdout:write(("parameters: %s for %s, %s for the unshared %s (%.1f%% fewer)\n"):format(
    thousands(shared_n), cfg.model, thousands(plain_n), unshared_name,
    100 * (plain_n - shared_n) / plain_n))
  io.stdout:write(("checkpoint: %s (best: %s)\nlog:        %s\nplot:       %s\n"):format(
    result.paths.last, result.paths.best, result.paths.metrics, result.paths.curves))
  io.stdout:write(("evaluate it again with: lunet eval --pretrained=%s\n"):format(result.paths.last))
  return 0
end

return M
