/*
 * Direct stride-1 convolution kernels (see conv_direct.h). AVX-512 here and AVX2 + FMA in
 * conv_direct_avx2.c, on the same scratch layout and packed weights, chosen by ply_cpu_level() (no
 * portable path: im2col + sgemm is it); the caller checks ply_cpu_level() >= PLY_CPU_AVX2.
 */
#include "plugin_support.h"

#include "conv_direct.h"
#include "conv_direct_avx2.h"

#include <string.h>

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>
#define INLINE static inline __attribute__((always_inline))
#endif

// Tap offsets are kept on the stack: at most this many taps.
#define MAX_TAPS 64

int conv_direct_fits(int64_t C, int64_t OC, int64_t KH, int64_t KW, int64_t PH, int64_t PW) {
    // Few channels: above this im2col + sgemm is as fast or faster.
    return C <= 16 && OC <= 64 && KH * KW <= MAX_TAPS && PH < KH && PW < KW;
}

// Layout of everything a chunk needs, in floats from the start of its scratch.
typedef struct {
    int64_t Wp, Hp, Qf, CSx;       // forward: padded row, rows, output span, input channel stride
    int64_t Wd, Hd, Qd, CSd;       // input gradient: same for the padded output gradient
    int shared;                    // the weight gradient can read the input gradient's padded copy
    size_t partials, xpad, out, dyw, dypad, masks, fwd_total, bwd_total;
} layout;

// Positions per step of correlate() for Cout output channels: 32 when every block is 8 wide, else 64.
static int64_t corr_span(int64_t Cout) { return Cout % 8 == 0 ? 32 : 64; }

static layout make_layout(const direct_geom *g) {
    layout l;
    l.Wp = g->W + 2 * g->PW;
    l.Hp = g->H + 2 * g->PH;
    l.Qf = ply_round_up_i64(g->OH * l.Wp, corr_span(g->OC));
    l.CSx = ply_round_up_i64(l.Qf + (g->KH - 1) * l.Wp + g->KW + 16, 16);
    if (l.CSx < ply_round_up_i64(l.Hp * l.Wp, 16)) l.CSx = ply_round_up_i64(l.Hp * l.Wp, 16);
    int64_t qh = g->KH - 1 - g->PH, qw = g->KW - 1 - g->PW;
    l.Wd = g->OW + 2 * qw;
    l.Hd = g->OH + 2 * qh;
    l.Qd = ply_round_up_i64(g->H * l.Wd, corr_span(g->C));
    l.CSd = ply_round_up_i64(l.Qd + (g->KH - 1) * l.Wd + g->KW + 16, 16);
    if (l.CSd < ply_round_up_i64(l.Hd * l.Wd, 16)) l.CSd = ply_round_up_i64(l.Hd * l.Wd, 16);
    // "same" padding (KH - 1 = 2 PH, KW - 1 = 2 PW): the padded output gradient has the forward's
    // row length and rows, so its copy read at offset qh*Wd + qw is the weight gradient's g with
    // zeros at every position that is not an output (halo columns, rows below, the gaps between images)
    l.shared = l.Wd == l.Wp && l.Hd == l.Hp;
    int64_t KK = g->KH * g->KW;
    size_t partials = (size_t)(g->OC * g->C * KK + g->OC) * 16;
    size_t xpad = (size_t)(g->C * l.CSx);
    size_t outf = (size_t)(g->OC * l.Qf), outd = (size_t)(g->C * l.Qd);
    size_t out = outf > outd ? outf : outd;
    size_t dyw = (size_t)(g->OC * l.Qf);
    // g read at qh*Wd + qw + q for q < Qf: up to qh*Wd + qw past the last channel's plane
    size_t dypad = (size_t)(g->OC * l.CSd + ply_round_up_i64(l.Wd + g->KW + 16, 16) * (g->KH - 1 - g->PH + 1));
    size_t masks = (size_t)ply_round_up_i64(l.Qf / 16, 32) / 2; // uint16 per vector, in floats
    l.fwd_total = (size_t)(g->C * l.CSx) + outf;
    l.partials = 0;
    l.xpad = partials;
    l.out = l.xpad + xpad;
    l.dyw = l.out + out;
    l.dypad = l.dyw + dyw;
    l.masks = l.dypad + dypad;
    l.bwd_total = l.masks + masks;
    return l;
}

