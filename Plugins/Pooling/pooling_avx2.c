/*
 * The 3x3 pooling kernels of pooling_x86.c's AVX-512 level ported to AVX2 (8-float vectors, each
 * function compiled with PLY_TARGET_AVX2; call only when ply_cpu_level() >= PLY_CPU_AVX2):
 * maxpool3x3s1_plane_avx2, avgpool3x3s1_plane_avx2 and maxpool3x3s2_plane_avx2, declared in
 * pooling.h; and, at the end, the 2x2 / stride 2 max pool's two plane kernels. Each computes what its AVX-512 twin does, bit for bit: the same operations in the
 * same order per output, only 8 lanes at a time instead of 16 (the index equations and the tie
 * rules are in pooling_x86.c's comments above the AVX-512 versions).
 *
 * AVX2 has no mask registers. Where AVX-512 masks a tap, these kernels
 *   - read it with _mm256_maskload_ps (masked lanes are not touched, so they never fault) only in
 *     the vectors at the plane's (or the row's) edges, and with a plain load everywhere else;
 *   - replace a lane without the tap by a _mm256_blendv_ps: with the centre for a max (max(c, c) =
 *     c), with -inf for the stride-2 padding, and with -0.0f for a sum (x + -0 = x for every x,
 *     +0 included, so adding -0 is the same as the AVX-512 kernel's skipped add);
 *   - never use _mm256_maskstore_ps (microcoded on AMD Zen; the 2x2 kernels at the end do, in a row's
 *     tail only, where a whole store would leave the plane): the last vector of a plane or row
 *     starts at n - 8 and overlaps the one before (its outputs, recomputed from the same inputs,
 *     are the same bits), and a plane or row shorter than 8 goes through a stack buffer.
 * The edge-column bits (pool3_edges, made by pool3_edges_make once per call) become lane masks by
 * broadcasting their byte and comparing each lane with its bit (edge_lanes8).
 *
 * Measured on this AMD EPYC Zen 3 (AVX2, no AVX-512; 2 cores shared with another engineer's
 * benchmarks), pool_dispatch on one thread with pooling_planes.c before (every 3x3 max pool through
 * the AVX2-cloned generic row passes, the average pool through the plain window loop) and after
 * (these kernels), -O2, thread CPU time, median of 21, input warm, two rounds each:
 *   GoogLeNet's nine 3x3 stride-1 max pools:   10.51 / 7.12 -> 0.44 / 0.42 ms
 *   GoogLeNet's four 3x3 stride-2 max pools:    6.53 / 6.44 -> 0.68 / 0.46 ms
 *   Inception v3's nine 3x3 average pools:     21.01 / 15.00 -> 1.34 / 1.31 ms
 * In the model, `ply bench-layers googlenet --threads 1 --runs 3` (release build, pooling_planes.c
 * swapped, two runs each): the pool row (14 layers) 10.60 / 12.08 -> 2.68 / 2.06 ms per image.
 * Benchmarks/maxpool_kernel.c, the kernels alone: GoogLeNet's nine stride-1 max pools 0.41-0.56 ms
 * (edges once per call; 0.51-1.13 once per plane), ResNet's stem pool (64 x 112x112 -> 56x56)
 * 0.32 ms, Inception v3's nine average pools 1.5-2.6 ms. The overlapping last vector instead of
 * _mm256_maskstore_ps was not measured against it here (AMD documents the store as microcoded).
 */
#include "plugin_support.h"

#include "pooling.h"

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>

#include "plugin_simd.h"
#include <math.h>
#include <string.h>

// lane j all ones when bit j of bits is set
PLY_TARGET_AVX2 static inline __m256 bit_lanes8(uint32_t bits) {
    const __m256i sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)bits), sel), sel));
}
// lanes of flat index i + j whose edge bit (nf or nl) is set
PLY_TARGET_AVX2 static inline __m256 edge_lanes8(const uint64_t *b, int64_t i) {
    return bit_lanes8(pool3_edge_bits(b, i) & 0xFF);
}
// lanes j with lo <= i + j < hi (int32 compares: planes of at most MAX3_PLANE)
PLY_TARGET_AVX2 static inline __m256 range_lanes8(int64_t i, int64_t lo, int64_t hi) {
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i a = _mm256_cmpgt_epi32(iota, _mm256_set1_epi32((int)(lo - i - 1)));
    __m256i b = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(hi - i)), iota);
    return _mm256_castsi256_ps(_mm256_and_si256(a, b));
}
// p[j] where lane j of m is set, else dflt[j]; p's masked lanes are not read
PLY_TARGET_AVX2 static inline __m256 load_or(const float *p, __m256 m, __m256 dflt) {
    return _mm256_blendv_ps(dflt, _mm256_maskload_ps(p, _mm256_castps_si256(m)), m);
}

