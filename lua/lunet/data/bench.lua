--- `lunet bench-data`: throughput of the data pipeline on an image folder.
--
--     lunet bench-data --dataset_path=DIR [--workers=N] [--split=train|val]
--                      [--batch_size=64] [--epochs=2] [--rounds=1]
--                      [--transforms=train,eval] [--torchvision=yes|no]
--                      [--python=/usr/bin/python3]
--
-- For each transform (train: random-resized-crop 224 + flip; eval: resize 256 + center
-- crop 224; both normalised) it runs `epochs` shuffled epochs of a lunet.data loader
-- over DIR/SPLIT with N worker threads and keeps the best epoch's images/s (the first
-- also warms the page cache). In the same run it starts bench/torchvision_data.py,
-- torchvision's ImageFolder + DataLoader with the same worker count, batch size and
-- epochs, and prints both figures and their ratio. With --rounds=R both are run
-- alternately R times and the best figure of each is kept (other jobs on a shared
-- machine only ever slow a run down). bench/bench_data.sh makes a test folder of
-- JPEGs and calls this.
-- @module lunet.data.bench
local data = require "lunet.data"

local M = {}

local USAGE = "usage: lunet bench-data --dataset_path=DIR [--workers=N] [--split=train|val] " ..
              "[--batch_size=64] [--epochs=2] [--rounds=1] [--transforms=train,eval] [--torchvision=yes|no] " ..
              "[--python=/usr/bin/python3]"

local DEFAULTS = { dataset_path = false, workers = "2", split = "train", batch_size = "64",
                   epochs = "2", rounds = "1", transforms = "train,eval", torchvision = "yes",
                   python = "/usr/bin/python3" }

local function parse(...)
  local o = {}
  for k, v in pairs(DEFAULTS) do o[k] = v end
  for _, a in ipairs { ... } do
    local k, v = a:match("^%-%-([%w_]+)=(.*)$")
    if not k or DEFAULTS[k] == nil then
      error(("bench-data: unknown argument '%s'\n%s"):format(a, USAGE), 0)
    end
    o[k] = v
  end
  if not o.dataset_path then error("bench-data: --dataset_path is required\n" .. USAGE, 0) end
  for _, k in ipairs { "workers", "batch_size", "epochs", "rounds" } do
    o[k] = math.tointeger(tonumber(o[k]))
    if not o[k] or o[k] < (k == "workers" and 0 or 1) then
      error(("bench-data: --%s must be a %s integer"):format(k, k == "workers" and "non-negative" or "positive"), 0)
    end
  end
  if o.torchvision ~= "yes" and o.torchvision ~= "no" then
    error("bench-data: --torchvision must be yes or no", 0)
  end
  return o
end

-- Best images/s of lunet's loader over `epochs` epochs of one transform.
local function lunet_rate(o, mode, say)
  local ds = data.image_folder { root = o.dataset_path, split = o.split, transform = mode, log = say }
  local loader <close> = data.loader { dataset = ds, batch_size = o.batch_size, workers = o.workers,
                                       shuffle = true, seed = 1, log = say }
  local best, stats = 0, nil
  for e = 1, o.epochs do
    for _ in loader:epoch(e) do end
    local s = loader:stats()
    if s.images_per_s > best then best, stats = s.images_per_s, s end
  end
  return best, stats, #ds
end

-- The folder holding bench/, from this file's path (lua/lunet/data/bench.lua).
local function source_root()
  local src = debug.getinfo(1, "S").source
  return src:match("^@(.*)/lua/lunet/data/bench%.lua$")
end

-- torchvision's figures: {train = rate, eval = rate}, or nil and why.
local function torchvision_rates(o)
  local root = source_root()
  local script = root and root .. "/bench/torchvision_data.py"
  local f = script and io.open(script, "r")
  if not f then return nil, "bench/torchvision_data.py not found next to the Lua library" end
  f:close()
  local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
  local cmd = ("%s %s --dataset_path=%s --split=%s --workers=%d --batch_size=%d --epochs=%d " ..
               "--transforms=%s 2>&1"):format(q(o.python), q(script), q(o.dataset_path), q(o.split),
                                             o.workers, o.batch_size, o.epochs, q(o.transforms))
  local p = io.popen(cmd, "r")
  local out = p:read("a")
  local ok = p:close()
  local rates = {}
  for mode, rate in out:gmatch("(%a+) ([%d%.]+)\n") do rates[mode] = tonumber(rate) end
  if not ok or not next(rates) then
    return nil, "torchvision run failed: " .. (out:match("[^\n]*\n?$") or out)
  end
  return rates
end

local function cpu_load()
  local f = io.open("/proc/loadavg", "r")
  if not f then return "?" end
  local l = f:read("l")
  f:close()
  return l:match("^(%S+ %S+ %S+)") or "?"
end

--- Runs the benchmark; returns the exit status.
function M.main(...)
  local o = parse(...)
  local messages = {}
  local function say(msg) messages[#messages + 1] = msg end
  local modes = {}
  for m in o.transforms:gmatch("[^,]+") do
    if m ~= "train" and m ~= "eval" then error("bench-data: --transforms lists train and/or eval", 0) end
    modes[#modes + 1] = m
  end
  print(("bench-data: %s/%s, %d workers, batch %d, best of %d epochs x %d rounds, load average %s")
        :format(o.dataset_path, o.split, o.workers, o.batch_size, o.epochs, o.rounds, cpu_load()))
  local rates, tv, why, n = {}, nil, nil, 0
  for round = 1, o.rounds do
    for _, m in ipairs(modes) do
      local rate, stats, size = lunet_rate(o, m, say)
      n = size
      if rate > (rates[m] or 0) then rates[m] = rate end
      print(("  round %d: lunet %-5s %8.1f images/s  (%d images in %.2f s, waited %.2f s, skipped %d, " ..
             "converted %d)"):format(round, m, rate, stats.images, stats.seconds, stats.wait_seconds,
                                     stats.skipped, stats.converted))
    end
    if o.torchvision == "yes" and not why then
      local r
      r, why = torchvision_rates(o)
      if r then
        tv = tv or {}
        for m, rate in pairs(r) do
          if rate > (tv[m] or 0) then tv[m] = rate end
          print(("  round %d: torchvision %-5s %8.1f images/s"):format(round, m, rate))
        end
      end
    end
  end
  local notes = {}
  for _, msg in ipairs(messages) do
    if not msg:match("^image_folder: .* images in %d+ classes") and not notes[msg] then
      notes[msg] = true
      print("  note: " .. msg)
    end
  end
  print(("%d images; load average after: %s"):format(n, cpu_load()))
  print(("%-9s %14s %18s %7s"):format("transform", "lunet img/s", "torchvision img/s", "ratio"))
  for _, m in ipairs(modes) do
    local t = tv and tv[m]
    print(("%-9s %14.1f %18s %7s"):format(m, rates[m], t and ("%.1f"):format(t) or "-",
                                            t and ("%.2f"):format(rates[m] / t) or "-"))
  end
  if o.torchvision == "yes" and not tv then print("torchvision skipped: " .. why) end
  return 0
end

return M
