/*
 * conv2d on small planes by live taps: products that skip the zeros of the
 * padding.
 *
 * On a small output plane most of a padded kernel's taps fall outside the
 * input for some positions (ResNet-18 at 32x32 ends on 2x2 and 1x1 planes,
 * where a 3x3 kernel reads 4 of its 9 taps, or 1). im2col would multiply
 * those zeros like any other entry: on ResNet-18 at 32x32 that is about 40%
 * of the arithmetic.
 *
 * Which taps of a position are inside the input is a rectangle (rows and
 * columns are independent), so positions group by it: every group's
 * product uses only its own taps,
 *
 *   Y_g [OC, N*S_g] = W_g [OC, C*th*tw] * B_g [C*th*tw, N*S_g]
 *
 * where W_g gathers the group's taps of the weights, B_g is im2col of the
 * group's S_g positions with no zero in it, and column n*S_g + s is image n,
 * position s of the group. The backward is the same per group:
 * dW_g = dY_g B_g^T (scattered into dw) and dB_g = W_g^T dY_g (scattered
 * into dx). Products go through conv_kernel_product (single-threaded
 * OpenBLAS below the AVX-512 level); the host's threads split output
 * channels (forward, dW) or images (dx).
 */
#ifndef PLY_CONV_TAPS_H
#define PLY_CONV_TAPS_H

#include <stddef.h>

#include "conv_gemm.h"
#include "plugin_support.h"

PLY_INTERNAL_BEGIN

/** Whether the plan applies at all: an output plane of at most 16x16. */
int conv_taps_fits(const conv_geom *g);

/**
 * Whether the live-tap plan pays for this geometry: a small output plane
 * (at most 16x16) where at most `max_live` of the im2col entries are
 * inside the input, and every group's product at least 16 columns wide.
 */
int conv_taps_suits(const conv_geom *g, double max_live);

/** Floats of scratch conv_taps_forward needs. */
size_t conv_taps_forward_floats(const conv_geom *g);

/** Floats of scratch conv_taps_backward needs. */
size_t conv_taps_backward_floats(const conv_geom *g);

/**
 * y = conv(x, w) + bias, relu'd when `relu`. Shapes as conv_gemm_forward.
 * g MUST satisfy conv_taps_suits.
 */
void conv_taps_forward(const ply_host *host, int64_t threads, const conv_geom *g, const float *w, const float *bias,
                       int relu, const float *x, float *y, float *scratch);

/**
 * dw += dY cols(x)^T, db += sums of dy (db may be NULL), dx = the input
 * gradient when dx is not NULL (overwritten). As conv_gemm_backward.
 * `gathered`: the scratch still starts with what conv_taps_forward gathered
 * from this x and w (W_g, then Bt_g; the backward leaves both as they are),
 * so they are not gathered again: in a training step that is one pass over
 * the weights fewer.
 */
void conv_taps_backward(const ply_host *host, int64_t threads, const conv_geom *g, const float *w, const float *x,
                        const float *dy, float *dx, float *dw, float *db, float *scratch, int gathered);


PLY_INTERNAL_END
#endif
