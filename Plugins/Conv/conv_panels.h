/*
 * conv2d forward for 3x3 kernels on small output planes (stride 1 or 2), vectorised over output
 * channels: the direct convolution as ONNX Runtime's MLAS NCHWc and ncnn's pack16 kernels run it,
 * on NCHW tensors.
 *
 * With p = (n*OH + oh)*OW + ow an output position and xp the input padded by (PH, PW) zeros:
 *
 *   y[n][o][oh][ow] = bias[o] + sum_{c, kh, kw} w[o][c][kh][kw] * xp[n][c][oh*S + kh][ow*S + kw]
 *
 * computed as yT[o/32][p][o%32] by an AVX-512 micro-kernel of 7 positions of one output row x 32
 * output channels (14 accumulators): per tap, two loads of 32 packed weights and 7 broadcasts of
 * input values, 14 multiply-adds. No im2col: the 7 positions read one padded input row at
 * offsets kw + S*r. Where Winograd has few tiles (ResNet's 14x14 and 7x7 planes at batch 1) or
 * the stride is 2, this does the 9 multiply-adds per output and input channel that im2col + GEMM
 * does, without the im2col's copy and without a 32-column strip 49 positions fill half of.
 *
 * The weights are packed once per weight version (conv_panels_cache_get, as Winograd's U):
 *   Wp[cb][o/32][c % CB][kh][kw][o % 32]  for input-channel blocks cb of CB channels,
 * so each block of a panel (CB*9*32 floats) stays in L1 while every output row's groups pass
 * over it, and one thread reads Wp front to back.
 */
#ifndef PLY_CONV_PANELS_H
#define PLY_CONV_PANELS_H

#include <stddef.h>

#include "conv_gemm.h"
#include "conv_weight_cache.h"
#include "plugin_support.h"

PLY_INTERNAL_BEGIN

/** Whether the kernel applies: 3x3, stride 1 or 2 both ways, an AVX-512 CPU. */
int conv_panels_fits(const conv_geom *g);

/** Whether "auto" takes it for this geometry in inference (the rule and its measurements are in conv_panels.c). */
int conv_panels_suits(const conv_geom *g);

/** Floats of the packed weights: ceil(OC/32)*32 * C * 9. */
size_t conv_panels_weights_floats(const conv_geom *g);

/**
 * Images per conv_panels_forward call where "auto" takes the panels on a batch the whole of which
 * they do not suit (conv_panels_suits false): stride-2 layers whose one image has at most
 * PANELS_MAX_POSITIONS outputs (ResNet's at batch 16) go through a few images at a time, each call's
 * padded input and yT within cache; 0 where that does not apply either.
 */
int64_t conv_panels_images_per_call(const conv_geom *g);

/** Floats of scratch conv_panels_forward needs (padded input and yT). */
size_t conv_panels_forward_floats(const conv_geom *g);

/**
 * *Wp = the packed weights of w [OC, C, 3, 3] kept in `cache` (conv_weight_cache's rules, with
 * `threads` threads of host->parallel_for for the hash), packed again when w changed.
 * PLY_ERR_OUT_OF_MEMORY (with a message) leaves the cache empty but valid.
 */
ply_status conv_panels_cache_get(conv_weight_cache *cache, const ply_host *host, int64_t threads, const conv_geom *g,
                                 const float *w, int host_only, const float **Wp);

/**
 * y = conv(x, w) + bias, relu'd when `relu` (NaN passes), with Wp from conv_panels_cache_get.
 * bias: [OC] or NULL, x: [N, C, H, W], y: [N, OC, OH, OW]; the threads of host->parallel_for
 * (`threads` of them) split the output channels in panels of 32. g MUST fit.
 */
void conv_panels_forward(const ply_host *host, int64_t threads, const conv_geom *g, const float *Wp, const float *bias,
                         int relu, const float *x, float *y, float *scratch);

PLY_INTERNAL_END
#endif
