/*
 * conv_direct.c's inner steps at the AVX2 level (AVX2 + FMA: Haswell, Zen 1-3), for CPUs without
 * AVX-512. conv_direct.c keeps the drivers (the scratch layout, the packed weights, the masks) and
 * calls these where ply_cpu_level() is PLY_CPU_AVX2; they compute what its AVX-512 steps compute, on
 * the same layouts, with each 16-lane vector of those as two 8-lane halves and every lane's sum in the
 * same order (bias or zero first, then input channels c, then taps t, one FMA each; the weight
 * gradient's partials over the vectors i in order), so the two levels give the same bits.
 * Call only when ply_cpu_level() >= PLY_CPU_AVX2 on x86-64.
 */
#ifndef PLY_CONV_DIRECT_AVX2_H
#define PLY_CONV_DIRECT_AVX2_H

#include <stdint.h>

#include "plugin_support.h"

PLY_INTERNAL_BEGIN

/** Planes [C][H][W] copied into zeroed padded planes (channel stride CS, row Wp) at (ph, pw); with `where`
 *  (the output of a fused relu), src where it is positive, zeros elsewhere. */
void conv_direct_pad_planes_avx2(float *dst, int64_t CS, int64_t Wp, const float *src, const float *where, int64_t C,
                                 int64_t H, int64_t W, int64_t ph, int64_t pw);

/** dst[c][h][w] = src[c*Q + h*rs + w], or its relu (max(v, 0), NaN passed through). */
void conv_direct_unpad_planes_avx2(float *dst, const float *src, int64_t Q, int64_t rs, int64_t C, int64_t H, int64_t W,
                                   int relu);

/** out[o][q] = bias[o] + sum_c sum_t w(o, c, t) * in[c*CS + q + offs[t]] for o < Cout, q < Q (a multiple
 *  of 32 when Cout % 8 == 0, of 64 otherwise), w packed by conv_direct.c's pack(); bias may be NULL. */
void conv_direct_correlate_avx2(float *out, int64_t Q, const float *in, int64_t CS, int64_t Cin, int64_t Cout,
                                const float *w, const float *bias, const int64_t *offs, int64_t KK);

/** dwv[(o*Cin + c)*KK + t][lane] += sum over i < Q/16 of g[o*GS + 16i + lane] * in(c, 16i + offs[t] + lane),
 *  in(c, q) = xpad[c*CS + q] where bit lane of masks[i] is set, 0 elsewhere. */
void conv_direct_weight_grad_avx2(float *dwv, int64_t OC, int64_t Cin, int64_t KK, const float *g, int64_t GS,
                                  int64_t Q, const float *xpad, int64_t CS, const int64_t *offs, const uint16_t *masks);

/** dbv[o][lane] += sum over i < Q (a multiple of 16) with i % 16 = lane of g[o*GS + i]. */
void conv_direct_bias_grad_avx2(float *dbv, int64_t OC, const float *g, int64_t GS, int64_t Q);

PLY_INTERNAL_END
#endif
