--- Evaluation: top-1 / top-5 accuracy and mean loss of a model over a loader, and the
-- `lunet eval` command.
--
--     local r = require("lunet.evaluate").run(model, loader)
--     print(r.correct1, r.correct5, r.count, r.loss)
--
--     lunet eval --model=NAME --pretrained=FILE --dataset_path=DIR [--dataset=D]
--                [--batch_size=N] [--shared_rank=S --unique_rank=U] [--workers=N]
--                [--threads=N] [--device=cpu]
-- prints "top-1 error 8.91% (891/10000)" and the top-5 line. With a checkpoint
-- written by lunet train, --model and the dataset default to the run's.
-- @module lunet.evaluate
local lunet = require "lunet"
local config = require "lunet.config"

local M = {}

local F = lunet.nn.functional

--- Runs the model in evaluation mode (restored afterwards) under no_grad over one
-- pass of the loader (its epoch 1). Returns {count, correct1, correct5, loss (mean
-- cross-entropy), seconds}. opts: device (inputs are moved there; default: as they
-- come), on_batch = function(done, batches) (progress).
function M.run(model, loader, opts)
  opts = opts or {}
  local was_training = model.training
  model:eval()
  local t0 = lunet.core.wall_clock()
  local count, c1, c5, loss_sum = 0, 0, 0, 0
  local batches = #loader
  local ok, err = pcall(lunet.no_grad, function()
    local done = 0
    for x, y in loader:epoch(1) do
      if opts.device and opts.device ~= "cpu" then x, y = x:to(opts.device), y:to(opts.device) end
      local logits = model(x)
      local n = x:size(1)
      local k5 = math.min(5, logits:size(2))
      loss_sum = loss_sum + F.cross_entropy(logits, y):item() * n
      c1 = c1 + F.topk_correct(logits, y, 1)
      c5 = c5 + F.topk_correct(logits, y, k5)
      count = count + n
      done = done + 1
      if opts.on_batch then opts.on_batch(done, batches) end
    end
  end)
  model:train(was_training)
  if not ok then error(err, 0) end
  return { count = count, correct1 = c1, correct5 = c5, loss = count > 0 and loss_sum / count or 0 / 0,
           seconds = lunet.core.wall_clock() - t0 }
end

--- The evaluation dataset of a configuration (config.resolve's fields dataset and
-- dataset_path): the test split (CIFAR, Fashion-MNIST) or val/ (ILSVRC).
function M.test_dataset(cfg)
  local data = lunet.data
  if cfg.dataset == "fashion-mnist" then
    return data.fashion_mnist { root = cfg.dataset_path, train = false }
  elseif cfg.dataset == "cifar10" or cfg.dataset == "cifar100" then
    return data.cifar { root = cfg.dataset_path, version = cfg.dataset == "cifar10" and 10 or 100,
                        train = false }
  end
  return data.image_folder { root = cfg.dataset_path, split = "val" }
end

--- "top-1 error 8.91% (891/10000)" lines of a result of run().
function M.report(r)
  local function line(k, correct)
    local wrong = r.count - correct
    return ("top-%d error %.2f%% (%d/%d)"):format(k, 100 * wrong / math.max(r.count, 1), wrong, r.count)
  end
  return line(1, r.correct1) .. "\n" .. line(5, r.correct5)
end

local EVAL_KEYS = { "model", "pretrained", "dataset", "dataset_path", "batch_size", "shared_rank",
                    "unique_rank", "stem_stride", "workers", "threads", "device", "visible_device" }

local USAGE = [[
usage: lunet eval --model=NAME --pretrained=FILE --dataset_path=DIR [--dataset=D] [--batch_size=N]
  --model=NAME        a model of the zoo (default: the one the checkpoint was trained as)
  --pretrained=FILE   the checkpoint (lunet train's .safetensors files, or a PyTorch .pth:
                      zip or legacy format, read without running code from it)
  --dataset=D         ilsvrc (val/), cifar10, cifar100 (test batches) or fashion-mnist
                      (t10k files); default: the checkpoint's, else the model's
  --dataset_path=DIR  the dataset folder (default: the checkpoint's; Fashion-MNIST has one)
  --batch_size=N      evaluation batch size (default 100)
  --shared_rank=S --unique_rank=U --stem_stride=N   the model's options (default: the checkpoint's)
  --workers=N --threads=N --device=cpu|cuda:N
Prints the top-1 and top-5 error with counts.
]]

