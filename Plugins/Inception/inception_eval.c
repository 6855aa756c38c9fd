/*
 * The Inception blocks' evaluation forward (inception_graph.h's blk_forward_eval): the block's values
 * in one arena reused by lifetime, the branches of a batch-1 block written straight into their slice
 * of the output, the stacked 1x1 conv above batch 1, and large-plane blocks run a group of images at
 * a time. Training runs every child on its own buffers instead (inception_graph.c).
 */
#include <string.h>

#include "inception_graph.h"

// ----------------------------------------------------------------------------
// evaluation: the arena, and branches written into their slice of the output

// Floats of a value in the arena (laid out as `layout`): rounded up to 16 (64 bytes), so every value starts
// on a cache line.
static int64_t arena_floats(const ply_shape *s, int32_t layout) { return (ply_layout_numel(s, layout) + 15) / 16 * 16; }

// A concat node (the block does a blocked concat itself, as copies of whole channel blocks).
static int is_concat(const blk_node *nd) { return strcmp(nd->type->name, "concat") == 0; }

// Runs every node for evaluation, the intermediate values in self->arena. When the last node is
// the concat and the batch is one image, a value only the concat reads is written straight into its
// channels of the output (channels [c0, c0 + C) of a [1, C_out, H, W] output are one compact
// [1, C, H, W] run of floats at c0*H*W) and the concat is not run: no copy. With more images a
// slice is strided, which the children do not take, and the concat runs as in training -- except
// that above batch 1 the block's 1x1 branches on its input run as one stacked conv (blk_fused): its
// output S (value index n + 1, in the arena from the start) holds every member's channels; a member
// value only the concat reads stays there and this function does the concat (one copy per image and
// input); any other member value is copied out of S into its own slot when its node's turn comes.
// Placement: value v lives from node v-1's run to its last reader's; node i's output goes at the
// lowest offset clear of every value still live while node i runs (its inputs included: no child
// writes over what it reads).
// With `layout` NCHW16C (ABI 1.7, blk_forward_layout: every child reads and writes it and every concat
// input has a multiple of 16 channels) every value, the input and the output included, is blocked:
// channel c0 of a value starts at c0 * H * W floats into an image as in NCHW (c0 a multiple of 16), so
// the slices and copies are the same with the padded counts; no stacked 1x1, and every concat is
// this function's copies.
static ply_status forward_eval(ply_layer *self, const ply_tensor *input, ply_tensor *output, int32_t layout) {
    const ply_host *h = self->host;
    ply_shape shapes[BLK_MAX_NODES + 2];
    ply_status st = blk_value_shapes(self, &input->shape, shapes);
    if (st != PLY_OK) return st;
    const int32_t n = self->n_nodes, last = n - 1, S = n + 1;
    const int64_t N = shapes[0].dims[0], P = shapes[0].dims[2] * shapes[0].dims[3];
    int32_t last_use[BLK_MAX_NODES + 2], uses[BLK_MAX_NODES + 2];
    for (int32_t v = 0; v <= S; v++) last_use[v] = -1, uses[v] = 0;
    for (int32_t i = 0; i < n; i++)
        for (int32_t j = 0; j < self->nodes[i].n_in; j++) {
            last_use[self->nodes[i].in[j]] = i;
            uses[self->nodes[i].in[j]]++;
        }
    // Which values go straight into the output: all of the concat's inputs, or none.
    const blk_node *cat = &self->nodes[last];
    const int is_cat = is_concat(cat), blocked = layout == PLY_LAYOUT_NCHW16C;
    int64_t slice[BLK_MAX_NODES + 2]; // value v's first float in the output, or -1: in the arena
    for (int32_t v = 0; v <= S; v++) slice[v] = -1;
    int direct = N == 1 && is_cat;
    for (int32_t j = 0; direct && j < cat->n_in; j++) {
        int32_t v = cat->in[j];
        direct = v >= 1 && uses[v] == 1 && shapes[v].ndim == 4;
    }
    if (direct) {
        int64_t c0 = 0;
        for (int32_t j = 0; j < cat->n_in; j++) {
            const ply_shape *s = &shapes[cat->in[j]];
            slice[cat->in[j]] = c0 * s->dims[2] * s->dims[3];
            c0 += s->dims[1];
        }
    }
    // The stacked 1x1 branches: member[i] = j + 1 for node i the j-th member; in_place[v]: member value
    // v is read from S by this function's concat only.
    int fused = 0;
    const blk_fused *fz = &self->fused;
    if (N > 1 && fz->n && !blocked && (st = blk_fused_sync(self, &fused)) != PLY_OK) return st;
    int32_t member[BLK_MAX_NODES + 1] = {0}, in_place[BLK_MAX_NODES + 2] = {0};
    int cat_in_place = 0;
    if (fused) {
        shapes[S] = shapes[0];
        shapes[S].dims[1] = fz->oc_total;
        for (int32_t j = 0; j < fz->n; j++) {
            int32_t v = fz->node[j] + 1;
            member[fz->node[j]] = j + 1;
            in_place[v] = is_cat && uses[v] == 1 && last_use[v] == last;
            cat_in_place |= in_place[v];
            int32_t end = in_place[v] ? last : fz->node[j]; // S is read until then
            if (end > last_use[S]) last_use[S] = end;
        }
    }
    // First fit over the live values, in node order (S first: live from the start).
    int64_t off[BLK_MAX_NODES + 2], total = 0;
    for (int32_t v = 0; v <= S; v++) off[v] = -1;
    if (fused) {
        off[S] = 0;
        total = arena_floats(&shapes[S], layout);
    }
    for (int32_t i = 0; i < last; i++) {
        int32_t v = i + 1;
        if (slice[v] >= 0 || in_place[v]) continue;
        int64_t size = arena_floats(&shapes[v], layout), at = 0;
        for (int moved = 1; moved;) {
            moved = 0;
            for (int32_t u = 1; u <= S; u++) {
                if (u >= v && u != S) continue;
                if (off[u] < 0 || last_use[u] < i) continue; // not in the arena, or dead before node i
                int64_t us = arena_floats(&shapes[u], layout);
                if (at < off[u] + us && off[u] < at + size) {
                    at = off[u] + us;
                    moved = 1;
                }
            }
        }
        off[v] = at;
        if (at + size > total) total = at + size;
    }
    if ((st = blk_ensure(self, &self->arena, &self->arena_cap, total)) != PLY_OK) return st;
    float *data[BLK_MAX_NODES + 2];
    int64_t stride[BLK_MAX_NODES + 2]; // floats between images of value v
    data[0] = input->data;
    for (int32_t v = 1; v < n; v++)
        data[v] = slice[v] >= 0 ? (float *)output->data + slice[v] : off[v] >= 0 ? self->arena + off[v] : NULL;
    data[n] = output->data;
    for (int32_t v = 0; v <= n; v++) stride[v] = ply_layout_numel(&shapes[v], layout) / N;
    if (fused) {
        data[S] = self->arena + off[S];
        ply_tensor x = ply_tensor_make(input->data, shapes[0]), y = ply_tensor_make(data[S], shapes[S]);
        if ((st = fz->conv.type->forward(fz->conv.layer, 1, &x, &y)) != PLY_OK) return st;
        for (int32_t j = 0; j < fz->n; j++) {
            int32_t v = fz->node[j] + 1;
            if (in_place[v]) {
                data[v] = data[S] + fz->c0[j] * P;
                stride[v] = fz->oc_total * P;
            }
        }
    }
    for (int32_t i = 0; i < (direct ? last : n); i++) {
        blk_node *nd = &self->nodes[i];
        if (member[i]) { // its value is in S: copied out where a child reads it
            int32_t j = member[i] - 1;
            if (!in_place[i + 1])
                blk_copy_images(h, data[i + 1], fz->oc[j] * P, data[S] + fz->c0[j] * P, fz->oc_total * P,
                                fz->oc[j] * P, N);
            continue;
        }
        if ((i == last && cat_in_place) || (blocked && is_concat(nd))) {
            // the concat on channels (some inputs read in place from S; blocked: whole channel blocks)
            int64_t c0 = 0;
            for (int32_t j = 0; j < nd->n_in; j++) {
                int32_t v = nd->in[j];
                int64_t count = ply_layout_numel(&shapes[v], layout) / N;
                blk_copy_images(h, data[i + 1] + c0, stride[i + 1], data[v], stride[v], count, N);
                c0 += count;
            }
            continue;
        }
        ply_tensor ins[BLK_MAX_IN];
        int32_t lays[BLK_MAX_IN];
        for (int32_t j = 0; j < nd->n_in; j++) {
            ins[j] = ply_tensor_make(data[nd->in[j]], shapes[nd->in[j]]);
            lays[j] = layout;
        }
        ply_tensor out = i == last ? *output : ply_tensor_make(data[i + 1], shapes[i + 1]);
        st = blocked ? nd->type->forward_layout(nd->layer, nd->n_in, ins, lays, &out, layout)
                     : nd->type->forward(nd->layer, nd->n_in, ins, &out);
        if (st != PLY_OK) return st;
    }
    return PLY_OK;
}

