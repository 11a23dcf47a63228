-- ResNet56 baseline on CIFAR-100 (no shared basis, so no regulariser).
--   lunet train recipes/cifar100_resnet56.lua --dataset_path=/data/cifar-100
return {
  name = "CIFAR100-ResNet56",
  model = "ResNet56",
  dataset = "cifar100",
  batch_size = 256, lr = 0.1, momentum = 0.9, weight_decay = 5e-4, lambdaR = 0,
  epochs = 300, schedule = "multistep", milestones = { 150, 225 }, gamma = 0.1,
}
