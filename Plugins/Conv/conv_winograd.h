/*
 * conv2d forward for 3x3, stride 1 by Winograd's minimal filtering F(m x m, 3x3)
 * (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2015),
 * with output tiles of m = 2, 4 or 6.
 *
 * Each m x m block of outputs ("tile") of one channel comes from an a x a
 * patch d of the input (a = m + 2): Y = A^T [ sum_c (G g_c G^T) .* (B^T d_c B) ] A.
 * The sum over channels of the element-wise products is a*a independent
 * products, one per element xi of the a x a transforms,
 *
 *   M_xi [OC, T] = U_xi [OC, C] * V_xi [C, T]     (T: tiles of the batch)
 *
 * a*a * OC * C multiply-adds per tile where im2col needs m*m * 9 * OC * C:
 * 2.25x fewer for F(2x2) (16 for 36), 4x fewer for F(4x4) (36 for 144), 5.06x fewer for
 * F(6x6) (64 for 324).
 * The matrices (B, G, A) are in conv_winograd.c (F(2x2): 0, +-1, 1/2) and
 * conv_winograd4.c (F(4x4): ncnn's, interpolation points 0, +-sqrt(2),
 * +-sqrt(2)/2 and infinity, whose transforms stay within 2.5 in size and
 * lose less than the usual 0, +-1, +-2) and conv_winograd6.c (F(6x6): ncnn's, points 0, +-1,
 * +-2, +-1/2 and infinity, G scaled so B and A stay within 5.25 and 32). The products go through
 * conv_kernel.c's AVX-512 kernel: V is written straight into its strips of
 * 32 tiles.
 *
 * U = G g G^T depends on the weights only: conv.c keeps it per layer and
 * redoes it only when the weights change (conv_wino_cache_get, conv_weight_cache.h), and conv_s2d.c
 * the folded weights' U the same way; the backward's flipped weights (conv_winograd_backward.c) go
 * through conv_winograd_forward, which transforms into its scratch on every call.
 *
 * Two plans: "columns" gives each thread whole chunks of tiles (transform,
 * a*a products, inverse transform, all in its own cache-sized scratch);
 * "rows" (few tiles: batch 1 late in a network) transforms the input once
 * and splits the output channels between the threads; "ranges" (a few strips
 * per thread, too many tiles for "rows" to stay in cache, or chunks that would
 * not fall evenly in "columns") gives each thread a contiguous range of
 * half-strip units of tiles, done as "columns" does its chunks, and the units
 * left over (fewer than the threads) to all of them by output channels.
 */
#ifndef PLY_CONV_WINOGRAD_H
#define PLY_CONV_WINOGRAD_H

#include <stddef.h>

#include "conv_gemm.h"
#include "conv_weight_cache.h"
#include "plugin_support.h"

PLY_INTERNAL_BEGIN

/** Whether Winograd applies at every tile side and in training: a 3x3 kernel, stride 1, an AVX-512 CPU. */
int conv_winograd_fits(const conv_geom *g);

/**
 * The output tile side "auto" takes for this layer: 4 or 2, 6 nowhere yet (see the rule and
 * its measurements in conv_winograd.c); 4 below the AVX-512 level. g MUST fit, or suit in evaluation.
 */
int conv_winograd_tile(const conv_geom *g);

/**
 * Whether it pays: it fits, both channel counts are at least 16 and there are at least 64 tiles of 2x2.
 * AVX-512 only: training's backward (conv_winograd_backward.c, conv_winograd_wgrad.c) has no AVX2 kernels.
 */
int conv_winograd_suits(const conv_geom *g);

/**
 * Tiles of 2x2 from which "auto" takes Winograd in evaluation (conv_winograd_suits_inference), where U is
 * transformed once per weight version instead of once per forward: one strip of the product kernel
 * (CONV_KERNEL_NR). Below it, a stride-1 3x3 layer takes the panels (conv_panels_suits). Measured one
 * thread, by thread CPU time (Benchmarks/spans_kernel.c's panels against Benchmarks/winograd_threads.c's
 * F(2x2) forward with U made, medians of 9, warm, load 17-21 on 2 cores), N C->OC HxW, ms panels /
 * F(2x2) (2 threads' larger thread): 49 tiles: 1 256->256 14x14 2.12 / 1.51 (0.80), 1 512->512 14x14
 * 8.68 / 6.09 (2.96), 1 160->320 14x14 1.65 / 1.32 (0.72), 1 96->208 14x14 0.69 / 0.47 (0.27),
 * 1 128->256 14x14 1.06 / 0.82, 1 192->384 13x13 2.13 / 1.75, 1 384->256 13x13 2.85 / 2.29,
 * 1 256->256 13x13 1.86 / 1.62; 32 and 48 tiles: 2 512->512 7x7 4.44 / 3.05, 3 512->512 7x7 6.48 /
 * 5.37, 2 256->256 7x7 1.07 / 0.95; 16 tiles (half a strip): 1 512->512 7x7 2.15 / 2.27, 1 160->320
 * 7x7 0.43 / 0.40 (the panels stay).
 */