size_t conv_direct_forward_floats(const direct_geom *g) { return make_layout(g).fwd_total; }
size_t conv_direct_backward_floats(const direct_geom *g) { return make_layout(g).bwd_total; }
size_t conv_direct_partials(const direct_geom *g) { return (size_t)(g->OC * g->C * g->KH * g->KW + g->OC) * 16; }

// The output-channel blocks of correlate(): 8s, then one each of 4, 2, 1 as needed.
static int64_t block_size(int64_t o, int64_t Cout) {
    int64_t left = Cout - o;
    return left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
}

// dst: per block of B output channels starting at o0, [c][t][b] at dst + o0*Cin*KK;
// src(o, c, t) = w[(o*Cin + c)*KK + t], or the flipped transpose when flip.
static void pack(float *dst, const float *w, int64_t Cout, int64_t Cin, int64_t KK, int flip) {
    for (int64_t o0 = 0; o0 < Cout; o0 += block_size(o0, Cout)) {
        int64_t B = block_size(o0, Cout);
        for (int64_t b = 0; b < B; b++)
            for (int64_t c = 0; c < Cin; c++)
                for (int64_t t = 0; t < KK; t++) {
                    int64_t o = o0 + b;
                    // flip: the correlation's output o is the layer's input channel, c its output channel
                    float v = flip ? w[(c * Cout + o) * KK + (KK - 1 - t)] : w[(o * Cin + c) * KK + t];
                    dst[o0 * Cin * KK + (c * KK + t) * B + b] = v;
                }
    }
}

void conv_direct_pack(const direct_geom *g, const float *w, float *packed) { pack(packed, w, g->OC, g->C, g->KH * g->KW, 0); }
void conv_direct_flip(const direct_geom *g, const float *w, float *packed) { pack(packed, w, g->C, g->OC, g->KH * g->KW, 1); }

#if PLY_HAVE_X86_TARGETS

// d[0..n) = s[0..n)
PLY_TARGET_AVX512 INLINE void copy_row(float *d, const float *s, int64_t n) {
    int64_t w = 0;
    for (; w + 16 <= n; w += 16) _mm512_storeu_ps(d + w, _mm512_loadu_ps(s + w));
    if (w < n) {
        __mmask16 m = (__mmask16)((1u << (n - w)) - 1);
        _mm512_mask_storeu_ps(d + w, m, _mm512_maskz_loadu_ps(m, s + w));
    }
}

// d[0..n) = y[i] > 0 ? s[i] : 0 (a fused relu's derivative: y is the relu's output)
PLY_TARGET_AVX512 INLINE void copy_row_where_positive(float *d, const float *s, const float *y, int64_t n) {
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t w = 0; w < n; w += 16) {
        __mmask16 m = n - w >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - w)) - 1);
        __mmask16 pos = _mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, y + w), zero, _CMP_GT_OQ);
        _mm512_mask_storeu_ps(d + w, m, _mm512_maskz_loadu_ps(pos, s + w));
    }
}

// Copy planes [C][H][W] into zeroed padded planes (channel stride CS, row Wp) at (ph, pw); with
// `where` (the output of a fused relu), only the elements where it is positive, zeros elsewhere.
PLY_TARGET_AVX512 static void pad_planes(float *dst, int64_t CS, int64_t Wp, const float *src, const float *where, int64_t C,
                                         int64_t H, int64_t W, int64_t ph, int64_t pw) {
    for (int64_t c = 0; c < C; c++)
        for (int64_t h = 0; h < H; h++) {
            float *d = dst + c * CS + (h + ph) * Wp + pw;
            if (where) copy_row_where_positive(d, src + (c * H + h) * W, where + (c * H + h) * W, W);
            else copy_row(d, src + (c * H + h) * W, W);
        }
}

// d[0..n) = relu(s[0..n)): max(v, 0) with NaN passed through, as the built-in relu
PLY_TARGET_AVX512 INLINE void copy_row_relu(float *d, const float *s, int64_t n) {
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t w = 0; w < n; w += 16) {
        __mmask16 m = n - w >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - w)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, s + w);
        __mmask16 neg = _mm512_cmp_ps_mask(v, zero, _CMP_NGT_UQ) & ~_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        _mm512_mask_storeu_ps(d + w, m, _mm512_mask_mov_ps(v, neg, zero));
    }
}