// Evaluation at batch N > 1 runs a block in groups of images (forward_groups) where its input plane
// has at least this many positions (Inception v3's 35x35 and 17x17 blocks, not its 8x8 ones). A
// group's values stay in cache from one branch to the next (a 35x35x288 image is 1.4 MB, the batch's
// 16 of them 22 MB), and with one thread the group is one image, whose branches go straight into the
// output (no concat copy). Measured on Inception v3 batch 16 (loaded machine, load 11-16):
//  - 1 thread, process CPU ms per batch (bench-model, alternating, 2 runs each): whole batch
//    1227-1319, by image from 17x17 up 1198-1401 (median of 4: 1227), from 8x8 up 1216-1298;
//    Benchmarks/ab-cpu 3 rounds: 1264 against main's 1295 (1.03), batch 1 unchanged (1.01).
//    The 8x8 blocks stay whole: their 448->384 3x3 runs Winograd at batch 16 (10.9 ms against 16 x
//    1.44 ms by spans at batch 1, bench-layers).
//  - 2 threads, img/s (bench-model wall time, 8 alternating rounds of 2 runs, load 12-16): groups of 2
//    images median 4.88 (3.69-6.80), groups of 1 image 4.43 (2.87-6.40), whole batch 3.57
//    (3.11-4.37); groups of 2 ahead of the whole batch in all 8 rounds. Later, at load 3.4-4.0, against
//    main's build (6 alternating rounds): median 13.2 against 12.4 img/s (1.07), ahead in 4 of 6.
#define BY_IMAGE_MIN_PLANE (17 * 17)

