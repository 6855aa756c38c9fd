/*
 * conv_direct.c's inner steps at the AVX2 level (see conv_direct_avx2.h). The index equations are
 * conv_direct.c's:
 *
 *   forward / input gradient:  out[o][q] = bias[o] + sum_{c < Cin} sum_{t < KK} w[o0*Cin*KK + (c*KK + t)*B + o - o0]
 *                                                                             * in[c*CS + q + offs[t]]
 *   (o in the packed block of B channels starting at o0, offs[t] = ki*rs + kj for t = ki*KW + kj)
 *
 *   weight gradient:  dwv[((o*Cin + c)*KK + t)*16 + 8h + l] += sum_{i < Q/16} g[o*GS + 16i + 8h + l]
 *                                                            * in(c, 16i + 8h + l + offs[t])
 *   (h in {0, 1}: the lower and upper 8-lane halves of each AVX-512 vector, l < 8)
 *
 * Each lane's sum runs in the AVX-512 kernels' order (bias or zero, then c, then t; over i in order for
 * the weight gradient), one FMA per term, so both levels give the same bits.
 */
#include "plugin_support.h"

#include "conv_direct_avx2.h"

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>

#include "conv_avx2.h"

#define INLINE static inline __attribute__((always_inline))

// The rows' last 1-7 floats: masked loads (nothing read past a row of the caller's tensors), and where
// the destination allows, full stores rather than masked ones, the lanes past the row zero (the masked
// loads' zeros). _mm256_maskstore_ps is slow on Zen 3: Benchmarks/conv_direct_kernel.c (as below, 3
// rounds alternating, the first on a busier machine), ms of conv_1 forward, backward, conv_2 forward,
// backward: masked stores 0.496-0.823, 0.647-0.960, 1.051-1.728, 2.467-3.629; full stores where
// allowed 0.396-0.438, 0.605-0.640, 0.906-1.126, 2.285-2.572.
//
// d[0..n) = s[0..n); with `full` the tail's vector is stored whole: d[n..8*ceil(n/8)) = 0.
PLY_TARGET_AVX2 INLINE void copy_row(float *d, const float *s, int64_t n, int full) {
    int64_t w = 0;
    for (; w + 8 <= n; w += 8) _mm256_storeu_ps(d + w, _mm256_loadu_ps(s + w));
    if (w < n) {
        __m256i m = conv_lanes8(n - w);
        __m256 v = _mm256_maskload_ps(s + w, m);
        if (full) _mm256_storeu_ps(d + w, v);
        else _mm256_maskstore_ps(d + w, m, v);
    }
}

// d[0..n) = y[i] > 0 ? s[i] : 0 (a fused relu's derivative: y is the relu's output); the tail stored
// whole, d[n..8*ceil(n/8)) = 0 (y's masked lanes are 0, not positive).
PLY_TARGET_AVX2 INLINE void copy_row_where_positive(float *d, const float *s, const float *y, int64_t n) {
    const __m256 zero = _mm256_setzero_ps();
    int64_t w = 0;
    for (; w + 8 <= n; w += 8) {
        __m256 pos = _mm256_cmp_ps(_mm256_loadu_ps(y + w), zero, _CMP_GT_OQ);
        _mm256_storeu_ps(d + w, _mm256_and_ps(pos, _mm256_loadu_ps(s + w)));
    }
    if (w < n) {
        __m256i m = conv_lanes8(n - w);
        __m256 pos = _mm256_cmp_ps(_mm256_maskload_ps(y + w, m), zero, _CMP_GT_OQ);
        _mm256_storeu_ps(d + w, _mm256_and_ps(pos, _mm256_maskload_ps(s + w, m)));
    }
}

