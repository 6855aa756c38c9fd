/*
 * Test fixture for ABI 1.2 self-description (issue #14): layer types that declare their
 * attributes (attr_specs, inputs_doc) and describe themselves (describe, add_child).
 *
 *   se_block        squeeze-and-excitation as torchvision.ops.SqueezeExcitation:
 *                   avgpool (adaptive_avgpool2d to 1x1) -> fc1 (pointwise_conv C -> C/r)
 *                   -> activation (relu) -> fc2 (pointwise_conv C/r -> C)
 *                   -> scale_activation (sigmoid); output = x * gate. All five children are
 *                   made with host->create_layer and reported through add_child; the block's
 *                   own window is global (the gate pools the whole plane). No backward.
 *   pointwise_conv  a 1x1 convolution with bias, describing its MACs
 *                   (N x out x H x W x in) and a 1x1 window.
 *   legacy_scale    y = factor * x, declared as a 1.1 plugin would be (struct_size ends
 *                   before attr_specs), although the static struct has a schema and a
 *                   describe that must never be read: the host treats it as schema-less.
 *
 *   bad_describe    identity whose describe misbehaves as its `mode` says (window: an unknown
 *                   window kind; macs: negative MACs; self: reports itself as its own child,
 *                   forever; fail: returns an error), for the host's checks.
 *
 * se_block's `child_attr` (a test hook) passes one more integer attribute of that name to
 * fc1, to check that composites' create_layer calls are checked against the child's schema.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <ply/plugin.h>

/* ------------------------------------------------------------------ */
/* pointwise_conv                                                       */

typedef struct {
    const ply_host *host;
    int64_t cin, cout;
    int bias;
    float *w, *gw, *b, *gb;
} pw_layer;

static const ply_attr_spec pw_specs[] = {
    {"in_channels", PLY_ATTR_INT, 0, "1", "input channels"},
    {"out_channels", PLY_ATTR_INT, 0, "1", "output channels"},
    {"bias", PLY_ATTR_BOOL, 0, "true", "add a learnable bias"},
    {NULL, 0, 0, NULL, NULL},
};

static void pw_destroy(ply_layer *self) {
    pw_layer *L = (pw_layer *)self;
    if (!L) return;
    L->host->free(L->host, L->w);
    L->host->free(L->host, L->gw);
    L->host->free(L->host, L->b);
    L->host->free(L->host, L->gb);
    L->host->free(L->host, L);
}

static ply_status pw_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    int64_t cin = 1, cout = 1;
    int32_t bias = 1;
    ply_status st;
    if ((st = host->attr_int(host, attrs, "in_channels", &cin)) != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    if ((st = host->attr_int(host, attrs, "out_channels", &cout)) != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    if (cin <= 0 || cout <= 0)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "pointwise_conv: in_channels and out_channels must be positive");
    st = host->attr_bool(host, attrs, "bias", &bias);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    pw_layer *L = host->alloc(host, sizeof *L);
    if (!L) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "pointwise_conv: out of memory");
    memset(L, 0, sizeof *L);
    L->host = host;
    L->cin = cin;
    L->cout = cout;
    L->bias = bias;
    size_t n = (size_t)(cin * cout);
    L->w = host->alloc(host, n * sizeof(float));
    L->gw = host->alloc(host, n * sizeof(float));
    if (bias) {
        L->b = host->alloc(host, (size_t)cout * sizeof(float));
        L->gb = host->alloc(host, (size_t)cout * sizeof(float));
    }
    if (!L->w || !L->gw || (bias && (!L->b || !L->gb))) {
        pw_destroy((ply_layer *)L);
        return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "pointwise_conv: out of memory");
    }
    float bound = 1.0f / sqrtf((float)cin);
    host->fill_uniform(host, L->w, (int64_t)n, -bound, bound);
    memset(L->gw, 0, n * sizeof(float));
    if (bias) {
        host->fill_uniform(host, L->b, cout, -bound, bound);
        memset(L->gb, 0, (size_t)cout * sizeof(float));
    }
    *out = (ply_layer *)L;
    return PLY_OK;
}

static ply_status pw_infer(ply_layer *self, int32_t n, const ply_shape *in, ply_shape *out) {
    pw_layer *L = (pw_layer *)self;
    if (n != 1 || in[0].ndim != 4 || in[0].dims[1] != L->cin)
        return ply_errorf(L->host, PLY_ERR_SHAPE, "pointwise_conv: input must be (N, %lld, H, W)", (long long)L->cin);
    *out = in[0];
    out->dims[1] = L->cout;
    return PLY_OK;
}

