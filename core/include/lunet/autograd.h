/* Reverse-mode autograd, define-by-run. A differentiable op called while grad mode
 * is on, on inputs of which at least one requires grad, records a node on its output.
 * ln_backward walks the graph in reverse topological order and ACCUMULATES into the
 * .grad of leaves, so a tensor used several times (a shared basis) receives the sum
 * of the gradients of all its uses. Saved tensors are released after backward unless
 * retain_graph is set; a second backward through a released graph is an error.
 *
 * Ownership: a node holds references to the nodes of its inputs (edges), to leaves
 * it feeds, and to detached copies of the tensors it saves (never to its own output
 * with its grad_fn, so there are no cycles). */
#ifndef LUNET_AUTOGRAD_H
#define LUNET_AUTOGRAD_H

#include "tensor.h"

typedef struct ln_node ln_node;

/* Computes the gradients of the node's inputs from the gradient of its output.
 * grad_in has n_inputs slots, all NULL on entry; the function sets (with a new
 * reference) those for which ln_node_needs_grad(self, i) is true, and may leave
 * others NULL. grad_out is contiguous. Runs with grad mode off. */
typedef ln_status (*ln_backward_fn)(ln_ctx *ctx, ln_node *self, const ln_tensor *grad_out,
                                    ln_tensor **grad_in);

typedef struct ln_edge {
    ln_node *node;   /* grad_fn of a non-leaf input (owned ref), or NULL */
    ln_tensor *leaf; /* a leaf input that requires grad (owned ref), or NULL */
} ln_edge;

struct ln_node {
    int64_t refcount;
    const char *name;          /* static string, e.g. "conv2d" */
    ln_backward_fn backward;
    int n_inputs;
    ln_edge *edges;            /* n_inputs entries */
    int n_saved;
    ln_tensor **saved;         /* detached tensors kept for backward */
    void *state;               /* op parameters, freed with free_state */
    void (*free_state)(void *state);
    bool released;             /* saved tensors already freed by a backward */
    /* used during backward only */
    ln_tensor *grad_accum;
    int64_t pending;
    uint64_t visit_mark;
};

/* True when grad mode is on and any of the inputs requires grad. */
bool ln_any_requires_grad(const ln_ctx *ctx, int n, ln_tensor *const *inputs);

/* Creates a node over the given inputs (NULL inputs allowed: no edge) and attaches
 * it as out->grad_fn, setting out->requires_grad. The node is owned by out. */
ln_status ln_node_attach(ln_ctx *ctx, ln_tensor *out, const char *name, ln_backward_fn fn,
                         int n_inputs, ln_tensor *const *inputs, ln_node **node_out);
/* ln_node_attach followed by ln_node_set_state: the usual way an op records itself. */
ln_status ln_node_record(ln_ctx *ctx, ln_tensor *out, const char *name, ln_backward_fn fn,
                         int n_inputs, ln_tensor *const *inputs, const void *state,
                         size_t state_size, ln_node **node_out);
/* Keeps a detached reference to t for backward; returns its slot index. */
ln_status ln_node_save(ln_ctx *ctx, ln_node *n, const ln_tensor *t, int *slot);
/* Copies `size` bytes of op parameters into the node (freed with the node). */
ln_status ln_node_set_state(ln_ctx *ctx, ln_node *n, const void *state, size_t size);
/* Takes ownership of an arbitrary state with its own destructor. */
void ln_node_set_state_owned(ln_node *n, void *state, void (*free_state)(void *));
bool ln_node_needs_grad(const ln_node *n, int input);

void ln_node_retain(ln_node *n);
void ln_node_release(ln_node *n);

/* Backpropagates from root. grad may be NULL only when root has one element
 * (then the seed gradient is 1). Fails if root does not require grad. */
ln_status ln_backward(ln_ctx *ctx, ln_tensor *root, const ln_tensor *grad, bool retain_graph);

/* Adds src into *dst (allocating a contiguous copy when *dst is NULL). No autograd. */
ln_status ln_grad_accumulate(ln_ctx *ctx, ln_tensor **dst, const ln_tensor *src);

#endif
