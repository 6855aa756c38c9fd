/*
 * describe_check.c -- the built-in plugins' self-description (ABI 1.2), checked from C alone.
 *
 * A minimal host: it dlopen()s the built family libraries, checks every attribute list it passes to
 * create (model nodes and composites' create_layer alike) against the type's attr_specs as plugin.h
 * says the host does, then walks ResNet-18 and GoogLeNet at 224x224 using nothing but infer_shape and
 * describe (children through add_child), and compares every row's MACs, receptive field and jump, the
 * children of the first blocks, and the totals with what `ply summary` printed before #14 (when the
 * summary knew the blocks by type name):
 *
 *     ply summary resnet18  --num-classes 1000 --in-channels 3 --image-size 224
 *     ply summary googlenet --num-classes 1000 --in-channels 3 --image-size 224
 *
 * Build and run after `swift build` (no fixtures, no Swift):
 *
 *     cc -std=c11 -IInclude Tests/PluginDescribe/describe_check.c -ldl -lm -o /tmp/describe_check
 *     /tmp/describe_check .build/debug            # -v prints the trees
 *
 * Exit status 0 when everything matches.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ply/plugin.h"

static int failures = 0, verbose = 0;
static void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("FAIL: ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    failures++;
}

/* ---------------------------------------------------------------- host */

#define MAX_TYPES 64
static const ply_layer_type *types[MAX_TYPES];
static int n_types = 0;
static char last_error[512];

static const ply_layer_type *find_type(const char *name) {
    for (int i = 0; i < n_types; i++)
        if (strcmp(types[i]->name, name) == 0) return types[i];
    return NULL;
}

static void h_set_error(const ply_host *h, ply_status st, const char *msg) {
    (void)h; (void)st;
    snprintf(last_error, sizeof last_error, "%s", msg);
}
static void h_log(const ply_host *h, ply_log_level l, const char *m) { (void)h; (void)l; (void)m; }
static void *h_alloc(const ply_host *h, size_t n) {
    (void)h;
    void *p = NULL;
    return posix_memalign(&p, 64, n ? n : 1) == 0 ? p : NULL;
}
static void h_free(const ply_host *h, void *p) { (void)h; free(p); }
static void h_parallel_for(const ply_host *h, int64_t n, int64_t g, ply_parallel_fn fn, void *c) {
    (void)h; (void)g;
    if (n > 0) fn(c, 0, n);
}
static int32_t h_threads(const ply_host *h) { (void)h; return 1; }
static void h_fill_uniform(const ply_host *h, float *d, int64_t n, float lo, float hi) {
    (void)h;
    for (int64_t i = 0; i < n; i++) d[i] = lo + (hi - lo) * 0.5f;
}

static const ply_attr *find_attr(const ply_attrs *a, const char *name) {
    for (int32_t i = 0; a && i < a->count; i++)
        if (strcmp(a->items[i].name, name) == 0) return &a->items[i];
    return NULL;
}
static ply_status h_attr_int(const ply_host *h, const ply_attrs *a, const char *n, int64_t *o) {
    (void)h;
    const ply_attr *x = find_attr(a, n);
    if (!x) return PLY_ERR_NOT_FOUND;
    if (x->kind != PLY_ATTR_INT && x->kind != PLY_ATTR_BOOL) return PLY_ERR_INVALID_ARGUMENT;
    *o = x->v.i;
    return PLY_OK;
}
static ply_status h_attr_float(const ply_host *h, const ply_attrs *a, const char *n, double *o) {
    (void)h;
    const ply_attr *x = find_attr(a, n);
    if (!x) return PLY_ERR_NOT_FOUND;
    if (x->kind == PLY_ATTR_FLOAT) *o = x->v.f;
    else if (x->kind == PLY_ATTR_INT) *o = (double)x->v.i;
    else return PLY_ERR_INVALID_ARGUMENT;
    return PLY_OK;
}
static ply_status h_attr_bool(const ply_host *h, const ply_attrs *a, const char *n, int32_t *o) {
    (void)h;
    const ply_attr *x = find_attr(a, n);
    if (!x) return PLY_ERR_NOT_FOUND;
    if ((x->kind != PLY_ATTR_BOOL && x->kind != PLY_ATTR_INT) || (x->v.i != 0 && x->v.i != 1))
        return PLY_ERR_INVALID_ARGUMENT;
    *o = (int32_t)x->v.i;
    return PLY_OK;
}
static ply_status h_attr_string(const ply_host *h, const ply_attrs *a, const char *n, const char **o) {
    (void)h;
    const ply_attr *x = find_attr(a, n);
    if (!x) return PLY_ERR_NOT_FOUND;
    if (x->kind != PLY_ATTR_STRING) return PLY_ERR_INVALID_ARGUMENT;
    *o = x->v.s;
    return PLY_OK;
}
static ply_status h_attr_pair(const ply_host *h, const ply_attrs *a, const char *n, int64_t o[2]) {
    (void)h;
    const ply_attr *x = find_attr(a, n);
    if (!x) return PLY_ERR_NOT_FOUND;
    if (x->kind == PLY_ATTR_INT) o[0] = o[1] = x->v.i;
    else if (x->kind == PLY_ATTR_INTS && x->count == 2) { o[0] = x->v.ints[0]; o[1] = x->v.ints[1]; }
    else return PLY_ERR_INVALID_ARGUMENT;
    return PLY_OK;
}

