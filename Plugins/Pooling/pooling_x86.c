/*
 * The pooling kernels above the x86-64 baseline (declared in pooling.h): each compiled for
 * its level with PLY_TARGET_AVX2 or PLY_TARGET_AVX512 and called by pooling.c only when
 * ply_cpu_level() reaches that level; pooling.c has the portable path of every one. The AVX2
 * kernels are in pooling_avx2.c.
 */
#include "plugin_support.h"

#include "pooling.h"

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>
#include <math.h>
#include <string.h>

// ----------------------------------------------------------------------------
// AVX-512: the two 2x2 plane kernels with 16 outputs per step, the row's tail masked, so that
// narrow planes (14 -> 7) need no scalar loop; the row passes and whole-row kernels of
// maxpool2d_forward_plane_values and maxpool2d_forward_plane

// lanes where v replaces the running max m: v > m, or v is NaN
PLY_TARGET_AVX512 static inline __mmask16 wins16(__m512 v, __m512 m) {
    return _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
}

// o[i] = take_max(o[i], src[i]) for i < n, 16 at a time (the tail masked)
PLY_TARGET_AVX512 void max_row512(float *o, const float *src, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 m = _mm512_maskz_loadu_ps(k, o + i), v = _mm512_maskz_loadu_ps(k, src + i);
        _mm512_mask_storeu_ps(o + i, k & wins16(v, m), v);
    }
}

// o[i] = take_max(o[i], src[2*i]) for i < n, 16 at a time: the even lanes of 32 loaded
// (masked to the 2n - 1 floats read, so nothing past src[2n - 2] is touched)
PLY_TARGET_AVX512 void max_row512_stride2(float *o, const float *src, int64_t n) {
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    for (int64_t i = 0; i < n; i += 16) {
        int64_t m = n - i >= 16 ? 16 : n - i, k = 2 * m - 1;
        __mmask16 out = (__mmask16)(m >= 16 ? 0xFFFFu : (1u << m) - 1);
        __mmask16 lo = (__mmask16)(k >= 16 ? 0xFFFFu : (1u << k) - 1);
        __mmask16 hi = (__mmask16)(k <= 16 ? 0u : (1u << (k - 16)) - 1);
        const float *x = src + 2 * i;
        __m512 v = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(lo, x), ie, _mm512_maskz_loadu_ps(hi, x + 16));
        __m512 cur = _mm512_maskz_loadu_ps(out, o + i);
        _mm512_mask_storeu_ps(o + i, out & wins16(v, cur), v);
    }
}

// masks for n (1..16) outputs: the output lanes, and the 2n inputs as two vectors
PLY_TARGET_AVX512 static inline void row_masks(int64_t n, __mmask16 *out, __mmask16 *lo, __mmask16 *hi) {
    *out = (__mmask16)((1u << n) - 1);
    int64_t k = 2 * n;
    *lo = (__mmask16)(k >= 16 ? 0xFFFFu : (1u << k) - 1);
    *hi = (__mmask16)(k <= 16 ? 0u : (1u << (k - 16)) - 1);
}

// 2n consecutive floats at x -> even and odd elements
PLY_TARGET_AVX512 static inline void split16(const float *x, __mmask16 lo, __mmask16 hi, __m512 *even, __m512 *odd) {
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    __m512 a = _mm512_maskz_loadu_ps(lo, x), b = _mm512_maskz_loadu_ps(hi, x + 16);
    *even = _mm512_permutex2var_ps(a, ie, b);
    *odd = _mm512_permutex2var_ps(a, io, b);
}

PLY_TARGET_AVX512 void maxpool2x2_forward_plane512(float *out, const float *in, int64_t W, int64_t OH, int64_t OW) {
    for (int64_t oh = 0; oh < OH; oh++) {
        const float *r0 = in + 2 * oh * W, *r1 = r0 + W;
        for (int64_t ow = 0; ow < OW; ow += 16) {
            __mmask16 mo, lo, hi;
            row_masks(OW - ow < 16 ? OW - ow : 16, &mo, &lo, &hi);
            __m512 a, b, c, d;
            split16(r0 + 2 * ow, lo, hi, &a, &b);
            split16(r1 + 2 * ow, lo, hi, &c, &d);
            __m512 m = _mm512_mask_blend_ps(wins16(b, a), a, b);
            m = _mm512_mask_blend_ps(wins16(c, m), m, c);
            m = _mm512_mask_blend_ps(wins16(d, m), m, d);
            _mm512_mask_storeu_ps(out + oh * OW + ow, mo, m);
        }
    }
}

