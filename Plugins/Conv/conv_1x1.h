/*
 * conv2d forward for 1x1 kernels without padding (pointwise; GoogLeNet's and
 * ResNet-50's bottlenecks, Inception's branches, stride-2 downsamples) as a
 * plain product per image, with no im2col:
 *
 *   y[n][o][p] = bias[o] + sum_c w[o][c] * xs[n][c][p],   p = oh*OW + ow,
 *   xs[n][c][p] = x[n][c][oh*SH][ow*SW]
 *
 * For stride 1, xs IS x (read in place: the product's B operand is the input
 * plane itself, rows P = H*W floats apart); for larger strides each thread
 * copies the subsampled planes of the images it works on into its own scratch
 * (C*OH*OW floats per image, bounded per thread, not the batch's).
 * Where im2col + conv_kernel.c copied the whole input into strips on every
 * call (a pass that costs as much as the product when OC is small, as in
 * GoogLeNet's 1x1 reductions to 16..64 channels), this path reads it once.
 *
 * The AVX-512 micro-kernel (conv_1x1.c) keeps a tile of 12 output channels x
 * 32 positions in registers (24 accumulators), broadcasting weights straight
 * from w (row-major [OC, C], as MLAS's SGEMM broadcasts its unpacked A: no
 * packed copy to keep in sync with the weights) and loading two vectors of xs
 * per input channel; small planes whose positions split into strips of 48 but
 * not of 32 (7x7: 49 = 48 + 1) take an 8 x 48 tile instead (24 accumulators,
 * 3 loads and 8 broadcasts per input channel) rather than leave a strip of 16.
 * Two loop orders:
 *   - small planes (one image's xs within 1 MB, i.e. 28x28 and less at these
 *     widths): each block of 12 weight rows is read once (then kept in L2;
 *     the next block is prefetched while the first strip passes under this one)
 *     and every strip of positions passes under it over the whole K, several
 *     images at a time when their planes fit together; when P mod 16 is at
 *     most 8, those last positions are dot products along K (7x7: 49 = 32 +
 *     16 + 1) instead of a 16-lane tile mostly masked off;
 *   - large planes: K in blocks of 256, each strip's block kept in L1 while
 *     the weight rows stream past it.
 * Threads split the images when they divide evenly, else each image: by
 * positions (large planes) or by output channels (small planes, e.g. 7x7 at
 * batch 1, so two threads stay balanced).
 *
 * Why the weights are not packed once per weight version: the layer cannot
 * tell cheaply that they changed (a composite writes a folded conv's weights
 * without the host's param_generation moving), and the rule Winograd's cache
 * uses, a memcmp against a kept copy on every call, costs more than packing
 * could save here, where each weight is used only P*N times: measured in a
 * single-thread harness of this file (GFLOPS without -> with the memcmp),
 * 7x7 2048->512 118 -> 81, 512->2048 114 -> 80, 832->384 121 -> 95, 14x14
 * 1024->256 144 -> 131, 528->256 147 -> 140.
 *
 * AVX-512 only: below that level conv.c routes 1x1 layers through
 * conv_gemm.c's OpenBLAS path, which also reads stride-1 inputs in place.
 */
#ifndef PLY_CONV_1X1_H
#define PLY_CONV_1X1_H

#include <stddef.h>
#include <stdint.h>

#include "conv_gemm.h"
#include "plugin_support.h"

PLY_INTERNAL_BEGIN

/** Whether this path applies: a 1x1 kernel, no padding, the AVX-512 level. */
int conv_1x1_fits(const conv_geom *g);

/** Floats of scratch conv_1x1_forward needs with `threads` threads: per thread a few transposed positions and, when strided, the subsampled planes of the images it works on. */
size_t conv_1x1_forward_floats(const conv_geom *g, int64_t threads);

/**
 * y = conv(x, w) + bias, relu'd when `relu` (NaN passes, as the built-in relu).
 * w: [OC, C], bias: [OC] or NULL, x: [N, C, H, W], y: [N, OC, OH, OW], scratch:
 * conv_1x1_forward_floats(g) floats. Split over `threads` threads of
 * host->parallel_for. g MUST fit.
 */
void conv_1x1_forward(const ply_host *host, int64_t threads, const conv_geom *g, const float *w, const float *bias,
                      int relu, const float *x, float *y, float *scratch);

PLY_INTERNAL_END
#endif