/* plugin.h's schema rules: names known, kinds fitting, required ones present. */
static int fits(const ply_attr *a, const ply_attr_spec *s) {
    switch (s->kind) {
    case PLY_ATTR_INT: return a->kind == PLY_ATTR_INT || a->kind == PLY_ATTR_BOOL;
    case PLY_ATTR_FLOAT: return a->kind == PLY_ATTR_FLOAT || a->kind == PLY_ATTR_INT;
    case PLY_ATTR_BOOL: return a->kind == PLY_ATTR_BOOL || (a->kind == PLY_ATTR_INT && (a->v.i == 0 || a->v.i == 1));
    case PLY_ATTR_STRING: return a->kind == PLY_ATTR_STRING;
    case PLY_ATTR_INTS: return a->kind == PLY_ATTR_INTS || ((s->flags & PLY_ATTR_PAIR) && a->kind == PLY_ATTR_INT);
    case PLY_ATTR_FLOATS: return a->kind == PLY_ATTR_FLOATS || a->kind == PLY_ATTR_INTS;
    default: return 0;
    }
}

static void check_schema(const ply_layer_type *t, const ply_attrs *attrs) {
    if (!t->attr_specs) { fail("%s: no attr_specs", t->name); return; }
    for (int32_t i = 0; attrs && i < attrs->count; i++) {
        const ply_attr_spec *s = t->attr_specs;
        while (s->name && strcmp(s->name, attrs->items[i].name) != 0) s++;
        if (!s->name) fail("%s: attribute '%s' is not in its attr_specs", t->name, attrs->items[i].name);
        else if (!fits(&attrs->items[i], s)) fail("%s: attribute '%s' does not fit its spec's kind", t->name, s->name);
    }
    for (const ply_attr_spec *s = t->attr_specs; s->name; s++)
        if ((s->flags & PLY_ATTR_REQUIRED) && !find_attr(attrs, s->name))
            fail("%s: required attribute '%s' not given", t->name, s->name);
}

static ply_status h_create_layer(const ply_host *h, const char *name, const ply_attrs *attrs,
                                 const ply_layer_type **t_out, ply_layer **l_out) {
    const ply_layer_type *t = find_type(name);
    if (!t) return PLY_ERR_NOT_FOUND;
    check_schema(t, attrs);
    *t_out = t;
    return t->create(h, attrs, l_out);
}

static const ply_host host = {
    .struct_size = sizeof(ply_host), .abi_version = PLY_ABI_VERSION, .set_error = h_set_error, .log = h_log,
    .alloc = h_alloc, .free = h_free, .parallel_for = h_parallel_for, .thread_count = h_threads,
    .create_layer = h_create_layer, .attr_int = h_attr_int, .attr_float = h_attr_float, .attr_bool = h_attr_bool,
    .attr_string = h_attr_string, .attr_pair = h_attr_pair, .fill_uniform = h_fill_uniform,
};

