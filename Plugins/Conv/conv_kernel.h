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


PLY_INTERNAL_END
#endif
