/*
 * linear_rows.h -- the linear forward for LINEAR_GEMV_MAX_ROWS + 1 to LINEAR_ROWS_MAX_ROWS input
 * rows (inference at batch 9 to 32: VGG-16's and AlexNet's classifiers at batch 16).
 *
 * At these batches the product is still bound by reading the weights once (VGG-16's fc6 is
 * 411 MB for 16 x 103 M multiply-adds: about as long to read at this machine's ~16 GB/s as to
 * compute), so, as linear_gemv.c, the kernel reads W [OUT, IN] in place, each weight once per
 * call, and keeps no packed copy of it. What it packs instead is the input, small and reused by
 * every weight row: xp [IN][V][16] with V = ceil(M / 16) vectors per k, lane l of vector v
 * holding x[(16 v + l) * IN + k] (zeros past M). Each weight is then broadcast against the M
 * inputs of its k at once (an outer product: no horizontal sums), 16 rows of W with one vector
 * of inputs or 8 rows with two, 16 accumulators either way.
 *
 * The OpenBLAS sgemm that M = 9..32 took before packs W into its panels on every call: 4.9 GB/s
 * of weights on VGG-16's fc6 at batch 16 (83 ms, `ply bench-layers vgg16 --batch 16 --layers`).
 *
 * AVX-512 and AVX2 + FMA (the same xp, read as two 8-lane vectors per 16 floats), chosen by
 * ply_cpu_level(); below AVX2 linear.c keeps OpenBLAS.
 * Threading: the caller packs once, then splits output features over the host's threads (each
 * call handles [o0, o1)); xp is only read.
 */
#ifndef PLY_LINEAR_ROWS_H
#define PLY_LINEAR_ROWS_H

#include <stddef.h>
#include <stdint.h>
#include "plugin_support.h"

PLY_INTERNAL_BEGIN

/** Input rows up to which the forward takes linear_rows (from LINEAR_GEMV_MAX_ROWS + 1). */
#define LINEAR_ROWS_MAX_ROWS 32

#if PLY_HAVE_X86_TARGETS
/** Floats of xp for M rows of IN features: IN * 16 * ceil(M / 16). */
size_t linear_rows_pack_floats(int64_t M, int64_t IN);

/**
 * xp[(k * V + v) * 16 + l] = x[(16 v + l) * IN + k] for 16 v + l < M, else 0 (V = ceil(M / 16)).
 * 1 <= M <= LINEAR_ROWS_MAX_ROWS; xp: linear_rows_pack_floats(M, IN) floats, 64-byte aligned.
 * Call only when ply_cpu_level() >= PLY_CPU_AVX2.
 */
void linear_rows_pack(const float *x, int64_t M, int64_t IN, float *xp);

/**
 * y[m*OUT + o] = b[o] + sum_{k < IN} x[m*IN + k] * w[o*IN + k]   for m < M, o in [o0, o1),
 * with xp = linear_rows_pack(x) (b NULL: no bias term). 1 <= M <= LINEAR_ROWS_MAX_ROWS; call only
 * when ply_cpu_level() >= PLY_CPU_AVX2. Reads w's rows [o0, o1) once. Any thread; disjoint
 * [o0, o1) may run at once on the same xp.
 */
void linear_rows(float *y, const float *xp, const float *w, const float *b, int64_t M, int64_t IN, int64_t OUT,
                 int64_t o0, int64_t o1);
#endif

PLY_INTERNAL_END
#endif
