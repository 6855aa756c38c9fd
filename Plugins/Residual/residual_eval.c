/*
 * Residual blocks in evaluation: batch-norm folded into the convs, relu fused,
 * add+relu in one pass, nothing kept for backward.
 *
 * With S stages and fconv_k the folded conv of stage k (conv_k then bn_k,
 * Plugins/Support/plugin_fold.h):
 *   t_0 = x;  t_{k+1} = relu(fconv_k(t_k))   (k < S-1; the relu inside the conv)
 *   y   = fconv_{S-1}(t_{S-1})                written into the output tensor
 *   id  = downsample ? fconv_d(x) : x
 *   y   = relu(y + id)                        in place, one pass
 * or, where the folded conv type takes a second input (the built-in conv2d:
 * a residual added before its fused relu, Plugins/Conv/conv_residual.h), the
 * shortcut first and then y = relu(fconv_{S-1}(t_{S-1}) + id) in the last conv
 * itself: the output written once, not written, read back and written again
 * (ResNet-50's 56x56 blocks: 3.2 MB each way; the separate pass measured 0.40
 * ms per 56x56 block, 0.15 per 28x28, single thread, inputs out of L2).
 * That is the training path's sum without the bn outputs, the relu outputs and
 * the sum kept: buffers for t_1 (t_2) and id only, freed before returning, so
 * a model's blocks do not each hold theirs between calls (ResNet-18 at batch
 * 128 kept 2.5 GB of them). Large batches go through in passes of a few
 * images (images_per_pass), the buffers sized for one pass.
 *
 * The folded convs are made on the first evaluation forward (trainable=false:
 * no random draws, no gradient memory) and their values derived again when the
 * host's parameter generation moved or a training forward changed the running
 * statistics (rb_invalidate_folds).
 *
 * Frozen for inference (rb_freeze, plugin.h's `freeze`): the folds are derived
 * a last time, passed the promise on, and the conv and bn children they
 * replace are destroyed. That frees the unfolded weights, one copy of every
 * conv's weights (ResNet-50: 94 MB). The relu child stays (it runs when a
 * folded conv refused the relu). From then on the folds are never derived
 * again and backward, get_param and describe refuse (residual.c).
 */
#include <string.h>

#include "residual.h"

// Kernel size and stride of stage k's conv (k == stages: the downsample's), as create_block made them.
static void stage_geometry(const ply_layer *self, int32_t k, int64_t *ksize, int64_t *stride) {
    if (k == self->stages) { *ksize = 1; *stride = self->stride; return; }
    if (self->stages == 2) { *ksize = 3; *stride = k == 0 ? self->stride : 1; return; }
    *ksize = k == 1 ? 3 : 1;
    *stride = k == 1 ? self->stride : 1;
}

// Whether a conv type takes the residual as its second input (the built-in conv2d, conv_residual.h): a type
// that declares at least two inputs (conv2d before this declared one: then the block adds as before). Read
// within the struct's size (every ABI has min/max_inputs).
static int takes_residual(const ply_layer_type *t) { return t->max_inputs >= 2; }

// The folded twin of `conv` (stage k): the same geometry with a bias, inference only. The last stage's
// (k == stages - 1) takes the relu too where its type adds the shortcut itself (takes_residual): then the
// block's add + relu happens inside that conv.
static ply_status make_fold(ply_layer *self, ply_fold *f, int32_t k, const rb_child *conv, int relu) {
    const ply_host *h = self->host;
    ply_param p;
    memset(&p, 0, sizeof p);
    ply_status st = conv->type->get_param(conv->layer, 0, &p);
    if (st != PLY_OK) return st;
    if (p.value.shape.ndim != 4)
        return ply_errorf(h, PLY_ERR_INTERNAL, "%s: a conv child's weight is not 4-d", self->tname);
    const int64_t *d = p.value.shape.dims;
    int64_t ksize, stride;
    stage_geometry(self, k, &ksize, &stride);
    ply_attr items[8] = {
        {"in_channels", PLY_ATTR_INT, 1, {.i = d[1]}}, {"out_channels", PLY_ATTR_INT, 1, {.i = d[0]}},
        {"kernel_size", PLY_ATTR_INT, 1, {.i = ksize}}, {"stride", PLY_ATTR_INT, 1, {.i = stride}},
        {"padding", PLY_ATTR_INT, 1, {.i = ksize / 2}}, {"bias", PLY_ATTR_BOOL, 1, {.i = 1}},
        {"trainable", PLY_ATTR_BOOL, 1, {.i = 0}},
    };
    ply_attrs attrs = {sizeof(ply_attrs), PLY_ABI_VERSION, 7, 0, items};
    if ((st = h->create_layer(h, "conv2d", &attrs, &f->type, &f->layer)) != PLY_OK) {
        f->type = NULL; f->layer = NULL;
        return st;
    }
    if (f->type->set_training) f->type->set_training(f->layer, 0);
    f->relu = 0;
    if (relu || (k == self->stages - 1 && takes_residual(f->type))) {
        const ply_layer_type *t = f->type;
        f->relu = t->struct_size >= offsetof(ply_layer_type, fuse_activation) + sizeof(t->fuse_activation) &&
                  t->fuse_activation && t->fuse_activation(f->layer, "relu") == PLY_OK;
    }
    return PLY_OK;
}

