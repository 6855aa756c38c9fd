/*
 * plugin_blas.h -- CBLAS for the built-in families that multiply matrices (conv2d,
 * linear). Private, like plugin_support.h.
 *
 * Linux: OpenBLAS's cblas.h (Debian's libopenblas-dev); any other CBLAS with the
 * standard header works too. Apple platforms: Accelerate's CBLAS (the new LAPACK
 * interface, ACCELERATE_NEW_LAPACK, set by Package.swift).
 *
 * ply_blas_threads(): the threads the BLAS runs each call on. Ply splits products over
 * the host's own threads and calls the BLAS from each, so the host asks OpenBLAS for one
 * thread (Sources/CPly: cply_prepare_blas); when the user set OPENBLAS_NUM_THREADS above
 * 1, the families call it once per product instead and let it thread. Only OpenBLAS
 * answers the question, so the symbol is weak: absent (another CBLAS, Accelerate) means 1.
 */
#ifndef PLY_PLUGIN_BLAS_H
#define PLY_PLUGIN_BLAS_H

#if defined(__APPLE__)
#include <Accelerate/Accelerate.h>
static inline int ply_blas_threads(void) { return 1; }
#else
#include <cblas.h>
#include "plugin_support.h"
int openblas_get_num_threads(void) PLY_WEAK;
static inline int ply_blas_threads(void) {
    return openblas_get_num_threads != NULL ? openblas_get_num_threads() : 1;
}
#endif

#endif /* PLY_PLUGIN_BLAS_H */