// dst[c][h][w] = src[c*Q + h*rs + w], or its relu
PLY_TARGET_AVX512 static void unpad_planes(float *dst, const float *src, int64_t Q, int64_t rs, int64_t C, int64_t H, int64_t W,
                                           int relu) {
    for (int64_t c = 0; c < C; c++)
        for (int64_t h = 0; h < H; h++) {
            if (relu) copy_row_relu(dst + (c * H + h) * W, src + c * Q + h * rs, W);
            else copy_row(dst + (c * H + h) * W, src + c * Q + h * rs, W);
        }
}

// out[o][q] (q in [0, Q), o in [0, B)) = bias[o] + sum_c sum_t w[(c*KK + t)*B + o] * in[c*CS + q + offs[t]]
// B output channels, NV vectors of 16 positions per step; Q - q0 is a multiple of 16*NV.
PLY_TARGET_AVX512 INLINE void corr_block(const int B, const int NV, float *out, int64_t Q, const float *in, int64_t CS, int64_t Cin,
                                  const float *w, int64_t wo, const float *bias, const int64_t *offs, int64_t KK) {
    for (int64_t q = 0; q < Q; q += 16 * NV) {
        __m512 acc[16][4];
        for (int b = 0; b < B; b++)
            for (int v = 0; v < NV; v++) acc[b][v] = bias ? _mm512_set1_ps(bias[b]) : _mm512_setzero_ps();
        for (int64_t c = 0; c < Cin; c++) {
            const float *xp = in + c * CS + q;
            const float *wp = w + c * KK * B;
            for (int64_t t = 0; t < KK; t++) {
                const float *xt = xp + offs[t];
                __m512 xv[4];
                for (int v = 0; v < NV; v++) xv[v] = _mm512_loadu_ps(xt + 16 * v);
                for (int b = 0; b < B; b++) {
                    __m512 wb = _mm512_set1_ps(wp[t * B + b]);
                    for (int v = 0; v < NV; v++) acc[b][v] = _mm512_fmadd_ps(wb, xv[v], acc[b][v]);
                }
            }
        }
        for (int b = 0; b < B; b++)
            for (int v = 0; v < NV; v++) _mm512_store_ps(out + b * Q + q + 16 * v, acc[b][v]);
    }
}

#define CORR(B, NV) \
    PLY_TARGET_AVX512 static void corr_##B(float *out, int64_t Q, const float *in, int64_t CS, int64_t Cin, const float *w, \
                                           int64_t wo, const float *bias, const int64_t *offs, int64_t KK) { \
        corr_block(B, NV, out, Q, in, CS, Cin, w, wo, bias, offs, KK); \
    }
CORR(8, 2)
CORR(4, 4)
CORR(2, 4)
CORR(1, 4)

// All Cout output planes (span Q, a multiple of corr_span(Cout)) of the correlation; w packed by pack().
// Blocks of 8 channels x 32 positions: 16 accumulators, and per tap 2 input loads and 8 weight
// broadcasts for 16 FMAs. Blocks of 16 x 16 positions (17 loads for 16 FMAs) made the ConvNet's
// conv_2 forward load-bound. With the output span rounded to 32 rather than 64 positions (224 rather
// than 256 for 14 rows of 16), Benchmarks/conv_direct_kernel.c (batch 128, 1 thread, thread CPU time,
// medians; loaded machine, alternating): conv_2 forward 0.576-0.580 -> 0.520-0.529 ms.
static void correlate(float *out, int64_t Q, const float *in, int64_t CS, int64_t Cin, int64_t Cout, const float *w,
                      const float *bias, const int64_t *offs, int64_t KK) {
    int64_t wo = Cin * KK, o = 0; // w + o*wo: the block of output channels starting at o
    for (; o + 8 <= Cout; o += 8) corr_8(out + o * Q, Q, in, CS, Cin, w + o * wo, wo, bias ? bias + o : NULL, offs, KK);
    if (o + 4 <= Cout) { corr_4(out + o * Q, Q, in, CS, Cin, w + o * wo, wo, bias ? bias + o : NULL, offs, KK); o += 4; }
    if (o + 2 <= Cout) { corr_2(out + o * Q, Q, in, CS, Cin, w + o * wo, wo, bias ? bias + o : NULL, offs, KK); o += 2; }
    if (o < Cout) corr_1(out + o * Q, Q, in, CS, Cin, w + o * wo, wo, bias ? bias + o : NULL, offs, KK);
}

