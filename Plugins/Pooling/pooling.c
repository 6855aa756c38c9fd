/*
 * Pooling family: maxpool2d, avgpool2d, adaptive_avgpool2d. No parameters,
 * one input of shape (N, C, H, W) or (C, H, W); every (n, c) plane is pooled
 * on its own, so the kernels work on `planes` = N*C independent H x W images
 * and parallelise over them.
 *
 * Output sizes, window clipping and averaging divisors follow PyTorch exactly
 * (aten/src/ATen/native/Pool.h and the CPU kernels), including ceil_mode's
 * rule that the last window must start inside the input or the left padding.
 */
#include <math.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <stdlib.h>
#include <string.h>

#include "ply/plugin.h"
#include "plugin_support.h"

typedef enum { POOL_MAX, POOL_AVG, POOL_ADAPTIVE_AVG } pool_kind;

struct ply_layer {
    const ply_host *host;
    pool_kind kind;
    int64_t kh, kw;          // kernel (max/avg)
    int64_t sh, sw;          // stride (max/avg)
    int64_t ph, pw;          // padding (max/avg)
    int32_t ceil_mode;       // max/avg
    int32_t count_include_pad; // avg
    int64_t oh, ow;          // output size (adaptive)
    int32_t training;
    // maxpool: flat in-plane argmax (h * W + w) of every output element of the
    // last training forward, for backward. Grown on demand.
    int64_t *argmax;
    int64_t argmax_cap;      // elements allocated
    int64_t argmax_len;      // elements valid (0 = recompute in backward)
};

// Sizes of one call: planes of H x W pooled to OH x OW.
typedef struct {
    int64_t planes, H, W, OH, OW;
} pool_geom;

// ----------------------------------------------------------------------------
// output size (PyTorch's pooling_output_shape with dilation 1)

static int64_t pool_out_size(int64_t in, int64_t k, int64_t s, int64_t p, int ceil_mode) {
    int64_t num = in + 2 * p - k + (ceil_mode ? s - 1 : 0);
    // floor division (num may be negative when the kernel does not fit)
    int64_t q = num / s;
    if ((num % s != 0) && ((num < 0) != (s < 0))) q -= 1;
    int64_t out = q + 1;
    // the last window must start inside the input or the left padding
    if (ceil_mode && (out - 1) * s >= in + p) out -= 1;
    return out;
}

// ----------------------------------------------------------------------------
// kernels: one plane at a time; in is H x W, out is OH x OW

// Max and first argmax (row-major scan) of the window at (oh, ow). Padding
// counts as -inf; a NaN wins, as in PyTorch. Returns the flat index h*W+w.
static int64_t max_window(const float *in, int64_t H, int64_t W, int64_t oh, int64_t ow,
                          int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                          float *maxval) {
    int64_t h0 = oh * sh - ph, w0 = ow * sw - pw;
    int64_t h1 = h0 + kh < H ? h0 + kh : H, w1 = w0 + kw < W ? w0 + kw : W;
    if (h0 < 0) h0 = 0;
    if (w0 < 0) w0 = 0;
    float m = -INFINITY;
    int64_t idx = h0 * W + w0;
    for (int64_t h = h0; h < h1; h++) {
        for (int64_t w = w0; w < w1; w++) {
            float v = in[h * W + w];
            if (v > m || isnan(v)) { m = v; idx = h * W + w; }
        }
    }
    *maxval = m;
    return idx;
}

// The 2x2 / stride 2 / no padding case (the tutorial's pools), branch-free so
// that it vectorises. Same rule as max_window: the first maximum in row-major
// order wins and a NaN wins, so backward can recompute the argmax exactly.
static int is_pool2x2(const ply_layer *p) {
    return p->kh == 2 && p->kw == 2 && p->sh == 2 && p->sw == 2 && p->ph == 0 && p->pw == 0;
}
static inline float take_max(float m, float v) { return (v > m || v != v) ? v : m; }

