--- lunet.optim: optimisers and learning-rate schedules.
--
--     local opt = lunet.optim.SGD(net:parameters(), {lr = 0.1, momentum = 0.9,
--                                                    weight_decay = 1e-4})
--     local lr_at = lunet.optim.schedules.multistep{lr = 0.1, milestones = {60, 100, 140}}
--     opt.lr = lr_at(epoch, i / iterations)
--
-- See sgd.lua (PyTorch's SGD rule, state_dict) and schedules.lua (pure functions of
-- the epoch, counted from 1).
-- @module lunet.optim
local sgd = require "lunet.optim.sgd"

return {
  SGD = sgd,
  schedules = require "lunet.optim.schedules",
}
