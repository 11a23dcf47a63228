/* Pinned host memory and the loader on a CUDA device: pinned tensors copy to the
 * device and back unchanged, freed pinned blocks are reused; a loader with
 * opts.device = cuda:0 hands out device batches equal, bit for bit, to those of the
 * same loader on the CPU, while the test queues device work between batches and
 * keeps every batch alive to the end (a copy ahead must not overwrite a batch still
 * in use); an epoch abandoned half way and started again gives the same batches;
 * after the loader is gone no pinned memory is in use and empty_cache releases the
 * rest. Without a device: the errors a user gets, then SKIPPED. */
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

#define MAX_BATCHES 16

/* The host copy of a tensor's values as f64 (any device, f32 or i64). */
static double *host_values(ln_ctx *ctx, const ln_tensor *t, int64_t *n) {
    ln_tensor *h = NULL, *d = NULL;
    *n = ln_tensor_numel(t);
    double *out = malloc((size_t)(*n > 0 ? *n : 1) * sizeof *out);
    if (!CHECK_OK(ctx, ln_tensor_to_device(ctx, t, ln_cpu(), &h)) ||
        !CHECK_OK(ctx, ln_tensor_to_dtype(ctx, h, LN_F64, &d))) {
        ln_tensor_release(h);
        free(out);
        return NULL;
    }
    memcpy(out, ln_tensor_data(d), (size_t)*n * sizeof *out);
    ln_tensor_release(h);
    ln_tensor_release(d);
    return out;
}

static bool same_values(ln_ctx *ctx, const ln_tensor *a, const ln_tensor *b) {
    int64_t na, nb;
    double *va = host_values(ctx, a, &na), *vb = host_values(ctx, b, &nb);
    bool same = va && vb && na == nb && memcmp(va, vb, (size_t)na * sizeof *va) == 0;
    free(va);
    free(vb);
    return same;
}

static void without_device(ln_ctx *ctx) {
    ln_tensor *t = NULL;
    CHECK_FAILS(ctx, ln_tensor_empty_pinned(ctx, LN_F32, 0, 1, (int64_t[]){4}, &t), LN_ERR_DEVICE);
    CHECK(t == NULL, "no tensor on failure");
    ln_dataset *ds = NULL;
    CHECK_OK(ctx, ln_dataset_synthetic(ctx, 3, (int64_t[]){1, 4, 4}, 3, 10, 1, &ds));
    ln_loader_opts o;
    ln_loader_opts_default(&o);
    o.device = (ln_device){LN_CUDA, 0};
    ln_loader *ld = NULL;
    ln_status st = ln_loader_create(ctx, ds, &o, &ld);
    CHECK(st == LN_ERR_DEVICE && ld == NULL && strstr(ln_ctx_error(ctx), "loader: device cuda:0") != NULL,
          "the loader names the device it cannot use: %s", ln_ctx_error(ctx));
    ln_dataset_release(ds);
}

static void pinned_tensors(ln_ctx *ctx) {
    ln_cuda_mem_stats s0, s1, s2;
    ln_cuda_memory_stats(ctx, &s0);
    ln_tensor *h = NULL, *p = NULL, *d = NULL, *back = NULL;
    h = tu_randn(ctx, LN_F32, 2, (int64_t[]){300, 17});
    CHECK(!ln_tensor_is_pinned(h), "an ordinary tensor is not pinned");
    CHECK_OK(ctx, ln_tensor_pin(ctx, h, 0, &p));
    CHECK(p && ln_tensor_is_pinned(p) && ln_tensor_device(p).type == LN_CPU, "pin gives a pinned CPU tensor");
    ln_tensor *again = NULL;
    CHECK_OK(ctx, ln_tensor_pin(ctx, p, 0, &again));
    CHECK(again == p, "pinning a pinned tensor gives it back");
    ln_tensor_release(again);
    ln_cuda_memory_stats(ctx, &s1);
    CHECK(s1.pinned_in_use >= s0.pinned_in_use + 300 * 17 * 4, "memory_stats counts the pinned bytes");
    CHECK_OK(ctx, ln_tensor_to_device(ctx, p, (ln_device){LN_CUDA, 0}, &d));
    void *block = ln_tensor_data(p);
    ln_tensor_release(p); /* freed while its copy may still be queued */
    p = NULL;
    CHECK_OK(ctx, ln_tensor_to_device(ctx, d, ln_cpu(), &back));
    CHECK(same_values(ctx, back, h), "pinned -> device -> host keeps every value");
    ln_cuda_memory_stats(ctx, &s2);
    CHECK(s2.pinned_cached >= 300 * 17 * 4 && s2.pinned_in_use == s0.pinned_in_use,
          "a freed pinned block is cached (cached %zu, in use %zu)", s2.pinned_cached, s2.pinned_in_use);
    CHECK_OK(ctx, ln_cuda_synchronize(ctx));
    ln_tensor *q = NULL;
    CHECK_OK(ctx, ln_tensor_empty_pinned(ctx, LN_F32, 0, 2, (int64_t[]){300, 17}, &q));
    CHECK(q && ln_tensor_data(q) == block, "an idle cached block of the right size is reused");
    CHECK_FAILS(ctx, ln_tensor_pin(ctx, d, 0, &p), LN_ERR_DEVICE);
    ln_tensor_release(q);
    ln_tensor_release(h);
    ln_tensor_release(d);
    ln_tensor_release(back);
}