PLY_TARGET_AVX512 void maxpool2x2_backward_plane512(float *din, const float *in, const float *dout, int64_t H, int64_t W,
                                                    int64_t OH, int64_t OW) {
    if (H != 2 * OH || W != 2 * OW) memset(din, 0, (size_t)(H * W) * sizeof(float));
    const __m512i il = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i ih = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    for (int64_t oh = 0; oh < OH; oh++) {
        const float *r0 = in + 2 * oh * W, *r1 = r0 + W;
        float *d0 = din + 2 * oh * W, *d1 = d0 + W;
        for (int64_t ow = 0; ow < OW; ow += 16) {
            __mmask16 mo, lo, hi;
            row_masks(OW - ow < 16 ? OW - ow : 16, &mo, &lo, &hi);
            __m512 a, b, c, d;
            split16(r0 + 2 * ow, lo, hi, &a, &b);
            split16(r1 + 2 * ow, lo, hi, &c, &d);
            __mmask16 wb = wins16(b, a);
            __m512 m = _mm512_mask_blend_ps(wb, a, b);
            __mmask16 wc = wins16(c, m);
            m = _mm512_mask_blend_ps(wc, m, c);
            __mmask16 wd = wins16(d, m);
            wc = (__mmask16)(wc & ~wd); // a later winner takes it
            wb = (__mmask16)(wb & ~(wc | wd));
            __mmask16 wa = (__mmask16)~(wb | wc | wd);
            __m512 g = _mm512_maskz_loadu_ps(mo, dout + oh * OW + ow);
            __m512 ga = _mm512_maskz_mov_ps(wa, g), gb = _mm512_maskz_mov_ps(wb, g);
            __m512 gc = _mm512_maskz_mov_ps(wc, g), gd = _mm512_maskz_mov_ps(wd, g);
            _mm512_mask_storeu_ps(d0 + 2 * ow, lo, _mm512_permutex2var_ps(ga, il, gb));
            _mm512_mask_storeu_ps(d0 + 2 * ow + 16, hi, _mm512_permutex2var_ps(ga, ih, gb));
            _mm512_mask_storeu_ps(d1 + 2 * ow, lo, _mm512_permutex2var_ps(gc, il, gd));
            _mm512_mask_storeu_ps(d1 + 2 * ow + 16, hi, _mm512_permutex2var_ps(gc, ih, gd));
        }
    }
}