static void load_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) { fail("cannot open %s", dir); return; }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "libply_", 7) != 0 || !strstr(e->d_name, ".so")) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!lib) { fail("dlopen %s: %s", path, dlerror()); continue; }
        ply_plugin_entry_fn entry;
        void *sym = dlsym(lib, PLY_PLUGIN_ENTRY_SYMBOL);
        memcpy(&entry, &sym, sizeof entry);
        const ply_plugin *p = entry ? entry(&host) : NULL;
        if (!p) { fail("%s: no plugin", path); continue; }
        for (int32_t i = 0; i < p->type_count && n_types < MAX_TYPES; i++) types[n_types++] = p->types[i];
    }
    closedir(d);
}

/* ------------------------------------------------------------ describe */

#define MAX_CHILDREN 128
typedef struct {
    char path[96];
    char type[32];
    ply_shape output;
    int64_t macs;
} child_row;

typedef struct {
    child_row rows[MAX_CHILDREN];
    int n;
    int64_t macs; /* children's MACs, all depths */
} collector;

typedef struct {
    collector *c;
    char prefix[sizeof ((child_row *)0)->path + 1];
} describe_ctx;

static ply_status describe(const ply_layer_type *t, ply_layer *l, int32_t n, const ply_shape *in, collector *c,
                           const char *prefix, ply_layer_info *info);

static ply_status add_child(ply_layer_info *info, const char *name, const ply_layer_type *t, ply_layer *child,
                            int32_t n, const ply_shape *in, const ply_shape *out) {
    describe_ctx *ctx = info->host_context;
    collector *c = ctx->c;
    if (c->n >= MAX_CHILDREN) return PLY_ERR_INTERNAL;
    child_row *r = &c->rows[c->n++];
    int len = snprintf(r->path, sizeof r->path, "%s%s", ctx->prefix, name);
    if (len < 0 || (size_t)len >= sizeof r->path) return PLY_ERR_INTERNAL;
    snprintf(r->type, sizeof r->type, "%s", t->name);
    r->output = *out;
    char prefix[sizeof r->path + 1];
    if (snprintf(prefix, sizeof prefix, "%s.", r->path) < 0) return PLY_ERR_INTERNAL;
    ply_layer_info ci;
    ply_status st = describe(t, child, n, in, c, prefix, &ci);
    r->macs = ci.macs;
    c->macs += ci.macs;
    return st;
}

static ply_status describe(const ply_layer_type *t, ply_layer *l, int32_t n, const ply_shape *in, collector *c,
                           const char *prefix, ply_layer_info *info) {
    describe_ctx ctx;
    ctx.c = c;
    snprintf(ctx.prefix, sizeof ctx.prefix, "%s", prefix);
    memset(info, 0, sizeof *info);
    info->struct_size = sizeof *info;
    info->abi_version = PLY_ABI_VERSION;
    info->host_context = &ctx;
    info->add_child = add_child;
    if (t->struct_size < offsetof(ply_layer_type, describe) + sizeof t->describe || !t->describe) return PLY_OK;
    return t->describe(l, n, in, info);
}

/* --------------------------------------------------------------- model */

typedef struct {
    const char *name, *type;
    ply_attr attrs[8];
    int n_attrs;
    int64_t macs; /* expected, from the pre-#14 summary */
    double rf, jump;
} node;

#define I(n_, x_) {.name = n_, .kind = PLY_ATTR_INT, .count = 1, .v.i = x_}
#define B(n_, x_) {.name = n_, .kind = PLY_ATTR_BOOL, .count = 1, .v.i = x_}
#define F(n_, x_) {.name = n_, .kind = PLY_ATTR_FLOAT, .count = 1, .v.f = x_}

static void shape_text(const ply_shape *s, char *buf, size_t n) {
    int k = snprintf(buf, n, "[");
    for (int i = 0; i < s->ndim; i++) k += snprintf(buf + k, n - (size_t)k, i ? ", %lld" : "%lld", (long long)s->dims[i]);
    snprintf(buf + k, n - (size_t)k, "]");
}

/* Expected children of one node: "path type shape macs" lines. */
typedef struct {
    const char *node;
    const char *const *lines;
} expected_children;