// Whether evaluation runs the block in groups of images: a batch of more than one, the input plane
// at least BY_IMAGE_MIN_PLANE positions, and the last node the concat (so that a group of one image
// writes its branches into the output).
static int by_image(const ply_layer *self, const ply_shape *in) {
    return in->ndim == 4 && in->dims[0] > 1 && in->dims[2] * in->dims[3] >= BY_IMAGE_MIN_PLANE &&
           strcmp(self->nodes[self->n_nodes - 1].type->name, "concat") == 0;
}

// forward_eval on groups of G images (the last group may be smaller): group k's input is the
// images [kG, kG + G) of the input, one compact run of floats, and its output the same run of the output.
static ply_status forward_groups(ply_layer *self, int64_t G, const ply_tensor *input, ply_tensor *output, int32_t layout) {
    const int64_t N = input->shape.dims[0];
    if (output->shape.ndim < 1 || output->shape.dims[0] != N)
        return ply_errorf(self->host, PLY_ERR_SHAPE, "%s: output has %lld images, input %lld", self->type_name,
                          (long long)(output->shape.ndim ? output->shape.dims[0] : 0), (long long)N);
    const int64_t in_n = ply_layout_numel(&input->shape, layout) / N, out_n = ply_layout_numel(&output->shape, layout) / N;
    for (int64_t n = 0; n < N; n += G) {
        ply_tensor in1 = *input, out1 = *output;
        in1.shape.dims[0] = out1.shape.dims[0] = ply_min_i64(G, N - n);
        in1.data = (float *)input->data + n * in_n;
        out1.data = (float *)output->data + n * out_n;
        ply_status st = forward_eval(self, &in1, &out1, layout);
        if (st != PLY_OK) return st;
    }
    return PLY_OK;
}

ply_status blk_forward_eval(ply_layer *self, const ply_tensor *input, ply_tensor *output, int32_t layout) {
    // Groups of as many images as threads: each thread's share of a child's work is then its own
    // image where the child splits the images (conv_1x1.c, the Winograd and spans kernels split
    // otherwise too), and one thread runs one image at a time.
    if (by_image(self, &input->shape))
        return forward_groups(self, ply_max_i64(1, self->host->thread_count(self->host)), input, output, layout);
    return forward_eval(self, input, output, layout);
}
