-- ResNet50-Shared (the paper's ILSVRC2012 row): ResNet-50 whose groups share the 3x3
-- convolution of blocks 2..n (zoo name ResNet50_SharedSingle). A later release of the
-- authors' command uses weight_decay = 4e-5 for this model (method.md section 6).
--   lunet train recipes/ilsvrc_resnet50_shared.lua --dataset_path=/data/ilsvrc2012
return {
  name = "ResNet50-Shared",
  model = "ResNet50_SharedSingle",
  dataset = "ilsvrc",
  batch_size = 256, lr = 0.1, momentum = 0.9, weight_decay = 1e-4, lambdaR = 10,
  epochs = 150, schedule = "multistep", milestones = { 60, 100, 140 }, gamma = 0.1,
}