// Into conv_direct.c's padded planes every tail is stored whole: the up to 7 zeros past a row land in
// its right padding (zero), the next row's left padding (zero) and data (written after, rows and
// channels in order), or past the last row in the bottom padding and the gap to the channel stride
// (zero). They stay inside the channel's slot: make_layout's xpad stride CSx >= Hp*Wp + KW + 16 and
// dypad's CSd >= Hd*Wd + KW + 16 (Qf + (KH-1)*Wp >= Hp*Wp, the same for d); dyw's stride Qf >= OH*Wp
// may be passed by up to 7 - (KW-1) floats, into the next channel's first row (written after) or,
// after the last, into dypad's start (zeroed by the call and rewritten per image after dyw).
PLY_TARGET_AVX2 void conv_direct_pad_planes_avx2(float *dst, int64_t CS, int64_t Wp, const float *src, const float *where, int64_t C,
                                 int64_t H, int64_t W, int64_t ph, int64_t pw) {
    for (int64_t c = 0; c < C; c++)
        for (int64_t h = 0; h < H; h++) {
            float *d = dst + c * CS + (h + ph) * Wp + pw;
            if (where) copy_row_where_positive(d, src + (c * H + h) * W, where + (c * H + h) * W, W);
            else copy_row(d, src + (c * H + h) * W, W, 1);
        }
}

// relu(v) = max(v, 0) with NaN passed through, as the built-in relu and conv_direct.c's AVX-512
// copy_row_relu: zero where v <= 0 (ordered: NaN compares false and stays), so -0 gives +0 too.
PLY_TARGET_AVX2 INLINE __m256 relu8(__m256 v) {
    return _mm256_andnot_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LE_OQ), v);
}

PLY_TARGET_AVX2 INLINE void copy_row_relu(float *d, const float *s, int64_t n, int full) {
    int64_t w = 0;
    for (; w + 8 <= n; w += 8) _mm256_storeu_ps(d + w, relu8(_mm256_loadu_ps(s + w)));
    if (w < n) {
        __m256i m = conv_lanes8(n - w);
        __m256 v = relu8(_mm256_maskload_ps(s + w, m));
        if (full) _mm256_storeu_ps(d + w, v);
        else _mm256_maskstore_ps(d + w, m, v);
    }
}

// The output planes [C][H][W] are the caller's (rows end to end): a row's tail stored whole spills
// zeros into the rows after it, written after, so a tail is stored whole only where its vector ends
// inside the call's C*H*W floats (what follows them may be another thread's, or another tensor).
PLY_TARGET_AVX2 void conv_direct_unpad_planes_avx2(float *dst, const float *src, int64_t Q, int64_t rs, int64_t C, int64_t H, int64_t W,
                                   int relu) {
    for (int64_t c = 0; c < C; c++)
        for (int64_t h = 0; h < H; h++) {
            // the tail's vector starts at W - W % 8 of the row and ends 8 floats on
            int full = (c * H + h) * W + W - W % 8 + 8 <= C * H * W;
            if (relu) copy_row_relu(dst + (c * H + h) * W, src + c * Q + h * rs, W, full);
            else copy_row(dst + (c * H + h) * W, src + c * Q + h * rs, W, full);
        }
}

// out[b*Q + q] for b < B, q in [q0, q1) (q1 - q0 a multiple of 8*NV) = bias[b] + sum_c sum_t
// w[(c*KK + t)*BS + b] * in[c*CS + q + offs[t]]: B channels of a packed block of BS, NV vectors of 8
// positions per step (B*NV accumulators).
PLY_TARGET_AVX2 INLINE void corr_tile(const int BS, const int B, const int NV, float *out, int64_t Q, int64_t q0,
                                      int64_t q1, const float *in, int64_t CS, int64_t Cin, const float *w,
                                      const float *bias, const int64_t *offs, int64_t KK) {
    for (int64_t q = q0; q < q1; q += 8 * NV) {
        __m256 acc[8][4];
        for (int b = 0; b < B; b++)
            for (int v = 0; v < NV; v++) acc[b][v] = bias ? _mm256_set1_ps(bias[b]) : _mm256_setzero_ps();
        for (int64_t c = 0; c < Cin; c++) {
            const float *xp = in + c * CS + q;
            const float *wp = w + c * KK * BS;
            for (int64_t t = 0; t < KK; t++) {
                const float *xt = xp + offs[t];
                __m256 xv[4];
                for (int v = 0; v < NV; v++) xv[v] = _mm256_loadu_ps(xt + 8 * v);
                for (int b = 0; b < B; b++) {
                    __m256 wb = _mm256_broadcast_ss(wp + t * BS + b);
                    for (int v = 0; v < NV; v++) acc[b][v] = _mm256_fmadd_ps(wb, xv[v], acc[b][v]);
                }
            }
        }
        for (int b = 0; b < B; b++)
            for (int v = 0; v < NV; v++) _mm256_store_ps(out + b * Q + q + 8 * v, acc[b][v]);
    }
}

