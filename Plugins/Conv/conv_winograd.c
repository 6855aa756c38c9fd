/*
 * conv2d forward by Winograd F(2x2, 3x3), F(4x4, 3x3) and F(6x6, 3x3) (see conv_winograd.h): the
 * plans, the products and F(2x2)'s transforms; F(4x4)'s are in conv_winograd4.c, F(6x6)'s in
 * conv_winograd6.c.
 *
 * Layouts (a = m + 2, xi = a*i + j, the element of an a x a transform; T tiles,
 * t = (n*TH + th)*TW + tw; tile (th, tw) is outputs [m*th, m*th + m) x [m*tw, m*tw + m) and reads
 * inputs [m*th - PH, m*th - PH + a) x [m*tw - PW, m*tw - PW + a), zeros outside):
 *   U [a*a][OC][C]                transformed weights, rows for conv_kernel_gemm
 *   V [a*a][tc/32][C][32]         transformed input of a chunk of tc tiles: the kernel's strips
 *   M [a*a][OC][tc]               the a*a products
 *
 * F(2x2, 3x3):  B^T = [1  0 -1  0]   G = [ 1    0    0 ]   A^T = [1 1  1  0]
 *                     [0  1  1  0]       [1/2  1/2  1/2]         [0 1 -1 -1]
 *                     [0 -1  1  0]       [1/2 -1/2  1/2]
 *                     [0  1  0 -1]       [ 0    0    1 ]
 */
#include "plugin_support.h"

#include "conv_winograd.h"

#include <string.h>

#include "conv_kernel.h"
#include "conv_kernel_avx2.h"