static ply_status pw_forward(ply_layer *self, int32_t n, const ply_tensor *in, ply_tensor *out) {
    pw_layer *L = (pw_layer *)self;
    (void)n;
    const float *x = in[0].data;
    float *y = out->data;
    int64_t N = in[0].shape.dims[0], hw = in[0].shape.dims[2] * in[0].shape.dims[3];
    for (int64_t b = 0; b < N; b++)
        for (int64_t o = 0; o < L->cout; o++)
            for (int64_t p = 0; p < hw; p++) {
                float s = L->bias ? L->b[o] : 0.0f;
                for (int64_t i = 0; i < L->cin; i++) s += L->w[o * L->cin + i] * x[(b * L->cin + i) * hw + p];
                y[(b * L->cout + o) * hw + p] = s;
            }
    return PLY_OK;
}

static int32_t pw_param_count(ply_layer *self) { return ((pw_layer *)self)->bias ? 2 : 1; }

static ply_status pw_get_param(ply_layer *self, int32_t index, ply_param *out) {
    pw_layer *L = (pw_layer *)self;
    if (index == 0) *out = ply_param_make("weight", L->w, L->gw, ply_shape_make(4, L->cout, L->cin, 1, 1));
    else *out = ply_param_make("bias", L->b, L->gb, ply_shape_make(1, L->cout, 0, 0, 0));
    return PLY_OK;
}

static ply_status pw_describe(ply_layer *self, int32_t n, const ply_shape *in, ply_layer_info *info) {
    pw_layer *L = (pw_layer *)self;
    (void)n;
    info->macs = in[0].dims[0] * L->cout * in[0].dims[2] * in[0].dims[3] * L->cin;
    info->window = PLY_WINDOW_SPATIAL;
    info->kernel[0] = info->kernel[1] = 1;
    info->stride[0] = info->stride[1] = 1;
    return PLY_OK;
}

static const ply_layer_type pw_type = {
    .struct_size = sizeof(ply_layer_type),
    .abi_version = PLY_ABI_VERSION,
    .name = "pointwise_conv",
    .doc = "1x1 convolution (in_channels=1, out_channels=1, bias=true)",
    .min_inputs = 1,
    .max_inputs = 1,
    .create = pw_create,
    .destroy = pw_destroy,
    .infer_shape = pw_infer,
    .forward = pw_forward,
    .param_count = pw_param_count,
    .get_param = pw_get_param,
    .attr_specs = pw_specs,
    .inputs_doc = "x: (N, in_channels, H, W)",
    .describe = pw_describe,
};

/* ------------------------------------------------------------------ */
/* se_block                                                             */

enum { SE_POOL, SE_FC1, SE_ACT, SE_FC2, SE_GATE, SE_CHILDREN };
static const char *const se_names[SE_CHILDREN] = {"avgpool", "fc1", "activation", "fc2", "scale_activation"};

typedef struct {
    const ply_host *host;
    int64_t channels, squeeze;
    const ply_layer_type *type[SE_CHILDREN];
    ply_layer *child[SE_CHILDREN];
    int32_t n_params;
    int32_t param_child[8], param_index[8];
    char param_name[8][48];
} se_layer;

static const ply_attr_spec se_specs[] = {
    {"channels", PLY_ATTR_INT, PLY_ATTR_REQUIRED, NULL, "input (and output) channels"},
    {"reduction", PLY_ATTR_INT, 0, "4", "squeeze factor: the gate's hidden width is channels / reduction"},
    {"child_attr", PLY_ATTR_STRING, 0, NULL, "test hook: one more integer attribute, of this name, for fc1"},
    {NULL, 0, 0, NULL, NULL},
};

static void se_destroy(ply_layer *self) {
    se_layer *L = (se_layer *)self;
    if (!L) return;
    for (int i = 0; i < SE_CHILDREN; i++)
        if (L->child[i]) L->type[i]->destroy(L->child[i]);
    L->host->free(L->host, L);
}

static ply_status se_child(se_layer *L, int i, const char *type, const ply_attr *items, int32_t count) {
    ply_attrs attrs = {sizeof(ply_attrs), PLY_ABI_VERSION, count, 0, items};
    return L->host->create_layer(L->host, type, &attrs, &L->type[i], &L->child[i]);
}