// out: (OH, OW), in: (H, W) with H >= 2*OH, W >= 2*OW
#if defined(__AVX2__)
// 16 consecutive floats -> their even and odd elements, in order.
static inline void deinterleave8(const float *x, __m256 *even, __m256 *odd) {
    __m256 a = _mm256_loadu_ps(x), b = _mm256_loadu_ps(x + 8);
    *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
    *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
}
// lanes where v replaces the running max m: v > m, or v is NaN
static inline __m256 wins(__m256 v, __m256 m) {
    return _mm256_or_ps(_mm256_cmp_ps(v, m, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}
// even/odd halves back to 16 consecutive floats
static inline void interleave8(float *x, __m256 even, __m256 odd) {
    __m256 lo = _mm256_unpacklo_ps(even, odd), hi = _mm256_unpackhi_ps(even, odd);
    _mm256_storeu_ps(x, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_storeu_ps(x + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
}
#endif

#if defined(__x86_64__)
// AVX-512 versions of the two 2x2 plane kernels: 16 outputs per step, the row's
// tail masked, so that narrow planes (14 -> 7) need no scalar loop. Chosen at
// run time; the AVX2 / scalar kernels below are the fallback.
#define AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))

static int has_avx512(void) {
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
            __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw");
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
}

// lanes where v replaces the running max m: v > m, or v is NaN
AVX512 static inline __mmask16 wins16(__m512 v, __m512 m) {
    return _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
}

// o[i] = take_max(o[i], src[i]) for i < n, 16 at a time (the tail masked)
AVX512 static void max_row512(float *o, const float *src, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 m = _mm512_maskz_loadu_ps(k, o + i), v = _mm512_maskz_loadu_ps(k, src + i);
        _mm512_mask_storeu_ps(o + i, k & wins16(v, m), v);
    }
}

// o[i] = take_max(o[i], src[2*i]) for i < n, 16 at a time: the even lanes of 32 loaded
// (masked to the 2n - 1 floats read, so nothing past src[2n - 2] is touched)
AVX512 static void max_row512_stride2(float *o, const float *src, int64_t n) {
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
AVX512 static inline void row_masks(int64_t n, __mmask16 *out, __mmask16 *lo, __mmask16 *hi) {
    *out = (__mmask16)((1u << n) - 1);
    int64_t k = 2 * n;
    *lo = (__mmask16)(k >= 16 ? 0xFFFFu : (1u << k) - 1);
    *hi = (__mmask16)(k <= 16 ? 0u : (1u << (k - 16)) - 1);
}

// 2n consecutive floats at x -> even and odd elements
AVX512 static inline void split16(const float *x, __mmask16 lo, __mmask16 hi, __m512 *even, __m512 *odd) {
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    __m512 a = _mm512_maskz_loadu_ps(lo, x), b = _mm512_maskz_loadu_ps(hi, x + 16);
    *even = _mm512_permutex2var_ps(a, ie, b);
    *odd = _mm512_permutex2var_ps(a, io, b);
}

AVX512 static void maxpool2x2_forward_plane512(float *out, const float *in, int64_t W, int64_t OH, int64_t OW) {
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

AVX512 static void maxpool2x2_backward_plane512(float *din, const float *in, const float *dout, int64_t H, int64_t W,
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
#else
static int has_avx512(void) { return 0; }
static void max_row512(float *o, const float *src, int64_t n) { (void)o; (void)src; (void)n; }
static void max_row512_stride2(float *o, const float *src, int64_t n) { (void)o; (void)src; (void)n; }
static void maxpool2x2_forward_plane512(float *out, const float *in, int64_t W, int64_t OH, int64_t OW) {
    (void)out; (void)in; (void)W; (void)OH; (void)OW;
}
static void maxpool2x2_backward_plane512(float *din, const float *in, const float *dout, int64_t H, int64_t W,
                                         int64_t OH, int64_t OW) {
    (void)din; (void)in; (void)dout; (void)H; (void)W; (void)OH; (void)OW;
}
#endif

static void maxpool2x2_forward_plane(float *out, const float *in, int64_t W, int64_t OH, int64_t OW) {
    for (int64_t oh = 0; oh < OH; oh++) {
        const float *r0 = in + 2 * oh * W, *r1 = r0 + W;
        float *o = out + oh * OW;
        int64_t ow = 0;
#if defined(__AVX2__)
        for (; ow + 8 <= OW; ow += 8) {
            __m256 a, b, c, d;
            deinterleave8(r0 + 2 * ow, &a, &b);
            deinterleave8(r1 + 2 * ow, &c, &d);
            __m256 m = _mm256_blendv_ps(a, b, wins(b, a));
            m = _mm256_blendv_ps(m, c, wins(c, m));
            m = _mm256_blendv_ps(m, d, wins(d, m));
            _mm256_storeu_ps(o + ow, m);
        }
#endif
        for (; ow < OW; ow++) {
            float m = take_max(take_max(take_max(r0[2 * ow], r0[2 * ow + 1]), r1[2 * ow]), r1[2 * ow + 1]);
            o[ow] = m;
        }
    }
}

// din: (H, W), dout: (OH, OW); the argmax is recomputed from in
static void maxpool2x2_backward_plane(float *din, const float *in, const float *dout, int64_t H, int64_t W,
                                      int64_t OH, int64_t OW) {
    if (H != 2 * OH || W != 2 * OW) memset(din, 0, (size_t)(H * W) * sizeof(float));
    for (int64_t oh = 0; oh < OH; oh++) {
        const float *r0 = in + 2 * oh * W, *r1 = r0 + W;
        float *d0 = din + 2 * oh * W, *d1 = d0 + W;
        int64_t ow = 0;
#if defined(__AVX2__)
        for (; ow + 8 <= OW; ow += 8) {
            __m256 a, b, c, d;
            deinterleave8(r0 + 2 * ow, &a, &b);
            deinterleave8(r1 + 2 * ow, &c, &d);
            __m256 wb = wins(b, a);
            __m256 m = _mm256_blendv_ps(a, b, wb);
            __m256 wc = wins(c, m);
            m = _mm256_blendv_ps(m, c, wc);
            __m256 wd = wins(d, m);
            wc = _mm256_andnot_ps(wd, wc);                      // a later winner takes it
            wb = _mm256_andnot_ps(_mm256_or_ps(wc, wd), wb);
            __m256 wa = _mm256_andnot_ps(_mm256_or_ps(wb, _mm256_or_ps(wc, wd)), _mm256_castsi256_ps(_mm256_set1_epi32(-1)));
            __m256 g = _mm256_loadu_ps(dout + oh * OW + ow);
            interleave8(d0 + 2 * ow, _mm256_and_ps(wa, g), _mm256_and_ps(wb, g));
            interleave8(d1 + 2 * ow, _mm256_and_ps(wc, g), _mm256_and_ps(wd, g));
        }
#endif
        for (; ow < OW; ow++) {
            float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
            float m = a;
            int k = 0;
            if (b > m || b != b) { m = b; k = 1; }
            if (c > m || c != c) { m = c; k = 2; }
            if (d > m || d != d) { k = 3; }
            float g = dout[oh * OW + ow];
            d0[2 * ow] = k == 0 ? g : 0.0f;
            d0[2 * ow + 1] = k == 1 ? g : 0.0f;
            d1[2 * ow] = k == 2 ? g : 0.0f;
            d1[2 * ow + 1] = k == 3 ? g : 0.0f;
        }
    }
}

// out: (OH, OW), argmax: (OH, OW) or NULL, in: (H, W)
static void maxpool2d_forward_plane(float *out, int64_t *argmax, const float *in, int64_t H, int64_t W,
                                    int64_t OH, int64_t OW, const ply_layer *p) {
    for (int64_t oh = 0; oh < OH; oh++) {
        for (int64_t ow = 0; ow < OW; ow++) {
            float m;
            int64_t idx = max_window(in, H, W, oh, ow, p->kh, p->kw, p->sh, p->sw, p->ph, p->pw, &m);
            out[oh * OW + ow] = m;
            if (argmax) argmax[oh * OW + ow] = idx;
        }
    }
}

// Output columns ow in [*lo, *hi) whose input column ow*S - P + k lies in [0, W).
static void column_range(int64_t k, int64_t S, int64_t P, int64_t W, int64_t OW, int64_t *lo, int64_t *hi) {
    int64_t a = P - k, b = W + P - k; // a <= ow*S < b
    int64_t l = a <= 0 ? 0 : (a + S - 1) / S;
    int64_t h = b <= 0 ? 0 : (b + S - 1) / S;
    if (h > OW) h = OW;
    if (l > h) l = h;
    *lo = l; *hi = h;
}

// The same maxima without argmax (inference), a row of outputs at a time: for each window row
// and kernel column, one pass over the output row that vectorises (stride 1). Max is
// order-free and a NaN stays once taken, so the values equal max_window's.
static void maxpool2d_forward_plane_values(float *out, const float *in, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                           const ply_layer *p, int avx512) {
    for (int64_t oh = 0; oh < OH; oh++) {
        float *o = out + oh * OW;
        int64_t h0 = oh * p->sh - p->ph, h1 = h0 + p->kh < H ? h0 + p->kh : H;
        if (h0 < 0) h0 = 0;
        for (int64_t ow = 0; ow < OW; ow++) o[ow] = -INFINITY;
        for (int64_t h = h0; h < h1; h++) {
            for (int64_t kj = 0; kj < p->kw; kj++) {
                int64_t lo, hi;
                column_range(kj, p->sw, p->pw, W, OW, &lo, &hi);
                const float *src = in + h * W + kj - p->pw;
                if (p->sw == 1 && avx512) {
                    max_row512(o + lo, src + lo, hi - lo);
                } else if (p->sw == 2 && avx512) {
                    max_row512_stride2(o + lo, src + 2 * lo, hi - lo);
                } else if (p->sw == 1) {
                    for (int64_t ow = lo; ow < hi; ow++) o[ow] = take_max(o[ow], src[ow]);
                } else {
                    for (int64_t ow = lo; ow < hi; ow++) o[ow] = take_max(o[ow], src[ow * p->sw]);
                }
            }
        }
    }
}

#if defined(__x86_64__)
#define VALUES_MAX_KW 16
// maxpool2d_forward_plane_values for column strides 1 and 2 with AVX-512: 16 outputs of a row at
// a time, every tap of their windows taken into registers (masked to the taps inside the row)
// and one store, where the row passes load and store the outputs once per tap. 0 when it does
// not apply (wider kernels, other strides).
AVX512 static int maxpool2d_forward_plane_values512(float *out, const float *in, int64_t H, int64_t W, int64_t OH,
                                                    int64_t OW, const ply_layer *p) {
    const int64_t S = p->sw;
    if ((S != 1 && S != 2) || p->kw > VALUES_MAX_KW) return 0;
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    int64_t lo[VALUES_MAX_KW], hi[VALUES_MAX_KW];
    for (int64_t kj = 0; kj < p->kw; kj++) column_range(kj, S, p->pw, W, OW, &lo[kj], &hi[kj]);
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

// maxpool2d_forward_plane for strides 1 and 2 with AVX-512, a row of outputs at a time: the
// window's taps in row-major order, each one vector pass over the outputs it reaches. The rule
// is max_window's (a larger value or a NaN replaces the running max; a window of -inf keeps its
// first valid tap), so maxima and argmax are the same. 0 when it does not apply.
#define ARGMAX_ROW 1024
AVX512 static int maxpool2d_forward_plane_argmax512(float *out, int64_t *argmax, const float *in, int64_t H,
                                                    int64_t W, int64_t OH, int64_t OW, const ply_layer *p) {
    if ((p->sw != 1 && p->sw != 2) || OW > ARGMAX_ROW || H * W >= (1 << 30)) return 0;
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
                column_range(kj, p->sw, p->pw, W, OW, &lo, &hi);
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
#else
static int maxpool2d_forward_plane_values512(float *out, const float *in, int64_t H, int64_t W, int64_t OH,
                                             int64_t OW, const ply_layer *p) {
    (void)out; (void)in; (void)H; (void)W; (void)OH; (void)OW; (void)p;
    return 0;
}
static int maxpool2d_forward_plane_argmax512(float *out, int64_t *argmax, const float *in, int64_t H, int64_t W,
                                             int64_t OH, int64_t OW, const ply_layer *p) {
    (void)out; (void)argmax; (void)in; (void)H; (void)W; (void)OH; (void)OW; (void)p;
    return 0;
}
#endif

// din: (H, W), dout: (OH, OW); argmax from forward, or NULL to recompute from in
static void maxpool2d_backward_plane(float *din, const int64_t *argmax, const float *in, const float *dout,
                                     int64_t H, int64_t W, int64_t OH, int64_t OW, const ply_layer *p) {
    memset(din, 0, (size_t)(H * W) * sizeof(float));
    for (int64_t oh = 0; oh < OH; oh++) {
        for (int64_t ow = 0; ow < OW; ow++) {
            int64_t idx;
            if (argmax) {
                idx = argmax[oh * OW + ow];
            } else {
                float m;
                idx = max_window(in, H, W, oh, ow, p->kh, p->kw, p->sh, p->sw, p->ph, p->pw, &m);
            }
            din[idx] += dout[oh * OW + ow];
        }
    }
}

// Clipped window [*h0, *h1) x [*w0, *w1) of avg pooling at (oh, ow) and its
// divisor. The divisor counts padding (but not the ceil_mode overhang past
// H + pad) when count_include_pad, else only the real input elements.
static float avg_window(int64_t H, int64_t W, int64_t oh, int64_t ow, const ply_layer *p,
                        int64_t *h0, int64_t *h1, int64_t *w0, int64_t *w1) {
    int64_t hs = oh * p->sh - p->ph, ws = ow * p->sw - p->pw;
    int64_t he = hs + p->kh < H + p->ph ? hs + p->kh : H + p->ph;
    int64_t we = ws + p->kw < W + p->pw ? ws + p->kw : W + p->pw;
    int64_t pool_size = (he - hs) * (we - ws);
    if (hs < 0) hs = 0;
    if (ws < 0) ws = 0;
    if (he > H) he = H;
    if (we > W) we = W;
    *h0 = hs; *h1 = he; *w0 = ws; *w1 = we;
    if (hs >= he || ws >= we) return 0.0f; // empty window: output 0
    return (float)(p->count_include_pad ? pool_size : (he - hs) * (we - ws));
}

// out: (OH, OW), in: (H, W). A row of outputs at a time, each window summed in the order of
// avg_window's loops (rows, then columns), so the sums are bit-identical to the plain loop.
static void avgpool2d_forward_plane(float *out, const float *in, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                    const ply_layer *p) {
    for (int64_t oh = 0; oh < OH; oh++) {
        float *o = out + oh * OW;
        int64_t h0, h1, w0, w1;
        avg_window(H, W, oh, 0, p, &h0, &h1, &w0, &w1); // the window rows are the same for the whole row
        for (int64_t ow = 0; ow < OW; ow++) o[ow] = 0.0f;
        for (int64_t h = h0; h < h1; h++) {
            for (int64_t kj = 0; kj < p->kw; kj++) {
                int64_t lo, hi;
                column_range(kj, p->sw, p->pw, W, OW, &lo, &hi);
                const float *src = in + h * W + kj - p->pw;
                if (p->sw == 1) {
                    for (int64_t ow = lo; ow < hi; ow++) o[ow] += src[ow];
                } else {
                    for (int64_t ow = lo; ow < hi; ow++) o[ow] += src[ow * p->sw];
                }
            }
        }
        // avg_window's divisor, split into its row and column factors so that this loop vectorises
        int64_t hs = oh * p->sh - p->ph, he = hs + p->kh < H + p->ph ? hs + p->kh : H + p->ph;
        int64_t rows = (he < H ? he : H) - (hs > 0 ? hs : 0), rows_pad = he - hs;
        for (int64_t ow = 0; ow < OW; ow++) {
            int64_t ws = ow * p->sw - p->pw, we = ws + p->kw < W + p->pw ? ws + p->kw : W + p->pw;
            int64_t cols = (we < W ? we : W) - (ws > 0 ? ws : 0);
            float div = (float)(p->count_include_pad ? rows_pad * (we - ws) : rows * cols);
            o[ow] = rows > 0 && cols > 0 ? o[ow] / div : 0.0f;
        }
    }
}

// din: (H, W), dout: (OH, OW)
static void avgpool2d_backward_plane(float *din, const float *dout, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                     const ply_layer *p) {
    memset(din, 0, (size_t)(H * W) * sizeof(float));
    for (int64_t oh = 0; oh < OH; oh++) {
        for (int64_t ow = 0; ow < OW; ow++) {
            int64_t h0, h1, w0, w1;
            float div = avg_window(H, W, oh, ow, p, &h0, &h1, &w0, &w1);
            if (div <= 0.0f) continue;
            float g = dout[oh * OW + ow] / div;
            for (int64_t h = h0; h < h1; h++)
                for (int64_t w = w0; w < w1; w++) din[h * W + w] += g;
        }
    }
}

// Adaptive windows: start = floor(i * in / out), end = ceil((i + 1) * in / out).
static int64_t adaptive_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
static int64_t adaptive_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

// out: (OH, OW), in: (H, W)
static void adaptive_avgpool2d_forward_plane(float *out, const float *in, int64_t H, int64_t W, int64_t OH,
                                             int64_t OW) {
    for (int64_t oh = 0; oh < OH; oh++) {
        int64_t h0 = adaptive_start(oh, H, OH), h1 = adaptive_end(oh, H, OH);
        for (int64_t ow = 0; ow < OW; ow++) {
            int64_t w0 = adaptive_start(ow, W, OW), w1 = adaptive_end(ow, W, OW);
            float sum = 0.0f;
            for (int64_t h = h0; h < h1; h++)
                for (int64_t w = w0; w < w1; w++) sum += in[h * W + w];
            out[oh * OW + ow] = sum / (float)((h1 - h0) * (w1 - w0));
        }
    }
}

// din: (H, W), dout: (OH, OW)
static void adaptive_avgpool2d_backward_plane(float *din, const float *dout, int64_t H, int64_t W, int64_t OH,
                                              int64_t OW) {
    memset(din, 0, (size_t)(H * W) * sizeof(float));
    for (int64_t oh = 0; oh < OH; oh++) {
        int64_t h0 = adaptive_start(oh, H, OH), h1 = adaptive_end(oh, H, OH);
        for (int64_t ow = 0; ow < OW; ow++) {
            int64_t w0 = adaptive_start(ow, W, OW), w1 = adaptive_end(ow, W, OW);
            float g = dout[oh * OW + ow] / (float)((h1 - h0) * (w1 - w0));
            for (int64_t h = h0; h < h1; h++)
                for (int64_t w = w0; w < w1; w++) din[h * W + w] += g;
        }
    }
}

// ----------------------------------------------------------------------------
// parallel driver over planes

typedef struct {
    const ply_layer *layer;
    pool_geom g;
    int backward;
    float *dst;          // forward: output, backward: grad_input
    const float *src;    // forward: input,  backward: grad_output
    const float *in;     // backward (maxpool recompute): input
    int64_t *argmax_out; // forward (maxpool, training)
    const int64_t *argmax_in; // backward (maxpool)
    int avx512;          // 2x2 max pool: use the AVX-512 kernels
} pool_job;

static void pool_run(void *ctx, int64_t begin, int64_t end) {
    const pool_job *j = ctx;
    const ply_layer *p = j->layer;
    int64_t H = j->g.H, W = j->g.W, OH = j->g.OH, OW = j->g.OW;
    int64_t in_sz = H * W, out_sz = OH * OW;
    for (int64_t c = begin; c < end; c++) {
        if (!j->backward) {
            float *out = j->dst + c * out_sz;
            const float *in = j->src + c * in_sz;
            switch (p->kind) {
            case POOL_MAX:
                if (is_pool2x2(p) && j->avx512) maxpool2x2_forward_plane512(out, in, W, OH, OW);
                else if (is_pool2x2(p)) maxpool2x2_forward_plane(out, in, W, OH, OW);
                else if (!j->argmax_out) {
                    if (!j->avx512 || !maxpool2d_forward_plane_values512(out, in, H, W, OH, OW, p))
                        maxpool2d_forward_plane_values(out, in, H, W, OH, OW, p, j->avx512);
                }
                else if (!j->avx512 ||
                         !maxpool2d_forward_plane_argmax512(out, j->argmax_out + c * out_sz, in, H, W, OH, OW, p))
                    maxpool2d_forward_plane(out, j->argmax_out + c * out_sz, in, H, W, OH, OW, p);
                break;
            case POOL_AVG: avgpool2d_forward_plane(out, in, H, W, OH, OW, p); break;
            case POOL_ADAPTIVE_AVG: adaptive_avgpool2d_forward_plane(out, in, H, W, OH, OW); break;
            }
        } else {
            float *din = j->dst + c * in_sz;
            const float *dout = j->src + c * out_sz;
            switch (p->kind) {
            case POOL_MAX:
                if (is_pool2x2(p) && j->avx512) {
                    maxpool2x2_backward_plane512(din, j->in + c * in_sz, dout, H, W, OH, OW);
                    break;
                }
                if (is_pool2x2(p)) { maxpool2x2_backward_plane(din, j->in + c * in_sz, dout, H, W, OH, OW); break; }
                maxpool2d_backward_plane(din, j->argmax_in ? j->argmax_in + c * out_sz : NULL, j->in + c * in_sz,
                                         dout, H, W, OH, OW, p);
                break;
            case POOL_AVG: avgpool2d_backward_plane(din, dout, H, W, OH, OW, p); break;
            case POOL_ADAPTIVE_AVG: adaptive_avgpool2d_backward_plane(din, dout, H, W, OH, OW); break;
            }
        }
    }
}

// Run the job over all planes, on the host's pool when there is enough work.
static void pool_dispatch(const ply_layer *self, pool_job *job) {
    job->avx512 = has_avx512();
    const pool_geom *g = &job->g;
    int64_t per_plane = g->H * g->W + g->OH * g->OW * (self->kind == POOL_ADAPTIVE_AVG ? 1 : self->kh * self->kw);
    if (per_plane < 1) per_plane = 1;
    const int64_t min_chunk_work = 1 << 15;
    if (g->planes * per_plane < 2 * min_chunk_work || self->host->thread_count(self->host) <= 1) {
        pool_run(job, 0, g->planes);
        return;
    }
    int64_t grain = min_chunk_work / per_plane;
    if (grain < 1) grain = 1;
    self->host->parallel_for(self->host, g->planes, grain, pool_run, job);
}

// ----------------------------------------------------------------------------
// vtable

static const char *kind_name(pool_kind k) {
    return k == POOL_MAX ? "maxpool2d" : k == POOL_AVG ? "avgpool2d" : "adaptive_avgpool2d";
}

// Does attribute `name` exist at all (whatever its kind)?
static const ply_attr *find_attr(const ply_attrs *attrs, const char *name) {
    if (!attrs) return NULL;
    for (int32_t i = 0; i < attrs->count; i++)
        if (attrs->items[i].name && strcmp(attrs->items[i].name, name) == 0) return &attrs->items[i];
    return NULL;
}

// Read a pair attribute; absent (or an empty list, PyTorch's "default") keeps *out.
static ply_status read_pair(const ply_host *host, const ply_attrs *attrs, const char *name, int64_t out[2]) {
    const ply_attr *a = find_attr(attrs, name);
    if (a && a->kind == PLY_ATTR_INTS && a->count == 0) return PLY_OK;
    ply_status st = host->attr_pair(host, attrs, name, out);
    return st == PLY_ERR_NOT_FOUND ? PLY_OK : st;
}

static ply_status read_flag(const ply_host *host, const ply_attrs *attrs, const char *name, int32_t *out) {
    ply_status st = host->attr_bool(host, attrs, name, out);
    return st == PLY_ERR_NOT_FOUND ? PLY_OK : st;
}

static ply_status create_window_pool(const ply_host *host, const ply_attrs *attrs, ply_layer *self) {
    const char *nm = kind_name(self->kind);
    int64_t k[2], s[2], p[2] = {0, 0};
    ply_status st = host->attr_pair(host, attrs, "kernel_size", k);
    if (st == PLY_ERR_NOT_FOUND) return ply_errorf(host, PLY_ERR_NOT_FOUND, "%s: missing attribute 'kernel_size'", nm);
    if (st != PLY_OK) return st;
    s[0] = k[0]; s[1] = k[1];
    if ((st = read_pair(host, attrs, "stride", s)) != PLY_OK) return st;
    if ((st = read_pair(host, attrs, "padding", p)) != PLY_OK) return st;
    if ((st = read_flag(host, attrs, "ceil_mode", &self->ceil_mode)) != PLY_OK) return st;
    if (k[0] <= 0 || k[1] <= 0)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "%s: kernel_size must be positive (got %lld x %lld)", nm,
                          (long long)k[0], (long long)k[1]);
    if (s[0] <= 0 || s[1] <= 0)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "%s: stride must be positive (got %lld x %lld)", nm,
                          (long long)s[0], (long long)s[1]);
    if (p[0] < 0 || p[1] < 0)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "%s: padding must be non-negative (got %lld x %lld)", nm,
                          (long long)p[0], (long long)p[1]);
    if (p[0] > k[0] / 2 || p[1] > k[1] / 2)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                          "%s: padding must be at most half the kernel size (got padding %lld x %lld, kernel_size "
                          "%lld x %lld)",
                          nm, (long long)p[0], (long long)p[1], (long long)k[0], (long long)k[1]);
    if (self->kind == POOL_MAX) {
        int64_t d[2] = {1, 1};
        if ((st = read_pair(host, attrs, "dilation", d)) != PLY_OK) return st;
        if (d[0] != 1 || d[1] != 1)
            return ply_errorf(host, PLY_ERR_UNSUPPORTED, "maxpool2d: only dilation 1 is supported (got %lld x %lld)",
                              (long long)d[0], (long long)d[1]);
        int32_t ri = 0;
        if ((st = read_flag(host, attrs, "return_indices", &ri)) != PLY_OK) return st;
        if (ri) return ply_errorf(host, PLY_ERR_UNSUPPORTED, "maxpool2d: return_indices=true is not supported");
    } else {
        self->count_include_pad = 1;
        if ((st = read_flag(host, attrs, "count_include_pad", &self->count_include_pad)) != PLY_OK) return st;
        const ply_attr *dv = find_attr(attrs, "divisor_override");
        if (dv && dv->kind != PLY_ATTR_STRING) // a string would be a serialised "None"
            return ply_errorf(host, PLY_ERR_UNSUPPORTED, "avgpool2d: divisor_override is not supported");
    }
    self->kh = k[0]; self->kw = k[1];
    self->sh = s[0]; self->sw = s[1];
    self->ph = p[0]; self->pw = p[1];
    return PLY_OK;
}

static ply_status create_kind(const ply_host *host, const ply_attrs *attrs, ply_layer **out, pool_kind kind) {
    ply_layer *self = host->alloc(host, sizeof *self);
    if (!self) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "%s: out of memory", kind_name(kind));
    memset(self, 0, sizeof *self);
    self->host = host;
    self->kind = kind;
    self->training = 1;
    ply_status st;
    if (kind == POOL_ADAPTIVE_AVG) {
        int64_t os[2];
        st = host->attr_pair(host, attrs, "output_size", os);
        if (st == PLY_ERR_NOT_FOUND)
            st = ply_errorf(host, PLY_ERR_NOT_FOUND, "adaptive_avgpool2d: missing attribute 'output_size'");
        else if (st == PLY_OK && (os[0] <= 0 || os[1] <= 0))
            st = ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                            "adaptive_avgpool2d: output_size must be positive (got %lld x %lld)", (long long)os[0],
                            (long long)os[1]);
        self->oh = os[0];
        self->ow = os[1];
    } else {
        st = create_window_pool(host, attrs, self);
    }
    if (st != PLY_OK) {
        host->free(host, self);
        return st;
    }
    *out = self;
    return PLY_OK;
}

#define DEFINE_CREATE(fn, kind) \
    static ply_status fn(const ply_host *host, const ply_attrs *attrs, ply_layer **out) { \
        return create_kind(host, attrs, out, kind); \
    }
DEFINE_CREATE(maxpool2d_create, POOL_MAX)
DEFINE_CREATE(avgpool2d_create, POOL_AVG)
DEFINE_CREATE(adaptive_avgpool2d_create, POOL_ADAPTIVE_AVG)

static void pool_destroy(ply_layer *self) {
    if (!self) return;
    self->host->free(self->host, self->argmax);
    self->host->free(self->host, self);
}

static void pool_set_training(ply_layer *self, int32_t training) { self->training = training != 0; }

// Check the input shape and compute the geometry of the call.
static ply_status pool_geometry(const ply_layer *self, const ply_shape *s, pool_geom *g) {
    const char *nm = kind_name(self->kind);
    if (s->ndim != 3 && s->ndim != 4)
        return ply_errorf(self->host, PLY_ERR_SHAPE, "%s: input must be 3-d (C, H, W) or 4-d (N, C, H, W) (got %d-d)",
                          nm, s->ndim);
    static const char *const dim_names[] = {"N", "C", "H", "W"};
    for (int32_t i = s->ndim == 4 ? 1 : 0; i < s->ndim; i++) {
        if (s->dims[i] <= 0)
            return ply_errorf(self->host, PLY_ERR_SHAPE, "%s: input 0 dimension %d (%s) must be non-zero (got %lld)", nm,
                              i, dim_names[i + 4 - s->ndim], (long long)s->dims[i]);
    }
    int32_t hd = s->ndim - 2, wd = s->ndim - 1;
    g->H = s->dims[hd];
    g->W = s->dims[wd];
    g->planes = s->dims[0] * (s->ndim == 4 ? s->dims[1] : 1);
    if (self->kind == POOL_ADAPTIVE_AVG) {
        g->OH = self->oh;
        g->OW = self->ow;
        return PLY_OK;
    }
    int64_t in[2] = {g->H, g->W}, k[2] = {self->kh, self->kw}, pad[2] = {self->ph, self->pw};
    for (int i = 0; i < 2; i++) {
        if (in[i] + 2 * pad[i] < k[i])
            return ply_errorf(self->host, PLY_ERR_SHAPE,
                              "%s: input 0 dimension %d (%s) is %lld, %lld with padding, smaller than kernel_size "
                              "%lld",
                              nm, s->ndim - 2 + i, i ? "W" : "H", (long long)in[i], (long long)(in[i] + 2 * pad[i]),
                              (long long)k[i]);
    }
    g->OH = pool_out_size(g->H, self->kh, self->sh, self->ph, self->ceil_mode);
    g->OW = pool_out_size(g->W, self->kw, self->sw, self->pw, self->ceil_mode);
    if (g->OH < 1 || g->OW < 1)
        return ply_errorf(self->host, PLY_ERR_SHAPE, "%s: output size %lld x %lld is too small for input %lld x %lld",
                          nm, (long long)g->OH, (long long)g->OW, (long long)g->H, (long long)g->W);
    return PLY_OK;
}

static ply_status pool_infer_shape(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, ply_shape *output) {
    (void)n_inputs;
    pool_geom g = {0, 0, 0, 0, 0};
    ply_status st = pool_geometry(self, &inputs[0], &g);
    if (st != PLY_OK) return st;
    *output = inputs[0];
    output->dims[output->ndim - 2] = g.OH;
    output->dims[output->ndim - 1] = g.OW;
    return PLY_OK;
}

static ply_status check_compact(const ply_layer *self, const ply_tensor *t, const char *what) {
    if (t->strides || t->dtype != PLY_DTYPE_F32)
        return ply_errorf(self->host, PLY_ERR_UNSUPPORTED, "%s: %s must be a compact float32 tensor",
                          kind_name(self->kind), what);
    return PLY_OK;
}

static ply_status pool_forward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output) {
    (void)n_inputs;
    pool_geom g = {0, 0, 0, 0, 0};
    ply_status st = check_compact(self, &inputs[0], "input");
    if (st == PLY_OK) st = pool_geometry(self, &inputs[0].shape, &g);
    if (st != PLY_OK) return st;
    pool_job job = {self, g, 0, output->data, inputs[0].data, NULL, NULL, NULL};
    self->argmax_len = 0;
    if (self->kind == POOL_MAX && self->training && !is_pool2x2(self)) {
        int64_t n = g.planes * g.OH * g.OW;
        if (n > self->argmax_cap) {
            int64_t *a = self->host->alloc(self->host, (size_t)n * sizeof(int64_t));
            if (!a) return ply_errorf(self->host, PLY_ERR_OUT_OF_MEMORY, "maxpool2d: out of memory for argmax");
            self->host->free(self->host, self->argmax);
            self->argmax = a;
            self->argmax_cap = n;
        }
        job.argmax_out = self->argmax;
    }
    pool_dispatch(self, &job);
    if (job.argmax_out) self->argmax_len = g.planes * g.OH * g.OW;
    return PLY_OK;
}

static ply_status pool_backward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, const ply_tensor *output,
                                const ply_tensor *grad_output, ply_tensor *grad_inputs) {
    (void)n_inputs;
    (void)output;
    if (!grad_inputs[0].data) return PLY_OK;
    pool_geom g = {0, 0, 0, 0, 0};
    ply_status st = pool_geometry(self, &inputs[0].shape, &g);
    if (st != PLY_OK) return st;
    pool_job job = {self, g, 1, grad_inputs[0].data, grad_output->data, inputs[0].data, NULL, NULL};
    // argmax from the last forward when it matches this call; else recompute from the input
    if (self->kind == POOL_MAX && self->argmax_len == g.planes * g.OH * g.OW) job.argmax_in = self->argmax;
    pool_dispatch(self, &job);
    return PLY_OK;
}

