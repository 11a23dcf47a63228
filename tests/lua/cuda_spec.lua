-- lunet.cuda: the allocator statistics, synchronize, empty_cache and the cuDNN flags,
-- which work (as zeros and no-ops) whether or not this build or machine has CUDA.
-- The CUDA kernels themselves are checked on the GPU machine (tests/gpu/*.lua and the
-- C tests test_cuda*).
local lunet = require "lunet"

describe("lunet.cuda", function()
  it("reports the allocator's counters, all zero before any CUDA tensor", function()
    local s = lunet.cuda.memory_stats()
    for _, k in ipairs { "allocated", "cached", "peak_allocated", "n_cuda_malloc", "n_cuda_free", "n_reused" } do
      assert.are.equal("integer", math.type(s[k]), k)
      assert.are.equal(0, s[k], k)
    end
  end)

  it("synchronizes and empties the cache without a CUDA state", function()
    assert.has_no.errors(lunet.cuda.synchronize)
    assert.has_no.errors(lunet.cuda.empty_cache)
  end)

  it("reads and sets the cuDNN algorithm flags", function()
    assert.is_false(lunet.cuda.cudnn_benchmark())
    assert.is_false(lunet.cuda.cudnn_deterministic())
    assert.is_true(lunet.cuda.cudnn_benchmark(true))
    assert.is_true(lunet.cuda.cudnn_deterministic(true))
    assert.is_true(lunet.cuda.cudnn_benchmark())
    assert.is_false(lunet.cuda.cudnn_benchmark(false))
    assert.is_false(lunet.cuda.cudnn_deterministic(false))
    local ok, err = pcall(lunet.cuda.cudnn_benchmark, "yes")
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("expected a boolean", 1, true))
  end)
end)
