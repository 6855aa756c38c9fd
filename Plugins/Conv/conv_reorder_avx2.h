/*
 * The reorders between NCHW and the blocked channel layout (ABI 1.7's PLY_LAYOUT_NCHW16C: [N][C/16][H][W][16],
 * zero lanes past C) at the AVX2 level (AVX2 + FMA: Haswell, Zen 1-3 and later), for CPUs without AVX-512:
 * conv_blocked.c's reorder_units in 8 x 8 tiles (8 positions of 8 channels: 8 vectors read, transposed in
 * registers, 8 written) instead of a float at a time. Copies only, so the bits are the scalar loops'.
 *
 * Both take units u in [begin, end) of (image n = u / CB, block of 16 channels cb = u % CB), CB = ceil(C / 16);
 * a unit's block has lanes = min(16, C - 16 cb) real channels and P positions (H x W).
 */
#ifndef PLY_CONV_REORDER_AVX2_H
#define PLY_CONV_REORDER_AVX2_H

#include <stdint.h>

#include "plugin_support.h"

PLY_INTERNAL_BEGIN

/**
 * NCHW to NCHW16c: dst[u P 16 + p 16 + l] = src[(n C + 16 cb + l) P + p] for l < lanes, 0 for l >= lanes
 * (every float of the units' blocks written), for p < P. src: [N][C][P]; dst: [N][CB][P][16]. Reads no
 * plane past src's C (a partial block's missing planes are zeros, not reads) and no float past a plane's P.
 * dst and src MUST NOT overlap. Any thread; disjoint units may run at once. Call only when
 * ply_cpu_level() >= PLY_CPU_AVX2 on x86-64.
 */
void conv_reorder_in_avx2(float *dst, const float *src, int64_t C, int64_t P, int64_t begin, int64_t end);

/**
 * NCHW16c to NCHW, the inverse: dst[(n C + 16 cb + l) P + p] = src[u P 16 + p 16 + l] for l < lanes, p < P
 * (the lanes past C are ignored; no float of dst outside the units' real planes is written). src:
 * [N][CB][P][16]; dst: [N][C][P]. The same rules as conv_reorder_in_avx2.
 */
void conv_reorder_out_avx2(float *dst, const float *src, int64_t C, int64_t P, int64_t begin, int64_t end);

PLY_INTERNAL_END
#endif
