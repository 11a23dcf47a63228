/* The restricted pickle machine of the .pth reader. It interprets the opcodes that
 * torch.save's pickles use (protocol 2, and the few of protocols 3-5 a later pickler
 * would write for the same objects), builds values in the document, and accepts only
 * the globals a state dict needs (pth_internal.h: pth_global); it never imports or
 * calls anything. Every length is checked against the bytes left, the stack, the
 * memo and the open MARKs are bounded, memo slots are filled in order, and a REDUCE
 * or BUILD is accepted only for the allowed callables with arguments of the exact
 * kinds they take. Tensors come out "lazy" (pth_lazy_tensor): the loader makes them
 * real once their storage bytes are known. */
#include <stdarg.h>
#include <string.h>
#include "pth_internal.h"

typedef struct vm {
    ln_ctx *ctx;
    ln_pth_doc *doc;
    const pth_pickle_src *src;
    size_t pos;        /* next byte to read */
    size_t op_pos;     /* start of the opcode being run, for messages */
    ln_pth_value **stack;
    size_t sp, stack_cap;
    size_t *marks;     /* stack heights at each open MARK */
    size_t nmarks;
    ln_pth_value **memo;
    size_t nmemo, memo_cap;
} vm;

/* Fails with "pth: NAME: PART byte N: message"; code is LN_ERR_IO for a malformed
 * pickle, LN_ERR_UNSUPPORTED for something valid that is not allowed. */
