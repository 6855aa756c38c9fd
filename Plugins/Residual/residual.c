/*
 * Residual family: torchvision's ResNet blocks, built from conv2d,
 * batchnorm2d and relu children created through the host.
 *
 *   residual_basic       BasicBlock (expansion 1):
 *       conv3x3(inplanes, planes, stride) -> bn1 -> relu
 *       -> conv3x3(planes, planes) -> bn2 -> (+ shortcut) -> relu
 *   residual_bottleneck  Bottleneck (expansion 4, stride on the 3x3 conv, "v1.5"):
 *       conv1x1(inplanes, planes) -> bn1 -> relu -> conv3x3(planes, planes, stride)
 *       -> bn2 -> relu -> conv1x1(planes, 4*planes) -> bn3 -> (+ shortcut) -> relu
 *
 * The shortcut is the input itself, or with downsample conv1x1(inplanes,
 * planes*expansion, stride) -> bn ("downsample.0", "downsample.1"). Convs
 * have no bias; batch-norms use eps 1e-5, momentum 0.1.
 *
 * Attributes: inplanes, planes (required), stride (1), downsample (default:
 * stride != 1 or inplanes != planes*expansion), groups (1), base_width (64),
 * dilation (1); only the defaults of the last three are supported.
 *
 * Parameters and buffers: the children's, in state_dict order (conv1.weight,
 * bn1.weight, bn1.bias, bn1.running_mean, bn1.running_var,
 * bn1.num_batches_tracked, conv2.weight, ..., downsample.0.weight,
 * downsample.1.weight, ...).
 */
#include <stdio.h>
#include <stddef.h>
#include <string.h>

#include "residual.h"

// ----------------------------------------------------------------------------
// children

static ply_attr int_attr(const char *name, int64_t v) {
    ply_attr a = {name, PLY_ATTR_INT, 1, {.i = v}};
    return a;
}

static ply_attrs attr_list(const ply_attr *items, int32_t count) {
    ply_attrs l = {sizeof(ply_attrs), PLY_ABI_VERSION, count, 0, items};
    return l;
}

static ply_status make_child(ply_layer *self, rb_child *c, const char *type, const ply_attrs *attrs) {
    const ply_host *h = self->host;
    ply_status st = h->create_layer(h, type, attrs, &c->type, &c->layer);
    if (st != PLY_OK) {
        c->type = NULL; c->layer = NULL;
        return st;
    }
    if (!c->type->backward) {
        c->type->destroy(c->layer);
        c->type = NULL; c->layer = NULL;
        return ply_errorf(h, PLY_ERR_UNSUPPORTED, "%s: child layer type '%s' has no backward", self->tname, type);
    }
    return PLY_OK;
}

static ply_status make_conv(ply_layer *self, rb_child *c, int64_t in, int64_t out, int64_t k, int64_t stride) {
    ply_attr items[6] = {
        int_attr("in_channels", in), int_attr("out_channels", out), int_attr("kernel_size", k),
        int_attr("stride", stride), int_attr("padding", k / 2), {"bias", PLY_ATTR_BOOL, 1, {.i = 0}},
    };
    ply_attrs attrs = attr_list(items, 6);
    return make_child(self, c, "conv2d", &attrs);
}

static ply_status make_bn(ply_layer *self, rb_child *c, int64_t channels) {
    ply_attr items[3] = {
        int_attr("num_features", channels), {"eps", PLY_ATTR_FLOAT, 1, {.f = 1e-5}},
        {"momentum", PLY_ATTR_FLOAT, 1, {.f = 0.1}},
    };
    ply_attrs attrs = attr_list(items, 3);
    return make_child(self, c, "batchnorm2d", &attrs);
}

static void destroy_child(rb_child *c) {
    if (c->layer) c->type->destroy(c->layer);
    c->layer = NULL;
}

static void rb_destroy(ply_layer *self) {
    if (!self) return;
    const ply_host *h = self->host;
    for (int32_t k = 0; k < RB_MAX_STAGES; k++) {
        destroy_child(&self->conv[k]);
        destroy_child(&self->bn[k]);
    }
    destroy_child(&self->relu);
    destroy_child(&self->ds_conv);
    destroy_child(&self->ds_bn);
    for (int32_t k = 0; k < RB_MAX_STAGES; k++) ply_fold_destroy(&self->fold[k]);
    ply_fold_destroy(&self->ds_fold);
    for (int32_t i = 0; i < RB_NBUF; i++) h->free(h, self->buf[i].data);
    h->free(h, self->names);
    h->free(h, self);
}