#define CONV_WINOGRAD_INFERENCE_MIN_TILES 32
/**
 * Below 64 tiles, only where F(2x2)'s U has at most this many floats (8 MB): each forward reads U from
 * memory in a model, 16/9 of the plain weights. VGG-16's three 14x14 512->512 layers (U 16 MB each)
 * measured no gain at batch 1, 1 thread (`Benchmarks/ab-cpu`, 3 rounds, CPU ms 165.0 against 163.8,
 * 0.99) for +24 MB of peak memory (781 -> 806 MB); ResNet-50's 256->256 (4 MB) 1.02-1.04, AlexNet's
 * 13x13 layers (at most 6 MB) 1.10, whole models.
 */
#define CONV_WINOGRAD_INFERENCE_MAX_U (1 << 21)

/**
 * Whether Winograd pays in evaluation: as conv_winograd_suits, or from CONV_WINOGRAD_INFERENCE_MIN_TILES tiles of 2x2 where
 * F(2x2)'s U has at most CONV_WINOGRAD_INFERENCE_MAX_U floats. At the AVX2 level ("auto" in evaluation only, where
 * conv_winograd_fits is 0): a 3x3, stride-1 layer of at least 16 channels each way, 16 tiles of 4x4 and at most
 * 0.45 of the direct products in F(4x4), the one tile with AVX2 transforms (conv_winograd4_avx2.c; the rule's
 * measurements in conv_winograd.c).
 */
int conv_winograd_suits_inference(const conv_geom *g);

/** Floats of U for tile side m (2, 4 or 6): (m+2)^2 * OC * C (at AVX2, OC rounded up to the kernel's blocks). */
size_t conv_winograd_weights_floats(const conv_geom *g, int m);

/**
 * U = G w G^T for tile side m, w: [OC, C, 3, 3], U: conv_winograd_weights_floats
 * floats, split over `threads` threads of host->parallel_for.
 */
void conv_winograd_weights(const ply_host *host, int64_t threads, const conv_geom *g, int m, const float *w, float *U);

/** Floats of scratch conv_winograd_forward_u needs with tile side m and `threads` threads. */
size_t conv_winograd_forward_u_floats(const conv_geom *g, int m, int64_t threads);

/**
 * y = conv(x, w) + bias, relu'd when `relu` (NaN passes), with U the weights
 * transformed by conv_winograd_weights for the same m. bias: [OC] or NULL,
 * x: [N, C, H, W], y: [N, OC, OH, OW]. g MUST fit.
 */
void conv_winograd_forward_u(const ply_host *host, int64_t threads, const conv_geom *g, int m, const float *U,
                             const float *bias, int relu, const float *x, float *y, float *scratch);

/** Floats of scratch conv_winograd_forward needs with `threads` threads (U included). */
size_t conv_winograd_forward_floats(const conv_geom *g, int64_t threads);

/**
 * conv_winograd_forward_u with the tile side of conv_winograd_tile and the weights
 * w: [OC, C, 3, 3] transformed into the scratch first (for callers whose
 * weights are new on every call). g MUST fit.
 */
void conv_winograd_forward(const ply_host *host, int64_t threads, const conv_geom *g, const float *w,
                           const float *bias, int relu, const float *x, float *y, float *scratch);

/**
 * *U = the cache's U for tile side m when the weights w are those it was made from (the rules of
 * conv_weight_cache, with `threads` threads for the hash), else U made from w now (and kept).
 * PLY_ERR_OUT_OF_MEMORY (with a message) leaves the cache empty but valid.
 */
ply_status conv_wino_cache_get(conv_weight_cache *cache, const ply_host *host, int64_t threads, const conv_geom *g,
                               int m, const float *w, int host_only, const float **U);

/* ---- shared by conv_winograd.c and conv_winograd4.c ---- */

/** How one call splits its tiles. */
typedef struct {
    int m, a, xi;      // tile side, patch side m + 2, products a*a
    int64_t TH, TW, T; // tiles down, across, in the batch
    int rows;          // the "rows" plan: one chunk of every tile, output channels split
    int64_t tc;        // tiles per chunk, a multiple of CONV_KERNEL_NR
    int64_t chunks;
    int64_t threads;
    int ranges;        // the "ranges" plan: each thread a contiguous range of tiles, in chunks of tc
    int64_t share;     // "ranges": tiles per thread's range, thread th's [th*share, min(T, (th+1)*share))
    int64_t tail;      // "ranges": tiles [tail, T) are every thread's, each its output channels (T: none)
    int64_t vxi, mxi;  // floats from one element's V (M) to the next's: strips*C*NR (OC*tc), at AVX2 plus
                       // CONV_WINO_AVX2_PAD (the AVX2 code's layout; the AVX-512 code computes the plain one)
} conv_wino_plan;

