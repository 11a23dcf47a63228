--- lunet.checkpoint: training checkpoints in one safetensors file (docs/checkpoints.md).
--
--     lunet.checkpoint.save(path, {model = net, optimizer = opt, epoch = 12,
--                                  best_acc = 0.71, config = cfg, extra = {...}})
--     local ck = lunet.checkpoint.load(path)
--         -- {path, format, tensors, aliases, optimizer, epoch, best_acc, rng, config, extra}
--     lunet.checkpoint.restore(path, {model = net, optimizer = opt[, rng = true][, strict = false]})
--
-- The file holds the model's state_dict tensors under their canonical names (a shared
-- basis once), the optimiser's buffers as `optimizer.momentum.<parameter name>`, and
-- metadata: lunet.format, lunet.aliases, lunet.epoch, lunet.best_acc, lunet.rng,
-- lunet.config, lunet.optimizer, lunet.extra (JSON texts). save writes a temporary file
-- in the same folder, fsyncs it and renames it over path, so a crash or a full disk
-- never leaves a broken checkpoint and keeps the previous one. load raises an error
-- naming the path for a missing, truncated or foreign file; a plain safetensors file
-- (no lunet metadata) loads as weights only.
-- @module lunet.checkpoint
local core = require "lunet.core"
local lio = require "lunet.io"

local M = {}

M.FORMAT = "lunet.checkpoint/1"
local OPT_PREFIX = "optimizer."

