/*
 * conv2d's input gradient for 3x3, stride-1 layers by Winograd: the
 * gradient of a stride-1 convolution is itself a stride-1 convolution of the
 * output gradient, by the kernel flipped in both axes with its two channel
 * axes swapped,
 *
 *   dx[n][c][ih][iw] = sum_{oc,u,v} dy[n][oc][ih - P'H + u][iw - P'W + v] * wf[c][oc][u][v]
 *   wf[c][oc][u][v]  = w[oc][c][2 - u][2 - v],   P' = 2 - P  (zeros outside dy)
 *
 * (from ih = oh - PH + kh: oh = ih - (2 - PH) + (2 - kh)), so conv_winograd.c's
 * forward computes it with F(4x4, 3x3) or F(2x2, 3x3), the tile chosen for the
 * gradient's own geometry, instead of im2col's product of the whole kernel
 * (W^T dY) and the col2im that adds its 9 taps back into dx.
 *
 * Measured on ResNet-18's layer1 (64 images, 64->64 channels, 8x8 planes, one
 * thread, CPU time, `ply bench-layers --training`, shared machine): the input
 * gradient took 4.9-5.3 ms by im2col, 2.3-2.6 ms this way (F(4x4)). On layer2's
 * 128->128 4x4 planes it is about the live taps' (3.4 against 3.3 ms).
 */
#ifndef PLY_CONV_WINOGRAD_BACKWARD_H
#define PLY_CONV_WINOGRAD_BACKWARD_H

#include <stddef.h>

#include "conv_gemm.h"
#include "plugin_support.h"

PLY_INTERNAL_BEGIN

/**
 * Whether the input gradient of layer g goes through Winograd: a 3x3 stride-1
 * kernel with padding at most 2 each way, and Winograd suits the gradient's
 * geometry (conv_winograd_suits: AVX-512, 16 channels each way, 64 tiles).
 */
int conv_winograd_backward_data_suits(const conv_geom *g);

/** Floats of scratch conv_winograd_backward_data needs with `threads` threads. */
size_t conv_winograd_backward_data_floats(const conv_geom *g, int64_t threads);

/**
 * dx = the input gradient of conv(x, w) for output gradient dy (overwritten,
 * not accumulated). w: [OC, C, 3, 3], dy: [N, OC, OH, OW], dx: [N, C, H, W].
 * g MUST suit (conv_winograd_backward_data_suits).
 */
void conv_winograd_backward_data(const ply_host *host, int64_t threads, const conv_geom *g, const float *w,
                                 const float *dy, float *dx, float *scratch);

PLY_INTERNAL_END
#endif
