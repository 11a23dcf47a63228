--- Neural-network building blocks. For now the stateless ops (`lunet.nn.functional`);
-- the module classes (Conv2d, BatchNorm2d, Sequential...) build on them.
-- @module lunet.nn
return {
  functional = require "lunet.nn.functional",
}