static ply_status se_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    int64_t channels = 0, reduction = 4;
    const char *extra = NULL;
    ply_status st;
    if (host->attr_int(host, attrs, "channels", &channels) != PLY_OK || channels <= 0)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "se_block: channels must be a positive integer");
    st = host->attr_int(host, attrs, "reduction", &reduction);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    if (reduction <= 0 || reduction > channels)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "se_block: reduction must be in 1...channels");
    st = host->attr_string(host, attrs, "child_attr", &extra);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    se_layer *L = host->alloc(host, sizeof *L);
    if (!L) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "se_block: out of memory");
    memset(L, 0, sizeof *L);
    L->host = host;
    L->channels = channels;
    L->squeeze = channels / reduction;
    ply_attr pool[1] = {{"output_size", PLY_ATTR_INT, 1, {.i = 1}}};
    ply_attr fc1[3] = {{"in_channels", PLY_ATTR_INT, 1, {.i = channels}},
                       {"out_channels", PLY_ATTR_INT, 1, {.i = L->squeeze}},
                       {extra ? extra : "", PLY_ATTR_INT, 1, {.i = 1}}};
    ply_attr fc2[2] = {{"in_channels", PLY_ATTR_INT, 1, {.i = L->squeeze}},
                       {"out_channels", PLY_ATTR_INT, 1, {.i = channels}}};
    if ((st = se_child(L, SE_POOL, "adaptive_avgpool2d", pool, 1)) != PLY_OK ||
        (st = se_child(L, SE_FC1, "pointwise_conv", fc1, extra ? 3 : 2)) != PLY_OK ||
        (st = se_child(L, SE_ACT, "relu", NULL, 0)) != PLY_OK ||
        (st = se_child(L, SE_FC2, "pointwise_conv", fc2, 2)) != PLY_OK ||
        (st = se_child(L, SE_GATE, "sigmoid", NULL, 0)) != PLY_OK) {
        se_destroy((ply_layer *)L);
        return st; /* the child's (or the host's) message stands */
    }
    for (int i = 0; i < SE_CHILDREN; i++) {
        const ply_layer_type *t = L->type[i];
        int32_t n = t->param_count ? t->param_count(L->child[i]) : 0;
        for (int32_t k = 0; k < n && L->n_params < 8; k++) {
            ply_param p;
            memset(&p, 0, sizeof p);
            if ((st = t->get_param(L->child[i], k, &p)) != PLY_OK) {
                se_destroy((ply_layer *)L);
                return st;
            }
            snprintf(L->param_name[L->n_params], sizeof L->param_name[0], "%s.%s", se_names[i], p.name);
            L->param_child[L->n_params] = i;
            L->param_index[L->n_params] = k;
            L->n_params++;
        }
    }
    *out = (ply_layer *)L;
    return PLY_OK;
}

/* Shapes of every child's input (shapes[i]) and output (shapes[i + 1]) for input x. */
static ply_status se_shapes(se_layer *L, const ply_shape *x, ply_shape shapes[SE_CHILDREN + 1]) {
    if (x->ndim != 4 || x->dims[1] != L->channels)
        return ply_errorf(L->host, PLY_ERR_SHAPE, "se_block: input must be (N, %lld, H, W)", (long long)L->channels);
    shapes[0] = *x;
    for (int i = 0; i < SE_CHILDREN; i++) {
        ply_status st = L->type[i]->infer_shape(L->child[i], 1, &shapes[i], &shapes[i + 1]);
        if (st != PLY_OK) return st;
    }
    return PLY_OK;
}

static ply_status se_infer(ply_layer *self, int32_t n, const ply_shape *in, ply_shape *out) {
    ply_shape shapes[SE_CHILDREN + 1];
    (void)n;
    ply_status st = se_shapes((se_layer *)self, &in[0], shapes);
    if (st == PLY_OK) *out = in[0];
    return st;
}

