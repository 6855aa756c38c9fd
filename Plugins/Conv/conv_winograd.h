/*
 * conv2d forward for 3x3, stride 1 by Winograd's minimal filtering F(2x2, 3x3)
 * (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2015).
 *
 * Each 2x2 block of outputs ("tile") of one channel comes from a 4x4 patch d
 * of the input: Y = A^T [ sum_c (G g_c G^T) .* (B^T d_c B) ] A. The sum over
 * channels of the element-wise products is 16 independent products, one per
 * element xi of the 4x4 transforms,
 *
 *   M_xi [OC, T] = U_xi [OC, C] * V_xi [C, T]     (T: tiles of the batch)
 *
 * 16 * OC * C multiply-adds per tile where im2col needs 4 * 9 * OC * C: 2.25x
 * fewer. The transforms only add, subtract and halve (B, A: 0 and +-1;
 * G: 0, 1/2 and 1), so the rounding stays close to a direct sum's. The
 * products go through conv_kernel.c's AVX-512 kernel: V is written straight
 * into its strips of 32 tiles.
 *
 * Two plans: "columns" gives each thread whole chunks of tiles (transform,
 * 16 products, inverse transform, all in its own cache-sized scratch);
 * "rows" (few tiles: batch 1 late in a network) transforms the input once
 * and splits the output channels between the threads.
 */
#ifndef PLY_CONV_WINOGRAD_H
#define PLY_CONV_WINOGRAD_H

#include <stddef.h>

#include "conv_gemm.h"
#include "plugin_support.h"

PLY_INTERNAL_BEGIN

/** Whether F(2x2, 3x3) applies: a 3x3 kernel, stride 1, an AVX-512 CPU. */
int conv_winograd_fits(const conv_geom *g);

/** Whether it pays: it fits, both channel counts are at least 16 and there are at least 64 tiles. */
int conv_winograd_suits(const conv_geom *g);

/** Floats of scratch conv_winograd_forward needs with `threads` threads. */
size_t conv_winograd_forward_floats(const conv_geom *g, int64_t threads);

/**
 * y = conv(x, w) + bias, relu'd when `relu` (NaN passes). w: [OC, C, 3, 3],
 * bias: [OC] or NULL, x: [N, C, H, W], y: [N, OC, OH, OW]. g MUST fit.
 */
void conv_winograd_forward(const ply_host *host, int64_t threads, const conv_geom *g, const float *w,
                           const float *bias, int relu, const float *x, float *y, float *scratch);


PLY_INTERNAL_END
#endif
