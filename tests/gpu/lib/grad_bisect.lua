-- Where do two devices part ways in one training step? Used by tests/gpu/train_step.lua
-- when a model's gradients disagree (and with LUNET_GPU_BISECT=1 always): every
-- module's output, and the gradient that reaches it in backward, are recorded on
-- both sides (each call of a shared module separately) and compared in the order the
-- devices computed them. It prints the first module whose output differs (a forward
-- bug) and the first, in backward order, whose incoming gradient differs while the
-- ones before it agreed: the fault is then in the backward of the module(s) that
-- consume that output (listed), or in summing the gradients of an output used twice.
--   local bisect = dofile("tests/gpu/lib/grad_bisect.lua")
--   bisect.run(build_model, x, labels, loss_fn, device, opts)
local lunet = require "lunet"

local M = {}

local TOL = 1e-3 -- of the tensor's largest magnitude (plus FLOOR of the step's largest)
local FLOOR = 1e-5

local function max_abs(t)
  local m = 0
  for _, v in ipairs(t) do m = math.max(m, math.abs(v)) end
  return m
end

local function max_diff(a, b)
  local d = 0
  for i = 1, math.min(#a, #b) do d = math.max(d, math.abs(a[i] - b[i])) end
  if #a ~= #b then d = math.huge end
  return d
end

-- Wraps every module's forward so that its output passes through an identity whose
-- backward records the incoming gradient. Returns the records table
-- {fwd = {{name, kind, shape, values}...} in call order, bwd = {...} in backward order}
-- and a function that removes the wrappers.
local function tap(model)
  local rec = { fwd = {}, bwd = {} }
  local calls, own = {}, {}
  local mods = model:named_modules()
  for _, e in ipairs(mods) do
    local name, m = e[1] ~= "" and e[1] or "(model)", e[2]
    local kind = tostring(getmetatable(m).__name or "Module")
    local orig = m.forward
    own[m] = { rawget(m, "forward") }
    rawset(m, "forward", function(self, ...)
      local out = orig(self, ...)
      if not lunet.is_tensor(out) or not out:requires_grad() then return out end
      calls[name] = (calls[name] or 0) + 1
      local label = calls[name] > 1 and ("%s#%d"):format(name, calls[name]) or name
      rec.fwd[#rec.fwd + 1] = { label, kind, out:shape(), out:cpu():reshape(-1):totable() }
      local Tap = lunet.autograd.Function {
        name = "Tap",
        forward = function(_, x) return x:clone() end,
        backward = function(_, g)
          rec.bwd[#rec.bwd + 1] = { label, kind, g:shape(), g:cpu():reshape(-1):totable() }
          return g
        end,
      }
      return Tap(out)
    end)
  end
  return rec, function()
    for m, f in pairs(own) do rawset(m, "forward", f[1]) end
  end
end

local function shape_str(s) return "(" .. table.concat(s, ",") .. ")" end

-- Compares two record lists (same order on both sides); returns the index of the first
-- entry beyond tolerance, its ratio to the tolerance, and the worst ratios seen.
local function first_bad(a, b, floor)
  for i = 1, math.min(#a, #b) do
    if a[i][1] ~= b[i][1] then return i, math.huge end
    local m = max_abs(a[i][4])
    local r = max_diff(a[i][4], b[i][4]) / (TOL * m + floor + 1e-30)
    if r > 1 then return i, r end
  end
  if #a ~= #b then return math.min(#a, #b) + 1, math.huge end
  return nil
end

-- The modules that consume the output of forward record i: those called after it
-- whose output shape follows (a heuristic: the next few calls).
local function next_calls(fwd, i, n)
  local out = {}
  for k = i + 1, math.min(#fwd, i + n) do out[#out + 1] = fwd[k][1] .. " [" .. fwd[k][2] .. "]" end
  return table.concat(out, ", ")
end

--- Runs one step on the CPU and one on `device` from the same weights (build() makes
-- the model; step(model, x, labels) returns the loss after backward), then prints
-- the findings. opts.second_backend: backend name for the second side ("ref" when
-- rehearsing on the CPU).
function M.run(build, x, labels, step, device, opts)
  opts = opts or {}
  local model = build()
  local rc, untap = tap(model)
  step(model, x, labels)
  untap()
  model:zero_grad()
  model:to(device)
  local rd, untap2 = tap(model)
  if opts.second_backend then lunet.set_backend(opts.second_backend) end
  step(model, x:to(device), labels:to(device))
  lunet.set_backend("auto")
  untap2()
  local gmax = 0
  for _, r in ipairs(rc.bwd) do gmax = math.max(gmax, max_abs(r[4])) end
  print(("bisect: %d module outputs, %d gradients recorded per side"):format(#rc.fwd, #rc.bwd))
  local i, r = first_bad(rc.fwd, rd.fwd, 0)
  if i then
    local e = rc.fwd[i] or rd.fwd[i]
    print(("bisect: FORWARD first differs at %s [%s] %s (%.3g x tolerance); inputs from %s"):format(
      e[1], e[2], shape_str(e[3]), r, i > 1 and rc.fwd[i - 1][1] or "the batch"))
  else
    print("bisect: forward agrees at every module output")
  end
  local j, rj = first_bad(rc.bwd, rd.bwd, FLOOR * gmax)
  if not j then
    print("bisect: every module's incoming gradient agrees (look at parameter-gradient kernels: "
          .. "conv/linear weight gradients, BN weight/bias, gradient accumulation of shared tensors)")
    return
  end
  local e = rc.bwd[j]
  local fi
  for k, f in ipairs(rc.fwd) do if f[1] == e[1] then fi = k end end
  print(("bisect: BACKWARD first differs at the gradient reaching %s [%s] %s (%.3g x tolerance)"):format(
    e[1], e[2], shape_str(e[3]), rj))
  if j > 1 then print(("bisect:   the gradient before it (%s) agreed"):format(rc.bwd[j - 1][1])) end
  if fi then print(("bisect:   consumers of that output, in forward order: %s"):format(next_calls(rc.fwd, fi, 3))) end
  local shown = 0
  for k = j, #rc.bwd do
    local m = max_abs(rc.bwd[k][4])
    local ratio = max_diff(rc.bwd[k][4], rd.bwd[k][4]) / (TOL * m + FLOOR * gmax + 1e-30)
    if ratio > 1 and shown < 8 then
      shown = shown + 1
      print(("bisect:   %-40s [%s] %s %.3g x tolerance"):format(rc.bwd[k][1], rc.bwd[k][2], shape_str(rc.bwd[k][3]), ratio))
    end
  end
end

return M
