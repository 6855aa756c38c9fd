/*
 * Evaluation above batch 1: a block's 1x1 branches that read its input run as one stacked conv
 * (inception_graph.h, blk_fused).
 *
 *   y[n][c0_j + o][p] = relu(b_j[o] + sum_c w_j[o][c] * x[n][c][p]),  o < oc_j, for every member j,
 *
 * where (w_j, b_j) is member j's folded conv (batch norm folded, relu fused: blk_sync_fold) and c0_j
 * the sum of the earlier members' oc. That is the members' outputs stacked on channels, from one
 * conv2d child of OC = sum oc_j: the block's input (at batch 16 on 28x28 GoogLeNet planes, 9.6-16 MB,
 * more than L2) is read once instead of once per branch, and the small reductions (16 or 32 output
 * channels) become rows of one larger product instead of products of their own.
 *
 * Kept in sync as a fold is: the stacked weights are copied from the members' folds whenever the
 * host's parameter generation moved, a member's fold is stale, or the block ran a training forward
 * (which moves the batch norms' statistics without moving the generation). Made on the first
 * forward that fuses (above batch 1), so a model only ever run at batch 1 holds no copy.
 *
 * Inception v3's blocks A, C and D fuse the same way (branch1x1 and the first 1x1 of each other
 * branch; B has one 1x1 only). Its 35x35 and 17x17 blocks run a batch in groups of as many images as
 * threads (inception_graph.c, forward_groups), so they fuse at 2 threads and more (groups of 2).
 * E (8x8 planes, the whole batch at once) does not: measured per block by critical CPU time
 * (branch v3b16, loaded machine, load 14-18 on 2 cores; PLY_REGION_TRACE of `taskset -c 0,1 ply
 * bench-model inception_v3 --image-size 299 --batch 16 --runs 2`, Benchmarks/region_trace.py
 * --against, medians of 3 alternating rounds, one build with a temporary switch), ms per batch,
 * stacked / not:
 *   E, 1 thread: Mixed_7b 83.9 / 83.0, Mixed_7c 109.4 / 109.4; 2 threads: 42.7 / 42.8, 56.3 / 55.9;
 *     its stacked copies (E's 2048 x 1152 and 1280 x 1152 weights, the stacked output) held 34.8 MB
 *     (layers' memory 387.3 -> 352.1 MB at 1 thread, 481.8 -> 447.0 at 2).
 *   A, C, D, 2 threads: 514.2 / 524.2 summed over the 8 blocks (ahead in 7 of 8 by 1-4%), for 20.8 MB
 *     (447.0 against 426.2 MB); 1 thread: not stacked (groups of one image).
 * Measured before, E stacked too (branch incfuse, loaded machine, load 9-14, one build with a
 * temporary switch, 6 alternating rounds of `taskset -c 0,1 ply bench-model inception_v3
 * --batch 16 --image-size 299 --threads 2 --runs 3`): median 6.10 img/s stacked against 5.74 not (ahead
 * in 5 of 6 rounds). Not at batch 1: there a stacked conv of every block (groups of one image
 * included) ran 81.8 against 78.1 CPU ms per image at 1 thread (medians of 3 alternating rounds of 3
 * runs), and the stacked copies would add 23 MB to v3's batch-1 RSS (E's 2048 x 1152 alone is 9.4 MB),
 * although the stacked conv alone runs faster than its members (Benchmarks/pointwise_kernel.c cold,
 * 1 thread: 768->512 on 17x17 1.68-1.76 ms against 0.67 + 0.60 + 0.60 for 192 + 160 + 160; 2048->1152
 * on 8x8 2.25 against 0.68 + 0.80 + 0.94).
 */
#include <stddef.h>
#include <string.h>

#include "inception_graph.h"

