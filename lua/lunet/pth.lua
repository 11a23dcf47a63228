--- PyTorch checkpoints (.pth): reading them without running code from the file,
-- mapping their state dicts onto lunet models, and writing lunet weights back in the
-- layout the authors' PyTorch code loads.
--
--     local pth = require "lunet.pth"
--     local obj, format = pth.load("resnet34_s48u1.pth")   -- Lua values, tensors on the host
--     local sd = pth.read_state_dict("resnet34_s48u1.pth") -- {tensors=, order=, ...}
--     local net = lunet.models.build("ResNet34_DoubleShared", pth.infer_options("ResNet34_DoubleShared", sd.tensors))
--     local report = pth.load_into(net, sd)               -- strict by default
--     pth.export("back.pth", net, {epoch = 150})          -- {'net_state_dict': ..., 'epoch': 150}
--
-- Values (core.pth_load / core.pth_save, bindings/lpth.c): None is `pth.None`, a
-- dict is a table whose key order `pth.keys(t)` gives, a tuple a sequence with
-- metatable `pth.tuple_mt`, a list a sequence; tensors load to the host (half and
-- bfloat16 as f32). The reader (core/src/io/pth_*.c) accepts only the pickle opcodes
-- and globals a state dict needs and rejects anything else with a message.
--
-- Mapping (load_into): the state dict is found at the top level or under
-- `net_state_dict`, `state_dict`, `model_state_dict` or `model` (nested wrappers
-- too); nested dicts of tensors are flattened with dots; a `module.` prefix on every
-- key (data-parallel runs) is removed. The authors' files list a shared basis under
-- every path that reaches it (shared/reference/authors-keys/): all copies must hold
-- the same values, and go into the model's one shared tensor. Shape mismatches are
-- refused naming the key and both shapes; missing and unexpected keys are reported
-- (an error unless strict = false).
-- @module lunet.pth
local lunet = require "lunet"
local core = lunet.core

local M = {}

M.None = core.pth_none
M.tuple_mt = core.pth_tuple_mt

--- Reads a .pth file: returns its value and its format ("zip" or "legacy").
function M.load(path)
  if type(path) ~= "string" then
    error(("pth.load: expected a file name, got %s"):format(type(path)), 2)
  end
  return core.pth_load(path)
end

--- True when the file starts like a PyTorch checkpoint (a zip archive or the legacy
-- format's magic pickle), as opposed to a lunet (safetensors) checkpoint.
function M.is_pth(path)
  local f = io.open(path, "rb")
  if not f then return false end
  local head = f:read(15) or ""
  f:close()
  return head:sub(1, 4) == "PK\3\4" or head == "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19\x2e"
end

--- Writes a value (see the module comment) as a zip-format .pth file, atomically.
function M.save(path, value)
  if type(path) ~= "string" then
    error(("pth.save: expected a file name, got %s"):format(type(path)), 2)
  end
  core.pth_save(path, value)
end

--- Makes `map` a dict whose keys come in the order of `keys`; ordered (default
-- true) makes it a collections.OrderedDict when saved. Returns map.
function M.dict(keys, map, ordered)
  if ordered == nil then ordered = true end
  return setmetatable(map, { __name = "pth.dict", pth_order = keys, pth_ordered = ordered })
end

--- True for a table read from (or made for) a dict.
function M.is_dict(v)
  local mt = type(v) == "table" and getmetatable(v)
  return mt ~= nil and mt ~= false and type(mt.pth_order) == "table"
end

--- The keys of a dict in order (its recorded order, else sorted).
function M.keys(t)
  if M.is_dict(t) then return { table.unpack(getmetatable(t).pth_order) } end
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    if type(a) ~= type(b) then return type(a) == "number" end
    return a < b
  end)
  return keys
end

-- ------------------------------------------------------------------ state dicts
local WRAPPERS = { "net_state_dict", "state_dict", "model_state_dict", "model" }

local function holds_tensors(t)
  for _, v in pairs(t) do
    if lunet.is_tensor(v) then return true end
  end
  return false
end

