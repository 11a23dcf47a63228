-- ResNet34-S48U1 (the paper's ILSVRC2012 row): ResNet-34 whose groups share two 3x3
-- filter bases (S = 48 shared, U = 1 unique basis filters per block, doubled per group),
-- trained as method.md section 6 says for the ILSVRC ResNets.
--   lunet train recipes/ilsvrc_resnet34_s48u1.lua --dataset_path=/data/ilsvrc2012
return {
  name = "ResNet34-S48U1",
  model = "ResNet34_DoubleShared", shared_rank = 48, unique_rank = 1,
  dataset = "ilsvrc",
  batch_size = 256, lr = 0.1, momentum = 0.9, weight_decay = 1e-4, lambdaR = 10,
  epochs = 150, schedule = "multistep", milestones = { 60, 100, 140 }, gamma = 0.1,
}
