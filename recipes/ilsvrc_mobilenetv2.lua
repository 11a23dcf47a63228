-- MobileNetV2 baseline on ILSVRC2012 (no shared basis, so no regulariser).
--   lunet train recipes/ilsvrc_mobilenetv2.lua --dataset_path=/data/ilsvrc2012
return {
  name = "MobileNetV2",
  model = "MobileNetV2",
  dataset = "ilsvrc",
  batch_size = 256, lr = 0.1, momentum = 0.9, weight_decay = 1e-5, lambdaR = 0,
  epochs = 300, schedule = "multistep", milestones = { 150, 225, 285 }, gamma = { 0.1, 0.1, 0.5 },
}
