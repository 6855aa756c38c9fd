/*
 * batchnorm2d on narrow planes, vectorised across channels (see batchnorm_narrow.h).
 *
 * Index equations (block of channels [c0, c1), Q = (c1 - c0)*S elements per image, q = (c - c0)*S + s):
 *   x_n[q] = x[(n*C + c0)*S + q];  acc[q] = sum over n in order of x_n[q] (double);
 *   the channel's total = acc[(c - c0)*S + 0] + ... + acc[(c - c0)*S + S - 1] + zeros for the lanes
 *   up to 8, added as the per-channel kernel adds its lanes (batchnorm_channels.c: lanes_total for the forward's
 *   statistics, _mm512_reduce_add_pd of the two halves' sum for the gradient sums).
 */
#include "plugin_support.h"

#include "batchnorm_narrow.h"

#include <string.h>

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>

// Lanes of q per block, rounded up to whole vectors of 16.
#define QMAX (BN_NARROW_BLOCK * BN_NARROW_MAX_S)

int bn_narrow_suits(int64_t S) { return S >= 1 && S <= BN_NARROW_MAX_S && ply_cpu_level() >= PLY_CPU_AVX512; }

static __mmask16 lanes16(int64_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

// ---- the per-channel kernels (planes of any size), batchnorm_channels.c's AVX-512 path
// dy where the fused relu's output y > 0 (NaN: 0), else dy; masked lanes are 0
PLY_TARGET_AVX512 static inline __m512 masked_dy(const float *dy, const float *y, int64_t s, __mmask16 m) {
    __m512 g = _mm512_maskz_loadu_ps(m, dy + s);
    if (y) g = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(m, y + s), _mm512_setzero_ps(), _CMP_GT_OQ), g);
    return g;
}

// One step of the gradient sums at element `at`, lanes k: g = dy (masked by the relu), xhat = (x - vm) * vi
// in float; a += g, b += g * xhat in double (the low 8 lanes in a0/b0, the high 8 in a1/b1).
PLY_TARGET_AVX512 static inline __attribute__((always_inline)) void grad_sums_step(
    const float *x, const float *dy, const float *y, int64_t at, __mmask16 k, __m512 vm, __m512 vi, __m512d *a0,
    __m512d *a1, __m512d *b0, __m512d *b1) {
    __m512 g = masked_dy(dy, y, at, k);
    __m512 xh = _mm512_maskz_mul_ps(k, _mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + at), vm), vi);
    __m512d g0 = _mm512_cvtps_pd(_mm512_castps512_ps256(g));
    __m512d g1 = _mm512_cvtps_pd(_mm512_extractf32x8_ps(g, 1));
    *a0 = _mm512_add_pd(*a0, g0);
    *a1 = _mm512_add_pd(*a1, g1);
    *b0 = _mm512_fmadd_pd(g0, _mm512_cvtps_pd(_mm512_castps512_ps256(xh)), *b0);
    *b1 = _mm512_fmadd_pd(g1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(xh, 1)), *b1);
}

// batchnorm_channels.c's channel_grad_sums_plain, 16 elements a step: the same per-element double accumulation (the
// plain loop's relu test kept GCC from vectorising it: 7% of a ResNet training step in scalar code).
PLY_TARGET_AVX512 void bn_channel_grad_sums512(double *sum_dy, double *sum_dy_xhat, const float *x, const float *dy,
                                                   const float *y, float mean, float invstd, int64_t c, int64_t N, int64_t C,
                                                   int64_t S) {
    __m512d a0 = _mm512_setzero_pd(), a1 = a0, b0 = a0, b1 = a0;
    const __m512 vm = _mm512_set1_ps(mean), vi = _mm512_set1_ps(invstd);
    for (int64_t n = 0; n < N; n++) {
        const float *xc = x + (n * C + c) * S, *dyc = dy + (n * C + c) * S, *yc = y ? y + (n * C + c) * S : NULL;
        for (int64_t s = 0; s < S; s += 16) {
            __mmask16 m = lanes16(S - s);
            grad_sums_step(xc, dyc, yc, s, m, vm, vi, &a0, &a1, &b0, &b1);
        }
    }
    *sum_dy = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
    *sum_dy_xhat = _mm512_reduce_add_pd(_mm512_add_pd(b0, b1));
}

