-- ResNet20 baseline on Fashion-MNIST at full resolution (no shared basis, so no
-- regulariser), trained as fashion_mnist_resnet20_s16u1.lua.
--   lunet train recipes/fashion_mnist_resnet20.lua
return {
  name = "FashionMNIST-ResNet20",
  model = "ResNet20",
  dataset = "fashion-mnist",
  batch_size = 128, lr = 0.1, momentum = 0.9, weight_decay = 5e-4, lambdaR = 0,
  epochs = 30, schedule = "cosine", warmup_epochs = 1, warmup_start_factor = 0.1,
}
