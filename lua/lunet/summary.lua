--- Model summaries: per-layer output shapes, parameters, multiply-adds and the
-- paper's FLOPs, with each shared basis counted once (`lunet summary` on the command
-- line, `lunet.summary(model, input_shape)` from Lua).
--
-- How: one forward pass of a zero input of batch 1, in eval mode and under no_grad,
-- inside `nn.with_forward_hook`, records every module call (module, input and output
-- shapes). Hooks fire after a module's forward, so the calls arrive in post-order: a
-- call claims the pending calls of its children, which names every call by its dotted
-- path even when one module (a shared basis) sits under several blocks.
--
-- Counting conventions (docs/method.md section 7, docs/nn.md "Summaries"):
--   params               each parameter tensor once (`model:parameters()`)
--   macs_conv_linear     Conv2d and FilterBasis: output elements * (in/groups) * kh * kw;
--                        Linear: in * out per row
--   flops_paper          macs_conv_linear + one per output element for each bias + two
--                        per element entering an affine BatchNorm2d (one if not affine)
--                        + one per output element of nn.ReLU / nn.ReLU6 modules + one per
--                        input element of MaxPool2d modules; functional activations,
--                        residual adds, cat, ECA, dropout and the head's global average
--                        pooling count nothing (counting the pooling as well overshoots
--                        the published 4.1130G, 7.8355G and 0.3287G in the last digit)
--   shared bases         parameter tensors reachable through more than one module path
--                        or used by more than one layer call
--   bn_running_buffers   elements of every running_mean and running_var buffer
-- @module lunet.summary
local lunet = require "lunet"
local nn = lunet.nn

local M = {}

-- ------------------------------------------------------------------ formatting

--- An integer with thousands separators: 11786968 -> "11,786,968".
function M.format_int(n)
  local s = ("%d"):format(n)
  local sign, digits = s:match("^(-?)(%d+)$")
  local head = #digits % 3
  local parts = {}
  if head > 0 then parts[1] = digits:sub(1, head) end
  for i = head + 1, #digits, 3 do parts[#parts + 1] = digits:sub(i, i + 2) end
  return sign .. table.concat(parts, ",")
end

-- A count in G / M / K: 3261664488 -> "3.2617G", 328707624 -> "0.3287G" (as the
-- paper writes FLOPs), 11786968 -> "11.7870M".
local function short(n)
  if n >= 1e8 then return ("%.4fG"):format(n / 1e9) end
  if n >= 1e6 then return ("%.4fM"):format(n / 1e6) end
  if n >= 1e3 then return ("%.2fK"):format(n / 1e3) end
  return tostring(n)
end

local function shape_str(shape)
  if not shape then return "?" end
  if #shape == 0 then return "scalar" end
  return table.concat(shape, "x")
end

-- ------------------------------------------------------------------ JSON

-- Tables made by `object` keep their keys in the order given.
local Object = {}

