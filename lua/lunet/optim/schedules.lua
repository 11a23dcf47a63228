--- lunet.optim.schedules: learning rates as pure functions of the epoch (counted from
-- 1, as method.md counts them) and of the fraction of the epoch done (0 at its first
-- iteration, default 0). Each constructor checks its options and returns
-- `f(epoch, iteration_fraction) -> lr`.
--
--     multistep{lr = 0.1, milestones = {60, 100, 140}, gamma = 0.1}
--         -- "x0.1 after 60, 100, 140": epochs 1..60 use 0.1, 61..100 0.01, ...
--     multistep{lr = 0.1, milestones = {150, 225, 285}, factors = {0.1, 0.1, 0.5}}
--         -- a factor per milestone (MobileNetV2: x0.1 after 150 and 225, x0.5 after 285)
--     cosine{lr = 0.1, epochs = 300, min_lr = 0}
--         -- lr at the start of epoch 1, min_lr at the end of epoch `epochs`
--     warmup(schedule, {epochs = 5, start_factor = 1/3})
--         -- schedule's lr times a factor growing linearly from start_factor (at the
--         -- start of epoch 1) to 1 (at the end of epoch `epochs`), then schedule as is
--     constant{lr = 0.1}
--
-- The paper's three schedules are ready made: paper.ilsvrc_resnet(lr),
-- paper.ilsvrc_mobilenetv2(lr) and paper.cifar_resnet(lr).
-- @module lunet.optim.schedules
local M = {}

local function fail(fn, msg, ...) error(("%s: " .. msg):format(fn, ...), 3) end

