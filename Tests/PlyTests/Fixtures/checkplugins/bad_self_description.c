/*
 * Layer types whose attribute schema (attr_specs) or describe callback breaks
 * one rule each of plugin.h's ABI 1.2, for ply-plugin-check's checks 6 and 7
 * (Tests/PlyTests/PluginCheckTests.swift runs the checker on each type with
 * --type and expects exactly one FAIL, naming the rule). Two types break
 * nothing (sd_leaf, sd_block), so the checks are seen to pass a correct
 * plugin too. Every type is the identity on one input of any shape; sd_leaf
 * has one trainable scalar "weight"; the composites create an sd_leaf child
 * through host->create_layer and re-export its weight as "inner.weight".
 * Built with `cc -std=c99 -Wall -Wextra -pedantic -Werror -shared -fPIC -I Include`.
 */
#include <stddef.h>
#include <string.h>

#include "ply/plugin.h"

/* What each type's describe does. */
typedef enum {
    D_NONE,          /* no describe (the schema types) */
    D_LEAF,          /* correct: 1 MAC per element, a 3x3 window of stride 1 */
    D_BLOCK,         /* correct composite: child "inner", its MACs, class name */
    D_NEGATIVE_MACS, /* -5 MACs */
    D_ZERO_STRIDE,   /* a spatial window with stride 0 */
    D_UNKNOWN_WINDOW,/* window kind 7 */
    D_FAILS,         /* returns PLY_ERR_INTERNAL for shapes infer_shape accepts */
    D_IMPURE,        /* MACs count the calls */
    D_HOST_FIELDS,   /* overwrites abi_version, which the host owns */
    D_WRONG_NAME,    /* reports its child as "other", its parameter is "inner.weight" */
    D_WRONG_SHAPE    /* reports the child's output with one channel too many */
} describe_mode;

struct ply_layer {
    const ply_host *host;
    describe_mode mode;
    int calls;
    float weight, grad;
    const ply_layer_type *child_type;
    ply_layer *child;
};

static ply_status make(const ply_host *host, describe_mode mode, int composite, ply_layer **out) {
    ply_layer *self = (ply_layer *)host->alloc(host, sizeof *self);
    ply_status st;
    if (!self) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "sd: out of memory");
    memset(self, 0, sizeof *self);
    self->host = host;
    self->mode = mode;
    self->weight = 0.5f;
    if (composite) {
        ply_attrs none;
        memset(&none, 0, sizeof none);
        none.struct_size = (uint32_t)sizeof none;
        none.abi_version = PLY_ABI_VERSION;
        st = host->create_layer(host, "sd_leaf", &none, &self->child_type, &self->child);
        if (st != PLY_OK) {
            host->free(host, self);
            return st;
        }
    }
    *out = self;
    return PLY_OK;
}

static void sd_destroy(ply_layer *self) {
    if (!self) return;
    if (self->child) self->child_type->destroy(self->child);
    self->host->free(self->host, self);
}

static ply_status sd_infer_shape(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, ply_shape *output) {
    (void)self;
    (void)n_inputs;
    *output = inputs[0];
    return PLY_OK;
}

static ply_status sd_forward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output) {
    (void)self;
    (void)n_inputs;
    memcpy(output->data, inputs[0].data, (size_t)ply_shape_numel(&inputs[0].shape) * sizeof(float));
    return PLY_OK;
}

static int32_t sd_param_count(ply_layer *self) { return self->child || self->mode == D_LEAF ? 1 : 0; }

static ply_status sd_get_param(ply_layer *self, int32_t index, ply_param *out) {
    ply_shape one = ply_shape_make(1, 1, 0, 0, 0);
    if (index != 0 || sd_param_count(self) == 0)
        return ply_errorf(self->host, PLY_ERR_INVALID_ARGUMENT, "sd: no parameter %d", (int)index);
    if (self->child) *out = ply_param_make("inner.weight", &self->child->weight, &self->child->grad, one);
    else *out = ply_param_make("weight", &self->weight, &self->grad, one);
    return PLY_OK;
}

