--- `lunet demo`: a tiny convnet trained from scratch on a synthetic two-class image
-- problem generated in-process (horizontal vs vertical stripes with noise, 16x16),
-- using only the functional ops and plain SGD written in Lua. It prints the loss every
-- 10 steps and the accuracy on held-out images. The Fashion-MNIST demo replaces it
-- once the data pipeline exists.
-- @module lunet.demo
local lunet = require "lunet"
local F = lunet.nn.functional

local M = {}

local SIZE = 16

-- A batch of n stripe images (n, 1, SIZE, SIZE) and their 1-based labels (i64):
-- class 1 = horizontal stripes, class 2 = vertical; random period, phase and noise.
local function make_batch(n, noise)
  local images, labels = {}, {}
  for i = 1, n do
    local cls = math.random(1, 2)
    local period = math.random(3, 6)
    local phase = math.random(0, period - 1)
    local img = {}
    for r = 1, SIZE do
      local row = {}
      for c = 1, SIZE do
        local k = (cls == 1 and r or c) + phase
        row[c] = (k % period) * 2 < period and 1.0 or -1.0
      end
      img[r] = row
    end
    images[i] = { img }
    labels[i] = cls
  end
  local x = lunet.tensor(images) + lunet.randn(n, 1, SIZE, SIZE) * noise
  return x, lunet.tensor(labels, { dtype = "i64" })
end

-- He-initialised weight of the given shape, as a leaf that requires grad.
local function weight(shape, fan_in)
  return (lunet.randn(shape) * math.sqrt(2 / fan_in)):requires_grad(true)
end

local function new_net()
  local net = {
    w1 = weight({ 8, 1, 3, 3 }, 9),
    g1 = lunet.ones({ 8 }, { requires_grad = true }), b1 = lunet.zeros({ 8 }, { requires_grad = true }),
    m1 = lunet.zeros(8), v1 = lunet.ones(8),
    w2 = weight({ 16, 8, 3, 3 }, 72),
    g2 = lunet.ones({ 16 }, { requires_grad = true }), b2 = lunet.zeros({ 16 }, { requires_grad = true }),
    m2 = lunet.zeros(16), v2 = lunet.ones(16),
    fw = weight({ 2, 16 }, 16), fb = lunet.zeros({ 2 }, { requires_grad = true }),
  }
  net.params = { net.w1, net.g1, net.b1, net.w2, net.g2, net.b2, net.fw, net.fb }
  return net
end

-- x (N,1,16,16) -> logits (N,2)
local function forward(net, x, training)
  local bn = { training = training }
  local h = F.conv2d(x, net.w1, nil, { padding = 1 })
  h = F.relu(F.batch_norm2d(h, net.m1, net.v1, net.g1, net.b1, bn))
  h = F.max_pool2d(h, { kernel = 2 })                        -- (N,8,8,8)
  h = F.conv2d(h, net.w2, nil, { padding = 1 })
  h = F.relu(F.batch_norm2d(h, net.m2, net.v2, net.g2, net.b2, bn))
  h = F.global_avg_pool2d(h):reshape(x:size(1), 16)          -- (N,16)
  return F.linear(h, net.fw, net.fb)
end

--- Runs the demo; options (all optional): {steps = 100, batch = 32, lr = 0.2,
-- noise = 1.5, seed = 1, eval_size = 512, print = print}.
function M.run(opts)
  if type(opts) ~= "table" then opts = {} end
  local steps, batch, lr = opts.steps or 100, opts.batch or 32, opts.lr or 0.2
  local noise, out = opts.noise or 1.5, opts.print or print
  local seed = opts.seed or 1
  lunet.manual_seed(seed)
  math.randomseed(seed)
  out("lunet demo: a tiny convnet (2 x conv-bn-relu, pooling, linear) learns horizontal vs " ..
      "vertical stripes on synthetic 16x16 images; the Fashion-MNIST demo arrives with the " ..
      "data pipeline.")
  local t0 = os.clock()
  local net = new_net()
  for step = 1, steps do
    local x, y = make_batch(batch, noise)
    local loss = F.cross_entropy(forward(net, x, true), y)
    for _, p in ipairs(net.params) do p:zero_grad() end
    loss:backward()
    lunet.no_grad(function()
      for _, p in ipairs(net.params) do p:add_(p.grad, -lr) end
    end)
    if step % 10 == 0 then out(("step %4d/%d  loss %.4f"):format(step, steps, loss:item())) end
  end
  local n = opts.eval_size or 512
  local x, y = make_batch(n, noise)
  local correct = lunet.no_grad(function() return F.topk_correct(forward(net, x, false), y, 1) end)
  out(("final accuracy: %.1f%% (%d/%d held-out images), %.1f s CPU"):format(
    100 * correct / n, correct, n, os.clock() - t0))
  return 0
end

return M
