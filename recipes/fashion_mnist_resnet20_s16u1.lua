-- ResNet20_DoubleShared S16U1 on Fashion-MNIST at full resolution (the CIFAR layout
-- with one input channel): a longer run than the demo, cosine schedule with warm-up.
--   lunet train recipes/fashion_mnist_resnet20_s16u1.lua
return {
  name = "FashionMNIST-ResNet20-S16U1",
  model = "ResNet20_DoubleShared", shared_rank = 16, unique_rank = 1,
  dataset = "fashion-mnist",
  batch_size = 128, lr = 0.1, momentum = 0.9, weight_decay = 5e-4, lambdaR = 10,
  epochs = 30, schedule = "cosine", warmup_epochs = 1, warmup_start_factor = 0.1,
}
