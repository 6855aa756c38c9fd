/*
 * conv2d forward for any kernel shape (Inception v3's 1x7, 7x1 and 5x5, and 3x3 on planes whose
 * rows end in a short call of conv_panels.c's), vectorised over output channels like conv_panels.c,
 * with the output positions taken in spans of up to 8 that run across row (and image) boundaries.
 *
 * With p = (n*OH + oh)*OW + ow an output position and xp the input padded by (PH, PW) zeros:
 *
 *   y[n][o][oh][ow] = bias[o] + sum_{c, kh, kw} w[o][c][kh][kw] * xp[n][c][oh*SH + kh][ow*SW + kw]
 *
 * computed as yT[o/32][p][o%32] by an AVX-512 micro-kernel of R <= 8 consecutive positions x 32
 * output channels (16 accumulators): per tap, two loads of 32 packed weights and R broadcasts of
 * input values, each position reading through its own pointer into xp, so a span may start in one
 * row and end in the next. conv_panels.c's spans are one row's 7 positions: a 17-wide row is 7+7+3
 * and an 8-wide one 7+1, where the short calls have too few accumulators to keep the multiply-add
 * units busy (4 cycles of latency, 2 units: 8 independent sums needed); here the N*OH*OW positions
 * are cut into ceil(P/8) spans of 7 or 8 (17x17 = 289 = 36 spans of 8 and 1 of 1 is avoided:
 * 37 spans of 7 or 8).
 *
 * At the AVX2 level (no AVX-512) the same runs with spans of up to 6 positions and a kernel of 6
 * positions x 16 channels (12 accumulators of 8 floats), each call taking the panel's two halves of
 * 16 channels in turn over the same packed weights.
 *
 * The weights are packed once per weight version (conv_spans_cache_get; conv_weight_cache's rule):
 *   Wp[cb][o/32][c % CB][kh][kw][o % 32]  for input-channel blocks cb of CB channels,
 * so a panel's block (CB*KH*KW*32 floats: 14 KB for 1x7) stays in L1 while every span passes
 * over it.
 */
#ifndef PLY_CONV_SPANS_H
#define PLY_CONV_SPANS_H

#include <stddef.h>

#include "conv_gemm.h"
#include "conv_weight_cache.h"
#include "plugin_support.h"

PLY_INTERNAL_BEGIN

/** Whether the kernel applies: dilation 1, at most 64 taps, the AVX2 or AVX-512 level (any stride, any padding). */
int conv_spans_fits(const conv_geom *g);

/**
 * Whether "auto" takes it for this geometry in inference; `panels_suit`: whether conv_panels_suits(g)
 * (the rule and its measurements are in conv_spans.c).
 */
int conv_spans_suits(const conv_geom *g, int panels_suit);

/** Floats of the packed weights: ceil(OC/32)*32 * C * KH * KW. */
size_t conv_spans_weights_floats(const conv_geom *g);

/** Floats of scratch conv_spans_forward needs (padded input and yT). */
size_t conv_spans_forward_floats(const conv_geom *g);

/**
 * *Wp = the packed weights of w [OC, C, KH, KW] kept in `cache` (conv_weight_cache's rules, with
 * `threads` threads of host->parallel_for for the hash), packed again when w changed.
 * PLY_ERR_OUT_OF_MEMORY (with a message) leaves the cache empty but valid.
 */
ply_status conv_spans_cache_get(conv_weight_cache *cache, const ply_host *host, int64_t threads, const conv_geom *g,
                                const float *w, int host_only, const float **Wp);

/**
 * y = conv(x, w) + bias, relu'd when `relu` (NaN passes), with Wp from conv_spans_cache_get.
 * bias: [OC] or NULL, x: [N, C, H, W], y: [N, OC, OH, OW]; the threads of host->parallel_for
 * (`threads` of them) split the output channels in panels of 32 where the panels divide evenly among
 * them, else the output positions (an even share each, cut into the thread's own spans). g MUST fit.
 */
void conv_spans_forward(const ply_host *host, int64_t threads, const conv_geom *g, const float *Wp, const float *bias,
                        int relu, const float *x, float *y, float *scratch);

/**
 * Shared with conv_panels.c. xp [N][C][Hp][Wq] for images [n0, n1) = x [N][C][H][W] inside a border
 * of PH rows and PW columns of zeros (and zeros past it to Hp x Wq; Hp >= H + PH, Wq >= W + PW).
 */
void conv_spans_pad(const conv_geom *g, int64_t Hp, int64_t Wq, const float *x, float *xp, int64_t n0, int64_t n1);
/** conv_spans_pad for planes [p0, p1) of the N*C (plane n*C + c is image n's channel c, in x and xp alike), so
 *  that threads can share the padding of one image; nothing when p0 >= p1. */
void conv_spans_pad_planes(const conv_geom *g, int64_t Hp, int64_t Wq, const float *x, float *xp, int64_t p0,
                           int64_t p1);

/**
 * Shared with conv_panels.c: y[n][o][q] = yT[o/32][n*OH*OW + q][o%32] + bias[o] (bias may be NULL),
 * relu'd when `relu` (NaN passes), for the panels [p0, p1) of 32 output channels and the positions
 * n*OH*OW + q in [qa, qb) of yT's N*OH*OW. The AVX2 or AVX-512 level: the caller checks it.
 */
void conv_spans_store(const conv_geom *g, const float *yT, const float *bias, int relu, float *y, int64_t p0, int64_t p1,
                      int64_t qa, int64_t qb);

PLY_INTERNAL_END
#endif