// batchnorm_channels.c's channel_backward_input_plain, 16 elements a step (the same float arithmetic)
PLY_TARGET_AVX512 void bn_channel_backward_input512(float *dx, const float *x, const float *dy, const float *y, float mean,
                                                        float invstd, float w, double sum_dy, double sum_dy_xhat,
                                                        int batch_stats, double count, int64_t c, int64_t N, int64_t C,
                                                        int64_t S) {
    const float k = w * invstd;
    const float mdy = batch_stats ? (float)(sum_dy / count) : 0.0f;
    const float mdyx = batch_stats ? (float)(sum_dy_xhat / count) : 0.0f;
    const __m512 vm = _mm512_set1_ps(mean), vi = _mm512_set1_ps(invstd), vk = _mm512_set1_ps(k);
    const __m512 vmdy = _mm512_set1_ps(mdy), vmdyx = _mm512_set1_ps(mdyx);
    for (int64_t n = 0; n < N; n++) {
        const float *xc = x + (n * C + c) * S, *dyc = dy + (n * C + c) * S, *yc = y ? y + (n * C + c) * S : NULL;
        float *dxc = dx + (n * C + c) * S;
        for (int64_t s = 0; s < S; s += 16) {
            __mmask16 m = lanes16(S - s);
            __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, xc + s), vm), vi);
            __m512 t = _mm512_sub_ps(_mm512_sub_ps(masked_dy(dyc, yc, s, m), vmdy), _mm512_mul_ps(xh, vmdyx));
            _mm512_mask_storeu_ps(dxc + s, m, _mm512_mul_ps(vk, t));
        }
    }
}

// ---- the narrow kernels

// The channel's 8 double lanes as batchnorm_channels.c's lanes_total adds them: t = 0, then lane 0 .. 7 in turn.
static double lanes_in_order(const double *acc, int64_t S) {
    double t = 0.0;
    for (int64_t l = 0; l < 8; l++) t += l < S ? acc[l] : 0.0;
    return t;
}

// The channel's lanes as channel_grad_sums512 adds them: _mm512_reduce_add_pd(a0 + a1), a1 zero for S <= 8.
PLY_TARGET_AVX512 static double lanes_reduced(const double *acc, int64_t S) {
    __m512d a0 = _mm512_maskz_loadu_pd((__mmask8)((1u << S) - 1), acc);
    return _mm512_reduce_add_pd(_mm512_add_pd(a0, _mm512_setzero_pd()));
}

// Per-channel values of the block spread over its lanes: out[q] = v[c - c0] for q = (c - c0)*S + s.
static void spread(float *out, const float *v, int64_t channels, int64_t S) {
    for (int64_t c = 0; c < channels; c++)
        for (int64_t s = 0; s < S; s++) out[c * S + s] = v[c];
}

// x_n[q0 .. q0+16) as two double vectors (masked lanes 0).
PLY_TARGET_AVX512 static inline void load_pd2(const float *p, __mmask16 m, __m512d *lo, __m512d *hi) {
    __m512 v = _mm512_maskz_loadu_ps(m, p);
    *lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    *hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1));
}