// ----------------------------------------------------------------------------
// self-description (ABI 1.2)

#define POOL_STRIDE_SPEC PLY_SPEC_STRIDE(NULL, "input pixels between neighbouring windows: an int or [sh, sw]; " \
                                               "absent or [] means kernel_size")
#define POOL_CEIL_MODE_SPEC                                               \
    {.name = "ceil_mode", .kind = PLY_ATTR_BOOL, .default_text = "false", \
     .doc = "round the output size up, so a last partial window counts"}

static const ply_attr_spec maxpool_specs[] = {
    PLY_SPEC_KERNEL_SIZE,
    POOL_STRIDE_SPEC,
    PLY_SPEC_PADDING,
    PLY_SPEC_DILATION("spacing between window taps: an int or [dh, dw]; only 1 is supported"),
    POOL_CEIL_MODE_SPEC,
    {.name = "return_indices", .kind = PLY_ATTR_BOOL, .default_text = "false",
     .doc = "also return the argmax indices; only false is supported"},
    PLY_SPEC_END,
};

static const ply_attr_spec avgpool_specs[] = {
    PLY_SPEC_KERNEL_SIZE,
    POOL_STRIDE_SPEC,
    PLY_SPEC_PADDING,
    POOL_CEIL_MODE_SPEC,
    {.name = "count_include_pad", .kind = PLY_ATTR_BOOL, .default_text = "true",
     .doc = "count the zero padding in the divisor of each average"},
    {.name = "divisor_override", .kind = PLY_ATTR_STRING, .default_text = NULL,
     .doc = "PyTorch's fixed divisor; only None (absent, or the string a serialised None gives) is supported"},
    PLY_SPEC_END,
};

