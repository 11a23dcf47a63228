-- ResNet56 with deeply shared bases (S16U1) on CIFAR-10: per group two shared 3x3
-- bases of 16*2^(g-1) filters and 1*2^(g-1) unique ones per block (method.md sections
-- 3 and 6).
--   lunet train recipes/cifar10_resnet56_s16u1.lua --dataset_path=/data/cifar-10
return {
  name = "CIFAR10-ResNet56-S16U1",
  model = "ResNet56_DoubleShared", shared_rank = 16, unique_rank = 1,
  dataset = "cifar10",
  batch_size = 256, lr = 0.1, momentum = 0.9, weight_decay = 5e-4, lambdaR = 10,
  epochs = 300, schedule = "multistep", milestones = { 150, 225 }, gamma = 0.1,
}