--- A JSON object whose keys are written in the order of `pairs_list`
-- ({{key, value}, ...}); values that are nil are left out.
local function object(pairs_list) return setmetatable({ list = pairs_list }, Object) end
M.json_object = object

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    local named = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
    return named[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

local function json_encode(v, out)
  local tv = type(v)
  if v == nil then
    out[#out + 1] = "null"
  elseif tv == "boolean" then
    out[#out + 1] = tostring(v)
  elseif tv == "number" then
    if math.type(v) == "integer" then
      out[#out + 1] = ("%d"):format(v)
    elseif v ~= v or v == math.huge or v == -math.huge then
      out[#out + 1] = "null"
    else
      out[#out + 1] = ("%.17g"):format(v)
    end
  elseif tv == "string" then
    out[#out + 1] = json_string(v)
  elseif getmetatable(v) == Object then
    out[#out + 1] = "{"
    local first = true
    for _, kv in ipairs(v.list) do
      if kv[2] ~= nil then
        if not first then out[#out + 1] = "," end
        first = false
        out[#out + 1] = json_string(kv[1]) .. ":"
        json_encode(kv[2], out)
      end
    end
    out[#out + 1] = "}"
  elseif tv == "table" then -- a list
    out[#out + 1] = "["
    for i, x in ipairs(v) do
      if i > 1 then out[#out + 1] = "," end
      json_encode(x, out)
    end
    out[#out + 1] = "]"
  else
    error(("summary: cannot write a %s as JSON"):format(tv), 2)
  end
end

--- JSON text of v: nil, booleans, numbers, strings, lists (plain tables) and objects
-- made by `json_object`.
function M.json_encode(v)
  local out = {}
  json_encode(v, out)
  return table.concat(out)
end

-- ------------------------------------------------------------------ modules

-- True when m is a module and an instance of class cls or of a subclass of it.
local function is_a(m, cls)
  return cls ~= nil and nn.is_module(m) and m:is_a(cls)
end

local function type_name(m) return getmetatable(m).__name or "Module" end

-- The layer kinds counted; the first matching class wins.
local KINDS = {
  { "conv", "Conv2d" }, { "conv", "FilterBasis" }, { "linear", "Linear" },
  { "bn", "BatchNorm2d" }, { "act", "ReLU" }, { "act", "ReLU6" },
  { "pool", "MaxPool2d" },
}

local function kind_of(m)
  for _, k in ipairs(KINDS) do
    if is_a(m, nn[k[2]]) then return k[1] end
  end
  return "other"
end

-- The list of {name, child} of module m.
local function children_of(m) return m:named_children() end

-- Parameters module m holds itself (not through a child): names without a dot.
local function own_parameters(m)
  local own = {}
  for _, np in ipairs(m:named_parameters()) do
    if not np[1]:find(".", 1, true) then own[#own + 1] = np[2] end
  end
  return own
end

local function numel(shape)
  local n = 1
  for _, s in ipairs(shape) do n = n * s end
  return n
end

local function shape_of(t)
  if lunet.is_tensor(t) then return t:shape() end
  return nil
end

-- Multiply-adds and FLOPs of one call of a leaf layer of the given kind.
local function layer_cost(m, kind, in_shape, out_shape)
  local out_n = out_shape and numel(out_shape) or 0
  local in_n = in_shape and numel(in_shape) or 0
  local macs = 0
  if kind == "conv" then
    local w = m.weight:shape() -- (out, in/groups, kh, kw)
    macs = out_n * w[2] * w[3] * w[4]
  elseif kind == "linear" then
    local w = m.weight:shape() -- (out, in)
    macs = out_n * w[2]
  end
  local flops = macs
  if (kind == "conv" or kind == "linear") and lunet.is_tensor(m.bias) then
    flops = flops + out_n
  elseif kind == "bn" then
    local affine = m.affine ~= false and lunet.is_tensor(m.weight)
    flops = (affine and 2 or 1) * in_n
  elseif kind == "act" then
    flops = out_n
  elseif kind == "pool" then
    flops = in_n
  end
  return macs, flops
end

-- ------------------------------------------------------------------ recording

-- Runs model on x with the hook on; returns the calls as a tree: each call is
-- {module, in_shape, out_shape, seq (completion order), children = {{name, call}...}}.
-- The root is the model's own call; calls no parent claimed come back as `orphans`.
local function record(model, x)
  local child_names = {} -- module -> {child module -> name}
  local function names_of(m)
    local map = child_names[m]
    if not map then
      map = {}
      for _, nc in ipairs(children_of(m)) do
        if map[nc[2]] == nil then map[nc[2]] = nc[1] end
      end
      child_names[m] = map
    end
    return map
  end
  local stack, seq = {}, 0
  local function hook(m, inputs, output)
    seq = seq + 1
    local call = { module = m, in_shape = shape_of(inputs[1]), out_shape = shape_of(output), seq = seq }
    local names = names_of(m)
    local claimed = {}
    while #stack > 0 and names[stack[#stack].module] ~= nil do
      local c = table.remove(stack)
      table.insert(claimed, 1, { names[c.module], c })
    end
    call.children = claimed
    stack[#stack + 1] = call
  end
  lunet.no_grad(nn.with_forward_hook, hook, function() return model(x) end)
  local root
  for i = #stack, 1, -1 do
    if stack[i].module == model then root = table.remove(stack, i) break end
  end
  return root, stack
end

-- Calls fn(path, module) for every dotted path of the tree: a module reached by several
-- paths (a shared basis) is visited once per path; a module inside itself is not
-- re-entered.
local function each_path(m, prefix, fn, ancestors)
  ancestors = ancestors or {}
  fn(prefix, m)
  ancestors[m] = true
  for _, nc in ipairs(children_of(m)) do
    if not ancestors[nc[2]] then
      each_path(nc[2], prefix == "" and nc[1] or (prefix .. "." .. nc[1]), fn, ancestors)
    end
  end
  ancestors[m] = nil
end

-- ------------------------------------------------------------------ report

local Report = {}
Report.__index = Report

local function check_shape(shape)
  if type(shape) ~= "table" or #shape == 0 then
    error(("summary: input_shape must be a list of positive integers (one sample, no batch), got %s"):format(
      type(shape) == "table" and "an empty table" or tostring(shape)), 3)
  end
  for i, s in ipairs(shape) do
    if math.type(s) ~= "integer" or s < 1 then
      error(("summary: input_shape[%d] must be a positive integer, got %s"):format(i, tostring(s)), 3)
    end
  end
end

local OPTS = { name = "string", dataset = "string" }

--- Summarises model for one sample of the given shape.
-- @param model an nn.Module
-- @param input_shape the shape of ONE sample, without the batch dimension ({3, 224, 224})
-- @tparam[opt] table opts {name = model name shown, dataset = dataset name shown}
-- @return a report: fields params, shared_basis_params, shared_basis_tensors,
-- macs_conv_linear, flops_paper, bn_running_buffers, unused_params, input (the shape
-- given), layers (rows {name, type, output, params, shared, basis, macs, flops}),
-- bases ({name, params, layers}); `tostring(report)` is the table, `report:json()`
-- one JSON object.
function M.summary(model, input_shape, opts)
  if not is_a(model, nn.Module) then
    error(("summary: model must be an nn.Module, got %s"):format(type(model)), 2)
  end
  check_shape(input_shape)
  opts = opts or {}
  if type(opts) ~= "table" then error(("summary: opts must be a table, got %s"):format(type(opts)), 2) end
  for k, v in pairs(opts) do
    if OPTS[k] == nil then error(("summary: unknown option '%s' (expected name, dataset)"):format(tostring(k)), 2) end
    if type(v) ~= OPTS[k] then
      error(("summary: option '%s' must be a %s, got %s"):format(k, OPTS[k], type(v)), 2)
    end
  end

  local params = model:parameters()
  local first = params[1]
  local shape = { 1, table.unpack(input_shape) }
  local x = lunet.zeros(shape, first and { dtype = first:dtype(), device = first:device() } or nil)
  local was_training = model.training
  model:eval()
  local ok, root, orphans = pcall(record, model, x)
  model:train(was_training ~= false)
  if not ok then error(root, 0) end

  -- which tensors are shared: reached through several module paths, or used by
  -- several layer calls (counted below)
  local paths = {}
  each_path(model, "", function(_, m)
    for _, t in ipairs(own_parameters(m)) do paths[t] = (paths[t] or 0) + 1 end
  end)
  local canonical = {}
  for _, np in ipairs(model:named_parameters()) do canonical[np[2]] = np[1] end

  local rows, counted, uses = {}, {}, {}
  local function visit(call, name)
    local m = call.module
    for _, nc in ipairs(call.children) do
      visit(nc[2], name == "" and nc[1] or (name .. "." .. nc[1]))
    end
    local own = own_parameters(m)
    local leaf = #children_of(m) == 0
    if not leaf and #own == 0 then return end
    local kind = leaf and kind_of(m) or "other"
    local macs, flops = layer_cost(m, kind, call.in_shape, call.out_shape)
    local row = {
      name = name == "" and "(model)" or name, type = type_name(m), kind = kind,
      output = call.out_shape, params = 0, shared = false, macs = macs, flops = flops,
      tensors = own, seq = call.seq,
    }
    for _, t in ipairs(own) do
      uses[t] = (uses[t] or 0) + 1
      if counted[t] then
        row.shared = true
      else
        counted[t] = true
        row.params = row.params + t:numel()
      end
    end
    rows[#rows + 1] = row
  end
  if root then visit(root, "") end
  if #orphans > 0 then -- called by a module that does not hold them: their first path
    local path_of = {}
    for _, nm in ipairs(model:named_modules()) do path_of[nm[2]] = nm[1] end
    for _, call in ipairs(orphans) do visit(call, path_of[call.module] or "?") end
  end

  table.sort(rows, function(a, b) return a.seq < b.seq end) -- call order
  local report = setmetatable({
    model = opts.name, dataset = opts.dataset, input = { table.unpack(input_shape) },
    params = 0, shared_basis_params = 0, shared_basis_tensors = 0, macs_conv_linear = 0,
    flops_paper = 0, bn_running_buffers = 0, unused_params = 0, layers = rows, bases = {},
  }, Report)

  local basis_of = {}
  for _, t in ipairs(params) do
    report.params = report.params + t:numel()
    if not counted[t] then report.unused_params = report.unused_params + t:numel() end
    if (paths[t] or 0) > 1 or (uses[t] or 0) > 1 then
      local name = canonical[t]:gsub("%.weight$", "")
      report.shared_basis_params = report.shared_basis_params + t:numel()
      report.shared_basis_tensors = report.shared_basis_tensors + 1
      local b = { name = name, params = t:numel(), layers = uses[t] or 0 }
      report.bases[#report.bases + 1] = b
      basis_of[t] = b
    end
  end
  for _, row in ipairs(rows) do
    report.macs_conv_linear = report.macs_conv_linear + row.macs
    report.flops_paper = report.flops_paper + row.flops
    local names = {}
    for _, t in ipairs(row.tensors) do
      if basis_of[t] then names[#names + 1] = basis_of[t].name end
    end
    row.basis = #names > 0 and table.concat(names, ", ") or nil
    row.tensors, row.kind, row.seq = nil, nil, nil
  end
  for _, nb in ipairs(model:named_buffers()) do
    local leaf = nb[1]:match("([^.]+)$")
    if leaf == "running_mean" or leaf == "running_var" then
      report.bn_running_buffers = report.bn_running_buffers + nb[2]:numel()
    end
  end
  return report
end

-- Pads s to width w (left-aligned, or right-aligned when right is true).
local function pad(s, w, right)
  local fill = (" "):rep(w - utf8.len(s))
  return right and (fill .. s) or (s .. fill)
end

--- The per-layer table and the totals.
function Report:__tostring()
  local head = { "layer", "type", "output", "params", "MACs", "shared basis" }
  local right = { false, false, false, true, true, false }
  local cells = {}
  for _, r in ipairs(self.layers) do
    local params = M.format_int(r.params)
    if r.shared then params = r.params > 0 and (params .. " + shared") or "shared" end
    cells[#cells + 1] = {
      r.name, r.type, shape_str(r.output), params, M.format_int(r.macs), r.basis or "",
    }
  end
  local widths = {}
  for i, h in ipairs(head) do
    widths[i] = #h
    for _, c in ipairs(cells) do widths[i] = math.max(widths[i], utf8.len(c[i])) end
  end
  local function line(c)
    local parts = {}
    for i = 1, #head do parts[i] = pad(c[i], widths[i], right[i]) end
    return (table.concat(parts, "  "):gsub("%s+$", ""))
  end
  local total_width = #head - 1
  for _, w in ipairs(widths) do total_width = total_width + w + 1 end
  local out = {}
  if self.model then
    out[#out + 1] = ("model: %s%s"):format(self.model, self.dataset and (" (" .. self.dataset .. ")") or "")
  end
  out[#out + 1] = line(head)
  out[#out + 1] = ("-"):rep(total_width)
  for _, c in ipairs(cells) do out[#out + 1] = line(c) end
  out[#out + 1] = ("-"):rep(total_width)
  out[#out + 1] = ("input: %s (batch 1)"):format(shape_str(self.input))
  out[#out + 1] = ("params: %s (%s)"):format(M.format_int(self.params), short(self.params))
  out[#out + 1] = ("shared-basis params: %s in %d tensors"):format(
    M.format_int(self.shared_basis_params), self.shared_basis_tensors)
  local bw, pw = 0, 0
  for _, b in ipairs(self.bases) do
    bw, pw = math.max(bw, #b.name), math.max(pw, #M.format_int(b.params))
  end
  for _, b in ipairs(self.bases) do
    out[#out + 1] = ("  %s  %s params, serves %d layers"):format(
      pad(b.name, bw), pad(M.format_int(b.params), pw, true), b.layers)
  end
  if self.unused_params > 0 then
    out[#out + 1] = ("params not used by the forward pass: %s"):format(M.format_int(self.unused_params))
  end
  out[#out + 1] = ("BN running buffers: %s"):format(M.format_int(self.bn_running_buffers))
  out[#out + 1] = ("multiply-adds (conv + linear): %s (%s)"):format(
    M.format_int(self.macs_conv_linear), short(self.macs_conv_linear))
  out[#out + 1] = ("FLOPs (paper convention): %s (%s)"):format(M.format_int(self.flops_paper), short(self.flops_paper))
  return table.concat(out, "\n")
end

--- The report as one JSON object (totals, bases and layers).
function Report:json()
  local bases, layers = {}, {}
  for i, b in ipairs(self.bases) do
    bases[i] = object { { "name", b.name }, { "params", b.params }, { "layers", b.layers } }
  end
  for i, r in ipairs(self.layers) do
    layers[i] = object {
      { "name", r.name }, { "type", r.type }, { "output", r.output }, { "params", r.params },
      { "shared", r.shared }, { "basis", r.basis }, { "macs", r.macs }, { "flops", r.flops },
    }
  end
  return M.json_encode(object {
    { "model", self.model }, { "dataset", self.dataset }, { "input", self.input },
    { "params", self.params }, { "shared_basis_params", self.shared_basis_params },
    { "shared_basis_tensors", self.shared_basis_tensors },
    { "macs_conv_linear", self.macs_conv_linear }, { "flops_paper", self.flops_paper },
    { "bn_running_buffers", self.bn_running_buffers }, { "unused_params", self.unused_params },
    { "bases", bases }, { "layers", layers },
  })
end

-- ------------------------------------------------------------------ command line

--- Input shape (one sample), classes and input channels of each dataset.
M.datasets = {
  ilsvrc = { input = { 3, 224, 224 }, classes = 1000 },
  cifar10 = { input = { 3, 32, 32 }, classes = 10 },
  cifar100 = { input = { 3, 32, 32 }, classes = 100 },
  ["fashion-mnist"] = { input = { 1, 28, 28 }, classes = 10, in_channels = 1 },
}

local USAGE = [[
usage: lunet summary --model=NAME [--shared_rank=S --unique_rank=U]
                     [--dataset=ilsvrc|cifar10|cifar100|fashion-mnist] [--classes=N] [--json]
  --model=NAME      a model of the zoo (lunet.models.list())
  --shared_rank=S   rank of the shared bases (models with shared bases)
  --unique_rank=U   unique rank per block (DoubleShared / SingleShared models)
  --dataset=D       input shape and classes: ilsvrc 3x224x224/1000, cifar10 3x32x32/10,
                    cifar100 3x32x32/100, fashion-mnist 1x28x28/10 (1 input channel);
                    default: the model's own dataset
  --classes=N       number of classes (default: the dataset's)
  --json            print one JSON object instead of the table
]]

-- The dataset a model is defined for: the zoo's answer (`models.info(name).dataset`)
-- when it gives one, else cifar10 for the CIFAR ResNets (method.md section 3) and
-- ilsvrc for the others.
local CIFAR_DEPTHS = { [20] = true, [32] = true, [44] = true, [56] = true, [110] = true }
local function natural_dataset(models, name)
  if type(models.info) == "function" then
    local ok, info = pcall(models.info, name)
    if ok and type(info) == "table" and M.datasets[info.dataset] then return info.dataset end
  end
  return CIFAR_DEPTHS[tonumber(name:match("^ResNet(%d+)"))] and "cifar10" or "ilsvrc"
end

-- Parses the arguments; returns the options or nil and a message.
local function parse(args)
  local o = {}
  local valued = { model = true, shared_rank = true, unique_rank = true, dataset = true, classes = true }
  local i = 1
  while i <= #args do
    local a = args[i]
    local key, value = a:match("^%-%-([%w_%-]+)=(.*)$")
    if not key then key = a:match("^%-%-([%w_%-]+)$") end
    if key == nil then return nil, ("unexpected argument '%s'"):format(a) end
    if key == "help" then
      o.help = true
    elseif key == "json" then
      if value ~= nil then return nil, "'--json' takes no value" end
      o.json = true
    elseif valued[key] then
      if value == nil then
        i = i + 1
        value = args[i]
        if value == nil then return nil, ("'--%s' needs a value"):format(key) end
      end
      if o[key] ~= nil then return nil, ("'--%s' given twice"):format(key) end
      o[key] = value
    else
      return nil, ("unknown option '%s'"):format(a)
    end
    i = i + 1
  end
  if o.help then return o end
  if not o.model or o.model == "" then return nil, "missing '--model=NAME'" end
  for _, k in ipairs { "shared_rank", "unique_rank", "classes" } do
    if o[k] ~= nil then
      local n = math.tointeger(tonumber(o[k]))
      if not n or not o[k]:match("^%d+$") or n < (k == "unique_rank" and 0 or 1) then
        return nil, ("'--%s' must be a %s integer, got '%s'"):format(
          k, k == "unique_rank" and "non-negative" or "positive", o[k])
      end
      o[k] = n
    end
  end
  if o.dataset and not M.datasets[o.dataset] then
    return nil, ("unknown dataset '%s' (expected ilsvrc, cifar10, cifar100 or fashion-mnist)"):format(o.dataset)
  end
  return o
end

local function fail(msg)
  io.stderr:write("lunet summary: ", msg, "\n", USAGE)
  return 2
end

--- `lunet summary ...`: prints the summary of a zoo model. Returns the exit status:
-- 0, or 2 (with a message and the usage on stderr) for bad arguments.
function M.main(...)
  local o, err = parse({ ... })
  if not o then return fail(err) end
  if o.help then
    io.stdout:write(USAGE)
    return 0
  end
  local models = lunet.models
  local known = false
  for _, n in ipairs(models.list()) do known = known or n == o.model end
  if not known then
    return fail(("unknown model '%s'; valid models: %s"):format(o.model, table.concat(models.list(), ", ")))
  end
  local dataset = o.dataset or natural_dataset(models, o.model)
  local d = M.datasets[dataset]
  local ok, model = pcall(models.build, o.model, {
    shared_rank = o.shared_rank, unique_rank = o.unique_rank, classes = o.classes or d.classes,
    in_channels = d.in_channels, dataset = dataset,
  })
  if not ok then return fail(tostring(model)) end
  local report = M.summary(model, d.input, { name = o.model, dataset = dataset })
  if o.json then
    io.stdout:write(report:json(), "\n")
  else
    io.stdout:write(tostring(report), "\n")
  end
  return 0
end

return M
