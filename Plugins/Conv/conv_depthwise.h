/*
 * Depthwise conv2d, direct: groups == in_channels, out_channels = M * in_channels (M, the
 * channel multiplier, is 1 in MobileNet), any kernel, stride, padding and dilation. MobileNet-v2's
 * 3x3 depthwise layers are its hot spot, and im2col would make each channel a 9-deep product.
 *
 * Output channel o reads input channel c = o / M only:
 *
 *     y[n][o][oh][ow] = bias[o] + sum_{ki < KH, kj < KW}
 *                       w[o][0][ki][kj] * x[n][c][oh*SH - PH + ki*DH][ow*SW - PW + kj*DW]
 *
 * (zero outside the image). Each input plane is first split into the SH*SW phases of the
 * zero-padded plane xp[a][b] = x[a - PH][b - PW]:
 *
 *     ph[r][s][i][j] = xp[i*SH + r][j*SW + s],   Hq x Wq each, Wq = OW + ((KW-1)*DW)/SW,
 *
 * so that tap (ki, kj) of output (oh, ow) is ph[(ki*DH)%SH][(kj*DW)%SW][oh + (ki*DH)/SH]
 * [ow + (kj*DW)/SW]: at the flat index f = oh*Wq + ow, element f + off(ki, kj) of one phase
 * plane, off = (ki*DH)/SH * Wq + (kj*DW)/SW. A plane's forward is then a sum of KH*KW shifted
 * contiguous vectors, out[f] = bias + sum_t w_t * src_t[f] for f < OH*Wq, vectorised along the
 * output rows (and across them: a 7x7 plane is 63 flat positions, not 7 half-empty rows); the
 * Wq - OW positions of each row past OW are computed and dropped. Every stride and dilation
 * takes this one loop.
 *
 * The backward uses the same flat layout, with dyq = dy in rows of Wq (zeros at ow >= OW):
 *
 *     dw[o][ki][kj] += sum_f dyq[f] * src_t[f],   db[o] += sum_f dyq[f],
 *     dph[r][s][i]   = sum_{m < M, taps t of phase (r, s)} w[c*M + m][t] * dyq_{c*M+m}[i - off_t],
 *
 * and dx is dph read back out of the phases (the adjoint of the split).
 *
 * Kernels: AVX-512 (16 lanes) and AVX2 (8 lanes) by ply_cpu_level(), portable C below that.
 * The host's threads split (image, channel) planes in the forward and channels in the
 * backward (so each thread owns its dw and db rows); each thread has its own scratch slice.
 */
#ifndef PLY_CONV_DEPTHWISE_H
#define PLY_CONV_DEPTHWISE_H

#include <stddef.h>
#include <stdint.h>

#include "conv_gemm.h"
#include "ply/plugin.h"
#include "plugin_support.h"

PLY_INTERNAL_BEGIN

/** Floats of scratch conv_dw_forward needs with `threads` threads. `g`: the whole layer's
 *  geometry (C = in_channels, OC = M*C, dilation in DH, DW). */
size_t conv_dw_forward_floats(const conv_geom *g, int64_t threads);

/** Floats of scratch conv_dw_backward needs with `threads` threads. */
size_t conv_dw_backward_floats(const conv_geom *g, int64_t threads);

/**
 * y = depthwise conv(x, w) + bias. w: [OC, 1, KH, KW], bias: [OC] or NULL, x: [N, C, H, W],
 * y: [N, OC, OH, OW]. `relu` clamps the result at 0 (a fused activation; NaN passes).
 * `scratch`: conv_dw_forward_floats(g, threads) floats.
 */
void conv_dw_forward(const ply_host *host, int64_t threads, const conv_geom *g, const float *w, const float *bias,
                     int relu, const float *x, float *y, float *scratch);

/**
 * dw += the weight gradient, db += the bias gradient (db may be NULL), and dx = the input
 * gradient when dx is not NULL (overwritten). `scratch`: conv_dw_backward_floats(g, threads).
 */
void conv_dw_backward(const ply_host *host, int64_t threads, const conv_geom *g, const float *w, const float *x,
                      const float *dy, float *dx, float *dw, float *db, float *scratch);

PLY_INTERNAL_END
#endif
