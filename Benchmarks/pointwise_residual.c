// A residual block's last 1x1 conv with its add + relu, two ways (single thread, thread CPU time,
// medians of 9, bias on): "separate" as residual_eval.c ran it before (conv_1x1_forward, then a
// pass y = relu(y + r) as the block's add_relu), "fused" conv_1x1_forward_residual (r added in the
// product's tiles, Plugins/Conv/conv_residual.h). Before each call a 64 MB buffer is read (weights
// and outputs leave the caches), then r and x, as in a block where both were written recently.
// Also checks that the two give the same floats, bit for bit. Built as SwiftPM's release builds C (-O2):
//
//   clang -O2 -IPlugins/Conv -IPlugins/Support -IInclude Benchmarks/pointwise_residual.c \
//       Plugins/Conv/conv_1x1.c Plugins/Conv/conv_1x1_product.c Plugins/Conv/conv_1x1_avx2.c -lm \
//       -o /tmp/pointwise_residual
//   /tmp/pointwise_residual 1 64 56 256      # N C SIZE OC (ResNet-50's layer1 expand conv)
#include "conv_1x1.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
// residual_eval.c's add_relu_range, as it was
__attribute__((noinline)) static void add_relu(float *y, const float *r, int64_t n) {
    for (int64_t i = 0; i < n; i++) { float v = y[i] + r[i]; y[i] = (v > 0.0f || v != v) ? v : 0.0f; }
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: pointwise_residual N C SIZE OC\n"); return 2; }
    int64_t N = atoi(argv[1]), C = atoi(argv[2]), S = atoi(argv[3]), OC = atoi(argv[4]), P = S * S;
    if (N < 1 || C < 1 || S < 1 || OC < 1) { fprintf(stderr, "pointwise_residual: sizes must be >= 1\n"); return 2; }
    if (!conv_1x1_adds_residual()) { fprintf(stderr, "pointwise_residual: needs the AVX-512 level\n"); return 1; }
    conv_geom g = {.N = N, .C = C, .H = S, .W = S, .OC = OC, .KH = 1, .KW = 1, .SH = 1, .SW = 1,
                   .OH = S, .OW = S, .DH = 1, .DW = 1, .XC = C, .YC = OC};
    ply_host host = {0};
    size_t nx = (size_t)(N * C * P), ny = (size_t)(N * OC * P), nj = (size_t)64 << 18;
    float *x = malloc(nx * 4), *y = malloc(ny * 4), *y2 = malloc(ny * 4), *r = malloc(ny * 4);
    float *w = malloc((size_t)(OC * C) * 4), *b = malloc((size_t)OC * 4), *junk = malloc(nj * 4);
    float *scr = malloc(conv_1x1_forward_floats(&g, 1) * 4 + 4), *wp = malloc(conv_1x1_packed_floats(&g) * 4);
    if (!x || !y || !y2 || !r || !w || !b || !junk || !scr || !wp) { fprintf(stderr, "pointwise_residual: out of memory\n"); return 1; }
    for (size_t i = 0; i < nx; i++) x[i] = (float)(i * 7919 % 1000) / 500.0f - 1.0f;
    for (size_t i = 0; i < ny; i++) r[i] = (float)(i * 31 % 1000) / 500.0f - 1.0f;
    for (int64_t i = 0; i < OC * C; i++) w[i] = (float)(i * 104729 % 1000) / 500.0f - 1.0f;
    for (int64_t i = 0; i < OC; i++) b[i] = (float)i * 0.01f;
    for (size_t i = 0; i < nj; i++) junk[i] = (float)i;
    conv_1x1_pack_weights(&g, w, wp);
    double t[2][9];
    for (int k = 0; k < 9; k++)
        for (int m = 0; m < 2; m++) {
            volatile float sink = 0;
            for (size_t i = 0; i < nj; i += 16) sink += junk[i];
            for (size_t i = 0; i < ny; i += 16) sink += r[i];
            for (size_t i = 0; i < nx; i += 16) sink += x[i];
            double t0 = now();
            if (m == 0) {
                conv_1x1_forward(&host, 1, &g, w, wp, b, 0, x, y, scr);
                add_relu(y, r, (int64_t)ny);
            } else conv_1x1_forward_residual(&host, 1, &g, w, wp, b, r, 1, x, y2, scr);
            t[m][k] = now() - t0;
        }
    qsort(t[0], 9, sizeof t[0][0], cmp);
    qsort(t[1], 9, sizeof t[1][0], cmp);
    printf("N%lld %lld->%lld %lldx%lld: separate %.3f ms, fused %.3f ms (%s)\n", (long long)N, (long long)C,
           (long long)OC, (long long)S, (long long)S, t[0][4] * 1e3, t[1][4] * 1e3,
           memcmp(y, y2, ny * 4) == 0 ? "identical" : "DIFFERENT");
    return memcmp(y, y2, ny * 4) != 0;
}
