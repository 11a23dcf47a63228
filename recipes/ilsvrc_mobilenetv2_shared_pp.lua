-- MobileNetV2-Shared++ (the paper's ILSVRC2012 row): MobileNetV2 sharing the expansion
-- and the projection 1x1 convolutions per stage, with ECA attention (zoo name
-- MobileNetV2_SharedDouble).
--   lunet train recipes/ilsvrc_mobilenetv2_shared_pp.lua --dataset_path=/data/ilsvrc2012
return {
  name = "MobileNetV2-Shared++",
  model = "MobileNetV2_SharedDouble",
  dataset = "ilsvrc",
  batch_size = 256, lr = 0.1, momentum = 0.9, weight_decay = 1e-5, lambdaR = 10,
  epochs = 300, schedule = "multistep", milestones = { 150, 225, 285 }, gamma = { 0.1, 0.1, 0.5 },
}
