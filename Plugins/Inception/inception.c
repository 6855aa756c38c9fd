/*
 * Inception family, as torchvision defines it (models/googlenet.py and
 * models/inception.py), built from the host's conv2d / batchnorm2d / relu /
 * maxpool2d / avgpool2d / adaptive_avgpool2d / flatten / linear / concat
 * layers. Parameter names and order are torchvision's state_dict.
 *
 *  basic_conv2d        BasicConv2d: conv (bias=False) + BN(eps=0.001) + ReLU.
 *                      in_channels, out_channels, kernel_size, stride=1,
 *                      padding=0 (int or pair). conv.weight, bn.*
 *  inception_googlenet GoogLeNet Inception: in_channels, ch1x1, ch3x3red,
 *                      ch3x3, ch5x5red, ch5x5, pool_proj. branch1,
 *                      branch2.{0,1}, branch3.{0,1} (a 3x3, as torchvision),
 *                      branch4 = maxpool 3/1/1 ceil_mode -> branch4.1.
 *  inception_v3_a      InceptionA: in_channels, pool_features.
 *  inception_v3_b      InceptionB: in_channels (stride 2).
 *  inception_v3_c      InceptionC: in_channels, channels_7x7.
 *  inception_v3_d      InceptionD: in_channels (stride 2).
 *  inception_v3_e      InceptionE: in_channels.
 *  inception_v3_aux    InceptionAux: in_channels, num_classes. Output [N, classes].
 *
 * The pool branches of A, C and E are avg_pool2d(3, stride 1, padding 1,
 * count_include_pad=True); B and D use max_pool2d(3, stride 2). Every block
 * concatenates its branches on channels in torchvision's order (E's split
 * 1x3 / 3x1 pairs are one concat: cat(a, cat(b, c)) = cat(a, b, c)).
 */
#include <stddef.h>
#include <string.h>

#include "inception_graph.h"

#define MAXPOOL "maxpool2d"
#define AVGPOOL "avgpool2d"

// Square-kernel BasicConv2d child reading value `in`.
static int32_t conv_sq(ply_layer *L, ply_status *st, const char *name, int32_t in, int64_t cin, int64_t cout,
                       int64_t k, int64_t stride, int64_t pad) {
    return blk_conv(L, st, name, in, cin, cout, k, k, stride, stride, pad, pad);
}

// ----------------------------------------------------------------------------
// basic_conv2d

static ply_status pair_attr(const ply_host *host, const ply_attrs *attrs, const char *name, int64_t dflt, int64_t min,
                            int64_t out[2]) {
    ply_status st = host->attr_pair(host, attrs, name, out);
    if (st == PLY_ERR_NOT_FOUND) {
        if (dflt < 0)
            return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "basic_conv2d: missing required attribute '%s'", name);
        out[0] = out[1] = dflt;
        return PLY_OK;
    }
    if (st != PLY_OK) return st;
    if (out[0] < min || out[1] < min)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "basic_conv2d: %s must be >= %lld (got (%lld, %lld))", name,
                          (long long)min, (long long)out[0], (long long)out[1]);
    return PLY_OK;
}

