// conv_1x1_forward (Plugins/Conv/conv_1x1.c) alone: GFLOPS of one unpadded 1x1 layer (bias and
// relu on, 1 thread) by thread CPU time, the median of 9 timed calls (and the fastest), so that neither the model
// around it nor time spent descheduled on a busy machine counts. Two cache states:
//   warm: the calls follow one another (the weights stay in L2 when they fit);
//   cold: before each call a 64 MB buffer is read (weights and outputs leave the caches) and
//         then the input (back into L2), as in a network where the previous layer just wrote x;
//   xcore: as cold, but then a thread on CPU 0 rewrites the input while the calls run on CPU 1:
//         x just written by the other core, as where batch 1 at 2 threads splits a layer
//         differently from the one before it (BENCHMARKS.md, branches loc and stripout).
// The weights are packed once before the calls (conv_1x1_pack_weights), as conv.c keeps them in
// evaluation; the kernel reads them only on large planes (conv_1x1_packs).
// Also checks 64 random outputs against a double-precision sum (prints the worst relative error).
// Built as SwiftPM's release builds C (-O2):
//
//   clang -O2 -IPlugins/Conv -IPlugins/Support -IInclude Benchmarks/pointwise_kernel.c \
//       Plugins/Conv/conv_1x1.c Plugins/Conv/conv_1x1_product.c Plugins/Conv/conv_1x1_avx2.c \
//       Plugins/Conv/conv_gemm.c Plugins/Conv/conv_gemm_cols.c \
//       Plugins/Conv/conv_kernel.c Plugins/Conv/conv_kernel_avx2.c -lopenblas -lm -lpthread -o /tmp/pointwise_kernel
//   /tmp/pointwise_kernel 1 512 7 1 2048 cold     # N C SIZE STRIDE OC [warm|cold|xcore]
//
// At the AVX2 level (conv_1x1_avx2.c) it also times conv_gemm.c's OpenBLAS path in the same way,
// the one "auto" takes there where conv_1x1_suits says no. On an AVX-512 machine run it as the
// runtime would on an AVX2-only CPU: OpenBLAS's Haswell kernels on one thread (unset, OpenBLAS
// runs its own threads, whose time this thread's CPU time leaves out):
//
//   OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=Haswell PLY_CPU=avx2 /tmp/pointwise_kernel 1 64 56 1 256 cold
#define _GNU_SOURCE
#include "conv_1x1.h"
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
// Pins the calling thread to one CPU; 0 on success.
static int pin(int cpu) {
    cpu_set_t cs;
    CPU_ZERO(&cs);
    CPU_SET(cpu, &cs);
    return pthread_setaffinity_np(pthread_self(), sizeof cs, &cs);
}
// xcore: dst[i] = src[i] for i < n, written from CPU 0.
typedef struct { float *dst; const float *src; size_t n; int ok; } rewrite_job;
static void *rewrite(void *p) {
    rewrite_job *j = p;
    j->ok = pin(0) == 0;
    memcpy(j->dst, j->src, j->n * sizeof(float));
    return NULL;
}
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
int main(int argc, char **argv) {
    if (argc < 6 || argc > 7 ||
        (argc == 7 && strcmp(argv[6], "warm") && strcmp(argv[6], "cold") && strcmp(argv[6], "xcore"))) {
        fprintf(stderr, "usage: pointwise_kernel N C SIZE STRIDE OC [warm|cold|xcore]\n");
        return 2;
    }
    int64_t N = atoi(argv[1]), C = atoi(argv[2]), S = atoi(argv[3]), st = atoi(argv[4]), OC = atoi(argv[5]);
    int xcore = argc == 7 && !strcmp(argv[6], "xcore"), cold = xcore || (argc == 7 && !strcmp(argv[6], "cold"));
    if (xcore && pin(1) != 0) { fprintf(stderr, "pointwise_kernel: xcore needs CPUs 0 and 1\n"); return 1; }
    if (N < 1 || C < 1 || S < 1 || st < 1 || OC < 1) { fprintf(stderr, "pointwise_kernel: sizes must be >= 1\n"); return 2; }
    if (ply_cpu_level() < PLY_CPU_AVX2) { fprintf(stderr, "pointwise_kernel: needs the AVX2 level\n"); return 1; }
    int64_t O = (S - 1) / st + 1, P = O * O;
    conv_geom g = {.N = N, .C = C, .H = S, .W = S, .OC = OC, .KH = 1, .KW = 1, .SH = st, .SW = st,
                   .OH = O, .OW = O, .DH = 1, .DW = 1, .XC = C, .YC = OC};
    ply_host host = {0};
    size_t nx = (size_t)(N * C * S * S), nj = (size_t)64 << 18;
    float *x = malloc(nx * 4), *y = malloc((size_t)(N * OC * P) * 4), *w = malloc((size_t)(OC * C) * 4);
    float *b = malloc((size_t)OC * 4), *scr = malloc(conv_1x1_forward_floats(&g, 1) * 4 + 4), *junk = malloc(nj * 4);
    if (!x || !y || !w || !b || !scr || !junk) { fprintf(stderr, "pointwise_kernel: out of memory\n"); return 1; }
    for (size_t i = 0; i < nx; i++) x[i] = (float)(i * 7919 % 1000) / 500.0f - 1.0f;
    for (int64_t i = 0; i < OC * C; i++) w[i] = (float)(i * 104729 % 1000) / 500.0f - 1.0f;
    for (int64_t i = 0; i < OC; i++) b[i] = (float)i * 0.01f;
    for (size_t i = 0; i < nj; i++) junk[i] = (float)i;
    // the weights packed once, as conv.c keeps them per weight version in evaluation
    float *wp = malloc(conv_1x1_packed_floats(&g) * 4), *x0 = xcore ? malloc(nx * 4) : x;
    if (!wp || !x0) { fprintf(stderr, "pointwise_kernel: out of memory\n"); return 1; }
    conv_1x1_pack_weights(&g, w, wp);
    if (xcore) memcpy(x0, x, nx * 4);
    conv_1x1_forward(&host, 1, &g, w, wp, b, 1, x, y, scr);
    double worst = 0;
    for (int t = 0; t < 64; t++) {
        int64_t n = rand() % N, o = rand() % OC, p = rand() % P, oh = p / O, ow = p % O;
        double s = b[o];
        for (int64_t c = 0; c < C; c++) s += (double)w[o * C + c] * x[((n * C + c) * S + oh * st) * S + ow * st];
        s = s > 0 ? s : 0;
        double e = fabs(s - y[(n * OC + o) * P + p]) / (1 + fabs(s));
        worst = e > worst ? e : worst;
    }
    double flop = 2.0 * N * C * OC * P, r[9];
    int reps = cold ? 1 : (int)(5e8 / flop) + 1;
    // the OpenBLAS path beside it below the AVX-512 level
    float *sg = NULL;
    if (ply_cpu_level() < PLY_CPU_AVX512 && !(sg = malloc(conv_gemm_forward_floats(&g, 1) * 4 + 4))) {
        fprintf(stderr, "pointwise_kernel: out of memory\n");
        return 1;
    }
    printf("N%lld %lld->%lld %lldx%lld stride %lld %s:", (long long)N, (long long)C, (long long)OC, (long long)O,
           (long long)O, (long long)st, xcore ? "xcore" : cold ? "cold" : "warm");
    for (int gemm = 0; gemm <= (sg != NULL); gemm++) {
        for (int k = 0; k < 9; k++) {
            volatile float sink = 0;
            if (cold) {
                for (size_t i = 0; i < nj; i += 16) sink += junk[i];
                if (xcore) {
                    rewrite_job rj = {x, x0, nx, 0};
                    pthread_t th;
                    if (pthread_create(&th, NULL, rewrite, &rj) != 0 || pthread_join(th, NULL) != 0 || !rj.ok) {
                        fprintf(stderr, "pointwise_kernel: the xcore writer thread failed\n");
                        return 1;
                    }
                } else {
                    for (size_t i = 0; i < nx; i += 16) sink += x[i];
                }
            }
            double t = now();
            for (int i = 0; i < reps; i++) {
                if (gemm) conv_gemm_forward(&host, 1, 1, &g, w, b, 1, x, y, sg);
                else conv_1x1_forward(&host, 1, &g, w, wp, b, 1, x, y, scr);
            }
            r[k] = (now() - t) / reps;
        }
        qsort(r, 9, sizeof r[0], cmp);
        // and the fastest call's GFLOPS: on a shared machine the least disturbed one (what ONNX Runtime's
        // profiler minimum in Benchmarks/ort_profile.py gives beside it)
        printf("  %s %.1f GFLOPS, %.3f ms, best %.1f GFLOPS", gemm ? "openblas" : "pointwise", flop / r[4] * 1e-9,
               r[4] * 1e3, flop / r[0] * 1e-9);
    }
    printf(" (worst relative error %.1e)\n", worst);
    return 0;
}
