// conv_spans_forward (Plugins/Conv/conv_spans.c) beside conv_gemm_forward's im2col + GEMM (what
// "auto" ran before for non-square kernels), for 3x3 stride 1 or 2, conv_panels_forward, and where it
// suits (at most 4 input channels: first layers) conv_stem_forward: one
// layer, bias and relu on, 1 thread, by thread CPU time (the median of 9 timed calls, warm: the
// calls follow one another), so neither the model around it nor time spent descheduled on a busy
// machine counts. Each kernel's 64 random outputs are checked against a double-precision sum (the
// worst relative error is printed). Built as SwiftPM's release builds C (-O2):
//
//   clang -O2 -IPlugins/Conv -IPlugins/Support -IInclude Benchmarks/spans_kernel.c Plugins/Conv/conv_spans.c \
//       Plugins/Conv/conv_stem.c Plugins/Conv/conv_stem_avx2.c Plugins/Conv/conv_panels.c Plugins/Conv/conv_gemm.c \
//       Plugins/Conv/conv_kernel.c Plugins/Conv/conv_kernel_avx2.c Plugins/Conv/conv_gemm_cols.c \
//       Plugins/Conv/conv_weight_cache.c Plugins/Conv/conv_winograd.c Plugins/Conv/conv_winograd4.c \
//       Plugins/Conv/conv_winograd4_avx2.c Plugins/Conv/conv_winograd6.c -lopenblas -lm -o /tmp/spans_kernel
//   /tmp/spans_kernel 1 128 17 17 128 1 7 1 1 0 3    # N C H W OC KH KW SH SW PH PW
//
// The AVX2 and AVX-512 levels (the panels' kernel is AVX-512 only: left out below it). For the AVX2
// paths on an AVX-512 machine run it as the runtime would on an AVX2-only CPU, OpenBLAS's Haswell
// kernels for the im2col's GEMM, on one thread (unset, OpenBLAS runs its own threads, whose time
// this thread's CPU time leaves out):
//
//   OPENBLAS_NUM_THREADS=1 PLY_CPU=avx2 OPENBLAS_CORETYPE=Haswell /tmp/spans_kernel 1 128 17 17 128 1 7 1 1 0 3
#include "conv_gemm.h"
#include "conv_panels.h"
#include "conv_spans.h"
#include "conv_stem.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
static void *host_alloc(const ply_host *h, size_t n) { (void)h; return malloc(n); }
static void host_free(const ply_host *h, void *p) { (void)h; free(p); }

enum { SPANS, GEMM, PANELS, STEM };
static const char *names[] = {"spans", "im2col", "panels", "stem"};

static conv_geom G;
static const float *X, *W, *B, *WP;
static float *Y, *SCR;
static ply_host HOST;

static void run(int k) {
    if (k == SPANS) conv_spans_forward(&HOST, 1, &G, WP, B, 1, X, Y, SCR);
    else if (k == GEMM) conv_gemm_forward(&HOST, 1, 1, &G, W, B, 1, X, Y, SCR);
    else if (k == PANELS) conv_panels_forward(&HOST, 1, &G, WP, B, 1, X, Y, SCR);
    else conv_stem_forward(&HOST, 1, &G, W, B, 1, X, Y, SCR);
}

