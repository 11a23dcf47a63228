-- ResNet34 baseline on ILSVRC2012 (no shared basis, so no regulariser).
--   lunet train recipes/ilsvrc_resnet34.lua --dataset_path=/data/ilsvrc2012
return {
  name = "ResNet34",
  model = "ResNet34",
  dataset = "ilsvrc",
  batch_size = 256, lr = 0.1, momentum = 0.9, weight_decay = 1e-4, lambdaR = 0,
  epochs = 150, schedule = "multistep", milestones = { 60, 100, 140 }, gamma = 0.1,
}
