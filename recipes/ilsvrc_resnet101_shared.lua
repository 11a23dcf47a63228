-- ResNet101-Shared (the paper's ILSVRC2012 row): ResNet-101 whose groups share the 3x3
-- convolution of blocks 2..n (zoo name ResNet101_SharedSingle).
--   lunet train recipes/ilsvrc_resnet101_shared.lua --dataset_path=/data/ilsvrc2012
return {
  name = "ResNet101-Shared",
  model = "ResNet101_SharedSingle",
  dataset = "ilsvrc",
  batch_size = 256, lr = 0.1, momentum = 0.9, weight_decay = 1e-4, lambdaR = 10,
  epochs = 150, schedule = "multistep", milestones = { 60, 100, 140 }, gamma = 0.1,
}
