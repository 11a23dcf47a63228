-- lunet.io: safetensors from Lua (every dtype, 0-d and empty tensors, strided views,
-- metadata, the order option, argument errors, files PyTorch-side tools would write),
-- and the JSON codec (round trips, exact floats, strictness of the decoder).
local lunet = require "lunet"
local lio = lunet.io

local function errmsg(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

describe("lunet.io safetensors", function()
  local path
  before_each(function() path = os.tmpname() end)
  after_each(function() os.remove(path) end)

  it("round trips every dtype, 0-d, empty and strided tensors, with metadata", function()
    lunet.manual_seed(5)
    local base = lunet.randn { 3, 4 }
    local tensors = {
      f32 = base, f64 = lunet.randn({ 2, 2, 2 }, { dtype = "f64" }),
      i64 = lunet.tensor({ -4611686018427387904, 5, 0 }, { dtype = "i64" }),
      i32 = lunet.tensor({ { -2147483648, 2147483647 } }, { dtype = "i32" }),
      u8 = lunet.tensor({ 0, 17, 255 }, { dtype = "u8" }),
      scalar = lunet.tensor(3.5), empty = lunet.zeros { 0, 3 },
      ["strided.view"] = base:transpose(1, 2),
    }
    local meta = { note = "caf\u{e9} \"quoted\"\n", [""] = "empty key" }
    lio.save_safetensors(path, tensors, meta)
    local back, m, names = lio.load_safetensors(path)
    local sorted = {}
    for k in pairs(tensors) do sorted[#sorted + 1] = k end
    table.sort(sorted)
    assert.are.same(sorted, names)
    assert.are.same(meta, m)
    for name, t in pairs(tensors) do
      assert.are.equal(t:dtype(), back[name]:dtype(), name)
      assert.are.same(t:shape(), back[name]:shape(), name)
      assert.is_true(t:equal(back[name]), name)
    end
    assert.are.equal(0, back.scalar:dim())
    assert.are.equal(-4611686018427387904, back.i64:totable()[1])
  end)

  it("writes in the given order", function()
    local t = { b = lunet.zeros { 1 }, a = lunet.ones { 2 }, c = lunet.zeros { 3 } }
    lio.save_safetensors(path, t, nil, { order = { "c", "a", "b" } })
    local _, _, names = lio.load_safetensors(path)
    assert.are.same({ "c", "a", "b" }, names)
    assert.matches("does not list 'c'", errmsg(lio.save_safetensors, path, t, nil, { order = { "a", "b" } }))
    assert.matches("lists 'a' twice", errmsg(lio.save_safetensors, path, t, nil, { order = { "a", "a", "b", "c" } }))
    assert.matches("lists 'z'", errmsg(lio.save_safetensors, path, t, nil, { order = { "z" } }))
    assert.matches("unknown option 'ordre'", errmsg(lio.save_safetensors, path, t, nil, { ordre = {} }))
  end)

  it("reads files written by another writer (Python's layout, F16)", function()
    -- {"__metadata__":{"format":"pt"},"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}
    local header = '{"__metadata__":{"format":"pt"},"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}   '
    local f = assert(io.open(path, "wb"))
    f:write(string.pack("<I8", #header), header, string.pack("<I2I2", 0x3C00, 0xC400))
    f:close()
    local t, m = lio.load_safetensors(path)
    assert.are.same({ 1, -4 }, t.h:totable())
    assert.are.equal("f32", t.h:dtype())
    assert.are.equal("pt", m.format)
  end)

  it("rejects bad arguments before touching the file", function()
    local f = assert(io.open(path, "w"))
    f:write("keep")
    f:close()
    assert.matches("must be a string", errmsg(lio.save_safetensors, 3, {}))
    assert.matches("'w' is a number, not a tensor", errmsg(lio.save_safetensors, path, { w = 3 }))
    assert.matches("names must be strings", errmsg(lio.save_safetensors, path, { lunet.zeros { 1 } }))
    assert.matches("metadata must map strings to strings", errmsg(lio.save_safetensors, path, {}, { k = 1 }))
    assert.matches("'__metadata__' cannot name a tensor", errmsg(lio.save_safetensors, path, { __metadata__ = lunet.zeros { 1 } }))
    assert.matches("contains a NUL", errmsg(lio.save_safetensors, path, { ["a\0b"] = lunet.zeros { 1 } }))
    assert.matches("fail_after_bytes must be >= 0", errmsg(lio.save_safetensors, path, {}, nil, { fail_after_bytes = -1 }))
    f = assert(io.open(path, "r"))
    assert.are.equal("keep", f:read("a"))
    f:close()
    local here = debug.getinfo(1, "S").short_src
    assert.matches(here, errmsg(lio.load_safetensors, path), 1, true) -- errors point at the caller
  end)
end)

describe("lunet.io JSON", function()
  it("round trips values, keeping integers and floats apart and floats exact", function()
    local v = { a = 1, b = 1.0, c = 0.1, d = -1e-300, e = 2 ^ 60, f = math.maxinteger, g = { 1, 2, { x = "y" } },
                h = "tab\tquote\"back\\slash\1\u{1F600}", i = true, j = false, k = {}, l = 1 / 3 }
    local text = lio.json_encode(v)
    local back = lio.json_decode(text)
    assert.are.same(v, back)
    assert.are.equal("integer", math.type(back.a))
    assert.are.equal("float", math.type(back.b))
    assert.are.equal("float", math.type(back.e))
    assert.are.equal(math.maxinteger, back.f)
  end)

  it("writes objects with sorted keys, arrays for sequences", function()
    assert.are.equal('{"a":[1,2],"b":{"c":0.5}}', lio.json_encode { b = { c = 0.5 }, a = { 1, 2 } })
    assert.are.equal('"\\u0001\\n"', lio.json_encode "\1\n")
    assert.are.equal("0.1", lio.json_encode(0.1))
    assert.are.equal("3.0", lio.json_encode(3.0))
  end)

  it("refuses what JSON cannot hold", function()
    assert.matches("cannot encode %-?nan", errmsg(lio.json_encode, { x = 0 / 0 }))
    assert.matches("cannot encode inf", errmsg(lio.json_encode, math.huge))
    assert.matches("keys must be strings", errmsg(lio.json_encode, { [1] = 1, [3] = 3 }))
    assert.matches("cannot encode a function at %$%.f", errmsg(lio.json_encode, { f = print }))
    assert.matches("cannot encode a tensor", errmsg(lio.json_encode, { t = lunet.zeros { 1 } }))
    local cyc = {}
    cyc.self = cyc
    assert.matches("cycle", errmsg(lio.json_encode, cyc))
  end)

  it("decodes strictly", function()
    assert.are.same({ a = { 1, 2.5, -3e2 }, b = "\u{e9}\u{1F600}" }, lio.json_decode ' {"a": [1, 2.5, -3e2], "b": "\\u00e9\\ud83d\\ude00"} ')
    assert.are.equal(lio.null, lio.json_decode "null")
    assert.are.equal("\127", lio.json_decode '"\127"')
    for _, bad in ipairs { "", "{", "[1,]", "{\"a\":1,}", "01", "1.", ".5", "1e", "'x'", "{\"a\" 1}", "[1] 2",
                           "\"\\x\"", "\"a\nb\"", "\"\\ud800\"", "tru", "{\"a\":1,\"a\":2}", "\"\255\"" } do
      local ok = pcall(lio.json_decode, bad)
      assert.is_false(ok, ("decoded %q"):format(bad))
    end
    assert.matches("at byte 6", errmsg(lio.json_decode, '[1,2,]'))
  end)
end)
