/*
 * conv2d forward by space-to-depth and Winograd (see conv_s2d.h).
 *
 * Scratch: [xs N*C*S*S*(OH+2)*(OW+2)][ws OC*C*S*S*9][Winograd's], each part
 * a multiple of 16 floats so that every part starts on a cache line.
 */
#include "conv_s2d.h"

#include <string.h>

#include "conv_winograd.h"

static size_t round16(size_t n) { return (n + 15) / 16 * 16; }

// The 3x3, stride-1, unpadded layer over the folded input.
static conv_geom folded(const conv_geom *g) {
    const int64_t S = g->SH;
    conv_geom f = {.N = g->N, .C = g->C * S * S, .H = g->OH + 2, .W = g->OW + 2, .OC = g->OC, .KH = 3, .KW = 3,
                   .SH = 1, .SW = 1, .PH = 0, .PW = 0, .OH = g->OH, .OW = g->OW, .DH = 1, .DW = 1,
                   .XC = g->C * S * S, .YC = g->OC};
    return f;
}

int conv_s2d_fits(int64_t KH, int64_t KW, int64_t SH, int64_t SW) {
    conv_geom f = {.N = 1, .C = 16, .H = 3, .W = 3, .OC = 16, .KH = 3, .KW = 3, .SH = 1, .SW = 1, .PH = 0, .PW = 0,
                   .OH = 1, .OW = 1, .DH = 1, .DW = 1, .XC = 16, .YC = 16};
    return SH >= 2 && SW == SH && KH >= 1 && KH <= 3 * SH && KW >= 1 && KW <= 3 * SW && conv_winograd_fits(&f);
}

// Smaller kernels fold into 3x3 with more zero taps than the 2.25x Winograd saves.
int conv_s2d_suits(const conv_geom *g) {
    const int64_t S = g->SH;
    if (!conv_s2d_fits(g->KH, g->KW, g->SH, g->SW) || g->KH <= 2 * S || g->KW <= 2 * S) return 0;
    conv_geom f = folded(g);
    return conv_winograd_suits(&f);
}

static size_t xs_floats(const conv_geom *f) { return round16((size_t)(f->N * f->C * f->H * f->W)); }
static size_t ws_floats(const conv_geom *f) { return round16((size_t)(f->OC * f->C * 9)); }

// The folded layer's tile side, and the cache form that keeps its U apart from a plain Winograd
// layer's (forms 2, 4, 6): U depends on the tile side and S as well as on the weights.
static int s2d_tile(const conv_geom *f) { return conv_winograd_tile(f); }
static int s2d_form(const conv_geom *g, int m) { return (int)(16 * g->SH + m); }

size_t conv_s2d_forward_floats(const conv_geom *g, int64_t threads) {
    conv_geom f = folded(g);
    // the folded weights are made in the scratch (Winograd's part of it, before U is taken)
    size_t wino = conv_winograd_forward_u_floats(&f, s2d_tile(&f), threads);
    return xs_floats(&f) + (wino > ws_floats(&f) ? wino : ws_floats(&f));
}

typedef struct {
    const conv_geom *g, *f;
    const float *x;
    float *xs;
} fold_job;

// Folded planes [p0, p1) of xs, p = n*C*S*S + (c*S + a)*S + b.
static void fold_planes(void *ctx, int64_t p0, int64_t p1) {
    const fold_job *j = ctx;
    const conv_geom *g = j->g, *f = j->f;
    const int64_t S = g->SH, SS = S * S;
    for (int64_t p = p0; p < p1; p++) {
        int64_t n = p / f->C, cab = p % f->C, c = cab / SS, a = cab % SS / S, b = cab % S;
        const float *xc = j->x + (n * g->C + c) * g->H * g->W;
        float *dst = j->xs + p * f->H * f->W;
        // columns j in [lo, hi) with 0 <= j*S + b - PW < W
        int64_t lo, hi;
        ply_conv_out_range(b, S, g->PW, g->W, f->W, &lo, &hi);
        for (int64_t i = 0; i < f->H; i++, dst += f->W) {
            int64_t ih = i * S + a - g->PH;
            if (ih < 0 || ih >= g->H) { memset(dst, 0, (size_t)f->W * sizeof(float)); continue; }
            const float *src = xc + ih * g->W + b - g->PW;
            for (int64_t jj = 0; jj < lo; jj++) dst[jj] = 0.0f;
            for (int64_t jj = lo; jj < hi; jj++) dst[jj] = src[jj * S];
            for (int64_t jj = hi; jj < f->W; jj++) dst[jj] = 0.0f;
        }
    }
}

// ws[o][(c*S + a)*S + b][u][v] = w[o][c][u*S + a][v*S + b], 0 past the kernel.
static void fold_weights(const conv_geom *g, const float *w, float *ws) {
    const int64_t S = g->SH, KK = g->KH * g->KW;
    for (int64_t o = 0; o < g->OC; o++)
        for (int64_t c = 0; c < g->C; c++) {
            const float *wc = w + (o * g->C + c) * KK;
            for (int64_t a = 0; a < S; a++)
                for (int64_t b = 0; b < S; b++, ws += 9)
                    for (int64_t u = 0; u < 3; u++)
                        for (int64_t v = 0; v < 3; v++) {
                            int64_t kh = u * S + a, kw = v * S + b;
                            ws[u * 3 + v] = kh < g->KH && kw < g->KW ? wc[kh * g->KW + kw] : 0.0f;
                        }
        }
}

static void fold_input(const ply_host *host, int64_t threads, const conv_geom *g, const conv_geom *f, const float *x,
                       float *xs) {
    fold_job j = {g, f, x, xs};
    int64_t planes = f->N * f->C;
    if (threads > 1) host->parallel_for(host, planes, (planes + threads - 1) / threads, fold_planes, &j);
    else fold_planes(&j, 0, planes);
}

ply_status conv_s2d_forward(conv_weight_cache *cache, const ply_host *host, int64_t threads, const conv_geom *g,
                            const float *w, const float *bias, int relu, const float *x, float *y, float *scratch) {
    conv_geom f = folded(g);
    const int m = s2d_tile(&f);
    float *xs = scratch, *rest = xs + xs_floats(&f), *U;
    int stale;
    ply_status st = conv_weight_cache_check(cache, host, threads, w, (size_t)(g->OC * g->C * g->KH * g->KW),
                                            s2d_form(g, m), 1, conv_winograd_weights_floats(&f, m),
                                            "the folded Winograd weights", &U, &stale);
    if (st != PLY_OK) return st;
    if (stale) {
        fold_weights(g, w, rest); // ws in the scratch, transformed into the cache
        conv_winograd_weights(host, threads, &f, m, rest, U);
    }
    fold_input(host, threads, g, &f, x, xs);
    conv_winograd_forward_u(host, threads, &f, m, U, bias, relu, xs, y, rest);
    return PLY_OK;
}