// Makes the folded convs (first call) and derives their values when stale.
static ply_status sync_folds(ply_layer *self) {
    ply_status st;
    int32_t S = self->stages;
    for (int32_t k = 0; k < S; k++)
        if (!self->fold[k].layer && (st = make_fold(self, &self->fold[k], k, &self->conv[k], k < S - 1)) != PLY_OK)
            return st;
    if (self->downsample && !self->ds_fold.layer && (st = make_fold(self, &self->ds_fold, S, &self->ds_conv, 0)) != PLY_OK)
        return st;
    for (int32_t k = 0; k <= S; k++) {
        ply_fold *f = k < S ? &self->fold[k] : &self->ds_fold;
        const rb_child *conv = k < S ? &self->conv[k] : &self->ds_conv, *bn = k < S ? &self->bn[k] : &self->ds_bn;
        if (!f->layer || !ply_fold_stale(self->host, f)) continue;
        ply_param p;
        memset(&p, 0, sizeof p);
        if ((st = conv->type->get_param(conv->layer, 0, &p)) != PLY_OK) return st;
        int64_t OC = p.value.shape.dims[0], K = ply_shape_numel(&p.value.shape) / (OC > 0 ? OC : 1);
        if ((st = ply_fold_write(self->host, self->tname, f, conv->type, conv->layer, bn->type, bn->layer, OC, K,
                                 1e-5)) != PLY_OK)
            return st;
    }
    return PLY_OK;
}

void rb_invalidate_folds(ply_layer *self) {
    for (int32_t k = 0; k < RB_MAX_STAGES; k++) self->fold[k].valid = 0;
    self->ds_fold.valid = 0;
}

void rb_release_buffers(ply_layer *self) {
    const ply_host *h = self->host;
    for (int32_t i = 0; i < RB_NBUF; i++) {
        h->free(h, self->buf[i].data);
        self->buf[i].data = NULL;
        self->buf[i].cap = 0;
    }
}

static ply_status alloc_buf(ply_layer *self, int id, int64_t n) {
    rb_buf *b = &self->buf[id];
    if ((size_t)n <= b->cap) return PLY_OK;
    const ply_host *h = self->host;
    h->free(h, b->data);
    b->data = h->alloc(h, (size_t)(n < 1 ? 1 : n) * sizeof(float));
    b->cap = b->data ? (size_t)n : 0;
    if (!b->data)
        return ply_errorf(h, PLY_ERR_OUT_OF_MEMORY, "%s: out of memory for %lld intermediate values", self->tname,
                          (long long)n);
    return PLY_OK;
}

// y[i] = relu(y[i] + id[i]) (max(v, 0), NaN passed through, as the relu layer) over [begin, end)
typedef struct { float *y; const float *id; } add_relu_job;

static void add_relu_range(void *ctx, int64_t begin, int64_t end) {
    const add_relu_job *j = ctx;
    float *y = j->y;
    const float *id = j->id;
    for (int64_t i = begin; i < end; i++) {
        float v = y[i] + id[i];
        y[i] = (v > 0.0f || v != v) ? v : 0.0f;
    }
}

static void add_relu(const ply_host *h, float *y, const float *id, int64_t n) {
    add_relu_job j = {y, id};
    int64_t threads = h->thread_count(h);
    if (threads <= 1 || n < (1 << 16)) { add_relu_range(&j, 0, n); return; }
    h->parallel_for(h, n, (n + threads - 1) / threads, add_relu_range, &j);
}

// A fold on `in` laid out as lin, writing out as lout (ABI 1.7's forward_layout where either is blocked).
static ply_status run(const ply_fold *f, const ply_tensor *in, int32_t lin, ply_tensor *out, int32_t lout) {
    if (lin == PLY_LAYOUT_NCHW && lout == PLY_LAYOUT_NCHW) return f->type->forward(f->layer, 1, in, out);
    return f->type->forward_layout(f->layer, 1, in, &lin, out, lout);
}