static void run_model(const char *model, const node *nodes, int count, int64_t total_macs,
                      const expected_children *children, int n_children) {
    ply_shape x = ply_shape_make(4, 1, 3, 224, 224);
    double rf = 1, jump = 1, plane[2] = {224, 224};
    int64_t total = 0;
    for (int i = 0; i < count; i++) {
        const node *nd = &nodes[i];
        const ply_layer_type *t = find_type(nd->type);
        if (!t) { fail("%s: no type %s", model, nd->type); return; }
        ply_attrs attrs = {sizeof(ply_attrs), PLY_ABI_VERSION, nd->n_attrs, 0, nd->attrs};
        check_schema(t, &attrs);
        ply_layer *l = NULL;
        if (t->create(&host, &attrs, &l) != PLY_OK) { fail("%s %s: create: %s", model, nd->name, last_error); return; }
        ply_shape out;
        if (t->infer_shape(l, 1, &x, &out) != PLY_OK) { fail("%s %s: infer_shape: %s", model, nd->name, last_error); return; }
        static collector c;
        memset(&c, 0, sizeof c);
        ply_layer_info info;
        if (describe(t, l, 1, &x, &c, "", &info) != PLY_OK) { fail("%s %s: describe: %s", model, nd->name, last_error); return; }
        int64_t macs = info.macs + c.macs;
        double k = 1, s = 1; /* square everywhere in these models: check H, and W equal to it */
        if (info.window == PLY_WINDOW_SPATIAL) {
            k = info.kernel[0]; s = info.stride[0];
            if (info.kernel[1] != k || info.stride[1] != s) fail("%s %s: non-square window", model, nd->name);
        } else if (info.window == PLY_WINDOW_GLOBAL) {
            k = s = plane[0];
        }
        rf += (k - 1) * jump;
        jump *= s;
        if (out.ndim == 4) { plane[0] = (double)out.dims[2]; plane[1] = (double)out.dims[3]; }
        else if (info.window == PLY_WINDOW_GLOBAL) plane[0] = plane[1] = 1;
        total += macs;
        char sh[64];
        shape_text(&out, sh, sizeof sh);
        if (verbose) printf("%-12s %-20s %-20s %13lld  rf %g  jump %g\n", nd->name, nd->type, sh, (long long)macs, rf, jump);
        if (macs != nd->macs) fail("%s %s: MACs %lld, summary %lld", model, nd->name, (long long)macs, (long long)nd->macs);
        if (fabs(rf - nd->rf) > 1e-9 || fabs(jump - nd->jump) > 1e-9)
            fail("%s %s: rf %g jump %g, summary %g / %g", model, nd->name, rf, jump, nd->rf, nd->jump);
        for (int j = 0; j < c.n; j++) {
            shape_text(&c.rows[j].output, sh, sizeof sh);
            if (verbose) printf("    %-28s %-20s %-20s %13lld\n", c.rows[j].path, c.rows[j].type, sh, (long long)c.rows[j].macs);
        }
        for (int e = 0; e < n_children; e++) {
            if (strcmp(children[e].node, nd->name) != 0) continue;
            int j = 0;
            for (; children[e].lines[j]; j++) {
                char got[256];
                if (j >= c.n) { fail("%s %s: child %d missing (want %s)", model, nd->name, j, children[e].lines[j]); break; }
                shape_text(&c.rows[j].output, sh, sizeof sh);
                snprintf(got, sizeof got, "%s %s %s %lld", c.rows[j].path, c.rows[j].type, sh, (long long)c.rows[j].macs);
                if (strcmp(got, children[e].lines[j]) != 0)
                    fail("%s %s: child %d is '%s', want '%s'", model, nd->name, j, got, children[e].lines[j]);
            }
            if (j < c.n && !children[e].lines[j]) fail("%s %s: %d children, want %d", model, nd->name, c.n, j);
        }
        t->destroy(l);
        x = out;
    }
    if (total != total_macs) fail("%s: total MACs %lld, summary %lld", model, (long long)total, (long long)total_macs);
    printf("%s: %d rows, %lld MACs checked\n", model, count, (long long)total);
}

/* ResNet-18 at 224, rows from `ply summary resnet18 --num-classes 1000 --in-channels 3 --image-size 224`. */
#define BASIC(nm, in, pl, st, macs_, rf_, jump_) \
    {nm, "residual_basic", {I("inplanes", in), I("planes", pl), I("stride", st)}, 3, macs_, rf_, jump_}