#define NR CONV_KERNEL_NR
// Floats of V and M per chunk (1 MB): a thread's chunk stays in its L2 (6 MB measured 5-10% slower).
#define CHUNK_FLOATS (1 << 18)
// Fewer tiles than this and im2col is as fast: the weights' transform is not paid back (AlexNet's
// 13x13 layers at batch 1, 49 tiles, ran 10% slower).
#define MIN_TILES 64
// With fewer strips of tiles per thread than this the threads split output channels ("rows": V for
// all the tiles, each thread its output channels' M), unless "columns" (each thread its own chunks
// of tiles, as at 1 thread) has full chunks that fall evenly on the threads, COLUMNS_MIN_CHUNKS or
// more each, and U of at most COLUMNS_MAX_U floats (each chunk streams all of U). Batch 16's 13x13
// and 14x14 planes (256 F(4x4) tiles, 8 strips) took "rows" at 2 threads: V and M for all tiles pass
// the L2, 30-40% more CPU than 1 thread. Measured Benchmarks/winograd_threads.c, 2 threads, the
// sum of the threads' CPU time in the forward's regions (median of 9 forwards, load 12-20, so
// within ~15%: the same plan measured 11.6 and 15.9 ms in two rounds once), N C->OC HxW,
// ms rows / columns, 2-4 rounds:
//   AlexNet 16 192->384 13x13: 21.1 / 16.8, 21.3 / 19.6, 21.4 / 18.2, 21.8 / 19.0 (1 thread 15.9-18.9)
//           16 384->256 13x13: 24.4 / 22.4, 25.5 / 22.8, 26.9 / 23.2, 25.1 / 20.5 (1 thread 21.8-23.5)
//           16 256->256 13x13: 18.4 / 15.2, 18.9 / 14.9, 18.5 / 17.0, 18.9 / 15.2 (1 thread 13.8-18.5)
//   GoogLeNet 16 112->224 14x14: 10.2 / 6.2, 10.3 / 5.8, 9.2 / 5.4, 12.4 / 6.0
//             16 160->320 14x14: 16.3 / 12.8, 15.8 / 12.5, 16.3 / 12.8, 15.7 / 11.5
//   ResNet    16 256->256 14x14: 19.2 / 14.0, 18.2 / 14.8, 18.0 / 14.6, 20.2 / 16.6
// but with U of 38 MB (VGG-16's 16 512->512 14x14) "columns" streams U 4 times per thread:
// 57.4 / 57.3, 55.3 / 56.6, 54.7 / 57.6, 53.2 / 58.6 (it stays "rows"; AlexNet's largest U is 14 MB),
// and where the chunks would be uneven (7 strips: 1 256->256 56x56) "rows" stays ahead on the
// larger thread: 5.99 / 6.81, 6.16 / 6.43.
#define ROWS_STRIPS 8
#define COLUMNS_MIN_CHUNKS 4
#define COLUMNS_MAX_U (1 << 22)
// Where "rows" would still be taken, each thread has at least RANGES_STRIPS strips and "rows" would
// need more than CHUNK_FLOATS per thread (all of V and the thread's share of M): each thread takes
// a contiguous range of strips ("ranges"), in chunks that stay in its L2. Measured (branch thr2c,
// PLY_REGION_TRACE, batch 1, 2 threads, both threads' CPU time summed over 1 thread's): "rows" on
// ResNet-18's 64->64 56x56 F(4x4) (7 strips of 32 tiles; all of V and M 3.8 MB, past the 2 MB L2)
// took 1.6-1.7x the CPU time of 1 thread's L2-sized chunks, "ranges" 1.20-1.25x; GoogLeNet's
// 64->192 56x56 1.31x in "rows", its critical path 1.18x shorter in "ranges". Measured on 7-strip
// layers only (Inception v3's 35x35, 3 strips, stays in "rows").
#define RANGES_STRIPS 3
// "ranges" cuts the tiles in units of half a strip (the kernel runs a strip of at most 16 columns at
// half the cost of a full one, conv_kernel.c's micro8_half): each thread gets floor(units / threads)
// units, and the units left over (fewer than the threads: a strip's worth at most) are every thread's,
// each transforming their input itself and running its own output channels. Whole strips instead left
// Inception v3's Conv2d_4a (80->192 71x71, 324 F(4x4) tiles: 5 strips + 5 strips and 4 tiles) with
// the second thread 9% more CPU (2514 / 2742 us, PLY_REGION_TRACE, loaded machine), and "columns"
// with a part-filled last chunk (Conv2d_2b, 1369 tiles in 22 chunks of 64) 3.5% on the first
// (2362 / 2282 us); after: BENCHMARKS.md (issue #16, branch v3par).
#define RANGE_UNIT (NR / 2)
// F(4x4) or F(2x2) (conv_winograd_tile), measured one thread, best of 7, N C->OC HxW, ms F(2x2) / F(4x4),
// on the loaded shared machine (load 5-9, so within ~30%):
//   1 64->64 56: 1.12 / 0.85   1 64->64 224: 20.9 / 12.9   1 128->128 112: 20.4 / 14.9
//   1 256->256 56: 15.1 / 10.1   1 512->512 28: 19.0 / 15.7, 32.5 / 30.6, 34.3 / 30.0
//   16 64->64 56: 27.7 / 18.5   16 128->128 28: 26.6 / 21.6   16 512->512 7: 27.1 / 34.9, 33.3 / 26.5, 38.0 / 36.5
//   14x14 planes, where F(4x4)'s tiles cover 16x16 (0.73 of F(2x2)'s products instead of 0.56):
//   4 512->512: 28.0 / 37.0, 30.9 / 34.0   1 256->256: 1.25 / 1.16, 1.30 / 1.89, 1.46 / 1.75
//   8 256->256: 9.2 / 13.2, 12.7 / 11.8    16 256->256: 33.6 / 23.2
//   a lone part-filled strip (1 512->512 7: 4 tiles): 1.66 / 5.21
// So F(4x4) where it saves at least 40% of the products and fills a strip of 32 tiles.
// 14x14 planes again with the same harness as F(6x6)'s below (load 12-17; three passes each):
//   16 512->512: 95.7 / 76.7, 96.9 / 75.9, 94.7 / 74.8   16 256->256: 30.1 / 22.8, 25.0 / 22.2, 19.9 / 20.5
//   16 128->128: 6.15 / 5.32, 5.59 / 5.01, 5.78 / 4.90    32 256->256: 49.5 / 53.6, 40.4 / 41.3, 41.3 / 39.5
//   8 512->512: 47.8 / 35.8, 49.0 / 36.9, 50.2 / 39.3     8 256->256: 10.7 / 10.5, 11.4 / 11.4, 11.5 / 10.9
//   4 512->512: 27.0 / 18.7, 25.3 / 18.4, 25.4 / 20.4     (against the 4 512->512 above: the load)
// So also F(4x4) where it needs at most F4_MAX_PRODUCTS_MANY of the products with at least
// F4_MANY_STRIPS strips of tiles (14x14 planes from batch 16: ResNet's layer3, VGG-16's last stage);
// F(2x2) at batch 1 (1 256->256 14x14: 1.51 / 2.28, 1.25 / 1.46 ms).
// Checked on every Winograd layer of ResNet-18, GoogLeNet and VGG-16 (BENCHMARKS.md, issue #16:
// thread CPU time, min of 3 passes, F(2x2) with its weights transformed per call as before /
// this rule with U kept): 1.13-1.48x faster, except 256->512 at 28x28 (0.98) and GoogLeNet's
// 16->32 at 28x28 (0.07 / 0.08 ms: too few channels for F(4x4)'s transforms to pay; not worth a
// rule of its own yet).
#define F4_MAX_PRODUCTS 0.6
#define F4_MIN_STRIPS 1
#define F4_MAX_PRODUCTS_MANY 0.75
#define F4_MANY_STRIPS 8
// But F(2x2) wherever the input has fewer than F4_MIN_CHANNELS channels and the output plane is at most
// F4_SMALL_SIDE a side: there F(4x4)'s transforms cost more than its fewer products save. GoogLeNet's
// 3x3 branches behind a 1x1 reduction (branch3.1), batch 16, 1 thread, `ply bench-layers` on a one-conv
// model (bias, relu after), CPU ms per batch, 3 alternating rounds, loaded machine (load ~15), F(4x4)
// (what the rules above chose) / F(2x2): 24->64 14x14 1.41 1.36 1.38 / 0.89 1.00 1.02, 32->64 14x14
// 1.56 1.66 1.70 / 1.16 1.16 1.22, 32->128 14x14 2.97 2.72 2.82 / 2.13 2.21 2.18, 32->128 7x7 1.30 1.23
// 1.20 / 0.78 0.80 0.76, 48->128 7x7 1.41 1.35 1.38 / 0.95 0.94 0.96, 32->96 28x28 5.47 6.39 5.58 /
// 5.40 5.43 5.35; batch 16, 2 threads: 32->128 7x7 0.66 0.68 / 0.43 0.40, 32->64 14x14 0.81 0.82 / 0.70
// 0.65; batch 1: 32->96 28x28 0.41 0.36 / 0.32 0.32. (64 channels measured F(2x2) ahead on these planes
// as well: 64->128 7x7 1.66 1.61 / 1.24 1.24, 14x14 3.95 3.89 / 3.47 3.51; not taken: no zoo model has
// such a layer there, and ResNet's 64->64 56x56 is F(4x4)'s, above.) Larger planes with few channels
// (Inception v3's 32-channel 147x147 convs) keep the rules above: not measured.
#define F4_MIN_CHANNELS 64
#define F4_SMALL_SIDE 28
// And on planes of at most 14x14 below F4_MIN_CHANNELS_14 input channels: GoogLeNet's inception4 and 5
// 3x3 branches (C -> 2C), the same harness, 3 rounds, F(4x4) / F(2x2): 112->224 14x14 8.96 9.67 9.40 /
// 8.21 8.30 8.24, 128->256 11.82 11.66 11.33 / 10.45 10.77 10.50, 144->288 13.97 13.96 14.31 / 13.03
// 13.65 13.23, 160->320 17.58 17.56 17.88 / 15.84 16.51 16.51, 160->320 7x7 5.83 6.05 5.64 / 5.19 5.53
// 5.21; 192->384 7x7 8.20 7.86 7.50 / 7.68 7.63 7.23 and 8.17 7.40 8.59 / 7.34 7.26 7.67 (not taken: at
// 192 channels AlexNet's 192->384 on 13x13 ties, 22.48 22.51 22.65 / 22.27 22.04 22.63). Wider inputs keep F(4x4) (3 rounds: 512->512 7x7 26.3 21.2 20.3 / 25.7 25.2 24.9, 512->512
// 14x14 67.4 66.3 65.4 / 81.1 76.1 74.2, 256->256 14x14 22.7 21.8 19.6 / 20.7 20.5 20.2; and 128->128
// 14x14 6.55 6.28 6.45 / 6.74 5.95 5.95, a tie).
#define F4_MIN_CHANNELS_14 192
// F(6x6) or F(4x4), measured the same way (thread CPU time, best of 3, load 12-14, so within ~15%),
// N C->OC HxW, ms F(4x4) / F(6x6):
//   where F(6x6)'s tiles cover the plane as tightly as F(4x4)'s (0.82 of its products):
//     1 64->128 112: 6.94 / 6.56   1 128->128 112: 12.44 / 11.27   16 64->128 112: 117.0 / 114.4
//     1 64->64 224: 15.45 / 15.52  16 64->64 224: 243.3 / 254.8 (the transforms, not the products,
//     are most of a 64->64 layer's time, and F(6x6)'s cost more per output)
//   where they cover 60x60 of 56x56 or 30x30 of 28x28 (0.91 of the products):
//     1 64->64 56: 0.95 / 1.11   1 128->128 28: 1.23 / 1.35   16 64->64 56: 16.4 / 18.4
//     16 128->128 28: 15.1 / 16.3   1 128->256 56: 6.28 / 9.22
//   with 256 channels or more, U (64 C OC floats) streams from memory once per chunk of tiles:
//     1 256->256 56: 12.07 / 17.29   1 512->512 28: 16.4 / 17.2   16 512->512 7: 27.7 / 43.4
// The 112x112 gain depends on the load: rerun at load 18-20 (with the test suite and other
// benchmarks on both cores), 1 64->128 112 gave 7.17 / 7.09, 7.10 / 6.83, 7.51 / 6.98, 7.75 / 7.74
// but 1 128->128 112 13.6 / 14.3, 13.2 / 14.1, 14.0 / 15.5, 14.1 / 16.6 and 16 128->128 112
// 228 / 244, 222 / 202, 219 / 232: F(6x6)'s larger U and chunks lose more to a shared cache.
// And at load 9-10, best of 5, three processes: 1 128->128 112: 13.5 / 12.9, 13.4 / 13.2,
// 13.5 / 14.6; 1 64->128 112: 7.59 / 7.64, 7.43 / 7.57, 7.43 / 7.47. Over all these runs the
// median F(6x6) / F(4x4) is 1.05 on 128->128 and 0.99 on 64->128: no reliable gain anywhere.
// So "auto" does not pick F(6x6) (F6_MAX_PRODUCTS 0; `winograd_tile: 6` still forces it). Where
// it might pay, once its transforms cost less per output (perf at 1 64->64 224x224: input and
// output transforms 58% of F(6x6)'s time, 53% of F(4x4)'s; their vectors of one tile row's tiles
// lose lanes on rows that are not a multiple of 16 tiles): at most F6_MAX_PRODUCTS of F(4x4)'s products (0.85 takes the 112x112 and 224x224
// planes, not 56 or 28), C + OC at least F6_MIN_CHANNELS and neither past F6_MAX_CHANNELS: with
// more, U streams from memory per chunk, and F(6x6)'s rounding (~5x F(4x4)'s) passes the layer
// tests' 1e-5 of max |ref| only up to ~128 input channels.
#define F6_MAX_PRODUCTS 0.0
#define F6_MIN_CHANNELS 192
#define F6_MAX_CHANNELS 128

