-- ResNet50-Shared++ (the paper's ILSVRC2012 row): ResNet-50 whose groups share the 3x3
-- and the last 1x1 convolution of blocks 2..n (zoo name ResNet50_Shared).
--   lunet train recipes/ilsvrc_resnet50_shared_pp.lua --dataset_path=/data/ilsvrc2012
return {
  name = "ResNet50-Shared++",
  model = "ResNet50_Shared",
  dataset = "ilsvrc",
  batch_size = 256, lr = 0.1, momentum = 0.9, weight_decay = 1e-4, lambdaR = 10,
  epochs = 150, schedule = "multistep", milestones = { 60, 100, 140 }, gamma = 0.1,
}