// One packed block's tile of B channels at b0 (block stride BS) over all Q positions: NV vectors per step,
// then single vectors where 8*NV does not divide Q.
#define CORR(BS, B, NV)                                                                                          \
    PLY_TARGET_AVX2 static void corr_##BS##_##B##x##NV(float *out, int64_t Q, const float *in, int64_t CS,        \
                                                       int64_t Cin, const float *w, const float *bias,            \
                                                       const int64_t *offs, int64_t KK) {                        \
        int64_t qm = Q - Q % (8 * NV);                                                                           \
        corr_tile(BS, B, NV, out, Q, 0, qm, in, CS, Cin, w, bias, offs, KK);                                     \
        if (qm < Q) corr_tile(BS, B, 1, out, Q, qm, Q, in, CS, Cin, w, bias, offs, KK);                          \
    }

// Blocks of 8 channels as two tiles of 4 channels x 2 vectors (16 positions): 8 accumulators, per tap
// 2 input loads and 4 broadcasts for 8 FMAs (the FMAs' 4 cycles x 2 ports). Benchmarks/conv_direct_kernel.c
// (batch 128, 1 thread, thread CPU time, medians of 31 calls, Zen 3 at AVX2, shared machine, 2-3 runs
// each; ms of conv_1 forward, conv_2 forward):
//   8 x 1 vector:          0.547-0.558, 1.251-1.272 (9 loads per 8 FMAs)
//   4 x 2 vectors, twice:  0.442-0.530, 0.964-1.106
//   4 x 3 vectors, twice:  0.548-0.616, 1.755-1.948 (all 16 registers: clang's inner loop moves the
//                          accumulators around and reloads one from the stack)
//   6 x 2 then 2 x 4:      0.462-0.472, 0.988-1.025 (12 accumulators; no faster than 4 x 2)
CORR(8, 4, 2)
// The last blocks of 4, 2 and 1 channels (Q a multiple of 64 there)
CORR(4, 4, 2)
CORR(2, 2, 4)
CORR(1, 1, 4)

PLY_TARGET_AVX2 void conv_direct_correlate_avx2(float *out, int64_t Q, const float *in, int64_t CS, int64_t Cin, int64_t Cout,
                                const float *w, const float *bias, const int64_t *offs, int64_t KK) {
    int64_t wo = Cin * KK, o = 0; // w + o*wo: the block of output channels starting at o
    for (; o + 8 <= Cout; o += 8) {
        const float *bo = bias ? bias + o : NULL;
        corr_8_4x2(out + o * Q, Q, in, CS, Cin, w + o * wo, bo, offs, KK);
        corr_8_4x2(out + (o + 4) * Q, Q, in, CS, Cin, w + o * wo + 4, bo ? bo + 4 : NULL, offs, KK);
    }
    if (o + 4 <= Cout) { corr_4_4x2(out + o * Q, Q, in, CS, Cin, w + o * wo, bias ? bias + o : NULL, offs, KK); o += 4; }
    if (o + 2 <= Cout) { corr_2_2x4(out + o * Q, Q, in, CS, Cin, w + o * wo, bias ? bias + o : NULL, offs, KK); o += 2; }
    if (o < Cout) corr_1_1x4(out + o * Q, Q, in, CS, Cin, w + o * wo, bias ? bias + o : NULL, offs, KK);
}

// The lanes of half h of the 16-lane mask m, as _mm256_and_ps takes them (all ones where set).
PLY_TARGET_AVX2 INLINE __m256 half_mask(uint16_t m, int h) {
    const __m256i bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    __m256i v = _mm256_set1_epi32((int)(m >> (8 * h)) & 0xFF);
    return _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(v, bits), bits));
}