local function list_keys(t, limit)
  local keys = {}
  for _, k in ipairs(M.keys(t)) do keys[#keys + 1] = tostring(k) end
  if #keys > limit then
    local n = #keys
    keys = { table.unpack(keys, 1, limit) }
    keys[#keys + 1] = ("... (%d in all)"):format(n)
  end
  return table.concat(keys, ", ")
end

--- Finds the state dict inside a loaded checkpoint: the value itself when it holds
-- tensors and no wrapper key, else the first wrapper (`net_state_dict`,
-- `state_dict`, `model_state_dict`, `model`) holding a table, searched again.
-- Returns the dict and where it was ("" for the top level, else e.g.
-- "net_state_dict"), or raises an error listing the keys seen.
function M.find_state_dict(obj, where)
  where = where or ""
  if type(obj) ~= "table" or lunet.is_tensor(obj) then
    error(("pth: no state dict: the checkpoint%s is a %s, not a dict"):format(
      where == "" and "" or (" entry '" .. where .. "'"), lunet.is_tensor(obj) and "tensor" or type(obj)), 0)
  end
  for _, w in ipairs(WRAPPERS) do
    local inner = obj[w]
    if type(inner) == "table" and not lunet.is_tensor(inner) then
      return M.find_state_dict(inner, where == "" and w or (where .. "." .. w))
    end
  end
  if holds_tensors(obj) then return obj, where end
  for _, v in pairs(obj) do -- nested dicts of tensors ({conv1 = {weight = T}})
    if type(v) == "table" and not lunet.is_tensor(v) and holds_tensors(v) then return obj, where end
  end
  error(("pth: no state dict found (no tensors, and none of %s); keys: %s"):format(
    table.concat(WRAPPERS, ", "), list_keys(obj, 12)), 0)
end

--- Flattens a state dict: nested dicts become dotted names. Returns {name = tensor},
-- the names in order, and the names of entries that are not tensors (skipped).
function M.flatten(sd)
  local flat, order, skipped = {}, {}, {}
  local function walk(t, prefix, depth)
    if depth > 32 then error("pth: state dict nested deeper than 32 levels", 0) end
    for _, k in ipairs(M.keys(t)) do
      local v, name = t[k], prefix .. tostring(k)
      if lunet.is_tensor(v) then
        if flat[name] == nil then order[#order + 1] = name end
        flat[name] = v
      elseif type(v) == "table" and (M.is_dict(v) or (next(v) ~= nil and v[1] == nil)) then
        walk(v, name .. ".", depth + 1)
      else
        skipped[#skipped + 1] = name
      end
    end
  end
  walk(sd, "", 0)
  return flat, order, skipped
end

--- Removes a prefix that EVERY name carries (repeatedly, e.g. "module.module.").
-- Returns the new table, order and the prefix removed ("" if none).
function M.strip_prefix(flat, order, prefix)
  prefix = prefix or "module."
  local removed = ""
  while #order > 0 do
    for _, name in ipairs(order) do
      if name:sub(1, #prefix) ~= prefix or #name == #prefix then return flat, order, removed end
    end
    local f, o = {}, {}
    for i, name in ipairs(order) do
      o[i] = name:sub(#prefix + 1)
      f[o[i]] = flat[name]
    end
    flat, order, removed = f, o, removed .. prefix
  end
  return flat, order, removed
end

local function number_of(v)
  if lunet.is_tensor(v) and v:numel() == 1 then return v:item() end
  if type(v) == "number" then return v end
end

--- Reads the state dict of a .pth file (or of a value pth.load returned):
-- `{tensors = {name = tensor}, order = {names}, format =, container = (where it was:
-- "" or "net_state_dict"...), prefix = (the removed "module." or ""), skipped =
-- {non-tensor entries}, epoch =, acc = (numbers, when the top level has them), path =}`.
function M.read_state_dict(source)
  local obj, format, path = source, nil, nil
  if type(source) == "string" then
    path = source
    obj, format = M.load(source)
  end
  local sd, where = M.find_state_dict(obj)
  local flat, order, skipped = M.flatten(sd)
  local prefix
  flat, order, prefix = M.strip_prefix(flat, order)
  local top = type(obj) == "table" and not lunet.is_tensor(obj) and obj or {}
  return {
    tensors = flat, order = order, format = format, container = where, prefix = prefix,
    skipped = skipped, path = path, epoch = number_of(top.epoch),
    acc = number_of(top.acc) or number_of(top.best_acc) or number_of(top.best_acc1),
  }
end

-- ------------------------------------------------------------------ onto a model
local function shape_str(t) return "[" .. table.concat(t:shape(), ", ") .. "]" end

local function name_list(l, limit)
  limit = limit or 10
  if #l <= limit then return table.concat(l, ", ") end
  return table.concat({ table.unpack(l, 1, limit) }, ", ") .. (", ... (%d in all)"):format(#l)
end

--- Checks a state dict (what read_state_dict returns, or a plain {name = tensor})
-- against a model and copies its values into the model's own tensors, so that
-- sharing is kept. opts: {strict = true}. Every path of a shared tensor that the
-- checkpoint holds must hold the same values (the authors' layout repeats a shared
-- basis under each block); shapes must match. Returns a report {loaded = number of
-- model tensors set, copies_checked = aliases compared, missing = {names},
-- unexpected = {names}}; with strict, missing or unexpected names are an error.
function M.load_into(model, sd, opts)
  opts = opts or {}
  local strict = opts.strict
  if strict == nil then strict = true end
  local src = sd.tensors or sd
  local prefix, file = sd.prefix or "", sd.path and (sd.path .. ": ") or ""
  local mine = model:state_dict()
  local paths, known = {}, {}
  for _, name in ipairs(mine.order) do
    paths[name] = { name }
    known[name] = true
  end
  local alias_names = {}
  for alias in pairs(mine.aliases) do alias_names[#alias_names + 1] = alias end
  table.sort(alias_names)
  for _, alias in ipairs(alias_names) do
    local l = paths[mine.aliases[alias]]
    l[#l + 1] = alias
    known[alias] = true
  end
  local report = { loaded = 0, copies_checked = 0, missing = {}, unexpected = {} }
  local plan = {}
  for _, canon in ipairs(mine.order) do
    local target, first, first_name = mine.tensors[canon], nil, nil
    for _, p in ipairs(paths[canon]) do
      local t = src[p]
      if t ~= nil then
        if not lunet.is_tensor(t) then
          error(("pth: %sentry '%s%s' is a %s, not a tensor"):format(file, prefix, p, type(t)), 2)
        end
        if shape_str(t) ~= shape_str(target) then
          error(("pth: %sshape mismatch for '%s%s': the checkpoint has %s, the model (%s) %s"):format(
            file, prefix, p, shape_str(t), canon, shape_str(target)), 2)
        end
        if first == nil then
          first, first_name = t, p
        else
          if not rawequal(t, first) and not t:equal(first) then
            error(("pth: %s'%s%s' and '%s%s' are one shared tensor in the model but hold different values"):format(
              file, prefix, first_name, prefix, p), 2)
          end
          report.copies_checked = report.copies_checked + 1
        end
      end
    end
    if first == nil then
      report.missing[#report.missing + 1] = canon
    else
      plan[#plan + 1] = { target, first }
    end
  end
  for name in pairs(src) do
    if not known[name] then report.unexpected[#report.unexpected + 1] = prefix .. name end
  end
  table.sort(report.unexpected)
  if strict and (#report.missing > 0 or #report.unexpected > 0) then
    local parts = {}
    if #report.missing > 0 then parts[#parts + 1] = "missing: " .. name_list(report.missing) end
    if #report.unexpected > 0 then parts[#parts + 1] = "unexpected: " .. name_list(report.unexpected) end
    error(("pth: %sthe checkpoint does not fit %s (%s)"):format(
      file, model.name or tostring(getmetatable(model).__name), table.concat(parts, "; ")), 2)
  end
  lunet.no_grad(function()
    for _, p in ipairs(plan) do
      if not rawequal(p[1], p[2]) then p[1]:copy(p[2]) end
    end
  end)
  report.loaded = #plan
  return report
end

--- The options of `lunet.models.build(name, ...)` that the checkpoint's shapes
-- imply: classes (from fc / classifier), in_channels (first convolution) and, for
-- models with ranks, shared_rank (rows of the first shared basis) and unique_rank
-- (rows of the first block's unique basis filters). `flat` is {name = tensor}
-- without the "module." prefix.
function M.infer_options(name, flat)
  local info = lunet.models.info(name)
  local opts = {}
  local function dim(key, d)
    local t = flat[key]
    if lunet.is_tensor(t) and t:dim() >= d then return t:size(d) end
  end
  opts.classes = dim("fc.weight", 1) or dim("classifier.1.weight", 1)
  opts.in_channels = dim("conv1.weight", 2) or dim("pre.0.weight", 2)
  if info.shared_rank ~= nil then
    opts.shared_rank = dim("shared_basis_1_1.weight", 1) or dim("shared_basis_1.weight", 1)
    opts.unique_rank = dim("layer1.1.basis_conv1.weight", 1)
  end
  return opts
end

--- Every path of the model's state (shared tensors under each path that reaches
-- them, as PyTorch's state_dict() lists them: per module its parameters, then its
-- buffers, then its children) as an ordered dict name -> the model's own tensor.
-- opts: {prefix = "module." or ""}.
function M.model_state(model, opts)
  local prefix = (opts and opts.prefix) or ""
  local keys, map = {}, {}
  local function walk(m, path, stack)
    stack[m] = true
    for _, which in ipairs { "_parameters", "_buffers" } do
      local reg = rawget(m, which)
      for _, name in ipairs(reg.names) do
        local key = prefix .. path .. name
        keys[#keys + 1] = key
        map[key] = reg.items[name]
      end
    end
    local mods = rawget(m, "_modules")
    for _, name in ipairs(mods.names) do
      local child = mods.items[name]
      if not stack[child] then walk(child, path .. name .. ".", stack) end
    end
    stack[m] = nil
  end
  walk(model, "", {})
  return M.dict(keys, map, true)
end

--- Writes a model's weights as a .pth file the authors' code loads: by default
-- {'net_state_dict': OrderedDict(every path), 'epoch': .., 'acc': ..} as their
-- training scripts save it (acc as a 0-d tensor). opts: {wrap = "net_state_dict"
-- (default) or false for a bare state dict, prefix = "module." for data-parallel
-- code, epoch =, acc =}.
function M.export(path, model, opts)
  opts = opts or {}
  local sd = M.model_state(model, { prefix = opts.prefix })
  local value = sd
  if opts.wrap ~= false then
    local wrap = opts.wrap or "net_state_dict"
    local keys, map = { wrap }, { [wrap] = sd }
    if opts.acc ~= nil then
      keys[#keys + 1] = "acc"
      map.acc = lunet.tensor(opts.acc)
    end
    if opts.epoch ~= nil then
      keys[#keys + 1] = "epoch"
      map.epoch = math.tointeger(opts.epoch) or opts.epoch
    end
    value = M.dict(keys, map, false)
  end
  M.save(path, value)
  return #getmetatable(sd).pth_order
end

-- ------------------------------------------------------------------ command line
local function parse_flags(args, valued, cmd)
  local o, positional = {}, {}
  for _, a in ipairs(args) do
    local key, value = a:match("^%-%-([%w_]+)=(.*)$")
    if not key then key = a:match("^%-%-([%w_]+)$") end
    if key == "help" or a == "-h" then
      o.help = true
    elseif key then
      if not valued[key] then return nil, ("unknown option '--%s'"):format(key) end
      if value == nil or value == "" then return nil, ("'--%s' needs a value"):format(key) end
      if o[key] ~= nil then return nil, ("'--%s' given twice"):format(key) end
      o[key] = value
    elseif a:sub(1, 1) == "-" then
      return nil, ("unknown option '%s'"):format(a)
    else
      positional[#positional + 1] = a
    end
  end
  if o.help then return o end
  if #positional ~= 1 then
    return nil, ("expected one %s file, got %d"):format(cmd == "import" and ".pth" or "checkpoint", #positional)
  end
  o.file = positional[1]
  for _, k in ipairs { "shared_rank", "unique_rank", "classes", "in_channels" } do
    if o[k] ~= nil then
      local n = o[k]:match("^%d+$") and math.tointeger(tonumber(o[k]))
      if not n or n < 1 then return nil, ("'--%s' must be a positive integer, got '%s'"):format(k, o[k]) end
      o[k] = n
    end
  end
  if o.strict ~= nil then
    if o.strict ~= "true" and o.strict ~= "false" then
      return nil, ("'--strict' must be true or false, got '%s'"):format(o.strict)
    end
    o.strict = o.strict == "true"
  end
  return o
end

local IMPORT_USAGE = [[
usage: lunet import FILE.pth --model=NAME --out=CHECKPOINT [options]
  Reads a PyTorch checkpoint (zip or legacy format; never runs code from it), maps
  its state dict onto a lunet model and writes a lunet checkpoint.
  --model=NAME      the zoo model the weights belong to (lunet summary lists them)
  --out=FILE        the lunet checkpoint to write
  --shared_rank=S   --unique_rank=U   --classes=N   --in_channels=C
                    model options; by default taken from the checkpoint's shapes
  --strict=false    accept missing or unexpected keys (they are reported)
]]

local EXPORT_USAGE = [[
usage: lunet export CHECKPOINT --format=pth --out=FILE.pth [options]
  Writes a lunet checkpoint's weights as a PyTorch state dict (zip format) that the
  authors' code loads: {'net_state_dict': ..., 'epoch': ..., 'acc': ...}, a shared
  basis under every key that uses it.
  --format=pth      the output format (only pth)
  --out=FILE.pth    the file to write
  --model=NAME      the zoo model (default: the one the checkpoint was trained as)
  --shared_rank=S   --unique_rank=U   --classes=N   --in_channels=C   (likewise)
  --prefix=module.  prefix every key (for code that wraps the model in DataParallel)
  --wrap=none       a bare state dict instead of {'net_state_dict': ...}
]]

local function usage_fail(cmd, usage, msg)
  io.stderr:write("lunet ", cmd, ": ", msg, "\n", usage)
  return 2
end

local function fail(cmd, msg)
  msg = tostring(msg):gsub("^[^\n:]*:%d+: ", "") -- the position inside this library
  io.stderr:write("lunet ", cmd, ": ", msg, "\n")
  return 1
end

-- "S48U1, 10 classes" for a report line.
local function describe(model)
  local c = model.config or {}
  local parts = {}
  if c.shared_rank then parts[#parts + 1] = ("S%dU%d"):format(c.shared_rank, c.unique_rank or 0) end
  if c.classes then parts[#parts + 1] = ("%d classes"):format(c.classes) end
  return #parts > 0 and (" (" .. table.concat(parts, ", ") .. ")") or ""
end

--- Builds the zoo model `name` that fits the state dict `sd` (read_state_dict),
-- explicit options overriding the inferred ones, and loads the weights into it.
-- Returns the model and the load report. Errors are raised as strings.
function M.build_model(name, sd, opts)
  opts = opts or {}
  local known = false
  for _, n in ipairs(lunet.models.list()) do known = known or n == name end
  if not known then
    error(("unknown model '%s'; valid models: %s"):format(tostring(name),
      table.concat(lunet.models.list(), ", ")), 0)
  end
  local build = M.infer_options(name, sd.tensors)
  for _, k in ipairs { "shared_rank", "unique_rank", "classes", "in_channels" } do
    if opts[k] ~= nil then build[k] = opts[k] end
  end
  local model = lunet.models.build(name, build)
  local report = M.load_into(model, sd, { strict = opts.strict })
  model:eval()
  return model, report
end

--- A one-paragraph account of an import, for the command line.
function M.describe_import(sd, model, report)
  local lines = {}
  lines[#lines + 1] = ("read %s (%s format): %d tensors%s%s"):format(
    sd.path or "state dict", sd.format or "?", #sd.order,
    sd.container ~= "" and (" under '" .. sd.container .. "'") or "",
    sd.prefix ~= "" and (", prefix '" .. sd.prefix .. "' removed") or "")
  lines[#lines + 1] = ("loaded %d tensors into %s%s; %d shared-basis copies verified identical"):format(
    report.loaded, model.name, describe(model), report.copies_checked)
  if #report.missing > 0 then lines[#lines + 1] = "missing: " .. name_list(report.missing, 20) end
  if #report.unexpected > 0 then lines[#lines + 1] = "unexpected: " .. name_list(report.unexpected, 20) end
  if sd.epoch or sd.acc then
    lines[#lines + 1] = ("checkpoint epoch %s, accuracy %s"):format(tostring(sd.epoch or "?"),
      sd.acc and ("%.4g"):format(sd.acc) or "?")
  end
  return table.concat(lines, "\n") .. "\n"
end

--- `lunet import FILE.pth --model=NAME --out=FILE [...]`. Returns the exit status.
function M.import_main(...)
  local o, err = parse_flags({ ... }, { model = true, out = true, shared_rank = true,
    unique_rank = true, classes = true, in_channels = true, strict = true }, "import")
  if not o then return usage_fail("import", IMPORT_USAGE, err) end
  if o.help then io.stdout:write(IMPORT_USAGE); return 0 end
  if not o.model then return usage_fail("import", IMPORT_USAGE, "missing '--model=NAME'") end
  if not o.out then return usage_fail("import", IMPORT_USAGE, "missing '--out=FILE'") end
  local ok, res = pcall(function()
    local sd = M.read_state_dict(o.file)
    local model, report = M.build_model(o.model, sd, o)
    io.stdout:write(M.describe_import(sd, model, report))
    local ckpt = require "lunet.checkpoint"
    ckpt.save(o.out, { model = model, epoch = sd.epoch and math.tointeger(sd.epoch) or 0,
                       best_acc = sd.acc, config = { model = o.model, imported_from = o.file,
                       shared_rank = model.config.shared_rank, unique_rank = model.config.unique_rank,
                       classes = model.config.classes, in_channels = model.config.in_channels } })
    io.stdout:write(("wrote %s\n"):format(o.out))
  end)
  if not ok then return fail("import", res) end
  return 0
end

--- `lunet export CHECKPOINT --format=pth --out=FILE.pth [...]`. Returns the exit status.
function M.export_main(...)
  local o, err = parse_flags({ ... }, { format = true, out = true, model = true, shared_rank = true,
    unique_rank = true, classes = true, in_channels = true, prefix = true, wrap = true }, "export")
  if not o then return usage_fail("export", EXPORT_USAGE, err) end
  if o.help then io.stdout:write(EXPORT_USAGE); return 0 end
  if o.format ~= "pth" then
    return usage_fail("export", EXPORT_USAGE, o.format and ("unknown format '" .. o.format .. "' (only pth)")
                                                       or "missing '--format=pth'")
  end
  if not o.out then return usage_fail("export", EXPORT_USAGE, "missing '--out=FILE.pth'") end
  if o.wrap ~= nil and o.wrap ~= "none" and o.wrap ~= "net_state_dict" then
    return usage_fail("export", EXPORT_USAGE, ("'--wrap' must be none or net_state_dict, got '%s'"):format(o.wrap))
  end
  local ok, res = pcall(function()
    local ckpt = require "lunet.checkpoint"
    local loaded = ckpt.load(o.file)
    local cfg = loaded.config or {}
    local name = o.model or cfg.model
    if not name then error("the checkpoint does not name its model: give --model=NAME", 0) end
    local build = {}
    for _, k in ipairs { "shared_rank", "unique_rank", "classes", "in_channels" } do
      build[k] = o[k] or cfg[k]
    end
    local model = M.build_model(name, { tensors = loaded.tensors, order = {}, prefix = "" },
                                { shared_rank = build.shared_rank, unique_rank = build.unique_rank,
                                  classes = build.classes, in_channels = build.in_channels })
    local n = M.export(o.out, model, { wrap = o.wrap ~= "none" and "net_state_dict" or false,
                                       prefix = o.prefix, epoch = loaded.epoch, acc = loaded.best_acc })
    io.stdout:write(("wrote %s: %d keys of %s%s\n"):format(o.out, n, name, describe(model)))
  end)
  if not ok then return fail("export", res) end
  return 0
end

return M