static const ply_attr_spec adaptive_specs[] = {
    {.name = "output_size", .kind = PLY_ATTR_INTS, .flags = PLY_ATTR_REQUIRED | PLY_ATTR_PAIR,
     .doc = "output height and width: an int or [oh, ow]"},
    PLY_SPEC_END,
};

// The largest window adaptive pooling uses along an axis of n inputs pooled to o outputs: output i spans
// [floor(i*n/o), ceil((i+1)*n/o)).
static double adaptive_window(int64_t n, int64_t o) {
    int64_t w = 0;
    for (int64_t i = 0; i < o; i++) {
        int64_t start = i * n / o, end = ((i + 1) * n + o - 1) / o;
        if (end - start > w) w = end - start;
    }
    return (double)w;
}

// No MACs (pooling counts 0). Window: the kernel and stride (dilation is 1); adaptive pooling its largest
// window and the fractional stride in/out, or global when it pools to 1x1.
static ply_status pool_describe(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, ply_layer_info *info) {
    (void)n_inputs;
    pool_geom g = {0, 0, 0, 0, 0};
    ply_status st = pool_geometry(self, &inputs[0], &g);
    if (st != PLY_OK) return st;
    if (self->kind != POOL_ADAPTIVE_AVG) {
        ply_info_set_window(info, ply_window_make((double)self->kh, (double)self->kw, (double)self->sh,
                                                  (double)self->sw));
    } else if (g.OH == 1 && g.OW == 1) {
        ply_info_set_global(info);
    } else {
        ply_info_set_window(info, ply_window_make(adaptive_window(g.H, g.OH), adaptive_window(g.W, g.OW),
                                                  (double)g.H / (double)g.OH, (double)g.W / (double)g.OW));
    }
    return PLY_OK;
}