static ply_status relu_in_place(ply_layer *self, ply_tensor *t) {
    // only when the conv type refused the relu: the relu child, through a buffer of its own
    int64_t n = ply_shape_numel(&t->shape);
    ply_status st = alloc_buf(self, RB_SUM, n);
    if (st != PLY_OK) return st;
    memcpy(self->buf[RB_SUM].data, t->data, (size_t)n * sizeof(float));
    ply_tensor src = ply_tensor_make(self->buf[RB_SUM].data, t->shape);
    return self->relu.type->forward(self->relu.layer, 1, &src, t);
}

// The layouts of one evaluation call (ABI 1.7): the block's input and output, and the one of the values
// inside it (the folds' outputs). All NCHW is the forward; `inner` is NCHW16C whenever either side is
// (rb_eval_layouts offers that only where every fold takes and writes it and the last adds the shortcut).
typedef struct {
    int32_t in, out, inner;
} rb_layouts;

static const rb_layouts all_nchw = {PLY_LAYOUT_NCHW, PLY_LAYOUT_NCHW, PLY_LAYOUT_NCHW};

// The block on images [n0, n0 + nc) of the batch (a contiguous slice of x and of the output in either
// layout), the buffers holding nc images.
static ply_status forward_images(ply_layer *self, const ply_tensor *x, ply_tensor *output, const ply_shape *out_shape,
                                 int64_t n0, int64_t nc, const rb_layouts *lay) {
    ply_status st;
    int32_t S = self->stages;
    ply_shape xs = x->shape, ys = *out_shape;
    int64_t N = xs.dims[0];
    xs.dims[0] = nc;
    ys.dims[0] = nc;
    // (the whole batch: x as given, strides included; data is void *: the offsets count floats, not
    // bytes, hence the casts: the first version of this added them to the void pointers, GNU C's
    // byte arithmetic, and every pass after the first read and wrote a quarter of the way in)
    ply_tensor in = nc == N ? *x
                            : ply_tensor_make((float *)x->data + n0 * (ply_layout_numel(&x->shape, lay->in) / N), xs);
    const ply_tensor xin = in;
    int32_t lin = lay->in;
    for (int32_t k = 0; k + 1 < S; k++) {
        ply_shape ts = self->shp_c[k];
        ts.dims[0] = nc;
        ply_tensor t = ply_tensor_make(self->buf[RB_T0 + k].data, ts);
        if ((st = run(&self->fold[k], &in, lin, &t, lay->inner)) != PLY_OK) return st;
        if (!self->fold[k].relu && (st = relu_in_place(self, &t)) != PLY_OK) return st; // NCHW only (rb_eval_layouts)
        in = t;
        lin = lay->inner;
    }
    float *yd = (float *)output->data + (nc == N ? 0 : n0 * (ply_layout_numel(out_shape, lay->out) / N));
    ply_tensor y = ply_tensor_make(yd, ys);
    const ply_fold *last = &self->fold[S - 1];
    const int fused = last->relu; // the last conv adds the shortcut and applies the relu (make_fold)
    if (!fused && (st = run(last, &in, lin, &y, lay->out)) != PLY_OK) return st;
    ply_tensor id = xin;
    int32_t lid = lay->in;
    if (self->downsample) {
        ply_shape ds = self->shp_dc;
        ds.dims[0] = nc;
        id = ply_tensor_make(self->buf[RB_TD].data, ds);
        if ((st = run(&self->ds_fold, &xin, lay->in, &id, lay->inner)) != PLY_OK) return st;
        lid = lay->inner;
    }
    if (fused) {
        ply_tensor two[2] = {in, id};
        if (lin == PLY_LAYOUT_NCHW && lid == PLY_LAYOUT_NCHW && lay->out == PLY_LAYOUT_NCHW)
            return last->type->forward(last->layer, 2, two, &y);
        const int32_t lays[2] = {lin, lid};
        return last->type->forward_layout(last->layer, 2, two, lays, &y, lay->out);
    }
    add_relu(self->host, yd, id.data, ply_shape_numel(&ys)); // NCHW only (rb_eval_layouts)
    return PLY_OK;
}

