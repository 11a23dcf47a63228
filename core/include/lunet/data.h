/* Datasets and the threaded batch loader (design.md section 7).
 *
 * A dataset is a numbered set of samples, each an f32 image of one fixed shape (C,H,W)
 * and a 0-based class. Readers: image folders in the ILSVRC layout (with a cached file
 * index), CIFAR-10/100 binary batches, IDX files (MNIST, Fashion-MNIST; plain or
 * gzip) and a synthetic dataset of any shape. Each sample is decoded and transformed
 * on demand (image.h), its random transform driven by a seed the caller gives.
 *
 * A loader turns a dataset into batches: images (B,C,H,W) f32, labels (B) i64 (0-based
 * classes), prepared by worker threads (pthreads) into a bounded queue of batches in
 * host memory while the caller computes. The sample order is a permutation drawn from
 * (seed, epoch) alone, and each sample's transform randomness from (seed, epoch,
 * sample index), so batches are identical whatever the worker count. A sample that
 * cannot be read (corrupt, truncated, not an image, unreadable) is skipped: named once
 * in the loader's message log, counted, and replaced by another sample picked from
 * (seed, epoch, position, attempt), so every batch keeps its size.
 *
 * Threads: a dataset and a loader belong to the thread that owns their ln_ctx (the
 * worker threads never touch a ctx). Reference counts are not atomic. */
#ifndef LUNET_DATA_H
#define LUNET_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "context.h"
#include "image.h"
#include "tensor.h"

typedef struct ln_dataset ln_dataset;
typedef struct ln_loader ln_loader;

/* What a dataset does to each image: TRAIN = random augmentation, EVAL = fixed. */
typedef enum ln_data_mode { LN_DATA_EVAL = 0, LN_DATA_TRAIN = 1 } ln_data_mode;

/* ---------------------------------------------------------------- datasets */

/* root/<split>/<class>/...: classes are the sub-folders of root/<split> sorted by
 * name (byte order); the files of a class are every regular file below it whose name
 * ends in an image extension (.jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp, any
 * case), sorted by folder then name as torchvision's ImageFolder does. Others are
 * ignored and counted in a message. An empty class keeps its index (a message names
 * it). train: random-resized-crop to `crop` + horizontal flip; eval: resize the
 * shorter side to `resize`, center crop `crop`; both scaled to [0,1] and normalised
 * (image.h: ln_image_train, ln_image_eval). Samples are (3, size, size). */
typedef struct ln_folder_opts {
    const char *root;
    const char *split;       /* "train", "val" (any sub-folder name) */
    ln_data_mode mode;
    ln_image_cfg image;      /* crop size, resize, scale/ratio ranges, mean/std... */
    const char *cache_dir;   /* folder of the index cache; NULL: ln_data_default_cache_dir */
} ln_folder_opts;

void ln_folder_opts_default(ln_folder_opts *o);

/* Scans (or loads from the cache) the file index of root/split. A missing root or
 * split folder, a split folder without class folders, one without any image file, or
 * a cache_dir inside the dataset is an error. */
ln_status ln_dataset_image_folder(ln_ctx *ctx, const ln_folder_opts *o, ln_dataset **out);

/* Whether the last open of this image-folder dataset read its index from the cache;
 * the cache file's path into buf ("" for other datasets, or when there is none). */
bool ln_dataset_index_cached(const ln_dataset *ds, char *buf, size_t n);

/* Transform of the small datasets held in memory (CIFAR, IDX): train = zero-pad by
 * `padding`, random crop back to the original size, horizontal flip with probability
 * flip_p; eval = neither; then (both) scale to [0,1] and normalise per channel
 * (image.h: ln_image_crop_flip_planar). */
typedef struct ln_array_opts {
    ln_data_mode mode;
    int padding;             /* train: 4 for CIFAR */
    double flip_p;           /* train: 0.5 */
    float mean[3], std[3];   /* channel c uses mean[c], std[c]; IDX images use [0] */
} ln_array_opts;

/* CIFAR defaults: train (padding 4, flip 0.5) or eval, normalised with method.md's
 * means and deviations (ImageNet's for CIFAR-10, CIFAR-100's own for version 100). */
void ln_cifar_opts_default(int version, bool train, ln_array_opts *o);
/* IDX defaults: eval, scaled to [0,1] (mean 0, std 1); padding 0, flip 0. */
void ln_idx_opts_default(ln_array_opts *o);

/* CIFAR-10 (version 10) or CIFAR-100 (version 100) binary batches: `root` holds
 * data_batch_1..5.bin + test_batch.bin (CIFAR-10) or train.bin + test.bin
 * (CIFAR-100), or is the parent of cifar-10-batches-bin/ or cifar-100-binary/.
 * Records are 1 label byte (CIFAR-100: coarse then fine; the fine label is used) and
 * 3072 pixel bytes (R, G, B planes of 32x32). Samples are (3,32,32). Class names
 * come from batches.meta.txt / fine_label_names.txt when present. opts NULL:
 * ln_cifar_opts_default(version, train). */
ln_status ln_dataset_cifar(ln_ctx *ctx, const char *root, int version, bool train,
                           const ln_array_opts *opts, ln_dataset **out);

/* An IDX image file (u8, N x H x W) and an IDX label file (u8, N), each plain or
 * gzip-compressed. Samples are (1,H,W); classes = max label + 1. opts NULL:
 * ln_idx_opts_default. */
