/*
 * Batch-norm folded into the conv before it, for composites' inference
 * (residual blocks, Inception's basic_conv2d).
 *
 * In evaluation a batch-norm is a fixed per-channel affine map, so
 *     bn(conv(x; w, b)) = conv(x; w', b'),   s[o] = gamma[o] / sqrt(var[o] + eps),
 *     w'[o, c, i, j] = w[o, c, i, j] * s[o],  b'[o] = (b[o] - mean[o]) * s[o] + beta[o]
 * (b = 0 for a conv without bias): one layer and one pass over the output
 * instead of two. A composite keeps its conv and bn children as they are (they
 * own the weights, train, load and save) and makes one more conv2d child with
 * bias, the "folded" conv, whose weight and bias it writes with ply_fold_write
 * from its children's values. It runs the folded conv in evaluation only.
 *
 * Keeping the copy in sync: the folded values are derived from the children's
 * at one host parameter generation (ply_host.param_generation, ABI 1.3), and
 * derived again when the generation moved or the composite itself changed the
 * statistics (a training forward). ply_fold_stale says when.
 *
 * Ownership: the ply_fold owns its conv child (ply_fold_destroy). Threading:
 * as the owning layer (one thread at a time).
 */
#ifndef PLY_PLUGIN_FOLD_H
#define PLY_PLUGIN_FOLD_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ply/plugin.h"
#include "plugin_support.h"

/** A folded conv child and the generation its values were derived at. */
typedef struct ply_fold {
    const ply_layer_type *type; /**< conv2d's type; NULL until made */
    ply_layer *layer;           /**< the folded conv (bias on, relu fused when asked) */
    uint64_t generation;        /**< host param_generation at the last ply_fold_write */
    int32_t valid;              /**< values derived and not invalidated since */
    int32_t relu;               /**< the folded conv applies a relu (fuse_activation took it) */
} ply_fold;

/** Whether f's values must be derived again before use: never derived, invalidated, the host's
 *  generation moved, or the host cannot tell (then every call derives). */
static inline int ply_fold_stale(const ply_host *h, const ply_fold *f) {
    uint64_t g;
    if (!f->valid || !ply_host_param_generation(h, &g)) return 1;
    return g != f->generation;
}

static inline void ply_fold_destroy(ply_fold *f) {
    if (f->layer) f->type->destroy(f->layer);
    f->layer = NULL;
    f->type = NULL;
    f->valid = 0;
}

/** Param `name` of a child with exactly `count` float32 values, into *out; else an error naming it. */
static inline ply_status ply_fold_param(const ply_host *h, const char *owner, const ply_layer_type *t, ply_layer *l,
                                        const char *name, int64_t count, float **out) {
    int32_t n = t->param_count && t->get_param ? t->param_count(l) : 0;
    for (int32_t i = 0; i < n; i++) {
        ply_param p;
        memset(&p, 0, sizeof p);
        ply_status st = t->get_param(l, i, &p);
        if (st != PLY_OK) return st;
        if (!p.name || strcmp(p.name, name) != 0) continue;
        if (p.value.dtype != PLY_DTYPE_F32 || !p.value.data || ply_shape_numel(&p.value.shape) != count)
            return ply_errorf(h, PLY_ERR_INTERNAL,
                              "%s: cannot fold batch norm: %s's '%s' is not %lld float32 values", owner, t->name,
                              name, (long long)count);
        *out = (float *)p.value.data;
        return PLY_OK;
    }
    *out = NULL;
    return PLY_ERR_NOT_FOUND;
}

/**
 * Writes f's folded weight and bias from conv (weights [OC, K] flattened, optional bias) and bn
 * (weight, bias, running_mean, running_var, all [OC]; a bn without affine counts as gamma 1,
 * beta 0), with bn's `eps`, and records the host generation. Arithmetic in double, rounded once.
 * Then calls the folded conv's set_training(0): the values changed without the generation moving,
 * and conv2d takes that call as the sign to check what it derived from them.
 */
static inline ply_status ply_fold_write(const ply_host *h, const char *owner, ply_fold *f, const ply_layer_type *ct,
                                        ply_layer *conv, const ply_layer_type *bt, ply_layer *bn, int64_t OC,
                                        int64_t K, double eps) {
    float *w, *b = NULL, *gamma = NULL, *beta = NULL, *mean, *var, *fw, *fb;
    ply_status st;
    f->valid = 0;
    if ((st = ply_fold_param(h, owner, ct, conv, "weight", OC * K, &w)) != PLY_OK ||
        (st = ply_fold_param(h, owner, bt, bn, "running_mean", OC, &mean)) != PLY_OK ||
        (st = ply_fold_param(h, owner, bt, bn, "running_var", OC, &var)) != PLY_OK ||
        (st = ply_fold_param(h, owner, f->type, f->layer, "weight", OC * K, &fw)) != PLY_OK ||
        (st = ply_fold_param(h, owner, f->type, f->layer, "bias", OC, &fb)) != PLY_OK) {
        if (st == PLY_ERR_NOT_FOUND)
            st = ply_errorf(h, PLY_ERR_INTERNAL,
                            "%s: cannot fold batch norm: a conv weight or bias, or the bn's running statistics, "
                            "are missing", owner);
        return st;
    }
    if ((st = ply_fold_param(h, owner, ct, conv, "bias", OC, &b)) != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    if ((st = ply_fold_param(h, owner, bt, bn, "weight", OC, &gamma)) != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    if ((st = ply_fold_param(h, owner, bt, bn, "bias", OC, &beta)) != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    for (int64_t o = 0; o < OC; o++) {
        double s = (gamma ? (double)gamma[o] : 1.0) / sqrt((double)var[o] + eps);
        for (int64_t k = 0; k < K; k++) fw[o * K + k] = (float)((double)w[o * K + k] * s);
        fb[o] = (float)(((b ? (double)b[o] : 0.0) - (double)mean[o]) * s + (beta ? (double)beta[o] : 0.0));
    }
    // written without moving the host's generation: tell the conv, which then checks what it derived
    // from its weights (Winograd's U, packed weights) against them at its next forward (conv.c)
    if (f->type->set_training) f->type->set_training(f->layer, 0);
    uint64_t g = 0;
    ply_host_param_generation(h, &g);
    f->generation = g;
    f->valid = 1;
    return PLY_OK;
}

#endif /* PLY_PLUGIN_FOLD_H */