// ----------------------------------------------------------------------------
// attributes

static ply_status read_int(ply_layer *self, const ply_attrs *attrs, const char *name, int64_t dflt, int required,
                           int64_t *out) {
    const ply_host *h = self->host;
    ply_status st = h->attr_int(h, attrs, name, out);
    if (st == PLY_ERR_NOT_FOUND) {
        if (required) return ply_errorf(h, PLY_ERR_NOT_FOUND, "%s: missing attribute '%s'", self->tname, name);
        *out = dflt;
        return PLY_OK;
    }
    return st;
}

// Reads and checks every attribute into self; creates nothing.
static ply_status read_attrs(ply_layer *self, const ply_attrs *attrs, int64_t expansion) {
    const ply_host *h = self->host;
    int64_t groups, base_width, dilation;
    ply_status st;
    if ((st = read_int(self, attrs, "inplanes", 0, 1, &self->inplanes)) != PLY_OK) return st;
    if ((st = read_int(self, attrs, "planes", 0, 1, &self->planes)) != PLY_OK) return st;
    if ((st = read_int(self, attrs, "stride", 1, 0, &self->stride)) != PLY_OK) return st;
    if ((st = read_int(self, attrs, "groups", 1, 0, &groups)) != PLY_OK) return st;
    if ((st = read_int(self, attrs, "base_width", 64, 0, &base_width)) != PLY_OK) return st;
    if ((st = read_int(self, attrs, "dilation", 1, 0, &dilation)) != PLY_OK) return st;
    if (self->inplanes <= 0 || self->planes <= 0)
        return ply_errorf(h, PLY_ERR_INVALID_ARGUMENT, "%s: inplanes and planes must be positive (got %lld, %lld)",
                          self->tname, (long long)self->inplanes, (long long)self->planes);
    if (self->stride <= 0)
        return ply_errorf(h, PLY_ERR_INVALID_ARGUMENT, "%s: stride must be positive (got %lld)", self->tname,
                          (long long)self->stride);
    if (groups != 1 || base_width != 64 || dilation != 1)
        return ply_errorf(h, PLY_ERR_UNSUPPORTED,
                          "%s: only groups=1, base_width=64, dilation=1 are supported (got groups=%lld, "
                          "base_width=%lld, dilation=%lld)", self->tname, (long long)groups, (long long)base_width,
                          (long long)dilation);
    self->out_channels = self->planes * expansion;
    int32_t needed = self->stride != 1 || self->inplanes != self->out_channels;
    self->downsample = needed;
    st = h->attr_bool(h, attrs, "downsample", &self->downsample);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    if (needed && !self->downsample)
        return ply_errorf(h, PLY_ERR_INVALID_ARGUMENT,
                          "%s: downsample=false needs an identity shortcut of the output's shape, but stride is %lld "
                          "and inplanes %lld != planes*expansion %lld; use downsample=true",
                          self->tname, (long long)self->stride, (long long)self->inplanes,
                          (long long)self->out_channels);
    return PLY_OK;
}

// ----------------------------------------------------------------------------
// create

static ply_status add_owner(ply_layer *self, const rb_child *c, const char *prefix) {
    const ply_host *h = self->host;
    int32_t n = c->type->param_count && c->type->get_param ? c->type->param_count(c->layer) : 0;
    if (n <= 0) return PLY_OK;
    char (*names)[RB_NAME_LEN] = h->alloc(h, (size_t)(self->nparams + n) * RB_NAME_LEN);
    if (!names) return ply_errorf(h, PLY_ERR_OUT_OF_MEMORY, "%s: out of memory", self->tname);
    if (self->nparams) memcpy(names, self->names, (size_t)self->nparams * RB_NAME_LEN);
    h->free(h, self->names);
    self->names = names;
    for (int32_t i = 0; i < n; i++) {
        ply_param p;
        memset(&p, 0, sizeof p);
        ply_status st = c->type->get_param(c->layer, i, &p);
        if (st != PLY_OK) return st;
        int len = snprintf(names[self->nparams + i], RB_NAME_LEN, "%s.%s", prefix, p.name ? p.name : "");
        if (len < 0 || len >= RB_NAME_LEN)
            return ply_errorf(h, PLY_ERR_INTERNAL, "%s: parameter name %s.%s is too long", self->tname, prefix,
                              p.name ? p.name : "");
    }
    self->owners[self->nowners] = c;
    self->owner_count[self->nowners++] = n;
    self->nparams += n;
    return PLY_OK;
}

