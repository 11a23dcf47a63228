--- The interactive REPL of `lunet` (no arguments, or -i): `lunet` is preloaded as a
-- global. Each line is tried first as an expression ("return " .. line), then as a
-- statement; an incomplete statement continues on the next lines (prompt ">>"). Results
-- are pretty-printed (tensors by their __tostring, tables shallowly); errors are
-- printed and the session goes on. EOF (Ctrl-D) or os.exit() ends it.
-- @module lunet.repl
local M = {}

local function pretty(v, depth, seen)
  local tv = type(v)
  if tv == "string" then
    return depth == 0 and v or ("%q"):format(v)
  elseif tv ~= "table" then
    return tostring(v) -- tensors print through their __tostring
  end
  local mt = getmetatable(v)
  if mt and mt.__tostring then return tostring(v) end
  if seen[v] then return "<cycle>" end
  if depth >= 2 then return tostring(v) end
  seen[v] = true
  local parts, n = {}, #v
  for i = 1, n do parts[#parts + 1] = pretty(v[i], depth + 1, seen) end
  local keys = {}
  for k in pairs(v) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for i, k in ipairs(keys) do
    if i > 30 then parts[#parts + 1] = "..."; break end
    local key = (type(k) == "string" and k:match("^[%a_][%w_]*$")) and k
                or "[" .. pretty(k, depth + 1, seen) .. "]"
    parts[#parts + 1] = key .. " = " .. pretty(v[k], depth + 1, seen)
  end
  seen[v] = nil
  return "{" .. table.concat(parts, ", ") .. "}"
end

--- The text the REPL prints for a value.
function M.pretty(v) return pretty(v, 0, {}) end

-- Compiles one input: as an expression first, then as statements. Returns the
-- function, or nil plus the error and whether more input could complete it.
local function compile(src, first_line)
  if first_line then
    local expr = src:gsub("^%s*=", "")
    local f = load("return " .. expr, "=stdin", "t")
    if f then return f end
  end
  local f, err = load(src, "=stdin", "t")
  if f then return f end
  return nil, err, err:sub(-5) == "<eof>"
end

local function report_error(msg)
  io.stdout:flush()
  io.stderr:write("error: ", tostring(msg), "\n")
end

--- Runs the REPL on stdin/stdout until EOF.
function M.run()
  _G.lunet = _G.lunet or require "lunet"
  local core = require "lunet.core"
  local interactive = core.stdin_is_tty()
  if interactive then
    io.stdout:write(("lunet %s (%s): Lua with tensors; `lunet` is loaded. Ctrl-D exits.\n")
                    :format(_G.lunet.version, _VERSION))
  end
  local buffer
  while true do
    if interactive then
      io.stdout:write(buffer and ">> " or "> ")
      io.stdout:flush()
    end
    local line = io.stdin:read("l")
    if line == nil then
      if interactive then io.stdout:write("\n") end
      if buffer then report_error("incomplete input at end of file") end
      return
    end
    local src = buffer and (buffer .. "\n" .. line) or line
    local f, err, incomplete = compile(src, buffer == nil)
    if f then
      buffer = nil
      local res = table.pack(xpcall(f, function(m)
        return type(m) == "string" and m or M.pretty(m)
      end))
      if not res[1] then
        report_error(res[2])
      elseif res.n > 1 then
        local out = {}
        for i = 2, res.n do out[#out + 1] = M.pretty(res[i]) end
        io.stdout:write(table.concat(out, "\t"), "\n")
      end
    elseif incomplete then
      buffer = src
    else
      buffer = nil
      report_error(err)
    end
    io.stdout:flush()
  end
end

return M