PLY_TARGET_AVX512 void bn_narrow_stats(double *mean, double *var, const float *x, int64_t c0, int64_t c1, int64_t N,
                                       int64_t C, int64_t S) {
    const int64_t Q = (c1 - c0) * S, ld = C * S;
    const float *xb = x + c0 * S;
    const double count = (double)(N * S);
    double acc[QMAX], m[QMAX];
    for (int64_t q0 = 0; q0 < Q; q0 += 16) {
        const __mmask16 k = lanes16(Q - q0);
        __m512d lo = _mm512_setzero_pd(), hi = lo, a, b;
        for (int64_t n = 0; n < N; n++) {
            load_pd2(xb + n * ld + q0, k, &a, &b);
            lo = _mm512_add_pd(lo, a);
            hi = _mm512_add_pd(hi, b);
        }
        _mm512_storeu_pd(acc + q0, lo);
        _mm512_storeu_pd(acc + q0 + 8, hi);
    }
    for (int64_t c = 0; c < c1 - c0; c++) {
        mean[c] = lanes_in_order(acc + c * S, S) / count;
        for (int64_t s = 0; s < S; s++) m[c * S + s] = mean[c];
    }
    for (int64_t q0 = 0; q0 < Q; q0 += 16) {
        const __mmask16 k = lanes16(Q - q0);
        // lanes past Q: mean 0 (their x is 0, their squares unused)
        const __m512d mlo = _mm512_maskz_loadu_pd((__mmask8)k, m + q0);
        const __m512d mhi = _mm512_maskz_loadu_pd((__mmask8)(k >> 8), m + q0 + 8);
        __m512d lo = _mm512_setzero_pd(), hi = lo, a, b;
        for (int64_t n = 0; n < N; n++) {
            load_pd2(xb + n * ld + q0, k, &a, &b);
            a = _mm512_sub_pd(a, mlo);
            b = _mm512_sub_pd(b, mhi);
            lo = _mm512_fmadd_pd(a, a, lo); // channel_stats' AVX2 copy: sq += d*d as one fused multiply-add
            hi = _mm512_fmadd_pd(b, b, hi);
        }
        _mm512_storeu_pd(acc + q0, lo);
        _mm512_storeu_pd(acc + q0 + 8, hi);
    }
    for (int64_t c = 0; c < c1 - c0; c++) var[c] = lanes_in_order(acc + c * S, S) / count;
}

PLY_TARGET_AVX512 void bn_narrow_normalize(float *y, const float *x, const float *mean, const float *invstd,
                                           const float *w, const float *b, int relu, int64_t c0, int64_t c1,
                                           int64_t N, int64_t C, int64_t S) {
    const int64_t Q = (c1 - c0) * S;
    float scale[BN_NARROW_BLOCK], shift[BN_NARROW_BLOCK], sq[QMAX], hq[QMAX];
    for (int64_t c = c0; c < c1; c++) {
        // as channel_normalize_body
        float wc = w ? w[c] : 1.0f, bc = b ? b[c] : 0.0f, ic = invstd[c], mc = mean[c];
        scale[c - c0] = ic * wc;
        shift[c - c0] = bc - mc * ic * wc;
    }
    spread(sq, scale, c1 - c0, S);
    spread(hq, shift, c1 - c0, S);
    for (int64_t q0 = 0; q0 < Q; q0 += 16) {
        const __mmask16 k = lanes16(Q - q0);
        const __m512 vs = _mm512_maskz_loadu_ps(k, sq + q0), vh = _mm512_maskz_loadu_ps(k, hq + q0);
        for (int64_t n = 0; n < N; n++) {
            const int64_t at = (n * C + c0) * S + q0;
            __m512 v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, x + at), vs, vh);
            // relu: v where v > 0 or NaN (not v <= 0), else +0
            if (relu) v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NLE_UQ), v);
            _mm512_mask_storeu_ps(y + at, k, v);
        }
    }
}

PLY_TARGET_AVX512 void bn_narrow_grad_sums(double *sum_dy, double *sum_dy_xhat, const float *x, const float *dy,
                                           const float *y, const float *mean, const float *invstd, int64_t c0,
                                           int64_t c1, int64_t N, int64_t C, int64_t S) {
    const int64_t Q = (c1 - c0) * S;
    float mq[QMAX], iq[QMAX];
    double a[QMAX], bsum[QMAX];
    spread(mq, mean + c0, c1 - c0, S);
    spread(iq, invstd + c0, c1 - c0, S);
    for (int64_t q0 = 0; q0 < Q; q0 += 16) {
        const __mmask16 k = lanes16(Q - q0);
        const __m512 vm = _mm512_maskz_loadu_ps(k, mq + q0), vi = _mm512_maskz_loadu_ps(k, iq + q0);
        __m512d a0 = _mm512_setzero_pd(), a1 = a0, b0 = a0, b1 = a0;
        for (int64_t n = 0; n < N; n++) {
            const int64_t at = (n * C + c0) * S + q0;
            grad_sums_step(x, dy, y, at, k, vm, vi, &a0, &a1, &b0, &b1);
        }
        _mm512_storeu_pd(a + q0, a0);
        _mm512_storeu_pd(a + q0 + 8, a1);
        _mm512_storeu_pd(bsum + q0, b0);
        _mm512_storeu_pd(bsum + q0 + 8, b1);
    }
    for (int64_t c = 0; c < c1 - c0; c++) {
        sum_dy[c] = lanes_reduced(a + c * S, S);
        sum_dy_xhat[c] = lanes_reduced(bsum + c * S, S);
    }
}

