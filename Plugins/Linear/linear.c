/*
 * Linear family: linear (PyTorch's nn.Linear). Input [*, in_features] ->
 * output [*, out_features]; every leading dimension is a batch dimension.
 *   y  = x W^T + b          x: [M, in], W: [out, in], y: [M, out]
 *   dx = dy W               dW += dy^T x               db += colsum(dy)
 * All three products are single OpenBLAS sgemm calls (OpenBLAS threads them).
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ply/plugin.h"

struct ply_layer {
    const ply_host *host;
    int64_t in, out;
    int has_bias;
    float *weight, *dweight; // [out, in]
    float *bias, *dbias;     // [out], NULL when bias=false
};

// ----------------------------------------------------------------------------
// kernels (sizes are IN/OUT, not I/O: cblas.h pulls in <complex.h>, whose I is a macro)

// y[M, OUT] = x[M, IN] * w[OUT, IN]^T + b[OUT]
static void linear_forward(float *y, const float *x, const float *w, const float *b, int64_t M, int64_t IN,
                           int64_t OUT) {
    float beta = 0.0f;
    if (b) {
        for (int64_t m = 0; m < M; m++) memcpy(y + m * OUT, b, (size_t)OUT * sizeof(float));
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)OUT, (int)IN, 1.0f, x, (int)IN, w, (int)IN, beta,
                y, (int)OUT);
}

// dx[M, IN] = dy[M, OUT] * w[OUT, IN] (if dx); dw[OUT, IN] += dy^T x; db[OUT] += sum_m dy[m, :] (if db)
static void linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                            int64_t M, int64_t IN, int64_t OUT) {
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)IN, (int)OUT, 1.0f, dy, (int)OUT, w, (int)IN,
                    0.0f, dx, (int)IN);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)OUT, (int)IN, (int)M, 1.0f, dy, (int)OUT, x, (int)IN, 1.0f,
                dw, (int)IN);
    if (db)
        for (int64_t m = 0; m < M; m++)
            for (int64_t o = 0; o < OUT; o++) db[o] += dy[m * OUT + o];
}

// ----------------------------------------------------------------------------
// vtable

static ply_status positive_attr(const ply_host *host, const ply_attrs *attrs, const char *name, int64_t *out) {
    ply_status st = host->attr_int(host, attrs, name, out);
    if (st == PLY_ERR_NOT_FOUND) return ply_errorf(host, PLY_ERR_NOT_FOUND, "linear: missing attribute '%s'", name);
    if (st != PLY_OK) return st;
    if (*out <= 0 || *out > INT32_MAX)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "linear: %s must be in 1..%d (got %lld)", name, INT32_MAX,
                          (long long)*out);
    return PLY_OK;
}

static ply_status linear_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    int64_t in, outf;
    int32_t bias = 1;
    ply_status st;
    if ((st = positive_attr(host, attrs, "in_features", &in)) != PLY_OK) return st;
    if ((st = positive_attr(host, attrs, "out_features", &outf)) != PLY_OK) return st;
    st = host->attr_bool(host, attrs, "bias", &bias);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;

    ply_layer *L = host->alloc(host, sizeof *L);
    if (!L) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "linear: out of memory");
    memset(L, 0, sizeof *L);
    L->host = host;
    L->in = in; L->out = outf;
    L->has_bias = bias != 0;
    size_t wbytes = (size_t)(in * outf) * sizeof(float), bbytes = (size_t)outf * sizeof(float);
    L->weight = host->alloc(host, wbytes);
    L->dweight = host->alloc(host, wbytes);
    if (L->has_bias) {
        L->bias = host->alloc(host, bbytes);
        L->dbias = host->alloc(host, bbytes);
    }
    if (!L->weight || !L->dweight || (L->has_bias && (!L->bias || !L->dbias))) {
        host->free(host, L->weight); host->free(host, L->dweight);
        host->free(host, L->bias); host->free(host, L->dbias);
        host->free(host, L);
        return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "linear: cannot allocate %lld weights", (long long)(in * outf));
    }
    // kaiming_uniform(a=sqrt(5)) => U(-1/sqrt(in), 1/sqrt(in)), bias likewise
    float bound = (float)(1.0 / sqrt((double)in));
    host->fill_uniform(host, L->weight, in * outf, -bound, bound);
    memset(L->dweight, 0, wbytes);
    if (L->has_bias) {
        host->fill_uniform(host, L->bias, outf, -bound, bound);
        memset(L->dbias, 0, bbytes);
    }
    *out = L;
    return PLY_OK;
}

static void linear_destroy(ply_layer *L) {
    if (!L) return;
    const ply_host *h = L->host;
    h->free(h, L->weight); h->free(h, L->dweight);
    h->free(h, L->bias); h->free(h, L->dbias);
    h->free(h, L);
}

static ply_status linear_infer_shape(ply_layer *L, int32_t n_inputs, const ply_shape *inputs, ply_shape *output) {
    (void)n_inputs;
    const ply_shape *s = &inputs[0];
    if (s->ndim < 1)
        return ply_errorf(L->host, PLY_ERR_SHAPE, "linear: input 0 must have at least 1 dim [*, in_features] (got 0)");
    if (s->dims[s->ndim - 1] != L->in)
        return ply_errorf(L->host, PLY_ERR_SHAPE, "linear: input 0 dim %d (last) is %lld, expected in_features=%lld",
                          s->ndim - 1, (long long)s->dims[s->ndim - 1], (long long)L->in);
    if (ply_shape_numel(s) / L->in > INT32_MAX)
        return ply_errorf(L->host, PLY_ERR_SHAPE, "linear: input 0 has too many rows for 32-bit BLAS indices");
    *output = *s;
    output->dims[s->ndim - 1] = L->out;
    return PLY_OK;
}

static ply_status check_input(ply_layer *L, const ply_tensor *t, int64_t *M) {
    ply_shape os;
    if (t->strides || t->dtype != PLY_DTYPE_F32)
        return ply_errorf(L->host, PLY_ERR_UNSUPPORTED, "linear: input 0 must be a compact float32 tensor");
    ply_status st = linear_infer_shape(L, 1, &t->shape, &os);
    if (st != PLY_OK) return st;
    *M = ply_shape_numel(&t->shape) / L->in;
    return PLY_OK;
}

static ply_status linear_fwd(ply_layer *L, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output) {
    (void)n_inputs;
    int64_t M = 0;
    ply_status st = check_input(L, &inputs[0], &M);
    if (st != PLY_OK) return st;
    if (M > 0) linear_forward(output->data, inputs[0].data, L->weight, L->bias, M, L->in, L->out);
    return PLY_OK;
}

static ply_status linear_bwd(ply_layer *L, int32_t n_inputs, const ply_tensor *inputs, const ply_tensor *output,
                             const ply_tensor *grad_output, ply_tensor *grad_inputs) {
    (void)n_inputs; (void)output;
    int64_t M = 0;
    ply_status st = check_input(L, &inputs[0], &M);
    if (st != PLY_OK) return st;
    if (grad_output->strides)
        return ply_errorf(L->host, PLY_ERR_UNSUPPORTED, "linear: grad_output must be a compact float32 tensor");
    if (M > 0)
        linear_backward(grad_inputs[0].data, L->dweight, L->dbias, grad_output->data, inputs[0].data, L->weight, M,
                        L->in, L->out);
    return PLY_OK;
}

static int32_t linear_param_count(ply_layer *L) { return L->has_bias ? 2 : 1; }

static ply_status linear_get_param(ply_layer *L, int32_t index, ply_param *out) {
    if (index == 0) {
        *out = ply_param_make("weight", L->weight, L->dweight, ply_shape_make(2, L->out, L->in, 0, 0));
        return PLY_OK;
    }
    if (index == 1 && L->has_bias) {
        *out = ply_param_make("bias", L->bias, L->dbias, ply_shape_make(1, L->out, 0, 0, 0));
        return PLY_OK;
    }
    return ply_errorf(L->host, PLY_ERR_NOT_FOUND, "linear: no parameter %d (it has %d)", index,
                      linear_param_count(L));
}

static const ply_layer_type linear_type = {
    sizeof(ply_layer_type), PLY_ABI_VERSION, "linear",
    "fully connected y = x W^T + b over the last dim; attrs in_features, out_features, bias", 1, 1,
    linear_create, linear_destroy, linear_infer_shape, linear_fwd, linear_bwd, linear_param_count, linear_get_param,
    NULL,
};

static const ply_layer_type *const types[] = {&linear_type};

static const ply_plugin plugin = {
    sizeof(ply_plugin), PLY_ABI_VERSION, "ply.linear", "1.0.0", 1, 0, types,
};

PLY_EXPORT const ply_plugin *ply_plugin_entry(const ply_host *host) {
    if (PLY_ABI_MAJOR_OF(host->abi_version) != PLY_ABI_VERSION_MAJOR) {
        host->set_error(host, PLY_ERR_ABI, "ply.linear: built for ABI major 1, host has another major version");
        return NULL;
    }
    return &plugin;
}
