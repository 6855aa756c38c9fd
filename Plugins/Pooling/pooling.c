/*
 * Pooling family: maxpool2d, avgpool2d, adaptive_avgpool2d. No parameters,
 * one input of shape (N, C, H, W) or (C, H, W); every (n, c) plane is pooled
 * on its own, so the kernels work on `planes` = N*C independent H x W images
 * and parallelise over them.
 *
 * This file holds the layers: attributes, output sizes (PyTorch's, ceil_mode
 * included), checks and the vtable. The kernels and their parallel driver are
 * pooling_planes.c's (portable) and pooling_x86.c's (AVX2, AVX-512).
 */
#include "plugin_support.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ply/plugin.h"
#include "pooling.h"

// ----------------------------------------------------------------------------
// vtable

static const char *kind_name(pool_kind k) {
    return k == POOL_MAX ? "maxpool2d" : k == POOL_AVG ? "avgpool2d" : "adaptive_avgpool2d";
}

// Read a pair attribute; absent (or an empty list, PyTorch's "default") keeps *out.
static ply_status read_pair(const ply_host *host, const ply_attrs *attrs, const char *name, int64_t out[2]) {
    const ply_attr *a = ply_find_attr(attrs, name);
    if (a && a->kind == PLY_ATTR_INTS && a->count == 0) return PLY_OK;
    ply_status st = host->attr_pair(host, attrs, name, out);
    return st == PLY_ERR_NOT_FOUND ? PLY_OK : st;
}

static ply_status read_flag(const ply_host *host, const ply_attrs *attrs, const char *name, int32_t *out) {
    ply_status st = host->attr_bool(host, attrs, name, out);
    return st == PLY_ERR_NOT_FOUND ? PLY_OK : st;
}

static ply_status create_window_pool(const ply_host *host, const ply_attrs *attrs, ply_layer *self) {
    const char *nm = kind_name(self->kind);
    int64_t k[2], s[2], p[2] = {0, 0};
    ply_status st = host->attr_pair(host, attrs, "kernel_size", k);
    if (st == PLY_ERR_NOT_FOUND) return ply_errorf(host, PLY_ERR_NOT_FOUND, "%s: missing attribute 'kernel_size'", nm);
    if (st != PLY_OK) return st;
    s[0] = k[0]; s[1] = k[1];
    if ((st = read_pair(host, attrs, "stride", s)) != PLY_OK) return st;
    if ((st = read_pair(host, attrs, "padding", p)) != PLY_OK) return st;
    if ((st = read_flag(host, attrs, "ceil_mode", &self->ceil_mode)) != PLY_OK) return st;
    if (k[0] <= 0 || k[1] <= 0)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "%s: kernel_size must be positive (got %lld x %lld)", nm,
                          (long long)k[0], (long long)k[1]);
    if (s[0] <= 0 || s[1] <= 0)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "%s: stride must be positive (got %lld x %lld)", nm,
                          (long long)s[0], (long long)s[1]);
    if (p[0] < 0 || p[1] < 0)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "%s: padding must be non-negative (got %lld x %lld)", nm,
                          (long long)p[0], (long long)p[1]);
    if (p[0] > k[0] / 2 || p[1] > k[1] / 2)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                          "%s: padding must be at most half the kernel size (got padding %lld x %lld, kernel_size "
                          "%lld x %lld)",
                          nm, (long long)p[0], (long long)p[1], (long long)k[0], (long long)k[1]);
    if (self->kind == POOL_MAX) {
        int64_t d[2] = {1, 1};
        if ((st = read_pair(host, attrs, "dilation", d)) != PLY_OK) return st;
        if (d[0] != 1 || d[1] != 1)
            return ply_errorf(host, PLY_ERR_UNSUPPORTED, "maxpool2d: only dilation 1 is supported (got %lld x %lld)",
                              (long long)d[0], (long long)d[1]);
        int32_t ri = 0;
        if ((st = read_flag(host, attrs, "return_indices", &ri)) != PLY_OK) return st;
        if (ri) return ply_errorf(host, PLY_ERR_UNSUPPORTED, "maxpool2d: return_indices=true is not supported");
    } else {
        self->count_include_pad = 1;
        if ((st = read_flag(host, attrs, "count_include_pad", &self->count_include_pad)) != PLY_OK) return st;
        const ply_attr *dv = ply_find_attr(attrs, "divisor_override");
        if (dv && dv->kind != PLY_ATTR_STRING) // a string would be a serialised "None"
            return ply_errorf(host, PLY_ERR_UNSUPPORTED, "avgpool2d: divisor_override is not supported");
    }
    self->kh = k[0]; self->kw = k[1];
    self->sh = s[0]; self->sw = s[1];
    self->ph = p[0]; self->pw = p[1];
    return PLY_OK;
}