static ply_status create_block(const ply_host *host, const ply_attrs *attrs, ply_layer **out, int bottleneck) {
    ply_layer *self = host->alloc(host, sizeof *self);
    const char *tname = bottleneck ? "residual_bottleneck" : "residual_basic";
    if (!self) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "%s: out of memory", tname);
    memset(self, 0, sizeof *self);
    self->host = host;
    self->tname = tname;
    self->stages = bottleneck ? 3 : 2;
    self->training = 1;
    ply_status st = read_attrs(self, attrs, bottleneck ? 4 : 1);
    if (st != PLY_OK) { rb_destroy(self); return st; }

    // Children in torchvision's creation (and state_dict) order.
    int64_t P = self->planes, S = self->stride;
    ply_attrs none = attr_list(NULL, 0);
    if (bottleneck) {
        if ((st = make_conv(self, &self->conv[0], self->inplanes, P, 1, 1)) == PLY_OK &&
            (st = make_bn(self, &self->bn[0], P)) == PLY_OK &&
            (st = make_conv(self, &self->conv[1], P, P, 3, S)) == PLY_OK &&
            (st = make_bn(self, &self->bn[1], P)) == PLY_OK &&
            (st = make_conv(self, &self->conv[2], P, self->out_channels, 1, 1)) == PLY_OK)
            st = make_bn(self, &self->bn[2], self->out_channels);
    } else {
        if ((st = make_conv(self, &self->conv[0], self->inplanes, P, 3, S)) == PLY_OK &&
            (st = make_bn(self, &self->bn[0], P)) == PLY_OK &&
            (st = make_conv(self, &self->conv[1], P, P, 3, 1)) == PLY_OK)
            st = make_bn(self, &self->bn[1], P);
    }
    if (st == PLY_OK) st = make_child(self, &self->relu, "relu", &none);
    if (st == PLY_OK && self->downsample &&
        (st = make_conv(self, &self->ds_conv, self->inplanes, self->out_channels, 1, S)) == PLY_OK)
        st = make_bn(self, &self->ds_bn, self->out_channels);

    static const char *const conv_names[] = {"conv1", "conv2", "conv3"};
    static const char *const bn_names[] = {"bn1", "bn2", "bn3"};
    for (int32_t k = 0; st == PLY_OK && k < self->stages; k++) {
        if ((st = add_owner(self, &self->conv[k], conv_names[k])) == PLY_OK)
            st = add_owner(self, &self->bn[k], bn_names[k]);
    }
    if (st == PLY_OK && self->downsample && (st = add_owner(self, &self->ds_conv, "downsample.0")) == PLY_OK)
        st = add_owner(self, &self->ds_bn, "downsample.1");
    if (st != PLY_OK) { rb_destroy(self); return st; }
    // The relu after every stage but the last (that one follows the addition) goes into its bn
    // when the bn type takes it: one pass and one buffer less per stage.
    for (int32_t k = 0; k + 1 < self->stages; k++) {
        const ply_layer_type *t = self->bn[k].type;
        self->fused[k] = t->struct_size >= offsetof(ply_layer_type, fuse_activation) + sizeof(t->fuse_activation) &&
                         t->fuse_activation && t->fuse_activation(self->bn[k].layer, "relu") == PLY_OK;
    }
    *out = self;
    return PLY_OK;
}

static ply_status basic_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    return create_block(host, attrs, out, 0);
}

static ply_status bottleneck_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    return create_block(host, attrs, out, 1);
}

// ----------------------------------------------------------------------------
// parameters, mode

static int32_t rb_param_count(ply_layer *self) {
    return self->nparams;
}