// ----------------------------------------------------------------------------
// maxpool3x3s1_plane512 with 8 lanes: h[i] = max(in[i+1], max(in[i], in[i-1])), then out[i] =
// max(h[i+W], max(h[i], h[i-W])), a neighbour outside the plane replaced by the centre. The
// earlier operand goes second (max returns its second operand on ties, +0 / -0), so the earliest
// element in row-major order wins, as take_max's loop; a NaN declines the plane (returns 0).

// h at flat index i (i + 8 <= n unless n < 8: lanes past n are garbage, never stored to out)
PLY_TARGET_AVX2 static inline __m256 max3_h8(const float *in, int64_t i, int64_t n, const uint64_t *nf,
                                            const uint64_t *nl, int edge, __m256 *nan) {
    __m256 c, l, r;
    if (!edge) {
        c = _mm256_loadu_ps(in + i);
        l = _mm256_blendv_ps(c, _mm256_loadu_ps(in + i - 1), edge_lanes8(nf, i));
        r = _mm256_blendv_ps(c, _mm256_loadu_ps(in + i + 1), edge_lanes8(nl, i));
    } else {
        const __m256 k = range_lanes8(i, 0, n);
        c = load_or(in + i, k, _mm256_setzero_ps());
        l = load_or(in + i - 1, _mm256_and_ps(k, edge_lanes8(nf, i)), c);
        r = load_or(in + i + 1, _mm256_and_ps(k, edge_lanes8(nl, i)), c);
    }
    *nan = _mm256_or_ps(*nan, _mm256_cmp_ps(c, c, _CMP_UNORD_Q));
    return _mm256_max_ps(r, _mm256_max_ps(c, l));
}
// out at flat index i from h (h holds n + 8 floats)
PLY_TARGET_AVX2 static inline __m256 max3_v8(const float *h, int64_t i, int64_t n, int64_t W, int edge) {
    __m256 c = _mm256_loadu_ps(h + i), u, d;
    if (!edge) {
        u = _mm256_loadu_ps(h + i - W);
        d = _mm256_loadu_ps(h + i + W);
    } else {
        u = load_or(h + i - W, range_lanes8(i, W, n), c);
        d = load_or(h + i + W, range_lanes8(i, 0, n - W), c);
    }
    return _mm256_max_ps(d, _mm256_max_ps(c, u));
}
PLY_TARGET_AVX2 int maxpool3x3s1_plane_avx2(float *out, const float *in, const pool3_edges *e) {
    const int64_t W = e->W, n = e->H * W;
    const uint64_t *nf = e->nf, *nl = e->nl;
    float h[MAX3_PLANE + 8];
    __m256 nan = _mm256_setzero_ps();
    if (n < 8) { // one vector, every load masked, through a buffer
        _mm256_storeu_ps(h, max3_h8(in, 0, n, nf, nl, 1, &nan));
        if (_mm256_movemask_ps(nan)) return 0;
        float o[8];
        _mm256_storeu_ps(o, max3_v8(h, 0, n, W, 1));
        memcpy(out, o, (size_t)n * sizeof(float));
        return 1;
    }
    // rows pass: plain loads for i in [1, n - 9] (in[i - 1 .. i + 8] inside), the last vector at n - 8
    int64_t i;
    _mm256_storeu_ps(h, max3_h8(in, 0, n, nf, nl, 1, &nan));
    for (i = 8; i + 9 <= n; i += 8) _mm256_storeu_ps(h + i, max3_h8(in, i, n, nf, nl, 0, &nan));
    if (i < n) _mm256_storeu_ps(h + n - 8, max3_h8(in, n - 8, n, nf, nl, 1, &nan));
    if (_mm256_movemask_ps(nan)) return 0;
    // columns pass: plain loads for i in [W, n - W - 8] (h[i - W], h[i + W + 7] inside)
    for (i = 0; i < n; i += 8) {
        const int64_t at = i + 8 <= n ? i : n - 8;
        _mm256_storeu_ps(out + at, max3_v8(h, at, n, W, at < W || at + 8 + W > n));
    }
    return 1;
}