// dwv[(o*Cin + c)*KK + t][lane] += sum over vectors i < Q/16 of g[o*GS + 16i + lane] * in[c*CS + 16i + offs[t] + lane]
// (in masked by masks[i]: zero where 16i + lane is not an output position; g is zero there) for B output
// channels and T taps starting at t0.
PLY_TARGET_AVX512 INLINE void wgrad_block(const int B, const int T, float *dwv, int64_t Cin, int64_t KK, const float *g, int64_t GS,
                                          int64_t Q, const float *in, const int64_t *offs, int64_t t0, const uint16_t *masks) {
    __m512 acc[4][4];
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) acc[b][t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < Q / 16; i++) {
        __mmask16 m = masks[i];
        __m512 xv[4], gv[4];
        for (int t = 0; t < T; t++) xv[t] = _mm512_maskz_loadu_ps(m, in + 16 * i + offs[t0 + t]);
        for (int b = 0; b < B; b++) gv[b] = _mm512_loadu_ps(g + b * GS + 16 * i);
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) acc[b][t] = _mm512_fmadd_ps(gv[b], xv[t], acc[b][t]);
    }
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            float *d = dwv + ((b * Cin) * KK + t0 + t) * 16;
            _mm512_store_ps(d, _mm512_add_ps(_mm512_load_ps(d), acc[b][t]));
        }
}

#define WGRAD(B, T) \
    PLY_TARGET_AVX512 static void wgrad_##B##_##T(float *dwv, int64_t Cin, int64_t KK, const float *g, int64_t GS, int64_t Q, \
                                                  const float *in, const int64_t *offs, int64_t t0, const uint16_t *masks) { \
        wgrad_block(B, T, dwv, Cin, KK, g, GS, Q, in, offs, t0, masks); \
    }
WGRAD(4, 4)
WGRAD(4, 1)
WGRAD(1, 4)
WGRAD(1, 1)

// Weight-gradient partials of one image over Q positions: g [OC][GS] output gradient in the padded-row
// layout, zero at positions that are not outputs; xpad [Cin][CS].
static void weight_grad(float *dwv, int64_t OC, int64_t Cin, int64_t KK, const float *g, int64_t GS, int64_t Q,
                        const float *xpad, int64_t CS, const int64_t *offs, const uint16_t *masks) {
    for (int64_t c = 0; c < Cin; c++) {
        const float *in = xpad + c * CS;
        int64_t o = 0;
        for (; o + 4 <= OC; o += 4) {
            float *d = dwv + (o * Cin + c) * KK * 16;
            int64_t t = 0;
            for (; t + 4 <= KK; t += 4) wgrad_4_4(d, Cin, KK, g + o * GS, GS, Q, in, offs, t, masks);
            for (; t < KK; t++) wgrad_4_1(d, Cin, KK, g + o * GS, GS, Q, in, offs, t, masks);
        }
        for (; o < OC; o++) {
            float *d = dwv + (o * Cin + c) * KK * 16;
            int64_t t = 0;
            for (; t + 4 <= KK; t += 4) wgrad_1_4(d, Cin, KK, g + o * GS, GS, Q, in, offs, t, masks);
            for (; t < KK; t++) wgrad_1_1(d, Cin, KK, g + o * GS, GS, Q, in, offs, t, masks);
        }
    }
}

// dbv[o][lane] += sum over i < Q (a multiple of 16) with i % 16 = lane of g[o*GS + i]
PLY_TARGET_AVX512 static void bias_grad(float *dbv, int64_t OC, const float *g, int64_t GS, int64_t Q) {
    for (int64_t o = 0; o < OC; o++) {
        __m512 a = _mm512_load_ps(dbv + o * 16), b = _mm512_setzero_ps();
        int64_t i = 0;
        for (; i + 32 <= Q; i += 32) {
            a = _mm512_add_ps(a, _mm512_loadu_ps(g + o * GS + i));
            b = _mm512_add_ps(b, _mm512_loadu_ps(g + o * GS + i + 16));
        }
        for (; i < Q; i += 16) a = _mm512_add_ps(a, _mm512_loadu_ps(g + o * GS + i));
        _mm512_store_ps(dbv + o * 16, _mm512_add_ps(a, b));
    }
}

