/*
 * conv2d as GEMM over the whole batch: im2col + single-threaded products
 * (conv_kernel.c's at the AVX-512 level, else OpenBLAS's sgemm), split over
 * the host's threads by Ply itself. Any dilation; a
 * grouped layer is one call per group (conv_group_geom).
 *
 * The GEMM's column index runs over every output position of the batch,
 * col = n*P + oh*OW + ow (P = OH*OW), so a layer whose planes are small
 * (ResNet's 7x7, 4x4 or 1x1 at the end) still gets wide products: a tile of
 * columns may span several images. Two plans each way:
 *
 *   forward, "columns": every thread takes a contiguous range of columns and
 *     walks it in tiles of about 1 MB of im2col (cache-sized), one sgemm per
 *     tile, written straight into y when the tile lies in one image.
 *   forward, "rows": few columns in all (batch 1 at the end of a network):
 *     the threads build the whole im2col by channel, then split the output
 *     channels (GEMM rows) between them.
 *   backward, "rows": im2col of the whole batch fits the limit: the threads
 *     split the output channels for dW = dY cols^T and the input channels for
 *     dcols = W^T dY and col2im, so nobody writes what another writes.
 *   backward, "images": otherwise each thread takes a range of images (its
 *     own dx planes), tiles them like the forward, and sums dW and db into a
 *     partial of its own that is added up at the end.
 *
 * Where the products go through OpenBLAS (below the AVX-512 level, and
 * algorithm "blas"), it must be single-threaded for the split to pay (the
 * host sets OPENBLAS_NUM_THREADS=1 unless the user chose otherwise); when it
 * is not, the caller passes threads = 1 and OpenBLAS threads each product
 * itself (conv_gemm_threads).
 */
#ifndef PLY_CONV_GEMM_H
#define PLY_CONV_GEMM_H

#include <stddef.h>
#include <stdint.h>

#include "ply/plugin.h"
#include "plugin_support.h"

PLY_INTERNAL_BEGIN

/*
 * One convolution's geometry. With dilation (DH, DW), output (n, o, oh, ow) reads input row
 * oh*SH - PH + ki*DH and column ow*SW - PW + kj*DW for tap (ki, kj):
 *
 *     y[n][o][oh][ow] = bias[o] + sum_{c < C, ki < KH, kj < KW}
 *                       w[o][c][ki][kj] * x[n][c][oh*SH - PH + ki*DH][ow*SW - PW + kj*DW]
 *
 * (zero outside the image). A grouped convolution (groups G) is G of these, one per group gi,
 * with C = in_channels/G and OC = out_channels/G, x and dx at channel gi*C, y and dy at channel
 * gi*OC, w at row gi*OC (conv_group_geom): XC and YC, the channels of a whole image of x and y,
 * are the image strides. Only the GEMM plans (conv_gemm.c) read DH, DW, XC and YC; the other
 * plans are taken for groups 1 and dilation 1 only (XC == C, YC == OC, DH == DW == 1).
 */
typedef struct {
    int64_t N, C, H, W;                 // input [N, XC, H, W], of which this call reads C channels
    int64_t OC, KH, KW, SH, SW, PH, PW; // layer (of one group)
    int64_t OH, OW;                     // output planes
    int64_t DH, DW;                     // dilation (1: adjacent taps)
    int64_t XC, YC;                     // channels of an image of x (dx) and of y (dy)
} conv_geom;

/** The geometry of one of `groups` groups of `g` (a whole layer's: XC == C, YC == OC). */
static inline conv_geom conv_group_geom(const conv_geom *g, int64_t groups) {
    conv_geom r = *g;
    r.C = g->C / groups;
    r.OC = g->OC / groups;
    r.XC = g->C;
    r.YC = g->OC;
    return r;
}

/** Floats of scratch conv_gemm_forward needs with `threads` threads. */
size_t conv_gemm_forward_floats(const conv_geom *g, int64_t threads);

/**
 * Floats of scratch conv_gemm_backward needs with `threads` threads. The
 * "rows" plan is used when it fits in `rows_limit` floats.
 */
size_t conv_gemm_backward_floats(const conv_geom *g, int64_t threads, size_t rows_limit);

/**
 * y = conv(x, w) + bias. w: [OC, C*KH*KW], bias: [OC] or NULL, x: [N, C, H, W],
 * y: [N, OC, OH, OW]. `relu` clamps the result at 0 (a fused activation).
 * `kernel`: the products go through conv_kernel.c's AVX-512 kernel when the
 * CPU has it, else (and when 0) through OpenBLAS.
 */
void conv_gemm_forward(const ply_host *host, int64_t threads, int kernel, const conv_geom *g, const float *w,
                       const float *bias, int relu, const float *x, float *y, float *scratch);

/**
 * dw += dY * cols(x)^T, db += sums of dy (db may be NULL), and dx = the input
 * gradient when dx is not NULL (overwritten). `kernel` as conv_gemm_forward's
 * (conv_kernel_product, or conv_blas_product when 0).
 */
void conv_gemm_backward(const ply_host *host, int64_t threads, int kernel, size_t rows_limit, const conv_geom *g, const float *w,
                        const float *x, const float *dy, float *dx, float *dw, float *db, float *scratch);


PLY_INTERNAL_END
#endif
