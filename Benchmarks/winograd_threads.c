// conv_winograd_forward_u (Plugins/Conv/conv_winograd.c) on 1 or 2 threads: each thread's CPU time
// inside the parallel regions of one forward (CLOCK_THREAD_CPUTIME_ID around every slice it runs),
// so time spent descheduled on a busy machine does not count but a slice slowed by the other
// thread (a shared cache, memory) does. Prints, per layer, the median over 9 forwards of the sum of
// the threads' CPU time (the work) and of the larger thread's (the critical path on a quiet
// machine). Which plan the threads take (output channels over all the tiles, "rows", or chunks of
// tiles each, "columns") is make_plan's rule in conv_winograd.c: to compare the two on a layer,
// build this twice with that rule changed. The outputs are checked against a
// double-precision direct sum at 64 random points (the worst relative error is printed).
// Built as SwiftPM's release builds C (-O2):
//
//   clang -O2 -pthread -IPlugins/Conv -IPlugins/Support -IInclude Benchmarks/winograd_threads.c \
//       Plugins/Conv/conv_winograd.c Plugins/Conv/conv_winograd4.c Plugins/Conv/conv_winograd6.c \
//       Plugins/Conv/conv_kernel.c Plugins/Conv/conv_weight_cache.c -o /tmp/winograd_threads
//   /tmp/winograd_threads 2 16 192 13 384      # THREADS N C H(=W) OC, 3x3, padding 1
//   /tmp/winograd_threads 1 1 256 14 256 4     # ... and a forced tile side
//
// The AVX-512 level, or AVX2 on the layers where "auto" takes F(4x4) in evaluation there (add
// Plugins/Conv/conv_winograd4_avx2.c and Plugins/Conv/conv_kernel_avx2.c to the command). Exits 1 on a mismatch.
#include "conv_winograd.h"
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double thread_cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
static void *host_alloc(const ply_host *h, size_t n) { (void)h; return malloc(n); }
static void host_free(const ply_host *h, void *p) { (void)h; free(p); }

static int THREADS = 1;
static double busy[2]; // CPU seconds of each thread inside regions, since the last reset

typedef struct {
    ply_parallel_fn fn;
    void *ctx;
    int64_t n, grain;
    int th;
} slice_job;

// thread th takes chunks th, th + THREADS, ... of grain items
static void *run_slices(void *p) {
    slice_job *s = p;
    double t0 = thread_cpu();
    for (int64_t b = s->th * s->grain; b < s->n; b += THREADS * s->grain)
        s->fn(s->ctx, b, b + s->grain < s->n ? b + s->grain : s->n);
    busy[s->th] += thread_cpu() - t0;
    return NULL;
}

static void host_parallel_for(const ply_host *h, int64_t n, int64_t grain, ply_parallel_fn fn, void *ctx) {
    (void)h;
    if (grain < 1) grain = 1;
    slice_job s[2] = {{fn, ctx, n, grain, 0}, {fn, ctx, n, grain, 1}};
    pthread_t t;
    if (THREADS > 1) pthread_create(&t, NULL, run_slices, &s[1]);
    run_slices(&s[0]);
    if (THREADS > 1) pthread_join(t, NULL);
}
static int32_t host_threads(const ply_host *h) { (void)h; return THREADS; }

