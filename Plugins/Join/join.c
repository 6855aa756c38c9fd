/*
 * Join family: layers that combine several inputs into one output. No
 * parameters.
 *   concat: torch.cat(inputs, dim) (default dim 1, negative counts from the
 *           end); every dim but `dim` must match across inputs.
 *   add:    element-wise sum of 2+ inputs of identical shape (residual joins).
 *   mul:    element-wise product of two inputs, broadcasting (mul.c).
 */
#include <string.h>

#include "ply/plugin.h"
#include "plugin_support.h"
#include "mul.h"

typedef enum { JOIN_CONCAT, JOIN_ADD } join_kind;

struct ply_layer {
    const ply_host *host;
    join_kind kind;
    int64_t dim; // concat dimension as given, may be negative
};

// ----------------------------------------------------------------------------
// kernels

// Every tensor is viewed as (outer, D_i, inner) around the concat dim; the
// output's middle dim is the sum of the D_i. offset = sum of D_j for j < i.
// din: (outer, D, inner), dout: (outer, Dsum, inner)
static void concat_backward_one(float *din, const float *dout, int64_t outer, int64_t D, int64_t Dsum, int64_t offset,
                                int64_t inner) {
    size_t row = (size_t)(D * inner) * sizeof(float);
    for (int64_t o = 0; o < outer; o++) memcpy(din + o * D * inner, dout + (o * Dsum + offset) * inner, row);
}

// out[i] = a[i] + b[i]  (out may alias a)
static void add_forward(float *out, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

// ----------------------------------------------------------------------------
// parallel driver for add (memory-bound: split only large tensors)

typedef struct {
    float *out;
    const ply_tensor *inputs;
    int32_t n_inputs;
} add_job;

static void add_run(void *ctx, int64_t begin, int64_t end) {
    const add_job *j = ctx;
    const float *a = j->inputs[0].data, *b = j->inputs[1].data;
    add_forward(j->out + begin, a + begin, b + begin, end - begin);
    for (int32_t k = 2; k < j->n_inputs; k++)
        add_forward(j->out + begin, j->out + begin, (const float *)j->inputs[k].data + begin, end - begin);
}

// ----------------------------------------------------------------------------
// parallel driver for concat: each thread copies a range of the output

// Below this many output floats one thread copies it all: a parallel_for costs a few microseconds
// (activation.c's ELEMENTWISE_GRAIN), 64K floats take one thread ~10-25 us to copy. GoogLeNet's
// inception concats at batch 1 (100K-380K floats, 5a/5b's 41K-50K stay on one thread) were a
// quarter of the serial time of a 2-thread forward (perf, main thread outside parallel_for).
#define CONCAT_SPLIT_FLOATS (1 << 16)

typedef struct {
    float *out;
    const ply_tensor *inputs;
    int32_t n_inputs;
    int64_t d, dsum, inner; // the output is (outer, dsum, inner); input i is (outer, D_i, inner)
} concat_job;

// out's floats [begin, end): row r = f / (dsum*inner), column c = f % (dsum*inner) falls in input i
// with offset_i*inner <= c < (offset_i + D_i)*inner and copies in_i[r*D_i*inner + c - offset_i*inner].
static void concat_run(void *ctx, int64_t begin, int64_t end) {
    const concat_job *j = ctx;
    const int64_t row = j->dsum * j->inner;
    for (int64_t f = begin; f < end;) {
        const int64_t r = f / row, c = f % row, stop = ply_min_i64(end, (r + 1) * row) - r * row;
        int64_t lo = 0; // input i's columns: [lo, lo + D_i*inner)
        for (int32_t i = 0; i < j->n_inputs && lo < stop; i++) {
            const int64_t w = j->inputs[i].shape.dims[j->d] * j->inner, b = ply_max_i64(lo, c), e = ply_min_i64(lo + w, stop);
            if (b < e)
                memcpy(j->out + r * row + b, (const float *)j->inputs[i].data + r * w + (b - lo), (size_t)(e - b) * sizeof(float));
            lo += w;
        }
        f = r * row + stop;
    }
}

// ----------------------------------------------------------------------------
// vtable

static ply_status create_kind(const ply_host *host, const ply_attrs *attrs, ply_layer **out, join_kind kind) {
    int64_t dim = 1;
    if (kind == JOIN_CONCAT) {
        ply_status st = host->attr_int(host, attrs, "dim", &dim);
        if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    }
    ply_layer *self = host->alloc(host, sizeof *self);
    if (!self) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "%s: out of memory", kind == JOIN_ADD ? "add" : "concat");
    self->host = host;
    self->kind = kind;
    self->dim = dim;
    *out = self;
    return PLY_OK;
}

static ply_status concat_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    return create_kind(host, attrs, out, JOIN_CONCAT);
}
static ply_status add_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    return create_kind(host, attrs, out, JOIN_ADD);
}

