/*
 * conv2d forward for the stems: few input channels, a large kernel, any stride
 * (ResNet's and GoogLeNet's 7x7 stride-2 first layer on 3 channels; Inception v3's 3x3
 * stride 2), direct,
 * on the input split into its column phases:
 *
 *   y[n][o][oh][ow] = bias[o] + sum_{c, kh, kw} w[o][c][kh][kw] * xp[n][c][oh*SH + kh][ow*SW + kw]
 *   xp = x zero-padded by PH rows and PW columns on each side
 *   d[c][q][r][j] = xp[n][c][r][j*SW + q]                    (q < SW: the column phases)
 *   so xp[n][c][oh*SH + kh][ow*SW + kw] = d[c][kw % SW][oh*SH + kh][ow + kw / SW]
 *
 * For fixed (c, kh, kw) consecutive output columns read consecutive floats of d,
 * so a vector of 16 outputs of one row is one unaligned load per tap, where
 * im2col + GEMM (conv_gemm.c) first gathers every tap of every position into
 * strips (stride-2 columns: a permute per vector) and then streams them
 * through the product. Each worker fills d for the image it works on (C*SW
 * planes of ((OH-1)*SH + KH) rows; ResNet's stem: 0.16M floats, in L2).
 *
 * The register tile is 12 output channels x 2 vectors of 16 outputs (24
 * accumulators, as conv_1x1.c's): per tap 2 loads of d and 12 broadcasts of
 * the weights, packed per call as [OC/12][C*KH*KW][12] (ResNet's stem: 9.4K
 * floats, a few microseconds; nothing kept between calls). The vectors are
 * the output rows cut in 16s (the last of a row masked), taken two at a time
 * in order, so a pair may span two rows.
 *
 * At the AVX2 level the tile is conv_stem_avx2.c's: 6 output channels x 2 vectors of 8 outputs, weights
 * packed in blocks of 6, the same sums in the same order (each output's bits the AVX-512 tile's). conv.c
 * takes it in evaluation ("auto") where conv_stem_suits.
 */
#ifndef PLY_CONV_STEM_H
#define PLY_CONV_STEM_H

#include <stddef.h>
#include <stdint.h>

#include "conv_gemm.h"
#include "plugin_support.h"

PLY_INTERNAL_BEGIN

/**
 * Whether "auto" takes this path for g (groups 1 and dilation 1 are the caller's check): the
 * AVX2 or AVX-512 level, at most 4 input channels, a kernel of at least 5x5 or, at AVX-512, a 3x3 of
 * stride 2 (Inception v3's first layer), at most 256 taps in all (C*KH*KW: a block of packed weights stays in L1), one
 * image's phase planes below 2^31 floats.
 */
int conv_stem_suits(const conv_geom *g);

/** Floats of scratch conv_stem_forward needs with `threads` threads (packed weights, then each worker's phase planes). */
size_t conv_stem_forward_floats(const conv_geom *g, int64_t threads);

/**
 * y = conv(x, w) + bias, relu'd when `relu` (NaN passes, as the built-in relu). w: [OC, C, KH, KW],
 * bias: [OC] or NULL, x: [N, C, H, W], y: [N, OC, OH, OW], scratch: conv_stem_forward_floats(g,
 * threads) floats. Split over `threads` threads of host->parallel_for. g MUST suit (conv_stem_suits).
 */
void conv_stem_forward(const ply_host *host, int64_t threads, const conv_geom *g, const float *w, const float *bias,
                       int relu, const float *x, float *y, float *scratch);

PLY_INTERNAL_END
#endif
