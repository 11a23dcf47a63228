/* The autograd engine: node creation, saving tensors for backward, and the backward
 * pass (iterative topological order, gradient accumulation into leaves). */
#include <string.h>
#include "internal.h"
#include "dispatch.h"

bool ln_any_requires_grad(const ln_ctx *ctx, int n, ln_tensor *const *inputs) {
    if (!ctx->grad_enabled) return false;
    for (int i = 0; i < n; i++)
        if (inputs[i] && inputs[i]->requires_grad) return true;
    return false;
}

void ln_node_retain(ln_node *n) { if (n) n->refcount++; }

static void node_free_saved(ln_node *n) {
    for (int i = 0; i < n->n_saved; i++) ln_tensor_release(n->saved[i]);
    free(n->saved);
    n->saved = NULL;
    n->n_saved = 0;
}

void ln_node_release(ln_node *n) {
    /* Iterative over chains of last references, so releasing a deep graph (a
     * ResNet-101 has thousands of nodes) does not recurse thousands deep. */
    ln_node *stack_buf[64];
    ln_node **stack = stack_buf;
    size_t cap = 64, top = 0;
    if (!n || --n->refcount > 0) return;
    stack[top++] = n;
    while (top > 0) {
        ln_node *cur = stack[--top];
        for (int i = 0; i < cur->n_inputs; i++) {
            ln_tensor_release(cur->edges[i].leaf);
            ln_node *next = cur->edges[i].node;
            if (next && --next->refcount == 0) {
                if (top == cap) {
                    ln_node **bigger = malloc(2 * cap * sizeof *bigger);
                    if (!bigger) { next->refcount = 1; continue; } /* leak rather than crash */
                    memcpy(bigger, stack, top * sizeof *bigger);
                    if (stack != stack_buf) free(stack);
                    stack = bigger;
                    cap *= 2;
                }
                stack[top++] = next;
            }
        }
        node_free_saved(cur);
        ln_tensor_release(cur->grad_accum);
        if (cur->free_state) cur->free_state(cur->state);
        free(cur->edges);
        free(cur);
    }
    if (stack != stack_buf) free(stack);
}

ln_status ln_node_attach(ln_ctx *ctx, ln_tensor *out, const char *name, ln_backward_fn fn,
                         int n_inputs, ln_tensor *const *inputs, ln_node **node_out) {
    ln_node *n = calloc(1, sizeof *n);
    if (!n) return ln_fail(ctx, LN_ERR_NOMEM, "%s: out of memory recording autograd node", name);
    n->edges = calloc((size_t)(n_inputs > 0 ? n_inputs : 1), sizeof *n->edges);
    if (!n->edges) { free(n); return ln_fail(ctx, LN_ERR_NOMEM, "%s: out of memory recording autograd node", name); }
    n->refcount = 1;
    n->name = name;
    n->backward = fn;
    n->n_inputs = n_inputs;
    for (int i = 0; i < n_inputs; i++) {
        ln_tensor *in = inputs[i];
        if (!in || !in->requires_grad) continue;
        if (in->grad_fn) { n->edges[i].node = in->grad_fn; ln_node_retain(in->grad_fn); }
        else { n->edges[i].leaf = in; ln_tensor_retain(in); }
    }
    ln_node_release(out->grad_fn);
    out->grad_fn = n;
    out->requires_grad = true;
    if (node_out) *node_out = n;
    return LN_OK;
}

ln_status ln_node_record(ln_ctx *ctx, ln_tensor *out, const char *name, ln_backward_fn fn,
                         int n_inputs, ln_tensor *const *inputs, const void *state,
                         size_t state_size, ln_node **node_out) {
    ln_node *n;
    LN_TRY(ln_node_attach(ctx, out, name, fn, n_inputs, inputs, &n));
    if (node_out) *node_out = n;
    return ln_node_set_state(ctx, n, state, state_size);
}