static ply_status sd_describe(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, ply_layer_info *info) {
    ply_shape out = inputs[0];
    (void)n_inputs;
    switch (self->mode) {
    case D_NONE:
        return PLY_OK;
    case D_LEAF:
        info->macs = ply_shape_numel(&inputs[0]);
        info->window = PLY_WINDOW_SPATIAL;
        info->kernel[0] = info->kernel[1] = 3;
        info->stride[0] = info->stride[1] = 1;
        return PLY_OK;
    case D_NEGATIVE_MACS:
        info->macs = -5;
        return PLY_OK;
    case D_ZERO_STRIDE:
        info->window = PLY_WINDOW_SPATIAL;
        info->kernel[0] = info->kernel[1] = 3;
        info->stride[0] = 1;
        info->stride[1] = 0;
        return PLY_OK;
    case D_UNKNOWN_WINDOW:
        info->window = 7;
        return PLY_OK;
    case D_FAILS:
        return ply_errorf(self->host, PLY_ERR_INTERNAL, "sd_describe_fails: cannot describe this shape");
    case D_IMPURE:
        info->macs = ++self->calls;
        return PLY_OK;
    case D_HOST_FIELDS:
        info->abi_version = 0;
        return PLY_OK;
    case D_BLOCK:
    case D_WRONG_NAME:
    case D_WRONG_SHAPE:
        info->class_name = "Block";
        if (self->mode == D_WRONG_SHAPE) out.dims[1] += 1;
        return info->add_child(info, self->mode == D_WRONG_NAME ? "other" : "inner", self->child_type, self->child, 1,
                               inputs, &out);
    }
    return PLY_OK;
}

/* create for each type: the describe mode, and whether it has a child. */
#define SD_CREATE(fn, mode, composite) \
    static ply_status fn(const ply_host *host, const ply_attrs *attrs, ply_layer **out) { \
        (void)attrs; \
        return make(host, mode, composite, out); \
    }
SD_CREATE(create_none, D_NONE, 0)
SD_CREATE(create_leaf, D_LEAF, 0)
SD_CREATE(create_block, D_BLOCK, 1)
SD_CREATE(create_negative_macs, D_NEGATIVE_MACS, 0)
SD_CREATE(create_zero_stride, D_ZERO_STRIDE, 0)
SD_CREATE(create_unknown_window, D_UNKNOWN_WINDOW, 0)
SD_CREATE(create_fails, D_FAILS, 0)
SD_CREATE(create_impure, D_IMPURE, 0)
SD_CREATE(create_host_fields, D_HOST_FIELDS, 0)
SD_CREATE(create_wrong_name, D_WRONG_NAME, 1)
SD_CREATE(create_wrong_shape, D_WRONG_SHAPE, 1)

/* ---- schemas ---- */

#define END {NULL, 0, 0, NULL, NULL}
static const ply_attr_spec good_specs[] = {
    {"scale", PLY_ATTR_FLOAT, 0, "1e-05", "a number"},
    {"kernel_size", PLY_ATTR_INTS, PLY_ATTR_PAIR, "3", "an int or a pair"},
    {"padding", PLY_ATTR_INTS, PLY_ATTR_PAIR | PLY_ATTR_OR_STRING, "same", "a pair or a word"},
    {"factors", PLY_ATTR_FLOATS, PLY_ATTR_SCALAR_OR_LIST, "[]", "a number or a list"},
    {"bias", PLY_ATTR_BOOL, 0, "true", "a boolean"},
    {"channels", PLY_ATTR_INT, PLY_ATTR_REQUIRED, NULL, "required, no default"},
    END,
};
static const ply_attr_spec dup_specs[] = {{"alpha", PLY_ATTR_INT, 0, "1", "first"}, {"alpha", PLY_ATTR_INT, 0, "2", "again"}, END};
static const ply_attr_spec bad_name_specs[] = {{"kernel-size", PLY_ATTR_INT, 0, "3", "a dash"}, END};
static const ply_attr_spec structural_specs[] = {{"inputs", PLY_ATTR_INT, 0, "1", "a model file's key"}, END};
static const ply_attr_spec bad_kind_specs[] = {{"alpha", 9, 0, NULL, "kind 9"}, END};
static const ply_attr_spec bad_flags_specs[] = {{"alpha", PLY_ATTR_INT, 64, NULL, "flag 64"}, END};
static const ply_attr_spec pair_specs[] = {{"alpha", PLY_ATTR_INT, PLY_ATTR_PAIR, NULL, "a pair of kind INT"}, END};
static const ply_attr_spec bad_default_specs[] = {{"alpha", PLY_ATTR_INT, 0, "three", "a word for an int"}, END};
static const ply_attr_spec required_default_specs[] = {{"alpha", PLY_ATTR_INT, PLY_ATTR_REQUIRED, "1", "required"}, END};
static const ply_attr_spec no_doc_specs[] = {{"alpha", PLY_ATTR_INT, 0, "1", NULL}, END};
/* 256 entries and no NULL-named end. */
#define S1 {"alpha", PLY_ATTR_INT, 0, NULL, "endless"}
#define S4 S1, S1, S1, S1
#define S16 S4, S4, S4, S4
#define S64 S16, S16, S16, S16
static const ply_attr_spec endless_specs[] = {S64, S64, S64, S64};