#define VALUES_MAX_KW 16
// maxpool2d_forward_plane_values for column strides 1 and 2 with AVX-512: 16 outputs of a row at
// a time, every tap of their windows taken into registers (masked to the taps inside the row)
// and one store, where the row passes load and store the outputs once per tap. 0 when it does
// not apply (wider kernels, other strides).
PLY_TARGET_AVX512 int maxpool2d_forward_plane_values512(float *out, const float *in, int64_t H, int64_t W, int64_t OH,
                                                        int64_t OW, const ply_layer *p) {
    const int64_t S = p->sw;
    if ((S != 1 && S != 2) || p->kw > VALUES_MAX_KW) return 0;
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    int64_t lo[VALUES_MAX_KW], hi[VALUES_MAX_KW];
    for (int64_t kj = 0; kj < p->kw; kj++) ply_conv_out_range(kj, S, p->pw, W, OW, &lo[kj], &hi[kj]);
    for (int64_t ow0 = 0; ow0 < OW; ow0 += 16) {
        const int64_t n = OW - ow0 < 16 ? OW - ow0 : 16;
        const __mmask16 keep = (__mmask16)((1u << n) - 1);
        // per kernel column: the lanes whose input column is inside the row, and for stride 2
        // the same as masks of the 32 floats two loads cover (lane L reads float 2L)
        __mmask16 m[VALUES_MAX_KW], m0[VALUES_MAX_KW], m1[VALUES_MAX_KW];
        for (int64_t kj = 0; kj < p->kw; kj++) {
            int64_t a = lo[kj] > ow0 ? lo[kj] - ow0 : 0, b = hi[kj] - ow0 < n ? hi[kj] - ow0 : n;
            uint32_t bits = b > a ? ((1u << b) - 1) & ~((1u << a) - 1) : 0;
            m[kj] = (__mmask16)bits;
            uint32_t e0 = 0, e1 = 0;
            for (int L = 0; L < 16; L++)
                if (bits >> L & 1) { if (L < 8) e0 |= 1u << (2 * L); else e1 |= 1u << (2 * L - 16); }
            m0[kj] = (__mmask16)e0;
            m1[kj] = (__mmask16)e1;
        }
        for (int64_t oh = 0; oh < OH; oh++) {
            int64_t h0 = oh * p->sh - p->ph, h1 = h0 + p->kh < H ? h0 + p->kh : H;
            if (h0 < 0) h0 = 0;
            __m512 acc = _mm512_set1_ps(-INFINITY);
            for (int64_t h = h0; h < h1; h++) {
                // x[L * S] is lane L's input at kernel column 0 (masked lanes are never read)
                const float *x = in + h * W + ow0 * S - p->pw;
                for (int64_t kj = 0; kj < p->kw; kj++) {
                    if (!m[kj]) continue;
                    __m512 v;
                    if (S == 1) {
                        v = _mm512_maskz_loadu_ps(m[kj], x + kj);
                    } else {
                        v = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(m0[kj], x + kj), ie,
                                                   _mm512_maskz_loadu_ps(m1[kj], x + kj + 16));
                    }
                    acc = _mm512_mask_mov_ps(acc, m[kj] & wins16(v, acc), v);
                }
            }
            _mm512_mask_storeu_ps(out + oh * OW + ow0, keep, acc);
        }
    }
    return 1;
}

// The 3x3, stride 1, padding 1 max pool as two 3-wide passes (rows, then columns), each over the
// plane as one flat array of H*W floats, 16 at a time whatever W is: out = max(h[i - W], h[i],
// h[i + W]) with h[i] = max(in[i - 1], in[i], in[i + 1]), a neighbour left out where it falls
// outside the plane (bit masks of the first and last column, and the first and last row's index
// ranges). 4 max per output instead of the general kernel's 9 taps of 2 compares each, and no
// lanes lost to narrow rows (7 of 16 on 7x7 planes). _mm512_max_ps drops a NaN in its first
// operand, so a plane with a NaN goes back to the general kernel, whose rule keeps it. Measured on
// GoogLeNet's nine such pools (192x28x28 to 832x7x7, batch 1; thread CPU time, min of 20, loaded
// machine): 1.46 ms in all with the general kernel, 0.45 ms with this one (3.3x; 28x28: 0.19 /
// 0.05 ms, 14x14: 0.14 / 0.05, 7x7: 0.13 / 0.04).
// The edge columns' bits (pool3_edges) are made once per call (pool_run), not once per plane: per
// plane they took about a third of this kernel's samples (`perf annotate` of `ply bench-model
// googlenet --threads 1`: a read-modify-write of a word per row, a chain through memory, and two
// 520-byte memsets) where a 7x7 plane's two passes are 8 vectors. Benchmarks/maxpool_kernel.c
// (input warm, thread CPU time, median of 21, Intel Xeon model 207, the two alternating in one
// process): GoogLeNet's nine pools, made per plane -> per call, ms: load 10-19 on 2 cores 0.650 ->
// 0.465 (3 rounds alike), 0.830 / 0.813 / 0.782 -> 0.584 / 0.627 / 0.620; load ~4 0.509 / 0.504 /
// 0.504 -> 0.410 / 0.370 / 0.365 (ONNX Runtime's nine MaxPool nodes 0.35, its profile). Inception
// v3's nine 3x3 average pools (avgpool3x3s1_plane512, the same bits): 1.435 / 1.305 -> 1.144 / 0.968
// at load 10-19, 1.043 / 1.027 -> 0.750 / 0.747 at load ~4.
static inline __mmask16 lanes_upto(int64_t n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
}
int pool3_edges_make(pool3_edges *e, int64_t H, int64_t W) {
    if (H < 1 || W < 1 || H * W > MAX3_PLANE) return 0;
    e->H = H;
    e->W = W;
    memset(e->nf, 0xFF, sizeof e->nf);
    memset(e->nl, 0xFF, sizeof e->nl);
    for (int64_t r = 0; r < H; r++) {
        int64_t f = r * W, l = f + W - 1;
        e->nf[f / 64] &= ~(1ull << (f % 64));
        e->nl[l / 64] &= ~(1ull << (l % 64));
    }
    return 1;
}
static inline __mmask16 bits16(const uint64_t *b, int64_t i) {
    uint64_t v = b[i / 64] >> (i % 64);
    if (i % 64 > 48) v |= b[i / 64 + 1] << (64 - i % 64);
    return (__mmask16)v;
}
PLY_TARGET_AVX512 int maxpool3x3s1_plane512(float *out, const float *in, const pool3_edges *e) {
    const int64_t W = e->W, n = e->H * W;
    const uint64_t *nf = e->nf, *nl = e->nl;
    float h[MAX3_PLANE];
    __mmask16 nan = 0;
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = lanes_upto(n - i);
        __m512 c = _mm512_maskz_loadu_ps(k, in + i);
        nan |= _mm512_cmp_ps_mask(c, c, _CMP_UNORD_Q);
        __m512 l = _mm512_mask_loadu_ps(c, k & bits16(nf, i), in + i - 1);
        __m512 r = _mm512_mask_loadu_ps(c, k & bits16(nl, i), in + i + 1);
        _mm512_mask_storeu_ps(h + i, k, _mm512_max_ps(r, _mm512_max_ps(c, l))); // the earliest on ties (+0, -0)
    }
    if (nan) return 0;
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = lanes_upto(n - i);
        __m512 c = _mm512_maskz_loadu_ps(k, h + i);
        __m512 u = _mm512_mask_loadu_ps(c, k & (__mmask16)~lanes_upto(W - i), h + i - W);
        __m512 d = _mm512_mask_loadu_ps(c, k & lanes_upto(n - W - i), h + i + W);
        _mm512_mask_storeu_ps(out + i, k, _mm512_max_ps(d, _mm512_max_ps(c, u)));
    }
    return 1;
}

