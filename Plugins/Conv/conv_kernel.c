/*
 * The forward convolution's product and the general product with an AVX-512 micro-kernel (see conv_kernel.h).
 */
#include "plugin_support.h"

#include "conv_kernel.h"

#include <string.h>

#include "plugin_blas.h"

#define NR CONV_KERNEL_NR
#define MR 8
// Rows of K per pass: a strip's block (KC x NR floats, 32 KB) stays in L1 while the 8-row
// blocks of weights (KC x 8 each, from L2) stream past it.
#define KC 256

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>

#include "plugin_simd.h"

// c[r][0:NR] (masked by m0, m1) = (first ? bias[r] (0 without bias) : c[r]) + acc[2r], acc[2r + 1] for r < R.
PLY_TARGET_AVX512 static inline __attribute__((always_inline)) void finish(const int R, const __m512 *acc, float *c,
                                                                          int64_t ldc, __mmask16 m0, __mmask16 m1,
                                                                          int first, const float *bias) {
    for (int r = 0; r < R; r++) {
        float *cr = c + r * ldc;
        __m512 s0, s1;
        if (first) {
            s0 = s1 = _mm512_set1_ps(bias ? bias[r] : 0.0f);
        } else {
            s0 = _mm512_maskz_loadu_ps(m0, cr);
            s1 = _mm512_maskz_loadu_ps(m1, cr + 16);
        }
        _mm512_mask_storeu_ps(cr, m0, _mm512_add_ps(acc[2 * r], s0));
        _mm512_mask_storeu_ps(cr + 16, m1, _mm512_add_ps(acc[2 * r + 1], s1));
    }
}

// c[r][0:NR] (masked by m0, m1) = (first ? bias[r] : c[r]) + sum_k a[r*lda + k] * b[k][0:NR] for r < R;
// b: [kc][NR] a strip's block. R is a constant in each caller, so the loops unroll into registers.
PLY_TARGET_AVX512 static inline __attribute__((always_inline)) void micro(const int R, int64_t kc, const float *a, int64_t lda,
                                                                         const float *b, float *c, int64_t ldc, __mmask16 m0,
                                                                         __mmask16 m1, int first, const float *bias) {
    __m512 acc[2 * MR];
    const float *ar[MR];
    for (int r = 0; r < R; r++) {
        acc[2 * r] = acc[2 * r + 1] = _mm512_setzero_ps();
        ar[r] = a + r * lda;
    }
    for (int64_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        b += NR;
        for (int r = 0; r < R; r++) {
            __m512 av = _mm512_set1_ps(*ar[r]++);
            acc[2 * r] = _mm512_fmadd_ps(av, b0, acc[2 * r]);
            acc[2 * r + 1] = _mm512_fmadd_ps(av, b1, acc[2 * r + 1]);
        }
    }
    finish(R, acc, c, ldc, m0, m1, first, bias);
}