// The inner steps of one CPU level: this file's AVX-512 ones or conv_direct_avx2.c's (the same sums in
// the same order on the same layouts, so the same bits).
typedef struct {
    void (*pad_planes)(float *dst, int64_t CS, int64_t Wp, const float *src, const float *where, int64_t C, int64_t H,
                       int64_t W, int64_t ph, int64_t pw);
    void (*unpad_planes)(float *dst, const float *src, int64_t Q, int64_t rs, int64_t C, int64_t H, int64_t W, int relu);
    void (*correlate)(float *out, int64_t Q, const float *in, int64_t CS, int64_t Cin, int64_t Cout, const float *w,
                      const float *bias, const int64_t *offs, int64_t KK);
    void (*weight_grad)(float *dwv, int64_t OC, int64_t Cin, int64_t KK, const float *g, int64_t GS, int64_t Q,
                        const float *xpad, int64_t CS, const int64_t *offs, const uint16_t *masks);
    void (*bias_grad)(float *dbv, int64_t OC, const float *g, int64_t GS, int64_t Q);
} steps;

static steps level_steps(void) {
    if (ply_cpu_level() >= PLY_CPU_AVX512) return (steps){pad_planes, unpad_planes, correlate, weight_grad, bias_grad};
    return (steps){conv_direct_pad_planes_avx2, conv_direct_unpad_planes_avx2, conv_direct_correlate_avx2,
                   conv_direct_weight_grad_avx2, conv_direct_bias_grad_avx2};
}

static void tap_offsets(int64_t *offs, int64_t KH, int64_t KW, int64_t rs) {
    for (int64_t ki = 0; ki < KH; ki++)
        for (int64_t kj = 0; kj < KW; kj++) offs[ki * KW + kj] = ki * rs + kj;
}

void conv_direct_forward(const direct_geom *g, const float *w, const float *bias, int relu, const float *x, float *y,
                         int64_t n0, int64_t n1, float *scratch) {
    conv_direct_forward_channels(g, w, bias, relu, x, y, n0, n1, 0, g->OC, scratch);
}

// Output channels [o0, o1) only: the packed blocks from o0 on are the whole layer's (pack() sizes a block
// by the channels left, so with o1 - o0 a multiple of 8, or o1 = OC, correlate() on the range walks the
// same blocks), written to planes [o0, o1) of y; the span Qf is the whole layer's (a multiple of
// corr_span(OC), which serves any such range: 64 when OC % 8 != 0, and 8-blocks only otherwise).
void conv_direct_forward_channels(const direct_geom *g, const float *w, const float *bias, int relu, const float *x,
                                  float *y, int64_t n0, int64_t n1, int64_t o0, int64_t o1, float *scratch) {
    layout l = make_layout(g);
    steps ks = level_steps();
    float *xpad = scratch, *out = scratch + g->C * l.CSx;
    int64_t offs[MAX_TAPS], KK = g->KH * g->KW, P = g->OH * g->OW;
    tap_offsets(offs, g->KH, g->KW, l.Wp);
    memset(xpad, 0, (size_t)(g->C * l.CSx) * sizeof(float));
    for (int64_t n = n0; n < n1; n++) {
        ks.pad_planes(xpad, l.CSx, l.Wp, x + n * g->C * g->H * g->W, NULL, g->C, g->H, g->W, g->PH, g->PW);
        ks.correlate(out, l.Qf, xpad, l.CSx, g->C, o1 - o0, w + o0 * g->C * KK, bias ? bias + o0 : NULL, offs, KK);
        ks.unpad_planes(y + (n * g->OC + o0) * P, out, l.Qf, l.Wp, o1 - o0, g->OH, g->OW, relu);
    }
}

