/*
 * conv_1x1.c's product (conv_1x1_product.c), private to the conv plugin: the register tiles' shape,
 * the blocking and the order a plane takes, each constant with the measurement behind it.
 */
#ifndef PLY_CONV_1X1_PRODUCT_H
#define PLY_CONV_1X1_PRODUCT_H

#include <stdint.h>

#include "plugin_support.h"

PLY_INTERNAL_BEGIN

// Output channels per register tile: 12 rows x 2 vectors of 16 positions = 24 accumulators, 2
// loads of xs and 12 broadcasts per input channel (MLAS's SGEMM tile on AVX-512).
#define MR 12
// Input channels per pass: a strip's block of xs (KC x 32 floats, 32 KB) stays in L1 while the
// blocks of every output channel's weights stream past it.
// (KC 128 / 256 / 512 / whole K, GFLOPS single thread: 28x28 192->64 136 / 138 / 136 / 136, 14x14
// 1024->256 133 / 136 / 133 / 134, 56x56 256->64 99 / 95 / 98 / 88: flat within the noise but for
// the whole K on the large plane.)
// (With the strip packed, branch rn50, Benchmarks/pointwise_kernel.c cold, load ~16 on 2 cores, GFLOPS
// KC 256 / 128: 56x56 256->64 77 / 77, 256->128 107 / 106, 28x28 512->128 121 / 107, 512->256
// 122 / 124, 1024->256 125 / 121; K blocks outermost or the strips outermost with the K blocks
// inside: equal within the noise.)
#define KC 256
// Large planes: while the first tile of a strip runs, the rows of the strip PXDIST strips ahead are
// prefetched with hint PXHINT (the packing then reads them from L2 instead of waiting on 2*KC
// lines, each in another page, that no hardware prefetcher follows). Cold, load ~16, GFLOPS,
// medians of 3, hint T0 / T1 / T2 at distance 1: 56x56 256->64 80 / 87 / 90, 256->128 103 / 107
// / 111, 28x28 512->128 105 / 113 / 124, 512->256 125 / 132 / 128 (T0 lands in L1 beside the
// packed strip and the weights and is evicted before use); T1 at distance 1 / 2, another round:
// 93 / 103, 109 / 117, 112 / 116, 124 / 121; T2 at distance 2 / 4: 96 / 100, 120 / 118, 98 / 115,
// 126 / 126.
#define PXHINT _MM_HINT_T1
#define PXDIST 2
// Positions per strip: two vectors.
#define NR 32
// One image's xs of at most this many floats (1 MB; L2 is 2 MB per core here) is walked with
// every weight row block read once and kept in L2 while all strips pass under it, each over
// the whole K ("small planes": 28x28 and less at GoogLeNet's and ResNet-50's widths); larger
// ones in KC blocks with the strip in L1 and the weights streaming.
// Single thread, GFLOPS at 1 MB / 2 MB / 4 MB: 28x28 512->128 130 / 100 / 95, 56x56 256->64
// 107 / 106 / 69, 28x28 512->256 125 / 100 / 115, batch 16 14x14 1024->256 131 / 108 / 84.
#define PLANE_FLOATS (1 << 18)
// Planes of at most this many floats of xs per image take the small-plane order, larger ones the
// packed strips. Cold, load 11-15, GFLOPS, medians of 3, small order -> packed strips: 56x56
// 64->256 120 -> 98, 64->64 65 -> 78 (noise: main's build ran 104), 28x28 128->512 113 -> 120,
// 14x14 256->1024 125 -> 122, 1024->256 121 -> 119, 7x7 512->2048 106 -> 86, 56x56 stride 2
// 256->512 (two rounds) 99 / 99 -> 112 / 100, 28x28 stride 2 512->1024 121 / 118 -> 109 / 110.
#define SMALL_MAX PLANE_FLOATS
// Small planes: when P mod 16 is at most this, those last positions are done as dot products
// over K (vectors along K, 4 output channels x 4 positions at a time) instead of a 16-lane tile
// mostly masked off: 7x7 (49 = 32 + 16 + 1) and 14x14 (196 = 6*32 + 4).
#define TAIL_MAX 8
// Rows of the 3-vector tile (48 positions): 8 x 3 = 24 accumulators. Small planes whose positions
// (less the tail) split into strips of 48 but not of 32 take it: 7x7 (48 = 3 vectors, where the
// 12 x 32 tile leaves a strip of 16 with 13 loads per 12 multiply-adds). Single thread, clang -O2
// build of this file, all in cache, GFLOPS 12 x 32 -> 8 x 48: 7x7 512->2048 122 -> 156, 2048->512
// 127 -> 157, 832->384 129 -> 160. Not taken where 32 divides too: 14x14 (192 = 6*32 = 4*48)
// 256->1024 144 -> 146, 1024->256 147 -> 148, 480->192 153 -> 151 (equal within the noise);
// nor on large planes (56x56 256->64 135 -> 140, 256->128 138 -> 140, 28x28 512->128 147 -> 144).
#define MR3 8
#define NR3 48
// Floats of a worker's packed strip on large planes: KC rows of NR positions.
#define XP_FLOATS (KC * NR)

// Planes of at least PACK_P positions with at least PACK_K input channels take the packed strips
// even within SMALL_MAX (AVX-512 level): Inception v3's 35x35 and GoogLeNet's 28x28 1x1 convs on 192
// and 256 channels. Small order -> packed strips, Benchmarks/pointwise_kernel.c cold, 1 thread, Intel
// Xeon model 207, load ~24 on 2 cores, 8 alternating runs, best / median GFLOPS: 35x35 192->64 69 /
// 59 -> 119 / 82, 192->32 67 / 39 -> 67 / 60, 28x28 192->64 78 / 60 -> 101 / 78, 256->128 86 / 81
// -> 104 / 92; not below (17x17 768->128 120 / 93 -> 103 / 81, 768->192 116 / 91 -> 107 / 83) nor on
// fewer channels (56x56 64->256 106 / 92 -> 92 / 74, 64->64 77 / 63 -> 72 / 60).
#define PACK_P 784
#define PACK_K 192

// Whether the product takes the small-plane order (every block of weight rows once, each strip over
// the whole K) for K input channels on planes of P positions; else the packed strips.
static inline int conv_1x1_small_order(int64_t K, int64_t P) {
    return K * P <= SMALL_MAX && !(P >= PACK_P && K >= PACK_K && ply_cpu_level() >= PLY_CPU_AVX512);
}

#if PLY_HAVE_X86_TARGETS
// y[n][o][p] = bias[o] + sum_c w[o][c] * xs[n][c][p] (+ res[n][o][p] when res is not NULL; AVX-512 level only:
// conv_1x1_adds_residual), relu'd when relu, for images n < ni, o in [o0, o1), p in [p0, p1); xs [ni][K][P], y
// and res [ni][OC][P]; wp: w packed (conv_1x1_pack_weights) or NULL. xt, xp: a worker's scratch for the
// transposed tail positions and the packed strips (conv_1x1.c's xt_floats and xp_floats). At the AVX-512 level
// the tiles of conv_1x1_product.c, below it conv_1x1_avx2.c's panel.
void conv_1x1_product(const float *w, const float *wp, int64_t K, int64_t OC, const float *xs, float *y, int64_t P,
                      int64_t ni, int64_t o0, int64_t o1, int64_t p0, int64_t p1, const float *bias, const float *res,
                      int relu, float *xt, float *xp);
#endif

PLY_INTERNAL_END

#endif