// The full 8-row kernel, written out: eight row pointers and one index, so that every
// broadcast is a single addressing mode and the loop carries no address arithmetic. pf (or
// NULL): the next 8-row block of weights (rows lda apart), prefetched a line per row every 16 k.
PLY_TARGET_AVX512 static void micro8_full(int64_t kc, const float *a, int64_t lda, const float *b, float *c, int64_t ldc,
                                          __mmask16 m0, __mmask16 m1, int first, const float *bias, const float *pf) {
    const float *a0 = a, *a1 = a + lda, *a2 = a + 2 * lda, *a3 = a + 3 * lda;
    const float *a4 = a + 4 * lda, *a5 = a + 5 * lda, *a6 = a + 6 * lda, *a7 = a + 7 * lda;
    // opaque to the compiler, which would otherwise rebuild the eight addresses from two
    // registers and lda in every iteration (37 instructions for 16 multiply-adds)
    __asm__("" : "+r"(a0), "+r"(a1), "+r"(a2), "+r"(a3), "+r"(a4), "+r"(a5), "+r"(a6), "+r"(a7));
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
    for (int64_t k = 0; k < kc; k++, b += NR) {
        if (pf && (k & 15) == 0)
            for (int r = 0; r < MR; r++) __builtin_prefetch(pf + r * lda + k, 0, 2);
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16), av;
        av = _mm512_set1_ps(a0[k]); c00 = _mm512_fmadd_ps(av, b0, c00); c01 = _mm512_fmadd_ps(av, b1, c01);
        av = _mm512_set1_ps(a1[k]); c10 = _mm512_fmadd_ps(av, b0, c10); c11 = _mm512_fmadd_ps(av, b1, c11);
        av = _mm512_set1_ps(a2[k]); c20 = _mm512_fmadd_ps(av, b0, c20); c21 = _mm512_fmadd_ps(av, b1, c21);
        av = _mm512_set1_ps(a3[k]); c30 = _mm512_fmadd_ps(av, b0, c30); c31 = _mm512_fmadd_ps(av, b1, c31);
        av = _mm512_set1_ps(a4[k]); c40 = _mm512_fmadd_ps(av, b0, c40); c41 = _mm512_fmadd_ps(av, b1, c41);
        av = _mm512_set1_ps(a5[k]); c50 = _mm512_fmadd_ps(av, b0, c50); c51 = _mm512_fmadd_ps(av, b1, c51);
        av = _mm512_set1_ps(a6[k]); c60 = _mm512_fmadd_ps(av, b0, c60); c61 = _mm512_fmadd_ps(av, b1, c61);
        av = _mm512_set1_ps(a7[k]); c70 = _mm512_fmadd_ps(av, b0, c70); c71 = _mm512_fmadd_ps(av, b1, c71);
    }
    const __m512 acc[16] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71};
    finish(MR, acc, c, ldc, m0, m1, first, bias);
}

// The full 8-row kernel with A read by columns, A(r, k) = a[k*lda + r] (conv_kernel_product's ta):
// a k's eight broadcasts are eight consecutive floats, one pointer stepping lda.
PLY_TARGET_AVX512 static void micro8_cols(int64_t kc, const float *a, int64_t lda, const float *b, float *c, int64_t ldc,
                                          __mmask16 m0, __mmask16 m1, int first) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
    for (int64_t k = 0; k < kc; k++, b += NR, a += lda) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16), av;
        av = _mm512_set1_ps(a[0]); c00 = _mm512_fmadd_ps(av, b0, c00); c01 = _mm512_fmadd_ps(av, b1, c01);
        av = _mm512_set1_ps(a[1]); c10 = _mm512_fmadd_ps(av, b0, c10); c11 = _mm512_fmadd_ps(av, b1, c11);
        av = _mm512_set1_ps(a[2]); c20 = _mm512_fmadd_ps(av, b0, c20); c21 = _mm512_fmadd_ps(av, b1, c21);
        av = _mm512_set1_ps(a[3]); c30 = _mm512_fmadd_ps(av, b0, c30); c31 = _mm512_fmadd_ps(av, b1, c31);
        av = _mm512_set1_ps(a[4]); c40 = _mm512_fmadd_ps(av, b0, c40); c41 = _mm512_fmadd_ps(av, b1, c41);
        av = _mm512_set1_ps(a[5]); c50 = _mm512_fmadd_ps(av, b0, c50); c51 = _mm512_fmadd_ps(av, b1, c51);
        av = _mm512_set1_ps(a[6]); c60 = _mm512_fmadd_ps(av, b0, c60); c61 = _mm512_fmadd_ps(av, b1, c61);
        av = _mm512_set1_ps(a[7]); c70 = _mm512_fmadd_ps(av, b0, c70); c71 = _mm512_fmadd_ps(av, b1, c71);
    }
    const __m512 acc[16] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71};
    finish(MR, acc, c, ldc, m0, m1, first, NULL);
}