ply_status conv_wino_cache_get(conv_weight_cache *cache, const ply_host *host, int64_t threads, const conv_geom *g,
                               int m, const float *w, int host_only, const float **U) {
    float *u;
    int stale;
    ply_status st = conv_weight_cache_check(cache, host, threads, w, (size_t)(g->OC * g->C * 9), m, host_only,
                                            conv_winograd_weights_floats(g, m), "Winograd's weights", &u, &stale);
    if (st != PLY_OK) return st;
    if (stale) conv_winograd_weights(host, threads, g, m, w, u);
    *U = u;
    return PLY_OK;
}

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>

#include "conv_winograd_x86.h"

typedef conv_wino_plan wino_plan;

// p's V and M strides per element (conv_wino_plan.vxi, .mxi) for its tc.
static void set_strides(const conv_geom *g, wino_plan *p) {
    const int64_t pad = ply_cpu_level() < PLY_CPU_AVX512 ? CONV_WINO_AVX2_PAD : 0;
    p->vxi = p->tc * g->C + pad;
    p->mxi = p->tc * g->OC + pad;
}

static void make_plan(const conv_geom *g, int m, int64_t threads, wino_plan *p) {
    p->m = m;
    p->a = m + 2;
    p->xi = p->a * p->a;
    p->threads = threads < 1 ? 1 : threads;
    p->TH = (g->OH + m - 1) / m;
    p->TW = (g->OW + m - 1) / m;
    p->T = g->N * p->TH * p->TW;
    int64_t strips = (p->T + NR - 1) / NR;
    int64_t tc_max = ply_max_i64(NR, CHUNK_FLOATS / (p->xi * (g->C + g->OC)) / NR * NR);
    int64_t chunks = (p->T + tc_max - 1) / tc_max;
    chunks = (chunks + p->threads - 1) / p->threads * p->threads;
    int64_t per = (p->T + chunks - 1) / chunks;
    p->tc = (per + NR - 1) / NR * NR;
    p->chunks = (p->T + p->tc - 1) / p->tc;
    // "columns" where its chunks are all full and fall evenly on the threads (the comment at ROWS_STRIPS)
    int even = p->chunks % p->threads == 0 && p->T % p->tc == 0 && p->chunks >= COLUMNS_MIN_CHUNKS * p->threads &&
               (double)p->xi * (double)g->C * (double)g->OC <= (double)COLUMNS_MAX_U;
    p->rows = p->threads > 1 && strips < ROWS_STRIPS * p->threads && !even;
    p->ranges = 0;
    p->share = 0;
    p->tail = p->T;
    const int64_t rows_floats = p->xi * (g->C + g->OC / p->threads) * strips * NR;
    const int columns_uneven = p->threads > 1 && !p->rows && !even;
    if ((p->rows && strips >= RANGES_STRIPS * p->threads && rows_floats > CHUNK_FLOATS) || columns_uneven) {
        // thread th: tiles [th*share, (th+1)*share) of whole units (RANGE_UNIT), the last thread's
        // ending at T, then its output channels of the tail (step_products); in chunks of at most
        // tc_max (rounding the count of chunks to the nearest instead, 64-tile chunks past
        // CHUNK_FLOATS, measured slower on ResNet-18's layer1: 1.36x 1 thread's CPU time against 1.20-1.25x)
        const int64_t units = (p->T + RANGE_UNIT - 1) / RANGE_UNIT;
        p->share = units / p->threads * RANGE_UNIT;
        p->tail = ply_min_i64(p->T, p->threads * p->share);
        const int64_t longest = ply_max_i64(ply_min_i64(p->share, p->T), p->T - p->tail);
        const int64_t pieces = (longest + tc_max - 1) / tc_max;
        p->rows = 0;
        p->ranges = 1;
        p->tc = ((longest + pieces - 1) / pieces + NR - 1) / NR * NR;
        p->chunks = p->threads * pieces;
        set_strides(g, p);
        return;
    }
    if (p->rows) {
        p->chunks = 1;
        p->tc = strips * NR;
    }
    set_strides(g, p);
}