// ----------------------------------------------------------------------------
// avgpool3x3s1_plane512 with 8 lanes: each lane adds its in-plane taps in the plain loop's order
// (rows -1, 0, +1, in each the columns -1, 0, +1) to +0, a tap outside the plane added as -0 (which
// leaves every sum's bits as they were), then / 9.

// the sums at flat index i (edge: every tap masked, lanes past n garbage)
PLY_TARGET_AVX2 static inline __m256 avg3_8(const float *in, int64_t i, int64_t n, int64_t W, const uint64_t *nf,
                                           const uint64_t *nl, int edge) {
    const __m256 nz = _mm256_set1_ps(-0.0f);
    const __m256 left = edge_lanes8(nf, i), right = edge_lanes8(nl, i);
    __m256 s = _mm256_setzero_ps();
    if (!edge) {
        for (int dr = -1; dr <= 1; dr++) {
            const float *p = in + i + dr * W;
            s = _mm256_add_ps(s, _mm256_blendv_ps(nz, _mm256_loadu_ps(p - 1), left));
            s = _mm256_add_ps(s, _mm256_loadu_ps(p));
            s = _mm256_add_ps(s, _mm256_blendv_ps(nz, _mm256_loadu_ps(p + 1), right));
        }
        return s;
    }
    const __m256 rows[3] = {range_lanes8(i, W, n), range_lanes8(i, 0, n), range_lanes8(i, 0, n - W)};
    for (int dr = -1; dr <= 1; dr++) {
        const float *p = in + i + dr * W;
        const __m256 m = rows[dr + 1];
        s = _mm256_add_ps(s, load_or(p - 1, _mm256_and_ps(m, left), nz));
        s = _mm256_add_ps(s, load_or(p, m, nz));
        s = _mm256_add_ps(s, load_or(p + 1, _mm256_and_ps(m, right), nz));
    }
    return s;
}
PLY_TARGET_AVX2 void avgpool3x3s1_plane_avx2(float *out, const float *in, const pool3_edges *e) {
    const int64_t W = e->W, n = e->H * W;
    const uint64_t *nf = e->nf, *nl = e->nl;
    const __m256 nine = _mm256_set1_ps(9.0f);
    if (n < 8) {
        float o[8];
        _mm256_storeu_ps(o, _mm256_div_ps(avg3_8(in, 0, n, W, nf, nl, 1), nine));
        memcpy(out, o, (size_t)n * sizeof(float));
        return;
    }
    // plain loads when in[i - W - 1] and in[i + W + 8] are inside: i in [W + 1, n - W - 9]
    for (int64_t i = 0; i < n; i += 8) {
        const int64_t at = i + 8 <= n ? i : n - 8;
        const int edge = at < W + 1 || at + W + 9 > n;
        _mm256_storeu_ps(out + at, _mm256_div_ps(avg3_8(in, at, n, W, nf, nl, edge), nine));
    }
}