static ply_status se_forward(ply_layer *self, int32_t n, const ply_tensor *in, ply_tensor *out) {
    se_layer *L = (se_layer *)self;
    const ply_host *h = L->host;
    ply_shape shapes[SE_CHILDREN + 1];
    float *buf[SE_CHILDREN];
    ply_status st;
    (void)n;
    if ((st = se_shapes(L, &in[0].shape, shapes)) != PLY_OK) return st;
    memset(buf, 0, sizeof buf);
    for (int i = 0; i < SE_CHILDREN && st == PLY_OK; i++) {
        buf[i] = h->alloc(h, (size_t)ply_shape_numel(&shapes[i + 1]) * sizeof(float));
        if (!buf[i]) { st = ply_errorf(h, PLY_ERR_OUT_OF_MEMORY, "se_block: out of memory"); break; }
        ply_tensor x = i == 0 ? in[0] : ply_tensor_make(buf[i - 1], shapes[i]);
        ply_tensor y = ply_tensor_make(buf[i], shapes[i + 1]);
        st = L->type[i]->forward(L->child[i], 1, &x, &y);
    }
    if (st == PLY_OK) {
        const float *x = in[0].data, *gate = buf[SE_GATE];
        float *y = out->data;
        int64_t nc = in[0].shape.dims[0] * L->channels, hw = in[0].shape.dims[2] * in[0].shape.dims[3];
        for (int64_t c = 0; c < nc; c++)
            for (int64_t p = 0; p < hw; p++) y[c * hw + p] = x[c * hw + p] * gate[c];
    }
    for (int i = 0; i < SE_CHILDREN; i++) h->free(h, buf[i]);
    return st;
}

static int32_t se_param_count(ply_layer *self) { return ((se_layer *)self)->n_params; }

static ply_status se_get_param(ply_layer *self, int32_t index, ply_param *out) {
    se_layer *L = (se_layer *)self;
    int c = L->param_child[index];
    ply_status st = L->type[c]->get_param(L->child[c], L->param_index[index], out);
    if (st == PLY_OK) out->name = L->param_name[index];
    return st;
}

static ply_status se_describe(ply_layer *self, int32_t n, const ply_shape *in, ply_layer_info *info) {
    se_layer *L = (se_layer *)self;
    ply_shape shapes[SE_CHILDREN + 1];
    ply_status st;
    (void)n;
    if ((st = se_shapes(L, &in[0], shapes)) != PLY_OK) return st;
    /* Written by a 1.2 plugin for a 1.2 host; a later host's info is only larger. */
    if (info->struct_size < offsetof(ply_layer_info, add_child) + sizeof info->add_child)
        return ply_errorf(L->host, PLY_ERR_ABI, "se_block: the host's ply_layer_info has no add_child");
    info->macs = 0; /* its own product x * gate is element-wise: 0 by convention */
    info->window = PLY_WINDOW_GLOBAL;
    for (int i = 0; i < SE_CHILDREN; i++)
        if ((st = info->add_child(info, se_names[i], L->type[i], L->child[i], 1, &shapes[i], &shapes[i + 1])) != PLY_OK)
            return st;
    return PLY_OK;
}

static const ply_layer_type se_type = {
    .struct_size = sizeof(ply_layer_type),
    .abi_version = PLY_ABI_VERSION,
    .name = "se_block",
    .doc = "squeeze-and-excitation (torchvision SqueezeExcitation): x * sigmoid(fc2(relu(fc1(avgpool(x)))))",
    .min_inputs = 1,
    .max_inputs = 1,
    .create = se_create,
    .destroy = se_destroy,
    .infer_shape = se_infer,
    .forward = se_forward,
    .param_count = se_param_count,
    .get_param = se_get_param,
    .attr_specs = se_specs,
    .inputs_doc = "x: (N, channels, H, W)",
    .describe = se_describe,
};

/* ------------------------------------------------------------------ */
/* legacy_scale: a 1.1-sized type                                        */

typedef struct {
    const ply_host *host;
    double factor;
} scale_layer;

static const ply_attr_spec never_read[] = {
    {"not_a_real_attribute", PLY_ATTR_INT, PLY_ATTR_REQUIRED, NULL, "must never be seen"},
    {NULL, 0, 0, NULL, NULL},
};

static ply_status scale_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    double factor = 1;
    ply_status st = host->attr_float(host, attrs, "factor", &factor);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    scale_layer *L = host->alloc(host, sizeof *L);
    if (!L) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "legacy_scale: out of memory");
    L->host = host;
    L->factor = factor;
    *out = (ply_layer *)L;
    return PLY_OK;
}

static void scale_destroy(ply_layer *self) {
    if (self) ((scale_layer *)self)->host->free(((scale_layer *)self)->host, self);
}

static ply_status scale_infer(ply_layer *self, int32_t n, const ply_shape *in, ply_shape *out) {
    (void)self;
    (void)n;
    *out = in[0];
    return PLY_OK;
}

