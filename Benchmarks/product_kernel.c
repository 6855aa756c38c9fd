// conv_kernel_product (Plugins/Conv/conv_kernel.c) against cblas_sgemm on one product: GFLOPS of
// C[M][N] = sum_k A(m, k) B(k, n) on 1 thread by thread CPU time, the median of 15 calls of each
// (alternating, the operands warm in the caches as between a training step's passes), and the
// worst error against a double-precision sum relative to the sum of |terms|.
// The shapes of ResNet-18's training at 32x32 (batch 64) are the default list; or one product:
//
//   clang -O2 -IPlugins/Conv -IPlugins/Support -IInclude Benchmarks/product_kernel.c \
//       Plugins/Conv/conv_kernel.c -lopenblas -lm -o /tmp/product_kernel
//   OPENBLAS_NUM_THREADS=1 /tmp/product_kernel                # the default list
//   OPENBLAS_NUM_THREADS=1 /tmp/product_kernel 0 1 128 256 1152   # TA TB M N K
//
// OpenBLAS's kernels follow OPENBLAS_CORETYPE (e.g. =SkylakeX or =Haswell); unset, it picks for the CPU.
#define _GNU_SOURCE
#include "conv_kernel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static float *random_floats(size_t n, unsigned *seed) {
    float *p = malloc(n * sizeof(float));
    if (!p) { fprintf(stderr, "product_kernel: out of memory (%zu floats)\n", n); exit(1); }
    for (size_t i = 0; i < n; i++) p[i] = (float)rand_r(seed) / (float)RAND_MAX * 2.0f - 1.0f;
    return p;
}

static void one(int ta, int tb, int64_t M, int64_t N, int64_t K, const char *what) {
    unsigned seed = 7;
    const int64_t lda = ta ? M : K, ldb = tb ? K : N;
    float *a = random_floats((size_t)(M * K), &seed), *b = random_floats((size_t)(K * N), &seed);
    float *c = calloc((size_t)(M * N), sizeof(float));
    if (!c) { fprintf(stderr, "product_kernel: out of memory\n"); exit(1); }
    enum { CALLS = 15 };
    double own[CALLS], blas[CALLS];
    for (int i = -2; i < CALLS; i++) {
        double t0 = cpu_seconds();
        conv_kernel_product(ta, tb, M, N, K, a, lda, b, ldb, c, N, 0);
        double t1 = cpu_seconds();
        conv_blas_product(ta, tb, M, N, K, a, lda, b, ldb, c, N, 0);
        double t2 = cpu_seconds();
        if (i >= 0) own[i] = t1 - t0, blas[i] = t2 - t1;
    }
    conv_kernel_product(ta, tb, M, N, K, a, lda, b, ldb, c, N, 0);
    double worst = 0.0;
    for (int s = 0; s < 64; s++) {
        int64_t m = rand_r(&seed) % M, n = rand_r(&seed) % N;
        double sum = 0.0, mag = 0.0;
        for (int64_t k = 0; k < K; k++) {
            double t = (double)(ta ? a[k * lda + m] : a[m * lda + k]) * (double)(tb ? b[n * ldb + k] : b[k * ldb + n]);
            sum += t, mag += fabs(t);
        }
        double e = fabs((double)c[m * N + n] - sum) / (mag > 0 ? mag : 1.0);
        if (e > worst) worst = e;
    }
    qsort(own, CALLS, sizeof(double), by_value);
    qsort(blas, CALLS, sizeof(double), by_value);
    double flops = 2.0 * (double)M * (double)N * (double)K;
    printf("%-34s ta %d tb %d M %4lld N %4lld K %4lld  own %6.1f GFLOPS  blas %6.1f  own/blas %.2f  err %.1e\n", what, ta,
           tb, (long long)M, (long long)N, (long long)K, flops / own[CALLS / 2] * 1e-9, flops / blas[CALLS / 2] * 1e-9,
           blas[CALLS / 2] / own[CALLS / 2], worst);
    free(a), free(b), free(c);
}

int main(int argc, char **argv) {
    if (argc == 6) {
        one(atoi(argv[1]), atoi(argv[2]), atoll(argv[3]), atoll(argv[4]), atoll(argv[5]), "given");
        return 0;
    }
    if (argc != 1) {
        fprintf(stderr, "usage: product_kernel [TA TB M N K]\n");
        return 2;
    }
    // live taps (conv_taps.c), batch 64, 1 thread: forward Y = W Bt^T, dW = dY Bt, dBt = dY^T W
    one(0, 1, 128, 256, 1152, "taps fwd layer2 centre (4x4)");
    one(0, 1, 128, 64, 512, "taps fwd layer2 corner");
    one(0, 1, 256, 64, 1024, "taps fwd layer3 (2x2)");
    one(0, 1, 512, 64, 512, "taps fwd layer4 (1x1)");
    one(0, 0, 128, 1152, 256, "taps dW layer2 centre");
    one(0, 0, 256, 1024, 64, "taps dW layer3");
    one(0, 0, 512, 512, 64, "taps dW layer4");
    one(1, 0, 256, 1152, 128, "taps dBt layer2 centre");
    one(1, 0, 64, 1024, 256, "taps dBt layer3");
    one(1, 0, 64, 512, 512, "taps dBt layer4");
    // Winograd's weight gradient (conv_winograd_wgrad.c), layer1 at 8x8: dU_xi = Z_xi V_xi^T
    one(0, 1, 64, 64, 1024, "wgrad layer1");
    // im2col's weight gradient of the stem (conv_gemm.c, "images"): dW += dY cols^T
    one(0, 1, 64, 147, 256, "stem dW (7x7, 3 channels)");
    return 0;
}