static const node resnet18[] = {
    {"conv1", "conv2d", {I("in_channels", 3), I("out_channels", 64), I("kernel_size", 7), I("stride", 2), I("padding", 3),
                         B("bias", 0)}, 6, 118013952, 7, 2},
    {"bn1", "batchnorm2d", {I("num_features", 64)}, 1, 0, 7, 2},
    {"relu", "relu", {{0}}, 0, 0, 7, 2},
    {"maxpool", "maxpool2d", {I("kernel_size", 3), I("stride", 2), I("padding", 1)}, 3, 0, 11, 4},
    BASIC("layer1.0", 64, 64, 1, 231211008, 27, 4),
    BASIC("layer1.1", 64, 64, 1, 231211008, 43, 4),
    BASIC("layer2.0", 64, 128, 2, 179830784, 67, 8),
    BASIC("layer2.1", 128, 128, 1, 231211008, 99, 8),
    BASIC("layer3.0", 128, 256, 2, 179830784, 147, 16),
    BASIC("layer3.1", 256, 256, 1, 231211008, 211, 16),
    BASIC("layer4.0", 256, 512, 2, 179830784, 307, 32),
    BASIC("layer4.1", 512, 512, 1, 231211008, 435, 32),
    {"avgpool", "adaptive_avgpool2d", {I("output_size", 1)}, 1, 0, 627, 224},
    {"flatten", "flatten", {I("start_dim", 1)}, 1, 0, 627, 224},
    {"fc", "linear", {I("in_features", 512), I("out_features", 1000)}, 2, 512000, 627, 224},
};
static const char *const layer2_0[] = {
    "conv1 conv2d [1, 128, 28, 28] 57802752",       "bn1 batchnorm2d [1, 128, 28, 28] 0",
    "relu relu [1, 128, 28, 28] 0",                 "conv2 conv2d [1, 128, 28, 28] 115605504",
    "bn2 batchnorm2d [1, 128, 28, 28] 0",           "downsample.0 conv2d [1, 128, 28, 28] 6422528",
    "downsample.1 batchnorm2d [1, 128, 28, 28] 0",  NULL,
};
static const char *const layer1_0[] = {
    "conv1 conv2d [1, 64, 56, 56] 115605504", "bn1 batchnorm2d [1, 64, 56, 56] 0", "relu relu [1, 64, 56, 56] 0",
    "conv2 conv2d [1, 64, 56, 56] 115605504", "bn2 batchnorm2d [1, 64, 56, 56] 0", NULL,
};

/* GoogLeNet at 224, rows from `ply summary googlenet --num-classes 1000 --in-channels 3 --image-size 224`. */
#define INC(nm, in, a, b, c, d, e, f, macs_, rf_, jump_)                                                        \
    {nm, "inception_googlenet", {I("in_channels", in), I("ch1x1", a), I("ch3x3red", b), I("ch3x3", c),         \
                                 I("ch5x5red", d), I("ch5x5", e), I("pool_proj", f)}, 7, macs_, rf_, jump_}
#define MAXPOOL(nm, k, rf_, jump_) \
    {nm, "maxpool2d", {I("kernel_size", k), I("stride", 2), B("ceil_mode", 1)}, 3, 0, rf_, jump_}