static ply_status scale_forward(ply_layer *self, int32_t n, const ply_tensor *in, ply_tensor *out) {
    scale_layer *L = (scale_layer *)self;
    (void)n;
    int64_t count = ply_shape_numel(&in[0].shape);
    for (int64_t i = 0; i < count; i++) ((float *)out->data)[i] = (float)L->factor * ((const float *)in[0].data)[i];
    return PLY_OK;
}

static ply_status never_called(ply_layer *self, int32_t n, const ply_shape *in, ply_layer_info *info) {
    (void)self;
    (void)n;
    (void)in;
    info->macs = -1;
    return PLY_ERR_INTERNAL;
}

static const ply_layer_type scale_type = {
    .struct_size = offsetof(ply_layer_type, attr_specs), /* as a 1.1 plugin compiled it */
    .abi_version = (1u << 16) | 1u,
    .name = "legacy_scale",
    .doc = "y = factor * x, from a 1.1 plugin (factor=1.0)",
    .min_inputs = 1,
    .max_inputs = 1,
    .create = scale_create,
    .destroy = scale_destroy,
    .infer_shape = scale_infer,
    .forward = scale_forward,
    .attr_specs = never_read,
    .inputs_doc = "never read",
    .describe = never_called,
};

/* ------------------------------------------------------------------ */
/* bad_describe                                                          */

typedef struct {
    const ply_host *host;
    char mode[16];
} bad_layer;

static const ply_attr_spec bad_specs[] = {
    {"mode", PLY_ATTR_STRING, PLY_ATTR_REQUIRED, NULL, "window, macs, self or fail"},
    {NULL, 0, 0, NULL, NULL},
};

static const ply_layer_type bad_type;

static ply_status bad_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    const char *mode = "";
    ply_status st = host->attr_string(host, attrs, "mode", &mode);
    if (st != PLY_OK) return st;
    bad_layer *L = host->alloc(host, sizeof *L);
    if (!L) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "bad_describe: out of memory");
    L->host = host;
    snprintf(L->mode, sizeof L->mode, "%s", mode);
    *out = (ply_layer *)L;
    return PLY_OK;
}

static void bad_destroy(ply_layer *self) {
    if (self) ((bad_layer *)self)->host->free(((bad_layer *)self)->host, self);
}

static ply_status bad_forward(ply_layer *self, int32_t n, const ply_tensor *in, ply_tensor *out) {
    (void)self;
    (void)n;
    memcpy(out->data, in[0].data, (size_t)ply_shape_numel(&in[0].shape) * sizeof(float));
    return PLY_OK;
}

static ply_status bad_describe_fn(ply_layer *self, int32_t n, const ply_shape *in, ply_layer_info *info) {
    bad_layer *L = (bad_layer *)self;
    if (strcmp(L->mode, "window") == 0) info->window = 7;
    else if (strcmp(L->mode, "macs") == 0) info->macs = -5;
    else if (strcmp(L->mode, "self") == 0) return info->add_child(info, "again", &bad_type, self, n, in, &in[0]);
    else if (strcmp(L->mode, "fail") == 0) return ply_errorf(L->host, PLY_ERR_INTERNAL, "bad_describe: asked to fail");
    return PLY_OK;
}

static const ply_layer_type bad_type = {
    .struct_size = sizeof(ply_layer_type),
    .abi_version = PLY_ABI_VERSION,
    .name = "bad_describe",
    .doc = "identity with a misbehaving describe (mode)",
    .min_inputs = 1,
    .max_inputs = 1,
    .create = bad_create,
    .destroy = bad_destroy,
    .infer_shape = scale_infer,
    .forward = bad_forward,
    .attr_specs = bad_specs,
    .describe = bad_describe_fn,
};

/* ------------------------------------------------------------------ */

static const ply_layer_type *const types[] = {&se_type, &pw_type, &scale_type, &bad_type};

static const ply_plugin plugin = {
    sizeof(ply_plugin), PLY_ABI_VERSION, "test.selfdescribing", "1.0.0", 4, 0, types,
};

PLY_EXPORT const ply_plugin *ply_plugin_entry(const ply_host *host) {
    if (PLY_ABI_MAJOR_OF(host->abi_version) != PLY_ABI_VERSION_MAJOR) {
        host->set_error(host, PLY_ERR_ABI, "test.selfdescribing needs Ply ABI 1.x");
        return NULL;
    }
    return &plugin;
}
