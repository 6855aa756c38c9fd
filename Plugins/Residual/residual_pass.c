/*
 * Residual blocks: shapes, forward and backward through the children.
 *
 * Forward, with S stages (2 basic, 3 bottleneck) and x the input:
 *   a_0 = x;  c_k = conv_k(a_k);  b_k = bn_k(c_k);  a_{k+1} = r_k = relu(b_k)  (k < S-1)
 * (when bn_k took the relu, fused[k], b_k is relu(bn_k(c_k)) itself and r_k is b_k)
 *   id  = downsample ? bn_d(conv_d(x)) : x
 *   sum = b_{S-1} + id;  y = relu(sum)
 * In training every intermediate is kept in the instance for backward, which
 * runs the same chain in reverse and adds the two gradients that reach x. In
 * evaluation residual_eval.c runs folded convs and keeps nothing; a backward
 * after it recomputes the intermediates first.
 */
#include <string.h>

#include "residual.h"

// Output shape of stage k's conv (k == stages: the downsample's): the child's, or once frozen (the
// child is gone) its folded twin's, which has the same geometry.
static ply_status conv_shape(const ply_layer *self, int32_t k, const ply_shape *in, ply_shape *out) {
    if (self->frozen) {
        const ply_fold *f = k < self->stages ? &self->fold[k] : &self->ds_fold;
        return f->type->infer_shape(f->layer, 1, in, out);
    }
    const rb_child *c = k < self->stages ? &self->conv[k] : &self->ds_conv;
    return c->type->infer_shape(c->layer, 1, in, out);
}

static int same_shape(const ply_shape *a, const ply_shape *b) {
    if (a->ndim != b->ndim) return 0;
    for (int32_t i = 0; i < a->ndim; i++)
        if (a->dims[i] != b->dims[i]) return 0;
    return 1;
}

// Shapes of every conv output (c[k]), of the downsample conv output (dc) and of the block output.
ply_status rb_plan(ply_layer *self, const ply_shape *x, ply_shape c[RB_MAX_STAGES], ply_shape *dc, ply_shape *out) {
    const ply_host *h = self->host;
    if (x->ndim != 4)
        return ply_errorf(h, PLY_ERR_SHAPE, "%s: input 0 must be [N, C, H, W] (got %d dimensions)", self->tname,
                          x->ndim);
    if (x->dims[1] != self->inplanes)
        return ply_errorf(h, PLY_ERR_SHAPE, "%s: input 0 dimension 1 (channels) is %lld, expected inplanes = %lld",
                          self->tname, (long long)x->dims[1], (long long)self->inplanes);
    ply_status st;
    const ply_shape *in = x;
    for (int32_t k = 0; k < self->stages; k++) {
        if ((st = conv_shape(self, k, in, &c[k])) != PLY_OK) return st;
        in = &c[k];
    }
    const ply_shape *id = x;
    if (self->downsample) {
        if ((st = conv_shape(self, self->stages, x, dc)) != PLY_OK) return st;
        id = dc;
    } else {
        *dc = *x;
    }
    const ply_shape *main_out = &c[self->stages - 1];
    if (!same_shape(main_out, id))
        return ply_errorf(h, PLY_ERR_SHAPE,
                          "%s: shortcut [%lld, %lld, %lld, %lld] does not match the main path [%lld, %lld, %lld, %lld]",
                          self->tname, (long long)id->dims[0], (long long)id->dims[1], (long long)id->dims[2],
                          (long long)id->dims[3], (long long)main_out->dims[0], (long long)main_out->dims[1],
                          (long long)main_out->dims[2], (long long)main_out->dims[3]);
    *out = *main_out;
    return PLY_OK;
}

ply_status rb_infer_shape(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, ply_shape *output) {
    (void)n_inputs;
    ply_shape c[RB_MAX_STAGES], dc;
    return rb_plan(self, &inputs[0], c, &dc, output);
}

// Makes buf[id] hold at least n floats (contents are not kept when it grows).
static ply_status grow(ply_layer *self, int id, int64_t n) {
    rb_buf *b = &self->buf[id];
    if (n < 1) n = 1;
    if ((size_t)n <= b->cap) return PLY_OK;
    const ply_host *h = self->host;
    h->free(h, b->data);
    b->data = h->alloc(h, (size_t)n * sizeof(float));
    b->cap = b->data ? (size_t)n : 0;
    if (!b->data)
        return ply_errorf(h, PLY_ERR_OUT_OF_MEMORY, "%s: out of memory for %lld intermediate values", self->tname,
                          (long long)n);
    return PLY_OK;
}

