/* The data binding: datasets and loaders (core/include/lunet/data.h) as userdata.
 *
 *   core.data_image_folder(opts), core.data_cifar(opts), core.data_idx(opts),
 *   core.data_synthetic(opts) -> Dataset; methods size, classes, class_names,
 *   sample_shape, kind, get(i[, seed, epoch]), messages(), index_cache()
 *   core.data_loader(dataset, opts) -> Loader; methods start_epoch(e), next(),
 *   batches(), stats(), messages(), close() (also __close and __gc)
 *
 * Lua is 1-based: get(i) takes a 1-based index, and the labels and indices a loader
 * or get hands out are the core's 0-based values plus one, converted here in place
 * (the tensors are fresh and ours). Options tables are checked: an unknown key is an
 * error naming it. lua/lunet/data/init.lua builds the user-facing API on top.
 *
 * Userdata follow the liolib.c order: pushed empty first, then the resource is
 * acquired, so a failure in between leaks nothing; __gc and __close share one release
 * function. A loader's release stops and joins its worker threads. */
#include <string.h>
#include "lbind.h"
#include "lunet/data.h"

#define LB_DATASET_MT "lunet.Dataset"
#define LB_LOADER_MT "lunet.Loader"

typedef struct lb_dataset { ln_dataset *ds; } lb_dataset;
typedef struct lb_loader { ln_loader *ld; } lb_loader;

/* ------------------------------------------------------------ option readers */
/* Each reads field `key` of the options table at idx (absolute) when present. */
static bool opt_present(lua_State *L, int idx, const char *key) {
    if (lua_type(L, idx) != LUA_TTABLE) return false;
    if (lua_getfield(L, idx, key) == LUA_TNIL) {
        lua_pop(L, 1);
        return false;
    }
    return true; /* the value is left on the stack */
}

static lua_Integer opt_int(lua_State *L, int idx, const char *fn, const char *key, lua_Integer dflt) {
    if (!opt_present(L, idx, key)) return dflt;
    lua_Integer v = lb_int_arg(L, -1, fn, key);
    lua_pop(L, 1);
    return v;
}

static double opt_num(lua_State *L, int idx, const char *fn, const char *key, double dflt) {
    if (!opt_present(L, idx, key)) return dflt;
    double v = lb_num_arg(L, -1, fn, key);
    lua_pop(L, 1);
    return v;
}

