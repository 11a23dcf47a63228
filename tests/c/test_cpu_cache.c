/* The context's CPU block cache: freed large blocks are reused for the same size
 * class, small ones are not cached, the limit is honoured, and emptying works; an
 * allocation that fails runs the out-of-memory hook once and reports LN_ERR_NOMEM. */
#include "testutil.h"

static void count_calls(void *ud) { ++*(int *)ud; }

int main(void) {
    ln_ctx *ctx = ln_ctx_create();
    ln_ctx_set_cpu_cache_limit(ctx, (size_t)64 << 20);
    int64_t big[1] = {1 << 20}, small[1] = {100};
    ln_tensor *a, *b, *s;
    CHECK_OK(ctx, ln_tensor_empty(ctx, LN_F32, ln_cpu(), 1, big, &a));
    void *pa = a->storage->data;
    uint64_t before = ln_ctx_allocated_total(ctx);
    ln_tensor_release(a);
    CHECK(ln_ctx_cpu_cache_bytes(ctx) >= (size_t)4 << 20, "a freed 4 MiB block is cached");
    CHECK_OK(ctx, ln_tensor_empty(ctx, LN_F32, ln_cpu(), 1, big, &b));
    CHECK(b->storage->data == pa, "the cached block is reused for the same size");
    CHECK(ln_ctx_cpu_cache_bytes(ctx) == 0, "reuse takes the block out of the cache");
    CHECK(ln_ctx_allocated_total(ctx) > before, "allocated_total counts every storage");
    ln_tensor_release(b);
    CHECK_OK(ctx, ln_tensor_empty(ctx, LN_F32, ln_cpu(), 1, small, &s));
    ln_tensor_release(s);
    CHECK(ln_ctx_cpu_cache_bytes(ctx) >= (size_t)4 << 20, "small blocks are not cached");
    /* zeros from a reused block are still zeros */
    ln_tensor *z;
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_F32, ln_cpu(), 1, big, &z));
    float *zd = ln_tensor_data(z);
    int all_zero = 1;
    for (int64_t i = 0; i < big[0]; i++) all_zero &= zd[i] == 0.f;
    CHECK(all_zero, "zeros() on a reused block");
    ln_tensor_release(z);
    /* the limit: a 2 MiB limit keeps nothing of 4 MiB */
    ln_ctx_set_cpu_cache_limit(ctx, (size_t)2 << 20);
    CHECK(ln_ctx_cpu_cache_bytes(ctx) == 0, "lowering the limit frees blocks over it");
    CHECK_OK(ctx, ln_tensor_empty(ctx, LN_F32, ln_cpu(), 1, big, &a));
    ln_tensor_release(a);
    CHECK(ln_ctx_cpu_cache_bytes(ctx) == 0, "blocks larger than the limit are not kept");
    ln_ctx_set_cpu_cache_limit(ctx, (size_t)64 << 20);
    CHECK_OK(ctx, ln_tensor_empty(ctx, LN_F32, ln_cpu(), 1, big, &a));
    ln_tensor_release(a);
    ln_cpu_cache_empty(ctx);
    CHECK(ln_ctx_cpu_cache_bytes(ctx) == 0, "empty frees everything");
    /* an impossible allocation (1 PiB): the hook runs once, then a clean failure */
    int calls = 0;
    ln_ctx_set_oom_hook(ctx, count_calls, &calls);
    int64_t huge[1] = {(int64_t)1 << 48};
    ln_tensor *h = NULL;
    CHECK_FAILS(ctx, ln_tensor_empty(ctx, LN_F32, ln_cpu(), 1, huge, &h), LN_ERR_NOMEM);
    CHECK(h == NULL && calls == 1, "the out-of-memory hook ran once (%d)", calls);
    ln_ctx_release(ctx);
    return test_finish();
}