// A strip's last columns when at most 16 are left: 8 rows x 16 columns (8 accumulators, enough
// for the two FMA pipes), half the arithmetic of the full kernel on lanes that would be dropped.
PLY_TARGET_AVX512 static void micro8_half(int64_t kc, const float *a, int64_t lda, const float *b, float *c, int64_t ldc,
                                          __mmask16 m0, int first, const float *bias) {
    const float *a0 = a, *a1 = a + lda, *a2 = a + 2 * lda, *a3 = a + 3 * lda;
    const float *a4 = a + 4 * lda, *a5 = a + 5 * lda, *a6 = a + 6 * lda, *a7 = a + 7 * lda;
    __asm__("" : "+r"(a0), "+r"(a1), "+r"(a2), "+r"(a3), "+r"(a4), "+r"(a5), "+r"(a6), "+r"(a7));
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    for (int64_t k = 0; k < kc; k++, b += NR) {
        __m512 b0 = _mm512_loadu_ps(b);
        c0 = _mm512_fmadd_ps(_mm512_set1_ps(a0[k]), b0, c0);
        c1 = _mm512_fmadd_ps(_mm512_set1_ps(a1[k]), b0, c1);
        c2 = _mm512_fmadd_ps(_mm512_set1_ps(a2[k]), b0, c2);
        c3 = _mm512_fmadd_ps(_mm512_set1_ps(a3[k]), b0, c3);
        c4 = _mm512_fmadd_ps(_mm512_set1_ps(a4[k]), b0, c4);
        c5 = _mm512_fmadd_ps(_mm512_set1_ps(a5[k]), b0, c5);
        c6 = _mm512_fmadd_ps(_mm512_set1_ps(a6[k]), b0, c6);
        c7 = _mm512_fmadd_ps(_mm512_set1_ps(a7[k]), b0, c7);
    }
    __m512 acc[MR] = {c0, c1, c2, c3, c4, c5, c6, c7};
    for (int r = 0; r < MR; r++) {
        float *cr = c + r * ldc;
        __m512 s0 = first ? _mm512_set1_ps(bias ? bias[r] : 0.0f) : _mm512_maskz_loadu_ps(m0, cr);
        _mm512_mask_storeu_ps(cr, m0, _mm512_add_ps(acc[r], s0));
    }
}

#define MICRO(R)                                                                                                      \
    PLY_TARGET_AVX512 static void micro##R(int64_t kc, const float *a, int64_t lda, const float *b, float *c, int64_t ldc,       \
                                           __mmask16 m0, __mmask16 m1, int first, const float *bias) {                           \
        micro(R, kc, a, lda, b, c, ldc, m0, m1, first, bias);                                                         \
    }
MICRO(1) MICRO(2) MICRO(3) MICRO(4) MICRO(5) MICRO(6) MICRO(7)

typedef void (*micro_fn)(int64_t, const float *, int64_t, const float *, float *, int64_t, __mmask16, __mmask16, int,
                         const float *);
// partial blocks of rows (a full one takes micro8_full or micro8_half)
static const micro_fn micros[MR] = {0, micro1, micro2, micro3, micro4, micro5, micro6, micro7};

// The first strip of a block of K meets each 8-row block of weights first (the later strips
// find the block, OC x KC floats, in L2): while it computes one block it asks for the next into
// L2 (locality 2), one prefetch per cache line. Eight rows of at most KC floats are eight short
// streams, too short for the hardware prefetcher to ramp up on, so without it the first strip
// waits on every line (the weights are cold in a model: the other layers ran in between).
// micro8_full issues them itself, 8 lines every 16 k (pf), where a burst of all 128 before the
// call stalled on the full miss queue (8% of a 13x13 layer's samples on the prefetches); a
// partial block or kernel takes the burst (prefetch_rows).
// Measured one thread, CPU ms per batch, medians of 4-5 alternating `bench-model` rounds, load
// 12-20: none -> burst -> in the kernel: AlexNet 26.99 -> 26.01 (26.49 in the second run) -> 25.35,
// ResNet-18 32.23 -> 28.81 (29.03) -> 27.82, GoogLeNet 27.40 -> 25.89 (26.41) -> 25.62. A burst
// to L1 (locality 3) or one in every strip was no better (AlexNet's convs 10.38 / 10.50 / 10.96 ms).
static inline void prefetch_rows(const float *w, int64_t ld, int64_t rows, int64_t kc) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t q = 0; q < kc; q += 16) __builtin_prefetch(w + r * ld + q, 0, 2);
}