static bool opt_bool(lua_State *L, int idx, const char *fn, const char *key, bool dflt) {
    if (!opt_present(L, idx, key)) return dflt;
    if (lua_type(L, -1) != LUA_TBOOLEAN)
        lb_error(L, "%s: option '%s' must be a boolean, got %s", fn, key, luaL_typename(L, -1));
    bool v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* A string option; the string stays valid while the options table holds it. */
static const char *opt_str(lua_State *L, int idx, const char *fn, const char *key, const char *dflt) {
    if (!opt_present(L, idx, key)) return dflt;
    if (lua_type(L, -1) != LUA_TSTRING)
        lb_error(L, "%s: option '%s' must be a string, got %s", fn, key, luaL_typename(L, -1));
    const char *v = lua_tostring(L, -1);
    lua_pop(L, 1);
    return v;
}

/* A list of exactly n numbers (or, when n == 3 and one_ok, a single number for all). */
static void opt_nums(lua_State *L, int idx, const char *fn, const char *key, int n, bool one_ok,
                     double *out) {
    if (!opt_present(L, idx, key)) return;
    if (one_ok && lua_type(L, -1) == LUA_TNUMBER) {
        for (int i = 0; i < n; i++) out[i] = lua_tonumber(L, -1);
        lua_pop(L, 1);
        return;
    }
    if (lua_type(L, -1) != LUA_TTABLE || (int)lua_rawlen(L, -1) != n)
        lb_error(L, "%s: option '%s' must be a list of %d numbers%s", fn, key, n,
                 one_ok ? " or one number" : "");
    for (int i = 0; i < n; i++) {
        if (lua_rawgeti(L, -1, i + 1) != LUA_TNUMBER)
            lb_error(L, "%s: option '%s' entry %d must be a number, got %s", fn, key, i + 1,
                     luaL_typename(L, -1));
        out[i] = lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static void opt_mean_std(lua_State *L, int idx, const char *fn, float *mean, float *std) {
    double m[3] = {mean[0], mean[1], mean[2]}, s[3] = {std[0], std[1], std[2]};
    opt_nums(L, idx, fn, "mean", 3, true, m);
    opt_nums(L, idx, fn, "std", 3, true, s);
    for (int i = 0; i < 3; i++) {
        mean[i] = (float)m[i];
        std[i] = (float)s[i];
    }
}

static ln_data_mode opt_mode(lua_State *L, int idx, const char *fn, ln_data_mode dflt) {
    const char *m = opt_str(L, idx, fn, "mode", NULL);
    if (!m) return dflt;
    if (strcmp(m, "train") == 0) return LN_DATA_TRAIN;
    if (strcmp(m, "eval") == 0) return LN_DATA_EVAL;
    return (ln_data_mode)lb_error(L, "%s: option 'mode' must be \"train\" or \"eval\", got \"%s\"", fn, m);
}

static int opt_count(lua_State *L, int idx, const char *fn, const char *key, lua_Integer dflt,
                     lua_Integer lo, lua_Integer hi) {
    lua_Integer v = opt_int(L, idx, fn, key, dflt);
    if (v < lo || v > hi)
        lb_error(L, "%s: option '%s' must be in %I..%I, got %I", fn, key, lo, hi, v);
    return (int)v;
}

/* ------------------------------------------------------------ datasets */
static lb_dataset *dataset_arg(lua_State *L, int idx, const char *fn) {
    lb_dataset *b = luaL_testudata(L, idx, LB_DATASET_MT);
    if (!b) {
        lb_error(L, "%s: expected a dataset, got %s", fn, luaL_typename(L, idx));
        return NULL;
    }
    if (!b->ds) lb_error(L, "%s: the dataset was released", fn);
    return b;
}

/* Pushes an empty dataset userdata and returns its slot. */
static ln_dataset **new_dataset(lua_State *L) {
    lb_dataset *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->ds = NULL;
    luaL_setmetatable(L, LB_DATASET_MT);
    return &b->ds;
}

static int l_image_folder(lua_State *L) {
    static const char *const keys[] = {"root", "split", "mode", "size", "resize", "scale", "ratio",
                                       "flip", "mean", "std", "dct_min", "cache_dir", NULL};
    const char *fn = "image_folder";
    lb_check_opts(L, 1, fn, keys);
    ln_folder_opts o;
    ln_folder_opts_default(&o);
    o.root = opt_str(L, 1, fn, "root", NULL);
    if (!o.root) return lb_error(L, "%s: option 'root' (the dataset folder) is required", fn);
    o.split = opt_str(L, 1, fn, "split", "train");
    o.mode = opt_mode(L, 1, fn, strcmp(o.split, "train") == 0 ? LN_DATA_TRAIN : LN_DATA_EVAL);
    o.image.size = opt_count(L, 1, fn, "size", o.image.size, 1, 8192);
    o.image.resize = opt_count(L, 1, fn, "resize", o.image.resize, 1, 16384);
    opt_nums(L, 1, fn, "scale", 2, false, o.image.scale);
    opt_nums(L, 1, fn, "ratio", 2, false, o.image.ratio);
    o.image.flip_p = opt_num(L, 1, fn, "flip", o.image.flip_p);
    o.image.dct_min = opt_num(L, 1, fn, "dct_min", o.image.dct_min);
    opt_mean_std(L, 1, fn, o.image.mean, o.image.std);
    o.cache_dir = opt_str(L, 1, fn, "cache_dir", NULL);
    ln_dataset **slot = new_dataset(L);
    if (ln_dataset_image_folder(lb_ctx(L), &o, slot) != LN_OK) return lb_core_error(L, fn);
    return 1;
}

/* mode / padding / flip / mean / std of the in-memory datasets over defaults in o. */
static void array_opts(lua_State *L, int idx, const char *fn, ln_array_opts *o) {
    o->mode = opt_mode(L, idx, fn, o->mode);
    o->padding = opt_count(L, idx, fn, "padding", o->padding, 0, 1024);
    o->flip_p = opt_num(L, idx, fn, "flip", o->flip_p);
    opt_mean_std(L, idx, fn, o->mean, o->std);
}

static int l_cifar(lua_State *L) {
    static const char *const keys[] = {"root", "version", "train", "mode", "padding", "flip",
                                       "mean", "std", NULL};
    const char *fn = "cifar";
    lb_check_opts(L, 1, fn, keys);
    const char *root = opt_str(L, 1, fn, "root", NULL);
    if (!root) return lb_error(L, "%s: option 'root' (the dataset folder) is required", fn);
    int version = (int)opt_int(L, 1, fn, "version", 10);
    if (version != 10 && version != 100)
        return lb_error(L, "%s: option 'version' must be 10 or 100, got %d", fn, version);
    bool train = opt_bool(L, 1, fn, "train", true);
    ln_array_opts o;
    ln_cifar_opts_default(version, train, &o);
    array_opts(L, 1, fn, &o);
    ln_dataset **slot = new_dataset(L);
    if (ln_dataset_cifar(lb_ctx(L), root, version, train, &o, slot) != LN_OK) return lb_core_error(L, fn);
    return 1;
}

static int l_idx(lua_State *L) {
    static const char *const keys[] = {"images", "labels", "mode", "padding", "flip", "mean", "std", NULL};
    const char *fn = "idx";
    lb_check_opts(L, 1, fn, keys);
    const char *images = opt_str(L, 1, fn, "images", NULL);
    const char *labels = opt_str(L, 1, fn, "labels", NULL);
    if (!images || !labels) return lb_error(L, "%s: options 'images' and 'labels' (IDX files) are required", fn);
    ln_array_opts o;
    ln_idx_opts_default(&o);
    array_opts(L, 1, fn, &o);
    ln_dataset **slot = new_dataset(L);
    if (ln_dataset_idx(lb_ctx(L), images, labels, &o, slot) != LN_OK) return lb_core_error(L, fn);
    return 1;
}

static int l_synthetic(lua_State *L) {
    static const char *const keys[] = {"shape", "classes", "size", "seed", NULL};
    const char *fn = "synthetic";
    lb_check_opts(L, 1, fn, keys);
    int64_t shape[LN_MAX_DIMS] = {3, 32, 32};
    int ndim = 3, next;
    if (opt_present(L, 1, "shape")) {
        ndim = lb_shape_arg(L, lua_gettop(L), fn, shape, &next);
        lua_pop(L, 1);
    }
    int classes = opt_count(L, 1, fn, "classes", 10, 1, INT32_MAX);
    lua_Integer size = opt_int(L, 1, fn, "size", 1000);
    lua_Integer seed = opt_int(L, 1, fn, "seed", 0);
    ln_dataset **slot = new_dataset(L);
    if (ln_dataset_synthetic(lb_ctx(L), ndim, shape, classes, size, (uint64_t)seed, slot) != LN_OK)
        return lb_core_error(L, fn);
    return 1;
}

static int ds_release(lua_State *L) {
    lb_dataset *b = luaL_checkudata(L, 1, LB_DATASET_MT);
    ln_dataset_release(b->ds); /* loaders hold their own reference */
    b->ds = NULL;
    return 0;
}

static int ds_size(lua_State *L) {
    lua_pushinteger(L, ln_dataset_size(dataset_arg(L, 1, "size")->ds));
    return 1;
}

static int ds_classes(lua_State *L) {
    lua_pushinteger(L, ln_dataset_classes(dataset_arg(L, 1, "classes")->ds));
    return 1;
}

static int ds_kind(lua_State *L) {
    lua_pushstring(L, ln_dataset_kind(dataset_arg(L, 1, "kind")->ds));
    return 1;
}

/* ds:class_names() -> {name1, name2, ...} (1-based, class c+1 is core class c) or nil */
static int ds_class_names(lua_State *L) {
    ln_dataset *ds = dataset_arg(L, 1, "class_names")->ds;
    int n = ln_dataset_classes(ds);
    if (!ln_dataset_class_name(ds, 0)) return 0;
    lua_createtable(L, n, 0);
    for (int c = 0; c < n; c++) {
        lua_pushstring(L, ln_dataset_class_name(ds, c));
        lua_rawseti(L, -2, c + 1);
    }
    return 1;
}

static int ds_sample_shape(lua_State *L) {
    int64_t shape[LN_MAX_DIMS];
    int nd = ln_dataset_sample_shape(dataset_arg(L, 1, "sample_shape")->ds, shape);
    lua_createtable(L, nd, 0);
    for (int i = 0; i < nd; i++) {
        lua_pushinteger(L, shape[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* Adds one to every entry of a fresh i64 tensor (0-based core values -> Lua's). */
static void to_one_based(ln_tensor *t) {
    int64_t *v = ln_tensor_data(t);
    for (int64_t i = 0; i < ln_tensor_numel(t); i++) v[i] += 1;
}

/* ds:get(i[, seed[, epoch]]) -> image tensor, 1-based label, converted */
static int ds_get(lua_State *L) {
    ln_dataset *ds = dataset_arg(L, 1, "get")->ds;
    int64_t i = lb_index0(L, 2, ln_dataset_size(ds), "get", "index");
    lua_Integer seed = lua_isnoneornil(L, 3) ? 0 : lb_int_arg(L, 3, "get", "seed");
    lua_Integer epoch = lua_isnoneornil(L, 4) ? 0 : lb_int_arg(L, 4, "get", "epoch");
    ln_tensor **slot = lb_new_tensor(L);
    int64_t label;
    bool converted;
    if (ln_dataset_get(lb_ctx(L), ds, i, (uint64_t)seed, epoch, slot, &label, &converted) != LN_OK)
        return lb_core_error(L, "get");
    lua_pushinteger(L, label + 1);
    lua_pushboolean(L, converted);
    return 3;
}

/* ds:describe(i) -> the path of sample i (1-based) or its description */
static int ds_describe(lua_State *L) {
    ln_dataset *ds = dataset_arg(L, 1, "describe")->ds;
    int64_t i = lb_index0(L, 2, ln_dataset_size(ds), "describe", "index");
    char buf[4096];
    ln_dataset_describe(ds, i, buf, sizeof buf);
    lua_pushstring(L, buf);
    return 1;
}

/* ds:messages() -> {msg, ...}: drains the dataset's log */
static int ds_messages(lua_State *L) {
    ln_dataset *ds = dataset_arg(L, 1, "messages")->ds;
    char buf[2048];
    lua_newtable(L);
    for (int i = 1; ln_dataset_pop_message(ds, buf, sizeof buf); i++) {
        lua_pushstring(L, buf);
        lua_rawseti(L, -2, i);
    }
    return 1;
}

/* ds:index_cache() -> path of the index cache file ("" if none), whether it was used */
static int ds_index_cache(lua_State *L) {
    char buf[4096];
    bool hit = ln_dataset_index_cached(dataset_arg(L, 1, "index_cache")->ds, buf, sizeof buf);
    lua_pushstring(L, buf);
    lua_pushboolean(L, hit);
    return 2;
}

/* ------------------------------------------------------------ loaders */
static lb_loader *loader_arg(lua_State *L, const char *fn) {
    lb_loader *b = luaL_testudata(L, 1, LB_LOADER_MT);
    if (!b) {
        lb_error(L, "%s: expected a loader, got %s", fn, luaL_typename(L, 1));
        return NULL;
    }
    if (!b->ld) lb_error(L, "%s: the loader is closed", fn);
    return b;
}

static int l_loader(lua_State *L) {
    static const char *const keys[] = {"batch_size", "shuffle", "drop_last", "workers", "prefetch",
                                       "seed", "device", NULL};
    const char *fn = "loader";
    ln_dataset *ds = dataset_arg(L, 1, fn)->ds;
    lb_check_opts(L, 2, fn, keys);
    ln_loader_opts o;
    ln_loader_opts_default(&o);
    o.batch_size = opt_int(L, 2, fn, "batch_size", o.batch_size);
    if (o.batch_size < 1) return lb_error(L, "%s: option 'batch_size' must be >= 1, got %I", fn,
                                          (lua_Integer)o.batch_size);
    o.shuffle = opt_bool(L, 2, fn, "shuffle", o.shuffle);
    o.drop_last = opt_bool(L, 2, fn, "drop_last", o.drop_last);
    o.workers = opt_count(L, 2, fn, "workers", o.workers, 0, 256);
    o.prefetch = opt_count(L, 2, fn, "prefetch", o.prefetch, 0, 64);
    o.seed = (uint64_t)opt_int(L, 2, fn, "seed", (lua_Integer)o.seed);
    if (opt_present(L, 2, "device")) {
        o.device = lb_device_arg(L, -1, fn);
        lua_pop(L, 1);
    }
    lb_loader *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->ld = NULL;
    luaL_setmetatable(L, LB_LOADER_MT);
    if (ln_loader_create(lb_ctx(L), ds, &o, &b->ld) != LN_OK) return lb_core_error(L, fn);
    return 1;
}

/* __gc, __close and close(): stops and joins the workers, frees the batches queued. */
static int ld_release(lua_State *L) {
    lb_loader *b = luaL_checkudata(L, 1, LB_LOADER_MT);
    ln_loader_destroy(b->ld);
    b->ld = NULL;
    return 0;
}

static int ld_start_epoch(lua_State *L) {
    lb_loader *b = loader_arg(L, "start_epoch");
    lua_Integer e = lb_int_arg(L, 2, "start_epoch", "epoch");
    if (ln_loader_start_epoch(lb_ctx(L), b->ld, e) != LN_OK) return lb_core_error(L, "start_epoch");
    return 0;
}

/* loader:next() -> images, labels (1-based), indices (1-based); nil at the end */
static int ld_next(lua_State *L) {
    lb_loader *b = loader_arg(L, "next");
    ln_tensor **im = lb_new_tensor(L), **lab = lb_new_tensor(L), **idx = lb_new_tensor(L);
    if (ln_loader_next(lb_ctx(L), b->ld, im, lab, idx) != LN_OK) return lb_core_error(L, "next");
    if (!*im) {
        lua_pushnil(L);
        return 1;
    }
    to_one_based(*lab);
    to_one_based(*idx);
    return 3;
}

static int ld_batches(lua_State *L) {
    lua_pushinteger(L, ln_loader_batches(loader_arg(L, "batches")->ld));
    return 1;
}

static void set_num(lua_State *L, const char *k, double v) {
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, int64_t v) {
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

/* loader:stats() -> {epoch, finished, batches, images, seconds, images_per_s,
 * wait_seconds, skipped, converted, bad_files} of the current or last epoch */
static int ld_stats(lua_State *L) {
    ln_loader_stats st;
    ln_loader_get_stats(loader_arg(L, "stats")->ld, &st);
    lua_createtable(L, 0, 10);
    set_int(L, "epoch", st.epoch);
    lua_pushboolean(L, st.finished);
    lua_setfield(L, -2, "finished");
    set_int(L, "batches", st.batches);
    set_int(L, "images", st.images);
    set_num(L, "seconds", st.seconds);
    set_num(L, "images_per_s", st.images_per_s);
    set_num(L, "wait_seconds", st.wait_seconds);
    set_int(L, "skipped", st.skipped);
    set_int(L, "converted", st.converted);
    set_int(L, "bad_files", st.bad_files);
    return 1;
}

static int ld_messages(lua_State *L) {
    lb_loader *b = loader_arg(L, "messages");
    char buf[2048];
    lua_newtable(L);
    for (int i = 1; ln_loader_pop_message(b->ld, buf, sizeof buf); i++) {
        lua_pushstring(L, buf);
        lua_rawseti(L, -2, i);
    }
    return 1;
}

static int ld_is_open(lua_State *L) {
    lb_loader *b = luaL_checkudata(L, 1, LB_LOADER_MT);
    lua_pushboolean(L, b->ld != NULL);
    return 1;
}

/* ------------------------------------------------------------ registration */
static void new_type(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction release,
                     bool closable) {
    luaL_newmetatable(L, name);
    lua_newtable(L);
    lb_setfuncs(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, release);
    lua_setfield(L, -2, "__gc");
    if (closable) {
        lua_pushcfunction(L, release);
        lua_setfield(L, -2, "__close");
    }
    lua_pop(L, 1);
}

void lb_open_data(lua_State *L) {
    static const luaL_Reg ds_methods[] = {
        {"size", ds_size}, {"classes", ds_classes}, {"kind", ds_kind},
        {"class_names", ds_class_names}, {"sample_shape", ds_sample_shape}, {"get", ds_get},
        {"describe", ds_describe}, {"messages", ds_messages}, {"index_cache", ds_index_cache},
        {"release", ds_release}, {NULL, NULL},
    };
    static const luaL_Reg ld_methods[] = {
        {"start_epoch", ld_start_epoch}, {"next", ld_next}, {"batches", ld_batches},
        {"stats", ld_stats}, {"messages", ld_messages}, {"close", ld_release},
        {"is_open", ld_is_open}, {NULL, NULL},
    };
    static const luaL_Reg funcs[] = {
        {"data_image_folder", l_image_folder}, {"data_cifar", l_cifar}, {"data_idx", l_idx},
        {"data_synthetic", l_synthetic}, {"data_loader", l_loader}, {NULL, NULL},
    };
    new_type(L, LB_DATASET_MT, ds_methods, ds_release, false);
    new_type(L, LB_LOADER_MT, ld_methods, ld_release, true);
    lb_setfuncs(L, funcs);
}
