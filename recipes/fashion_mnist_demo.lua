-- The embedded default (`lunet demo`, `make demo`): ResNet20_DoubleShared S16U1 on
-- Fashion-MNIST with a stride-2 stem (feature maps 14x14, 7x7, 4x4), 3 epochs with a
-- linear warm-up then cosine to zero. lua/lunet/demo.lua holds the same table.
--   lunet train recipes/fashion_mnist_demo.lua
return {
  name = "FashionMNIST-ResNet20-S16U1 (demo)",
  model = "ResNet20_DoubleShared", shared_rank = 16, unique_rank = 1, stem_stride = 2,
  dataset = "fashion-mnist",
  batch_size = 128, lr = 0.1, momentum = 0.9, weight_decay = 5e-4, lambdaR = 10,
  epochs = 3, schedule = "cosine", warmup_epochs = 0.5, warmup_start_factor = 0.1,
  out = "runs/demo",
}