// ----------------------------------------------------------------------------
// maxpool3x3s2_plane512 with 8 lanes: for output columns j0 .. j0 + 7 of a row, the 17 floats
// x[0 .. 16] at b = 2 j0 - PW of each input row (-inf outside [0, W)) give lane L's column triple
// max(x[2L + 2], max(x[2L + 1], x[2L])) (the earliest on ties); the three rows' triples are
// max(row 2, max(row 1, row 0)), row 0's carried from the previous output row's row 2.
#define MAX3S2_BLOCKS8 128 // output rows of up to 1024: the masks and the carried row on the stack
PLY_TARGET_AVX2 static inline __m256 max3_row8(const float *x, uint32_t valid, __m256 *nan) {
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 a0, a1, a2;
    if (valid == 0x1FFFFu) {
        a0 = _mm256_loadu_ps(x);
        a1 = _mm256_loadu_ps(x + 8);
        a2 = _mm256_broadcast_ss(x + 16);
    } else {
        a0 = load_or(x, bit_lanes8(valid & 0xFF), ninf);
        a1 = load_or(x + 8, bit_lanes8((valid >> 8) & 0xFF), ninf);
        a2 = valid >> 16 ? _mm256_broadcast_ss(x + 16) : ninf;
    }
    *nan = _mm256_or_ps(*nan, _mm256_or_ps(_mm256_cmp_ps(a0, a1, _CMP_UNORD_Q), _mm256_cmp_ps(a2, a2, _CMP_UNORD_Q)));
    // even / odd elements of x[0 .. 15], in order (the 2x2 kernel's deinterleave)
    __m256 e = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a0, a1, 0x88)), 0xD8));
    __m256 o = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a0, a1, 0xDD)), 0xD8));
    // x[2, 4, .., 16]: e shifted down a lane, x[16] into lane 7
    __m256 e2 = _mm256_permutevar8x32_ps(e, _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 7));
    e2 = _mm256_blend_ps(e2, a2, 0x80);
    return _mm256_max_ps(e2, _mm256_max_ps(o, e));
}
PLY_TARGET_AVX2 int maxpool3x3s2_plane_avx2(float *out, const float *in, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                            int64_t PH, int64_t PW) {
    // blocks at j0 = 0, 8, .., the last at OW - 8 (overlapping the one before; OW < 8: one block at 0)
    const int64_t nb = (OW + 7) / 8;
    if (nb > MAX3S2_BLOCKS8 || W + PW > (1 << 20)) return 0;
    // block blk's carried row at 8 blk: the overlapping last block's must not clobber the one before's
    float carry[MAX3S2_BLOCKS8 * 8];
    int64_t start[MAX3S2_BLOCKS8];
    uint32_t valid[MAX3S2_BLOCKS8];
    for (int64_t blk = 0; blk < nb; blk++) {
        // floats [b, b + 17) of each row, b = 2 j0 - PW: those inside [0, W) are loaded
        const int64_t j0 = blk + 1 < nb || OW < 8 ? 8 * blk : OW - 8, b = 2 * j0 - PW;
        const int64_t lo = b < 0 ? -b : 0, hi = W - b < 17 ? W - b : 17;
        start[blk] = j0;
        valid[blk] = hi <= lo ? 0u : ((1u << hi) - 1) & ~((1u << lo) - 1);
    }
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 nan = _mm256_setzero_ps();
    for (int64_t i = 0; i < OH; i++) {
        // the window's rows r0, r0 + 1, r0 + 2 inside [0, H), as maxpool3x3s2_plane512
        const int64_t r0 = 2 * i - PH;
        const int has0 = r0 >= 0, has1 = r0 + 1 < H, has2 = r0 + 2 < H;
        const float *x0 = in + r0 * W - PW, *x1 = x0 + W, *x2 = x1 + W;
        float *o = out + i * OW;
        for (int64_t blk = 0; blk < nb; blk++) {
            const int64_t j0 = start[blk];
            __m256 acc = ninf;
            if (has0) acc = i == 0 ? max3_row8(x0 + 2 * j0, valid[blk], &nan) : _mm256_loadu_ps(carry + 8 * blk);
            if (has1) acc = _mm256_max_ps(max3_row8(x1 + 2 * j0, valid[blk], &nan), acc);
            if (has2) {
                __m256 h2 = max3_row8(x2 + 2 * j0, valid[blk], &nan);
                _mm256_storeu_ps(carry + 8 * blk, h2);
                acc = _mm256_max_ps(h2, acc);
            }
            if (OW >= 8) {
                _mm256_storeu_ps(o + j0, acc);
            } else {
                float t[8];
                _mm256_storeu_ps(t, acc);
                memcpy(o, t, (size_t)OW * sizeof(float));
            }
        }
    }
    return _mm256_movemask_ps(nan) ? 0 : 1;
}
// ----------------------------------------------------------------------------
// AVX2: the 2x2 / stride 2 plane kernels, 8 outputs per step (what -march=x86-64-v3 used to
// compile into pooling.c's kernels), the row's tail masked