static const node googlenet[] = {
    {"conv1", "basic_conv2d", {I("in_channels", 3), I("out_channels", 64), I("kernel_size", 7), I("stride", 2),
                               I("padding", 3)}, 5, 118013952, 7, 2},
    MAXPOOL("maxpool1", 3, 11, 4),
    {"conv2", "basic_conv2d", {I("in_channels", 64), I("out_channels", 64), I("kernel_size", 1)}, 3, 12845056, 11, 4},
    {"conv3", "basic_conv2d", {I("in_channels", 64), I("out_channels", 192), I("kernel_size", 3), I("padding", 1)}, 4,
     346816512, 19, 4},
    MAXPOOL("maxpool2", 3, 27, 8),
    INC("inception3a", 192, 64, 96, 128, 16, 32, 32, 121626624, 43, 8),
    INC("inception3b", 256, 128, 128, 192, 32, 96, 64, 265732096, 59, 8),
    MAXPOOL("maxpool3", 3, 75, 16),
    INC("inception4a", 480, 192, 96, 208, 16, 48, 64, 71199744, 107, 16),
    INC("inception4b", 512, 160, 112, 224, 24, 64, 64, 83091456, 139, 16),
    INC("inception4c", 512, 128, 128, 256, 24, 64, 64, 95033344, 171, 16),
    INC("inception4d", 512, 112, 144, 288, 32, 64, 64, 112093184, 203, 16),
    INC("inception4e", 528, 256, 160, 320, 32, 128, 128, 157151232, 235, 16),
    MAXPOOL("maxpool4", 2, 251, 32),
    INC("inception5a", 832, 256, 160, 320, 32, 128, 128, 47867904, 315, 32),
    INC("inception5b", 832, 384, 192, 384, 48, 128, 128, 65881088, 379, 32),
    {"avgpool", "adaptive_avgpool2d", {I("output_size", 1)}, 1, 0, 571, 224},
    {"flatten", "flatten", {{0}}, 0, 0, 571, 224},
    {"dropout", "dropout", {F("p", 0.2)}, 1, 0, 571, 224},
    {"fc", "linear", {I("in_features", 1024), I("out_features", 1000)}, 2, 1024000, 571, 224},
};
/* torchvision's Inception module names; branchN.M are BasicConv2d with conv and bn inside. */
static const char *const inception3a[] = {
    "branch1 basic_conv2d [1, 64, 28, 28] 0",       "branch1.conv conv2d [1, 64, 28, 28] 9633792",
    "branch1.bn batchnorm2d [1, 64, 28, 28] 0",     "branch2.0 basic_conv2d [1, 96, 28, 28] 0",
    "branch2.0.conv conv2d [1, 96, 28, 28] 14450688", "branch2.0.bn batchnorm2d [1, 96, 28, 28] 0",
    "branch2.1 basic_conv2d [1, 128, 28, 28] 0",    "branch2.1.conv conv2d [1, 128, 28, 28] 86704128",
    "branch2.1.bn batchnorm2d [1, 128, 28, 28] 0",  "branch3.0 basic_conv2d [1, 16, 28, 28] 0",
    "branch3.0.conv conv2d [1, 16, 28, 28] 2408448", "branch3.0.bn batchnorm2d [1, 16, 28, 28] 0",
    "branch3.1 basic_conv2d [1, 32, 28, 28] 0",     "branch3.1.conv conv2d [1, 32, 28, 28] 3612672",
    "branch3.1.bn batchnorm2d [1, 32, 28, 28] 0",   "branch4.0 maxpool2d [1, 192, 28, 28] 0",
    "branch4.1 basic_conv2d [1, 32, 28, 28] 0",     "branch4.1.conv conv2d [1, 32, 28, 28] 4816896",
    "branch4.1.bn batchnorm2d [1, 32, 28, 28] 0",   NULL,
};

int main(int argc, char **argv) {
    const char *dir = ".build/debug";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0) verbose = 1;
        else dir = argv[i];
    }
    load_dir(dir);
    printf("%d layer types loaded from %s\n", n_types, dir);
    for (int i = 0; i < n_types; i++) {
        if (types[i]->struct_size < offsetof(ply_layer_type, attr_specs) + sizeof types[i]->attr_specs ||
            !types[i]->attr_specs)
            fail("%s: no attr_specs", types[i]->name);
        if (types[i]->struct_size < offsetof(ply_layer_type, inputs_doc) + sizeof types[i]->inputs_doc ||
            !types[i]->inputs_doc)
            fail("%s: no inputs_doc", types[i]->name);
    }
    const expected_children rc[] = {{"layer1.0", layer1_0}, {"layer2.0", layer2_0}};
    run_model("resnet18", resnet18, (int)(sizeof resnet18 / sizeof resnet18[0]), 1814073344, rc, 2);
    const expected_children gc[] = {{"inception3a", inception3a}};
    int64_t g_total = 0;
    for (size_t i = 0; i < sizeof googlenet / sizeof googlenet[0]; i++) g_total += googlenet[i].macs;
    run_model("googlenet", googlenet, (int)(sizeof googlenet / sizeof googlenet[0]), g_total, gc, 1);
    printf(failures ? "%d failure(s)\n" : "all describe checks passed\n", failures);
    return failures ? 1 : 0;
}