#define SD_TYPE(var, type_name, create_fn, specs, has_describe) \
    static const ply_layer_type var = { \
        .struct_size = sizeof(ply_layer_type), \
        .abi_version = PLY_ABI_VERSION, \
        .name = type_name, \
        .doc = "identity (a test type for ply-plugin-check's self-description checks)", \
        .min_inputs = 1, \
        .max_inputs = 1, \
        .create = create_fn, \
        .destroy = sd_destroy, \
        .infer_shape = sd_infer_shape, \
        .forward = sd_forward, \
        .param_count = sd_param_count, \
        .get_param = sd_get_param, \
        .attr_specs = specs, \
        .inputs_doc = "x: any shape", \
        .describe = has_describe ? sd_describe : NULL, \
    };
SD_TYPE(leaf, "sd_leaf", create_leaf, good_specs, 1)
SD_TYPE(block, "sd_block", create_block, good_specs, 1)
SD_TYPE(dup_name, "sd_dup_name", create_none, dup_specs, 0)
SD_TYPE(bad_name, "sd_bad_name", create_none, bad_name_specs, 0)
SD_TYPE(structural_name, "sd_structural_name", create_none, structural_specs, 0)
SD_TYPE(bad_kind, "sd_bad_kind", create_none, bad_kind_specs, 0)
SD_TYPE(bad_flags, "sd_bad_flags", create_none, bad_flags_specs, 0)
SD_TYPE(pair_not_ints, "sd_pair_not_ints", create_none, pair_specs, 0)
SD_TYPE(bad_default, "sd_bad_default", create_none, bad_default_specs, 0)
SD_TYPE(required_default, "sd_required_default", create_none, required_default_specs, 0)
SD_TYPE(no_doc, "sd_no_doc", create_none, no_doc_specs, 0)
SD_TYPE(endless, "sd_endless_specs", create_none, endless_specs, 0)
SD_TYPE(negative_macs, "sd_negative_macs", create_negative_macs, good_specs, 1)
SD_TYPE(zero_stride, "sd_zero_stride", create_zero_stride, good_specs, 1)
SD_TYPE(unknown_window, "sd_unknown_window", create_unknown_window, good_specs, 1)
SD_TYPE(fails, "sd_describe_fails", create_fails, good_specs, 1)
SD_TYPE(impure, "sd_impure", create_impure, good_specs, 1)
SD_TYPE(host_fields, "sd_host_fields", create_host_fields, good_specs, 1)
SD_TYPE(wrong_name, "sd_wrong_child_name", create_wrong_name, good_specs, 1)
SD_TYPE(wrong_shape, "sd_wrong_child_shape", create_wrong_shape, good_specs, 1)

static const ply_layer_type *const types[] = {
    &leaf, &block, &dup_name, &bad_name, &structural_name, &bad_kind, &bad_flags, &pair_not_ints, &bad_default,
    &required_default, &no_doc, &endless, &negative_macs, &zero_stride, &unknown_window, &fails, &impure,
    &host_fields, &wrong_name, &wrong_shape,
};
static const ply_plugin plugin = {.struct_size = sizeof(ply_plugin), .abi_version = PLY_ABI_VERSION,
                                  .name = "test.bad_self_description", .version = "1.0",
                                  .type_count = (int32_t)(sizeof types / sizeof types[0]), .types = types};

PLY_EXPORT const ply_plugin *ply_plugin_entry(const ply_host *host) {
    if (PLY_ABI_MAJOR_OF(host->abi_version) != PLY_ABI_VERSION_MAJOR) {
        host->set_error(host, PLY_ERR_ABI, "test.bad_self_description: built for Ply ABI 1.x");
        return NULL;
    }
    return &plugin;
}