int main(int argc, char **argv) {
    if (argc != 12) {
        fprintf(stderr, "usage: spans_kernel N C H W OC KH KW SH SW PH PW\n");
        return 2;
    }
    int64_t v[11];
    for (int i = 0; i < 11; i++) v[i] = atoll(argv[i + 1]);
    int64_t N = v[0], C = v[1], H = v[2], Wd = v[3], OC = v[4], KH = v[5], KW = v[6], SH = v[7], SW = v[8], PH = v[9],
            PW = v[10];
    if (N < 1 || C < 1 || H < 1 || Wd < 1 || OC < 1 || KH < 1 || KW < 1 || SH < 1 || SW < 1 || PH < 0 || PW < 0 ||
        H + 2 * PH < KH || Wd + 2 * PW < KW) {
        fprintf(stderr, "spans_kernel: sizes must be >= 1 (padding >= 0) and the kernel inside the padded input\n");
        return 2;
    }
    if (ply_cpu_level() < PLY_CPU_AVX2) { fprintf(stderr, "spans_kernel: needs the AVX2 level\n"); return 1; }
    int64_t OH = (H + 2 * PH - KH) / SH + 1, OW = (Wd + 2 * PW - KW) / SW + 1, P = OH * OW, K = C * KH * KW;
    G = (conv_geom){.N = N, .C = C, .H = H, .W = Wd, .OC = OC, .KH = KH, .KW = KW, .SH = SH, .SW = SW, .PH = PH,
                    .PW = PW, .OH = OH, .OW = OW, .DH = 1, .DW = 1, .XC = C, .YC = OC};
    HOST = (ply_host){.alloc = host_alloc, .free = host_free};
    size_t nx = (size_t)(N * C * H * Wd);
    float *x = malloc(nx * 4), *y = malloc((size_t)(N * OC * P) * 4), *w = malloc((size_t)(OC * K) * 4);
    float *b = malloc((size_t)OC * 4);
    size_t s1 = conv_spans_forward_floats(&G), s2 = conv_gemm_forward_floats(&G, 1), s3 = conv_panels_forward_floats(&G);
    size_t s4 = conv_stem_forward_floats(&G, 1), ns = s1 > s2 ? s1 : s2;
    ns = ns > s3 ? ns : s3;
    ns = ns > s4 ? ns : s4;
    float *scr = malloc(ns * 4 + 64);
    if (!x || !y || !w || !b || !scr) { fprintf(stderr, "spans_kernel: out of memory\n"); return 1; }
    for (size_t i = 0; i < nx; i++) x[i] = (float)(i * 7919 % 1000) / 500.0f - 1.0f;
    for (int64_t i = 0; i < OC * K; i++) w[i] = (float)(i * 104729 % 1000) / 500.0f - 1.0f;
    for (int64_t i = 0; i < OC; i++) b[i] = (float)i * 0.01f;
    X = x; W = w; B = b; Y = y; SCR = scr;
    conv_weight_cache spans = {0}, panels = {0};
    const float *wp_spans = NULL, *wp_panels = NULL;
    if (conv_spans_cache_get(&spans, &HOST, 1, &G, w, 0, &wp_spans) != PLY_OK) return 1;
    int with_panels = conv_panels_fits(&G);
    if (with_panels && conv_panels_cache_get(&panels, &HOST, 1, &G, w, 0, &wp_panels) != PLY_OK) return 1;
    double flop = 2.0 * N * OC * P * K;
    printf("N%lld %lld->%lld %lldx%lld kernel %lldx%lld stride %lldx%lld pad %lldx%lld -> %lldx%lld:",
           (long long)N, (long long)C, (long long)OC, (long long)H, (long long)Wd, (long long)KH, (long long)KW,
           (long long)SH, (long long)SW, (long long)PH, (long long)PW, (long long)OH, (long long)OW);
    for (int k = SPANS; k <= STEM; k++) {
        if ((k == PANELS && !with_panels) || (k == STEM && !conv_stem_suits(&G))) continue;
        WP = k == SPANS ? wp_spans : wp_panels;
        memset(y, 0, (size_t)(N * OC * P) * 4);
        run(k);
        double worst = 0;
        srand(1);
        for (int t = 0; t < 64; t++) {
            int64_t n = rand() % N, o = rand() % OC, p = rand() % P, oh = p / OW, ow = p % OW;
            double s = b[o];
            for (int64_t c = 0; c < C; c++)
                for (int64_t kh = 0; kh < KH; kh++)
                    for (int64_t kw = 0; kw < KW; kw++) {
                        int64_t ih = oh * SH - PH + kh, iw = ow * SW - PW + kw;
                        if (ih < 0 || ih >= H || iw < 0 || iw >= Wd) continue;
                        s += (double)w[((o * C + c) * KH + kh) * KW + kw] * x[((n * C + c) * H + ih) * Wd + iw];
                    }
            s = s > 0 ? s : 0;
            double e = fabs(s - y[(n * OC + o) * P + p]) / (1 + fabs(s));
            worst = e > worst ? e : worst;
        }
        int reps = (int)(3e8 / flop) + 1;
        double r[9];
        for (int i = 0; i < 9; i++) {
            double t = now();
            for (int j = 0; j < reps; j++) run(k);
            r[i] = (now() - t) / reps;
        }
        qsort(r, 9, sizeof r[0], cmp);
        printf("  %s %.3f ms %.0f GFLOPS (err %.0e)", names[k], r[4] * 1e3, flop / r[4] * 1e-9, worst);
    }
    printf("\n");
    return 0;
}