PLY_TARGET_AVX512 void bn_narrow_backward_input(float *dx, const float *x, const float *dy, const float *y,
                                                const float *mean, const float *invstd, const float *w,
                                                const double *sum_dy, const double *sum_dy_xhat, int batch_stats,
                                                double count, int64_t c0, int64_t c1, int64_t N, int64_t C,
                                                int64_t S) {
    const int64_t Q = (c1 - c0) * S;
    float kc[BN_NARROW_BLOCK], mdy[BN_NARROW_BLOCK], mdyx[BN_NARROW_BLOCK];
    float kq[QMAX], dq[QMAX], xq[QMAX], mq[QMAX], iq[QMAX];
    for (int64_t c = c0; c < c1; c++) {
        // as channel_backward_input512
        kc[c - c0] = (w ? w[c] : 1.0f) * invstd[c];
        mdy[c - c0] = batch_stats ? (float)(sum_dy[c - c0] / count) : 0.0f;
        mdyx[c - c0] = batch_stats ? (float)(sum_dy_xhat[c - c0] / count) : 0.0f;
    }
    spread(kq, kc, c1 - c0, S);
    spread(dq, mdy, c1 - c0, S);
    spread(xq, mdyx, c1 - c0, S);
    spread(mq, mean + c0, c1 - c0, S);
    spread(iq, invstd + c0, c1 - c0, S);
    for (int64_t q0 = 0; q0 < Q; q0 += 16) {
        const __mmask16 k = lanes16(Q - q0);
        const __m512 vk = _mm512_maskz_loadu_ps(k, kq + q0), vmdy = _mm512_maskz_loadu_ps(k, dq + q0);
        const __m512 vmdyx = _mm512_maskz_loadu_ps(k, xq + q0), vm = _mm512_maskz_loadu_ps(k, mq + q0);
        const __m512 vi = _mm512_maskz_loadu_ps(k, iq + q0);
        for (int64_t n = 0; n < N; n++) {
            const int64_t at = (n * C + c0) * S + q0;
            __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + at), vm), vi);
            __m512 t = _mm512_sub_ps(_mm512_sub_ps(masked_dy(dy, y, at, k), vmdy), _mm512_mul_ps(xh, vmdyx));
            _mm512_mask_storeu_ps(dx + at, k, _mm512_mul_ps(vk, t));
        }
    }
}

#else
int bn_narrow_suits(int64_t S) { (void)S; return 0; }
void bn_narrow_stats(double *mean, double *var, const float *x, int64_t c0, int64_t c1, int64_t N, int64_t C,
                     int64_t S) { (void)mean; (void)var; (void)x; (void)c0; (void)c1; (void)N; (void)C; (void)S; }
void bn_narrow_normalize(float *y, const float *x, const float *mean, const float *invstd, const float *w,
                         const float *b, int relu, int64_t c0, int64_t c1, int64_t N, int64_t C, int64_t S) {
    (void)y; (void)x; (void)mean; (void)invstd; (void)w; (void)b; (void)relu; (void)c0; (void)c1; (void)N; (void)C;
    (void)S;
}
void bn_narrow_grad_sums(double *sum_dy, double *sum_dy_xhat, const float *x, const float *dy, const float *y,
                         const float *mean, const float *invstd, int64_t c0, int64_t c1, int64_t N, int64_t C,
                         int64_t S) {
    (void)sum_dy; (void)sum_dy_xhat; (void)x; (void)dy; (void)y; (void)mean; (void)invstd; (void)c0; (void)c1;
    (void)N; (void)C; (void)S;
}
void bn_narrow_backward_input(float *dx, const float *x, const float *dy, const float *y, const float *mean,
                              const float *invstd, const float *w, const double *sum_dy, const double *sum_dy_xhat,
                              int batch_stats, double count, int64_t c0, int64_t c1, int64_t N, int64_t C, int64_t S) {
    (void)dx; (void)x; (void)dy; (void)y; (void)mean; (void)invstd; (void)w; (void)sum_dy; (void)sum_dy_xhat;
    (void)batch_stats; (void)count; (void)c0; (void)c1; (void)N; (void)C; (void)S;
}
#endif
