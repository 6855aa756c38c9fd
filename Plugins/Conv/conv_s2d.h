/*
 * Strided conv2d forward by space-to-depth: a layer with stride S > 1 and a
 * kernel of at most 3S x 3S (AlexNet's 11x11 stride-4 stem) is the 3x3,
 * stride-1 convolution of the input folded into S*S times the channels:
 *
 *   xs[n][(c*S + a)*S + b][i][j]  = x[n][c][i*S + a - PH][j*S + b - PW]  (0 outside)
 *   ws[o][(c*S + a)*S + b][u][v]  = w[o][c][u*S + a][v*S + b]            (0 past KH, KW)
 *   y[n][o][oh][ow] = bias[o] + sum ws[o][.][u][v] * xs[n][.][oh + u][ow + v]
 *
 * which Winograd F(2x2, 3x3) (conv_winograd.c) then computes. Against im2col
 * it trades the strided gathers of packing (a quarter of the stem's time) for
 * contiguous copies, and the product for Winograd's 2.25x fewer multiply-adds
 * on (3S)^2 / (KH*KW) more taps (1.19x for 11x11 stride 4). The taps past the
 * kernel multiply real pixels by zero: an infinite pixel that only those taps
 * reach makes a NaN where the layer's own taps would not (Winograd's
 * transforms already mix a tile's pixels the same way).
 */
#ifndef PLY_CONV_S2D_H
#define PLY_CONV_S2D_H

#include <stddef.h>
#include <stdint.h>

#include "conv_gemm.h"
#include "conv_weight_cache.h"
#include "ply/plugin.h"
#include "plugin_support.h"

PLY_INTERNAL_BEGIN

/** 1 when a layer of this kernel and stride can fold: SH == SW = S >= 2, KH and KW at most 3S, AVX-512. */
int conv_s2d_fits(int64_t KH, int64_t KW, int64_t SH, int64_t SW);

/** 1 when "auto" folds the layer: SH == SW = S > 1, KH and KW in (2S, 3S], and Winograd suits the folded layer. */
int conv_s2d_suits(const conv_geom *g);

/** Floats of scratch conv_s2d_forward needs with `threads` threads. */
size_t conv_s2d_forward_floats(const conv_geom *g, int64_t threads);

/**
 * y = conv(x, w) + bias, relu'd when `relu` (NaN passes), for a layer that conv_s2d_fits. w: [OC, C,
 * KH, KW], bias: [OC] or NULL, x: [N, C, H, W], y: [N, OC, OH, OW]. The folded layer's Winograd
 * weights U are kept in `cache` and made again only when w changes (conv_weight_cache's rules, with
 * host_only) or the tile side does: their fold and transform leave the forward. PLY_ERR_OUT_OF_MEMORY
 * when the cache cannot grow.
 */
ply_status conv_s2d_forward(conv_weight_cache *cache, const ply_host *host, int64_t threads, const conv_geom *g,
                            const float *w, const float *bias, int relu, const float *x, float *y, float *scratch);


PLY_INTERNAL_END
#endif