ln_status ln_dataset_idx(ln_ctx *ctx, const char *images, const char *labels,
                         const ln_array_opts *opts, ln_dataset **out);

/* `size` samples of shape (ndim <= LN_MAX_DIMS - 1 dimensions), labels in
 * [0, classes): sample i is a fixed function of (seed, i): its label, then values
 * uniform in [0, 0.5) plus 0.5 on a fixed pattern of its class (learnable). */
ln_status ln_dataset_synthetic(ln_ctx *ctx, int ndim, const int64_t *shape, int classes,
                               int64_t size, uint64_t seed, ln_dataset **out);

void ln_dataset_retain(ln_dataset *ds);
void ln_dataset_release(ln_dataset *ds);

const char *ln_dataset_kind(const ln_dataset *ds); /* "image_folder", "cifar", ... */
int64_t ln_dataset_size(const ln_dataset *ds);
int ln_dataset_classes(const ln_dataset *ds);
/* The sample shape into shape; returns its number of dimensions. */
int ln_dataset_sample_shape(const ln_dataset *ds, int64_t shape[LN_MAX_DIMS]);
/* Name of class c (0-based), or NULL when the dataset has no names. */
const char *ln_dataset_class_name(const ln_dataset *ds, int c);
/* The path of sample `index` (or a description) into buf, for messages. */
void ln_dataset_describe(const ln_dataset *ds, int64_t index, char *buf, size_t n);
/* Sample `index` in the calling thread, its random transform drawn from the stream
 * ln_image_rng_seed(seed, epoch, index): what a loader with that seed gives for it in
 * that epoch. A bad sample is an error here (the loader skips it instead). */
ln_status ln_dataset_get(ln_ctx *ctx, const ln_dataset *ds, int64_t index, uint64_t seed,
                         int64_t epoch, ln_tensor **image, int64_t *label, bool *converted);
/* Moves the oldest message of the dataset (scan notes, cache problems) into buf;
 * false when there is none. */
bool ln_dataset_pop_message(ln_dataset *ds, char *buf, size_t n);

/* Where index caches live unless told otherwise: $LUNET_CACHE_DIR, else
 * $XDG_CACHE_HOME/lunet, else $HOME/.cache/lunet. */
ln_status ln_data_default_cache_dir(ln_ctx *ctx, char *buf, size_t n);

/* ---------------------------------------------------------------- loader */

typedef struct ln_loader_opts {
    int64_t batch_size;  /* > 0 */
    bool shuffle;        /* permute the samples each epoch (else dataset order) */
    bool drop_last;      /* drop the last batch when it is not full */
    int workers;         /* worker threads; 0 = load in the caller's thread, in next() */
    int prefetch;        /* batches prepared ahead (>= 1); 0: 2 + workers / 4 */
    uint64_t seed;
    ln_device device;    /* where next() puts images and labels: the CPU, or a CUDA device:
                            then batches are loaded into pinned memory and each one's copy
                            runs while the caller computes on the previous one */
} ln_loader_opts;

/* batch_size 32, shuffle, no drop_last, 2 workers, prefetch 0 (automatic), seed 0, CPU. */
void ln_loader_opts_default(ln_loader_opts *o);

/* The loader retains ds. Worker threads start here and wait for an epoch. */
ln_status ln_loader_create(ln_ctx *ctx, ln_dataset *ds, const ln_loader_opts *o,
                           ln_loader **out);
/* Stops the workers (waiting for the sample each one is on), joins them and frees
 * everything. NULL is fine. */
void ln_loader_destroy(ln_loader *ld);

/* Starts epoch `epoch` (any integer: it selects the order and the augmentation). An
 * unfinished epoch is abandoned first. */
ln_status ln_loader_start_epoch(ln_ctx *ctx, ln_loader *ld, int64_t epoch);
/* The next batch of the epoch, waiting for it if needed: images (B,C,H,W) f32,
 * labels (B) i64 0-based, both on opts.device (the copy already ordered before any
 * later work of the context), and when indices is not NULL the 0-based dataset indices
 * of the samples (a replaced sample shows its replacement). The caller owns the
 * tensors. At the end of the epoch all three are NULL and LN_OK is returned. Fails
 * when no epoch was started, or when a sample failed beyond skipping (out of memory,
 * too many bad samples in a row). */
ln_status ln_loader_next(ln_ctx *ctx, ln_loader *ld, ln_tensor **images,
                         ln_tensor **labels, ln_tensor **indices);

/* Batches per epoch. */
int64_t ln_loader_batches(const ln_loader *ld);

typedef struct ln_loader_stats {
    int64_t epoch;
    bool finished;        /* every batch of the epoch was handed out */
    int64_t batches;      /* handed out so far */
    int64_t images;       /* samples handed out so far */
    double seconds;       /* from start_epoch to the last batch handed out */
    double images_per_s;
    double wait_seconds;  /* time the caller spent waiting in next() */
    int64_t skipped;      /* samples of this epoch found bad, each replaced by another */
    int64_t converted;    /* samples handed out that needed a conversion (grayscale,
                             CMYK...; a replacement counts too) */
    int64_t bad_files;    /* distinct bad samples met since the loader was created */
} ln_loader_stats;

/* Statistics of the current (or last) epoch. */
void ln_loader_get_stats(ln_loader *ld, ln_loader_stats *st);
/* Moves the oldest loader message (a skipped file named once, with its reason) into
 * buf; false when there is none. */
bool ln_loader_pop_message(ln_loader *ld, char *buf, size_t n);

#endif