size_t conv_kernel_pack_floats(int64_t rows) { return (size_t)((rows + MR - 1) / MR * MR * KC); }

void conv_kernel_gemm(const float *w, int64_t K, int64_t o0, int64_t o1, const float *bias, const float *bpacked,
                      int64_t ncols, float *out, int64_t ldc, float *apack) {
    (void)apack;
    const int64_t strips = (ncols + NR - 1) / NR;
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
        int64_t kc = K - k0 < KC ? K - k0 : KC;
        // the strip's block stays in L1 while the weight rows stream past it
        for (int64_t s = 0; s < strips; s++) {
            int64_t left = ncols - s * NR;
            const float *b = bpacked + (s * K + k0) * NR;
            for (int64_t o = o0; o < o1; o += MR) {
                int rows = o1 - o < MR ? (int)(o1 - o) : MR;
                // the next block's weights during the first strip (see prefetch_rows)
                const float *pf = s == 0 && o + 2 * MR <= o1 ? w + (o + MR) * K + k0 : NULL;
                if (s == 0 && o + MR < o1 && !(rows == MR && left > 16 && pf))
                    prefetch_rows(w + (o + MR) * K + k0, K, ply_min_i64(o1 - o - MR, MR), kc);
                if (rows == MR && left > 16) {
                    micro8_full(kc, w + o * K + k0, K, b, out + (o - o0) * ldc + s * NR, ldc, ply_lanes16(left),
                                ply_lanes16(left - 16), k0 == 0, bias ? bias + o : NULL, pf);
                    continue;
                }
                if (rows == MR && left <= 16) {
                    micro8_half(kc, w + o * K + k0, K, b, out + (o - o0) * ldc + s * NR, ldc, ply_lanes16(left), k0 == 0,
                                bias ? bias + o : NULL);
                    continue;
                }
                micros[rows](kc, w + o * K + k0, K, b, out + (o - o0) * ldc + s * NR, ldc, ply_lanes16(left),
                             ply_lanes16(left - 16), k0 == 0, bias ? bias + o : NULL);
            }
        }
    }
}

// bp[k][0:NR] = B(k0 + k, n0 + 0:NR) for k < kc (conv_kernel_product's B), zeros past the strip's
// `left` columns. Transposed B (tb) is read 16 columns x 16 k at a time and transposed in registers.
PLY_TARGET_AVX512 static void pack_strip(int tb, const float *b, int64_t ldb, int64_t k0, int64_t kc, int64_t n0,
                                         int64_t left, float *bp) {
    if (!tb) {
        const __mmask16 m0 = ply_lanes16(left), m1 = ply_lanes16(left - 16);
        for (int64_t k = 0; k < kc; k++) {
            const float *src = b + (k0 + k) * ldb + n0;
            _mm512_storeu_ps(bp + k * NR, _mm512_maskz_loadu_ps(m0, src));
            _mm512_storeu_ps(bp + k * NR + 16, _mm512_maskz_loadu_ps(m1, src + 16));
        }
        return;
    }
    for (int64_t h = 0; h < NR; h += 16) {
        const int64_t cols = left - h;
        for (int64_t kb = 0; kb < kc; kb += 16) {
            const __mmask16 mk = ply_lanes16(kc - kb);
            __m512 r[16];
            for (int64_t i = 0; i < 16; i++)
                r[i] = i < cols ? _mm512_maskz_loadu_ps(mk, b + (n0 + h + i) * ldb + k0 + kb) : _mm512_setzero_ps();
            ply_transpose16(r);
            for (int64_t i = 0; i < 16 && kb + i < kc; i++) _mm512_storeu_ps(bp + (kb + i) * NR + h, r[i]);
        }
    }
}