ln_status ln_node_save(ln_ctx *ctx, ln_node *n, const ln_tensor *t, int *slot) {
    ln_tensor **grown = realloc(n->saved, (size_t)(n->n_saved + 1) * sizeof *grown);
    if (!grown) return ln_fail(ctx, LN_ERR_NOMEM, "%s: out of memory saving a tensor", n->name);
    n->saved = grown;
    ln_tensor *d = NULL;
    if (t) LN_TRY(ln_tensor_detach(ctx, t, &d));
    n->saved[n->n_saved] = d;
    if (slot) *slot = n->n_saved;
    n->n_saved++;
    return LN_OK;
}

ln_status ln_node_set_state(ln_ctx *ctx, ln_node *n, const void *state, size_t size) {
    void *copy = malloc(size ? size : 1);
    if (!copy) return ln_fail(ctx, LN_ERR_NOMEM, "%s: out of memory saving op state", n->name);
    memcpy(copy, state, size);
    ln_node_set_state_owned(n, copy, free);
    return LN_OK;
}

void ln_node_set_state_owned(ln_node *n, void *state, void (*free_state)(void *)) {
    if (n->free_state) n->free_state(n->state);
    n->state = state;
    n->free_state = free_state;
}

bool ln_node_needs_grad(const ln_node *n, int input) {
    return input >= 0 && input < n->n_inputs && (n->edges[input].node || n->edges[input].leaf);
}

/* ------------------------------------------------------------ accumulation */
ln_status ln_grad_accumulate(ln_ctx *ctx, ln_tensor **dst, const ln_tensor *src) {
    if (!*dst) return ln_tensor_clone(ctx, src, dst);
    return ln_tensor_add_(ctx, *dst, src, 1.0);
}

/* Like ln_grad_accumulate, but steals *src when nobody else holds it (saves a copy). */
static ln_status accumulate_steal(ln_ctx *ctx, ln_tensor **dst, ln_tensor **src) {
    if (!*dst && (*src)->refcount == 1 && ln_tensor_is_contiguous(*src) && !(*src)->grad_fn) {
        *dst = *src;
        *src = NULL;
        return LN_OK;
    }
    return ln_grad_accumulate(ctx, dst, *src);
}

/* ------------------------------------------------------------ backward */
typedef struct node_vec { ln_node **v; size_t n, cap; } node_vec;

static bool vec_push(node_vec *s, ln_node *x) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        ln_node **g = realloc(s->v, cap * sizeof *g);
        if (!g) return false;
        s->v = g;
        s->cap = cap;
    }
    s->v[s->n++] = x;
    return true;
}

