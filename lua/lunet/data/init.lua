--- lunet.data: datasets and the threaded batch loader (design.md section 7).
--
--     local data = require "lunet.data"     -- also lunet.data
--     local train = data.image_folder { root = "/data/ilsvrc", split = "train" }
--     local loader = data.loader { dataset = train, batch_size = 256, workers = 8, seed = 1 }
--     for epoch = 1, 90 do
--       for images, labels in loader:epoch(epoch) do    -- (B,3,224,224) f32, (B) i64
--         ...
--       end
--       print(loader:stats().images_per_s)
--     end
--
-- Batches are prepared by C worker threads (which never touch Lua) while the caller
-- computes. The order of an epoch depends only on (seed, epoch), and each sample's
-- random transform only on (seed, epoch, sample index): the batches are the same
-- whatever the number of workers.
--
-- Labels are 1-BASED, like every position in lunet's Lua API: class c of the dataset
-- (classes sorted by folder name for image folders, the file's label byte for CIFAR
-- and IDX) arrives as c + 1, ready for nn.functional.cross_entropy; a loader's third
-- value, the dataset indices of the batch's samples, is 1-based too.
--
-- Bad input never stops a run: a file that cannot be decoded (corrupt, truncated,
-- empty, not an image, unreadable) is skipped, named once through the loader's `log`
-- function, counted (stats().skipped) and replaced by another sample picked from
-- (seed, epoch, position), so batches keep their size. Grayscale, CMYK and PNG files
-- are converted to RGB and counted (stats().converted).
-- @module lunet.data
local core = require "lunet.core"

local data = {}

local FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
local FASHION_MNIST_CLASSES = { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot" }

-- Raises an error at the user's call site for an unknown key of opts.
local function check_keys(fn, opts, allowed)
  if type(opts) ~= "table" then
    error(("lunet.data.%s: expected a table of options, got %s"):format(fn, type(opts)), 3)
  end
  local set = {}
  for _, k in ipairs(allowed) do set[k] = true end
  for k in pairs(opts) do
    if not set[k] then
      table.sort(allowed)
      error(("lunet.data.%s: unknown option '%s' (expected %s)"):format(
        fn, tostring(k), table.concat(allowed, ", ")), 3)
    end
  end
end

local function default_log(msg) io.stderr:write("lunet.data: ", msg, "\n") end

local function transform_mode(fn, t, default)
  t = t or default
  if t ~= "train" and t ~= "eval" then
    error(("lunet.data.%s: transform must be \"train\" or \"eval\", got %s"):format(fn, tostring(t)), 3)
  end
  return t
end

-- Copies the listed keys of src into a new table (nil values are left out).
local function pick(src, keys, into)
  into = into or {}
  for _, k in ipairs(keys) do into[k] = src[k] end
  return into
end

--------------------------------------------------------------------------- Dataset
--- A dataset: `#ds` samples of shape `ds.sample_shape` in `ds.classes` classes.
-- Fields: kind, classes, class_names (1-based list, or nil), sample_shape.
-- @type Dataset
local Dataset = {}
Dataset.__index = Dataset
data.Dataset = Dataset

local function new_dataset(handle, opts, class_names)
  local self = setmetatable({
    handle = handle,
    kind = handle:kind(),
    classes = handle:classes(),
    class_names = class_names or handle:class_names(),
    sample_shape = handle:sample_shape(),
  }, Dataset)
  local log = opts.log or default_log
  for _, msg in ipairs(handle:messages()) do log(msg) end
  return self
end

function Dataset:__len() return self.handle:size() end

function Dataset:__tostring()
  return ("Dataset(%s, %d samples of {%s}, %d classes)"):format(
    self.kind, #self, table.concat(self.sample_shape, ", "), self.classes)
end

--- Sample i (1-based): its image tensor, its 1-based label and whether it was
-- converted. opts: {seed = 0, epoch = 0} select the random transform, as a loader
-- with that seed does for that epoch.
function Dataset:get(i, opts)
  opts = opts or {}
  check_keys("Dataset:get", opts, { "seed", "epoch" })
  return self.handle:get(i, opts.seed or 0, opts.epoch or 0)
end

--- The file of sample i (1-based), or a description of it.
function Dataset:describe(i) return self.handle:describe(i) end

--- Image folders: the path of the index cache and whether this open used it.
function Dataset:index_cache() return self.handle:index_cache() end

--- Image folders in the ILSVRC layout: root/<split>/<class>/<images>, classes sorted
-- by name. opts: root (required), split = "train", transform = "train" for the train
-- split else "eval" (train: random-resized-crop + flip; eval: resize + center crop),
-- size = 224, resize = 256, scale = {0.08, 1}, ratio = {3/4, 4/3}, flip = 0.5,
-- mean/std = ImageNet's (a list of 3 or one number), dct_min (image.h),
-- cache_dir (where the file index is cached; default $LUNET_CACHE_DIR, else
-- $XDG_CACHE_HOME/lunet, else ~/.cache/lunet; never inside the dataset),
-- log = function(msg) (default: print to stderr).
-- A missing split folder is an error; empty class folders are logged.
function data.image_folder(opts)
  check_keys("image_folder", opts, { "root", "split", "transform", "size", "resize", "scale",
                                     "ratio", "flip", "mean", "std", "dct_min", "cache_dir", "log" })
  local split = opts.split or "train"
  local c = pick(opts, { "root", "size", "resize", "scale", "ratio", "flip", "mean", "std",
                         "dct_min", "cache_dir" })
  c.split = split
  c.mode = transform_mode("image_folder", opts.transform, split == "train" and "train" or "eval")
  return new_dataset(core.data_image_folder(c), opts)
end

--- CIFAR-10/100 binary batches. opts: root (the folder with the .bin files or its
-- parent), version = 10 | 100, train = true, transform = "train" when train else
-- "eval" (train: random crop with `padding` = 4 of zeros, flip with probability
-- `flip` = 0.5), mean/std (method.md: ImageNet's for CIFAR-10, CIFAR-100's own).
function data.cifar(opts)
  check_keys("cifar", opts, { "root", "version", "train", "transform", "padding", "flip",
                              "mean", "std", "log" })
  local train = opts.train ~= false
  local c = pick(opts, { "root", "version", "padding", "flip", "mean", "std" })
  c.train = train
  c.mode = transform_mode("cifar", opts.transform, train and "train" or "eval")
  return new_dataset(core.data_cifar(c), opts)
end

--- IDX files (MNIST-style; plain or .gz). opts: images, labels (paths), transform =
-- "eval" ("train": random crop with `padding` = 2 and flip with probability `flip`
-- = 0, i.e. no flip unless asked), mean = 0, std = 1 (values in [0,1]),
-- class_names (an optional list, class 1 first).
function data.idx(opts)
  check_keys("idx", opts, { "images", "labels", "transform", "padding", "flip", "mean", "std",
                            "log", "class_names" })
  local c = pick(opts, { "images", "labels", "padding", "flip", "mean", "std" })
  c.mode = transform_mode("idx", opts.transform, "eval")
  if c.mode == "train" and c.padding == nil then c.padding = 2 end
  return new_dataset(core.data_idx(c), opts, opts.class_names)
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

--- Fashion-MNIST (IDX). opts: root = /usr/share/datasets/fashion-mnist (Debian's
-- dataset-fashion-mnist), train = true, transform = "eval" ("train": random crop with
-- padding 2 + flip 0.5), mean = 0.2860, std = 0.3530 (the training set's).
-- Samples (1,28,28); class_names are the ten article names.
function data.fashion_mnist(opts)
  opts = opts or {}
  check_keys("fashion_mnist", opts, { "root", "train", "transform", "padding", "flip", "mean",
                                      "std", "log" })
  local root = opts.root or FASHION_MNIST_DIR
  local prefix = opts.train == false and "t10k" or "train"
  local function file(kind)
    local base = ("%s/%s-%s"):format(root, prefix, kind)
    if exists(base .. ".gz") or not exists(base) then return base .. ".gz" end
    return base
  end
  local transform = transform_mode("fashion_mnist", opts.transform, "eval")
  return data.idx {
    images = file("images-idx3-ubyte"), labels = file("labels-idx1-ubyte"),
    transform = transform,
    padding = opts.padding, flip = opts.flip or (transform == "train" and 0.5 or nil),
    mean = opts.mean or 0.2860, std = opts.std or 0.3530,
    log = opts.log, class_names = FASHION_MNIST_CLASSES,
  }
end

--- A synthetic dataset: `size` samples of `shape` in `classes` classes, each a fixed
-- function of (seed, index) (values in [0,1), learnable: a class pattern plus noise).
-- opts: shape = {3, 32, 32}, classes = 10, size = 1000, seed = 0.
function data.synthetic(opts)
  opts = opts or {}
  check_keys("synthetic", opts, { "shape", "classes", "size", "seed", "log" })
  return new_dataset(core.data_synthetic(pick(opts, { "shape", "classes", "size", "seed" })), opts)
end

--------------------------------------------------------------------------- Loader
--- Batches of a dataset prepared by worker threads.
-- @type Loader
local Loader = {}
Loader.__index = Loader
data.Loader = Loader

--- opts: dataset (required), batch_size = 32, shuffle = true, workers = 2 (0: load in
-- the calling thread), drop_last = false, seed = 0, prefetch (batches prepared ahead;
-- default 2 + workers / 4), log = function(msg) for skipped files (default: stderr),
-- device = "cpu" (or "cuda:N": batches are loaded into pinned memory and arrive on
-- the GPU, each copied while the previous one is computed on).
function data.loader(opts)
  check_keys("loader", opts, { "dataset", "batch_size", "shuffle", "workers", "drop_last", "seed",
                               "prefetch", "device", "log" })
  local ds = opts.dataset
  if getmetatable(ds) ~= Dataset then
    error("lunet.data.loader: option 'dataset' must be a lunet.data dataset, got " .. type(ds), 2)
  end
  local handle = core.data_loader(ds.handle, pick(opts, { "batch_size", "shuffle", "workers",
                                                          "drop_last", "seed", "prefetch", "device" }))
  return setmetatable({ handle = handle, dataset = ds, log = opts.log or default_log,
                        batch_size = opts.batch_size or 32, last_epoch = 0 }, Loader)
end

--- Number of batches per epoch.
function Loader:__len() return self.handle:batches() end

function Loader:flush_log()
  for _, msg in ipairs(self.handle:messages()) do self.log(msg) end
end

--- Starts epoch e (default: the one after the last started, from 1) and returns an
-- iterator of (images, labels, indices): `for x, y in loader:epoch(e) do ... end`.
-- Starting another epoch abandons an unfinished one.
function Loader:epoch(e)
  e = e or self.last_epoch + 1
  if math.type(e) ~= "integer" then
    error("Loader:epoch: the epoch must be an integer, got " .. tostring(e), 2)
  end
  self.last_epoch = e
  self.handle:start_epoch(e)
  local handle = self.handle
  return function()
    local images, labels, indices = handle:next()
    self:flush_log()
    return images, labels, indices
  end
end

--- `for x, y in loader() do` is `loader:epoch()`.
Loader.__call = Loader.epoch

--- The next batch of the current epoch (images, labels, indices), nil at its end.
function Loader:next()
  local images, labels, indices = self.handle:next()
  self:flush_log()
  return images, labels, indices
end

--- Statistics of the current or last epoch: {epoch, finished, batches, images,
-- seconds, images_per_s, wait_seconds (time the caller waited for data), skipped,
-- converted, bad_files (distinct bad samples so far)}.
function Loader:stats() return self.handle:stats() end

--- Stops the worker threads now (also done by the garbage collector and `<close>`).
function Loader:close() self.handle:close() end
Loader.__close = Loader.close
-- The handle's own __gc stops the threads when the loader is collected.

function Loader:__tostring()
  return ("Loader(%d batches of %d from %s%s)"):format(
    self.handle:is_open() and #self or 0, self.batch_size, tostring(self.dataset),
    self.handle:is_open() and "" or ", closed")
end

return data
