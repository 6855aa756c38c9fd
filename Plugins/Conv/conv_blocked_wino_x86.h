/*
 * conv_blocked_wino.c's plan, job and product constants, shared with its AVX2 level
 * (conv_blocked_wino_avx2.c). Private to the Conv family; x86-64 only (include it inside
 * `#if PLY_HAVE_X86_TARGETS`).
 */
#ifndef PLY_CONV_BLOCKED_WINO_X86_H
#define PLY_CONV_BLOCKED_WINO_X86_H

#include "plugin_support.h"

#include "conv_gemm.h"

PLY_INTERNAL_BEGIN

// Input channels per pass of the products: 4 output blocks' weights, 128 x 64 floats = 32 KB, stay in
// the 48 KB L1 while all the chunk's tiles pass. Not measured to matter: 256 (64 KB, the first version)
// gave the same ratios on 16 512->512 7x7 at tc 22 (0.89 0.98 0.93 / 0.89 0.98 0.93), kept for the L1.
#define CCHUNK 128
// The first 6 tiles of each pass prefetch the next CCHUNK's U (the next 32 KB in memory, the loop
// order following U's layout) into L2, BW_PF passes ahead. 1 thread, alternating, blocked CPU ms
// without / with: 1 512->512 7x7 (4 tiles: U streams) 4.47 4.62 4.71 / 3.45 2.95 3.09 (NCHW 2.73-3.21);
// 16 512->512 7x7 15.1-17.9 / 15.8-16.4; 16 256->256 14x14 13.9-18.2 / 11.6-15.2. 2 or 3 passes
// ahead: no difference (1 512->512 7x7: 4.17-4.43 / 4.32-4.49 / 4.14-4.50, the same round). A prefetch
// of the input's columns two tiles ahead in the input transform gained nothing (16 64->64 56x56 ratio
// 1.46-1.55 without, 1.39-1.62 with).
#ifndef BW_PF
#define BW_PF 1
#endif

typedef struct {
    int64_t CB, OB, Cp, OBp; // blocks of 16 channels in, out; channels in rounded up; out rounded up
    int64_t TH, TW, T;       // tiles down, across, in the batch
    int64_t tc, chunks, threads;
    int rows;
} bw_plan;

typedef struct {
    const conv_geom *g;
    const bw_plan *p;
    const float *U, *bias, *r, *x, *w;
    float *y, *scratch, *Uout;
    int relu;
} bw_job;

// ---- The AVX2 level (conv_blocked_wino_avx2.c): the AVX-512 steps on a 16-channel vector as two of 8, each
// lane's operations those of the AVX-512 functions in the same order (conv_winograd4_x86.h's transforms on 8
// lanes and one), so U, V, M and y are the same bits at both levels. Call only at the AVX2 level or above.

/** conv_blocked_wino.c's bw_weights_blocks: U of output blocks [b0, b1), a lane at a time. */
void conv_bwino_weights8(const bw_job *j, int64_t b0, int64_t b1);
/** bw_input: V of tiles [t0, t0 + nt) of a chunk of tc, input blocks [cb0, cb1), each half of the 16 channels. */
void conv_bwino_input8(const bw_job *j, int64_t t0, int64_t nt, int64_t tc, int64_t cb0, int64_t cb1, float *V);
/**
 * bw_products' tiles for one xi, one group of nb output blocks (weights wg) and one pass of input blocks
 * [cb0, cb1) over the chunk's nt tiles: dst = add + src + sum_c V[c/16][tt][c%16] U[c][16 f + l] (src, add
 * NULL for none), each block of the group in turn over a tile's V (in L1), 12 accumulators.
 */
void conv_bwino_products8(const float *V, const float *wg, int64_t tc, int nb, int64_t nt, int64_t cb0, int64_t cb1,
                          const float *src, const float *add, float *dst);
/** bw_output: y of tiles [t0, t0 + nt), output blocks [ob0, ob1), each half of the 16 channels. */
void conv_bwino_output8(const bw_job *j, const float *M, int64_t t0, int64_t nt, int64_t tc, int64_t ob0, int64_t ob1);

PLY_INTERNAL_END
#endif