local function check_opts(fn, opts, valid)
  if type(opts) ~= "table" then fail(fn, "expected an options table, got %s", type(opts)) end
  for k in pairs(opts) do
    if not valid[k] then
      local l = {}
      for n in pairs(valid) do l[#l + 1] = n end
      table.sort(l)
      fail(fn, "unknown option '%s' (valid: %s)", tostring(k), table.concat(l, ", "))
    end
  end
end

local function finite(x) return type(x) == "number" and x == x and x ~= math.huge and x ~= -math.huge end

local function check_lr(fn, v, name)
  if not finite(v) or v < 0 then fail(fn, "'%s' must be a finite number >= 0, got %s", name, tostring(v)) end
end

-- Checks the arguments of a schedule call; returns the progress in epochs (0 at the
-- start of epoch 1).
local function progress(fn, epoch, frac)
  if math.type(epoch) ~= "integer" and not (finite(epoch) and epoch == math.floor(epoch)) then
    error(("%s: epoch must be an integer (counted from 1), got %s"):format(fn, tostring(epoch)), 3)
  end
  if epoch < 1 then error(("%s: epochs count from 1, got %d"):format(fn, epoch), 3) end
  frac = frac or 0
  if not finite(frac) or frac < 0 or frac > 1 then
    error(("%s: iteration_fraction must be in [0, 1], got %s"):format(fn, tostring(frac)), 3)
  end
  return (epoch - 1) + frac
end

--- Constant learning rate.
function M.constant(opts)
  check_opts("constant", opts, { lr = true })
  check_lr("constant", opts.lr, "lr")
  local lr = opts.lr
  return function(epoch, frac)
    progress("constant schedule", epoch, frac)
    return lr
  end
end

--- lr times the product of the factors of the milestones already passed: milestone m
-- applies from epoch m + 1 on. gamma (default 0.1) is every milestone's factor unless
-- factors (one per milestone) is given.
function M.multistep(opts)
  local fn = "multistep"
  check_opts(fn, opts, { lr = true, milestones = true, gamma = true, factors = true })
  check_lr(fn, opts.lr, "lr")
  local ms = opts.milestones
  if type(ms) ~= "table" then fail(fn, "'milestones' must be a list of epochs, got %s", type(ms)) end
  local milestones, factors = {}, {}
  for i, m in ipairs(ms) do
    if math.type(m) ~= "integer" or m < 1 then
      fail(fn, "milestone %d must be an integer epoch >= 1, got %s", i, tostring(m))
    end
    if i > 1 and m <= ms[i - 1] then fail(fn, "milestones must increase (%d after %d)", m, ms[i - 1]) end
    milestones[i] = m
  end
  local count = 0
  for _ in pairs(ms) do count = count + 1 end
  if count ~= #milestones then fail(fn, "'milestones' must be a list (sequence) of epochs") end
  if opts.factors ~= nil and opts.gamma ~= nil then fail(fn, "give 'gamma' or 'factors', not both") end
  if opts.factors ~= nil then
    if type(opts.factors) ~= "table" or #opts.factors ~= #milestones then
      fail(fn, "'factors' must be a list of %d numbers (one per milestone)", #milestones)
    end
    for i, f in ipairs(opts.factors) do
      if not finite(f) or f < 0 then fail(fn, "factor %d must be a finite number >= 0, got %s", i, tostring(f)) end
      factors[i] = f
    end
  else
    local gamma = opts.gamma == nil and 0.1 or opts.gamma
    if not finite(gamma) or gamma < 0 then fail(fn, "'gamma' must be a finite number >= 0, got %s", tostring(gamma)) end
    for i = 1, #milestones do factors[i] = gamma end
  end
  local lr = opts.lr
  return function(epoch, frac)
    progress("multistep schedule", epoch, frac)
    local v = lr
    for i, m in ipairs(milestones) do
      if epoch > m then v = v * factors[i] end
    end
    return v
  end
end

--- Cosine annealing from lr (start of epoch 1) to min_lr (end of epoch `epochs`);
-- min_lr after that.
function M.cosine(opts)
  local fn = "cosine"
  check_opts(fn, opts, { lr = true, epochs = true, min_lr = true })
  check_lr(fn, opts.lr, "lr")
  local min_lr = opts.min_lr or 0
  check_lr(fn, min_lr, "min_lr")
  if math.type(opts.epochs) ~= "integer" or opts.epochs < 1 then
    fail(fn, "'epochs' must be an integer >= 1, got %s", tostring(opts.epochs))
  end
  local lr, epochs = opts.lr, opts.epochs
  return function(epoch, frac)
    local t = math.min(progress("cosine schedule", epoch, frac) / epochs, 1)
    return min_lr + (lr - min_lr) * (1 + math.cos(math.pi * t)) / 2
  end
end

--- Linear warm-up in front of another schedule (a function as returned here).
-- start_factor in (0, 1] defaults to 1/3 (as torch.optim.lr_scheduler.LinearLR).
function M.warmup(schedule, opts)
  local fn = "warmup"
  if type(schedule) ~= "function" then
    fail(fn, "expected a schedule function first, got %s", type(schedule))
  end
  check_opts(fn, opts, { epochs = true, start_factor = true })
  if math.type(opts.epochs) ~= "integer" or opts.epochs < 0 then
    fail(fn, "'epochs' must be an integer >= 0, got %s", tostring(opts.epochs))
  end
  local sf = opts.start_factor == nil and 1 / 3 or opts.start_factor
  if not finite(sf) or sf <= 0 or sf > 1 then
    fail(fn, "'start_factor' must be in (0, 1], got %s", tostring(sf))
  end
  local epochs = opts.epochs
  return function(epoch, frac)
    local t = progress("warmup schedule", epoch, frac)
    local base = schedule(epoch, frac)
    if t >= epochs then return base end
    return base * (sf + (1 - sf) * t / epochs)
  end
end

--- The schedules of method.md section 6.
M.paper = {
  --- ILSVRC ResNets: x0.1 after 60, 100 and 140 (150 epochs).
  ilsvrc_resnet = function(lr)
    return M.multistep { lr = lr or 0.1, milestones = { 60, 100, 140 }, gamma = 0.1 }
  end,
  --- ILSVRC MobileNetV2s: x0.1 after 150 and 225, x0.5 after 285 (300 epochs).
  ilsvrc_mobilenetv2 = function(lr)
    return M.multistep { lr = lr or 0.1, milestones = { 150, 225, 285 }, factors = { 0.1, 0.1, 0.5 } }
  end,
  --- CIFAR-10/100 ResNets: x0.1 after 150 and 225 (300 epochs).
  cifar_resnet = function(lr)
    return M.multistep { lr = lr or 0.1, milestones = { 150, 225 }, gamma = 0.1 }
  end,
}

return M