/**
 * Floats added between the elements' V and M blocks at the AVX2 level: without them each block is a
 * multiple of 4 KB, so the 36 loads of a tile's M (and the 36 stores of its V) fall in one set of the
 * 8-way L1 and miss each other out (`perf annotate`: the output transform's M loads were most of its
 * samples). Benchmarks/winograd_threads.c, 1 thread unless said, AMD EPYC Zen 3, 3 alternating rounds
 * (the test suite's build on the other core), CPU ms without / with: 1 64->64 56x56 1.82 1.92 2.56 /
 * 1.37 2.13 2.31; 1 128->128 28x28 1.50 1.56 2.19 / 1.35 1.46 1.95; 1 256->256 14x14 2.13 2.16 3.05 /
 * 1.63 1.99 2.10; 2 threads 1 64->64 56x56 (both threads) 2.18 2.19 2.58 / 1.53 1.96 2.10.
 */
#define CONV_WINO_AVX2_PAD 16

/**
 * The tiles [t, t + *cnt) from t (< t1) that share a tile row and do not cross
 * a multiple of 16 from cbase (one vector of tiles), with image n, tile row th
 * and column tw of the first.
 */
void conv_wino_segment(const conv_wino_plan *p, int64_t t, int64_t t1, int64_t cbase, int64_t *n, int64_t *th,
                       int64_t *tw, int64_t *cnt);

/** F(4x4, 3x3)'s U for output channels [o0, o1): U [36][OC][C]. */
void conv_wino4_weights(const conv_geom *g, const float *w, int64_t o0, int64_t o1, float *U);

/** F(4x4, 3x3)'s V of tiles [t0, t1) of the chunk at tile cbase, channels [c0, c1): V [36][tc/32][C][32]
 *  (at AVX2 each element p->vxi floats after the last: conv_wino4_input_avx2). */
void conv_wino4_input(const conv_geom *g, const conv_wino_plan *p, const float *x, int64_t cbase, int64_t t0,
                      int64_t t1, int64_t c0, int64_t c1, float *V);

/** F(4x4, 3x3)'s y = A^T m A + bias (relu'd) for tiles [t0, t1) of the chunk at cbase, channels [o0, o1). */
void conv_wino4_output(const conv_geom *g, const conv_wino_plan *p, const float *M, int64_t cbase, int64_t t0,
                       int64_t t1, int64_t o0, int64_t o1, const float *bias, int relu, float *y);

/**
 * conv_wino4_weights at the AVX2 level (conv_winograd4_avx2.c): the same values, each U_xi in conv_kernel_avx2.h's
 * blocks of rows (conv_kernel_avx2_packed_floats(OC, C) floats apart). o0 MUST be a multiple of CONV_KERNEL_AVX2_MR.
 */
void conv_wino4_weights_avx2(const conv_geom *g, const float *w, int64_t o0, int64_t o1, float *U);

/** conv_wino4_input at the AVX2 level: the same V to the bit. */
void conv_wino4_input_avx2(const conv_geom *g, const conv_wino_plan *p, const float *x, int64_t cbase, int64_t t0,
                           int64_t t1, int64_t c0, int64_t c1, float *V);

/** conv_wino4_output at the AVX2 level: the same y to the bit. */
void conv_wino4_output_avx2(const conv_geom *g, const conv_wino_plan *p, const float *M, int64_t cbase, int64_t t0,
                            int64_t t1, int64_t o0, int64_t o1, const float *bias, int relu, float *y);

/** F(6x6, 3x3)'s U for output channels [o0, o1): U [64][OC][C]. */
void conv_wino6_weights(const conv_geom *g, const float *w, int64_t o0, int64_t o1, float *U);

/** F(6x6, 3x3)'s V of tiles [t0, t1) of the chunk at tile cbase, channels [c0, c1): V [64][tc/32][C][32]. */
void conv_wino6_input(const conv_geom *g, const conv_wino_plan *p, const float *x, int64_t cbase, int64_t t0,
                      int64_t t1, int64_t c0, int64_t c1, float *V);

/** F(6x6, 3x3)'s y = A^T m A + bias (relu'd) for tiles [t0, t1) of the chunk at cbase, channels [o0, o1). */
void conv_wino6_output(const conv_geom *g, const conv_wino_plan *p, const float *M, int64_t cbase, int64_t t0,
                       int64_t t1, int64_t o0, int64_t o1, const float *bias, int relu, float *y);

PLY_INTERNAL_END
#endif
