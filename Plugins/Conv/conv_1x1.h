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
 *   - large planes: K in blocks of 256, each strip's block packed and kept
 *     in L1 while the weight rows stream past it; at the AVX-512 level also
 *     planes of at least 784 positions on at least 192 input channels below
 *     1 MB (Inception v3's 35x35 on 192, GoogLeNet's 28x28 on 192 and 256:
 *     each strip's 192+ rows P floats apart cost more read in place by every
 *     block of 12 output channels than packed once).
 * Threads split the images when they divide evenly, else each image: by
 * positions (large planes) or by output channels (small planes, e.g. 7x7 at
 * batch 1, so two threads stay balanced).
 *
 * Large planes read the weights packed ([OC/12][C][12], conv_1x1_pack_weights)
 * when the caller gives them: conv.c keeps them once per weight version in
 * evaluation (conv_weight_cache.h's rule: the host's parameter generation, or
 * a hash of the weights after set_training), and passes none in training,
 * where the weights change every step. Small planes read w unpacked, as
 * MLAS's SGEMM broadcasts its unpacked A: packing them too would keep a
 * second copy of most of a network's 1x1 weights (ResNet-50: ~10M floats),
 * where the large planes' packed copies are 0.4M floats; before the cache
 * rule existed, a memcmp check per call measured (single-thread GFLOPS
 * without -> with) 7x7 2048->512 118 -> 81, 14x14 1024->256 144 -> 131.
 * On large planes each strip's block of xs (KC rows P floats apart, each row
 * in its own page at 56x56) is copied into a contiguous KC x 32 panel
 * (scratch), which every block of 12 output channels then reads: with packed
 * weights the first block copies it as it reads the plane (its tile stores
 * each row's two vectors beside its multiply-adds), without them a pass of its
 * own copies it first.
 *
 * At the AVX2 level (no AVX-512) every plane takes the large planes' order with a 6 x 16 register
 * tile (conv_1x1_avx2.h), the same packed weights when given and the same threads' splits. Below
 * AVX2 conv.c routes 1x1 layers through conv_gemm.c's OpenBLAS path, which also reads stride-1
 * inputs in place.
 */
#ifndef PLY_CONV_1X1_H
#define PLY_CONV_1X1_H

#include <stddef.h>
#include <stdint.h>

#include "conv_gemm.h"
#include "plugin_support.h"

PLY_INTERNAL_BEGIN

/** Whether this path applies: a 1x1 kernel, no padding, the AVX2 or AVX-512 level. */
int conv_1x1_fits(const conv_geom *g);

/** Floats of scratch conv_1x1_forward needs with `threads` threads: per thread a few transposed positions, a packed strip (large planes) and, when strided, the subsampled planes of the images it works on. */
size_t conv_1x1_forward_floats(const conv_geom *g, int64_t threads);

/**
 * Whether conv_1x1_forward reads packed weights for this geometry when given them: the large planes
 * (one image's subsampled input above 1M floats: 56x56 and 28x28 at ResNet-50's widths), where
 * each weight is used P >= 784 times per image and the twelve row streams of unpacked weights cost
 * more than the one packed stream; at the AVX-512 level also P >= 784 positions on C >= 192 channels
 * (conv_1x1.c, PACK_P and PACK_K).
 */
int conv_1x1_packs(const conv_geom *g);

/** Floats of w packed for conv_1x1_forward: OC rounded up to 12, times C. */
size_t conv_1x1_packed_floats(const conv_geom *g);

/**
 * wp[(o/12)*12*C + c*12 + o%12] = w[o][c] (0 for o >= OC): blocks of 12 output channels, each
 * [C][12], so that a tile's weights for one input channel are 12 consecutive floats. wp MUST hold
 * conv_1x1_packed_floats(g) floats. Any thread; no allocation.
 */
void conv_1x1_pack_weights(const conv_geom *g, const float *w, float *wp);

/**
 * y = conv(x, w) + bias, relu'd when `relu` (NaN passes, as the built-in relu).
 * w: [OC, C], wp: w packed by conv_1x1_pack_weights (read only where
 * conv_1x1_packs(g)) or NULL (then w alone is read), bias: [OC] or NULL, x: [N, C, H, W], y: [N, OC, OH, OW], scratch:
 * conv_1x1_forward_floats(g) floats. Split over `threads` threads of
 * host->parallel_for. g MUST fit.
 */
void conv_1x1_forward(const ply_host *host, int64_t threads, const conv_geom *g, const float *w, const float *wp,
                      const float *bias, int relu, const float *x, float *y, float *scratch);

/**
 * Whether conv_1x1_forward_residual adds its residual inside the product (the AVX-512 level); elsewhere it
 * ignores res and the caller MUST add it itself (conv.c's pass after the product).
 */
int conv_1x1_adds_residual(void);

/**
 * conv_1x1_forward with a residual: y = act(conv(x, w) + bias + res), act the relu when `relu`, the sum
 * taken in that order (conv + bias first, then res: the same rounding as a separate add after the
 * conv), where conv_1x1_adds_residual(); res: [N, OC, OH, OW] like y (MUST NOT overlap y), or NULL
 * (then this is conv_1x1_forward). Each output is written once, with its residual read in the same
 * tile: a bottleneck's expand conv and its add + relu in one pass over the output (residual_eval.c).
 */
void conv_1x1_forward_residual(const ply_host *host, int64_t threads, const conv_geom *g, const float *w,
                               const float *wp, const float *bias, const float *res, int relu, const float *x, float *y,
                               float *scratch);

PLY_INTERNAL_END
#endif