// conv_kernel_product at the AVX-512 level. For each block of KC k, each strip of NR columns is
// packed once (it stays in L1) and every 8-row block of A streams past it, as in conv_kernel_gemm;
// rows of A read in place (ta == 0) take that function's prefetch in the first strip.
PLY_TARGET_AVX512 static void product512(int ta, int tb, int64_t M, int64_t N, int64_t K, const float *a, int64_t lda,
                                         const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate) {
    float bp[KC * NR] __attribute__((aligned(64)));
    float ap[MR * KC] __attribute__((aligned(64))); // a partial block of rows of a transposed A, row-major
    if (K <= 0) {
        if (!accumulate)
            for (int64_t m = 0; m < M; m++) memset(c + m * ldc, 0, (size_t)N * sizeof(float));
        return;
    }
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
        const int64_t kc = K - k0 < KC ? K - k0 : KC;
        const int first = k0 == 0 && !accumulate;
        for (int64_t n0 = 0; n0 < N; n0 += NR) {
            const int64_t left = N - n0;
            const __mmask16 m0 = ply_lanes16(left), m1 = ply_lanes16(left - 16);
            pack_strip(tb, b, ldb, k0, kc, n0, left, bp);
            for (int64_t m = 0; m < M; m += MR) {
                const int rows = M - m < MR ? (int)(M - m) : MR;
                float *cb = c + m * ldc + n0;
                if (ta && rows == MR) {
                    micro8_cols(kc, a + k0 * lda + m, lda, bp, cb, ldc, m0, m1, first);
                } else if (ta) {
                    for (int r = 0; r < rows; r++)
                        for (int64_t k = 0; k < kc; k++) ap[r * kc + k] = a[(k0 + k) * lda + m + r];
                    micros[rows](kc, ap, kc, bp, cb, ldc, m0, m1, first, NULL);
                } else {
                    const float *ar = a + m * lda + k0;
                    const float *pf = n0 == 0 && m + 2 * MR <= M ? ar + MR * lda : NULL;
                    if (n0 == 0 && m + MR < M && !(rows == MR && left > 16 && pf))
                        prefetch_rows(ar + MR * lda, lda, ply_min_i64(M - m - MR, MR), kc);
                    if (rows == MR && left > 16)
                        micro8_full(kc, ar, lda, bp, cb, ldc, m0, m1, first, NULL, pf);
                    else if (rows == MR)
                        micro8_half(kc, ar, lda, bp, cb, ldc, m0, first, NULL);
                    else
                        micros[rows](kc, ar, lda, bp, cb, ldc, m0, m1, first, NULL);
                }
            }
        }
    }
}
#else
size_t conv_kernel_pack_floats(int64_t rows) { return (size_t)((rows + MR - 1) / MR * MR * KC); }
void conv_kernel_gemm(const float *w, int64_t K, int64_t o0, int64_t o1, const float *bias, const float *bpacked,
                      int64_t ncols, float *out, int64_t ldc, float *apack) {
    (void)w; (void)K; (void)o0; (void)o1; (void)bias; (void)bpacked; (void)ncols; (void)out; (void)ldc; (void)apack;
}
#endif

void conv_blas_product(int ta, int tb, int64_t M, int64_t N, int64_t K, const float *a, int64_t lda, const float *b,
                       int64_t ldb, float *c, int64_t ldc, int accumulate) {
    if (M <= 0 || N <= 0) return;
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K,
                1.0f, a, (int)lda, b, (int)ldb, accumulate ? 1.0f : 0.0f, c, (int)ldc);
}

void conv_kernel_product(int ta, int tb, int64_t M, int64_t N, int64_t K, const float *a, int64_t lda,
                         const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate) {
#if PLY_HAVE_X86_TARGETS
    if (ply_cpu_level() >= PLY_CPU_AVX512) {
        if (M > 0 && N > 0) product512(ta, tb, M, N, K, a, lda, b, ldb, c, ldc, accumulate);
        return;
    }
#endif
    conv_blas_product(ta, tb, M, N, K, a, lda, b, ldb, c, ldc, accumulate);
}