static ln_status vm_fail(vm *m, ln_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static ln_status vm_fail(vm *m, ln_status code, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ln_fail(m->ctx, code, "pth: %s: %s, byte %zu: %s", m->src->name, m->src->part,
                   m->src->base + m->op_pos, msg);
}

/* ------------------------------------------------------------ reading bytes */
static ln_status need(vm *m, size_t k, const char *what) {
    if (m->src->len - m->pos < k)
        return vm_fail(m, LN_ERR_IO, "truncated %s (%zu bytes needed, %zu left)", what, k,
                       m->src->len - m->pos);
    return LN_OK;
}

static ln_status read_uint(vm *m, size_t k, const char *what, uint64_t *out) {
    LN_TRY(need(m, k, what));
    uint64_t v = 0;
    for (size_t i = 0; i < k; i++) v |= (uint64_t)m->src->data[m->pos + i] << (8 * i);
    m->pos += k;
    *out = v;
    return LN_OK;
}

/* ------------------------------------------------------------ stack */
static size_t mark_base(const vm *m) { return m->nmarks ? m->marks[m->nmarks - 1] : 0; }

static ln_status push(vm *m, ln_pth_value *v) {
    if (m->sp == m->stack_cap) {
        if (m->stack_cap >= PTH_MAX_STACK)
            return vm_fail(m, LN_ERR_IO, "more than %u values on the pickle stack", PTH_MAX_STACK);
        size_t cap = m->stack_cap ? 2 * m->stack_cap : 64;
        ln_pth_value **s = realloc(m->stack, cap * sizeof *s);
        if (!s) return ln_fail(m->ctx, LN_ERR_NOMEM, "pth: out of memory for the pickle stack");
        m->stack = s;
        m->stack_cap = cap;
    }
    m->stack[m->sp++] = v;
    return LN_OK;
}

static ln_status push_new(vm *m, int kind, ln_pth_value **out) {
    ln_pth_value *v;
    LN_TRY(pth_new_value(m->ctx, m->doc, kind, &v));
    LN_TRY(push(m, v));
    if (out) *out = v;
    return LN_OK;
}

/* Pops one value pushed since the last MARK. */
static ln_status pop(vm *m, ln_pth_value **out) {
    if (m->sp <= mark_base(m)) return vm_fail(m, LN_ERR_IO, "pop from an empty stack");
    *out = m->stack[--m->sp];
    return LN_OK;
}

static ln_status top(vm *m, ln_pth_value **out) {
    if (m->sp <= mark_base(m)) return vm_fail(m, LN_ERR_IO, "no value on the stack");
    *out = m->stack[m->sp - 1];
    return LN_OK;
}

/* Closes the last MARK: *first is the index of the first value pushed after it, *n
 * their count; the caller consumes them and sets m->sp = *first. */
static ln_status pop_mark(vm *m, size_t *first, size_t *n) {
    if (m->nmarks == 0) return vm_fail(m, LN_ERR_IO, "no MARK to close");
    *first = m->marks[--m->nmarks];
    *n = m->sp - *first;
    return LN_OK;
}

static ln_status new_seq(vm *m, int kind, ln_pth_value **items, size_t n, ln_pth_value **out) {
    LN_TRY(pth_new_value(m->ctx, m->doc, kind, out));
    if (kind == LN_PTH_DICT) {
        if (n % 2) return vm_fail(m, LN_ERR_IO, "odd number of values (%zu) for a dict", n);
        LN_TRY(pth_reserve(m->ctx, *out, n));
        if (n) memcpy((*out)->items, items, n * sizeof *items);
        (*out)->n = n / 2;
    } else {
        LN_TRY(pth_reserve(m->ctx, *out, n));
        if (n) memcpy((*out)->items, items, n * sizeof *items);
        (*out)->n = n;
    }
    return LN_OK;
}

/* ------------------------------------------------------------ globals */
typedef struct allowed_global { const char *module, *name; int id; } allowed_global;
static const allowed_global ALLOWED[] = {
    {"collections", "OrderedDict", PTH_G_ORDERED_DICT},
    {"torch._utils", "_rebuild_tensor_v2", PTH_G_REBUILD_TENSOR_V2},
    {"torch._utils", "_rebuild_tensor", PTH_G_REBUILD_TENSOR},
    {"torch._utils", "_rebuild_parameter", PTH_G_REBUILD_PARAMETER},
    {"torch._utils", "_rebuild_parameter_with_state", PTH_G_REBUILD_PARAMETER_WITH_STATE},
};

static bool str_is(const char *s, size_t len, const char *want) {
    return strlen(want) == len && memcmp(s, want, len) == 0;
}

static ln_status push_global(vm *m, const char *module, size_t mlen, const char *name,
                             size_t nlen) {
    int id = -1;
    for (size_t i = 0; i < sizeof ALLOWED / sizeof ALLOWED[0] && id < 0; i++)
        if (str_is(module, mlen, ALLOWED[i].module) && str_is(name, nlen, ALLOWED[i].name))
            id = ALLOWED[i].id;
    if (id < 0 && str_is(module, mlen, "torch"))
        for (int i = 0; i < pth_storage_type_count && id < 0; i++)
            if (str_is(name, nlen, pth_storage_types[i].name)) id = PTH_G_STORAGE_FIRST + i;
    if (id < 0) {
        /* printable form of the name for the message */
        char shown[160];
        size_t w = 0;
        for (size_t i = 0; i < mlen + 1 + nlen && w + 5 < sizeof shown; i++) {
            char c = i < mlen ? module[i] : i == mlen ? '.' : name[i - mlen - 1];
            if (c >= 32 && c < 127) shown[w++] = c;
            else w += (size_t)snprintf(shown + w, sizeof shown - w, "\\x%02x", (unsigned char)c);
        }
        shown[w] = '\0';
        return vm_fail(m, LN_ERR_UNSUPPORTED,
                       "global '%s' is not allowed: this reader accepts only what a state "
                       "dict needs (collections.OrderedDict, torch._utils._rebuild_tensor_v2, "
                       "_rebuild_parameter and torch.*Storage types)", shown);
    }
    ln_pth_value *v;
    LN_TRY(push_new(m, PTH_GLOBAL, &v));
    v->i = id;
    return LN_OK;
}

/* GLOBAL: "module\nname\n" */
static ln_status op_global(vm *m) {
    const char *parts[2];
    size_t lens[2];
    for (int k = 0; k < 2; k++) {
        const uint8_t *start = m->src->data + m->pos;
        size_t left = m->src->len - m->pos, max = left < 256 ? left : 256;
        const uint8_t *nl = memchr(start, '\n', max);
        if (!nl) return vm_fail(m, LN_ERR_IO, "GLOBAL name not terminated within 256 bytes");
        parts[k] = (const char *)start;
        lens[k] = (size_t)(nl - start);
        m->pos += lens[k] + 1;
    }
    return push_global(m, parts[0], lens[0], parts[1], lens[1]);
}

/* ------------------------------------------------------------ calls */
static const char *kind_name(const ln_pth_value *v) {
    static const char *const names[] = {"None", "bool", "int", "float", "str", "bytes",
                                        "list", "tuple", "dict", "tensor"};
    if ((unsigned)v->kind < LN_PTH_KIND_COUNT) return names[v->kind];
    return (int)v->kind == PTH_GLOBAL ? "global" : "storage";
}

static ln_status int_tuple(vm *m, const ln_pth_value *t, const char *what, int64_t *out,
                           int *n) {
    if (t->kind != LN_PTH_TUPLE)
        return vm_fail(m, LN_ERR_IO, "tensor %s must be a tuple, got a %s", what, kind_name(t));
    if (t->n > LN_MAX_DIMS)
        return vm_fail(m, LN_ERR_UNSUPPORTED, "tensor with %zu dimensions (at most %d)", t->n,
                       LN_MAX_DIMS);
    for (size_t i = 0; i < t->n; i++) {
        if (t->items[i]->kind != LN_PTH_INT || t->items[i]->i < 0)
            return vm_fail(m, LN_ERR_IO, "tensor %s entry %zu is not a non-negative int", what, i);
        out[i] = t->items[i]->i;
    }
    *n = (int)t->n;
    return LN_OK;
}

/* _rebuild_tensor(_v2)(storage, storage_offset, size, stride, ...) */
static ln_status rebuild_tensor(vm *m, ln_pth_value **a, size_t n, ln_pth_value **out) {
    if ((int)a[0]->kind != PTH_STORAGE)
        return vm_fail(m, LN_ERR_IO, "tensor rebuilt from a %s, not a storage", kind_name(a[0]));
    if (a[1]->kind != LN_PTH_INT || a[1]->i < 0)
        return vm_fail(m, LN_ERR_IO, "tensor storage offset is not a non-negative int");
    pth_lazy_tensor lazy = {.storage = a[0]->i, .offset = a[1]->i};
    int nstride;
    LN_TRY(int_tuple(m, a[2], "size", lazy.shape, &lazy.ndim));
    LN_TRY(int_tuple(m, a[3], "stride", lazy.strides, &nstride));
    if (nstride != lazy.ndim)
        return vm_fail(m, LN_ERR_IO, "tensor has %d sizes but %d strides", lazy.ndim, nstride);
    if (n >= 6) {
        if (a[4]->kind != LN_PTH_BOOL)
            return vm_fail(m, LN_ERR_IO, "requires_grad is a %s, not a bool", kind_name(a[4]));
        if (a[5]->kind != LN_PTH_DICT)
            return vm_fail(m, LN_ERR_IO, "backward hooks are a %s, not a dict", kind_name(a[5]));
        if (n == 7 && a[6]->kind != LN_PTH_DICT && a[6]->kind != LN_PTH_NONE)
            return vm_fail(m, LN_ERR_IO, "tensor metadata is a %s, not a dict", kind_name(a[6]));
    }
    pth_lazy_tensor *p = malloc(sizeof *p);
    if (!p) return ln_fail(m->ctx, LN_ERR_NOMEM, "pth: out of memory");
    *p = lazy;
    ln_status st = pth_new_value(m->ctx, m->doc, LN_PTH_TENSOR, out);
    if (st != LN_OK) { free(p); return st; }
    (*out)->priv_ = p;
    return LN_OK;
}

static ln_status call(vm *m, const ln_pth_value *fn, const ln_pth_value *args,
                      ln_pth_value **out) {
    ln_pth_value **a = args->items;
    size_t n = args->n;
    switch (fn->i) {
    case PTH_G_ORDERED_DICT:
        if (n != 0) return vm_fail(m, LN_ERR_UNSUPPORTED, "OrderedDict called with %zu arguments (expected none)", n);
        LN_TRY(pth_new_value(m->ctx, m->doc, LN_PTH_DICT, out));
        (*out)->ordered = true;
        return LN_OK;
    case PTH_G_REBUILD_TENSOR_V2:
        if (n != 6 && n != 7)
            return vm_fail(m, LN_ERR_IO, "_rebuild_tensor_v2 takes 6 or 7 arguments, got %zu", n);
        return rebuild_tensor(m, a, n, out);
    case PTH_G_REBUILD_TENSOR:
        if (n != 4) return vm_fail(m, LN_ERR_IO, "_rebuild_tensor takes 4 arguments, got %zu", n);
        return rebuild_tensor(m, a, n, out);
    case PTH_G_REBUILD_PARAMETER:
    case PTH_G_REBUILD_PARAMETER_WITH_STATE: {
        size_t want = fn->i == PTH_G_REBUILD_PARAMETER ? 3 : 4;
        if (n != want)
            return vm_fail(m, LN_ERR_IO, "_rebuild_parameter takes %zu arguments, got %zu", want, n);
        if (a[0]->kind != LN_PTH_TENSOR || a[1]->kind != LN_PTH_BOOL || a[2]->kind != LN_PTH_DICT)
            return vm_fail(m, LN_ERR_IO, "_rebuild_parameter needs (tensor, bool, dict), got (%s, %s, %s)",
                           kind_name(a[0]), kind_name(a[1]), kind_name(a[2]));
        if (n == 4 && a[3]->kind != LN_PTH_DICT && a[3]->kind != LN_PTH_NONE)
            return vm_fail(m, LN_ERR_IO, "parameter state is a %s, not a dict", kind_name(a[3]));
        *out = a[0];
        return LN_OK;
    }
    default:
        return vm_fail(m, LN_ERR_UNSUPPORTED, "a storage type is not callable here");
    }
}

/* ------------------------------------------------------------ opcodes */
static ln_status op_string(vm *m, size_t len_bytes, int kind) {
    uint64_t len;
    LN_TRY(read_uint(m, len_bytes, "string length", &len));
    if (len > m->src->len - m->pos)
        return vm_fail(m, LN_ERR_IO, "string of %llu bytes but only %zu left",
                       (unsigned long long)len, m->src->len - m->pos);
    ln_pth_value *v;
    LN_TRY(ln_pth_new_str(m->ctx, m->doc, (ln_pth_kind)kind,
                          (const char *)m->src->data + m->pos, (size_t)len, &v));
    m->pos += (size_t)len;
    return push(m, v);
}

static ln_status op_long(vm *m, size_t len_bytes) {
    uint64_t n;
    LN_TRY(read_uint(m, len_bytes, "integer length", &n));
    if (n > 8) return vm_fail(m, LN_ERR_UNSUPPORTED, "integer of %llu bytes (at most 8)", (unsigned long long)n);
    uint64_t v;
    LN_TRY(read_uint(m, (size_t)n, "integer", &v));
    if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~(uint64_t)0 << (8 * n); /* sign */
    ln_pth_value *out;
    LN_TRY(push_new(m, LN_PTH_INT, &out));
    memcpy(&out->i, &v, sizeof v);
    return LN_OK;
}

static ln_status memo_put(vm *m, uint64_t idx) {
    ln_pth_value *v = NULL;
    LN_TRY(top(m, &v));
    if (idx > m->nmemo)
        return vm_fail(m, LN_ERR_UNSUPPORTED, "memo slot %llu written before slot %zu",
                       (unsigned long long)idx, m->nmemo);
    if (idx == m->nmemo) {
        if (m->nmemo >= PTH_MAX_MEMO)
            return vm_fail(m, LN_ERR_IO, "more than %u memo slots", PTH_MAX_MEMO);
        if (m->nmemo == m->memo_cap) {
            size_t cap = m->memo_cap ? 2 * m->memo_cap : 64;
            ln_pth_value **p = realloc(m->memo, cap * sizeof *p);
            if (!p) return ln_fail(m->ctx, LN_ERR_NOMEM, "pth: out of memory for the memo");
            m->memo = p;
            m->memo_cap = cap;
        }
        m->nmemo++;
    }
    m->memo[idx] = v;
    return LN_OK;
}

static ln_status memo_get(vm *m, uint64_t idx) {
    if (idx >= m->nmemo)
        return vm_fail(m, LN_ERR_IO, "memo slot %llu read but only %zu written",
                       (unsigned long long)idx, m->nmemo);
    return push(m, m->memo[idx]);
}

/* Runs one opcode; *stop set when it was STOP. */
static ln_status step(vm *m, bool *stop, ln_pth_value **result) {
    m->op_pos = m->pos;
    LN_TRY(need(m, 1, "opcode"));
    uint8_t op = m->src->data[m->pos++];
    uint64_t u = 0;
    ln_pth_value *v = NULL, *w = NULL, *x = NULL;
    size_t first = 0, n = 0;
    switch (op) {
    case 0x80: /* PROTO */
        LN_TRY(read_uint(m, 1, "protocol", &u));
        if (u > 5) return vm_fail(m, LN_ERR_UNSUPPORTED, "pickle protocol %llu", (unsigned long long)u);
        return LN_OK;
    case 0x95: /* FRAME: a length hint */
        return read_uint(m, 8, "frame length", &u);
    case '.': /* STOP */
        LN_TRY(pop(m, result));
        *stop = true;
        return LN_OK;
    case '(': /* MARK */
        if (m->nmarks >= PTH_MAX_MARKS)
            return vm_fail(m, LN_ERR_IO, "more than %d nested MARKs", PTH_MAX_MARKS);
        m->marks[m->nmarks++] = m->sp;
        return LN_OK;
    case '0': /* POP */
        if (m->sp > mark_base(m)) { m->sp--; return LN_OK; }
        LN_TRY(pop_mark(m, &first, &n));
        m->sp = first;
        return LN_OK;
    case '1': /* POP_MARK */
        LN_TRY(pop_mark(m, &first, &n));
        m->sp = first;
        return LN_OK;
    case '2': /* DUP */
        LN_TRY(top(m, &v));
        return push(m, v);
    case '}': return push_new(m, LN_PTH_DICT, NULL);
    case ']': return push_new(m, LN_PTH_LIST, NULL);
    case ')': return push_new(m, LN_PTH_TUPLE, NULL);
    case 'N': return push_new(m, LN_PTH_NONE, NULL);
    case 0x88: case 0x89: /* NEWTRUE, NEWFALSE */
        LN_TRY(push_new(m, LN_PTH_BOOL, &v));
        v->i = op == 0x88;
        return LN_OK;
    case 't': case 'l': case 'd': /* TUPLE, LIST, DICT from the values since MARK */
        LN_TRY(pop_mark(m, &first, &n));
        LN_TRY(new_seq(m, op == 't' ? LN_PTH_TUPLE : op == 'l' ? LN_PTH_LIST : LN_PTH_DICT,
                       n ? m->stack + first : NULL, n, &v));
        m->sp = first;
        return push(m, v);
    case 0x85: case 0x86: case 0x87: /* TUPLE1..3 */
        n = (size_t)(op - 0x84);
        if (m->sp - mark_base(m) < n) return vm_fail(m, LN_ERR_IO, "TUPLE%zu with fewer values on the stack", n);
        LN_TRY(new_seq(m, LN_PTH_TUPLE, m->stack + m->sp - n, n, &v));
        m->sp -= n;
        return push(m, v);
    case 'a': /* APPEND */
        LN_TRY(pop(m, &v));
        LN_TRY(top(m, &w));
        if (w->kind != LN_PTH_LIST) return vm_fail(m, LN_ERR_UNSUPPORTED, "APPEND to a %s", kind_name(w));
        return ln_pth_append(m->ctx, w, v);
    case 'e': /* APPENDS */
        LN_TRY(pop_mark(m, &first, &n));
        m->sp = first;
        LN_TRY(top(m, &w));
        if (w->kind != LN_PTH_LIST) return vm_fail(m, LN_ERR_UNSUPPORTED, "APPENDS to a %s", kind_name(w));
        LN_TRY(pth_reserve(m->ctx, w, w->n + n));
        if (n) memcpy(w->items + w->n, m->stack + first, n * sizeof *w->items);
        w->n += n;
        return LN_OK;
    case 's': /* SETITEM */
        LN_TRY(pop(m, &v));
        LN_TRY(pop(m, &x));
        LN_TRY(top(m, &w));
        if (w->kind != LN_PTH_DICT) return vm_fail(m, LN_ERR_UNSUPPORTED, "SETITEM on a %s", kind_name(w));
        return ln_pth_dict_add(m->ctx, w, x, v);
    case 'u': /* SETITEMS */
        LN_TRY(pop_mark(m, &first, &n));
        m->sp = first;
        LN_TRY(top(m, &w));
        if (w->kind != LN_PTH_DICT) return vm_fail(m, LN_ERR_UNSUPPORTED, "SETITEMS on a %s", kind_name(w));
        if (n % 2) return vm_fail(m, LN_ERR_IO, "SETITEMS with an odd number of values (%zu)", n);
        LN_TRY(pth_reserve(m->ctx, w, 2 * w->n + n));
        if (n) memcpy(w->items + 2 * w->n, m->stack + first, n * sizeof *w->items);
        w->n += n / 2;
        return LN_OK;
    case 'J': /* BININT */
        LN_TRY(read_uint(m, 4, "int", &u));
        LN_TRY(push_new(m, LN_PTH_INT, &v));
        v->i = (int32_t)(uint32_t)u;
        return LN_OK;
    case 'K': case 'M': /* BININT1, BININT2 */
        LN_TRY(read_uint(m, op == 'K' ? 1 : 2, "int", &u));
        LN_TRY(push_new(m, LN_PTH_INT, &v));
        v->i = (int64_t)u;
        return LN_OK;
    case 0x8a: return op_long(m, 1); /* LONG1 */
    case 0x8b: return op_long(m, 4); /* LONG4 */
    case 'G': { /* BINFLOAT, big-endian */
        LN_TRY(need(m, 8, "float"));
        uint64_t bits = 0;
        for (int i = 0; i < 8; i++) bits = bits << 8 | m->src->data[m->pos + (size_t)i];
        m->pos += 8;
        LN_TRY(push_new(m, LN_PTH_FLOAT, &v));
        memcpy(&v->f, &bits, sizeof bits);
        return LN_OK;
    }
    case 'X': return op_string(m, 4, LN_PTH_STR);     /* BINUNICODE */
    case 0x8c: return op_string(m, 1, LN_PTH_STR);    /* SHORT_BINUNICODE */
    case 0x8d: return op_string(m, 8, LN_PTH_STR);    /* BINUNICODE8 */
    case 'U': return op_string(m, 1, LN_PTH_STR);     /* SHORT_BINSTRING (Python 2 str) */
    case 'T': return op_string(m, 4, LN_PTH_STR);     /* BINSTRING */
    case 'C': return op_string(m, 1, LN_PTH_BYTES);   /* SHORT_BINBYTES */
    case 'B': return op_string(m, 4, LN_PTH_BYTES);   /* BINBYTES */
    case 0x8e: return op_string(m, 8, LN_PTH_BYTES);  /* BINBYTES8 */
    case 'q': LN_TRY(read_uint(m, 1, "memo index", &u)); return memo_put(m, u); /* BINPUT */
    case 'r': LN_TRY(read_uint(m, 4, "memo index", &u)); return memo_put(m, u); /* LONG_BINPUT */
    case 0x94: return memo_put(m, m->nmemo);                                     /* MEMOIZE */
    case 'h': LN_TRY(read_uint(m, 1, "memo index", &u)); return memo_get(m, u); /* BINGET */
    case 'j': LN_TRY(read_uint(m, 4, "memo index", &u)); return memo_get(m, u); /* LONG_BINGET */
    case 'c': return op_global(m); /* GLOBAL */
    case 0x93: /* STACK_GLOBAL */
        LN_TRY(pop(m, &v));
        LN_TRY(pop(m, &w));
        if (v->kind != LN_PTH_STR || w->kind != LN_PTH_STR)
            return vm_fail(m, LN_ERR_IO, "STACK_GLOBAL needs two strings");
        return push_global(m, w->str, w->len, v->str, v->len);
    case 'R': /* REDUCE */
        LN_TRY(pop(m, &v));
        LN_TRY(pop(m, &w));
        if ((int)w->kind != PTH_GLOBAL)
            return vm_fail(m, LN_ERR_UNSUPPORTED, "REDUCE calls a %s", kind_name(w));
        if (v->kind != LN_PTH_TUPLE)
            return vm_fail(m, LN_ERR_IO, "REDUCE arguments are a %s, not a tuple", kind_name(v));
        LN_TRY(call(m, w, v, &x));
        return push(m, x);
    case 'b': /* BUILD: only an OrderedDict's attributes (state_dict()._metadata) */
        LN_TRY(pop(m, &v));
        LN_TRY(top(m, &w));
        if (w->kind != LN_PTH_DICT)
            return vm_fail(m, LN_ERR_UNSUPPORTED, "BUILD on a %s", kind_name(w));
        if (v->kind != LN_PTH_DICT && v->kind != LN_PTH_NONE && v->kind != LN_PTH_TUPLE)
            return vm_fail(m, LN_ERR_IO, "BUILD with a %s state", kind_name(v));
        return LN_OK;
    case 'Q': /* BINPERSID */
        LN_TRY(pop(m, &v));
        if (!m->src->persistent_load)
            return vm_fail(m, LN_ERR_UNSUPPORTED, "a persistent id where none is expected");
        LN_TRY(m->src->persistent_load(m->src->ud, v, &w));
        return push(m, w);
    default:
        if (op >= 32 && op < 127)
            return vm_fail(m, LN_ERR_UNSUPPORTED, "pickle opcode '%c' (0x%02x) is not allowed", op, op);
        return vm_fail(m, LN_ERR_UNSUPPORTED, "pickle opcode 0x%02x is not allowed", op);
    }
}

ln_status pth_unpickle(ln_ctx *ctx, ln_pth_doc *doc, const pth_pickle_src *src,
                       ln_pth_value **out, size_t *used) {
    *out = NULL;
    vm m = {.ctx = ctx, .doc = doc, .src = src};
    m.marks = malloc(PTH_MAX_MARKS * sizeof *m.marks);
    if (!m.marks) return ln_fail(ctx, LN_ERR_NOMEM, "pth: out of memory");
    ln_status st = LN_OK;
    bool stop = false;
    while (st == LN_OK && !stop) st = step(&m, &stop, out);
    if (st == LN_OK) *used = m.pos;
    else *out = NULL;
    free(m.marks);
    free(m.stack);
    free(m.memo);
    return st;
}
