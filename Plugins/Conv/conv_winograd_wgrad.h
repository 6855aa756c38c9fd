/*
 * conv2d's weight gradient for 3x3, stride-1 layers by Winograd F(2x2, 3x3)
 * (Lavin & Gray 2015, section 5; as NNPACK's and oneDNN's weight-update
 * kernels): the forward of one 2x2 output tile t of image n is
 *
 *   y_t = A^T [ sum_c U_c .* V_{t,c} ] A,   U = G w G^T,  V_{t,c} = B^T d_{t,c} B
 *
 * (conv_winograd.c's matrices; d_{t,c} the 4x4 input patch of the tile), so
 * with Z_t = A dy_t A^T (the 2x2 output gradient of the tile, zeros past the
 * plane) the gradient of U is a sum over the tiles of element-wise products,
 * and the weights' follows by G's transpose:
 *
 *   dU_xi [OC, C] = sum_t Z_xi [OC, t] * V_xi [C, t]    (xi < 16, one product each)
 *   dw[o][c] += G^T dU[o][c] G                          (4x4 -> 3x3)
 *
 * 16 * OC * C multiply-adds per tile where im2col's dW = dY cols^T needs
 * 4 * 9 * OC * C (2.25x fewer), and the transforms read x and dy once each
 * instead of writing im2col's 9 copies of x.
 *
 * Measured on ResNet-18's layers at 32x32 (64 images, one thread, thread CPU
 * time, shared machine at load ~20): layer1 (64->64, 8x8) 3.4-3.6 ms by
 * im2col, 1.9-2.1 ms this way; layer2 (128->128, 4x4) 2.9-3.0 against
 * 1.5-1.6 ms (standalone harness, best of 20). In the model (`ply bench-layers
 * --training --cpu-time`, two alternating rounds against main) the 3x3 convs'
 * parameter gradients took 29.5-32.0 ms per step instead of 40.8-41.5.
 */
#ifndef PLY_CONV_WINOGRAD_WGRAD_H
#define PLY_CONV_WINOGRAD_WGRAD_H

#include <stddef.h>

#include "conv_gemm.h"
#include "plugin_support.h"

PLY_INTERNAL_BEGIN

/**
 * Whether the weight gradient of layer g goes through Winograd: a 3x3 stride-1 kernel
 * where Winograd suits the layer (conv_winograd_suits: AVX-512, at least 16 channels each way
 * and 64 tiles of 2x2).
 */
int conv_winograd_wgrad_suits(const conv_geom *g);

/** Floats of scratch conv_winograd_wgrad needs with `threads` threads. */
size_t conv_winograd_wgrad_floats(const conv_geom *g, int64_t threads);

/**
 * dw += the weight gradient of conv(x, w) for output gradient dy, db += the
 * sums of dy per output channel (db may be NULL). x: [N, C, H, W],
 * dy: [N, OC, OH, OW], dw: [OC, C, 3, 3]. Split over `threads` threads of
 * host->parallel_for. g MUST suit (conv_winograd_wgrad_suits).
 */
void conv_winograd_wgrad(const ply_host *host, int64_t threads, const conv_geom *g, const float *x, const float *dy,
                         float *dw, float *db, float *scratch);

PLY_INTERNAL_END
#endif
