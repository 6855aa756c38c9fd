/*
 * The forward convolution's product at the AVX2 level, C = W * B, with a register tile of 6 output
 * channels x 16 columns (12 accumulators of 8 floats) over B packed as conv_kernel.h's strips of
 * CONV_KERNEL_NR columns (B[s][k][NR]). Winograd F(4x4)'s products at AVX2 (conv_winograd.c) run
 * through it.
 *
 * W comes packed in blocks of CONV_KERNEL_AVX2_MR rows, [ceil(rows / MR)][K][MR] (rows past the last
 * zeros): each k of a block is MR consecutive floats, one stream for the tile's broadcasts. Read in
 * place, the six rows K floats apart ran the product at 44-59 GFLOPS of this core's 90 on Winograd's
 * shapes (256->256 and 512->512, 32 columns, the weights from L2 or L3) against 91 with the weights
 * warm in L1 (/tmp kernel loop, Zen 3, 1 thread).
 *
 * Threading: none inside; callers split rows (at multiples of MR) or columns between threads.
 */
#ifndef PLY_CONV_KERNEL_AVX2_H
#define PLY_CONV_KERNEL_AVX2_H

#include <stddef.h>
#include <stdint.h>

#include "plugin_support.h"

PLY_INTERNAL_BEGIN

/** Rows of a block of packed weights. */
#define CONV_KERNEL_AVX2_MR 6

/** Floats of `rows` x K weights packed in blocks (rows rounded up to a multiple of MR). */
size_t conv_kernel_avx2_packed_floats(int64_t rows, int64_t K);

/** wp = w [rows][K] (row-major) packed in blocks of MR rows, rows past `rows` zeros: conv_kernel_avx2_packed_floats floats. */
void conv_kernel_avx2_pack(const float *w, int64_t rows, int64_t K, float *wp);

/**
 * out[o - o0][c] = bias[o] + sum_k wp(o, k) * B[k][c] for o in [o0, o1) and c in [0, ncols), with
 * wp(o, k) = wp[(o / MR) * K * MR + k * MR + o % MR] and B packed in ceil(ncols / NR) strips of K x NR
 * (columns past ncols are read, never stored). o0 MUST be a multiple of MR; bias: [OC] or NULL; out
 * rows ldc floats apart. Each sum runs over k in order, one FMA per term, from zero; then the bias.
 * Call only when ply_cpu_level() >= PLY_CPU_AVX2.
 */
void conv_kernel_gemm_avx2(const float *wp, int64_t K, int64_t o0, int64_t o1, const float *bias, const float *bpacked,
                           int64_t ncols, float *out, int64_t ldc);

PLY_INTERNAL_END
#endif
