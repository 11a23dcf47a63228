-- MobileNetV2-Shared (the paper's ILSVRC2012 row): MobileNetV2 whose stages 3-6 share
-- one expansion 1x1 convolution across blocks 2..n (zoo name MobileNetV2_Shared),
-- trained as method.md section 6 says for the ILSVRC MobileNetV2s.
--   lunet train recipes/ilsvrc_mobilenetv2_shared.lua --dataset_path=/data/ilsvrc2012
return {
  name = "MobileNetV2-Shared",
  model = "MobileNetV2_Shared",
  dataset = "ilsvrc",
  batch_size = 256, lr = 0.1, momentum = 0.9, weight_decay = 1e-5, lambdaR = 10,
  epochs = 300, schedule = "multistep", milestones = { 150, 225, 285 }, gamma = { 0.1, 0.1, 0.5 },
}