void conv_direct_backward(const direct_geom *g, const float *wflip, const float *x, const float *dy, const float *y,
                          float *dx, int64_t n0, int64_t n1, float *scratch, int with_bias) {
    layout l = make_layout(g);
    steps ks = level_steps();
    int64_t KK = g->KH * g->KW, qh = g->KH - 1 - g->PH, qw = g->KW - 1 - g->PW;
    float *dwv = scratch + l.partials, *dbv = dwv + g->OC * g->C * KK * 16;
    float *xpad = scratch + l.xpad, *out = scratch + l.out, *dyw = scratch + l.dyw, *dypad = scratch + l.dypad;
    uint16_t *masks = (uint16_t *)(scratch + l.masks);
    int64_t offs[MAX_TAPS], offd[MAX_TAPS];
    tap_offsets(offs, g->KH, g->KW, l.Wp);
    tap_offsets(offd, g->KH, g->KW, l.Wd);
    // With "same" padding and the input gradient wanted, the weight gradient's g is the padded output
    // gradient's copy read at qh*Wd + qw (make_layout): one masked copy of dy per image instead of two.
    // With the 32-position span (correlate), Benchmarks/conv_direct_kernel.c (batch 128, 1 thread,
    // thread CPU time, loaded machine, alternating): the ConvNet's conv_2 backward 1.52 -> 1.35-1.38 ms.
    // Blocks of 2 or 8 images side by side (partials flushed once per block; tried) were no faster:
    // the block's copies then stream from L2 once per tap block.
    int shared = l.shared && dx != NULL;
    const float *gsrc = shared ? dypad + qh * l.Wd + qw : dyw;
    int64_t gs = shared ? l.CSd : l.Qf;
    memset(dwv, 0, conv_direct_partials(g) * sizeof(float));
    memset(xpad, 0, (size_t)(g->C * l.CSx) * sizeof(float));
    if (!shared) memset(dyw, 0, (size_t)(g->OC * l.Qf) * sizeof(float));
    if (dx) memset(dypad, 0, (size_t)(l.masks - l.dypad) * sizeof(float));
    // lanes of valid output positions in the padded-row layout
    for (int64_t i = 0; i < l.Qf / 16; i++) {
        uint16_t m = 0;
        for (int64_t k = 0; k < 16; k++) {
            int64_t q = 16 * i + k;
            if (q < g->OH * l.Wp && q % l.Wp < g->OW) m |= (uint16_t)(1u << k);
        }
        masks[i] = m;
    }
    int64_t in_plane = g->C * g->H * g->W, out_plane = g->OC * g->OH * g->OW;
    for (int64_t n = n0; n < n1; n++) {
        const float *dyn = dy + n * out_plane;
        const float *yn = y ? y + n * out_plane : NULL;
        ks.pad_planes(xpad, l.CSx, l.Wp, x + n * in_plane, NULL, g->C, g->H, g->W, g->PH, g->PW);
        if (!shared) ks.pad_planes(dyw, l.Qf, l.Wp, dyn, yn, g->OC, g->OH, g->OW, 0, 0);
        if (dx) ks.pad_planes(dypad, l.CSd, l.Wd, dyn, yn, g->OC, g->OH, g->OW, qh, qw);
        ks.weight_grad(dwv, g->OC, g->C, KK, gsrc, gs, l.Qf, xpad, l.CSx, offs, masks);
        if (with_bias) ks.bias_grad(dbv, g->OC, gsrc, gs, l.Qf);
        if (dx) {
            ks.correlate(out, l.Qd, dypad, l.CSd, g->OC, g->C, wflip, NULL, offd, KK);
            ks.unpad_planes(dx + n * in_plane, out, l.Qd, l.Wd, g->C, g->H, g->W, 0);
        }
    }
}

#else

void conv_direct_forward(const direct_geom *g, const float *w, const float *bias, int relu, const float *x, float *y,
                         int64_t n0, int64_t n1, float *scratch) {
    (void)g; (void)w; (void)bias; (void)relu; (void)x; (void)y; (void)n0; (void)n1; (void)scratch;
}
void conv_direct_forward_channels(const direct_geom *g, const float *w, const float *bias, int relu, const float *x,
                                  float *y, int64_t n0, int64_t n1, int64_t o0, int64_t o1, float *scratch) {
    (void)g; (void)w; (void)bias; (void)relu; (void)x; (void)y; (void)n0; (void)n1; (void)o0; (void)o1; (void)scratch;
}
void conv_direct_backward(const direct_geom *g, const float *wflip, const float *x, const float *dy, const float *y,
                          float *dx, int64_t n0, int64_t n1, float *scratch, int with_bias) {
    (void)g; (void)wflip; (void)x; (void)dy; (void)y; (void)dx; (void)n0; (void)n1; (void)scratch; (void)with_bias;
}

#endif