// out[i] = a[i] + b[i] over [begin, end), split over the host's threads (element-wise, memory-bound)
typedef struct { float *out; const float *a, *b; } add_job;

static void add_range(void *ctx, int64_t begin, int64_t end) {
    const add_job *j = ctx;
    for (int64_t i = begin; i < end; i++) j->out[i] = j->a[i] + j->b[i];
}

static void add_arrays(const ply_host *h, float *out, const float *a, const float *b, int64_t n) {
    add_job j = {out, a, b};
    int64_t threads = h->thread_count(h);
    if (threads <= 1 || n < (1 << 16)) { add_range(&j, 0, n); return; }
    h->parallel_for(h, n, (n + threads - 1) / threads, add_range, &j);
}

static ply_tensor view(ply_layer *self, int id, ply_shape shape) {
    return ply_tensor_make(self->buf[id].data, shape);
}

static ply_status run_forward(const rb_child *c, const ply_tensor *in, ply_tensor *out) {
    return c->type->forward(c->layer, 1, in, out);
}

static ply_status run_backward(const rb_child *c, const ply_tensor *in, const ply_tensor *out, const ply_tensor *gout,
                               ply_tensor *gin) {
    return c->type->backward(c->layer, 1, in, out, gout, gin);
}

// The forward that keeps every intermediate for backward; writes the output unless `output` is NULL
// (backward after an evaluation forward, which kept nothing, recomputes them this way).
static ply_status forward_kept(ply_layer *self, const ply_tensor *x, ply_tensor *output) {
    ply_shape out_shape;
    ply_status st = rb_plan(self, &x->shape, self->shp_c, &self->shp_dc, &out_shape);
    if (st != PLY_OK) return st;
    int32_t S = self->stages;
    for (int32_t k = 0; k < S; k++) {
        int64_t n = ply_shape_numel(&self->shp_c[k]);
        if ((st = grow(self, RB_C0 + k, n)) != PLY_OK || (st = grow(self, RB_B0 + k, n)) != PLY_OK) return st;
        if (k < S - 1 && !self->fused[k] && (st = grow(self, RB_R0 + k, n)) != PLY_OK) return st;
    }
    int64_t n_out = ply_shape_numel(&out_shape);
    if ((st = grow(self, RB_SUM, n_out)) != PLY_OK) return st;
    if (self->downsample) {
        int64_t n = ply_shape_numel(&self->shp_dc);
        if ((st = grow(self, RB_DC, n)) != PLY_OK || (st = grow(self, RB_DB, n)) != PLY_OK) return st;
    }

    // Main path.
    ply_tensor in = *x;
    for (int32_t k = 0; k < S; k++) {
        ply_tensor c = view(self, RB_C0 + k, self->shp_c[k]), b = view(self, RB_B0 + k, self->shp_c[k]);
        if ((st = run_forward(&self->conv[k], &in, &c)) != PLY_OK) return st;
        if ((st = run_forward(&self->bn[k], &c, &b)) != PLY_OK) return st;
        if (k < S - 1 && self->fused[k]) {
            in = b; // b_k is already relu(bn(c_k))
        } else if (k < S - 1) {
            ply_tensor r = view(self, RB_R0 + k, self->shp_c[k]);
            if ((st = run_forward(&self->relu, &b, &r)) != PLY_OK) return st;
            in = r;
        }
    }
    // Shortcut.
    const float *id = x->data;
    if (self->downsample) {
        ply_tensor dc = view(self, RB_DC, self->shp_dc), db = view(self, RB_DB, self->shp_dc);
        if ((st = run_forward(&self->ds_conv, x, &dc)) != PLY_OK) return st;
        if ((st = run_forward(&self->ds_bn, &dc, &db)) != PLY_OK) return st;
        id = db.data;
    }
    const float *main_out = self->buf[RB_B0 + S - 1].data;
    float *sum = self->buf[RB_SUM].data;
    add_arrays(self->host, sum, main_out, id, n_out);
    ply_tensor sum_t = view(self, RB_SUM, out_shape);
    return output ? run_forward(&self->relu, &sum_t, output) : PLY_OK;
}