// Images per pass through the block: as many as keep one pass's tensors (input, intermediates,
// downsample, output) within RB_PASS_FLOATS, so that each intermediate is read back from cache rather
// than memory and the add+relu finds the output and the shortcut still there (at batch 16,
// ResNet-50's first stage has 51 MB per tensor); a divisor of the batch, so that every pass gives
// the convs one geometry (Winograd's tile size, and with it the kept transformed weights, follows
// the number of images). Batch 1, and batches whose whole pass fits, run in one piece.
// ResNet-50 inference at batch 16, 1 thread, CPU ms per batch (`ply bench-model`, loaded machine,
// alternating, 2 sessions): whole batch 1160 1166 1070 1140 1103 1084 | 1111 1135 1089 1067;
// 4M floats 1009 1019 1015 1074 1113 1031 | 1075 1085 1032 1070; 16M floats (first session)
// 1164 1038 1039 1028 1031 1029; 8M (second) 1082 1060 1079 1110; 1M 1150 1240 1212 1189 and one
// image at a time 1147 1207 1293 1257 (slower). ResNet-18 at batch 16: 356 358 334 334 whole,
// 350 336 354 353 at 4M (no change).
#define RB_PASS_FLOATS (1 << 22)
static int64_t images_per_pass(const ply_layer *self, const ply_tensor *x, const ply_shape *out_shape) {
    int64_t N = x->shape.dims[0];
    if (N <= 1) return N;
    int64_t per = ply_shape_numel(&x->shape) / N + ply_shape_numel(out_shape) / N;
    for (int32_t k = 0; k + 1 < self->stages; k++) per += ply_shape_numel(&self->shp_c[k]) / N;
    if (self->downsample) per += ply_shape_numel(&self->shp_dc) / N;
    int64_t nc = RB_PASS_FLOATS / (per > 0 ? per : 1);
    if (nc >= N) return N;
    while (nc > 1 && N % nc != 0) nc--;
    return nc < 1 ? 1 : nc;
}

// Floats of a buffer of `shape` (batch N) laid out as `layout`, for nc images.
static int64_t pass_floats(const ply_shape *shape, int32_t layout, int64_t N, int64_t nc) {
    return ply_layout_numel(shape, layout) / N * nc;
}

static ply_status forward_folded(ply_layer *self, const ply_tensor *x, ply_tensor *output, const ply_shape *out_shape,
                                 const rb_layouts *lay) {
    ply_status st;
    int32_t S = self->stages;
    int64_t N = x->shape.dims[0], nc = images_per_pass(self, x, out_shape);
    for (int32_t k = 0; k + 1 < S; k++)
        if ((st = alloc_buf(self, RB_T0 + k, pass_floats(&self->shp_c[k], lay->inner, N, nc))) != PLY_OK) return st;
    if (self->downsample && (st = alloc_buf(self, RB_TD, pass_floats(&self->shp_dc, lay->inner, N, nc))) != PLY_OK)
        return st;
    if (nc == N) return forward_images(self, x, output, out_shape, 0, N, lay);
    for (int64_t n0 = 0; n0 < N; n0 += nc)
        if ((st = forward_images(self, x, output, out_shape, n0, nc, lay)) != PLY_OK) return st;
    return PLY_OK;
}

ply_status rb_forward_eval(ply_layer *self, const ply_tensor *x, ply_tensor *output, const ply_shape *out_shape) {
    ply_status st = self->frozen ? PLY_OK : sync_folds(self); // frozen: the folds are final
    if (st == PLY_OK) st = forward_folded(self, x, output, out_shape, &all_nchw);
    rb_release_buffers(self);
    return st;
}

// Whether fold f can read its input 0 (shape x; with the residual `r` as input 1 when r) and write its
// output as NCHW16C: it has the ABI 1.7 slots and offers both for these shapes.
static ply_status fold_blocks(ply_layer *self, const ply_fold *f, const ply_shape *x, const ply_shape *r, int *ok) {
    *ok = 0;
    if (!f->layer || !PLY_TYPE_HAS_LAYOUTS(f->type)) return PLY_OK;
    const ply_shape in[2] = {*x, r ? *r : *x};
    uint32_t accepts[2] = {0, 0}, produces = 0;
    ply_status st = f->type->eval_layouts(f->layer, r ? 2 : 1, in, accepts, &produces);
    if (st != PLY_OK) return st;
    const uint32_t blk = PLY_LAYOUT_BIT(PLY_LAYOUT_NCHW16C);
    *ok = (accepts[0] & blk) && (produces & blk) && (!r || (accepts[1] & blk));
    (void)self;
    return PLY_OK;
}