static ply_status basic_conv2d_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    const char *T = "basic_conv2d";
    int64_t cin, cout, k[2], s[2], p[2];
    ply_status st;
    if ((st = blk_positive_attr(host, attrs, T, "in_channels", &cin)) != PLY_OK) return st;
    if ((st = blk_positive_attr(host, attrs, T, "out_channels", &cout)) != PLY_OK) return st;
    if ((st = pair_attr(host, attrs, "kernel_size", -1, 1, k)) != PLY_OK) return st;
    if ((st = pair_attr(host, attrs, "stride", 1, 1, s)) != PLY_OK) return st;
    if ((st = pair_attr(host, attrs, "padding", 0, 0, p)) != PLY_OK) return st;
    ply_layer *L = blk_new(host, T, "BasicConv2d", cin);
    if (!L) return PLY_ERR_OUT_OF_MEMORY;
    ply_attr conv[6], bn[2];
    memset(conv, 0, sizeof conv);
    memset(bn, 0, sizeof bn);
    conv[0].name = "in_channels"; conv[0].kind = PLY_ATTR_INT; conv[0].count = 1; conv[0].v.i = cin;
    conv[1].name = "out_channels"; conv[1].kind = PLY_ATTR_INT; conv[1].count = 1; conv[1].v.i = cout;
    conv[2].name = "kernel_size"; conv[2].kind = PLY_ATTR_INTS; conv[2].count = 2; conv[2].v.ints = k;
    conv[3].name = "stride"; conv[3].kind = PLY_ATTR_INTS; conv[3].count = 2; conv[3].v.ints = s;
    conv[4].name = "padding"; conv[4].kind = PLY_ATTR_INTS; conv[4].count = 2; conv[4].v.ints = p;
    conv[5].name = "bias"; conv[5].kind = PLY_ATTR_BOOL; conv[5].count = 1; conv[5].v.i = 0;
    bn[0].name = "num_features"; bn[0].kind = PLY_ATTR_INT; bn[0].count = 1; bn[0].v.i = cout;
    bn[1].name = "eps"; bn[1].kind = PLY_ATTR_FLOAT; bn[1].count = 1; bn[1].v.f = 0.001;
    int32_t v = 0;
    v = blk_add(L, &st, "conv", "conv2d", conv, 6, &v, 1);
    v = blk_add(L, &st, "bn", "batchnorm2d", bn, 2, &v, 1);
    // The relu goes into the batch norm when its type takes it (fuse_activation): the bn is
    // then the last node and writes the block's output, one pass and one buffer less.
    const ply_layer_type *bt = st == PLY_OK ? L->nodes[L->n_nodes - 1].type : NULL;
    int fused = bt && bt->struct_size >= offsetof(ply_layer_type, fuse_activation) + sizeof(bt->fuse_activation) &&
                bt->fuse_activation && bt->fuse_activation(L->nodes[L->n_nodes - 1].layer, "relu") == PLY_OK;
    if (!fused) blk_add(L, &st, NULL, "relu", NULL, 0, &v, 1);
    blk_fold(L, &st, 0, k, s, p, 0.001);
    return blk_finish(L, st, out);
}

// ----------------------------------------------------------------------------
// GoogLeNet

static ply_status inception_googlenet_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    const char *T = "inception_googlenet";
    static const char *const names[] = {"in_channels", "ch1x1", "ch3x3red", "ch3x3", "ch5x5red", "ch5x5", "pool_proj"};
    int64_t a[7];
    ply_status st;
    for (int i = 0; i < 7; i++)
        if ((st = blk_positive_attr(host, attrs, T, names[i], &a[i])) != PLY_OK) return st;
    int64_t in = a[0];
    ply_layer *L = blk_new(host, T, "Inception", in);
    if (!L) return PLY_ERR_OUT_OF_MEMORY;
    int32_t b[4];
    b[0] = conv_sq(L, &st, "branch1", 0, in, a[1], 1, 1, 0);
    int32_t t = conv_sq(L, &st, "branch2.0", 0, in, a[2], 1, 1, 0);
    b[1] = conv_sq(L, &st, "branch2.1", t, a[2], a[3], 3, 1, 1);
    t = conv_sq(L, &st, "branch3.0", 0, in, a[4], 1, 1, 0);
    b[2] = conv_sq(L, &st, "branch3.1", t, a[4], a[5], 3, 1, 1);  // torchvision's "5x5" is a 3x3
    t = blk_pool(L, &st, MAXPOOL, 0, 3, 1, 1, 1);
    blk_name(L, &st, t, "branch4.0");  // a module in torchvision's branch4 Sequential (no parameters)
    b[3] = conv_sq(L, &st, "branch4.1", t, in, a[6], 1, 1, 0);
    blk_concat(L, &st, b, 4);
    blk_fuse_1x1(L, &st); // branch1, branch2.0, branch3.0: one stacked conv above batch 1
    return blk_finish(L, st, out);
}