void blk_fuse_1x1(ply_layer *self, const ply_status *st) {
    if (*st != PLY_OK) return;
    blk_fused *f = &self->fused;
    f->n = 0;
    for (int32_t i = 0; i + 1 < self->n_nodes && f->n < BLK_MAX_IN; i++) { // (the last node writes the output)
        const blk_node *nd = &self->nodes[i];
        // a basic_conv2d of this plugin (the host may hand back another type: then it is left alone)
        if (nd->n_in != 1 || nd->in[0] != 0 || !nd->type || nd->type->forward != blk_forward) continue;
        const ply_layer *c = nd->layer;
        if (c->fold_node < 0 || c->fold_k[0] != 1 || c->fold_k[1] != 1 || c->fold_s[0] != 1 || c->fold_s[1] != 1 ||
            c->fold_p[0] != 0 || c->fold_p[1] != 0)
            continue;
        f->node[f->n++] = i;
    }
    if (f->n < 2) f->n = 0;
}

// Output channels of a member's folded conv: its weight's first dimension.
static ply_status member_channels(const ply_host *h, const ply_layer *c, int64_t *oc) {
    const ply_layer_type *t = c->fold.type;
    int32_t n = t->param_count ? t->param_count(c->fold.layer) : 0;
    for (int32_t i = 0; i < n; i++) {
        ply_param p;
        memset(&p, 0, sizeof p);
        ply_status st = t->get_param(c->fold.layer, i, &p);
        if (st != PLY_OK) return st;
        if (p.name && strcmp(p.name, "weight") == 0 && p.value.shape.ndim == 4) {
            *oc = p.value.shape.dims[0];
            return PLY_OK;
        }
    }
    return ply_errorf(h, PLY_ERR_INTERNAL, "%s: a 1x1 branch's folded conv has no 4-d weight", c->type_name);
}

// Makes the stacked conv: OC = the members' sum, 1x1, bias on, not trainable, relu fused.
static ply_status make_stacked(ply_layer *self, int *ok) {
    const ply_host *h = self->host;
    blk_fused *f = &self->fused;
    int64_t total = 0;
    for (int32_t j = 0; j < f->n; j++) {
        ply_status st = member_channels(h, self->nodes[f->node[j]].layer, &f->oc[j]);
        if (st != PLY_OK) return st;
        f->c0[j] = total;
        total += f->oc[j];
    }
    f->oc_total = total;
    static const int64_t one[2] = {1, 1}, zero[2] = {0, 0};
    const ply_attr a[7] = {
        {.name = "in_channels", .kind = PLY_ATTR_INT, .count = 1, .v.i = self->in_channels},
        {.name = "out_channels", .kind = PLY_ATTR_INT, .count = 1, .v.i = total},
        {.name = "kernel_size", .kind = PLY_ATTR_INTS, .count = 2, .v.ints = one},
        {.name = "stride", .kind = PLY_ATTR_INTS, .count = 2, .v.ints = one},
        {.name = "padding", .kind = PLY_ATTR_INTS, .count = 2, .v.ints = zero},
        {.name = "bias", .kind = PLY_ATTR_BOOL, .count = 1, .v.i = 1},
        {.name = "trainable", .kind = PLY_ATTR_BOOL, .count = 1, .v.i = 0},
    };
    const ply_attrs list = {.struct_size = (uint32_t)sizeof(ply_attrs), .abi_version = PLY_ABI_VERSION, .count = 7,
                            .items = a};
    ply_status st = h->create_layer(h, "conv2d", &list, &f->conv.type, &f->conv.layer);
    if (st != PLY_OK) {
        f->conv.type = NULL;
        f->conv.layer = NULL;
        return st;
    }
    const ply_layer_type *t = f->conv.type;
    if (t->set_training) t->set_training(f->conv.layer, 0);
    f->conv.relu = t->struct_size >= offsetof(ply_layer_type, fuse_activation) + sizeof(t->fuse_activation) &&
                   t->fuse_activation && t->fuse_activation(f->conv.layer, "relu") == PLY_OK;
    if (!f->conv.relu) { // the members' folds take the relu, so this conv type would too; never fuse otherwise
        ply_fold_destroy(&f->conv);
        f->failed = 1;
    }
    *ok = f->conv.relu;
    return PLY_OK;
}