#define POOL_TYPE(var, type_name, type_doc, create_fn, specs) \
    static const ply_layer_type var = { \
        .struct_size = sizeof(ply_layer_type), \
        .abi_version = PLY_ABI_VERSION, \
        .name = type_name, \
        .doc = type_doc, \
        .min_inputs = 1, \
        .max_inputs = 1, \
        .create = create_fn, \
        .destroy = pool_destroy, \
        .infer_shape = pool_infer_shape, \
        .forward = pool_forward, \
        .backward = pool_backward, \
        .set_training = pool_set_training, \
        .attr_specs = specs, \
        .inputs_doc = "x: (N, C, H, W) or (C, H, W)", \
        .describe = pool_describe, \
    };
POOL_TYPE(maxpool2d_type, "maxpool2d",
          "2-d max pooling: kernel_size, stride (= kernel_size), padding (0), ceil_mode (false)", maxpool2d_create,
          maxpool_specs)
POOL_TYPE(avgpool2d_type, "avgpool2d",
          "2-d average pooling: kernel_size, stride (= kernel_size), padding (0), ceil_mode (false), "
          "count_include_pad (true)",
          avgpool2d_create, avgpool_specs)
POOL_TYPE(adaptive_avgpool2d_type, "adaptive_avgpool2d",
          "2-d adaptive average pooling to output_size (int or pair)", adaptive_avgpool2d_create, adaptive_specs)

static const ply_layer_type *const types[] = {&maxpool2d_type, &avgpool2d_type, &adaptive_avgpool2d_type};

static const ply_plugin plugin = {
    sizeof(ply_plugin), PLY_ABI_VERSION, "ply.pooling", "1.0.0", 3, 0, types,
};

PLY_BUILTIN_ENTRY(pooling) {
    if (PLY_ABI_MAJOR_OF(host->abi_version) != PLY_ABI_VERSION_MAJOR) {
        host->set_error(host, PLY_ERR_ABI, "ply.pooling: host ABI major version differs from the plugin's (1)");
        return NULL;
    }
    return &plugin;
}