static ply_status rb_get_param(ply_layer *self, int32_t index, ply_param *out) {
    if (self->frozen)
        return ply_errorf(self->host, PLY_ERR_UNSUPPORTED, "%s: frozen for inference: its parameters were freed",
                          self->tname);
    if (index < 0 || index >= self->nparams)
        return ply_errorf(self->host, PLY_ERR_NOT_FOUND, "%s: parameter index %d out of range [0, %d)", self->tname,
                          index, self->nparams);
    int32_t base = 0, o = 0;
    while (index >= base + self->owner_count[o]) base += self->owner_count[o++];
    const rb_child *c = self->owners[o];
    ply_status st = c->type->get_param(c->layer, index - base, out);
    if (st != PLY_OK) return st;
    out->name = self->names[index];
    return PLY_OK;
}

static void set_child_training(rb_child *c, int32_t training) {
    if (c->layer && c->type->set_training) c->type->set_training(c->layer, training);
}

static void rb_set_training(ply_layer *self, int32_t training) {
    if (self->frozen) return; // plugin.h: the host no longer calls it; forward stays in evaluation
    self->training = training != 0;
    if (!training) { // evaluation keeps nothing between calls
        rb_release_buffers(self);
        self->kept = 0;
    }
    for (int32_t k = 0; k < RB_MAX_STAGES; k++) {
        set_child_training(&self->conv[k], training);
        set_child_training(&self->bn[k], training);
    }
    set_child_training(&self->relu, training);
    set_child_training(&self->ds_conv, training);
    set_child_training(&self->ds_bn, training);
}

// ----------------------------------------------------------------------------
// self-description (ABI 1.2)

static const ply_attr_spec rb_specs[] = {
    {.name = "inplanes", .kind = PLY_ATTR_INT, .flags = PLY_ATTR_REQUIRED, .doc = "channels of the input"},
    {.name = "planes", .kind = PLY_ATTR_INT, .flags = PLY_ATTR_REQUIRED,
     .doc = "channels of the 3x3 conv; the output has planes x expansion (1 basic, 4 bottleneck)"},
    {.name = "stride", .kind = PLY_ATTR_INT, .default_text = "1",
     .doc = "stride of the block (on its 3x3 conv and the downsample conv)"},
    {.name = "downsample", .kind = PLY_ATTR_BOOL, .default_text = NULL,
     .doc = "conv1x1 + bn shortcut; absent: when stride != 1 or inplanes != planes x expansion"},
    {.name = "groups", .kind = PLY_ATTR_INT, .default_text = "1", .doc = "torchvision's groups; only 1 is supported"},
    {.name = "base_width", .kind = PLY_ATTR_INT, .default_text = "64",
     .doc = "torchvision's base_width; only 64 is supported"},
    {.name = "dilation", .kind = PLY_ATTR_INT, .default_text = "1",
     .doc = "torchvision's dilation; only 1 is supported"},
    PLY_SPEC_END,
};

// One conv+bn stage (or the downsample pair) for describe: reports both children under their torchvision
// names, composes the conv's window onto *w and moves *x to the bn's output shape.
static ply_status describe_stage(ply_layer_info *info, const char *conv_name, const rb_child *conv,
                                 const char *bn_name, const rb_child *bn, ply_shape *x, ply_window *w) {
    ply_shape c_out, b_out;
    ply_window cw;
    const double plane[2] = {(double)x->dims[2], (double)x->dims[3]};
    ply_status st = conv->type->infer_shape(conv->layer, 1, x, &c_out);
    if (st == PLY_OK) st = bn->type->infer_shape(bn->layer, 1, &c_out, &b_out);
    if (st == PLY_OK) st = ply_child_window(conv->type, conv->layer, 1, x, plane, &cw, NULL);
    if (st == PLY_OK) st = ply_info_add_child(info, conv_name, conv->type, conv->layer, 1, x, &c_out);
    if (st == PLY_OK) st = ply_info_add_child(info, bn_name, bn->type, bn->layer, 1, &c_out, &b_out);
    if (st != PLY_OK) return st;
    *w = ply_window_then(*w, cw);
    *x = b_out;
    return PLY_OK;
}