static ply_status create_kind(const ply_host *host, const ply_attrs *attrs, ply_layer **out, pool_kind kind) {
    ply_layer *self = host->alloc(host, sizeof *self);
    if (!self) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "%s: out of memory", kind_name(kind));
    memset(self, 0, sizeof *self);
    self->host = host;
    self->kind = kind;
    self->training = 1;
    ply_status st;
    if (kind == POOL_ADAPTIVE_AVG) {
        int64_t os[2];
        st = host->attr_pair(host, attrs, "output_size", os);
        if (st == PLY_ERR_NOT_FOUND)
            st = ply_errorf(host, PLY_ERR_NOT_FOUND, "adaptive_avgpool2d: missing attribute 'output_size'");
        else if (st == PLY_OK && (os[0] <= 0 || os[1] <= 0))
            st = ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                            "adaptive_avgpool2d: output_size must be positive (got %lld x %lld)", (long long)os[0],
                            (long long)os[1]);
        self->oh = os[0];
        self->ow = os[1];
    } else {
        st = create_window_pool(host, attrs, self);
    }
    if (st != PLY_OK) {
        host->free(host, self);
        return st;
    }
    *out = self;
    return PLY_OK;
}

#define DEFINE_CREATE(fn, kind) \
    static ply_status fn(const ply_host *host, const ply_attrs *attrs, ply_layer **out) { \
        return create_kind(host, attrs, out, kind); \
    }
DEFINE_CREATE(maxpool2d_create, POOL_MAX)
DEFINE_CREATE(avgpool2d_create, POOL_AVG)
DEFINE_CREATE(adaptive_avgpool2d_create, POOL_ADAPTIVE_AVG)

static void pool_destroy(ply_layer *self) {
    if (!self) return;
    self->host->free(self->host, self->argmax);
    self->host->free(self->host, self);
}

static void pool_set_training(ply_layer *self, int32_t training) { self->training = training != 0; }

// Check the input shape and compute the geometry of the call.
static ply_status pool_geometry(const ply_layer *self, const ply_shape *s, pool_geom *g) {
    const char *nm = kind_name(self->kind);
    if (s->ndim != 3 && s->ndim != 4)
        return ply_errorf(self->host, PLY_ERR_SHAPE, "%s: input must be 3-d (C, H, W) or 4-d (N, C, H, W) (got %d-d)",
                          nm, s->ndim);
    static const char *const dim_names[] = {"N", "C", "H", "W"};
    for (int32_t i = s->ndim == 4 ? 1 : 0; i < s->ndim; i++) {
        if (s->dims[i] <= 0)
            return ply_errorf(self->host, PLY_ERR_SHAPE, "%s: input 0 dimension %d (%s) must be non-zero (got %lld)", nm,
                              i, dim_names[i + 4 - s->ndim], (long long)s->dims[i]);
    }
    int32_t hd = s->ndim - 2, wd = s->ndim - 1;
    g->H = s->dims[hd];
    g->W = s->dims[wd];
    g->planes = s->dims[0] * (s->ndim == 4 ? s->dims[1] : 1);
    if (self->kind == POOL_ADAPTIVE_AVG) {
        g->OH = self->oh;
        g->OW = self->ow;
        return PLY_OK;
    }
    int64_t in[2] = {g->H, g->W}, k[2] = {self->kh, self->kw}, pad[2] = {self->ph, self->pw};
    for (int i = 0; i < 2; i++) {
        if (in[i] + 2 * pad[i] < k[i])
            return ply_errorf(self->host, PLY_ERR_SHAPE,
                              "%s: input 0 dimension %d (%s) is %lld, %lld with padding, smaller than kernel_size "
                              "%lld",
                              nm, s->ndim - 2 + i, i ? "W" : "H", (long long)in[i], (long long)(in[i] + 2 * pad[i]),
                              (long long)k[i]);
    }
    // PyTorch's pooling_output_shape (dilation 1)
    g->OH = ply_conv_out_size(g->H, self->kh, self->sh, self->ph, 1, self->ceil_mode);
    g->OW = ply_conv_out_size(g->W, self->kw, self->sw, self->pw, 1, self->ceil_mode);
    if (g->OH < 1 || g->OW < 1)
        return ply_errorf(self->host, PLY_ERR_SHAPE, "%s: output size %lld x %lld is too small for input %lld x %lld",
                          nm, (long long)g->OH, (long long)g->OW, (long long)g->H, (long long)g->W);
    return PLY_OK;
}

