/*
 * conv2d's backward (conv.c's vtable takes it): the fused relu's mask on grad_output, then the
 * weight, bias and input gradients of the plan the forward took (conv_plan.c): depthwise, once per
 * group for grouped or dilated layers, the live taps, Winograd's weight and input gradients where
 * they suit, im2col's, or the direct kernels one chunk of the batch per host thread with the
 * chunks' partial gradients summed after.
 */
#include "plugin_support.h"

#include "conv_depthwise.h"
#include "conv_direct.h"
#include "conv_gemm.h"
#include "conv_layer.h"
#include "conv_taps.h"
#include "conv_winograd.h"
#include "conv_winograd_backward.h"
#include "conv_winograd_wgrad.h"
#include "ply/plugin.h"

static void direct_backward_chunks(void *ctx, int64_t begin, int64_t end) {
    const direct_job *j = ctx;
    for (int64_t t = begin; t < end; t++) {
        int64_t n0, n1;
        conv_chunk_bounds(j, t, &n0, &n1);
        conv_direct_backward(&j->dg, j->L->wflip, j->x, j->dy, j->y_relu, j->dx, n0, n1,
                             j->L->scratch + (size_t)t * j->slice, j->L->has_bias);
    }
}

// The fused relu's derivative: dymask = grad_output where output > 0, else 0, for images [n0, n1).
typedef struct { const float *y, *dy; float *out; int64_t per_image; } mask_job;

static void mask_images(void *ctx, int64_t n0, int64_t n1) {
    const mask_job *m = ctx;
    for (int64_t i = n0 * m->per_image, e = n1 * m->per_image; i < e; i++) {
        float g = m->dy[i];
        m->out[i] = m->y[i] > 0.0f ? g : 0.0f;
    }
}

// conv.c's grouped_forward's backward: conv_gemm.c once per group (conv_group_geom).
static ply_status grouped_backward(ply_layer *L, const conv_geom *g, const float *x, const float *dy, float *dx) {
    conv_geom gg = conv_group_geom(g, L->G);
    int64_t threads = conv_gemm_threads(L), HW = g->H * g->W, P = g->OH * g->OW, wg = gg.OC * gg.C * g->KH * g->KW;
    ply_status st = conv_grow_scratch(L, conv_gemm_backward_floats(&gg, threads, L->rows_limit));
    if (st != PLY_OK) return st;
    for (int64_t gi = 0; gi < L->G; gi++)
        conv_gemm_backward(L->host, threads, L->algorithm != ALGO_BLAS, L->rows_limit, &gg, L->weight + gi * wg,
                           x + gi * gg.C * HW, dy + gi * gg.OC * P, dx ? dx + gi * gg.C * HW : NULL,
                           L->dweight + gi * wg, L->has_bias ? L->dbias + gi * gg.OC : NULL, L->scratch);
    return PLY_OK;
}

