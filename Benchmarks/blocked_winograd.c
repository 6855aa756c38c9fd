// conv_bwino_forward (Plugins/Conv/conv_blocked_wino.c: Winograd F(4x4) on NCHW16c) checked against
// the NCHW Winograd (conv_winograd_forward_u, same m = 4, every output element) and a double-precision
// direct sum (64 random points; error relative to the sum of the terms' magnitudes, as
// winograd_threads.c: relative to |ref| both paths exceed 1e-5 from ~128 input channels, identically),
// then timed against the NCHW path at the tile side it takes (conv_winograd_tile) on ResNet's 3x3
// shapes, 1 and 2 threads. Time: the median over 9 forwards of
// the sum of the threads' CPU time inside the parallel regions (CLOCK_THREAD_CPUTIME_ID around every
// slice, as Benchmarks/winograd_threads.c) and of the wall time (CLOCK_MONOTONIC around the call), the
// two paths' forwards alternating (so a change in the machine's load hits both); relu on, no residual.
// The blocked path's sum over the channels is conv_kernel.c's, so it agrees with the NCHW path to the
// bit; the checks run with bias, with and without a residual and relu, and every padding lane.
// Also times the blocked path NCHW in and out (conv_blocked.c's conv_bwino_through at the AVX2 level: the
// reorders on the calling thread around it, wall time). Built as SwiftPM's release builds C (-O2):
//
//   clang -O2 -pthread -IPlugins/Conv -IPlugins/Support -IInclude Benchmarks/blocked_winograd.c \
//       Plugins/Conv/conv_blocked_wino.c Plugins/Conv/conv_blocked_wino_avx2.c Plugins/Conv/conv_reorder_avx2.c \
//       Plugins/Conv/conv_winograd.c Plugins/Conv/conv_winograd4.c Plugins/Conv/conv_winograd4_avx2.c \
//       Plugins/Conv/conv_winograd6.c Plugins/Conv/conv_kernel.c Plugins/Conv/conv_kernel_avx2.c \
//       Plugins/Conv/conv_weight_cache.c -lm -o /tmp/blocked_winograd
//   /tmp/blocked_winograd                     # the checks, then the table (ResNet's shapes, 1 and 2 threads)
//   /tmp/blocked_winograd 2 16 64 56 64       # THREADS N C H(=W) OC: one shape, checked and timed
//
// The blocked tuning constants can be overridden for a sweep: -DBWINO_CHUNK_FLOATS=... -DBWINO_TC_MIN=...
// -DBWINO_ROWS_TILES=... (conv_blocked_wino.c). The AVX2 and AVX-512 levels. Exits 1 on a mismatch.
#include "conv_blocked_wino.h"
#include "conv_reorder_avx2.h"
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
static double wall(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
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
static ply_host host = {.alloc = host_alloc, .free = host_free, .parallel_for = host_parallel_for,
                        .thread_count = host_threads};

static float *falloc(size_t n) {
    float *p = aligned_alloc(64, (n * 4 + 63) / 64 * 64 + 64);
    if (!p) { fprintf(stderr, "blocked_winograd: out of memory\n"); exit(1); }
    return p;
}

static unsigned seed = 12345;
static float rnd(void) { seed = seed * 1103515245u + 12345u; return (float)((seed >> 8) % 20000) / 10000.0f - 1.0f; }

// NCHW16c offset of (n, c, p) with P positions per plane.
static size_t blk(int64_t C, int64_t P, int64_t n, int64_t c, int64_t p) {
    return (size_t)(((n * ((C + 15) / 16) + c / 16) * P + p) * 16 + c % 16);
}

typedef struct { double sum, wall; } timing;

// One forward's CPU time summed over the threads in the regions, and its wall time (ms).
#define MEASURE(cpu, wl, call)                                                                                          \
    do {                                                                                                               \
        busy[0] = busy[1] = 0;                                                                                         \
        double t0_ = thread_cpu(), w0_ = wall();                                                                       \
        call;                                                                                                          \
        double w1_ = wall();                                                                                           \
        if (THREADS == 1) busy[0] = thread_cpu() - t0_; /* one thread runs it without a region */                      \
        (cpu) = (busy[0] + busy[1]) * 1e3;                                                                             \
        (wl) = (w1_ - w0_) * 1e3;                                                                                      \
    } while (0)

static double median(double *v, int n) { qsort(v, (size_t)n, sizeof v[0], cmp); return v[n / 2]; }

// One shape at THREADS threads: checks (returns 1 on a mismatch), and times when `timeit`.
static int run(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OC, int timeit) {
    const int64_t P = H * W, CB = (C + 15) / 16, OB = (OC + 15) / 16;
    conv_geom g = {.N = N, .C = C, .H = H, .W = W, .OC = OC, .KH = 3, .KW = 3, .SH = 1, .SW = 1, .PH = 1, .PW = 1,
                   .OH = H, .OW = W, .DH = 1, .DW = 1, .XC = C, .YC = OC};
    const size_t nx = (size_t)(N * C * P), ny = (size_t)(N * OC * P), nw = (size_t)(OC * C * 9);
    const size_t nxb = (size_t)(N * CB * 16 * P), nyb = (size_t)(N * OB * 16 * P);
    float *x = falloc(nx), *w = falloc(nw), *b = falloc((size_t)OC), *y = falloc(ny), *res = falloc(ny);
    float *xb = falloc(nxb), *yb = falloc(nyb), *rb = falloc(nyb);
    for (size_t i = 0; i < nx; i++) x[i] = rnd();
    for (size_t i = 0; i < nw; i++) w[i] = rnd() * 0.3f;
    for (int64_t i = 0; i < OC; i++) b[i] = rnd();
    for (size_t i = 0; i < ny; i++) res[i] = rnd();
    memset(xb, 0, nxb * 4);
    memset(rb, 0, nyb * 4);
    for (int64_t n = 0; n < N; n++) {
        for (int64_t c = 0; c < C; c++)
            for (int64_t p = 0; p < P; p++) xb[blk(C, P, n, c, p)] = x[(n * C + c) * P + p];
        for (int64_t o = 0; o < OC; o++)
            for (int64_t p = 0; p < P; p++) rb[blk(OC, P, n, o, p)] = res[(n * OC + o) * P + p];
    }
    // the NCHW path at m = 4, and the blocked one
    float *U4 = falloc(conv_winograd_weights_floats(&g, 4)), *s4 = falloc(conv_winograd_forward_u_floats(&g, 4, THREADS));
    float *Ub = falloc(conv_bwino_weights_floats(&g, 4)), *sb = falloc(conv_bwino_forward_floats(&g, 4, THREADS));
    conv_winograd_weights(&host, THREADS, &g, 4, w, U4);
    conv_bwino_weights(&host, THREADS, &g, 4, w, Ub);
    int bad = 0;
    // blocked vs NCHW (relative to max(1, |NCHW|)); vs double relative to max(1, sum of |terms|) (the gate, as
    // winograd_threads.c), and relative to max(1, |double|) for the blocked (worst_r) and the NCHW (worst_n) paths
    double worst_w = 0, worst_d = 0, worst_r = 0, worst_n = 0;
    for (int variant = 0; variant < 2; variant++) { // 0: bias only; 1: bias + residual, relu
        const int relu = variant;
        conv_winograd_forward_u(&host, THREADS, &g, 4, U4, b, 0, x, y, s4);
        for (size_t i = 0; i < nyb; i++) yb[i] = NAN; // every element must be written
        conv_bwino_forward(&host, THREADS, &g, 4, Ub, b, variant ? rb : NULL, relu, xb, yb, sb);
        for (int64_t n = 0; n < N; n++)
            for (int64_t o = 0; o < OB * 16; o++)
                for (int64_t p = 0; p < P; p++) {
                    float got = yb[blk(OC, P, n, o, p)];
                    if (o >= OC) {
                        if (got != 0.0f) {
                            if (!bad) fprintf(stderr, "padding lane n%lld o%lld p%lld = %g\n", (long long)n, (long long)o, (long long)p, got);
                            bad = 1;
                        }
                        continue;
                    }
                    float ref = y[(n * OC + o) * P + p];
                    if (variant) {
                        ref += res[(n * OC + o) * P + p];
                        ref = ref > 0 ? ref : 0;
                    }
                    double e = fabs((double)got - ref) / fmax(1.0, fabs(ref));
                    if (!(e <= worst_w)) worst_w = isnan(e) ? INFINITY : e;
                }
        // the direct sum in double at 64 random points
        for (int i = 0; i < 64; i++) {
            seed = seed * 1103515245u + 12345u;
            int64_t n = (seed >> 4) % N, o = (seed >> 9) % OC, oh = (seed >> 3) % H, ow = (seed >> 13) % W;
            double s = b[o], mag = fabs(b[o]);
            for (int64_t c = 0; c < C; c++)
                for (int kh = 0; kh < 3; kh++)
                    for (int kw = 0; kw < 3; kw++) {
                        int64_t ih = oh + kh - 1, iw = ow + kw - 1;
                        if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                        double t = (double)x[((n * C + c) * H + ih) * W + iw] * w[((o * C + c) * 3 + kh) * 3 + kw];
                        s += t;
                        mag += fabs(t);
                    }
            if (variant) {
                s += res[(n * OC + o) * P + oh * W + ow];
                mag += fabs(res[(n * OC + o) * P + oh * W + ow]);
                s = s > 0 ? s : 0;
            }
            float yn = y[(n * OC + o) * P + oh * W + ow];
            if (variant) yn = yn + res[(n * OC + o) * P + oh * W + ow] > 0 ? yn + res[(n * OC + o) * P + oh * W + ow] : 0;
            const float got = yb[blk(OC, P, n, o, oh * W + ow)];
            double en = fabs(yn - s) / fmax(1.0, fabs(s)), er = fabs(got - s) / fmax(1.0, fabs(s));
            double e = fabs(got - s) / fmax(1.0, mag);
            if (!(en <= worst_n)) worst_n = isnan(en) ? INFINITY : en;
            if (!(er <= worst_r)) worst_r = isnan(er) ? INFINITY : er;
            if (!(e <= worst_d)) worst_d = isnan(e) ? INFINITY : e;
        }
    }
    if (!(worst_w <= 2e-6) || !(worst_d <= 1e-5)) bad = 1;
    printf("N%-3lld %4lld->%-4lld %3lldx%-3lld %dT  check: vs NCHW F(4x4) %.1e; vs double %.1e of the terms' magnitude "
           "(of |ref|: blocked %.1e, NCHW %.1e)%s\n",
           (long long)N, (long long)C, (long long)OC, (long long)H, (long long)W, THREADS, worst_w, worst_d, worst_r,
           worst_n, bad ? "  MISMATCH" : "");
    if (timeit && !bad) {
        const int m = conv_winograd_tile(&g);
        float *Um = falloc(conv_winograd_weights_floats(&g, m)), *sm = falloc(conv_winograd_forward_u_floats(&g, m, THREADS));
        conv_winograd_weights(&host, THREADS, &g, m, w, Um);
        // 9 forwards of each after one warm-up, alternating, so a change in the machine's load hits both
        enum { RUNS = 9 };
        double nc[RUNS], nw_[RUNS], bc[RUNS], bw[RUNS], tw[RUNS];
        timing tn, tb;
        for (int r = -1; r < RUNS; r++) {
            double c1, w1, c2, w2;
            MEASURE(c1, w1, conv_winograd_forward_u(&host, THREADS, &g, m, Um, b, 1, x, y, sm));
            MEASURE(c2, w2, conv_bwino_forward(&host, THREADS, &g, 4, Ub, b, NULL, 1, xb, yb, sb));
            // NCHW in and out through the blocked path: the reorders on this thread around it
            const double t0 = wall();
            conv_reorder_in_avx2(xb, x, C, P, 0, N * CB);
            conv_bwino_forward(&host, THREADS, &g, 4, Ub, b, NULL, 1, xb, yb, sb);
            conv_reorder_out_avx2(y, yb, OC, P, 0, N * OB);
            const double t3 = (wall() - t0) * 1e3; // ms
            if (r < 0) continue;
            nc[r] = c1, nw_[r] = w1, bc[r] = c2, bw[r] = w2, tw[r] = t3;
        }
        tn.sum = median(nc, RUNS), tn.wall = median(nw_, RUNS), tb.sum = median(bc, RUNS), tb.wall = median(bw, RUNS);
        printf("TIME N%-3lld %4lld->%-4lld %3lldx%-3lld %dT  NCHW F(%dx%d) cpu %8.2f wall %8.2f | blocked F(4x4) cpu %8.2f "
               "wall %8.2f | ratio cpu %.2f wall %.2f%s\n",
               (long long)N, (long long)C, (long long)OC, (long long)H, (long long)W, THREADS, m, m, tn.sum, tn.wall,
               tb.sum, tb.wall, tn.sum / tb.sum, tn.wall / tb.wall, conv_bwino_tile(&g) ? "" : "  (conv_bwino_tile 0)");
        printf("     with the reorders (NCHW in and out): wall %8.2f | ratio to NCHW wall %.2f\n", median(tw, RUNS),
               tn.wall / median(tw, RUNS));
        free(Um);
        free(sm);
    }
    free(x); free(w); free(b); free(y); free(res); free(xb); free(yb); free(rb); free(U4); free(s4); free(Ub); free(sb);
    return bad;
}

int main(int argc, char **argv) {
    if (ply_cpu_level() < PLY_CPU_AVX2) { fprintf(stderr, "blocked_winograd: needs the AVX2 level\n"); return 1; }
    if (argc == 6) {
        THREADS = atoi(argv[1]);
        int64_t N = atoll(argv[2]), C = atoll(argv[3]), H = atoll(argv[4]), OC = atoll(argv[5]);
        if (THREADS < 1 || THREADS > 2 || N < 1 || C < 1 || H < 1 || OC < 1) {
            fprintf(stderr, "blocked_winograd: THREADS 1 or 2, sizes >= 1\n");
            return 2;
        }
        return run(N, C, H, H, OC, 1);
    }
    if (argc != 1) {
        fprintf(stderr, "usage: blocked_winograd [THREADS N C H OC]   (3x3, stride 1, padding 1, W = H)\n");
        return 2;
    }
    int bad = 0;
    // N C H W OC: partial tiles, partial channel blocks, planes smaller than a tile, non-square planes
    static const int64_t odd[][5] = {{2, 20, 9, 9, 40},    {1, 20, 9, 9, 40},   {1, 3, 1, 1, 5},  {2, 16, 5, 5, 16},
                                     {3, 33, 10, 10, 70}, {1, 64, 13, 13, 100}, {2, 300, 6, 6, 17}, {2, 24, 7, 17, 50},
                                     {1, 48, 30, 3, 130}};
    for (THREADS = 1; THREADS <= 2; THREADS++)
        for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++)
            bad |= run(odd[i][0], odd[i][1], odd[i][2], odd[i][3], odd[i][4], 0);
    static const int64_t resnet[][4] = {{1, 64, 56, 64},  {1, 128, 28, 128},  {1, 256, 14, 256},  {1, 512, 7, 512},
                                        {16, 64, 56, 64}, {16, 128, 28, 128}, {16, 256, 14, 256}, {16, 512, 7, 512}};
    for (THREADS = 1; THREADS <= 2; THREADS++)
        for (size_t i = 0; i < sizeof resnet / sizeof resnet[0]; i++)
            bad |= run(resnet[i][0], resnet[i][1], resnet[i][2], resnet[i][2], resnet[i][3], 1);
    printf(bad ? "MISMATCH\n" : "all checks passed\n");
    return bad;
}