int main(int argc, char **argv) {
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: winograd_threads THREADS N C H OC [TILE]   (3x3, stride 1, padding 1, W = H)\n");
        return 2;
    }
    THREADS = atoi(argv[1]);
    int64_t N = atoll(argv[2]), C = atoll(argv[3]), H = atoll(argv[4]), OC = atoll(argv[5]);
    if (THREADS < 1 || THREADS > 2 || N < 1 || C < 1 || H < 1 || OC < 1) {
        fprintf(stderr, "winograd_threads: THREADS 1 or 2, sizes >= 1\n");
        return 2;
    }
    conv_geom g = {.N = N, .C = C, .H = H, .W = H, .OC = OC, .KH = 3, .KW = 3, .SH = 1, .SW = 1, .PH = 1, .PW = 1,
                   .OH = H, .OW = H, .DH = 1, .DW = 1, .XC = C, .YC = OC};
    ply_host host = {.alloc = host_alloc, .free = host_free, .parallel_for = host_parallel_for,
                     .thread_count = host_threads};
    // a 6th argument forces the tile side (at AVX2 only 4 runs: to measure F(4x4) where the rule does not take it)
    const int forced = argc > 6 ? atoi(argv[6]) : 0;
    if (ply_cpu_level() < PLY_CPU_AVX512 &&
        !(ply_cpu_level() == PLY_CPU_AVX2 && (forced == 4 || conv_winograd_suits_inference(&g)))) {
        fprintf(stderr, "winograd_threads: needs the AVX-512 level, or AVX2 and a layer that F(4x4) suits there\n");
        return 1;
    }
    const int m = forced ? forced : conv_winograd_tile(&g);
    size_t nx = (size_t)(N * C * H * H), ny = (size_t)(N * OC * H * H), nw = (size_t)(OC * C * 9);
    float *x = malloc(nx * 4), *y = malloc(ny * 4), *w = malloc(nw * 4), *b = malloc((size_t)OC * 4);
    float *U = aligned_alloc(64, (conv_winograd_weights_floats(&g, m) * 4 + 63) / 64 * 64);
    float *scr = aligned_alloc(64, (conv_winograd_forward_u_floats(&g, m, THREADS) * 4 + 63) / 64 * 64);
    if (!x || !y || !w || !b || !U || !scr) { fprintf(stderr, "winograd_threads: out of memory\n"); return 1; }
    for (size_t i = 0; i < nx; i++) x[i] = (float)(i * 7919 % 1000) / 500.0f - 1.0f;
    for (size_t i = 0; i < nw; i++) w[i] = (float)(i * 104729 % 1000) / 500.0f - 1.0f;
    for (int64_t i = 0; i < OC; i++) b[i] = (float)i * 0.01f;
    conv_winograd_weights(&host, THREADS, &g, m, w, U);
    enum { RUNS = 9 };
    double sum[RUNS], mx[RUNS];
    for (int r = -1; r < RUNS; r++) {
        busy[0] = busy[1] = 0;
        double t0 = thread_cpu();
        conv_winograd_forward_u(&host, THREADS, &g, m, U, b, 0, x, y, scr);
        if (THREADS == 1) busy[0] = thread_cpu() - t0; // one thread runs it without a region
        if (r < 0) continue; // warm-up
        sum[r] = busy[0] + busy[1];
        mx[r] = busy[0] > busy[1] ? busy[0] : busy[1];
    }
    qsort(sum, RUNS, sizeof sum[0], cmp);
    qsort(mx, RUNS, sizeof mx[0], cmp);
    double worst = 0;
    unsigned seed = 12345;
    for (int i = 0; i < 64; i++) {
        seed = seed * 1103515245u + 12345u;
        int64_t n = (seed >> 4) % N, o = (seed >> 9) % OC, oh = (seed >> 3) % H, ow = (seed >> 13) % H;
        double s = b[o], mag = fabs(b[o]);
        for (int64_t c = 0; c < C; c++)
            for (int kh = 0; kh < 3; kh++)
                for (int kw = 0; kw < 3; kw++) {
                    int64_t ih = oh + kh - 1, iw = ow + kw - 1;
                    if (ih < 0 || ih >= H || iw < 0 || iw >= H) continue;
                    double t = (double)x[((n * C + c) * H + ih) * H + iw] * w[((o * C + c) * 3 + kh) * 3 + kw];
                    s += t;
                    mag += fabs(t);
                }
        double e = fabs(y[((n * OC + o) * H + oh) * H + ow] - s) / (mag > 0 ? mag : 1);
        if (e > worst) worst = e;
    }
    printf("N%lld %lld->%lld %lldx%lld F(%dx%d) %d thread(s): CPU ms sum %.2f, larger thread %.2f (medians of %d), "
           "%.1f direct GFLOPS per thread; worst error %.1e\n",
           (long long)N, (long long)C, (long long)OC, (long long)H, (long long)H, m, m, THREADS, sum[RUNS / 2] * 1e3,
           mx[RUNS / 2] * 1e3, RUNS, 2.0 * 9 * (double)(N * C * OC * H * H) / (sum[RUNS / 2] * 1e9), worst);
    return worst < 1e-4 ? 0 : 1;
}