ply_status conv_backward(ply_layer *L, int32_t n_inputs, const ply_tensor *inputs, const ply_tensor *output,
                         const ply_tensor *grad_output, ply_tensor *grad_inputs) {
    (void)n_inputs;
    conv_geom g;
    if (!L->trainable)
        return ply_errorf(L->host, PLY_ERR_UNSUPPORTED, "conv2d: an inference-only conv (trainable=false) has no backward");
    ply_status st = conv_call_geom(L, &inputs[0], output, &g);
    if (st != PLY_OK) return st;
    if ((st = conv_check_tensor(L, grad_output, "grad_output")) != PLY_OK) return st;
    if (g.N == 0) return PLY_OK;
    const float *dy = grad_output->data;
    if (L->relu && !conv_use_direct(L)) { // (the direct kernels mask while they copy dy)
        size_t n = (size_t)(g.N * g.OC * g.OH * g.OW);
        if (n > L->dymask_floats) {
            L->host->free(L->host, L->dymask);
            L->dymask = L->host->alloc(L->host, n * sizeof(float));
            L->dymask_floats = L->dymask ? n : 0;
            if (!L->dymask)
                return ply_errorf(L->host, PLY_ERR_OUT_OF_MEMORY, "conv2d: cannot allocate %zu bytes for the fused relu's gradient",
                                  n * sizeof(float));
        }
        mask_job m = {output->data, dy, L->dymask, g.OC * g.OH * g.OW};
        L->host->parallel_for(L->host, g.N, 1, mask_images, &m);
        dy = L->dymask;
    }
    if (conv_use_depthwise(L)) {
        int64_t threads = L->host->thread_count(L->host);
        if ((st = conv_grow_scratch(L, conv_dw_backward_floats(&g, threads))) != PLY_OK) return st;
        conv_dw_backward(L->host, threads, &g, L->weight, inputs[0].data, dy, grad_inputs[0].data, L->dweight,
                         L->has_bias ? L->dbias : NULL, L->scratch);
        return PLY_OK;
    }
    if (!conv_is_plain(L)) return grouped_backward(L, &g, inputs[0].data, dy, grad_inputs[0].data);
    if (!conv_use_direct(L)) {
        int64_t threads = conv_gemm_threads(L);
        int taps;
        if ((st = conv_use_taps(L, &g, &taps)) != PLY_OK) return st;
        if (taps) {
            if ((st = conv_grow_scratch(L, conv_taps_backward_floats(&g))) != PLY_OK) return st;
            conv_taps_backward(L->host, threads, &g, L->weight, inputs[0].data, dy, grad_inputs[0].data, L->dweight,
                               L->has_bias ? L->dbias : NULL, L->scratch, L->taps_kept);
            return PLY_OK;
        }
        float *dx = grad_inputs[0].data;
        int wino_dx = dx && conv_use_winograd(L, &g) && conv_winograd_backward_data_suits(&g);
        // the weight gradient by Winograd too where the input gradient needs no im2col (conv_winograd_wgrad.h)
        int wino_dw = conv_use_winograd(L, &g) && conv_winograd_wgrad_suits(&g) && (!dx || wino_dx);
        size_t floats = wino_dw ? conv_winograd_wgrad_floats(&g, threads)
                                : conv_gemm_backward_floats(&g, threads, L->rows_limit);
        if (wino_dx && conv_winograd_backward_data_floats(&g, threads) > floats)
            floats = conv_winograd_backward_data_floats(&g, threads);
        if ((st = conv_grow_scratch(L, floats)) != PLY_OK) return st;
        // the input gradient by Winograd where the forward took it (conv_winograd_backward.h), else with dW
        if (wino_dw)
            conv_winograd_wgrad(L->host, threads, &g, inputs[0].data, dy, L->dweight, L->has_bias ? L->dbias : NULL,
                                L->scratch);
        else
            conv_gemm_backward(L->host, threads, L->algorithm != ALGO_BLAS, L->rows_limit, &g, L->weight,
                               inputs[0].data, dy, wino_dx ? NULL : dx, L->dweight, L->has_bias ? L->dbias : NULL,
                               L->scratch);
        if (wino_dx) conv_winograd_backward_data(L->host, threads, &g, L->weight, dy, dx, L->scratch);
        return PLY_OK;
    }
    direct_job j;
    if ((st = conv_direct_job_make(L, &g, inputs[0].data, &j, 1)) != PLY_OK) return st;
    j.dy = dy;
    j.dx = grad_inputs[0].data;
    j.y_relu = L->relu ? output->data : NULL;
    if (j.dx) conv_direct_flip(&j.dg, L->weight, L->wflip);
    if (j.chunks > 1) L->host->parallel_for(L->host, j.chunks, 1, direct_backward_chunks, &j);
    else direct_backward_chunks(&j, 0, 1);
    // sum the per-chunk, per-lane partials into the parameter gradients
    int64_t nw = L->OC * L->C * L->KH * L->KW;
    for (int64_t t = 0; t < j.chunks; t++) {
        const float *dwv = L->scratch + (size_t)t * j.slice, *dbv = dwv + nw * 16;
        for (int64_t i = 0; i < nw; i++) {
            float s = 0.0f;
            for (int k = 0; k < 16; k++) s += dwv[i * 16 + k];
            L->dweight[i] += s;
        }
        if (L->has_bias)
            for (int64_t o = 0; o < L->OC; o++) {
                float s = 0.0f;
                for (int k = 0; k < 16; k++) s += dbv[o * 16 + k];
                L->dbias[o] += s;
            }
    }
    return PLY_OK;
}