int conv_winograd_fits(const conv_geom *g) {
    return g->KH == 3 && g->KW == 3 && g->SH == 1 && g->SW == 1 && g->OH >= 1 && g->OW >= 1 && ply_cpu_level() >= PLY_CPU_AVX512;
}

int conv_winograd_tile(const conv_geom *g) {
    if (ply_cpu_level() < PLY_CPU_AVX512) return 4; // the only tile at AVX2 (avx2_suits)
    // F(2x2) for few input channels on small planes (F4_MIN_CHANNELS, F4_SMALL_SIDE)
    if (g->C < F4_MIN_CHANNELS && g->OH <= F4_SMALL_SIDE && g->OW <= F4_SMALL_SIDE) return 2;
    if (g->C < F4_MIN_CHANNELS_14 && g->OH <= 14 && g->OW <= 14) return 2;
    // F(4x4) (or F(6x6), below) when it fills at least one strip of the kernel and needs at most F4_MAX_PRODUCTS of
    // F(2x2)'s products (36 per 4x4 tile against 16 per 2x2 tile, tiles past the plane included)
    wino_plan p2, p4;
    make_plan(g, 2, 1, &p2);
    make_plan(g, 4, 1, &p4);
    const double r4 = 36.0 * (double)p4.T / (16.0 * (double)p2.T);
    if (!((p4.T >= F4_MIN_STRIPS * NR && r4 <= F4_MAX_PRODUCTS) ||
          (p4.T >= F4_MANY_STRIPS * NR && r4 <= F4_MAX_PRODUCTS_MANY)))
        return 2;
    // F(6x6) where it would beat F(4x4) (measurements above: nowhere yet, F6_MAX_PRODUCTS 0)
    wino_plan p6;
    make_plan(g, 6, 1, &p6);
    int f6 = 64.0 * (double)p6.T <= F6_MAX_PRODUCTS * 36.0 * (double)p4.T && g->C + g->OC >= F6_MIN_CHANNELS &&
             g->C <= F6_MAX_CHANNELS && g->OC <= F6_MAX_CHANNELS;
    return f6 ? 6 : 4;
}

static int64_t tiles_f2(const conv_geom *g) {
    wino_plan p;
    make_plan(g, 2, 1, &p);
    return p.T;
}

int conv_winograd_suits(const conv_geom *g) {
    return conv_winograd_fits(g) && g->C >= 16 && g->OC >= 16 && tiles_f2(g) >= MIN_TILES;
}