local function check_keys(fn, t, valid)
  for k in pairs(t) do
    if not valid[k] then
      local l = {}
      for n in pairs(valid) do l[#l + 1] = n end
      table.sort(l)
      error(("%s: unknown option '%s' (valid: %s)"):format(fn, tostring(k), table.concat(l, ", ")), 3)
    end
  end
end

-- Strips the "file:line: " position Lua prepends, and a leading "load_safetensors: ".
local function bare(msg)
  msg = tostring(msg):gsub("^[^:\n]*:%d+: ", "")
  return (msg:gsub("^load_safetensors: ", ""):gsub("^save_safetensors: ", ""))
end

-- tensor -> canonical name over a module's state_dict, plus the state dict itself.
local function canonical_names(model)
  local sd = model:state_dict()
  local names = {}
  for name, t in pairs(sd.tensors) do names[t] = name end
  return names, sd
end

-- Name under which the optimiser's parameter i is stored: its canonical name in the
-- model, or "#i" when the model does not hold it (or there is no model).
local function param_name(names, p, i)
  return (names and names[p]) or ("#" .. i)
end

-- "momentum_buffers" -> "momentum": the optimiser state field a buffer kind lives in.
local function kind_of(field) return (field:gsub("_buffers$", "")) end

--- Saves a checkpoint. opts: model, optimizer, epoch (integer), best_acc (number),
-- config (JSON-able table), extra (JSON-able value), fail_after_bytes (test hook:
-- the write fails as on a full disk after that many bytes).
function M.save(path, opts)
  local fn = "checkpoint.save"
  if type(path) ~= "string" then error(("%s: path must be a string, got %s"):format(fn, type(path)), 2) end
  if type(opts) ~= "table" then error(("%s: expected an options table, got %s"):format(fn, type(opts)), 2) end
  check_keys(fn, opts, { model = true, optimizer = true, epoch = true, best_acc = true, config = true,
                         extra = true, fail_after_bytes = true })
  if opts.epoch ~= nil and math.type(opts.epoch) ~= "integer" then
    error(("%s: epoch must be an integer, got %s"):format(fn, tostring(opts.epoch)), 2)
  end
  if opts.best_acc ~= nil and type(opts.best_acc) ~= "number" then
    error(("%s: best_acc must be a number, got %s"):format(fn, type(opts.best_acc)), 2)
  end
  local tensors, order = {}, {}
  local meta = { ["lunet.format"] = M.FORMAT }
  local names
  if opts.model ~= nil then
    if type(opts.model) ~= "table" or type(opts.model.state_dict) ~= "function" then
      error(("%s: model must be a module, got %s"):format(fn, type(opts.model)), 2)
    end
    local sd
    names, sd = canonical_names(opts.model)
    for _, name in ipairs(sd.order) do
      if name:sub(1, #OPT_PREFIX) == OPT_PREFIX then
        error(("%s: the model's tensor name '%s' clashes with the optimiser's prefix"):format(fn, name), 2)
      end
      tensors[name] = sd.tensors[name]
      order[#order + 1] = name
    end
    meta["lunet.aliases"] = lio.json_encode(sd.aliases)
  end
  if opts.optimizer ~= nil then
    local opt = opts.optimizer
    if type(opt) ~= "table" or type(opt.state_dict) ~= "function" or type(opt.params) ~= "table" then
      error(("%s: optimizer must be an optimiser (with params and state_dict), got %s"):format(fn, type(opt)), 2)
    end
    local sd = opt:state_dict()
    local info = { class = getmetatable(opt) and getmetatable(opt).__name or "?", params = {} }
    for i, p in ipairs(opt.params) do info.params[i] = param_name(names, p, i) end
    local buffer_names = {}
    for k, v in pairs(sd) do
      if type(v) == "table" then
        local kind = kind_of(k)
        for i, buf in pairs(v) do
          local name = OPT_PREFIX .. kind .. "." .. info.params[i]
          tensors[name] = buf
          buffer_names[#buffer_names + 1] = name
        end
      else
        info[k] = v
      end
    end
    table.sort(buffer_names) -- after the model's tensors, in a stable order
    table.move(buffer_names, 1, #buffer_names, #order + 1, order)
    meta["lunet.optimizer"] = lio.json_encode(info)
  end
  local ok, err = pcall(function()
    if opts.epoch ~= nil then meta["lunet.epoch"] = lio.json_encode(opts.epoch) end
    if opts.best_acc ~= nil then meta["lunet.best_acc"] = lio.json_encode(opts.best_acc) end
    if opts.config ~= nil then meta["lunet.config"] = lio.json_encode(opts.config) end
    if opts.extra ~= nil then meta["lunet.extra"] = lio.json_encode(opts.extra) end
    meta["lunet.rng"] = lio.json_encode(core.get_rng_state())
  end)
  if not ok then error(("%s: %s"):format(fn, bare(err)), 2) end
  ok, err = pcall(lio.save_safetensors, path, tensors, meta,
                  { order = order, fail_after_bytes = opts.fail_after_bytes })
  if not ok then error(("%s: %s"):format(fn, bare(err)), 2) end
end

-- The JSON value of metadata entry key (nil when absent or null).
local function decode(path, meta, key)
  local text = meta[key]
  if text == nil then return nil end
  local ok, v = pcall(lio.json_decode, text)
  if not ok then error(("checkpoint.load: '%s': metadata '%s' is not valid JSON (%s)"):format(path, key, bare(v)), 0) end
  if v == lio.null then return nil end
  return v
end

local function load(path)
  if type(path) ~= "string" then error(("checkpoint.load: path must be a string, got %s"):format(type(path)), 0) end
  local ok, tensors, meta = pcall(lio.load_safetensors, path)
  if not ok then error("checkpoint.load: " .. bare(tensors), 0) end
  local format = meta["lunet.format"]
  if format == nil then
    -- a plain safetensors file (weights exported by another tool): weights only
    return { path = path, tensors = tensors, aliases = {}, metadata = meta }
  end
  if format ~= M.FORMAT then
    error(("checkpoint.load: '%s' has format '%s'; this lunet reads '%s'"):format(path, format, M.FORMAT), 0)
  end
  local ck = {
    path = path, format = format, tensors = {}, metadata = meta,
    aliases = decode(path, meta, "lunet.aliases") or {},
    epoch = decode(path, meta, "lunet.epoch"),
    best_acc = decode(path, meta, "lunet.best_acc"),
    rng = decode(path, meta, "lunet.rng"),
    config = decode(path, meta, "lunet.config"),
    extra = decode(path, meta, "lunet.extra"),
    optimizer = decode(path, meta, "lunet.optimizer"),
  }
  if ck.optimizer ~= nil then
    if type(ck.optimizer) ~= "table" or ck.optimizer.buffers ~= nil then
      error(("checkpoint.load: '%s': lunet.optimizer is not an optimiser description"):format(path), 0)
    end
    ck.optimizer.buffers = {}
  end
  if ck.epoch ~= nil and math.type(ck.epoch) ~= "integer" then
    error(("checkpoint.load: '%s': lunet.epoch is not an integer"):format(path), 0)
  end
  if ck.rng ~= nil and (type(ck.rng) ~= "table" or #ck.rng ~= 4) then
    error(("checkpoint.load: '%s': lunet.rng is not a list of 4 words"):format(path), 0)
  end
  for name, t in pairs(tensors) do
    if name:sub(1, #OPT_PREFIX) == OPT_PREFIX then
      local kind, pname = name:sub(#OPT_PREFIX + 1):match("^([^.]+)%.(.+)$")
      if not kind or not ck.optimizer then
        error(("checkpoint.load: '%s': tensor '%s' is not an optimiser buffer this lunet knows"):format(path, name), 0)
      end
      local bufs = ck.optimizer.buffers
      bufs[kind] = bufs[kind] or {}
      bufs[kind][pname] = t
    else
      ck.tensors[name] = t
    end
  end
  return ck
end

--- Reads a checkpoint: `{path, format, tensors = {name = tensor}, aliases = {alias =
-- canonical}, optimizer = {class, params = {names}, lr, momentum, ..., steps,
-- buffers = {momentum = {param name = tensor}}}, epoch, best_acc, rng, config, extra,
-- metadata}` (absent entries nil; metadata is the file's raw string table). A plain
-- safetensors file without lunet metadata loads as weights only (format nil, every
-- tensor in `tensors`). Errors name the path.
function M.load(path)
  local ok, ck = pcall(load, path)
  if not ok then error(ck, 2) end
  return ck
end

-- Rebuilds an optimiser state_dict (buffers by position) from a loaded checkpoint.
local function optimizer_state(path, ck, opt, names)
  local info = ck.optimizer
  if not info then error(("checkpoint.restore: '%s' holds no optimiser state"):format(path), 0) end
  local sd = {}
  for k, v in pairs(info) do
    if type(v) ~= "table" and k ~= "class" then sd[k] = v end
  end
  for kind, bufs in pairs(info.buffers) do
    local field, used = kind .. "_buffers", {}
    sd[field] = {}
    for i, p in ipairs(opt.params) do
      local name = param_name(names, p, i)
      if bufs[name] then
        sd[field][i] = bufs[name]
        used[name] = true
      end
    end
    for name in pairs(bufs) do
      if not used[name] then
        error(("checkpoint.restore: '%s' has %s state for '%s', which this optimiser does not hold")
          :format(path, kind, name), 0)
      end
    end
  end
  return sd
end

--- Loads a checkpoint into a model (values copied into its tensors, so sharing is
-- kept; names must match unless strict = false, shapes always) and an optimiser
-- (hyper-parameters, step count, buffers), and when opts.rng is true, sets the
-- context RNG to the saved state. Returns what load returns.
function M.restore(path, opts)
  local fn = "checkpoint.restore"
  if type(opts) ~= "table" then error(("%s: expected an options table, got %s"):format(fn, type(opts)), 2) end
  check_keys(fn, opts, { model = true, optimizer = true, rng = true, strict = true })
  if opts.strict ~= nil and type(opts.strict) ~= "boolean" then
    error(("%s: strict must be a boolean, got %s"):format(fn, type(opts.strict)), 2)
  end
  local ok, ck = pcall(load, path)
  if not ok then error((ck:gsub("^checkpoint%.load:", fn .. ":")), 2) end
  local names
  if opts.model ~= nil then
    names = canonical_names(opts.model)
    local okm, err = pcall(opts.model.load_state_dict, opts.model, { tensors = ck.tensors, aliases = ck.aliases },
                           opts.strict ~= false)
    if not okm then error(("%s: '%s': %s"):format(fn, path, bare(err)), 2) end
  end
  if opts.optimizer ~= nil then
    local oko, err = pcall(function()
      opts.optimizer:load_state_dict(optimizer_state(path, ck, opts.optimizer, names))
    end)
    if not oko then error(("%s: '%s': %s"):format(fn, path, bare(err):gsub("^checkpoint%.restore: '[^']*' ?", "")), 2) end
  end
  if opts.rng then
    if not ck.rng then error(("%s: '%s' holds no RNG state"):format(fn, path), 2) end
    core.set_rng_state(ck.rng)
  end
  return ck
end

return M
