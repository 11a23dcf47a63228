--- The training loop (`lunet.train(config)`) and the `lunet train` command.
--
--     local result = lunet.train { model = "ResNet56_DoubleShared", dataset = "cifar10",
--                                  dataset_path = "/data/cifar-10-batches-bin", epochs = 300 }
--
-- The configuration is resolved by lunet.config (defaults of method.md section 6 per
-- setup, type checks). Each epoch: SGD on cross-entropy + lambdaR x
-- lunet.reg.orthogonality(model), with the learning rate of the schedule set before
-- every step (a pure function of (epoch, fraction of the epoch done)); then an
-- evaluation on the test split. Outputs in `out`:
--   last.safetensors          after every epoch, and at Ctrl-C (resumable mid-epoch)
--   best.safetensors          the epoch with the best test top-1 accuracy
--   epoch_NNN.safetensors     every `save_every` epochs
--   metrics.jsonl             one JSON object per line (lunet.progress)
--   curves.svg                loss, learning rate, accuracy, regulariser (lunet.plot)
-- Checkpoints go through lunet.checkpoint (a temporary file renamed: a crash never
-- leaves a broken file) and hold the weights, the optimiser state, the epoch, the best
-- accuracy, the RNG state, the resolved configuration and, in `extra`, the curves'
-- history and, for a checkpoint taken inside an epoch, the steps done and the
-- epoch's partial sums.
--
-- Resuming (`resume = true` or a file) restores all of that; the data order of an
-- epoch depends only on (seed, epoch), so the batches already seen are skipped and the
-- run continues as if never stopped: on the CPU, N epochs straight and k + resume +
-- (N - k) give the same weights. `pretrained` loads weights only; `starting_epoch`
-- starts the schedule (and the epoch count) there.
--
-- Failures: a NaN or infinite loss stops the run before that step updates anything,
-- with a message naming the epoch and step; the last good checkpoint stays as it was.
-- Ctrl-C (SIGINT) finishes the current step, saves last.safetensors and returns with
-- status "interrupted" (a second Ctrl-C ends the process at once).
--
-- Returns {status = "done" | "interrupted", best_acc1, best_epoch, last = the last
-- epoch record, history, out, checkpoint = the last checkpoint written, epoch (last
-- epoch completed), step (steps done of the next one, when interrupted)}. A diverged
-- loss raises an error object with fields kind = "diverged", message, epoch, step
-- (tostring gives the message).
--
-- Epoch records (metrics.jsonl, history): epoch, lr (at the epoch's start),
-- train_loss (mean cross-entropy), train_reg (mean penalty, without lambdaR; absent
-- without shared bases), reg_groups ({name = penalty of each basis group at the
-- epoch's end}), train_acc1/5 (percent), test_loss, test_acc1/5 (percent),
-- test_correct1/5, test_count, images_per_s, data_wait_s, train_s, eval_s, best_acc1.
-- @module lunet.train
local lunet = require "lunet"
local config = require "lunet.config"
local progress = require "lunet.progress"
local plot = require "lunet.plot"
local evaluate = require "lunet.evaluate"

local M = {}

local F = lunet.nn.functional
local core = lunet.core
local clock = core.wall_clock

local STEP_SAMPLES = 20 -- loss/lr samples per epoch kept for the curves

-------------------------------------------------------------------------- setup
local function mkdir_p(path)
  local ok = os.execute("mkdir -p '" .. path:gsub("'", "'\\''") .. "'")
  if not ok then error(("lunet.train: cannot create the output folder '%s'"):format(path), 0) end
end

local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() end
  return f ~= nil
end

--- The training dataset of a configuration.
function M.train_dataset(cfg)
  local data = lunet.data
  local transform = cfg.augment and "train" or "eval"
  if cfg.dataset == "fashion-mnist" then
    return data.fashion_mnist { root = cfg.dataset_path, train = true, transform = transform }
  elseif cfg.dataset == "cifar10" or cfg.dataset == "cifar100" then
    return data.cifar { root = cfg.dataset_path, version = cfg.dataset == "cifar10" and 10 or 100,
                        train = true, transform = transform }
  end
  return data.image_folder { root = cfg.dataset_path, split = "train", transform = transform }
end

--- The learning-rate function (epoch, fraction) -> lr of a configuration.
function M.schedule(cfg)
  if type(cfg.schedule) == "function" then return cfg.schedule end
  local S = require("lunet.optim").schedules
  local f
  if cfg.schedule == "multistep" then
    local o = { lr = cfg.lr, milestones = cfg.milestones }
    if type(cfg.gamma) == "table" then o.factors = cfg.gamma else o.gamma = cfg.gamma end
    f = S.multistep(o)
  elseif cfg.schedule == "cosine" then
    f = S.cosine { lr = cfg.lr, epochs = cfg.epochs, min_lr = cfg.min_lr }
  else
    local lr = cfg.lr
    f = function() return lr end
  end
  if cfg.warmup_epochs > 0 then
    f = S.warmup(f, { epochs = cfg.warmup_epochs, start_factor = cfg.warmup_start_factor })
  end
  return f
end

-- The basis groups of the regulariser, one per term of the model's grouping, named
-- by the first shared module's path: {{name, model_like}...} where model_like can be
-- given to lunet.reg.orthogonality to get that term's own penalty.
local function reg_groups(model)
  local groups = model.orthogonality_groups or {}
  local names = {}
  for _, e in ipairs(model:named_modules()) do names[e[2]] = e[1] end
  local out = {}
  for a, avg in ipairs(groups) do
    for t, term in ipairs(avg) do
      local first = term.shared and term.shared[1]
      local name = (first and names[first]) or ("group%d.%d"):format(a, t)
      if #groups > 1 then name = ("avg%d:%s"):format(a, name) end
      out[#out + 1] = { name, { orthogonality_groups = { { term } } } }
    end
  end
  return out
end

-------------------------------------------------------------------------- errors
local Diverged = {}
Diverged.__index = Diverged
Diverged.__tostring = function(e) return e.message end
M.Diverged = Diverged

-------------------------------------------------------------------------- the loop
--- Trains a model as the configuration says; see the module comment.
-- @param cfg a configuration table (resolved here by lunet.config.resolve)
-- @param hooks (optional) {print = function(text) (the run's text lines; default:
-- through lunet.progress), on_step = function(epoch, step) (after each step, before
-- Ctrl-C is looked at)}
function M.train(cfg, hooks)
  cfg = config.resolve(cfg)
  hooks = hooks or {}
  local optim = require "lunet.optim"
  local checkpoint = require "lunet.checkpoint"
  if cfg.device ~= "cpu" and not lunet.cuda.available() then
    error(("lunet.train: device '%s' asked for, but this build has no usable CUDA device "
           .. "(lunet.cuda.available() is false)"):format(cfg.device), 0)
  end
  if cfg.threads > 0 then lunet.set_num_threads(cfg.threads) end
  mkdir_p(cfg.out)
  local paths = {
    last = cfg.out .. "/last.safetensors", best = cfg.out .. "/best.safetensors",
    metrics = cfg.out .. "/metrics.jsonl", curves = cfg.out .. "/curves.svg",
  }
  local resume_path
  if cfg.resume then
    resume_path = cfg.resume == true and paths.last or cfg.resume
    if not exists(resume_path) then
      error(("lunet.train: nothing to resume: '%s' does not exist"):format(resume_path), 0)
    end
  end

  local prog = progress.new { mode = cfg.progress, log_every = cfg.log_every, metrics = paths.metrics }
  local say = hooks.print or function(text) prog:print(text) end
  local saved_cfg = config.serialisable(cfg)

  lunet.manual_seed(cfg.seed)
  local model = lunet.models.build(cfg.model, {
    dataset = cfg.dataset, shared_rank = cfg.shared_rank, unique_rank = cfg.unique_rank,
    stem_stride = cfg.stem_stride, orthogonal_init = cfg.orthogonal_init,
  })
  local train_ds, test_ds = M.train_dataset(cfg), evaluate.test_dataset(cfg)
  -- on a GPU the loaders fill pinned memory and copy each batch while the previous
  -- one is computed on
  local loader = lunet.data.loader { dataset = train_ds, batch_size = cfg.batch_size,
                                     workers = cfg.workers, seed = cfg.seed, device = cfg.device }
  local test_loader = lunet.data.loader { dataset = test_ds, batch_size = cfg.eval_batch_size,
                                          workers = cfg.workers, shuffle = false, device = cfg.device }
  local params = model:parameters()
  local opt = optim.SGD(params, { lr = cfg.lr, momentum = cfg.momentum,
                                  weight_decay = cfg.weight_decay, nesterov = cfg.nesterov })
  local lr_at = M.schedule(cfg)
  local groups = reg_groups(model)
  local use_reg = cfg.lambdaR > 0 and #groups > 0
  local has_groups = #groups > 0

  local history = { epochs = {}, steps = {} }
  local first_epoch, skip, partial = cfg.starting_epoch, 0, nil
  local best_acc, best_epoch = 0, nil
  local last_ckpt, last_ckpt_epoch
  if resume_path then
    local okr, ck = pcall(checkpoint.restore, resume_path, { model = model, optimizer = opt, rng = true })
    if not okr then error("lunet.train: cannot resume: " .. tostring(ck), 0) end
    -- the configuration's hyper-parameters win over the checkpoint's (flags may change them)
    opt.momentum, opt.weight_decay, opt.nesterov = cfg.momentum, cfg.weight_decay, cfg.nesterov
    local extra = ck.extra or {}
    first_epoch = math.tointeger(ck.epoch) + 1
    skip = math.tointeger(extra.epoch_step or 0)
    partial = skip > 0 and extra.partial or nil
    best_acc, best_epoch = ck.best_acc or 0, extra.best_epoch
    history = extra.history or history
    last_ckpt, last_ckpt_epoch = resume_path, ck.epoch
  elseif cfg.pretrained and require("lunet.pth").is_pth(cfg.pretrained) then
    local pth = require "lunet.pth" -- a PyTorch checkpoint (the authors' weights)
    pth.load_into(model, pth.read_state_dict(cfg.pretrained))
  elseif cfg.pretrained then
    local okl, ck = pcall(checkpoint.load, cfg.pretrained)
    if okl then okl, ck = pcall(model.load_state_dict, model, { tensors = ck.tensors, aliases = ck.aliases or {} }) end
    if not okl then error("lunet.train: cannot load the pretrained weights: " .. tostring(ck), 0) end
  end
  if cfg.device ~= "cpu" then model:to(cfg.device) end

  local n_params = 0
  for _, p in ipairs(params) do n_params = n_params + p:numel() end
  say(("lunet train: %s on %s (%d training, %d test images), %s parameters, device %s, out %s"):format(
    cfg.model, cfg.dataset, #train_ds, #test_ds, n_params, cfg.device, cfg.out))
  say("configuration:\n" .. config.format(cfg))
  if resume_path then
    say(("resuming from %s: epoch %d%s"):format(resume_path, first_epoch,
        skip > 0 and (", after step %d"):format(skip) or ""))
    prog:event("resume", { from = resume_path, epoch = first_epoch, step = skip })
  else
    prog:event("start", { config = saved_cfg, params = n_params })
  end

  local function save(path, epoch_done, extra)
    extra.history = history
    extra.best_epoch = best_epoch
    checkpoint.save(path, { model = model, optimizer = opt, epoch = epoch_done, best_acc = best_acc,
                            config = saved_cfg, extra = extra })
  end

  local nb = #loader
  local sample_every = math.max(1, nb // STEP_SAMPLES)
  local last_eval_s = 0
  local interrupted = false
  core.sigint_catch(true)
  local ok, result = xpcall(function()
    for epoch = first_epoch, cfg.epochs do
      model:train()
      -- the epoch's running sums (saved with a mid-epoch checkpoint); window: the
      -- losses since the last sample of the curves
      local sums = partial or { loss = 0, reg = 0, correct1 = 0, correct5 = 0, count = 0, steps = 0,
                                window = 0, window_n = 0 }
      partial = nil
      local next_batch = loader:epoch(epoch)
      for _ = 1, skip do next_batch() end
      local first_step = skip
      skip = 0
      prog:epoch_start(epoch, cfg.epochs, nb, first_step, cfg.epochs - epoch)
      local t0, count0 = clock(), sums.count
      local epoch_lr = lr_at(epoch, first_step / nb)
      local step = first_step
      while true do
        local x, y = next_batch()
        if x == nil then break end
        local lr = lr_at(epoch, step / nb)
        opt.lr = lr
        local logits = model(x)
        local ce = F.cross_entropy(logits, y)
        local loss, reg = ce, nil
        if use_reg then
          reg = lunet.reg.orthogonality(model)
          loss = ce + cfg.lambdaR * reg
        end
        opt:zero_grad()
        loss:backward()
        opt:step()
        -- Values are read back once the whole step is queued (on a GPU a read waits for
        -- the queue to drain; reading the loss before backward would leave the device
        -- idle while the host queues the backward pass). A non-finite loss has then
        -- already reached the weights in memory; the checkpoints on disk are untouched.
        local loss_v = loss:item()
        if loss_v ~= loss_v or loss_v == math.huge or loss_v == -math.huge then
          local kept = last_ckpt and ("the last good checkpoint is %s (epoch %d)"):format(
            last_ckpt, last_ckpt_epoch) or "no checkpoint had been written yet"
          local msg = ("lunet.train: the loss is %s at epoch %d, step %d of %d (lr %g); training "
                       .. "stopped, %s"):format(tostring(loss_v), epoch, step + 1, nb, lr, kept)
          prog:event("diverged", { epoch = epoch, step = step + 1, lr = lr, checkpoint = last_ckpt })
          error(setmetatable({ kind = "diverged", message = msg, epoch = epoch, step = step + 1 }, Diverged))
        end

        local n = x:size(1)
        local ce_v = ce:item()
        step = step + 1
        sums.steps = sums.steps + 1
        sums.count = sums.count + n
        sums.loss = sums.loss + ce_v * n
        if reg then sums.reg = sums.reg + reg:item() * n end
        sums.correct1 = sums.correct1 + F.topk_correct(logits, y, 1)
        sums.correct5 = sums.correct5 + F.topk_correct(logits, y, math.min(5, logits:size(2)))
        sums.window, sums.window_n = sums.window + ce_v, sums.window_n + 1
        if step % sample_every == 0 or step == nb then
          history.steps[#history.steps + 1] = { x = epoch - 1 + step / nb, loss = sums.window / sums.window_n,
                                                lr = lr }
          sums.window, sums.window_n = 0, 0
        end
        local elapsed = clock() - t0
        local done_here = step - first_step
        prog:step(step, { loss = ce_v, lr = lr, eval_s = last_eval_s,
                          images = elapsed > 0 and done_here * cfg.batch_size / elapsed or 0 })
        if hooks.on_step then hooks.on_step(epoch, step) end
        if core.sigint_pending() then
          if step < nb then
            save(paths.last, epoch - 1, { epoch_step = step, partial = sums })
            prog:event("interrupted", { epoch = epoch, step = step, checkpoint = paths.last })
            return { status = "interrupted", epoch = epoch - 1, step = step, checkpoint = paths.last }
          end
          interrupted = true -- at the last step: finish the epoch first
        end
      end
      local train_s = clock() - t0
      local stats = loader:stats()

      local te = evaluate.run(model, test_loader, { device = cfg.device,
                                                    on_batch = function(d, n) prog:eval_step(d, n) end })
      last_eval_s = te.seconds
      local rec = {
        epoch = epoch, lr = epoch_lr,
        train_loss = sums.loss / math.max(sums.count, 1),
        train_acc1 = 100 * sums.correct1 / math.max(sums.count, 1),
        train_acc5 = 100 * sums.correct5 / math.max(sums.count, 1),
        test_loss = te.loss, test_acc1 = 100 * te.correct1 / math.max(te.count, 1),
        test_acc5 = 100 * te.correct5 / math.max(te.count, 1),
        test_correct1 = te.correct1, test_correct5 = te.correct5, test_count = te.count,
        images_per_s = (sums.count - count0) / math.max(train_s, 1e-9),
        data_wait_s = stats.wait_seconds, train_s = train_s, eval_s = te.seconds,
      }
      if has_groups then
        rec.train_reg = use_reg and sums.reg / math.max(sums.count, 1) or nil
        rec.reg_groups = {}
        lunet.no_grad(function()
          for _, g in ipairs(groups) do rec.reg_groups[g[1]] = lunet.reg.orthogonality(g[2]):item() end
          if not use_reg then rec.train_reg = lunet.reg.orthogonality(model):item() end
        end)
      end
      for k, v in pairs(rec) do
        if type(v) == "number" and (v ~= v or v == math.huge or v == -math.huge) then rec[k] = nil end
      end
      if rec.test_acc1 > best_acc or best_epoch == nil then
        best_acc, best_epoch = rec.test_acc1, epoch
        rec.best = true
      end
      rec.best_acc1 = best_acc
      history.epochs[#history.epochs + 1] = rec
      prog:epoch_end(rec)
      plot.write(paths.curves, history, { title = cfg.name, epochs = cfg.epochs })
      save(paths.last, epoch, {})
      last_ckpt, last_ckpt_epoch = paths.last, epoch
      if rec.best then save(paths.best, epoch, {}) end
      if cfg.save_every > 0 and epoch % cfg.save_every == 0 then
        save(("%s/epoch_%03d.safetensors"):format(cfg.out, epoch), epoch, {})
      end
      if (interrupted or core.sigint_pending()) and epoch < cfg.epochs then
        prog:event("interrupted", { epoch = epoch + 1, step = 0, checkpoint = paths.last })
        return { status = "interrupted", epoch = epoch, step = 0, checkpoint = paths.last }
      end
    end
    return { status = "done", epoch = cfg.epochs, checkpoint = paths.last }
  end, function(e)
    if type(e) == "string" then return debug.traceback(e, 2) end
    return e
  end)
  core.sigint_catch(false)
  loader:close()
  test_loader:close()
  if not ok then
    prog:close()
    error(result, 0)
  end
  result.history, result.out = history, cfg.out
  result.best_acc1, result.best_epoch = best_acc, best_epoch
  result.last = history.epochs[#history.epochs]
  result.paths = paths
  result.model = model
  result.config = cfg
  if result.status == "done" then
    prog:event("done", { best_acc1 = best_acc, best_epoch = best_epoch })
  end
  prog:close()
  return result
end

-------------------------------------------------------------------------- the CLI
local USAGE_HEAD = [[
usage: lunet train RECIPE.lua [--key=value ...]
       lunet train --model=NAME --dataset=ilsvrc|cifar10|cifar100|fashion-mnist --dataset_path=DIR [--key=value ...]
       lunet train RECIPE.lua --resume          (continue OUT/last.safetensors)
       lunet train --resume=FILE                (continue a run from its checkpoint)
Settings come from the setup's defaults (method.md section 6), then the recipe (a Lua
file returning a table of these keys), then the flags. Boolean flags alone mean true.
Outputs in --out: last/best/epoch_NNN.safetensors, metrics.jsonl, curves.svg.
Keys (flags):
]]

function M.usage()
  local lines = { USAGE_HEAD }
  for _, k in ipairs(config.KEYS) do
    lines[#lines + 1] = ("  --%-20s %s\n"):format(k[1], k[3])
  end
  return table.concat(lines)
end

local function fail(msg)
  io.stderr:write("lunet train: ", msg, "\n(`lunet train --help` lists the flags)\n")
  return 2
end

--- `lunet train ...`: returns the exit status: 0 done, 1 a failed run (diverged, bad
-- checkpoint or dataset files...; the message on stderr), 2 bad arguments or
-- configuration, 130 interrupted by Ctrl-C (a resumable checkpoint saved).
function M.main(...)
  local ok, flags, positional, help = pcall(config.parse_flags, { ... })
  if not ok then return fail((tostring(flags):gsub("^config: ", ""))) end
  if help then
    io.stdout:write(M.usage())
    return 0
  end
  if #positional > 1 then return fail(("one recipe file at most, got '%s' and '%s'"):format(positional[1], positional[2])) end
  local layers = {}
  if positional[1] then
    local okr, recipe = pcall(config.load_recipe, positional[1])
    if not okr then return fail((tostring(recipe):gsub("^config: ", ""))) end
    layers[#layers + 1] = recipe
  elseif type(flags.resume) == "string" and flags.model == nil then
    -- a checkpoint alone: its configuration, then the flags
    local okc, ck = pcall(require("lunet.checkpoint").load, flags.resume)
    if not okc then return fail(tostring(ck)) end
    if type(ck.config) ~= "table" then
      return fail(("%s holds no training configuration; give the recipe or --model"):format(flags.resume))
    end
    local saved = {}
    for k, v in pairs(ck.config) do
      if k ~= "resume" then saved[k] = v end
    end
    layers[#layers + 1] = saved
  end
  layers[#layers + 1] = flags
  local okc, cfg = pcall(config.resolve, table.unpack(layers))
  if not okc then return fail((tostring(cfg):gsub("^config: ", ""))) end
  local okt, result = pcall(M.train, cfg)
  if not okt then
    if getmetatable(result) == Diverged then
      io.stderr:write(result.message, "\n")
      return 1
    end
    -- a bad checkpoint or dataset file, a full disk...: the message (with a traceback
    -- when the error came from inside the loop)
    io.stderr:write("lunet train: ", (tostring(result):gsub("^lunet%.train: ", "")), "\n")
    return 1
  end
  if result.status == "interrupted" then
    io.stdout:write(("\ninterrupted at epoch %d, step %d: resumable checkpoint %s\n"
                     .. "continue with: lunet train %s--resume%s\n"):format(
      result.epoch + 1, result.step, result.checkpoint,
      positional[1] and (positional[1] .. " ") or "",
      positional[1] and "" or ("=" .. result.checkpoint)))
    return 130
  end
  io.stdout:write(("done: best test top-1 accuracy %.2f%% (epoch %s); checkpoints, "
                   .. "metrics.jsonl and curves.svg in %s\n"):format(
    result.best_acc1, tostring(result.best_epoch), result.out))
  return 0
end

return M
