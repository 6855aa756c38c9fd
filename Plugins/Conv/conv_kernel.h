/*
 * The forward convolution's product, C = W * B, with an AVX-512 micro-kernel
 * of 8 output channels x 32 columns (16 accumulator registers).
 *
 * B comes packed in strips of CONV_KERNEL_NR columns: strip s holds rows
 * k = 0..K-1 of columns [s*NR, s*NR + NR) as B[s][k][NR], which is the layout
 * im2col writes when its row stride is NR, so packing B IS the im2col and
 * nothing is copied twice (im2col + sgemm copies every column again into
 * OpenBLAS's own panels). W is packed per call, one block of 256 k at a time
 * into a buffer that stays in L2 ([OC/8][256][8]), and every strip passes
 * over it; packing costs one read of W per call, which is what the product
 * reads anyway (caching it would need to know when the optimizer changed W).
 */
#ifndef PLY_CONV_KERNEL_H
#define PLY_CONV_KERNEL_H

#include <stddef.h>
#include <stdint.h>
#include "plugin_support.h"

PLY_INTERNAL_BEGIN

#define CONV_KERNEL_NR 32

/** Floats of the weight-packing buffer conv_kernel_gemm needs for `rows` output channels. */
size_t conv_kernel_pack_floats(int64_t rows);

/**
 * out[o - o0][c] = bias[o] + sum_k w[o][k] * B[k][c] for o in [o0, o1) and c in [0, ncols),
 * B packed in ceil(ncols / NR) strips of K x NR (columns past ncols are read, never stored).
 * w: [OC, K] row-major, bias: [OC] or NULL, out rows ldc floats apart; apack: scratch of
 * conv_kernel_pack_floats(o1 - o0) floats.
 */
void conv_kernel_gemm(const float *w, int64_t K, int64_t o0, int64_t o1, const float *bias, const float *bpacked,
                      int64_t ncols, float *out, int64_t ldc, float *apack);

/**
 * The general product, for the training products of the live taps (conv_taps.c), im2col
 * (conv_gemm.c) and Winograd's weight gradient:
 *
 *   C[m][n] = (accumulate ? C[m][n] : 0) + sum_k A(m, k) B(k, n),  m < M, n < N, k < K,
 *   A(m, k) = a[m*lda + k] (ta == 0) or a[k*lda + m] (ta == 1),
 *   B(k, n) = b[k*ldb + n] (tb == 0) or b[n*ldb + k] (tb == 1),
 *
 * C rows ldc floats apart; C MUST NOT overlap A or B. At the AVX-512 level it runs on this
 * file's micro-kernels: B packed a block of 256 k x 32 columns at a time (32 KB, on the
 * stack), A read in place. The sums run over k in blocks of 256, each block from zero and
 * then added to C. Below AVX-512 (and off x86) it is cblas_sgemm with alpha 1 and beta
 * `accumulate`. The product then no longer depends on which kernels OpenBLAS picked
 * (OPENBLAS_CORETYPE): its Haswell kernels ran these products at ~0.55x the speed of its
 * SkylakeX ones on an AVX-512 core.
 *
 * Threading: none inside; callers split rows or columns of C between threads. Uses 40 KB
 * of the calling thread's stack.
 */
void conv_kernel_product(int ta, int tb, int64_t M, int64_t N, int64_t K, const float *a, int64_t lda,
                         const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate);

/** conv_kernel_product through cblas_sgemm at every level: algorithm "blas", the reference. */
void conv_blas_product(int ta, int tb, int64_t M, int64_t N, int64_t K, const float *a, int64_t lda, const float *b,
                       int64_t ldb, float *c, int64_t ldc, int accumulate);


PLY_INTERNAL_END
#endif
