/*
 * conv_stem.c's register tiles at the AVX2 level (AVX2 + FMA: Haswell, Zen 1-3 and later), for CPUs
 * without AVX-512: the same sums in the same order (per output, the taps t in order into one
 * accumulator, then + bias), so each output's bits are the AVX-512 tile's.
 *
 *   acc(r, v) = sum_{t < T} a[t*6 + r] * d_v[off[t] .. off[t] + 8)       for r < R <= 6, v < V <= 2
 *   y_v[r*P + 0 .. left_v) = act(bias[r] + acc(r, v))
 *
 * The tile is 6 output channels x 2 vectors of 8 outputs (conv_1x1_avx2.c's shape): 12 accumulators
 * of AVX2's 16 registers, with the 2 loads of d and a broadcast weight (15 in all); per tap 2 loads
 * and 6 broadcasts for 12 FMAs. A 4 x 3 tile (3 loads and 4 broadcasts per tap, and the stems' 64
 * and 32 channels in whole blocks) needs all 16 registers: clang spilled an accumulator, whose
 * store and reload then sat in the loop's dependency chain (ResNet-50's stem, 1 thread: 7.0-7.9 ms
 * against im2col's 3.9-5.2).
 */
#ifndef PLY_CONV_STEM_AVX2_H
#define PLY_CONV_STEM_AVX2_H

#include <stdint.h>

#include "plugin_support.h"

PLY_INTERNAL_BEGIN

/** Rows of a block of packed weights at the AVX2 level (a is [T][4] within a block) and vectors per tile. */
#define CONV_STEM_AVX2_ROWS 6
#define CONV_STEM_AVX2_VECTORS 2

/**
 * One tile, as above: R in 1..6 rows, V in 1..2 vectors; a: the block's packed weights (tap t's 6
 * floats at a + 6t); off[t]: tap t's offset into each d[v]; y[v]: the outputs of vector v for the
 * block's first row (rows P floats apart), of which left[v] (1..8) lanes are written; bias: the
 * block's first or NULL; relu when `relu` (NaN passes, as the built-in relu). The loads of d are
 * whole vectors (the caller's phase planes are wide enough). Call only when ply_cpu_level() >=
 * PLY_CPU_AVX2 on x86-64.
 */
void conv_stem_tile_avx2(int R, int V, int64_t T, const float *a, const int32_t *off, const float *const d[3],
                         float *const y[3], int64_t P, const int64_t left[3], const float *bias, int relu);

PLY_INTERNAL_END
#endif