ln_status ln_backward(ln_ctx *ctx, ln_tensor *root, const ln_tensor *grad, bool retain_graph) {
    if (!root->requires_grad)
        return ln_fail(ctx, LN_ERR_STATE, "backward: tensor does not require grad (no leaf that requires grad was used to compute it, or it was computed under no_grad)");
    ln_tensor *seed = NULL;
    ln_status st = LN_OK;
    if (grad) {
        if (!ln_tensor_same_shape(grad, root)) {
            char a[256], b[256];
            ln_shape_format(root->ndim, root->shape, a, sizeof a);
            ln_shape_format(grad->ndim, grad->shape, b, sizeof b);
            return ln_fail(ctx, LN_ERR_SHAPE, "backward: gradient shape %s does not match tensor shape %s", b, a);
        }
        LN_TRY(ln_tensor_contiguous(ctx, grad, &seed));
    } else {
        if (ln_tensor_numel(root) != 1) {
            char a[256];
            ln_shape_format(root->ndim, root->shape, a, sizeof a);
            return ln_fail(ctx, LN_ERR_STATE, "backward: gradient can be implicitly created only for a one-element tensor, got shape %s; pass a gradient", a);
        }
        LN_TRY(ln_tensor_full(ctx, root->dtype, root->storage->device, root->ndim, root->shape, 1.0, &seed));
    }
    if (!root->grad_fn) { /* a leaf */
        st = ln_grad_accumulate(ctx, &root->grad, seed);
        ln_tensor_release(seed);
        return st;
    }
    if (root->grad_fn->released) {
        ln_tensor_release(seed);
        return ln_fail(ctx, LN_ERR_STATE, "backward: trying to backward through the graph a second time (its saved tensors were freed); use retain_graph on the first call");
    }

    bool prev_grad = ln_ctx_set_grad_enabled(ctx, false);
    uint64_t mark = ++ctx->backward_epoch;
    node_vec all = {0}, stack = {0}, ready = {0};

    /* 1. collect the nodes reachable from root and count each one's consumers */
    if (!vec_push(&stack, root->grad_fn)) { st = ln_fail(ctx, LN_ERR_NOMEM, "backward: out of memory"); goto done; }
    root->grad_fn->visit_mark = mark;
    root->grad_fn->pending = 0;
    while (stack.n > 0) {
        ln_node *n = stack.v[--stack.n];
        if (!vec_push(&all, n)) { st = ln_fail(ctx, LN_ERR_NOMEM, "backward: out of memory"); goto done; }
        for (int i = 0; i < n->n_inputs; i++) {
            ln_node *next = n->edges[i].node;
            if (!next) continue;
            if (next->visit_mark != mark) {
                next->visit_mark = mark;
                next->pending = 0;
                if (!vec_push(&stack, next)) { st = ln_fail(ctx, LN_ERR_NOMEM, "backward: out of memory"); goto done; }
            }
            next->pending++;
        }
    }
    for (size_t i = 0; i < all.n; i++) {
        if (all.v[i]->released) {
            st = ln_fail(ctx, LN_ERR_STATE, "backward: part of the graph (%s) was already freed by an earlier backward; use retain_graph", all.v[i]->name);
            goto done;
        }
    }

    /* 2. run nodes once all their consumers have contributed */
    root->grad_fn->grad_accum = seed;
    seed = NULL;
    if (!vec_push(&ready, root->grad_fn)) { st = ln_fail(ctx, LN_ERR_NOMEM, "backward: out of memory"); goto done; }
    while (ready.n > 0) {
        ln_node *n = ready.v[--ready.n];
        ln_tensor **gin = calloc((size_t)(n->n_inputs > 0 ? n->n_inputs : 1), sizeof *gin);
        if (!gin) { st = ln_fail(ctx, LN_ERR_NOMEM, "backward: out of memory"); goto done; }
        ln_tensor *gout = n->grad_accum;
        n->grad_accum = NULL;
        /* a node no gradient reached (its consumers returned none) passes none on */
        st = gout ? n->backward(ctx, n, gout, gin) : LN_OK;
        ln_tensor_release(gout);
        for (int i = 0; i < n->n_inputs && st == LN_OK; i++) {
            ln_edge *e = &n->edges[i];
            if (e->leaf && gin[i]) st = accumulate_steal(ctx, &e->leaf->grad, &gin[i]);
            if (e->node) {
                if (gin[i]) st = accumulate_steal(ctx, &e->node->grad_accum, &gin[i]);
                if (st == LN_OK && --e->node->pending == 0) {
                    if (!vec_push(&ready, e->node)) st = ln_fail(ctx, LN_ERR_NOMEM, "backward: out of memory");
                }
            }
        }
        for (int i = 0; i < n->n_inputs; i++) ln_tensor_release(gin[i]);
        free(gin);
        if (st != LN_OK) goto done;
        if (!retain_graph) {
            node_free_saved(n);
            n->released = true;
        }
    }

done:
    /* drop partial gradients left on nodes after a failure */
    for (size_t i = 0; i < all.n; i++) {
        ln_tensor_release(all.v[i]->grad_accum);
        all.v[i]->grad_accum = NULL;
    }
    ln_tensor_release(seed);
    free(all.v);
    free(stack.v);
    free(ready.v);
    ln_ctx_set_grad_enabled(ctx, prev_grad);
    return st;
}