// The 3x3, stride 1, padding 1 average pool with count_include_pad (the pool branches of
// Inception-v3's A, C and E blocks), over the plane as one flat array, 16 outputs at a time
// whatever W is. Each lane adds its in-plane taps in the plain loop's order (rows -1, 0, +1, in
// each the columns -1, 0, +1; avgpool2d_forward_plane), a tap outside the plane skipped by the
// add's mask rather than added as a zero, so the sums and the quotients (by 9: the window always
// spans 3x3 with its padding) are bit-identical to that loop's. Index equation: out[i] =
// (sum over dr, dc in {-1, 0, 1} with (r + dr, c + dc) inside the plane of in[i + dr*W + dc]) / 9,
// i = r*W + c. Measured on Inception-v3's nine such pools at 299 (192x35x35 to 2048x8x8, batch 1,
// 1 thread, `perf record` of `ply bench-model --runs 3 --iterations 5`, loaded machine): the
// general kernel (pool_run) 8.8% of the samples, about 12.8 ms per forward; this one 1.6%, about
// 1.9 ms.
// Vectors whose 16 outputs all have a row above and below (the plane's middle rows, i in
// [W + 1, n - W - 17]) take a second loop: no row masks, the centre column's three taps added
// unmasked, the left and right columns' masks read from the edge bits by one unaligned load and a
// shift (edge_bits16) instead of bits16's branches. The same adds in the same order: the same bits.
// Thread CPU time of the nine pools' planes (Benchmarks/maxpool_kernel.c, input warm, median of
// 21, Intel Xeon model 207, load ~18-20 on 2 cores), five alternating rounds, the nine pools' sum:
// 1.902, 2.189, 2.175, 2.198, 1.149 -> 1.484, 1.576, 1.601, 0.988, 1.161 ms (medians 2.18 -> 1.48;
// five earlier rounds, four vectors' chains interleaved: 1.53 -> 1.02; ONNX Runtime's nine AveragePool
// nodes 0.66 ms, its profile); hot in L1 (4 planes 1000 times), ns per vector: 35x35 8.0 -> 5.5,
// 17x17 9.2 -> 7.2. Neither the four chains interleaved (5.4) nor a multiply for the division (5.5)
// changed it. In the model (perf record of `ply bench-model
// inception_v3 --image-size 299 --threads 1`, two alternating pairs, loaded machine) its share of the
// samples 2.16 -> 1.44% and 2.20 -> 1.99%.
#define MAX3_EDGE_BYTES ((MAX3_PLANE / 64 + 1) * 8)
// bits16 without branches (pool3_edge_bits, pooling.h: i + 16 + 7 < MAX3_PLANE + 64 bits, so the
// 4 bytes read stay inside b).
static inline __mmask16 edge_bits16(const uint64_t *b, int64_t i) { return (__mmask16)pool3_edge_bits(b, i); }
// The sums of the outputs [i, min(i + 16, end)) (k: those lanes) of an n-float plane, every tap masked.
PLY_TARGET_AVX512 static inline __m512 avg3x3_masked(const float *in, int64_t i, int64_t end, int64_t n, int64_t W,
                                                    const uint64_t *nf, const uint64_t *nl, __mmask16 *k) {
    *k = lanes_upto(end - i);
    const __mmask16 rows[3] = {(__mmask16)(*k & ~lanes_upto(W - i)), *k, (__mmask16)(*k & lanes_upto(n - W - i))};
    const __mmask16 left = bits16(nf, i), right = bits16(nl, i);
    __m512 s = _mm512_setzero_ps();
    for (int dr = 0; dr < 3; dr++) {
        const float *p = in + i + (dr - 1) * W;
        const __mmask16 m = rows[dr], ml = (__mmask16)(m & left), mr = (__mmask16)(m & right);
        s = _mm512_mask_add_ps(s, ml, s, _mm512_maskz_loadu_ps(ml, p - 1));
        s = _mm512_mask_add_ps(s, m, s, _mm512_maskz_loadu_ps(m, p));
        s = _mm512_mask_add_ps(s, mr, s, _mm512_maskz_loadu_ps(mr, p + 1));
    }
    return s;
}
PLY_TARGET_AVX512 void avgpool3x3s1_plane512(float *out, const float *in, const pool3_edges *e) {
    const int64_t W = e->W, n = e->H * W;
    const uint64_t *nf = e->nf, *nl = e->nl;
    _Static_assert(sizeof e->nf == MAX3_EDGE_BYTES, "edge_bits16 reads 3 bytes past the plane's last bit");
    const __m512 nine = _mm512_set1_ps(9.0f);
    // [lo, hi): the vectors at i = lo + 16 q (i <= n - W - 17) of the middle loop; the rest by the masked one
    // (rows narrower than a vector, 8x8: all masked, the middle loop there took 14.0 ns a vector against 11.8)
    const int64_t lo = W >= 16 ? W + 1 : n, hi = lo + (n - W - 1 - lo >= 16 ? (n - W - 1 - lo) / 16 * 16 : 0);
    __mmask16 k;
    int64_t i;
    for (i = 0; i < lo && i < n; i += 16) {
        __m512 s = avg3x3_masked(in, i, ply_min_i64(n, lo), n, W, nf, nl, &k);
        _mm512_mask_storeu_ps(out + i, k, _mm512_div_ps(s, nine));
    }
    for (i = lo; i < hi; i += 16) {
        const __mmask16 left = edge_bits16(nf, i), right = edge_bits16(nl, i);
        const float *u = in + i - W, *c = in + i, *d = in + i + W;
        __m512 s = _mm512_add_ps(_mm512_setzero_ps(), _mm512_maskz_loadu_ps(left, u - 1)); // 0 + x, as the loop (-0)
        s = _mm512_add_ps(s, _mm512_loadu_ps(u));
        s = _mm512_mask_add_ps(s, right, s, _mm512_loadu_ps(u + 1));
        s = _mm512_mask_add_ps(s, left, s, _mm512_loadu_ps(c - 1));
        s = _mm512_add_ps(s, _mm512_loadu_ps(c));
        s = _mm512_mask_add_ps(s, right, s, _mm512_loadu_ps(c + 1));
        s = _mm512_mask_add_ps(s, left, s, _mm512_loadu_ps(d - 1));
        s = _mm512_add_ps(s, _mm512_loadu_ps(d));
        s = _mm512_mask_add_ps(s, right, s, _mm512_loadu_ps(d + 1));
        _mm512_storeu_ps(out + i, _mm512_div_ps(s, nine));
    }
    for (i = ply_max_i64(lo, hi); i < n; i += 16) {
        __m512 s = avg3x3_masked(in, i, n, n, W, nf, nl, &k);
        _mm512_mask_storeu_ps(out + i, k, _mm512_div_ps(s, nine));
    }
}