// 16 consecutive floats (a, then b) -> their even and odd elements, in order.
PLY_TARGET_AVX2 static inline void deinterleave8_regs(__m256 a, __m256 b, __m256 *even, __m256 *odd) {
    *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
    *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
}
// 16 consecutive floats -> their even and odd elements, in order.
PLY_TARGET_AVX2 static inline void deinterleave8(const float *x, __m256 *even, __m256 *odd) {
    deinterleave8_regs(_mm256_loadu_ps(x), _mm256_loadu_ps(x + 8), even, odd);
}
// lanes where v replaces the running max m: v > m, or v is NaN
PLY_TARGET_AVX2 static inline __m256 wins(__m256 v, __m256 m) {
    return _mm256_or_ps(_mm256_cmp_ps(v, m, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}
// even/odd halves back to 16 consecutive floats
PLY_TARGET_AVX2 static inline void interleave8(float *x, __m256 even, __m256 odd) {
    __m256 lo = _mm256_unpacklo_ps(even, odd), hi = _mm256_unpackhi_ps(even, odd);
    _mm256_storeu_ps(x, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_storeu_ps(x + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
}
// interleave8, with `full` stored whole, else the first 8 floats under mask m0 and the next 8 under m1
PLY_TARGET_AVX2 static inline void interleave8_masked(float *x, __m256 even, __m256 odd, __m256i m0, __m256i m1,
                                                      int full) {
    if (full) {
        interleave8(x, even, odd);
        return;
    }
    __m256 lo = _mm256_unpacklo_ps(even, odd), hi = _mm256_unpackhi_ps(even, odd);
    _mm256_maskstore_ps(x, m0, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_maskstore_ps(x + 8, m1, _mm256_permute2f128_ps(lo, hi, 0x31));
}

PLY_TARGET_AVX2 void maxpool2x2_forward_plane_avx2(float *out, const float *in, int64_t W, int64_t OH, int64_t OW) {
    for (int64_t oh = 0; oh < OH; oh++) {
        const float *r0 = in + 2 * oh * W, *r1 = r0 + W;
        float *o = out + oh * OW;
        int64_t ow = 0;
        for (; ow + 8 <= OW; ow += 8) {
            __m256 a, b, c, d;
            deinterleave8(r0 + 2 * ow, &a, &b);
            deinterleave8(r1 + 2 * ow, &c, &d);
            __m256 m = _mm256_blendv_ps(a, b, wins(b, a));
            m = _mm256_blendv_ps(m, c, wins(c, m));
            m = _mm256_blendv_ps(m, d, wins(d, m));
            _mm256_storeu_ps(o + ow, m);
        }
        if (ow < OW) { // the last 1-7 outputs masked, as the backward's (below)
            int64_t n = OW - ow;
            __m256i lo = ply_lanes8(2 * n), hi = ply_lanes8(2 * n - 8);
            __m256 a, b, c, d;
            deinterleave8_regs(_mm256_maskload_ps(r0 + 2 * ow, lo), _mm256_maskload_ps(r0 + 2 * ow + 8, hi), &a, &b);
            deinterleave8_regs(_mm256_maskload_ps(r1 + 2 * ow, lo), _mm256_maskload_ps(r1 + 2 * ow + 8, hi), &c, &d);
            __m256 m = _mm256_blendv_ps(a, b, wins(b, a));
            m = _mm256_blendv_ps(m, c, wins(c, m));
            m = _mm256_blendv_ps(m, d, wins(d, m));
            // the lanes past n are 0 (the max of the masked loads' zeros): stored whole where that ends
            // inside the plane, they land in rows written after (maskstore is slow on Zen 3)
            if (oh * OW + ow + 8 <= OH * OW) _mm256_storeu_ps(o + ow, m);
            else _mm256_maskstore_ps(o + ow, ply_lanes8(n), m);
        }
    }
}

// The gradient of 8 windows (the lanes of rows r0 and r1 at a, b and c, d: even and odd columns) to
// the four positions of each: to the first maximum of a, b, c, d in that order, a NaN winning (take_max).
PLY_TARGET_AVX2 static inline void route8(__m256 a, __m256 b, __m256 c, __m256 d, __m256 g, __m256 *ga, __m256 *gb,
                                          __m256 *gc, __m256 *gd) {
    __m256 wb = wins(b, a);
    __m256 m = _mm256_blendv_ps(a, b, wb);
    __m256 wc = wins(c, m);
    m = _mm256_blendv_ps(m, c, wc);
    __m256 wd = wins(d, m);
    wc = _mm256_andnot_ps(wd, wc); // a later winner takes it
    wb = _mm256_andnot_ps(_mm256_or_ps(wc, wd), wb);
    __m256 wa = _mm256_andnot_ps(_mm256_or_ps(wb, _mm256_or_ps(wc, wd)), _mm256_castsi256_ps(_mm256_set1_epi32(-1)));
    *ga = _mm256_and_ps(wa, g);
    *gb = _mm256_and_ps(wb, g);
    *gc = _mm256_and_ps(wc, g);
    *gd = _mm256_and_ps(wd, g);
}

// din: (H, W), dout: (OH, OW); the argmax is recomputed from in. A row's last 1-7 outputs (the
// ConvNet's 14 -> 7 planes are nothing else, its 28 -> 14 ones 6 of 14) go through masked loads and
// stores rather than a scalar loop, whose branches on the data mispredicted: that loop made this
// kernel 30% of the ConvNet's training step at AVX2 once its convs ran the direct kernels.
// Benchmarks/maxpool_kernel.c (the ConvNet's two pools at batch 128: 1024 planes of 28x28, 2048 of
// 14x14; thread CPU time, median of 31, Zen 3, shared machine, 3 rounds alternating), backward
// 1.56-1.66 + 1.77-1.84 = 3.32-3.50 ms with the scalar tail -> 0.38-0.59 + 0.34-0.54 = 0.71-1.13 ms
// with masked stores -> 0.19-0.26 + 0.14 = 0.33-0.40 ms storing the tails whole where they stay inside
// the plane (masked 0.68-0.70 in the same 3 rounds); the forward's masked tail (above): 28x28 0.18-0.26
// -> 0.16-0.24 ms, 14x14 0.13-0.21 either way; stored whole: 28x28 0.12-0.16, 14x14 0.09 (masked
// 0.15 and 0.12 in the same rounds).
PLY_TARGET_AVX2 void maxpool2x2_backward_plane_avx2(float *din, const float *in, const float *dout, int64_t H, int64_t W,
                                                    int64_t OH, int64_t OW) {
    if (H != 2 * OH || W != 2 * OW) memset(din, 0, (size_t)(H * W) * sizeof(float));
    for (int64_t oh = 0; oh < OH; oh++) {
        const float *r0 = in + 2 * oh * W, *r1 = r0 + W;
        float *d0 = din + 2 * oh * W, *d1 = d0 + W;
        int64_t ow = OW - OW % 8;
        if (ow < OW) {
            // n = OW - ow outputs: 2n floats of each row, the first 8 under lo and the rest under hi. The
            // lanes past 2n are 0 (the masked loads' zeros give g = 0): each row's 16 floats are stored whole
            // where they end inside the plane, so they land in the odd column or row (zero) or in d1's row and
            // the rows below, written after: this tail before the row pair's full vectors, pairs in order.
            int64_t n = OW - ow;
            __m256i lo = ply_lanes8(2 * n), hi = ply_lanes8(2 * n - 8), mo = ply_lanes8(n);
            __m256 a, b, c, d, ga, gb, gc, gd;
            deinterleave8_regs(_mm256_maskload_ps(r0 + 2 * ow, lo), _mm256_maskload_ps(r0 + 2 * ow + 8, hi), &a, &b);
            deinterleave8_regs(_mm256_maskload_ps(r1 + 2 * ow, lo), _mm256_maskload_ps(r1 + 2 * ow + 8, hi), &c, &d);
            route8(a, b, c, d, _mm256_maskload_ps(dout + oh * OW + ow, mo), &ga, &gb, &gc, &gd);
            interleave8_masked(d0 + 2 * ow, ga, gb, lo, hi, (2 * oh) * W + 2 * ow + 16 <= H * W);
            interleave8_masked(d1 + 2 * ow, gc, gd, lo, hi, (2 * oh + 1) * W + 2 * ow + 16 <= H * W);
        }
        for (ow = 0; ow + 8 <= OW; ow += 8) {
            __m256 a, b, c, d, ga, gb, gc, gd;
            deinterleave8(r0 + 2 * ow, &a, &b);
            deinterleave8(r1 + 2 * ow, &c, &d);
            route8(a, b, c, d, _mm256_loadu_ps(dout + oh * OW + ow), &ga, &gb, &gc, &gd);
            interleave8(d0 + 2 * ow, ga, gb);
            interleave8(d1 + 2 * ow, gc, gd);
        }
    }
}

#endif
