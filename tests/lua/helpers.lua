-- Shared helpers of the Lua specs: approximate comparisons, flat <-> nested values,
-- a finite-difference gradient check in f64, and running the lunet executable.
local lunet = require "lunet"

local H = {}

-- Flattens nested tables of numbers in row-major order.
function H.flat(v, out)
  out = out or {}
  if type(v) == "table" then
    for _, x in ipairs(v) do H.flat(x, out) end
  else
    out[#out + 1] = v
  end
  return out
end

-- Nests a flat list into the given shape.
function H.nest(flat, shape)
  local pos = 0
  local function build(d)
    if d > #shape then pos = pos + 1; return flat[pos] end
    local t = {}
    for i = 1, shape[d] do t[i] = build(d + 1) end
    return t
  end
  if #shape == 0 then return flat[1] end
  return build(1)
end

-- Asserts that tensor t (or nested table) holds `expected` (nested table or flat
-- list) within tol.
function H.assert_close(expected, t, tol)
  tol = tol or 1e-5
  local got = H.flat(lunet.is_tensor(t) and t:totable() or t)
  local want = H.flat(expected)
  if #want ~= #got then
    error(("expected %d values, got %d"):format(#want, #got), 2)
  end
  for i = 1, #want do
    local diff = math.abs(got[i] - want[i])
    if not (diff <= tol * math.max(1, math.abs(want[i]))) then
      error(("value %d: expected %.9g, got %.9g (tolerance %g)"):format(i, want[i], got[i], tol), 2)
    end
  end
end

-- A random f64 tensor of the given shape with distinct values (no ties for max).
function H.randn64(shape)
  return lunet.randn(shape, { dtype = "f64" })
end

-- Finite-difference gradient check in f64. fn(inputs...) returns a tensor; the scalar
-- checked is sum(fn(...) * r) for a fixed random r. Every input that is a tensor
-- requiring grad is checked element by element (central differences).
function H.gradcheck(fn, inputs, opts)
  opts = opts or {}
  local eps, tol = opts.eps or 1e-6, opts.tol or 1e-5
  local out = fn(table.unpack(inputs))
  local r = lunet.randn(out:shape(), { dtype = "f64" })
  local function loss(...)
    return (fn(...) * r):sum()
  end
  for _, x in ipairs(inputs) do
    if lunet.is_tensor(x) then x:zero_grad() end
  end
  loss(table.unpack(inputs)):backward()
  for k, x in ipairs(inputs) do
    if lunet.is_tensor(x) and x:requires_grad() then
      local analytic = H.flat(x.grad:totable())
      local values = H.flat(x:totable())
      local shape = x:shape()
      for i = 1, #values do
        local function eval(delta)
          local v = { table.unpack(values) }
          v[i] = v[i] + delta
          local xi = lunet.tensor(H.nest(v, shape), { dtype = "f64" })
          local args = { table.unpack(inputs) }
          args[k] = xi
          return lunet.no_grad(function() return loss(table.unpack(args)):item() end)
        end
        local numeric = (eval(eps) - eval(-eps)) / (2 * eps)
        local diff = math.abs(numeric - analytic[i])
        if diff > tol * math.max(1, math.abs(numeric)) then
          error(("gradcheck: input %d element %d: analytic %.9g, numeric %.9g"):format(
            k, i, analytic[i], numeric), 2)
        end
      end
    end
  end
  return true
end

-- The lunet executable under test and the build directory it lives in.
--- Parses JSON text with dkjson (a dependency of busted); null reads as dkjson.null.
-- Errors on malformed text.
function H.json_decode(text)
  local dkjson = require "dkjson"
  local v, _, err = dkjson.decode(text, 1, dkjson.null)
  if err then error("json: " .. err, 2) end
  return v
end

H.exe = LUNET_EXE or "build/bin/lunet"
H.build_dir = H.exe:match("^(.*)/bin/[^/]*$") or "build"

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
H.quote = shell_quote

-- Writes text to a fresh temporary file; returns its name.
function H.tmpfile(text)
  local name = os.tmpname()
  local f = assert(io.open(name, "w"))
  f:write(text)
  f:close()
  return name
end

-- Runs a shell command; returns stdout, stderr and the exit status.
function H.run(cmd, stdin_text)
  local out, err = os.tmpname(), os.tmpname()
  local input = stdin_text and H.tmpfile(stdin_text) or "/dev/null"
  local full = ("%s <%s >%s 2>%s"):format(cmd, input, out, err)
  local _, _, code = os.execute(full)
  local function slurp(n)
    local f = io.open(n, "r")
    local s = f and f:read("a") or ""
    if f then f:close() end
    os.remove(n)
    return s
  end
  if stdin_text then os.remove(input) end
  return slurp(out), slurp(err), code
end

-- Runs the lunet executable with the given (already quoted) argument string.
function H.lunet(args, stdin_text)
  return H.run(shell_quote(H.exe) .. " " .. args, stdin_text)
end

return H
