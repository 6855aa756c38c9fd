/*
 * linear_gemv.h -- the linear forward for a few input rows (inference at batch 1 to
 * LINEAR_GEMV_MAX_ROWS): a product bound by reading the weights, not by arithmetic.
 *
 * At batch 1 the forward is a matrix-vector product: every weight is read once and used once
 * (AlexNet's fc6 reads 151 MB for 38 M multiply-adds), so its speed is the speed at which the
 * weights stream from DRAM or L3. The kernels read the weights in their own layout, W [OUT, IN]
 * row-major as get_param exposes them, a block of rows at a time, each row against every input
 * row, so W is read from memory once per call whatever M is (up to the limit) and no packed copy
 * of it is kept (ONNX Runtime's MLAS packs B once into panels and drops the original; a plugin
 * cannot drop the memory get_param lends out, and a second copy would double the layer's
 * memory). The input rows (M x IN floats, at most 8 x 36 KiB here) stay in L1/L2.
 *
 * Paths: AVX-512 (16 lanes, masked tails) and AVX2 + FMA (8 lanes), chosen by ply_cpu_level().
 * Below AVX2 linear.c calls OpenBLAS instead (sgemv for one row, sgemm for more): its own
 * kernels, picked by its own CPU dispatch, read the weights faster than portable C built for
 * SSE2 (one thread, GB/s of weights, 4096x4096 / 4096x1000 / 512x1000, a portable kernel of
 * 8-lane vector-extension loops tried here: M = 1 10.6 / 11.8 / 13.8 against sgemv's
 * 14.8 / 16.5 / 16.4; M = 8 3.1 / 3.7 / 4.1 against sgemm's 3.3 / 5.5 / 5.6).
 * Threading: the caller splits output features over the host's threads (each call here
 * handles [o0, o1)).
 */
#ifndef PLY_LINEAR_GEMV_H
#define PLY_LINEAR_GEMV_H

#include <stdint.h>
#include "plugin_support.h"

PLY_INTERNAL_BEGIN

/** Input rows up to which the forward takes linear_gemv (above, sgemm or the small loops). */
#define LINEAR_GEMV_MAX_ROWS 8

#if PLY_HAVE_X86_TARGETS
/**
 * y[m*OUT + o] = b[o] + sum_{k < IN} x[m*IN + k] * w[o*IN + k]   for m < M, o in [o0, o1)
 * (b NULL: no bias term). 1 <= M <= LINEAR_GEMV_MAX_ROWS; call only when ply_cpu_level() >=
 * PLY_CPU_AVX2. Reads w's rows [o0, o1) once. Any thread; disjoint [o0, o1) may run at once.
 */
void linear_gemv(float *y, const float *x, const float *w, const float *b, int64_t M, int64_t IN, int64_t OUT,
                 int64_t o0, int64_t o1);
#endif

PLY_INTERNAL_END
#endif