local function fail(msg)
  io.stderr:write("lunet eval: ", msg, "\n", USAGE)
  return 2
end

--- `lunet eval ...`: returns the exit status (0, or 2 for bad arguments, with a
-- message and the usage on stderr).
function M.main(...)
  local ok, flags, positional, help = pcall(config.parse_flags, { ... })
  if not ok then return fail((tostring(flags):gsub("^config: ", ""))) end
  if help then
    io.stdout:write(USAGE)
    return 0
  end
  if #positional > 0 then return fail(("unexpected argument '%s'"):format(positional[1])) end
  local allowed = {}
  for _, k in ipairs(EVAL_KEYS) do allowed[k] = true end
  for k in pairs(flags) do
    if not allowed[k] then
      local names = {}
      for i, n in ipairs(EVAL_KEYS) do names[i] = "--" .. n end
      table.sort(names)
      return fail(("unknown flag '--%s'; valid flags: %s"):format(k, table.concat(names, ", ")))
    end
  end
  if not flags.pretrained then return fail("missing '--pretrained=FILE'") end
  local checkpoint = require "lunet.checkpoint"
  local pth = require "lunet.pth"
  local is_pth = pth.is_pth(flags.pretrained) -- a PyTorch checkpoint: read by lunet.pth
  local okc, ck = pcall(is_pth and pth.read_state_dict or checkpoint.load, flags.pretrained)
  if not okc then return fail(tostring(ck)) end
  -- the run's own settings where the flags say nothing (a foreign file has none)
  local saved = type(ck.config) == "table" and ck.config or {}
  local layer = {}
  for _, k in ipairs { "model", "dataset", "dataset_path", "shared_rank", "unique_rank", "stem_stride" } do
    if saved[k] ~= nil then layer[k] = saved[k] end
  end
  if flags.model and flags.model ~= saved.model then
    layer = {} -- another model: nothing of the run applies
  elseif flags.dataset and flags.dataset ~= saved.dataset then
    layer.dataset_path = nil
  end
  for k, v in pairs(flags) do layer[k] = v end
  if is_pth and flags.model then -- ranks from the .pth's shapes unless given
    local okm, inferred = pcall(pth.infer_options, flags.model, ck.tensors)
    if okm then
      for _, k in ipairs { "shared_rank", "unique_rank" } do
        if layer[k] == nil then layer[k] = inferred[k] end
      end
    end
  end
  layer.batch_size = layer.batch_size or 100
  local okr, cfg = pcall(config.resolve, layer)
  if not okr then return fail((tostring(cfg):gsub("^config: ", ""))) end
  if cfg.device ~= "cpu" and not lunet.cuda.available() then
    return fail(("device '%s' asked for, but this build has no usable CUDA device"):format(cfg.device))
  end
  if cfg.threads > 0 then lunet.set_num_threads(cfg.threads) end

  local model = lunet.models.build(cfg.model, {
    dataset = cfg.dataset, shared_rank = cfg.shared_rank, unique_rank = cfg.unique_rank,
    stem_stride = cfg.stem_stride,
  })
  local okl, lerr
  if is_pth then
    okl, lerr = pcall(pth.load_into, model, ck)
    if okl then io.stdout:write(pth.describe_import(ck, model, lerr)) end
  else
    okl, lerr = pcall(model.load_state_dict, model, { tensors = ck.tensors, aliases = ck.aliases or {} })
  end
  if not okl then
    io.stderr:write(("lunet eval: the checkpoint %s does not fit %s: %s\n"):format(
      flags.pretrained, cfg.model, tostring(lerr)))
    return 1
  end
  if cfg.device ~= "cpu" then model:to(cfg.device) end
  local ds = M.test_dataset(cfg)
  local loader = lunet.data.loader { dataset = ds, batch_size = cfg.eval_batch_size, device = cfg.device,
                                     workers = cfg.workers, shuffle = false }
  io.stdout:write(("evaluating %s (%s) on %d %s images\n"):format(
    cfg.model, flags.pretrained, #ds, cfg.dataset))
  local r = M.run(model, loader, { device = cfg.device })
  loader:close()
  io.stdout:write(M.report(r), "\n")
  return 0
end

return M