// At the AVX2 level, F(4x4) in evaluation (the only tile with AVX2 transforms: conv_winograd4_avx2.c, products
// through conv_kernel_avx2.c; F(2x2), which the rules above take on small planes, has none) wherever it has at
// least AVX2_MIN_TILES tiles and needs at most AVX2_MAX_PRODUCTS of the direct products (36 per 4x4 tile against
// 9 per output), else the spans or im2col. Measured one thread, thread CPU time (Benchmarks/winograd_threads.c
// with the tile forced against Benchmarks/spans_kernel.c's spans and im2col + OpenBLAS, OPENBLAS_NUM_THREADS=1;
// AMD EPYC Zen 3, 2 rounds, a helper's build on the other core), N C->OC HxW, ms F(4x4) / spans / im2col:
//   14x14, 16 tiles (0.33 of the products): 1 256->256 3.67 1.55 / 6.70 5.08 / 7.71 4.99,
//     1 512->512 5.74 7.51 / 13.8 13.7 / 16.9 17.1, 1 128->256 0.84 0.94 / 1.77 1.78 / 2.08 1.64,
//     1 160->320 2.07 1.30 / 3.74 2.76 / 3.45 2.62, 1 112->224 1.01 1.06 / 1.84 1.77 / 1.77 1.72,
//     1 96->208 0.58 0.82 / 1.61 1.57 / 1.33 1.34, 1 32->64 0.16 0.16 / 0.17 0.17 / 0.20 0.21,
//     1 24->64 0.13 0.15 / 0.13 0.13 / 0.15 0.16;
//   13x13: 1 192->384 2.81 1.69 / 4.31 3.71 / 3.46 3.79, 1 384->256 3.60 3.60 / 5.28 6.07 / 5.59 6.28;
//   28x28, 49 tiles: 1 96->128 1.80 2.34 / 3.83 4.35 / 3.88 3.32, 1 32->96 0.71 0.71 / 0.91 0.91 / 0.86 0.88,
//     1 16->32 0.18 0.21 / 0.20 0.19 / 0.26 0.23 ("auto" takes im2col below 64 input channels at AVX2);
//   7x7: 4 512->512 (16 tiles) 7.35 7.16 / 14.9 13.8 / 17.1 23.5, 16 512->512 25.6 24.7 / 53.8 79.6 / 69.6 80.4;
//     but 4 tiles (batch 1: U streamed for 4 tiles) lose: 1 512->512 5.50 7.19 / 4.19 3.56, 1 48->128 0.25 0.24 /
//     0.13 0.13 / 0.16 0.17, 1 32->128 0.21 0.24 / 0.09 0.10 / 0.12 0.11.
// U is 4x the plain weights (36 / 9): VGG-16's three 14x14 512->512 layers hold 38 MB each.
#define AVX2_MIN_TILES 16
#define AVX2_MAX_PRODUCTS 0.45
static int avx2_suits(const conv_geom *g) {
    if (ply_cpu_level() != PLY_CPU_AVX2 || g->KH != 3 || g->KW != 3 || g->SH != 1 || g->SW != 1 || g->OH < 1 ||
        g->OW < 1 || g->C < 16 || g->OC < 16)
        return 0;
    wino_plan p4;
    make_plan(g, 4, 1, &p4);
    return p4.T >= AVX2_MIN_TILES &&
           36.0 * (double)p4.T <= AVX2_MAX_PRODUCTS * 9.0 * (double)(g->N * g->OH * g->OW);
}

int conv_winograd_suits_inference(const conv_geom *g) {
    if (avx2_suits(g)) return 1;
    if (conv_winograd_suits(g)) return 1;
    return conv_winograd_fits(g) && g->C >= 16 && g->OC >= 16 && tiles_f2(g) >= CONV_WINOGRAD_INFERENCE_MIN_TILES &&
           (double)conv_winograd_weights_floats(g, 2) <= (double)CONV_WINOGRAD_INFERENCE_MAX_U;
}

// At the AVX2 level only F(4x4) runs (conv_winograd_suits_inference), U in conv_kernel_avx2.h's blocks of rows
// (conv_wino4_weights_avx2) and its products through conv_kernel_avx2.c.
static int at_avx2(void) { return ply_cpu_level() < PLY_CPU_AVX512; }

// Floats of one element's U, U_xi: OC x C, at AVX2 in blocks of CONV_KERNEL_AVX2_MR rows.
static size_t u_xi_floats(const conv_geom *g) {
    return at_avx2() ? conv_kernel_avx2_packed_floats(g->OC, g->C) : (size_t)(g->OC * g->C);
}

size_t conv_winograd_weights_floats(const conv_geom *g, int m) { return (size_t)((m + 2) * (m + 2)) * u_xi_floats(g); }

size_t conv_winograd_forward_u_floats(const conv_geom *g, int m, int64_t threads) {
    wino_plan p;
    make_plan(g, m, threads, &p);
    int64_t areas = p.rows ? 1 : p.threads;
    return (size_t)(areas * p.xi * (p.vxi + p.mxi));
}

size_t conv_winograd_forward_floats(const conv_geom *g, int64_t threads) {
    int m = conv_winograd_tile(g);
    return conv_winograd_weights_floats(g, m) + conv_winograd_forward_u_floats(g, m, threads);
}

void conv_wino_segment(const wino_plan *p, int64_t t, int64_t t1, int64_t cbase, int64_t *n, int64_t *th, int64_t *tw,
                       int64_t *cnt) {
    int64_t per = p->TH * p->TW, r = t % per;
    *n = t / per;
    *th = r / p->TW;
    *tw = r % p->TW;
    *cnt = ply_min_i64(ply_min_i64(t1 - t, p->TW - *tw), 16 - (t - cbase) % 16);
}
#define segment conv_wino_segment

// U for output channels [o0, o1): G g G^T, 16 input channels at a time.
PLY_TARGET_AVX512 static void weights_transform(const conv_geom *g, const float *w, int64_t o0, int64_t o1, float *U) {
    const int64_t C = g->C, OC = g->OC;
    const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32(9));
    const __m512 half = _mm512_set1_ps(0.5f), zero = _mm512_setzero_ps();
    for (int64_t oc = o0; oc < o1; oc++)
        for (int64_t c0 = 0; c0 < C; c0 += 16) {
            __mmask16 m = conv_wino_first_lanes(C - c0);
            const float *src = w + (oc * C + c0) * 9;
            __m512 a[3][4];
            for (int r = 0; r < 3; r++) { // g G^T: row r of the kernel -> 4 values
                __m512 g0 = _mm512_mask_i32gather_ps(zero, m, idx, src + 3 * r, 4);
                __m512 g1 = _mm512_mask_i32gather_ps(zero, m, idx, src + 3 * r + 1, 4);
                __m512 g2 = _mm512_mask_i32gather_ps(zero, m, idx, src + 3 * r + 2, 4);
                __m512 s = _mm512_add_ps(g0, g2);
                a[r][0] = g0;
                a[r][1] = _mm512_mul_ps(_mm512_add_ps(s, g1), half);
                a[r][2] = _mm512_mul_ps(_mm512_sub_ps(s, g1), half);
                a[r][3] = g2;
            }
            for (int j = 0; j < 4; j++) { // G (.): the same down each column
                __m512 s = _mm512_add_ps(a[0][j], a[2][j]);
                __m512 u[4] = {a[0][j], _mm512_mul_ps(_mm512_add_ps(s, a[1][j]), half),
                               _mm512_mul_ps(_mm512_sub_ps(s, a[1][j]), half), a[2][j]};
                for (int i = 0; i < 4; i++) _mm512_mask_storeu_ps(U + ((i * 4 + j) * OC + oc) * C + c0, m, u[i]);
            }
        }
}