// ----------------------------------------------------------------------------
// Inception-v3

static ply_status inception_v3_a_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    const char *T = "inception_v3_a";
    int64_t in, pf;
    ply_status st;
    if ((st = blk_positive_attr(host, attrs, T, "in_channels", &in)) != PLY_OK) return st;
    if ((st = blk_positive_attr(host, attrs, T, "pool_features", &pf)) != PLY_OK) return st;
    ply_layer *L = blk_new(host, T, "InceptionA", in);
    if (!L) return PLY_ERR_OUT_OF_MEMORY;
    int32_t b[4], t;
    b[0] = conv_sq(L, &st, "branch1x1", 0, in, 64, 1, 1, 0);
    t = conv_sq(L, &st, "branch5x5_1", 0, in, 48, 1, 1, 0);
    b[1] = conv_sq(L, &st, "branch5x5_2", t, 48, 64, 5, 1, 2);
    t = conv_sq(L, &st, "branch3x3dbl_1", 0, in, 64, 1, 1, 0);
    t = conv_sq(L, &st, "branch3x3dbl_2", t, 64, 96, 3, 1, 1);
    b[2] = conv_sq(L, &st, "branch3x3dbl_3", t, 96, 96, 3, 1, 1);
    t = blk_pool(L, &st, AVGPOOL, 0, 3, 1, 1, 0);
    b[3] = conv_sq(L, &st, "branch_pool", t, in, pf, 1, 1, 0);
    blk_concat(L, &st, b, 4);
    blk_fuse_1x1(L, &st); // branch1x1, branch5x5_1, branch3x3dbl_1: one stacked conv (inception_fuse.c)
    return blk_finish(L, st, out);
}

static ply_status inception_v3_b_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    const char *T = "inception_v3_b";
    int64_t in;
    ply_status st;
    if ((st = blk_positive_attr(host, attrs, T, "in_channels", &in)) != PLY_OK) return st;
    ply_layer *L = blk_new(host, T, "InceptionB", in);
    if (!L) return PLY_ERR_OUT_OF_MEMORY;
    int32_t b[3], t;
    b[0] = conv_sq(L, &st, "branch3x3", 0, in, 384, 3, 2, 0);
    t = conv_sq(L, &st, "branch3x3dbl_1", 0, in, 64, 1, 1, 0);
    t = conv_sq(L, &st, "branch3x3dbl_2", t, 64, 96, 3, 1, 1);
    b[1] = conv_sq(L, &st, "branch3x3dbl_3", t, 96, 96, 3, 2, 0);
    b[2] = blk_pool(L, &st, MAXPOOL, 0, 3, 2, 0, 0);
    blk_concat(L, &st, b, 3);
    return blk_finish(L, st, out);
}

static ply_status inception_v3_c_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    const char *T = "inception_v3_c";
    int64_t in, c7;
    ply_status st;
    if ((st = blk_positive_attr(host, attrs, T, "in_channels", &in)) != PLY_OK) return st;
    if ((st = blk_positive_attr(host, attrs, T, "channels_7x7", &c7)) != PLY_OK) return st;
    ply_layer *L = blk_new(host, T, "InceptionC", in);
    if (!L) return PLY_ERR_OUT_OF_MEMORY;
    int32_t b[4], t;
    b[0] = conv_sq(L, &st, "branch1x1", 0, in, 192, 1, 1, 0);
    t = conv_sq(L, &st, "branch7x7_1", 0, in, c7, 1, 1, 0);
    t = blk_conv(L, &st, "branch7x7_2", t, c7, c7, 1, 7, 1, 1, 0, 3);
    b[1] = blk_conv(L, &st, "branch7x7_3", t, c7, 192, 7, 1, 1, 1, 3, 0);
    t = conv_sq(L, &st, "branch7x7dbl_1", 0, in, c7, 1, 1, 0);
    t = blk_conv(L, &st, "branch7x7dbl_2", t, c7, c7, 7, 1, 1, 1, 3, 0);
    t = blk_conv(L, &st, "branch7x7dbl_3", t, c7, c7, 1, 7, 1, 1, 0, 3);
    t = blk_conv(L, &st, "branch7x7dbl_4", t, c7, c7, 7, 1, 1, 1, 3, 0);
    b[2] = blk_conv(L, &st, "branch7x7dbl_5", t, c7, 192, 1, 7, 1, 1, 0, 3);
    t = blk_pool(L, &st, AVGPOOL, 0, 3, 1, 1, 0);
    b[3] = conv_sq(L, &st, "branch_pool", t, in, 192, 1, 1, 0);
    blk_concat(L, &st, b, 4);
    blk_fuse_1x1(L, &st); // branch1x1, branch7x7_1, branch7x7dbl_1: one stacked conv (inception_fuse.c)
    return blk_finish(L, st, out);
}

