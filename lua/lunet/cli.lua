--- The command line of the `lunet` executable (bindings/main.c calls main(...)):
--     lunet                     the REPL (also `lunet -i`)
--     lunet FILE.lua [args]     run a script; `arg` and `...` hold the args
--     lunet -e 'code'           run a chunk
--     lunet demo                the Fashion-MNIST training demo
--     lunet train / eval        training and evaluation (lunet.train, lunet.evaluate)
-- Returns the process exit status. A script's error propagates to main.c, which
-- prints it with a traceback and exits with status 1.
-- @module lunet.cli
local M = {}

local function usage()
  return table.concat({
    "usage: lunet [FILE.lua [args...] | -e CODE | -i | COMMAND]",
    "  (no arguments)     interactive REPL with `lunet` preloaded",
    "  FILE.lua [args]    run a Lua script (arg[0] = FILE, arg[1..] = args, also `...`)",
    "  -e CODE            run a Lua chunk",
    "  -i                 interactive REPL",
    "  demo               train a shared-basis ResNet on Fashion-MNIST (a few minutes)",
    "  train RECIPE.lua [--key=value...] | train --model=NAME --dataset=D --dataset_path=DIR [...]",
    "                     train a model (`lunet train --help` for the flags)",
    "  eval --model=NAME --pretrained=FILE --dataset_path=DIR [--batch_size=N]",
    "                     top-1 and top-5 error of a checkpoint (`lunet eval --help`)",
    "  summary --model=NAME [--shared_rank=S --unique_rank=U] [--dataset=D] [--classes=N] [--json]",
    "                     parameters, multiply-adds and FLOPs of a model, per layer",
    "                     (`lunet summary --help` for the options)",
    "  import FILE.pth --model=NAME --out=FILE [--shared_rank=S --unique_rank=U]",
    "                     a PyTorch checkpoint (zip or legacy) as a lunet checkpoint",
    "  export CHECKPOINT --format=pth --out=FILE.pth",
    "                     a lunet checkpoint as a PyTorch state dict (authors' layout)",
    "  bench --model=NAME [--batch_size=256] [--device=cpu|cuda:N] [--steps=20] [--json]",
    "                     training images/s on synthetic data (`lunet bench --help`)",
    "  bench-data --dataset_path=DIR [--workers=N] [--split=train|val]",
    "                     images/s of the data pipeline, and of torchvision's",
    "  -h, --help         this text",
  }, "\n") .. "\n"
end

M.commands = {
  demo = function(...) return require("lunet.demo").run(...) end,
  summary = function(...) return require("lunet.summary").main(...) end,
  train = function(...) return require("lunet.train").main(...) end,
  eval = function(...) return require("lunet.evaluate").main(...) end,
  bench = function(...) return require("lunet.bench").main(...) end,
  ["bench-data"] = function(...) return require("lunet.data.bench").main(...) end,
  import = function(...) return require("lunet.pth").import_main(...) end,
  export = function(...) return require("lunet.pth").export_main(...) end,
}

-- True when path names a readable regular file (not a directory).
local function is_file(path)
  local f = io.open(path, "r")
  if not f then return false end
  local data, err = f:read(0) -- "" for a file, nil at the end of an empty one
  f:close()
  return data ~= nil or err == nil
end

function M.main(...)
  local first = ...
  if first == nil or first == "-i" then
    require("lunet.repl").run()
    return 0
  end
  if first == "-h" or first == "--help" then
    io.stdout:write(usage())
    return 0
  end
  if first == "-e" then
    local code = select(2, ...)
    if code == nil then
      io.stderr:write("lunet: '-e' needs an argument\n", usage())
      return 1
    end
    local chunk, err = load(code, "=(command line)")
    if not chunk then error(err, 0) end
    _G.lunet = _G.lunet or require("lunet") -- as in the REPL: one-liners need no require
    chunk(select(3, ...))
    return 0
  end
  local command = M.commands[first]
  if command and not is_file(first) then
    local code = command(select(2, ...))
    return math.type(code) == "integer" and code or 0
  end
  if not is_file(first) then
    io.stderr:write(("lunet: no such file or command '%s'\n"):format(first))
    return 1
  end
  local chunk, err = loadfile(first)
  if not chunk then error(err, 0) end
  chunk(select(2, ...))
  return 0
end

return M
