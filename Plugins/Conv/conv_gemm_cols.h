/*
 * The columns of conv_gemm.c's plans (conv_gemm_cols.c), private to the conv plugin. A column is one
 * output position of the batch, col = n*P + oh*OW + ow with P = OH*OW; a GEMM row of the unfolded
 * input is one (c, ki, kj) of K = C*KH*KW. Ranges are half-open: columns [c0, c1), input channels
 * [ch0, ch1), output channels [o0, o1).
 */
#ifndef PLY_CONV_GEMM_COLS_H
#define PLY_CONV_GEMM_COLS_H

#include <stdint.h>

#include "conv_gemm.h"
#include "plugin_support.h"

PLY_INTERNAL_BEGIN

// im2col floats of one tile (about 1 MB: half of this CPU's L2 per core).
#define TILE_FLOATS (1 << 18)
#define TILE_MIN 64
#define TILE_MAX 4096

static inline int64_t gemm_k(const conv_geom *g) { return g->C * g->KH * g->KW; }
static inline int64_t gemm_p(const conv_geom *g) { return g->OH * g->OW; }

/** cols[(c*KH + ki)*KW + kj][col - c0] (rows ld floats apart) for columns [c0, c1) and channels
 *  [ch0, ch1): the input read by that tap at that column, zero outside the image. */
void conv_gemm_im2col(float *cols, int64_t ld, const float *x, const conv_geom *g, int64_t c0, int64_t c1,
                      int64_t ch0, int64_t ch1);
/** The adjoint of conv_gemm_im2col: dx += every dcols entry im2col would have read from it. */
void conv_gemm_col2im(float *dx, const float *dcols, int64_t ld, const conv_geom *g, int64_t c0, int64_t c1,
                      int64_t ch0, int64_t ch1);
/** B packed for conv_kernel_gemm: columns [c0, c1) in strips of CONV_KERNEL_NR, rows of channels
 *  [ch0, ch1) only; the columns past c1 in the last strip are zeroed. */
void conv_gemm_pack_strips(float *bp, const float *x, const conv_geom *g, int64_t c0, int64_t c1, int64_t ch0,
                           int64_t ch1);
/** y[n][o][p] = relu?(tmp[o - o0][col - c0] + bias[o]) for columns [c0, c1), rows [o0, o1). */
void conv_gemm_scatter_out(float *y, const float *tmp, int64_t ld, const float *bias, int relu, const conv_geom *g,
                           int64_t c0, int64_t c1, int64_t o0, int64_t o1);
/** tmp[o - o0][col - c0] = dy[n][o][p] for columns [c0, c1), rows [o0, o1). */
void conv_gemm_gather_dy(float *tmp, int64_t ld, const float *dy, const conv_geom *g, int64_t c0, int64_t c1,
                         int64_t o0, int64_t o1);
/** The end of the tile that starts at column c in [c, end): at most `tile` columns, and cut at the
 *  image boundary when images are at least TILE_MIN wide, so that such tiles lie in one image. */
int64_t conv_gemm_tile_end(const conv_geom *g, int64_t c, int64_t end, int64_t tile);

PLY_INTERNAL_END

#endif