static void join_destroy(ply_layer *self) {
    if (self) self->host->free(self->host, self);
}

// Resolve the concat dim against input 0's rank and check every input
// against input 0; on success view the output as (outer, Dsum, inner).
static ply_status concat_check(const ply_layer *self, int32_t n, const ply_shape *s, int64_t *d_out, int64_t *outer,
                               int64_t *dsum, int64_t *inner) {
    if (n < 1) return ply_errorf(self->host, PLY_ERR_SHAPE, "concat: needs at least 1 input (got %d)", n);
    int32_t ndim = s[0].ndim;
    if (ndim == 0) return ply_errorf(self->host, PLY_ERR_SHAPE, "concat: input 0 is a scalar; cannot concatenate");
    int64_t d = self->dim < 0 ? self->dim + ndim : self->dim;
    if (d < 0 || d >= ndim)
        return ply_errorf(self->host, PLY_ERR_SHAPE, "concat: dim %lld is out of range for input 0 with %d dimensions",
                          (long long)self->dim, ndim);
    int64_t sum = 0;
    for (int32_t i = 0; i < n; i++) {
        if (s[i].ndim != ndim)
            return ply_errorf(self->host, PLY_ERR_SHAPE,
                              "concat: input %d has %d dimensions (expected %d, as input 0)", i, s[i].ndim, ndim);
        for (int32_t k = 0; k < ndim; k++) {
            if (k != d && s[i].dims[k] != s[0].dims[k])
                return ply_errorf(self->host, PLY_ERR_SHAPE,
                                  "concat: input %d dimension %d is %lld (expected %lld, as input 0; only dimension "
                                  "%lld may differ)",
                                  i, k, (long long)s[i].dims[k], (long long)s[0].dims[k], (long long)d);
        }
        sum += s[i].dims[d];
    }
    *d_out = d;
    *dsum = sum;
    *outer = 1;
    *inner = 1;
    for (int64_t k = 0; k < d; k++) *outer *= s[0].dims[k];
    for (int64_t k = d + 1; k < ndim; k++) *inner *= s[0].dims[k];
    return PLY_OK;
}

static ply_status add_check(const ply_layer *self, int32_t n, const ply_shape *s) {
    if (n < 2) return ply_errorf(self->host, PLY_ERR_SHAPE, "add: needs at least 2 inputs (got %d)", n);
    for (int32_t i = 1; i < n; i++) {
        if (s[i].ndim != s[0].ndim)
            return ply_errorf(self->host, PLY_ERR_SHAPE, "add: input %d has %d dimensions (expected %d, as input 0)",
                              i, s[i].ndim, s[0].ndim);
        for (int32_t k = 0; k < s[0].ndim; k++)
            if (s[i].dims[k] != s[0].dims[k])
                return ply_errorf(self->host, PLY_ERR_SHAPE, "add: input %d dimension %d is %lld (expected %lld, as input 0)",
                                  i, k, (long long)s[i].dims[k], (long long)s[0].dims[k]);
    }
    return PLY_OK;
}

static ply_status join_infer_shape(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, ply_shape *output) {
    if (self->kind == JOIN_ADD) {
        ply_status st = add_check(self, n_inputs, inputs);
        if (st != PLY_OK) return st;
        *output = inputs[0];
        return PLY_OK;
    }
    int64_t d = 0, outer = 1, dsum = 0, inner = 1;
    ply_status st = concat_check(self, n_inputs, inputs, &d, &outer, &dsum, &inner);
    if (st != PLY_OK) return st;
    *output = inputs[0];
    output->dims[d] = dsum;
    return PLY_OK;
}

// Gather the input shapes (the checks run on shapes) into a small array.
#define MAX_STACK_INPUTS 64
static ply_status collect_shapes(const ply_layer *self, int32_t n, const ply_tensor *t, ply_shape *buf,
                                 ply_shape **shapes) {
    *shapes = n <= MAX_STACK_INPUTS ? buf : self->host->alloc(self->host, (size_t)n * sizeof(ply_shape));
    if (!*shapes) return ply_errorf(self->host, PLY_ERR_OUT_OF_MEMORY, "concat: out of memory");
    for (int32_t i = 0; i < n; i++) {
        if (t[i].strides || t[i].dtype != PLY_DTYPE_F32) {
            if (*shapes != buf) self->host->free(self->host, *shapes);
            return ply_errorf(self->host, PLY_ERR_UNSUPPORTED, "%s: input %d must be a compact float32 tensor",
                              self->kind == JOIN_ADD ? "add" : "concat", i);
        }
        (*shapes)[i] = t[i].shape;
    }
    return PLY_OK;
}

