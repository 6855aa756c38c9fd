/*
 * Test fixture for ABI 1.7's blocked channel layout (ply_layout, eval_layouts, forward_layout):
 * element-wise layers on 4-D tensors that read and write NCHW16C, so that the host's plan can be
 * checked without any real kernel. Every one of them verifies that the padding lanes of a blocked
 * input are 0 (PLY_ERR_INTERNAL otherwise), and writes its own padding lanes as 0.
 *
 *   blk_start   y = 2 x + 0.5; reads NCHW only, writes NCHW or NCHW16C (starts a blocked run)
 *   blk_mid     y = x + 1;     reads and writes either
 *   blk_end     y = x - 0.25;  reads either, writes NCHW only (ends a run)
 *   blk_add     y = a + b;     two inputs, reads and writes either
 *   blk_odd     y = x;         reads and writes either, but its eval_layouts leaves NCHW out of
 *                              the output set when its attribute `bad` is 1 (the host refuses it)
 *   blk_half    a type with eval_layouts and no forward_layout, in the library built with
 *               -DBLK_HALF only (the host refuses that library, naming the type)
 *
 * Built with -DBLK_BAD_PAD, blk_mid writes one padding lane per image as 1 instead of 0 (for
 * ply-plugin-check's layout check).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <ply/plugin.h>

typedef struct {
    const ply_host *host;
    int kind;  /* 0 start, 1 mid, 2 end, 3 add, 4 odd */
    int64_t bad;
} blk_layer;

static const ply_attr_spec no_specs[] = {{NULL, 0, 0, NULL, NULL}};
static const ply_attr_spec odd_specs[] = {
    {"bad", PLY_ATTR_INT, 0, "0", "1: eval_layouts leaves NCHW out of the output set"},
    {NULL, 0, 0, NULL, NULL},
};

static ply_status make(const ply_host *host, const ply_attrs *attrs, int kind, ply_layer **out) {
    int64_t bad = 0;
    if (kind == 4) {
        ply_status st = host->attr_int(host, attrs, "bad", &bad);
        if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    }
    blk_layer *L = host->alloc(host, sizeof *L);
    if (!L) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "blk: out of memory");
    L->host = host;
    L->kind = kind;
    L->bad = bad;
    *out = (ply_layer *)L;
    return PLY_OK;
}
static ply_status start_create(const ply_host *h, const ply_attrs *a, ply_layer **o) { return make(h, a, 0, o); }
static ply_status mid_create(const ply_host *h, const ply_attrs *a, ply_layer **o) { return make(h, a, 1, o); }
static ply_status end_create(const ply_host *h, const ply_attrs *a, ply_layer **o) { return make(h, a, 2, o); }
static ply_status add_create(const ply_host *h, const ply_attrs *a, ply_layer **o) { return make(h, a, 3, o); }
static ply_status odd_create(const ply_host *h, const ply_attrs *a, ply_layer **o) { return make(h, a, 4, o); }

static void blk_destroy(ply_layer *self) {
    if (self) ((blk_layer *)self)->host->free(((blk_layer *)self)->host, self);
}

static ply_status blk_infer(ply_layer *self, int32_t n, const ply_shape *in, ply_shape *out) {
    blk_layer *L = (blk_layer *)self;
    if (n == 2 && memcmp(&in[0], &in[1], sizeof in[0]) != 0)
        return ply_errorf(L->host, PLY_ERR_SHAPE, "blk_add: the two inputs differ in shape");
    *out = in[0];
    return PLY_OK;
}

static float apply(int kind, float a, float b) {
    switch (kind) {
    case 0: return 2 * a + 0.5f;
    case 1: return a + 1;
    case 2: return a - 0.25f;
    case 3: return a + b;
    default: return a;
    }
}

/* Offset of element (n, c, p) of a (N, C, H*W = P) tensor in `layout`. */
static size_t at(int32_t layout, int64_t C, int64_t P, int64_t n, int64_t c, int64_t p) {
    if (layout == PLY_LAYOUT_NCHW) return (size_t)((n * C + c) * P + p);
    const int64_t blocks = (C + 15) / 16;
    return (size_t)(((n * blocks + c / 16) * P + p) * 16 + c % 16);
}

static ply_status run(blk_layer *L, int32_t n_in, const ply_tensor *in, const int32_t *in_layouts, ply_tensor *out,
                      int32_t out_layout) {
    const ply_shape *s = &out->shape;
    int64_t N = 1, C = 1, P = 1;
    if (s->ndim == 4) {
        N = s->dims[0], C = s->dims[1], P = s->dims[2] * s->dims[3];
    } else {
        for (int32_t d = 0; d < s->ndim; d++) P *= s->dims[d];
    }
    const int64_t Cp = (C + 15) / 16 * 16;
    for (int32_t i = 0; i < n_in; i++) {
        if (in_layouts[i] != PLY_LAYOUT_NCHW16C) continue;
        const float *x = in[i].data;
        for (int64_t b = 0; b < N; b++)
            for (int64_t c = C; c < Cp; c++)
                for (int64_t p = 0; p < P; p++)
                    if (x[at(PLY_LAYOUT_NCHW16C, C, P, b, c, p)] != 0)
                        return ply_errorf(L->host, PLY_ERR_INTERNAL, "blk: input %d's padding lane %lld is not 0", (int)i,
                                          (long long)c);
    }
    float *y = out->data;
    for (int64_t b = 0; b < N; b++)
        for (int64_t c = 0; c < Cp; c++)
            for (int64_t p = 0; p < P; p++) {
                if (c >= C) {
#ifdef BLK_BAD_PAD
                    /* ply-plugin-check's layout check must catch it: blk_mid writes a padding lane as 1 */
                    if (out_layout == PLY_LAYOUT_NCHW16C)
                        y[at(out_layout, C, P, b, c, p)] = L->kind == 1 && c == C && p == 0 ? 1.0f : 0.0f;
#else
                    if (out_layout == PLY_LAYOUT_NCHW16C) y[at(out_layout, C, P, b, c, p)] = 0;
#endif
                    continue;
                }
                const float *x0 = in[0].data;
                float a = x0[at(in_layouts[0], C, P, b, c, p)], v = 0;
                if (n_in == 2) v = ((const float *)in[1].data)[at(in_layouts[1], C, P, b, c, p)];
                y[at(out_layout, C, P, b, c, p)] = apply(L->kind, a, v);
            }
    return PLY_OK;
}