// V of tiles [t0, t1) of the chunk starting at tile cbase, for channels [c0, c1): B^T d B,
// 16 tiles of a tile row at a time (their 4x4 patches are the even and odd lanes of two loads
// per input row).
PLY_TARGET_AVX512 static void input_transform(const conv_geom *g, const wino_plan *p, const float *x, int64_t cbase, int64_t t0,
                                              int64_t t1, int64_t c0, int64_t c1, float *V) {
    const int64_t C = g->C, H = g->H, W = g->W, HW = H * W, strips = p->tc / NR;
    for (int64_t t = t0; t < t1;) {
        int64_t n, th, tw, cnt;
        segment(p, t, t1, cbase, &n, &th, &tw, &cnt);
        const int64_t rel = t - cbase, strip = rel / NR, lane = rel % NR, base = 2 * tw - g->PW;
        const __mmask16 km = conv_wino_first_lanes(cnt);
        const uint32_t ma = conv_wino_lanes_in(base, 2 * cnt, W), mb = conv_wino_lanes_in(base + 2, 2 * cnt, W);
        for (int64_t c = c0; c < c1; c++) {
            __m512 d[4][4], v[4][4];
            conv_wino2_patches(x + (n * C + c) * HW, H, W, 2 * th - g->PH, base, ma, mb, d);
            conv_wino2_btdb(d, v);
            for (int j = 0; j < 4; j++)
                for (int i = 0; i < 4; i++)
                    _mm512_mask_storeu_ps(V + (((i * 4 + j) * strips + strip) * C + c) * NR + lane, km, v[i][j]);
        }
        t += cnt;
    }
    // the last strip's lanes past the chunk's tiles: read by the kernel, never stored; zeros
    // rather than whatever the scratch held (which could be slow denormals)
    const int64_t used = t1 - cbase;
    if (used % NR) // t1 ends the chunk: every caller transforms whole chunks (input_tf in conv_winograd.c)
        for (int64_t xi = 0; xi < p->xi; xi++)
            for (int64_t c = c0; c < c1; c++)
                memset(V + ((xi * strips + used / NR) * C + c) * NR + used % NR, 0, (size_t)(NR - used % NR) * sizeof(float));
}

// y for tiles [t0, t1) of the chunk at cbase and output channels [o0, o1): A^T m A + bias,
// each tile row's two output rows written as interleaved pairs.
PLY_TARGET_AVX512 static void output_transform(const conv_geom *g, const wino_plan *p, const float *M, int64_t cbase, int64_t t0,
                                               int64_t t1, int64_t o0, int64_t o1, const float *bias, int relu, float *y) {
    const int64_t OC = g->OC, OH = g->OH, OW = g->OW, ldm = p->tc;
    const __m512i lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi_idx = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t t = t0; t < t1;) {
        int64_t n, th, tw, cnt;
        segment(p, t, t1, cbase, &n, &th, &tw, &cnt);
        const int64_t rel = t - cbase, ow0 = 2 * tw;
        const uint32_t mo = conv_wino_lanes_in(ow0, 2 * cnt, OW);
        const __mmask16 km = conv_wino_first_lanes(cnt);
        for (int64_t oc = o0; oc < o1; oc++) {
            const float *mc = M + oc * ldm + rel;
            __m512 s[4][2];
            for (int i = 0; i < 4; i++) { // (.) A, along each row
                __m512 m0 = _mm512_maskz_loadu_ps(km, mc + ((i * 4 + 0) * OC) * ldm);
                __m512 m1 = _mm512_maskz_loadu_ps(km, mc + ((i * 4 + 1) * OC) * ldm);
                __m512 m2 = _mm512_maskz_loadu_ps(km, mc + ((i * 4 + 2) * OC) * ldm);
                __m512 m3 = _mm512_maskz_loadu_ps(km, mc + ((i * 4 + 3) * OC) * ldm);
                s[i][0] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
                s[i][1] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
            }
            const __m512 b = _mm512_set1_ps(bias ? bias[oc] : 0.0f);
            for (int a = 0; a < 2 && 2 * th + a < OH; a++) { // A^T (.), down each column
                __m512 yv[2];
                for (int j = 0; j < 2; j++) {
                    __m512 v = a == 0 ? _mm512_add_ps(_mm512_add_ps(s[0][j], s[1][j]), s[2][j])
                                      : _mm512_sub_ps(_mm512_sub_ps(s[1][j], s[2][j]), s[3][j]);
                    v = _mm512_add_ps(v, b);
                    if (relu) // max(v, 0) with NaN passed through, as the fused relu everywhere
                        v = _mm512_mask_mov_ps(zero, _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ) |
                                                         _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), v);
                    yv[j] = v;
                }
                float *dst = y + ((n * OC + oc) * OH + 2 * th + a) * OW + ow0;
                _mm512_mask_storeu_ps(dst, (__mmask16)mo, _mm512_permutex2var_ps(yv[0], lo_idx, yv[1]));
                _mm512_mask_storeu_ps(dst + 16, (__mmask16)(mo >> 16), _mm512_permutex2var_ps(yv[0], hi_idx, yv[1]));
            }
        }
        t += cnt;
    }
}

