-- The binding as a plain Lua module: a stock lua5.4 with LUA_CPATH=<build>/lib/?.so and
-- LUA_PATH=lua/?.lua;lua/?/init.lua can `require "lunet"` and compute.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")

describe("require 'lunet' from a stock lua5.4", function()
  local has_lua = os.execute("command -v lua5.4 >/dev/null 2>&1")

  it("loads the module and computes a sum", function()
    if not has_lua then
      pending("lua5.4 is not installed")
      return
    end
    local src = here .. "../../lua"
    local env = ("LUA_CPATH=%s LUA_PATH=%s"):format(
      H.quote(H.build_dir .. "/lib/?.so"), H.quote(src .. "/?.lua;" .. src .. "/?/init.lua"))
    local code = [[local lunet = require "lunet"
      local t = lunet.tensor{{1, 2}, {3, 4}}
      io.write(tostring(t:sum():item()), " ", tostring(package.loaded["lunet.core"] ~= nil), " ",
               tostring(lunet.nn.functional.relu(lunet.tensor{-1, 1})))]]
    local out, err, status = H.run(env .. " lua5.4 -e " .. H.quote(code))
    assert.are.equal(0, status, err)
    assert.are.equal("10.0 true tensor([0., 1.], dtype=f32, device=cpu)", out)
  end)
end)