typedef struct epoch_batches {
    int n;
    ln_tensor *images[MAX_BATCHES], *labels[MAX_BATCHES], *indices[MAX_BATCHES];
} epoch_batches;

static void batches_free(epoch_batches *e) {
    for (int i = 0; i < e->n; i++) {
        ln_tensor_release(e->images[i]);
        ln_tensor_release(e->labels[i]);
        ln_tensor_release(e->indices[i]);
    }
    e->n = 0;
}

/* Every batch of epoch `epoch` (all kept); on the device, a matmul is queued after each
 * batch arrives, as a training step would. stop_after >= 0: abandon after that many. */
static bool take_epoch(ln_ctx *ctx, ln_loader *ld, int64_t epoch, int stop_after, ln_tensor *work,
                       epoch_batches *out) {
    out->n = 0;
    if (!CHECK_OK(ctx, ln_loader_start_epoch(ctx, ld, epoch))) return false;
    for (;;) {
        if (stop_after >= 0 && out->n == stop_after) return true;
        ln_tensor *im, *lb, *ix;
        if (!CHECK_OK(ctx, ln_loader_next(ctx, ld, &im, &lb, &ix))) return false;
        if (!im) return true;
        if (out->n == MAX_BATCHES) {
            CHECK(false, "more batches than the test expects");
            return false;
        }
        out->images[out->n] = im;
        out->labels[out->n] = lb;
        out->indices[out->n] = ix;
        out->n++;
        if (work) {
            ln_tensor *y = NULL;
            CHECK_OK(ctx, ln_matmul(ctx, work, work, &y));
            ln_tensor_release(y);
        }
    }
}

static void loader_on_device(ln_ctx *ctx, int workers) {
    ln_dataset *ds = NULL;
    CHECK_OK(ctx, ln_dataset_synthetic(ctx, 3, (int64_t[]){3, 9, 7}, 5, 37, 11, &ds));
    ln_loader_opts o;
    ln_loader_opts_default(&o);
    o.batch_size = 8;
    o.workers = workers;
    o.seed = 5;
    ln_loader *host = NULL, *dev = NULL;
    CHECK_OK(ctx, ln_loader_create(ctx, ds, &o, &host));
    o.device = (ln_device){LN_CUDA, 0};
    CHECK_OK(ctx, ln_loader_create(ctx, ds, &o, &dev));
    ln_tensor *w = tu_randn(ctx, LN_F32, 2, (int64_t[]){512, 512}), *work = NULL;
    CHECK_OK(ctx, ln_tensor_to_device(ctx, w, (ln_device){LN_CUDA, 0}, &work));
    ln_tensor_release(w);
    epoch_batches a, b;
    for (int round = 0; round < 2; round++) {
        if (round == 1) { /* abandon epoch 3 after two batches, then run it again */
            take_epoch(ctx, dev, 3, 2, work, &b);
            batches_free(&b);
        }
        take_epoch(ctx, host, 3, -1, NULL, &a);
        take_epoch(ctx, dev, 3, -1, work, &b);
        CHECK(a.n == 5 && b.n == a.n, "workers %d round %d: 5 batches on both (%d, %d)", workers, round, a.n, b.n);
        bool on_dev = true, same = true;
        for (int i = 0; i < a.n && i < b.n; i++) {
            on_dev = on_dev && ln_tensor_device(b.images[i]).type == LN_CUDA &&
                     ln_tensor_device(b.labels[i]).type == LN_CUDA &&
                     ln_tensor_device(b.indices[i]).type == LN_CPU;
            same = same && same_values(ctx, a.images[i], b.images[i]) && same_values(ctx, a.labels[i], b.labels[i]) &&
                   same_values(ctx, a.indices[i], b.indices[i]);
        }
        CHECK(on_dev, "workers %d: images and labels on cuda:0, indices on the CPU", workers);
        CHECK(same, "workers %d round %d: every device batch equals the CPU loader's", workers, round);
        batches_free(&a);
        batches_free(&b);
    }
    ln_tensor *im, *lb;
    CHECK_OK(ctx, ln_loader_start_epoch(ctx, dev, 4));
    CHECK_OK(ctx, ln_loader_next(ctx, dev, &im, &lb, NULL));
    ln_tensor_release(im);
    ln_tensor_release(lb);
    ln_loader_destroy(dev); /* with a batch staged on the device */
    ln_loader_destroy(host);
    ln_tensor_release(work);
    ln_dataset_release(ds);
}

int main(void) {
    ln_ctx *ctx = ln_ctx_create();
    ln_ctx_manual_seed(ctx, 3);
    if (!ln_cuda_available(ctx)) {
        without_device(ctx);
        ln_ctx_release(ctx);
        if (tu_counts.failed) return test_finish();
        return test_skip("no CUDA device");
    }
    pinned_tensors(ctx);
    loader_on_device(ctx, 0);
    loader_on_device(ctx, 2);
    CHECK_OK(ctx, ln_cuda_synchronize(ctx));
    ln_cuda_mem_stats s;
    ln_cuda_memory_stats(ctx, &s);
    CHECK(s.pinned_in_use == 0, "no pinned memory in use once the loaders are gone (%zu)", s.pinned_in_use);
    CHECK_OK(ctx, ln_cuda_empty_cache(ctx));
    ln_cuda_memory_stats(ctx, &s);
    CHECK(s.pinned_cached == 0, "empty_cache releases the pinned cache (%zu left)", s.pinned_cached);
    ln_ctx_release(ctx);
    return test_finish();
}
