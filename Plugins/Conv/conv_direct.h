/*
 * Direct 2-d convolution for stride 1 and few channels (the ConvNet's 1->8 and
 * 8->16 3x3 layers), vectorised with AVX-512 (conv_direct.c) or AVX2 + FMA (conv_direct_avx2.c, the
 * same bits) and chosen at run time (the im2col + sgemm path in conv.c is the fallback and the
 * reference). Call only when ply_cpu_level() >= PLY_CPU_AVX2.
 *
 * The trick: an input plane is copied into a zero-padded plane whose rows are
 * Wp = W + 2*PW long. An output position (oh, ow) is then at flat index
 * q = oh*Wp + ow of an output plane with the same row length, and reads input
 * q + ki*Wp + kj: a 1-d correlation over contiguous memory, 16 outputs per
 * vector. Columns ow >= OW of that layout are discarded (forward) or masked
 * to zero (weight gradient). The input gradient is the same correlation of
 * the padded output gradient with the flipped, transposed kernel.
 */
#ifndef PLY_CONV_DIRECT_H
#define PLY_CONV_DIRECT_H

#include <stddef.h>
#include <stdint.h>
#include "plugin_support.h"

PLY_INTERNAL_BEGIN

typedef struct {
    int64_t C, OC, KH, KW, PH, PW; // layer (stride 1, dilation 1)
    int64_t H, W, OH, OW;          // input and output plane sizes
} direct_geom;

/** Whether the geometry fits the direct kernels (stride 1 is the caller's check). */
int conv_direct_fits(int64_t C, int64_t OC, int64_t KH, int64_t KW, int64_t PH, int64_t PW);

/** Floats of per-thread scratch a forward / backward chunk needs (multiples of 16). */
size_t conv_direct_forward_floats(const direct_geom *g);
size_t conv_direct_backward_floats(const direct_geom *g);

/** The kernel w [OC, C, KH, KW] rearranged for conv_direct_forward (OC*C*KH*KW floats). */
void conv_direct_pack(const direct_geom *g, const float *w, float *packed);

/** y[n] = conv(x[n]) + bias (its relu with `relu`) for images [n0, n1); w packed by conv_direct_pack;
 *  bias may be NULL. */
void conv_direct_forward(const direct_geom *g, const float *w, const float *bias, int relu, const float *x, float *y,
                         int64_t n0, int64_t n1, float *scratch);

/** conv_direct_forward for output channels [o0, o1) only (planes [o0, o1) of each y[n]; the others are not
 *  touched), so that threads can share one image. o0 MUST be a multiple of 8 and o1 - o0 a multiple of 8 or
 *  o1 = OC (the packed weight's blocks); the scratch is a forward chunk's (conv_direct_forward_floats). */
void conv_direct_forward_channels(const direct_geom *g, const float *w, const float *bias, int relu, const float *x,
                                  float *y, int64_t n0, int64_t n1, int64_t o0, int64_t o1, float *scratch);

/** The kernel of the input-gradient correlation, w[o][c][KH*KW-1-t] as [c][o][t], packed likewise. */
void conv_direct_flip(const direct_geom *g, const float *w, float *wflip);

/**
 * For images [n0, n1): with y (the output of a fused relu) the gradient used is dy where
 * y > 0 and 0 elsewhere (y may be NULL). Adds the weight gradient into dwv ([OC*C*KH*KW][16],
 * per-lane partial sums; the caller sums the lanes), the bias gradient into
 * dbv ([OC][16], same) when not NULL, and writes dx[n] when dx is not NULL.
 * The scratch starts with the partial sums: dwv = scratch, dbv = dwv +
 * OC*C*KH*KW*16 (see conv_direct_partials).
 */
void conv_direct_backward(const direct_geom *g, const float *wflip, const float *x, const float *dy, const float *y,
                          float *dx, int64_t n0, int64_t n1, float *scratch, int with_bias);

/** Floats of the partial sums at the start of a backward scratch. */
size_t conv_direct_partials(const direct_geom *g);


PLY_INTERNAL_END
#endif