// dwv[((b*Cin)*KK + t0 + t)*16 + 8h + l] += sum_{i < Q/16} g[b*GS + 16i + 8h + l] * in(16i + 8h + l + offs[t0 + t])
// for B output channels, T taps from t0 and half h; in is read with full loads and zeroed by the mask: in
// bounds, since xpad's channel stride is at least Qf + (KH-1)*Wp + KW + 16 (make_layout) and the loads end
// before 16i + 16 + offs[t] <= Qf + (KH-1)*Wp + KW - 1.
PLY_TARGET_AVX2 INLINE void wgrad_tile(const int B, const int T, int h, float *dwv, int64_t Cin, int64_t KK,
                                       const float *g, int64_t GS, int64_t Q, const float *in, const int64_t *offs,
                                       int64_t t0, const uint16_t *masks) {
    __m256 acc[4][4];
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) acc[b][t] = _mm256_setzero_ps();
    const float *inh = in + 8 * h, *gh = g + 8 * h;
    for (int64_t i = 0; i < Q / 16; i++) {
        __m256 m = half_mask(masks[i], h), xv[4];
        for (int t = 0; t < T; t++) xv[t] = _mm256_and_ps(m, _mm256_loadu_ps(inh + 16 * i + offs[t0 + t]));
        for (int b = 0; b < B; b++) {
            __m256 gv = _mm256_loadu_ps(gh + b * GS + 16 * i);
            for (int t = 0; t < T; t++) acc[b][t] = _mm256_fmadd_ps(gv, xv[t], acc[b][t]);
        }
    }
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            float *d = dwv + ((b * Cin) * KK + t0 + t) * 16 + 8 * h;
            _mm256_store_ps(d, _mm256_add_ps(_mm256_load_ps(d), acc[b][t]));
        }
}

#define WGRAD_DEF(B, T)                                                                                             \
    PLY_TARGET_AVX2 static void wgrad_##B##_##T(float *dwv, int64_t Cin, int64_t KK, const float *g, int64_t GS,  \
                                                int64_t Q, const float *in, const int64_t *offs, int64_t t0,      \
                                                const uint16_t *masks) {                                          \
        for (int h = 0; h < 2; h++) wgrad_tile(B, T, h, dwv, Cin, KK, g, GS, Q, in, offs, t0, masks);            \
    }
// Tiles of WG_B output channels x WG_T taps per half: 9 accumulators, 3 masked input loads and a
// gradient load per output channel; the 3x3 kernels' 9 taps are 3 such tiles. Benchmarks/conv_direct_kernel.c
// (as above, forward 4 x 2; ms of conv_1 backward (weight and bias gradients), conv_2 backward (with the
// input gradient)):
//   4 x 3: 0.679-0.718, 2.711-2.865 (12 accumulators + 3 inputs + the mask: spills)
//   4 x 2: 0.565-0.705, 2.303-2.394
//   2 x 4: 0.615-0.637, 2.406-3.101
//   2 x 3: 0.542-0.560, 2.355-2.395
//   3 x 3: 0.574-0.587, 2.227-2.252
#define WG_B 3
#define WG_T 3
#define WGRAD(B, T) WGRAD_DEF(B, T)
#define WGRAD_NAME(B, T) wgrad_##B##_##T
#define WGRAD_FN(B, T) WGRAD_NAME(B, T)
WGRAD(WG_B, WG_T)
WGRAD(WG_B, 1)
WGRAD(1, WG_T)
WGRAD(1, 1)