static ply_status inception_v3_d_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    const char *T = "inception_v3_d";
    int64_t in;
    ply_status st;
    if ((st = blk_positive_attr(host, attrs, T, "in_channels", &in)) != PLY_OK) return st;
    ply_layer *L = blk_new(host, T, "InceptionD", in);
    if (!L) return PLY_ERR_OUT_OF_MEMORY;
    int32_t b[3], t;
    t = conv_sq(L, &st, "branch3x3_1", 0, in, 192, 1, 1, 0);
    b[0] = conv_sq(L, &st, "branch3x3_2", t, 192, 320, 3, 2, 0);
    t = conv_sq(L, &st, "branch7x7x3_1", 0, in, 192, 1, 1, 0);
    t = blk_conv(L, &st, "branch7x7x3_2", t, 192, 192, 1, 7, 1, 1, 0, 3);
    t = blk_conv(L, &st, "branch7x7x3_3", t, 192, 192, 7, 1, 1, 1, 3, 0);
    b[1] = conv_sq(L, &st, "branch7x7x3_4", t, 192, 192, 3, 2, 0);
    b[2] = blk_pool(L, &st, MAXPOOL, 0, 3, 2, 0, 0);
    blk_concat(L, &st, b, 3);
    blk_fuse_1x1(L, &st); // branch3x3_1, branch7x7x3_1: one stacked conv (inception_fuse.c)
    return blk_finish(L, st, out);
}

static ply_status inception_v3_e_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    const char *T = "inception_v3_e";
    int64_t in;
    ply_status st;
    if ((st = blk_positive_attr(host, attrs, T, "in_channels", &in)) != PLY_OK) return st;
    ply_layer *L = blk_new(host, T, "InceptionE", in);
    if (!L) return PLY_ERR_OUT_OF_MEMORY;
    int32_t b[6], t;
    b[0] = conv_sq(L, &st, "branch1x1", 0, in, 320, 1, 1, 0);
    t = conv_sq(L, &st, "branch3x3_1", 0, in, 384, 1, 1, 0);
    b[1] = blk_conv(L, &st, "branch3x3_2a", t, 384, 384, 1, 3, 1, 1, 0, 1);
    b[2] = blk_conv(L, &st, "branch3x3_2b", t, 384, 384, 3, 1, 1, 1, 1, 0);
    t = conv_sq(L, &st, "branch3x3dbl_1", 0, in, 448, 1, 1, 0);
    t = conv_sq(L, &st, "branch3x3dbl_2", t, 448, 384, 3, 1, 1);
    b[3] = blk_conv(L, &st, "branch3x3dbl_3a", t, 384, 384, 1, 3, 1, 1, 0, 1);
    b[4] = blk_conv(L, &st, "branch3x3dbl_3b", t, 384, 384, 3, 1, 1, 1, 1, 0);
    t = blk_pool(L, &st, AVGPOOL, 0, 3, 1, 1, 0);
    b[5] = conv_sq(L, &st, "branch_pool", t, in, 192, 1, 1, 0);
    blk_concat(L, &st, b, 6);
    // No stacked 1x1 branches here (inception_fuse.c, "E"): on v3's 8x8 planes they tied unstacked at
    // batch 16 and held 35 MB more.
    return blk_finish(L, st, out);
}