static ply_status join_forward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output) {
    ply_shape buf[MAX_STACK_INPUTS], *shapes;
    ply_status st = collect_shapes(self, n_inputs, inputs, buf, &shapes);
    if (st != PLY_OK) return st;
    if (self->kind == JOIN_ADD) {
        st = add_check(self, n_inputs, shapes);
        if (st == PLY_OK) {
            int64_t n = ply_shape_numel(&inputs[0].shape);
            add_job job = {output->data, inputs, n_inputs};
            if (n < (1 << 18) || self->host->thread_count(self->host) <= 1)
                add_run(&job, 0, n);
            else
                self->host->parallel_for(self->host, n, 1 << 16, add_run, &job);
        }
    } else {
        int64_t d = 0, outer = 1, dsum = 0, inner = 1;
        st = concat_check(self, n_inputs, shapes, &d, &outer, &dsum, &inner);
        if (st == PLY_OK) {
            const int64_t n = outer * dsum * inner, threads = self->host->thread_count(self->host);
            concat_job job = {output->data, inputs, n_inputs, d, dsum, inner};
            if (n < CONCAT_SPLIT_FLOATS || threads <= 1)
                concat_run(&job, 0, n);
            else // whole cache lines (16 floats) per thread
                self->host->parallel_for(self->host, n, ply_round_up_i64((n + threads - 1) / threads, 16), concat_run, &job);
        }
    }
    if (shapes != buf) self->host->free(self->host, shapes);
    return st;
}

static ply_status join_backward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, const ply_tensor *output,
                                const ply_tensor *grad_output, ply_tensor *grad_inputs) {
    (void)output;
    if (self->kind == JOIN_ADD) {
        int64_t n = ply_shape_numel(&grad_output->shape);
        for (int32_t i = 0; i < n_inputs; i++)
            if (grad_inputs[i].data) memcpy(grad_inputs[i].data, grad_output->data, (size_t)n * sizeof(float));
        return PLY_OK;
    }
    ply_shape buf[MAX_STACK_INPUTS], *shapes;
    ply_status st = collect_shapes(self, n_inputs, inputs, buf, &shapes);
    if (st != PLY_OK) return st;
    int64_t d = 0, outer = 1, dsum = 0, inner = 1, offset = 0;
    st = concat_check(self, n_inputs, shapes, &d, &outer, &dsum, &inner);
    for (int32_t i = 0; st == PLY_OK && i < n_inputs; i++) {
        int64_t D = inputs[i].shape.dims[d];
        if (grad_inputs[i].data) concat_backward_one(grad_inputs[i].data, grad_output->data, outer, D, dsum, offset, inner);
        offset += D;
    }
    if (shapes != buf) self->host->free(self->host, shapes);
    return st;
}

static const ply_attr_spec concat_specs[] = {
    {.name = "dim", .kind = PLY_ATTR_INT, .default_text = "1",
     .doc = "the axis to concatenate along (negative counts from the end)"},
    PLY_SPEC_END,
};
static const ply_attr_spec add_specs[] = {PLY_SPEC_END};

// No describe: joins count no MACs and keep the field (the host takes the maximum over the inputs).
static const ply_layer_type concat_type = {
    .struct_size = sizeof(ply_layer_type),
    .abi_version = PLY_ABI_VERSION,
    .name = "concat",
    .doc = "concatenate 1+ inputs along `dim` (default 1), as torch.cat",
    .min_inputs = 1,
    .max_inputs = -1,
    .create = concat_create,
    .destroy = join_destroy,
    .infer_shape = join_infer_shape,
    .forward = join_forward,
    .backward = join_backward,
    .attr_specs = concat_specs,
    .inputs_doc = "x0, x1, ...: equal shapes but for the axis `dim`, e.g. (N, C_i, H, W)",
};
static const ply_layer_type add_type = {
    .struct_size = sizeof(ply_layer_type),
    .abi_version = PLY_ABI_VERSION,
    .name = "add",
    .doc = "element-wise sum of 2+ inputs of identical shape",
    .min_inputs = 2,
    .max_inputs = -1,
    .create = add_create,
    .destroy = join_destroy,
    .infer_shape = join_infer_shape,
    .forward = join_forward,
    .backward = join_backward,
    .attr_specs = add_specs,
    .inputs_doc = "x0, x1, ...: identical shapes",
};

static const ply_layer_type *const types[] = {&concat_type, &add_type, &ply_mul_type};

static const ply_plugin plugin = {
    sizeof(ply_plugin), PLY_ABI_VERSION, "ply.join", "1.1.0", 3, 0, types,
};

PLY_BUILTIN_ENTRY(join) {
    if (PLY_ABI_MAJOR_OF(host->abi_version) != PLY_ABI_VERSION_MAJOR) {
        host->set_error(host, PLY_ERR_ABI, "ply.join: host ABI major version differs from the plugin's (1)");
        return NULL;
    }
    return &plugin;
}