ply_status blk_fused_sync(ply_layer *self, int *ok) {
    const ply_host *h = self->host;
    blk_fused *f = &self->fused;
    *ok = 0;
    if (f->n == 0 || f->failed) return PLY_OK;
    if (f->final) { // frozen: the members' weights may be gone (their folds' freeze)
        *ok = 1;
        return PLY_OK;
    }
    int stale = 0;
    for (int32_t j = 0; j < f->n; j++) { // each member's fold first, derived again where stale
        ply_layer *c = self->nodes[f->node[j]].layer;
        if (c->fold_only) continue; // frozen: the fold is final
        int cok = 0;
        stale |= !c->fold.layer || ply_fold_stale(h, &c->fold);
        ply_status st = blk_sync_fold(c, &cok);
        if (st != PLY_OK) return st;
        if (!cok) {
            f->failed = 1;
            return PLY_OK;
        }
    }
    if (!f->conv.layer) {
        ply_status st = make_stacked(self, ok);
        if (st != PLY_OK || !*ok) return st;
        stale = 1;
    }
    *ok = 1;
    if (!stale && !ply_fold_stale(h, &f->conv)) return PLY_OK;
    f->conv.valid = 0;
    const int64_t K = self->in_channels;
    float *w, *b;
    ply_status st;
    if ((st = ply_fold_param(h, self->type_name, f->conv.type, f->conv.layer, "weight", f->oc_total * K, &w)) !=
            PLY_OK ||
        (st = ply_fold_param(h, self->type_name, f->conv.type, f->conv.layer, "bias", f->oc_total, &b)) != PLY_OK)
        return st == PLY_ERR_NOT_FOUND ? ply_errorf(h, PLY_ERR_INTERNAL, "%s: the stacked 1x1 conv has no weight or bias",
                                                    self->type_name)
                                       : st;
    for (int32_t j = 0; j < f->n; j++) {
        const ply_layer *c = self->nodes[f->node[j]].layer;
        float *cw, *cb;
        if ((st = ply_fold_param(h, self->type_name, c->fold.type, c->fold.layer, "weight", f->oc[j] * K, &cw)) !=
                PLY_OK ||
            (st = ply_fold_param(h, self->type_name, c->fold.type, c->fold.layer, "bias", f->oc[j], &cb)) != PLY_OK)
            return st == PLY_ERR_NOT_FOUND
                       ? ply_errorf(h, PLY_ERR_INTERNAL, "%s: a 1x1 branch's folded conv has no weight or bias",
                                    self->type_name)
                       : st;
        memcpy(w + f->c0[j] * K, cw, (size_t)(f->oc[j] * K) * sizeof(float));
        memcpy(b + f->c0[j], cb, (size_t)f->oc[j] * sizeof(float));
    }
    // written without moving the host's generation: the conv checks what it derived from them (ply_fold_write)
    if (f->conv.type->set_training) f->conv.type->set_training(f->conv.layer, 0);
    uint64_t g = 0;
    ply_host_param_generation(h, &g);
    f->conv.generation = g;
    f->conv.valid = 1;
    return PLY_OK;
}

// ----------------------------------------------------------------------------
// copies between images of different strides

// Below this many floats one thread copies it all (join.c's CONCAT_SPLIT_FLOATS: a parallel_for
// costs a few microseconds, 64K floats take one thread ~10-25 us to copy).
#define COPY_SPLIT_FLOATS (1 << 16)

typedef struct {
    float *dst;
    const float *src;
    int64_t dst_stride, src_stride, count;
} copy_job;

static void copy_run(void *ctx, int64_t n0, int64_t n1) {
    const copy_job *j = ctx;
    for (int64_t n = n0; n < n1; n++)
        memcpy(j->dst + n * j->dst_stride, j->src + n * j->src_stride, (size_t)j->count * sizeof(float));
}

void blk_copy_images(const ply_host *h, float *dst, int64_t dst_stride, const float *src, int64_t src_stride,
                     int64_t count, int64_t images) {
    copy_job j = {.dst = dst, .src = src, .dst_stride = dst_stride, .src_stride = src_stride, .count = count};
    if (images > 1 && images * count >= COPY_SPLIT_FLOATS && h->thread_count(h) > 1)
        h->parallel_for(h, images, 1, copy_run, &j);
    else
        copy_run(&j, 0, images);
}