static ply_status inception_v3_aux_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    const char *T = "inception_v3_aux";
    int64_t in, classes;
    ply_status st;
    if ((st = blk_positive_attr(host, attrs, T, "in_channels", &in)) != PLY_OK) return st;
    if ((st = blk_positive_attr(host, attrs, T, "num_classes", &classes)) != PLY_OK) return st;
    ply_layer *L = blk_new(host, T, "InceptionAux", in);
    if (!L) return PLY_ERR_OUT_OF_MEMORY;
    ply_attr pool[1], flat[1], fc[2];
    memset(pool, 0, sizeof pool);
    memset(flat, 0, sizeof flat);
    memset(fc, 0, sizeof fc);
    pool[0].name = "output_size"; pool[0].kind = PLY_ATTR_INT; pool[0].count = 1; pool[0].v.i = 1;
    flat[0].name = "start_dim"; flat[0].kind = PLY_ATTR_INT; flat[0].count = 1; flat[0].v.i = 1;
    fc[0].name = "in_features"; fc[0].kind = PLY_ATTR_INT; fc[0].count = 1; fc[0].v.i = 768;
    fc[1].name = "out_features"; fc[1].kind = PLY_ATTR_INT; fc[1].count = 1; fc[1].v.i = classes;
    int32_t t = blk_pool(L, &st, AVGPOOL, 0, 5, 3, 0, 0);
    t = conv_sq(L, &st, "conv0", t, in, 128, 1, 1, 0);
    t = conv_sq(L, &st, "conv1", t, 128, 768, 5, 1, 0);
    t = blk_add(L, &st, NULL, "adaptive_avgpool2d", pool, 1, &t, 1);
    t = blk_add(L, &st, NULL, "flatten", flat, 1, &t, 1);
    blk_add(L, &st, "fc", "linear", fc, 2, &t, 1);
    return blk_finish(L, st, out);
}

// ----------------------------------------------------------------------------
// self-description (ABI 1.2)

#define CHANNELS_SPEC(name_, doc_) {.name = name_, .kind = PLY_ATTR_INT, .flags = PLY_ATTR_REQUIRED, .doc = doc_}
#define IN_CHANNELS_SPEC CHANNELS_SPEC("in_channels", "channels of the input")

static const ply_attr_spec basic_conv2d_specs[] = {
    IN_CHANNELS_SPEC,
    CHANNELS_SPEC("out_channels", "channels of the output"),
    PLY_SPEC_KERNEL_SIZE,
    PLY_SPEC_STRIDE("1", "input pixels between neighbouring outputs: an int or [sh, sw]"),
    PLY_SPEC_PADDING,
    PLY_SPEC_END,
};
static const ply_attr_spec googlenet_specs[] = {
    IN_CHANNELS_SPEC,
    CHANNELS_SPEC("ch1x1", "output channels of branch1 (1x1 conv)"),
    CHANNELS_SPEC("ch3x3red", "channels of branch2's 1x1 reduction"),
    CHANNELS_SPEC("ch3x3", "output channels of branch2 (3x3 conv)"),
    CHANNELS_SPEC("ch5x5red", "channels of branch3's 1x1 reduction"),
    CHANNELS_SPEC("ch5x5", "output channels of branch3 (a 3x3 conv, as torchvision)"),
    CHANNELS_SPEC("pool_proj", "output channels of branch4 (max pool, then 1x1 conv)"),
    PLY_SPEC_END,
};
static const ply_attr_spec v3_a_specs[] = {
    IN_CHANNELS_SPEC,
    CHANNELS_SPEC("pool_features", "output channels of the pool branch"),
    PLY_SPEC_END,
};
static const ply_attr_spec in_channels_only_specs[] = {IN_CHANNELS_SPEC, PLY_SPEC_END};
static const ply_attr_spec v3_c_specs[] = {
    IN_CHANNELS_SPEC,
    CHANNELS_SPEC("channels_7x7", "channels inside the 1x7 / 7x1 branches"),
    PLY_SPEC_END,
};
static const ply_attr_spec v3_aux_specs[] = {
    IN_CHANNELS_SPEC,
    CHANNELS_SPEC("num_classes", "outputs of the final linear layer (fc)"),
    PLY_SPEC_END,
};

