// conv_dw_forward (Plugins/Conv/conv_depthwise.c) alone: thread CPU time per call of a depthwise
// 3x3 layer (padding 1, no bias, batch 1, 1 thread), the median of 7 runs of 20 calls, so that
// neither the model's copies (Benchmarks/depthwise times `ply bench-model`) nor time spent
// descheduled on a busy machine count. Built as SwiftPM's release builds C (-O2):
//
//   clang -O2 -IPlugins/Conv -IPlugins/Support -IInclude Benchmarks/depthwise_kernel.c \
//       Plugins/Conv/conv_depthwise.c -o /tmp/depthwise_kernel
//   /tmp/depthwise_kernel 144 56 1     # CHANNELS SIZE STRIDE; PLY_CPU=avx2|generic for the lower paths
#include "conv_depthwise.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: depthwise_kernel CHANNELS SIZE STRIDE\n"); return 2; }
    int64_t C = atoi(argv[1]), S = atoi(argv[2]), st = atoi(argv[3]);
    int64_t O = (S + 2 - 3) / st + 1;
    conv_geom g = {.N = 1, .C = C, .H = S, .W = S, .OC = C, .KH = 3, .KW = 3, .SH = st, .SW = st, .PH = 1, .PW = 1,
                   .OH = O, .OW = O, .DH = 1, .DW = 1, .XC = C, .YC = C};
    ply_host host = {0};
    float *x = malloc(C * S * S * 4), *y = malloc(C * O * O * 4), *w = malloc(C * 9 * 4);
    for (int64_t i = 0; i < C * S * S; i++) x[i] = (float)(i % 17) * 0.1f;
    for (int64_t i = 0; i < C * 9; i++) w[i] = (float)(i % 5) * 0.1f;
    float *scr = malloc(conv_dw_forward_floats(&g, 1) * 4);
    double r[7];
    for (int k = 0; k < 5; k++) conv_dw_forward(&host, 1, &g, w, NULL, 0, x, y, scr);
    for (int k = 0; k < 7; k++) {
        double t = now();
        for (int i = 0; i < 20; i++) conv_dw_forward(&host, 1, &g, w, NULL, 0, x, y, scr);
        r[k] = (now() - t) / 20 * 1e3;
    }
    qsort(r, 7, sizeof r[0], cmp);
    printf("%lldx%lldx%lld /%lld  %.4f ms\n", (long long)C, (long long)S, (long long)S, (long long)st, r[3]);
}
