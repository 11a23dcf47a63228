--- lunet.io: tensor files (safetensors) and the small JSON codec the checkpoint
-- metadata (and metric logs) use.
--
--     lunet.io.save_safetensors(path, {name = tensor, ...}[, metadata[, opts]])
--     local tensors, metadata, names = lunet.io.load_safetensors(path)
--     lunet.io.json_encode(value) -> string;  lunet.io.json_decode(s) -> value
--
-- save_safetensors writes atomically (a temporary file in the same folder, fsync,
-- rename): an error, a full disk included, leaves a previous file at path as it was.
-- Tensors are written in the order of `opts.order` when given (a list of all the
-- names), otherwise sorted by name. metadata maps strings to strings.
-- load_safetensors validates the whole file (see core/include/lunet/io.h) and raises
-- an error naming the path for a truncated or foreign file; it returns the tensors by
-- name (CPU, contiguous), the metadata table and the names in the file's order.
-- @module lunet.io
local core = require "lunet.core"

local M = {}

local SAVE_OPTS = { order = true, fail_after_bytes = true }

local function check_keys(t, allowed, fn, what)
  for k in pairs(t) do
    if not allowed[k] then
      local names = {}
      for n in pairs(allowed) do names[#names + 1] = n end
      table.sort(names)
      error(("%s: unknown %s '%s' (valid: %s)"):format(fn, what, tostring(k), table.concat(names, ", ")), 3)
    end
  end
end

--- Writes tensors (a table name -> tensor) and optional string metadata to path.
-- opts: `order` (list of the names, the file order), `fail_after_bytes` (test hook:
-- the write fails as on a full disk after that many bytes).
function M.save_safetensors(path, tensors, metadata, opts)
  local fn = "save_safetensors"
  if type(path) ~= "string" then error(("%s: path must be a string, got %s"):format(fn, type(path)), 2) end
  if type(tensors) ~= "table" or core.is_tensor(tensors) then
    error(("%s: tensors must be a table of name -> tensor, got %s"):format(fn, type(tensors)), 2)
  end
  if metadata ~= nil and type(metadata) ~= "table" then
    error(("%s: metadata must be a table of strings, got %s"):format(fn, type(metadata)), 2)
  end
  opts = opts or {}
  check_keys(opts, SAVE_OPTS, fn, "option")
  local names, list = {}, {}
  for name, t in pairs(tensors) do
    if type(name) ~= "string" then
      error(("%s: tensor names must be strings, got a %s key"):format(fn, type(name)), 2)
    end
    if not core.is_tensor(t) then
      error(("%s: '%s' is a %s, not a tensor"):format(fn, name, type(t)), 2)
    end
    names[#names + 1] = name
  end
  if opts.order then
    local seen = {}
    for i, name in ipairs(opts.order) do
      if tensors[name] == nil then error(("%s: order lists '%s', which is not among the tensors"):format(fn, tostring(name)), 2) end
      if seen[name] then error(("%s: order lists '%s' twice"):format(fn, name), 2) end
      seen[name] = i
    end
    if #opts.order ~= #names then
      for _, name in ipairs(names) do
        if not seen[name] then error(("%s: order does not list '%s'"):format(fn, name), 2) end
      end
    end
    names = { table.unpack(opts.order) }
  else
    table.sort(names)
  end
  for i, name in ipairs(names) do list[i] = tensors[name] end
  local meta = {}
  for k, v in pairs(metadata or {}) do
    if type(k) ~= "string" or type(v) ~= "string" then
      error(("%s: metadata must map strings to strings, got %s -> %s"):format(fn, type(k), type(v)), 2)
    end
    meta[k] = v
  end
  -- core errors already carry the position of the caller outside lua/lunet
  core.save_safetensors(path, names, list, meta, opts.fail_after_bytes)
end

--- Reads a safetensors file: tensors by name, metadata, names in file order.
function M.load_safetensors(path)
  if type(path) ~= "string" then
    error(("load_safetensors: path must be a string, got %s"):format(type(path)), 2)
  end
  local names, list, meta = core.load_safetensors(path)
  local tensors = {}
  for i, name in ipairs(names) do tensors[name] = list[i] end
  return tensors, meta, names
end

-- ------------------------------------------------------------------- JSON
-- Numbers: integers as integers; floats in the shortest form that reads back to the
-- same double (with ".0" when integral, so they decode as floats again); NaN and
-- infinities are an error. Tables: a sequence 1..n (n >= 1) is an array, any other
-- table an object with string keys (sorted, so output is deterministic); the empty
-- table is {}. Cycles, tensors and functions are an error.

local ESC = { ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
              ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }

local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return ESC[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

local function encode_number(x)
  if math.type(x) == "integer" then return tostring(x) end
  if x ~= x or x == math.huge or x == -math.huge then
    error(("json_encode: cannot encode %s"):format(tostring(x)), 0)
  end
  if x == math.floor(x) and math.abs(x) < 2^53 then return ("%.1f"):format(x) end
  for digits = 15, 17 do
    local s = ("%." .. digits .. "g"):format(x)
    if tonumber(s) == x then return s end
  end
end

local function is_array(t)
  local n = #t
  if n == 0 then return false end
  local count = 0
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 or k > n then return false end
    count = count + 1
  end
  return count == n
end

local function encode(v, out, stack, path)
  local ty = type(v)
  if ty == "nil" then out[#out + 1] = "null"
  elseif ty == "boolean" then out[#out + 1] = tostring(v)
  elseif ty == "number" then out[#out + 1] = encode_number(v)
  elseif ty == "string" then out[#out + 1] = encode_string(v)
  elseif ty == "table" and not core.is_tensor(v) then
    if stack[v] then error(("json_encode: cycle at %s"):format(path), 0) end
    stack[v] = true
    if is_array(v) then
      out[#out + 1] = "["
      for i = 1, #v do
        if i > 1 then out[#out + 1] = "," end
        encode(v[i], out, stack, path .. "[" .. i .. "]")
      end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) ~= "string" then
          error(("json_encode: object keys must be strings, got %s %s at %s"):format(
            type(k), tostring(k), path), 0)
        end
        keys[#keys + 1] = k
      end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = encode_string(k)
        out[#out + 1] = ":"
        encode(v[k], out, stack, path .. "." .. k)
      end
      out[#out + 1] = "}"
    end
    stack[v] = nil
  else
    error(("json_encode: cannot encode a %s at %s"):format(core.is_tensor(v) and "tensor" or ty, path), 0)
  end
end

--- Encodes a Lua value (nil, boolean, number, string, tables of those) as JSON.
function M.json_encode(v)
  local out = {}
  local ok, err = pcall(encode, v, out, {}, "$")
  if not ok then error(err, 2) end
  return table.concat(out)
end

-- Decoder: strict RFC 8259; objects become tables, arrays sequences, null is
-- json_null (a unique value, so arrays keep their length).
M.null = setmetatable({}, { __tostring = function() return "null" end, __name = "json.null" })

local function decode_error(s, pos, msg)
  error(("json_decode: at byte %d: %s"):format(pos, msg), 0)
end

local function skip(s, pos)
  return s:find("[^ \t\r\n]", pos) or #s + 1
end

local decode_value

local UNESC = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n",
                r = "\r", t = "\t" }

local function decode_string(s, pos)
  local out, i = {}, pos + 1
  while true do
    local j = s:find('["\\\0-\31]', i)
    if not j then decode_error(s, pos, "unterminated string") end
    out[#out + 1] = s:sub(i, j - 1)
    local c = s:sub(j, j)
    if c == '"' then
      local str = table.concat(out)
      if not utf8.len(str) then decode_error(s, pos, "string is not valid UTF-8") end
      return str, j + 1
    elseif c == "\\" then
      local e = s:sub(j + 1, j + 1)
      if UNESC[e] then
        out[#out + 1] = UNESC[e]
        i = j + 2
      elseif e == "u" then
        local hex = s:match("^%x%x%x%x", j + 2)
        if not hex then decode_error(s, j, "bad \\u escape") end
        local cp = tonumber(hex, 16)
        i = j + 6
        if cp >= 0xD800 and cp <= 0xDBFF then
          local lo = s:match("^\\u(%x%x%x%x)", i)
          lo = lo and tonumber(lo, 16)
          if not lo or lo < 0xDC00 or lo > 0xDFFF then decode_error(s, j, "lone high surrogate") end
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
          i = i + 6
        elseif cp >= 0xDC00 and cp <= 0xDFFF then
          decode_error(s, j, "lone low surrogate")
        end
        out[#out + 1] = utf8.char(cp)
      else
        decode_error(s, j, "bad escape")
      end
    else
      decode_error(s, j, "control character in a string")
    end
  end
end

local function decode_number(s, pos)
  local int = s:match("^-?%d+", pos)
  if not int then decode_error(s, pos, "bad number") end
  if int:match("^-?0%d") then decode_error(s, pos, "number with a leading zero") end
  local i = pos + #int
  local frac = s:match("^%.%d+", i)
  if not frac and s:sub(i, i) == "." then decode_error(s, i, "digit expected after '.'") end
  i = i + #(frac or "")
  local exp = s:match("^[eE][+-]?%d+", i)
  if not exp and s:sub(i, i):match("[eE]") then decode_error(s, i, "digit expected in exponent") end
  i = i + #(exp or "")
  local text = s:sub(pos, i - 1)
  local v = tonumber(text)
  if frac or exp then v = v + 0.0 end
  return v, i
end

function decode_value(s, pos, depth)
  if depth > 200 then decode_error(s, pos, "nesting too deep") end
  pos = skip(s, pos)
  local c = s:sub(pos, pos)
  if c == "{" then
    local obj = {}
    pos = skip(s, pos + 1)
    if s:sub(pos, pos) == "}" then return obj, pos + 1 end
    while true do
      pos = skip(s, pos)
      if s:sub(pos, pos) ~= '"' then decode_error(s, pos, "expected a string key") end
      local key
      key, pos = decode_string(s, pos)
      pos = skip(s, pos)
      if s:sub(pos, pos) ~= ":" then decode_error(s, pos, "expected ':'") end
      local val
      val, pos = decode_value(s, pos + 1, depth + 1)
      if obj[key] ~= nil then decode_error(s, pos, ("duplicate key '%s'"):format(key)) end
      obj[key] = val
      pos = skip(s, pos)
      local d = s:sub(pos, pos)
      if d == "}" then return obj, pos + 1 end
      if d ~= "," then decode_error(s, pos, "expected ',' or '}'") end
      pos = pos + 1
    end
  elseif c == "[" then
    local arr = {}
    pos = skip(s, pos + 1)
    if s:sub(pos, pos) == "]" then return arr, pos + 1 end
    while true do
      local val
      val, pos = decode_value(s, pos, depth + 1)
      arr[#arr + 1] = val
      pos = skip(s, pos)
      local d = s:sub(pos, pos)
      if d == "]" then return arr, pos + 1 end
      if d ~= "," then decode_error(s, pos, "expected ',' or ']'") end
      pos = pos + 1
    end
  elseif c == '"' then
    return decode_string(s, pos)
  elseif c == "-" or c:match("%d") then
    return decode_number(s, pos)
  elseif s:sub(pos, pos + 3) == "true" then return true, pos + 4
  elseif s:sub(pos, pos + 4) == "false" then return false, pos + 5
  elseif s:sub(pos, pos + 3) == "null" then return M.null, pos + 4
  elseif c == "" then decode_error(s, pos, "unexpected end of text")
  end
  decode_error(s, pos, ("unexpected character '%s'"):format(c))
end

--- Decodes a JSON text; null becomes lunet.io.null.
function M.json_decode(s)
  if type(s) ~= "string" then error(("json_decode: expected a string, got %s"):format(type(s)), 2) end
  local ok, v, pos = pcall(decode_value, s, 1, 0)
  if not ok then error(v, 2) end
  pos = skip(s, pos)
  if pos <= #s then
    local okk, err = pcall(decode_error, s, pos, "unexpected text after the value")
    if not okk then error(err, 2) end
  end
  return v
end

return M