// Whether the block can run on NCHW16C inside for input shape x: every fold reads and writes it, the
// stages before the last apply their relu themselves and the last adds the shortcut (so neither the
// relu child nor add_relu, NCHW both, runs). Makes the folds it asks (as the evaluation forward would).
static ply_status blocks_inside(ply_layer *self, const ply_shape *x, int *ok) {
    *ok = 0;
    if (self->training && !self->frozen) return PLY_OK;
    ply_shape c[RB_MAX_STAGES], dc, out;
    ply_status st = rb_plan(self, x, c, &dc, &out);
    if (st == PLY_OK && !self->frozen) st = sync_folds(self);
    if (st != PLY_OK) return st;
    const int32_t S = self->stages;
    int all = self->fold[S - 1].relu;
    for (int32_t k = 0; all && k < S; k++) {
        all = k == S - 1 || self->fold[k].relu;
        if (all && (st = fold_blocks(self, &self->fold[k], k == 0 ? x : &c[k - 1], k == S - 1 ? &out : NULL, &all)) != PLY_OK)
            return st;
    }
    if (all && self->downsample && (st = fold_blocks(self, &self->ds_fold, x, NULL, &all)) != PLY_OK) return st;
    *ok = all;
    return PLY_OK;
}

ply_status rb_eval_layouts(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, uint32_t *accepts,
                           uint32_t *produces) {
    (void)n_inputs;
    int ok;
    ply_status st = blocks_inside(self, &inputs[0], &ok);
    if (st != PLY_OK) return st;
    const uint32_t set = PLY_LAYOUT_BIT(PLY_LAYOUT_NCHW) | (ok ? PLY_LAYOUT_BIT(PLY_LAYOUT_NCHW16C) : 0);
    accepts[0] = set;
    *produces = set;
    return PLY_OK;
}

ply_status rb_forward_layout(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, const int32_t *in_layouts,
                             ply_tensor *output, int32_t out_layout) {
    const ply_tensor *x = &inputs[0];
    if (in_layouts[0] == PLY_LAYOUT_NCHW && out_layout == PLY_LAYOUT_NCHW) return rb_forward(self, n_inputs, inputs, output);
    if (x->strides || output->strides)
        return ply_errorf(self->host, PLY_ERR_UNSUPPORTED, "%s: strided tensors are not supported", self->tname);
    int ok;
    ply_status st = blocks_inside(self, &x->shape, &ok);
    if (st != PLY_OK) return st;
    const int known = (in_layouts[0] == PLY_LAYOUT_NCHW || in_layouts[0] == PLY_LAYOUT_NCHW16C) &&
                      (out_layout == PLY_LAYOUT_NCHW || out_layout == PLY_LAYOUT_NCHW16C);
    if (!ok || !known)
        return ply_errorf(self->host, PLY_ERR_UNSUPPORTED, "%s: forward_layout with input layout %d and output layout "
                          "%d is not one eval_layouts offers for this block", self->tname, (int)in_layouts[0],
                          (int)out_layout);
    ply_shape out_shape;
    if ((st = rb_plan(self, &x->shape, self->shp_c, &self->shp_dc, &out_shape)) != PLY_OK) return st;
    self->kept = 0;
    const rb_layouts lay = {in_layouts[0], out_layout, PLY_LAYOUT_NCHW16C};
    st = forward_folded(self, x, output, &out_shape, &lay);
    rb_release_buffers(self);
    return st;
}

static void destroy_child(rb_child *c) {
    if (c->layer) c->type->destroy(c->layer);
    c->layer = NULL;
}

ply_status rb_freeze(ply_layer *self) {
    if (self->frozen) return PLY_OK;
    if (self->training)
        return ply_errorf(self->host, PLY_ERR_INVALID_ARGUMENT, "%s: freeze in training mode (call set_training(0) first)",
                          self->tname);
    ply_status st = sync_folds(self); // nothing is destroyed before this succeeds: all-or-nothing
    if (st != PLY_OK) return st;
    int32_t S = self->stages;
    for (int32_t k = 0; k <= S; k++) {
        ply_fold *f = k < S ? &self->fold[k] : &self->ds_fold;
        if (f->layer && PLY_TYPE_HAS_FREEZE(f->type)) (void)f->type->freeze(f->layer); // a refusal keeps its memory
    }
    for (int32_t k = 0; k < RB_MAX_STAGES; k++) {
        destroy_child(&self->conv[k]);
        destroy_child(&self->bn[k]);
    }
    destroy_child(&self->ds_conv);
    destroy_child(&self->ds_bn);
    rb_release_buffers(self);
    self->kept = 0;
    self->frozen = 1;
    return PLY_OK;
}