// The 3x3, stride 2 max pool (padding 0 or 1, either ceil mode) as two 3-wide passes, fused: for
// each output row i, the maxima of the column triples 2j - PW .. 2j - PW + 2 of its input rows
// 2i - PH + 1 and 2i - PH + 2 (the even and odd lanes of two loads, and the even ones shifted by a
// lane), and of row 2i - PH, carried from output row i - 1 (its last row), whose maxima the output
// row takes. Index equation: out[i][j] = max over r in [2i - PH, 2i - PH + 3) and c in
// [2j - PW, 2j - PW + 3), inside the plane, of in[r][c]. Every input row is loaded once, in order,
// and the carried row (OW floats) stays in L1. Floats outside the row load as -inf (the padding).
// Ties keep the earlier element in row-major order, as the plain loop (take_max): _mm512_max_ps
// returns its second operand on equal (+0 and -0) operands, so the earlier one goes second. A NaN
// among the floats loaded sends the plane back to the general kernel (whose rule keeps it), which
// rewrites all of out. Measured on ResNet-18's stem pool (64 planes of 112x112 -> 56x56, padding 1;
// Benchmarks/maxpool_kernel.c: this kernel alone over the 64 planes, input warm, thread CPU time,
// median of 31, loaded machine): 0.239 ms for the earlier unfused kernel (a rows pass over the whole
// plane a 16-column block at a time, reading a plane's 50 KB once per block, then a columns pass),
// 0.141 ms for this one; ONNX Runtime's MaxPool node 0.195 ms (its profile, quiet machine).
#define MAX3S2_BLOCKS 64 // output rows of up to 1024 (64 vectors): the masks and the carried row on the stack
PLY_TARGET_AVX512 static inline __m512 max3_row512(const float *x, uint64_t valid, __mmask16 *nan) {
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 a0 = _mm512_mask_loadu_ps(ninf, (__mmask16)valid, x);
    __m512 a1 = _mm512_mask_loadu_ps(ninf, (__mmask16)(valid >> 16), x + 16);
    __m512 a2 = _mm512_mask_loadu_ps(ninf, (__mmask16)(valid >> 32), x + 32); // offset 32 only
    *nan |= _mm512_cmp_ps_mask(a0, a1, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(a2, a2, _CMP_UNORD_Q);
    __m512 e = _mm512_permutex2var_ps(a0, ie, a1), o = _mm512_permutex2var_ps(a0, io, a1);
    __m512 e2 = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(a2), _mm512_castps_si512(e), 1));
    return _mm512_max_ps(e2, _mm512_max_ps(o, e)); // lane L: max of x[2L], x[2L + 1], x[2L + 2], the earliest on ties
}
PLY_TARGET_AVX512 int maxpool3x3s2_plane512(float *out, const float *in, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                            int64_t PH, int64_t PW) {
    const int64_t nb = (OW + 15) / 16;
    if (nb > MAX3S2_BLOCKS || W + PW > (1 << 20)) return 0;
    float carry[MAX3S2_BLOCKS * 16];
    uint64_t valid[MAX3S2_BLOCKS];
    __mmask16 keep[MAX3S2_BLOCKS];
    for (int64_t blk = 0; blk < nb; blk++) {
        // floats [b, b + 33) of each row, b = 2 j0 - PW: those inside [0, W) are loaded
        const int64_t j0 = 16 * blk, b = 2 * j0 - PW;
        const int64_t lo = b < 0 ? -b : 0, hi = W - b < 33 ? W - b : 33;
        valid[blk] = (hi >= 64 ? ~0ull : (1ull << hi) - 1) & ~((1ull << lo) - 1);
        keep[blk] = (__mmask16)(OW - j0 >= 16 ? 0xFFFF : (1u << (OW - j0)) - 1);
    }
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __mmask16 nan = 0;
    for (int64_t i = 0; i < OH; i++) {
        // the window's rows r0, r0 + 1, r0 + 2, those inside [0, H): r0 < H (PyTorch's rule that a
        // ceil-mode window starts inside the input or the left padding) and r0 + 2 >= 0; row r0's maxima
        // are output row i - 1's carried last row, but for the first output row's
        const int64_t r0 = 2 * i - PH;
        const int has0 = r0 >= 0, has1 = r0 + 1 < H, has2 = r0 + 2 < H;
        const float *x0 = in + r0 * W - PW, *x1 = x0 + W, *x2 = x1 + W;
        float *o = out + i * OW;
        for (int64_t blk = 0; blk < nb; blk++) {
            const int64_t j0 = 16 * blk;
            __m512 acc = ninf;
            if (has0) acc = i == 0 ? max3_row512(x0 + 2 * j0, valid[blk], &nan) : _mm512_loadu_ps(carry + j0);
            if (has1) acc = _mm512_max_ps(max3_row512(x1 + 2 * j0, valid[blk], &nan), acc);
            if (has2) {
                __m512 h2 = max3_row512(x2 + 2 * j0, valid[blk], &nan);
                _mm512_storeu_ps(carry + j0, h2);
                acc = _mm512_max_ps(h2, acc);
            }
            _mm512_mask_storeu_ps(o + j0, keep[blk], acc);
        }
    }
    return nan ? 0 : 1;
}