static ply_status blk_forward(ply_layer *self, int32_t n, const ply_tensor *in, ply_tensor *out) {
    const int32_t nchw[2] = {PLY_LAYOUT_NCHW, PLY_LAYOUT_NCHW};
    return run((blk_layer *)self, n, in, nchw, out, PLY_LAYOUT_NCHW);
}

static ply_status blk_forward_layout(ply_layer *self, int32_t n, const ply_tensor *in, const int32_t *in_layouts,
                                     ply_tensor *out, int32_t out_layout) {
    blk_layer *L = (blk_layer *)self;
    /* the host keeps to what eval_layouts allowed */
    if ((L->kind == 0 && in_layouts[0] != PLY_LAYOUT_NCHW) || (L->kind == 2 && out_layout != PLY_LAYOUT_NCHW))
        return ply_errorf(L->host, PLY_ERR_INTERNAL, "blk: called with layouts eval_layouts did not allow");
    return run(L, n, in, in_layouts, out, out_layout);
}

static ply_status blk_layouts(ply_layer *self, int32_t n, const ply_shape *in, uint32_t *accepts, uint32_t *produces) {
    blk_layer *L = (blk_layer *)self;
    const uint32_t both = PLY_LAYOUT_BIT(PLY_LAYOUT_NCHW) | PLY_LAYOUT_BIT(PLY_LAYOUT_NCHW16C);
    const uint32_t nchw = PLY_LAYOUT_BIT(PLY_LAYOUT_NCHW);
    const int four = in[0].ndim == 4; /* blocked only for 4-D values */
    for (int32_t i = 0; i < n; i++) accepts[i] = L->kind == 0 || !four ? nchw : both;
    *produces = L->kind == 2 || !four ? nchw : both;
    if (L->kind == 4 && L->bad) *produces = PLY_LAYOUT_BIT(PLY_LAYOUT_NCHW16C);
    return PLY_OK;
}

#define BLK_TYPE(var, nm, doc_, creator, inputs, specs)                                                              \
    static const ply_layer_type var = {                                                                             \
        .struct_size = sizeof(ply_layer_type),                                                                      \
        .abi_version = PLY_ABI_VERSION,                                                                             \
        .name = nm,                                                                                                 \
        .doc = doc_,                                                                                                \
        .min_inputs = inputs,                                                                                       \
        .max_inputs = inputs,                                                                                       \
        .create = creator,                                                                                          \
        .destroy = blk_destroy,                                                                                     \
        .infer_shape = blk_infer,                                                                                   \
        .forward = blk_forward,                                                                                     \
        .attr_specs = specs,                                                                                        \
        .eval_layouts = blk_layouts,                                                                                \
        .forward_layout = blk_forward_layout,                                                                       \
    };
BLK_TYPE(start_type, "blk_start", "y = 2x + 0.5; reads NCHW, writes NCHW16C too", start_create, 1, no_specs)
BLK_TYPE(mid_type, "blk_mid", "y = x + 1; either layout", mid_create, 1, no_specs)
BLK_TYPE(end_type, "blk_end", "y = x - 0.25; reads either, writes NCHW", end_create, 1, no_specs)
BLK_TYPE(add_type, "blk_add", "y = a + b; either layout", add_create, 2, no_specs)
BLK_TYPE(odd_type, "blk_odd", "identity; `bad` leaves NCHW out of its output set", odd_create, 1, odd_specs)

#ifdef BLK_HALF
static const ply_layer_type half_type = {
    .struct_size = sizeof(ply_layer_type),
    .abi_version = PLY_ABI_VERSION,
    .name = "blk_half",
    .doc = "eval_layouts without forward_layout",
    .min_inputs = 1,
    .max_inputs = 1,
    .create = mid_create,
    .destroy = blk_destroy,
    .infer_shape = blk_infer,
    .forward = blk_forward,
    .eval_layouts = blk_layouts,
};
static const ply_layer_type *const types[] = {&start_type, &mid_type, &end_type, &add_type, &odd_type, &half_type};
#define TYPE_COUNT 6
#else
static const ply_layer_type *const types[] = {&start_type, &mid_type, &end_type, &add_type, &odd_type};
#define TYPE_COUNT 5
#endif

static const ply_plugin plugin = {
    sizeof(ply_plugin), PLY_ABI_VERSION, "test.blocked", "1.0.0", TYPE_COUNT, 0, types,
};

PLY_EXPORT const ply_plugin *ply_plugin_entry(const ply_host *host) {
    if (PLY_ABI_MAJOR_OF(host->abi_version) != PLY_ABI_VERSION_MAJOR) {
        host->set_error(host, PLY_ERR_ABI, "test.blocked needs Ply ABI 1.x");
        return NULL;
    }
    return &plugin;
}