// ----------------------------------------------------------------------------
// descriptor

#define BLOCK_TYPE(var, type_name, type_doc, create_fn, specs, inputs) \
    static const ply_layer_type var = { \
        .struct_size = sizeof(ply_layer_type), \
        .abi_version = PLY_ABI_VERSION, \
        .name = type_name, \
        .doc = type_doc, \
        .min_inputs = 1, \
        .max_inputs = 1, \
        .create = create_fn, \
        .destroy = blk_destroy, \
        .infer_shape = blk_infer_shape, \
        .forward = blk_forward, \
        .backward = blk_backward, \
        .param_count = blk_param_count, \
        .get_param = blk_get_param, \
        .set_training = blk_set_training, \
        .attr_specs = specs, \
        .inputs_doc = inputs, \
        .describe = blk_describe, \
        .freeze = blk_freeze, \
        .eval_layouts = blk_eval_layouts, \
        .forward_layout = blk_forward_layout, \
    };

#define X_IN "x: (N, in_channels, H, W)"
BLOCK_TYPE(basic_conv2d_type, "basic_conv2d",
           "torchvision BasicConv2d: conv2d (no bias) + batchnorm2d (eps 0.001) + relu "
           "(in_channels, out_channels, kernel_size, stride=1, padding=0)",
           basic_conv2d_create, basic_conv2d_specs, X_IN)
BLOCK_TYPE(googlenet_type, "inception_googlenet",
           "torchvision GoogLeNet Inception block (in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj)",
           inception_googlenet_create, googlenet_specs, X_IN)
BLOCK_TYPE(v3_a_type, "inception_v3_a", "torchvision InceptionA (in_channels, pool_features)", inception_v3_a_create,
           v3_a_specs, X_IN)
BLOCK_TYPE(v3_b_type, "inception_v3_b", "torchvision InceptionB, stride 2 (in_channels)", inception_v3_b_create,
           in_channels_only_specs, X_IN)
BLOCK_TYPE(v3_c_type, "inception_v3_c", "torchvision InceptionC (in_channels, channels_7x7)", inception_v3_c_create,
           v3_c_specs, X_IN)
BLOCK_TYPE(v3_d_type, "inception_v3_d", "torchvision InceptionD, stride 2 (in_channels)", inception_v3_d_create,
           in_channels_only_specs, X_IN)
BLOCK_TYPE(v3_e_type, "inception_v3_e", "torchvision InceptionE (in_channels)", inception_v3_e_create,
           in_channels_only_specs, X_IN)
BLOCK_TYPE(v3_aux_type, "inception_v3_aux", "torchvision InceptionAux classifier head (in_channels, num_classes)",
           inception_v3_aux_create, v3_aux_specs, "x: (N, in_channels, H, W), H and W at least 5 (17 in Inception-v3)")

static const ply_layer_type *const types[] = {
    &basic_conv2d_type, &googlenet_type, &v3_a_type, &v3_b_type, &v3_c_type, &v3_d_type, &v3_e_type, &v3_aux_type,
};

static const ply_plugin plugin = {
    sizeof(ply_plugin), PLY_ABI_VERSION, "ply.inception", "1.0.0", (int32_t)(sizeof types / sizeof types[0]), 0,
    types,
};

PLY_BUILTIN_ENTRY(inception) {
    if (PLY_ABI_MAJOR_OF(host->abi_version) != PLY_ABI_VERSION_MAJOR) {
        ply_errorf(host, PLY_ERR_ABI, "ply.inception: built for ABI major %u, host has %u",
                   (unsigned)PLY_ABI_VERSION_MAJOR, (unsigned)PLY_ABI_MAJOR_OF(host->abi_version));
        return NULL;
    }
    return &plugin;
}