typedef struct {
    const conv_geom *g;
    const wino_plan *p;
    const float *w, *bias, *x;
    float *y, *areas;
    const float *U;
    float *Uout; // conv_winograd_weights' destination
    int relu;
    ply_claims claims; // step_products' units ("rows": runs of output channels; "columns": chunks), claimed
} wino_job;

// Output channels [o0, o1) of thread th's share, in multiples of the kernel's rows (8, at AVX2 its blocks of 6).
static void oc_share(const conv_geom *g, int64_t threads, int64_t th, int64_t *o0, int64_t *o1) {
    const int64_t unit = at_avx2() ? CONV_KERNEL_AVX2_MR : 8, blocks = (g->OC + unit - 1) / unit;
    *o0 = ply_min_i64(g->OC, blocks * th / threads * unit);
    *o1 = ply_min_i64(g->OC, blocks * (th + 1) / threads * unit);
}

// The xi products of a chunk for output channels [o0, o1).
static void products(const wino_job *j, const float *V, float *M, int64_t ncols, int64_t o0, int64_t o1) {
    const conv_geom *g = j->g;
    const int64_t tc = j->p->tc, strips = tc / NR;
    if (at_avx2()) {
        const size_t uxi = u_xi_floats(g);
        for (int64_t xi = 0; xi < j->p->xi; xi++)
            conv_kernel_gemm_avx2(j->U + xi * uxi, g->C, o0, o1, NULL, V + xi * j->p->vxi, ncols,
                                  M + xi * j->p->mxi + o0 * tc, tc);
        return;
    }
    for (int64_t xi = 0; xi < j->p->xi; xi++)
        conv_kernel_gemm(j->U + xi * g->OC * g->C, g->C, o0, o1, NULL, V + xi * strips * g->C * NR, ncols,
                         M + (xi * g->OC + o0) * tc, tc, NULL);
}

static void input_tf(const wino_job *j, int64_t cbase, int64_t t0, int64_t t1, int64_t c0, int64_t c1, float *V) {
    if (at_avx2()) conv_wino4_input_avx2(j->g, j->p, j->x, cbase, t0, t1, c0, c1, V);
    else if (j->p->m == 6) conv_wino6_input(j->g, j->p, j->x, cbase, t0, t1, c0, c1, V);
    else if (j->p->m == 4) conv_wino4_input(j->g, j->p, j->x, cbase, t0, t1, c0, c1, V);
    else input_transform(j->g, j->p, j->x, cbase, t0, t1, c0, c1, V);
}

static void output_tf(const wino_job *j, const float *M, int64_t cbase, int64_t t0, int64_t t1, int64_t o0, int64_t o1) {
    if (at_avx2()) conv_wino4_output_avx2(j->g, j->p, M, cbase, t0, t1, o0, o1, j->bias, j->relu, j->y);
    else if (j->p->m == 6) conv_wino6_output(j->g, j->p, M, cbase, t0, t1, o0, o1, j->bias, j->relu, j->y);
    else if (j->p->m == 4) conv_wino4_output(j->g, j->p, M, cbase, t0, t1, o0, o1, j->bias, j->relu, j->y);
    else output_transform(j->g, j->p, M, cbase, t0, t1, o0, o1, j->bias, j->relu, j->y);
}

// The weights' transform, thread th's output channels.
static void step_weights(void *ctx, int64_t t0, int64_t t1) {
    const wino_job *j = ctx;
    for (int64_t th = t0; th < t1; th++) {
        int64_t o0, o1;
        oc_share(j->g, j->p->threads, th, &o0, &o1);
        if (o0 >= o1) continue;
        if (at_avx2()) conv_wino4_weights_avx2(j->g, j->w, o0, o1, j->Uout);
        else if (j->p->m == 6) conv_wino6_weights(j->g, j->w, o0, o1, j->Uout);
        else if (j->p->m == 4) conv_wino4_weights(j->g, j->w, o0, o1, j->Uout);
        else weights_transform(j->g, j->w, o0, o1, j->Uout);
    }
}

// Step 1 of the "rows" plan, thread th: V of its input channels.
static void step_input(void *ctx, int64_t t0, int64_t t1) {
    const wino_job *j = ctx;
    for (int64_t th = t0; th < t1; th++) {
        int64_t C = j->g->C, T = j->p->threads;
        input_tf(j, 0, 0, j->p->T, C * th / T, C * (th + 1) / T, j->areas);
    }
}