ply_status rb_forward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output) {
    (void)n_inputs;
    const ply_tensor *x = &inputs[0];
    if (x->strides || output->strides)
        return ply_errorf(self->host, PLY_ERR_UNSUPPORTED, "%s: strided tensors are not supported", self->tname);
    self->kept = 0;
    if (!self->training || self->frozen) {
        ply_shape out_shape;
        ply_status st = rb_plan(self, &x->shape, self->shp_c, &self->shp_dc, &out_shape);
        if (st != PLY_OK) return st;
        return rb_forward_eval(self, x, output, &out_shape);
    }
    rb_invalidate_folds(self); // the bns' running statistics move
    ply_status st = forward_kept(self, x, output);
    self->kept = st == PLY_OK;
    return st;
}

ply_status rb_backward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, const ply_tensor *output,
                       const ply_tensor *grad_output, ply_tensor *grad_inputs) {
    (void)n_inputs;
    const ply_tensor *x = &inputs[0];
    float *dx = grad_inputs[0].data;
    int32_t S = self->stages;
    ply_shape out_shape = output->shape;
    ply_status st;
    if (self->frozen)
        return ply_errorf(self->host, PLY_ERR_UNSUPPORTED,
                          "%s: frozen for inference (its unfolded convs were freed): no backward", self->tname);
    // An evaluation forward kept nothing: the intermediates again, from the same input and parameters.
    if (!self->kept && (st = forward_kept(self, x, NULL)) != PLY_OK) return st;
    self->kept = 1;
    int64_t n_out = ply_shape_numel(&out_shape), n_x = ply_shape_numel(&x->shape), n_c = n_out, n_r = 1;
    for (int32_t k = 0; k < S; k++) {
        int64_t n = ply_shape_numel(&self->shp_c[k]);
        if (n > n_c) n_c = n;
        if (k < S - 1 && n > n_r) n_r = n;
    }
    if ((st = grow(self, RB_GSUM, n_out)) != PLY_OK || (st = grow(self, RB_GC, n_c)) != PLY_OK ||
        (st = grow(self, RB_GR, n_r)) != PLY_OK || (st = grow(self, RB_GB, n_r)) != PLY_OK)
        return st;
    if (self->downsample && dx && (st = grow(self, RB_GX, n_x)) != PLY_OK) return st;

    // Final relu: d(sum).
    ply_tensor sum = view(self, RB_SUM, out_shape), gsum = view(self, RB_GSUM, out_shape);
    if ((st = run_backward(&self->relu, &sum, output, grad_output, &gsum)) != PLY_OK) return st;

    // Main path, last stage first; the first conv writes d(x) (or only its weight gradient).
    ply_tensor g = gsum; // gradient of b_k
    for (int32_t k = S - 1; k >= 0; k--) {
        ply_tensor c = view(self, RB_C0 + k, self->shp_c[k]), b = view(self, RB_B0 + k, self->shp_c[k]);
        ply_tensor gc = view(self, RB_GC, self->shp_c[k]);
        if ((st = run_backward(&self->bn[k], &c, &b, &g, &gc)) != PLY_OK) return st;
        if (k == 0) {
            ply_tensor gx = ply_tensor_make(dx, x->shape);
            if ((st = run_backward(&self->conv[0], x, &c, &gc, &gx)) != PLY_OK) return st;
            break;
        }
        ply_shape prev = self->shp_c[k - 1];
        ply_tensor pb = view(self, RB_B0 + k - 1, prev);
        ply_tensor r = self->fused[k - 1] ? pb : view(self, RB_R0 + k - 1, prev);
        ply_tensor gr = view(self, RB_GR, prev), gb = view(self, RB_GB, prev);
        if ((st = run_backward(&self->conv[k], &r, &c, &gc, &gr)) != PLY_OK) return st;
        if (self->fused[k - 1]) {
            g = gr; // bn[k-1] masks it by its output itself
            continue;
        }
        if ((st = run_backward(&self->relu, &pb, &r, &gr, &gb)) != PLY_OK) return st;
        g = gb;
    }

    // Shortcut: add its gradient to d(x).
    const float *gid = gsum.data;
    if (self->downsample) {
        ply_tensor dc = view(self, RB_DC, self->shp_dc), db = view(self, RB_DB, self->shp_dc);
        ply_tensor gdc = view(self, RB_GC, self->shp_dc);
        ply_tensor gx = ply_tensor_make(dx ? self->buf[RB_GX].data : NULL, x->shape);
        if ((st = run_backward(&self->ds_bn, &dc, &db, &gsum, &gdc)) != PLY_OK) return st;
        if ((st = run_backward(&self->ds_conv, x, &dc, &gdc, &gx)) != PLY_OK) return st;
        gid = gx.data;
    }
    if (dx) add_arrays(self->host, dx, dx, gid, n_x);
    return PLY_OK;
}
