-- The lunet executable: scripts with `arg` and `...`, -e, exit status and traceback
-- of a failing script, unknown commands, the REPL driven through a pipe, and
-- `lunet demo` (its loss must fall).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")

describe("lunet FILE.lua", function()
  it("runs a script with arg and ... set like lua.c", function()
    local script = H.tmpfile([[
      local n = select("#", ...)
      print("arg0=" .. arg[0], "arg1=" .. arg[1], "arg2=" .. arg[2], "n=" .. n, "dots=" .. table.concat({...}, ","))
      print("sum=" .. require("lunet").ones(3):sum():item())
    ]])
    local out, err, code = H.lunet(H.quote(script) .. " alpha 'b c'")
    os.remove(script)
    assert.are.equal(0, code, err)
    assert.matches("arg0=" .. script:gsub("%p", "%%%0"), out)
    assert.matches("arg1=alpha\targ2=b c\tn=2\tdots=alpha,b c", out)
    assert.matches("sum=3.0", out)
  end)

  it("exits with status 1, the error and a traceback when the script fails", function()
    local script = H.tmpfile("local function inner() error('script went wrong') end\ninner()\n")
    local out, err, code = H.lunet(H.quote(script))
    os.remove(script)
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.matches("lunet: .*:1: script went wrong", err)
    assert.matches("stack traceback:", err)
    assert.matches("in local 'inner'", err)
  end)

  it("reports syntax errors with status 1", function()
    local script = H.tmpfile("x = = 1\n")
    local _, err, code = H.lunet(H.quote(script))
    os.remove(script)
    assert.are.equal(1, code)
    assert.matches("unexpected symbol", err)
  end)

  it("rejects an unknown command or missing file", function()
    local _, err, code = H.lunet("no_such_thing")
    assert.are.equal(1, code)
    assert.matches("lunet: no such file or command 'no_such_thing'", err)
  end)
end)

describe("lunet -e", function()
  it("runs a chunk with lunet preloaded, as in the REPL", function()
    local out, err, code = H.lunet([[-e 'print(1 + 1, lunet == require("lunet"), lunet.tensor{1,2}:numel())']])
    assert.are.equal(0, code, err)
    assert.are.equal("2\ttrue\t2\n", out)
  end)

  it("fails with status 1 on an error", function()
    local _, err, code = H.lunet([[-e 'error("bad chunk")']])
    assert.are.equal(1, code)
    assert.matches("bad chunk", err)
  end)
end)

describe("the REPL", function()
  local function repl(input)
    local out, err, code = H.lunet("", input)
    assert.are.equal(0, code, err)
    return out, err
  end

  it("evaluates expressions and prints results", function()
    local out = repl("1 + 2\n'text'\n{1, 2, a = 'b'}\nnil\n")
    assert.are.equal("3\ntext\n{1, 2, a = \"b\"}\nnil\n", out)
  end)

  it("keeps globals and prints tensors with their __tostring", function()
    local out = repl("x = lunet.tensor{1, 2}\nx * 2\n")
    assert.are.equal("tensor([2., 4.], dtype=f32, device=cpu)\n", out)
  end)

  it("continues an incomplete statement over several lines", function()
    local out = repl("function double(x)\n  return 2 * x\nend\ndouble(21)\nfor i = 1, 2 do\nprint('i', i)\nend\n")
    assert.are.equal("42\ni\t1\ni\t2\n", out)
  end)

  it("survives errors and goes on", function()
    local out, err = repl("error('oops')\n1 +\n+\n40 + 2\nlunet.tensor{{1}, {2, 3}}\n'after'\n")
    assert.matches("oops", err)
    assert.matches("unexpected symbol", err)
    assert.matches("ragged", err)
    assert.are.equal("42\nafter\n", out)
  end)

  it("exits on os.exit() and on EOF", function()
    local out = repl("print('before')\nos.exit()\nprint('after')\n")
    assert.are.equal("before\n", out)
    assert.are.equal("", repl(""))
  end)
end)

describe("lunet demo", function()
  it("trains a tiny convnet whose loss falls", function()
    local out, err, code = H.lunet("demo")
    assert.are.equal(0, code, err)
    local first_line = out:match("^[^\n]*")
    assert.matches("Fashion%-MNIST", first_line)
    local losses = {}
    for l in out:gmatch("loss (%d+%.%d+)") do losses[#losses + 1] = tonumber(l) end
    assert.are.equal(10, #losses)
    assert.is_true(losses[#losses] < losses[1] * 0.7,
                   ("loss %g -> %g"):format(losses[1], losses[#losses]))
    local acc = tonumber(out:match("final accuracy: (%d+%.%d)%%"))
    assert.is_truthy(acc)
    assert.is_true(acc > 80, "accuracy " .. tostring(acc))
  end)
end)