// Children in torchvision's registration order (BasicBlock: conv1, bn1, relu, conv2, bn2, downsample;
// Bottleneck: conv1, bn1, conv2, bn2, conv3, bn3, relu, downsample), each with the shapes it sees. The
// block's own MACs are 0 (its convs are children); its window is the longer of the main path (the convs
// composed) and the shortcut.
static ply_status rb_describe(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, ply_layer_info *info) {
    static const char *const conv_names[] = {"conv1", "conv2", "conv3"};
    static const char *const bn_names[] = {"bn1", "bn2", "bn3"};
    ply_shape out;
    if (self->frozen)
        return ply_errorf(self->host, PLY_ERR_UNSUPPORTED, "%s: frozen for inference: its children were freed",
                          self->tname);
    ply_status st = rb_infer_shape(self, n_inputs, inputs, &out);
    if (st != PLY_OK) return st;
    ply_shape x = inputs[0];
    ply_window main_path = ply_window_identity(), shortcut = ply_window_identity();
    for (int32_t k = 0; k < self->stages; k++) {
        if ((st = describe_stage(info, conv_names[k], &self->conv[k], bn_names[k], &self->bn[k], &x, &main_path)) !=
            PLY_OK)
            return st;
        // torchvision registers its one ReLU module after bn1 (BasicBlock) or bn3 (Bottleneck).
        if (k == (self->stages == 2 ? 0 : 2) &&
            (st = ply_info_add_child(info, "relu", self->relu.type, self->relu.layer, 1, &x, &x)) != PLY_OK)
            return st;
    }
    if (self->downsample) {
        ply_shape d = inputs[0];
        if ((st = describe_stage(info, "downsample.0", &self->ds_conv, "downsample.1", &self->ds_bn, &d,
                                 &shortcut)) != PLY_OK)
            return st;
    }
    ply_info_set_window(info, ply_window_join(main_path, shortcut));
    ply_info_set_class_name(info, self->stages == 2 ? "BasicBlock" : "Bottleneck");
    return PLY_OK;
}

// ----------------------------------------------------------------------------
// descriptor

#define RB_TYPE(var, type_name, type_doc, create_fn) \
    static const ply_layer_type var = { \
        .struct_size = sizeof(ply_layer_type), \
        .abi_version = PLY_ABI_VERSION, \
        .name = type_name, \
        .doc = type_doc, \
        .min_inputs = 1, \
        .max_inputs = 1, \
        .create = create_fn, \
        .destroy = rb_destroy, \
        .infer_shape = rb_infer_shape, \
        .forward = rb_forward, \
        .backward = rb_backward, \
        .param_count = rb_param_count, \
        .get_param = rb_get_param, \
        .set_training = rb_set_training, \
        .attr_specs = rb_specs, \
        .inputs_doc = "x: (N, inplanes, H, W)", \
        .describe = rb_describe, \
        .freeze = rb_freeze, \
        .eval_layouts = rb_eval_layouts, \
        .forward_layout = rb_forward_layout, \
    };
RB_TYPE(basic_type, "residual_basic",
        "torchvision ResNet BasicBlock: two 3x3 conv+bn, identity or downsample shortcut, relu "
        "(inplanes, planes, stride=1, downsample)",
        basic_create)
RB_TYPE(bottleneck_type, "residual_bottleneck",
        "torchvision ResNet Bottleneck (v1.5, expansion 4): 1x1, 3x3 (stride), 1x1 conv+bn, shortcut, relu "
        "(inplanes, planes, stride=1, downsample)",
        bottleneck_create)

static const ply_layer_type *const types[] = {&basic_type, &bottleneck_type};

static const ply_plugin plugin = {
    sizeof(ply_plugin), PLY_ABI_VERSION, "ply.residual", "1.0.0", 2, 0, types,
};

PLY_BUILTIN_ENTRY(residual) {
    if (PLY_ABI_MAJOR_OF(host->abi_version) != PLY_ABI_VERSION_MAJOR) {
        ply_errorf(host, PLY_ERR_ABI, "ply.residual: built for ABI major %u, host has %u",
                   (unsigned)PLY_ABI_VERSION_MAJOR, (unsigned)PLY_ABI_MAJOR_OF(host->abi_version));
        return NULL;
    }
    return &plugin;
}