static ply_status pool_infer_shape(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, ply_shape *output) {
    (void)n_inputs;
    pool_geom g = {0, 0, 0, 0, 0};
    ply_status st = pool_geometry(self, &inputs[0], &g);
    if (st != PLY_OK) return st;
    *output = inputs[0];
    output->dims[output->ndim - 2] = g.OH;
    output->dims[output->ndim - 1] = g.OW;
    return PLY_OK;
}

static ply_status check_compact(const ply_layer *self, const ply_tensor *t, const char *what) {
    if (t->strides || t->dtype != PLY_DTYPE_F32)
        return ply_errorf(self->host, PLY_ERR_UNSUPPORTED, "%s: %s must be a compact float32 tensor",
                          kind_name(self->kind), what);
    return PLY_OK;
}

ply_status pool_forward_nchw(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output) {
    (void)n_inputs;
    pool_geom g = {0, 0, 0, 0, 0};
    ply_status st = check_compact(self, &inputs[0], "input");
    if (st == PLY_OK) st = pool_geometry(self, &inputs[0].shape, &g);
    if (st != PLY_OK) return st;
    pool_job job = {.layer = self, .g = g, .backward = 0, .dst = output->data, .src = inputs[0].data};
    self->argmax_len = 0;
    if (self->kind == POOL_MAX && self->training && !pool_is_2x2(self)) {
        int64_t n = g.planes * g.OH * g.OW;
        if (n > self->argmax_cap) {
            int64_t *a = self->host->alloc(self->host, (size_t)n * sizeof(int64_t));
            if (!a) return ply_errorf(self->host, PLY_ERR_OUT_OF_MEMORY, "maxpool2d: out of memory for argmax");
            self->host->free(self->host, self->argmax);
            self->argmax = a;
            self->argmax_cap = n;
        }
        job.argmax_out = self->argmax;
    }
    pool_dispatch(self, &job);
    if (job.argmax_out) self->argmax_len = g.planes * g.OH * g.OW;
    return PLY_OK;
}

static ply_status pool_backward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, const ply_tensor *output,
                                const ply_tensor *grad_output, ply_tensor *grad_inputs) {
    (void)n_inputs;
    (void)output;
    if (!grad_inputs[0].data) return PLY_OK;
    pool_geom g = {0, 0, 0, 0, 0};
    ply_status st = pool_geometry(self, &inputs[0].shape, &g);
    if (st != PLY_OK) return st;
    pool_job job = {.layer = self, .g = g, .backward = 1, .dst = grad_inputs[0].data, .src = grad_output->data,
                    .in = inputs[0].data};
    // argmax from the last forward when it matches this call; else recompute from the input
    if (self->kind == POOL_MAX && self->argmax_len == g.planes * g.OH * g.OW) job.argmax_in = self->argmax;
    pool_dispatch(self, &job);
    return PLY_OK;
}

// ----------------------------------------------------------------------------
// self-description (ABI 1.2)

#define POOL_STRIDE_SPEC PLY_SPEC_STRIDE(NULL, "input pixels between neighbouring windows: an int or [sh, sw]; " \
                                               "absent or [] means kernel_size")
#define POOL_CEIL_MODE_SPEC                                               \
    {.name = "ceil_mode", .kind = PLY_ATTR_BOOL, .default_text = "false", \
     .doc = "round the output size up, so a last partial window counts"}

static const ply_attr_spec maxpool_specs[] = {
    PLY_SPEC_KERNEL_SIZE,
    POOL_STRIDE_SPEC,
    PLY_SPEC_PADDING,
    PLY_SPEC_DILATION("spacing between window taps: an int or [dh, dw]; only 1 is supported"),
    POOL_CEIL_MODE_SPEC,
    {.name = "return_indices", .kind = PLY_ATTR_BOOL, .default_text = "false",
     .doc = "also return the argmax indices; only false is supported"},
    PLY_SPEC_END,
};

