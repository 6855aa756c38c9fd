/*
 * Winograd F(m x m, 3x3) (m = 4 or 6) on ABI 1.7's blocked channel layout (NCHW16c), evaluation,
 * AVX-512 (conv_blocked_wino.c) and AVX2 (conv_blocked_wino_avx2.c: the same bits). Channels sit in the vector lanes throughout, as ncnn's pack16
 * Winograd: the input transform reads a tile's a x a patch as vectors of 16 channels and writes
 * V [a*a][C/16][T][16]; each of the a*a products M_xi = V_xi U_xi is a 1x1 convolution over the
 * tiles with output channels in the lanes (conv_blocked.c's kernel form: one input value broadcast
 * against 4 vectors of weights); the output transform reads M [a*a][OC/16][T][16] and writes y's
 * vectors of 16 channels. No transposes anywhere.
 *
 * Layouts: x [N][ceil(C/16)][H][W][16], y and r [N][ceil(OC/16)][H][W][16] (lanes past C or OC are
 * 0 in x and MUST be written 0 in y). Geometry: 3x3, stride 1, padding 1 (OH = H, OW = W) or 0 (the
 * valid convs of Inception v3's stem: OH = H - 2, OW = W - 2), dilation 1, groups 1.
 */
#ifndef PLY_CONV_BLOCKED_WINO_H
#define PLY_CONV_BLOCKED_WINO_H

#include <stddef.h>

#include "conv_gemm.h"
#include "plugin_support.h"

PLY_INTERNAL_BEGIN

/** Floats of the blocked transformed weights U for tile side m (4 or 6) and geometry g. */
size_t conv_bwino_weights_floats(const conv_geom *g, int m);

/** U from w [OC][C][3][3] (zero past C and OC), for tile side m, on `threads` threads of host->parallel_for. */
void conv_bwino_weights(const ply_host *host, int64_t threads, const conv_geom *g, int m, const float *w, float *U);

/** Floats of scratch conv_bwino_forward needs for tile side m and `threads` threads. */
size_t conv_bwino_forward_floats(const conv_geom *g, int m, int64_t threads);

/**
 * y = act(conv(x, w) + bias + r) on NCHW16c: bias [OC] or NULL, r NULL or a residual laid out as y,
 * added before the relu; act = relu when `relu` (NaN passes), else identity. U from conv_bwino_weights
 * for the same m. Splits its work over `threads` threads of host->parallel_for.
 */
void conv_bwino_forward(const ply_host *host, int64_t threads, const conv_geom *g, int m, const float *U,
                        const float *bias, const float *r, int relu, const float *x, float *y, float *scratch);

/** The tile side (4 or 6) the blocked path takes for g, or 0 where it should not run (see its measurements). */
int conv_bwino_tile(const conv_geom *g);

PLY_INTERNAL_END
#endif