PLY_TARGET_AVX2 void conv_direct_weight_grad_avx2(float *dwv, int64_t OC, int64_t Cin, int64_t KK, const float *g, int64_t GS,
                                  int64_t Q, const float *xpad, int64_t CS, const int64_t *offs, const uint16_t *masks) {
    for (int64_t c = 0; c < Cin; c++) {
        const float *in = xpad + c * CS;
        int64_t o = 0;
        for (; o + WG_B <= OC; o += WG_B) {
            float *d = dwv + (o * Cin + c) * KK * 16;
            int64_t t = 0;
            for (; t + WG_T <= KK; t += WG_T) WGRAD_FN(WG_B, WG_T)(d, Cin, KK, g + o * GS, GS, Q, in, offs, t, masks);
            for (; t < KK; t++) WGRAD_FN(WG_B, 1)(d, Cin, KK, g + o * GS, GS, Q, in, offs, t, masks);
        }
        for (; o < OC; o++) {
            float *d = dwv + (o * Cin + c) * KK * 16;
            int64_t t = 0;
            for (; t + WG_T <= KK; t += WG_T) WGRAD_FN(1, WG_T)(d, Cin, KK, g + o * GS, GS, Q, in, offs, t, masks);
            for (; t < KK; t++) wgrad_1_1(d, Cin, KK, g + o * GS, GS, Q, in, offs, t, masks);
        }
    }
}

// The AVX-512 kernel's two accumulators (a from dbv, b from zero, alternate 16-vectors; a + b at the end)
// as two halves each.
PLY_TARGET_AVX2 void conv_direct_bias_grad_avx2(float *dbv, int64_t OC, const float *g, int64_t GS, int64_t Q) {
    for (int64_t o = 0; o < OC; o++) {
        const float *go = g + o * GS;
        __m256 a0 = _mm256_load_ps(dbv + o * 16), a1 = _mm256_load_ps(dbv + o * 16 + 8);
        __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps();
        int64_t i = 0;
        for (; i + 32 <= Q; i += 32) {
            a0 = _mm256_add_ps(a0, _mm256_loadu_ps(go + i));
            a1 = _mm256_add_ps(a1, _mm256_loadu_ps(go + i + 8));
            b0 = _mm256_add_ps(b0, _mm256_loadu_ps(go + i + 16));
            b1 = _mm256_add_ps(b1, _mm256_loadu_ps(go + i + 24));
        }
        for (; i < Q; i += 16) {
            a0 = _mm256_add_ps(a0, _mm256_loadu_ps(go + i));
            a1 = _mm256_add_ps(a1, _mm256_loadu_ps(go + i + 8));
        }
        _mm256_store_ps(dbv + o * 16, _mm256_add_ps(a0, b0));
        _mm256_store_ps(dbv + o * 16 + 8, _mm256_add_ps(a1, b1));
    }
}

#else

void conv_direct_pad_planes_avx2(float *dst, int64_t CS, int64_t Wp, const float *src, const float *where, int64_t C,
                                 int64_t H, int64_t W, int64_t ph, int64_t pw) {
    (void)dst; (void)CS; (void)Wp; (void)src; (void)where; (void)C; (void)H; (void)W; (void)ph; (void)pw;
}
void conv_direct_unpad_planes_avx2(float *dst, const float *src, int64_t Q, int64_t rs, int64_t C, int64_t H, int64_t W,
                                   int relu) {
    (void)dst; (void)src; (void)Q; (void)rs; (void)C; (void)H; (void)W; (void)relu;
}
void conv_direct_correlate_avx2(float *out, int64_t Q, const float *in, int64_t CS, int64_t Cin, int64_t Cout,
                                const float *w, const float *bias, const int64_t *offs, int64_t KK) {
    (void)out; (void)Q; (void)in; (void)CS; (void)Cin; (void)Cout; (void)w; (void)bias; (void)offs; (void)KK;
}
void conv_direct_weight_grad_avx2(float *dwv, int64_t OC, int64_t Cin, int64_t KK, const float *g, int64_t GS,
                                  int64_t Q, const float *xpad, int64_t CS, const int64_t *offs, const uint16_t *masks) {
    (void)dwv; (void)OC; (void)Cin; (void)KK; (void)g; (void)GS; (void)Q; (void)xpad; (void)CS; (void)offs; (void)masks;
}
void conv_direct_bias_grad_avx2(float *dbv, int64_t OC, const float *g, int64_t GS, int64_t Q) {
    (void)dbv; (void)OC; (void)g; (void)GS; (void)Q;
}

#endif