static const ply_attr_spec avgpool_specs[] = {
    PLY_SPEC_KERNEL_SIZE,
    POOL_STRIDE_SPEC,
    PLY_SPEC_PADDING,
    POOL_CEIL_MODE_SPEC,
    {.name = "count_include_pad", .kind = PLY_ATTR_BOOL, .default_text = "true",
     .doc = "count the zero padding in the divisor of each average"},
    {.name = "divisor_override", .kind = PLY_ATTR_STRING, .default_text = NULL,
     .doc = "PyTorch's fixed divisor; only None (absent, or the string a serialised None gives) is supported"},
    PLY_SPEC_END,
};

static const ply_attr_spec adaptive_specs[] = {
    {.name = "output_size", .kind = PLY_ATTR_INTS, .flags = PLY_ATTR_REQUIRED | PLY_ATTR_PAIR,
     .doc = "output height and width: an int or [oh, ow]"},
    PLY_SPEC_END,
};

// The largest window adaptive pooling uses along an axis of n inputs pooled to o outputs: output i spans
// [floor(i*n/o), ceil((i+1)*n/o)).
static double adaptive_window(int64_t n, int64_t o) {
    int64_t w = 0;
    for (int64_t i = 0; i < o; i++) {
        int64_t start = i * n / o, end = ((i + 1) * n + o - 1) / o;
        if (end - start > w) w = end - start;
    }
    return (double)w;
}

// No MACs (pooling counts 0). Window: the kernel and stride (dilation is 1); adaptive pooling its largest
// window and the fractional stride in/out, or global when it pools to 1x1.
static ply_status pool_describe(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, ply_layer_info *info) {
    (void)n_inputs;
    pool_geom g = {0, 0, 0, 0, 0};
    ply_status st = pool_geometry(self, &inputs[0], &g);
    if (st != PLY_OK) return st;
    if (self->kind != POOL_ADAPTIVE_AVG) {
        ply_info_set_window(info, ply_window_make((double)self->kh, (double)self->kw, (double)self->sh,
                                                  (double)self->sw));
    } else if (g.OH == 1 && g.OW == 1) {
        ply_info_set_global(info);
    } else {
        ply_info_set_window(info, ply_window_make(adaptive_window(g.H, g.OH), adaptive_window(g.W, g.OW),
                                                  (double)g.H / (double)g.OH, (double)g.W / (double)g.OW));
    }
    return PLY_OK;
}

// layouts: the type takes ABI 1.7's blocked layout (all three; pooling_blocked.c)
#define POOL_TYPE(var, type_name, type_doc, create_fn, specs, layouts) \
    static const ply_layer_type var = { \
        .struct_size = sizeof(ply_layer_type), \
        .abi_version = PLY_ABI_VERSION, \
        .name = type_name, \
        .doc = type_doc, \
        .min_inputs = 1, \
        .max_inputs = 1, \
        .create = create_fn, \
        .destroy = pool_destroy, \
        .infer_shape = pool_infer_shape, \
        .forward = pool_forward_nchw, \
        .backward = pool_backward, \
        .set_training = pool_set_training, \
        .attr_specs = specs, \
        .inputs_doc = "x: (N, C, H, W) or (C, H, W)", \
        .describe = pool_describe, \
        .eval_layouts = layouts ? pool_eval_layouts : NULL, \
        .forward_layout = layouts ? pool_forward_layout : NULL, \
    };
POOL_TYPE(maxpool2d_type, "maxpool2d",
          "2-d max pooling: kernel_size, stride (= kernel_size), padding (0), ceil_mode (false)", maxpool2d_create,
          maxpool_specs, 1)
POOL_TYPE(avgpool2d_type, "avgpool2d",
          "2-d average pooling: kernel_size, stride (= kernel_size), padding (0), ceil_mode (false), "
          "count_include_pad (true)",
          avgpool2d_create, avgpool_specs, 1)
POOL_TYPE(adaptive_avgpool2d_type, "adaptive_avgpool2d",
          "2-d adaptive average pooling to output_size (int or pair)", adaptive_avgpool2d_create, adaptive_specs, 1)

static const ply_layer_type *const types[] = {&maxpool2d_type, &avgpool2d_type, &adaptive_avgpool2d_type};

static const ply_plugin plugin = {
    sizeof(ply_plugin), PLY_ABI_VERSION, "ply.pooling", "1.0.0", 3, 0, types,
};

PLY_BUILTIN_ENTRY(pooling) {
    if (PLY_ABI_MAJOR_OF(host->abi_version) != PLY_ABI_VERSION_MAJOR) {
        host->set_error(host, PLY_ERR_ABI, "ply.pooling: host ABI major version differs from the plugin's (1)");
        return NULL;
    }
    return &plugin;
}