// maxpool2d_forward_plane for strides 1 and 2 with AVX-512, a row of outputs at a time: the
// window's taps in row-major order, each one vector pass over the outputs it reaches. The rule
// is max_window's (a larger value or a NaN replaces the running max; a window of -inf keeps its
// first valid tap), so maxima and argmax are the same. 0 when it does not apply.
#define ARGMAX_ROW 1024
// maxpool2d_forward_plane_argmax512 for output rows of at most 16: one vector per row, whose running
// max and argmax stay in registers over the window's taps (the same comparisons in the same
// order). Through memory, each tap's masked store and the next tap's masked load of the same
// lanes stalled on store forwarding: ResNet-18's maxpool at 32x32 (64 x 64 planes of 16x16 -> 8x8)
// took 3.6 ms per training forward on one thread, as long as a 64-channel conv's Winograd forward.
PLY_TARGET_AVX512 static int maxpool_argmax_narrow512(float *out, int64_t *argmax, const float *in, int64_t H,
                                                      int64_t W, int64_t OH, int64_t OW, const ply_layer *p) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i step = _mm512_mullo_epi32(lane, _mm512_set1_epi32((int)p->sw));
    const __mmask16 all = (__mmask16)((1u << OW) - 1);
    // per kernel column: the output lanes [lo, hi) whose tap is inside the row, and (stride 2) the
    // input floats 2*ow they read, as bits of two 16-float loads
    __mmask16 lanes[64];
    uint32_t evens[64];
    const int64_t kw = p->kw < 64 ? p->kw : 64;
    if (p->kw > 64) return 0;
    for (int64_t kj = 0; kj < kw; kj++) {
        int64_t lo, hi;
        ply_conv_out_range(kj, p->sw, p->pw, W, OW, &lo, &hi);
        uint32_t m = 0, e = 0;
        for (int64_t ow = lo; ow < hi; ow++) { m |= 1u << ow; e |= 1u << (2 * ow); }
        lanes[kj] = (__mmask16)m;
        evens[kj] = e;
    }
    // the argmax when no tap wins (every tap -inf): the window's first element, as the general loop
    __m512i first = _mm512_sub_epi32(step, _mm512_set1_epi32((int)p->pw));
    first = _mm512_max_epi32(first, _mm512_setzero_si512());
    for (int64_t oh = 0; oh < OH; oh++) {
        int64_t h0 = oh * p->sh - p->ph, h1 = h0 + p->kh < H ? h0 + p->kh : H;
        if (h0 < 0) h0 = 0;
        __m512 best = _mm512_set1_ps(-INFINITY);
        __m512i bidx = _mm512_add_epi32(first, _mm512_set1_epi32((int)(h0 * W)));
        for (int64_t h = h0; h < h1; h++)
            for (int64_t kj = 0; kj < kw; kj++) {
                const __mmask16 m = lanes[kj];
                if (!m) continue;
                const float *src = in + h * W + kj - p->pw; // src[ow * sw] is this tap of output ow
                __m512 v;
                if (p->sw == 1) {
                    v = _mm512_maskz_loadu_ps(m, src);
                } else {
                    v = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps((__mmask16)evens[kj], src), ie,
                                               _mm512_maskz_loadu_ps((__mmask16)(evens[kj] >> 16), src + 16));
                }
                __mmask16 win = m & wins16(v, best);
                best = _mm512_mask_mov_ps(best, win, v);
                bidx = _mm512_mask_mov_epi32(bidx, win,
                                             _mm512_add_epi32(_mm512_set1_epi32((int)(h * W + kj - p->pw)), step));
            }
        _mm512_mask_storeu_ps(out + oh * OW, all, best);
        int32_t idx[16];
        _mm512_storeu_si512(idx, bidx);
        for (int64_t ow = 0; ow < OW; ow++) argmax[oh * OW + ow] = idx[ow];
    }
    return 1;
}