// Step 2, thread th: "rows", the products and y of runs of output channels; "columns", chunks whole;
// "ranges", the pieces of the threads' ranges, then its output channels of the tail. All but the tail
// claimed (ply_claim): a thread takes its own share first, as a static split would, then what the other
// threads have not started, so that a thread slowed by its core's neighbours does not hold the region
// (GoogLeNet at batch 1, 2 threads, PLY_REGION_TRACE on the shared AMD VM: conv3's later chunk took 3.1 ms
// against the caller's 2.2 on most forwards, with the work split evenly: 1.83 against 1.78 ms on a quiet
// machine, Benchmarks/winograd_threads.c). "rows" cuts each thread's channels in ROWS_RUNS_PER_THREAD
// runs: each run reads all of V again (590 KB on a 14x14 plane of 256 channels), so few. A unit computes
// the same whoever takes it (runs start at multiples of the kernel's rows; V and M are a chunk's own or
// the thread's): the output does not depend on the split.
#define ROWS_RUNS_PER_THREAD 2
static void step_products(void *ctx, int64_t t0, int64_t t1) {
    wino_job *j = ctx;
    const conv_geom *g = j->g;
    const wino_plan *p = j->p;
    const size_t vfloats = (size_t)(p->xi * p->vxi), area = (size_t)(p->xi * (p->vxi + p->mxi));
    for (int64_t th = t0; th < t1; th++) {
        if (p->rows) {
            const int64_t runs = p->threads * ROWS_RUNS_PER_THREAD;
            for (int64_t u; (u = ply_claim(&j->claims, p->threads, th, runs)) < runs;) {
                int64_t o0, o1;
                oc_share(g, runs, u, &o0, &o1);
                if (o0 >= o1) continue;
                products(j, j->areas, j->areas + vfloats, p->T, o0, o1);
                output_tf(j, j->areas + vfloats, 0, 0, p->T, o0, o1);
            }
            continue;
        }
        float *V = j->areas + th * area, *M = V + vfloats;
        if (p->ranges) {
            // thread r's tiles [b, e): whole units (the last range ends at T or at the tail), in pieces of at
            // most tc, every thread's pieces claimed; then this thread's output channels [o0, o1) of the tail
            // (every thread transforms its input)
            const int64_t pieces = p->chunks / p->threads, units = p->chunks;
            for (int64_t k; (k = ply_claim(&j->claims, p->threads, th, units)) < units;) {
                const int64_t r = k / pieces;
                const int64_t b = ply_min_i64(p->tail, r * p->share);
                const int64_t e = r == p->threads - 1 ? p->tail : ply_min_i64(p->tail, (r + 1) * p->share);
                const int64_t cbase = b + k % pieces * p->tc;
                if (cbase >= e) continue;
                int64_t cend = ply_min_i64(e, cbase + p->tc);
                input_tf(j, cbase, cbase, cend, 0, g->C, V);
                products(j, V, M, cend - cbase, 0, g->OC);
                output_tf(j, M, cbase, cbase, cend, 0, g->OC);
            }
            int64_t o0, o1;
            oc_share(g, p->threads, th, &o0, &o1);
            for (int64_t cbase = p->tail; cbase < p->T && o0 < o1; cbase += p->tc) {
                int64_t cend = ply_min_i64(p->T, cbase + p->tc);
                input_tf(j, cbase, cbase, cend, 0, g->C, V);
                products(j, V, M, cend - cbase, o0, o1);
                output_tf(j, M, cbase, cbase, cend, o0, o1);
            }
            continue;
        }
        // "columns": chunks [chunks*th/threads, chunks*(th+1)/threads) first, a contiguous run (the chunks fall evenly:
        // make_plan), so a thread's tiles are the images a batch split by halves gives it in the 1x1 convs
        // around it (round-robin chunks before branch rn50b16x; no gain measured either way on ResNet-50:
        // BENCHMARKS.md, the rn50b16x section)
        for (int64_t k; (k = ply_claim(&j->claims, p->threads, th, p->chunks)) < p->chunks;) {
            int64_t cbase = k * p->tc, cend = ply_min_i64(p->T, cbase + p->tc);
            input_tf(j, cbase, cbase, cend, 0, g->C, V);
            products(j, V, M, cend - cbase, 0, g->OC);
            output_tf(j, M, cbase, cbase, cend, 0, g->OC);
        }
    }
}

void conv_winograd_weights(const ply_host *host, int64_t threads, const conv_geom *g, int m, const float *w, float *U) {
    wino_plan p;
    make_plan(g, m, threads, &p);
    wino_job j = {.g = g, .p = &p, .w = w, .Uout = U};
    if (p.threads > 1) host->parallel_for(host, p.threads, 1, step_weights, &j);
    else step_weights(&j, 0, 1);
}

void conv_winograd_forward_u(const ply_host *host, int64_t threads, const conv_geom *g, int m, const float *U,
                             const float *bias, int relu, const float *x, float *y, float *scratch) {
    wino_plan p;
    make_plan(g, m, threads, &p);
    wino_job j = {.g = g, .p = &p, .bias = bias, .x = x, .y = y, .areas = scratch, .U = U, .relu = relu};
    if (p.threads > 1) {
        if (p.rows) host->parallel_for(host, p.threads, 1, step_input, &j);
        host->parallel_for(host, p.threads, 1, step_products, &j);
    } else {
        step_products(&j, 0, 1);
    }
}

void conv_winograd_forward(const ply_host *host, int64_t threads, const conv_geom *g, const float *w,
                           const float *bias, int relu, const float *x, float *y, float *scratch) {
    int m = conv_winograd_tile(g);
    float *U = scratch;
    conv_winograd_weights(host, threads, g, m, w, U);
    conv_winograd_forward_u(host, threads, g, m, U, bias, relu, x, y, U + conv_winograd_weights_floats(g, m));
}
#else
int conv_winograd_fits(const conv_geom *g) { (void)g; return 0; }
int conv_winograd_tile(const conv_geom *g) { (void)g; return 2; }
int conv_winograd_suits(const conv_geom *g) { (void)g; return 0; }
int conv_winograd_suits_inference(const conv_geom *g) { (void)g; return 0; }
size_t conv_winograd_weights_floats(const conv_geom *g, int m) { (void)g; (void)m; return 0; }
size_t conv_winograd_forward_u_floats(const conv_geom *g, int m, int64_t threads) {
    (void)g; (void)m; (void)threads;
    return 0;
}
size_t conv_winograd_forward_floats(const conv_geom *g, int64_t threads) { (void)g; (void)threads; return 0; }
void conv_winograd_weights(const ply_host *host, int64_t threads, const conv_geom *g, int m, const float *w, float *U) {
    (void)host; (void)threads; (void)g; (void)m; (void)w; (void)U;
}
void conv_winograd_forward_u(const ply_host *host, int64_t threads, const conv_geom *g, int m, const float *U,
                             const float *bias, int relu, const float *x, float *y, float *scratch) {
    (void)host; (void)threads; (void)g; (void)m; (void)U; (void)bias; (void)relu; (void)x; (void)y; (void)scratch;
}
void conv_winograd_forward(const ply_host *host, int64_t threads, const conv_geom *g, const float *w,
                           const float *bias, int relu, const float *x, float *y, float *scratch) {
    (void)host; (void)threads; (void)g; (void)w; (void)bias; (void)relu; (void)x; (void)y; (void)scratch;
}
#endif
