/*
 * conv_1x1.c's product at the AVX2 level (AVX2 + FMA: Haswell, Zen 1-3 and later), for CPUs without
 * AVX-512. The same sums and the same loop order as conv_1x1.c's large planes:
 *
 *   y[n][o][p] = bias[o] + sum_k w[o][k] * xs[n][k][p]   for n < ni, o in [o0, o1), p in [p0, p1),
 *
 * K in blocks of KC = 256, each strip of 32 positions' block of xs (KC rows P floats apart) copied
 * into a contiguous KC x 32 panel that stays in L1 while the blocks of 12 output channels' weights
 * (packed by conv_1x1_pack_weights when given, else read in place) stream past it. The register
 * tile is 6 output channels x 16 positions (12 accumulators of 8 floats, 2 loads of the panel and 6
 * broadcasts of weights per input channel: the shape of OpenBLAS's Haswell SGEMM tile), four of
 * them per strip and block of 12 channels; partial strips and blocks are masked, not padded in y.
 *
 * With packed weights, a strip's last 1 to 4 positions past its tiles of 16 (7x7 planes: 49 = 32 + 16 + 1;
 * 14x14: 196 = 6 x 32 + 4; 17x17: 289 = 9 x 32 + 1) go through column() instead: the weights as the
 * vectors, each position's input broadcast, up to 4 blocks of 12 channels at a time, the same fused
 * multiply-adds per output in the same order (bit for bit a tile's). A tile of 8 lanes ran them at 1-4
 * live lanes, 6 accumulators. In-process A/B of the product alone (thread CPU time, 31-41 alternating
 * calls, Zen 3, min / median GFLOPS, tiles only -> with columns): 2048->512 7x7 cold 49.9 / 39.8 ->
 * 59.3 / 46.8, warm 67.7 / 65.4 -> 77.0 / 74.3; 512->2048 7x7 cold 56.5 / 49.2 -> 63.5 / 53.0, warm
 * 47.9 / 45.4 -> 55.1 / 52.9; 768->192 17x17 cold 74.6 / 62.7 -> 77.2 / 67.3; 14x14 unchanged (75.1 /
 * 71.2 -> 75.4 / 70.8).
 */
#ifndef PLY_CONV_1X1_AVX2_H
#define PLY_CONV_1X1_AVX2_H

#include <stdint.h>

#include "plugin_support.h"

PLY_INTERNAL_BEGIN

/** Floats of the panel conv_1x1_product_avx2 reads its strips into: 256 input channels x 32 positions. */
#define CONV_1X1_AVX2_PANEL_FLOATS (256 * 32)

/**
 * The sums above, relu'd when `relu` (NaN passes, as the built-in relu); bias [OC] or NULL.
 * w: [OC][K]; wp: w packed by conv_1x1_pack_weights (blocks of 12 rows, [OC/12][K][12]) or NULL, in
 * which case w is read. xs: [ni][K][P]; y: [ni][OC][P]. When wp is given, o0 MUST be a multiple of 12.
 * xp: scratch of CONV_1X1_AVX2_PANEL_FLOATS floats, the caller's own (disjoint per thread). Any
 * thread; disjoint outputs may run at once. Call only when ply_cpu_level() >= PLY_CPU_AVX2 on x86-64.
 */
void conv_1x1_product_avx2(const float *w, const float *wp, int64_t K, int64_t OC, const float *xs, float *y,
                           int64_t P, int64_t ni, int64_t o0, int64_t o1, int64_t p0, int64_t p1, const float *bias,
                           int relu, float *xp);

PLY_INTERNAL_END
#endif
