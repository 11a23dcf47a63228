-- Runs busted inside the lunet executable, so the specs exercise the same embedded
-- Lua, preloaded `lunet.core` and package paths as users get:
--   build/bin/lunet tests/lua/run_busted.lua --output=TAP tests/lua/tensor_spec.lua
-- (how CMakeLists.txt registers each tests/lua/*_spec.lua as a ctest). The specs find
-- the executable under test in the global LUNET_EXE.
LUNET_EXE = arg[-1]
require "busted.runner" ({ standalone = false })