PLY_TARGET_AVX512 int maxpool2d_forward_plane_argmax512(float *out, int64_t *argmax, const float *in, int64_t H,
                                                        int64_t W, int64_t OH, int64_t OW, const ply_layer *p) {
    if ((p->sw != 1 && p->sw != 2) || OW > ARGMAX_ROW || H * W >= (1 << 30)) return 0;
    if (OW <= 16) return maxpool_argmax_narrow512(out, argmax, in, H, W, OH, OW, p);
    int32_t idx[ARGMAX_ROW];
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i step = _mm512_mullo_epi32(lane, _mm512_set1_epi32((int)p->sw));
    for (int64_t oh = 0; oh < OH; oh++) {
        float *o = out + oh * OW;
        int64_t h0 = oh * p->sh - p->ph, h1 = h0 + p->kh < H ? h0 + p->kh : H;
        if (h0 < 0) h0 = 0;
        for (int64_t ow = 0; ow < OW; ow++) {
            int64_t w0 = ow * p->sw - p->pw;
            o[ow] = -INFINITY;
            idx[ow] = (int32_t)(h0 * W + (w0 < 0 ? 0 : w0));
        }
        for (int64_t h = h0; h < h1; h++)
            for (int64_t kj = 0; kj < p->kw; kj++) {
                int64_t lo, hi;
                ply_conv_out_range(kj, p->sw, p->pw, W, OW, &lo, &hi);
                const float *src = in + h * W + kj - p->pw; // src[ow * sw] is this tap of output ow
                for (int64_t ow = lo; ow < hi; ow += 16) {
                    int64_t n = hi - ow < 16 ? hi - ow : 16;
                    __mmask16 m = (__mmask16)(n >= 16 ? 0xFFFFu : (1u << n) - 1);
                    __m512 v;
                    if (p->sw == 1) {
                        v = _mm512_maskz_loadu_ps(m, src + ow);
                    } else { // even lanes of the 2n - 1 floats read
                        int64_t k = 2 * n - 1;
                        __mmask16 a = (__mmask16)(k >= 16 ? 0xFFFFu : (1u << k) - 1);
                        __mmask16 b = (__mmask16)(k <= 16 ? 0u : (1u << (k - 16)) - 1);
                        v = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(a, src + 2 * ow), ie,
                                                   _mm512_maskz_loadu_ps(b, src + 2 * ow + 16));
                    }
                    __mmask16 win = m & wins16(v, _mm512_maskz_loadu_ps(m, o + ow));
                    _mm512_mask_storeu_ps(o + ow, win, v);
                    __m512i cand = _mm512_add_epi32(_mm512_set1_epi32((int)(h * W + ow * p->sw + kj - p->pw)), step);
                    _mm512_mask_storeu_epi32(idx + ow, win, cand);
                }
            }
        for (int64_t ow = 0; ow < OW; ow++) argmax[oh * OW + ow] = idx[ow];
    }
    return 1;
}
#endif
