/*
 * This machine's read bandwidth from memory for one thread, measured: sums a buffer of MB
 * megabytes as eight interleaved streams of AVX-512 loads (as linear_gemv.c reads eight weight
 * rows at once), best of 7 passes, seconds in the thread's CPU time (time descheduled on a shared
 * machine does not count). With "cold", 600 MB of other data are read between passes, so the
 * buffer comes from DRAM rather than from the last-level cache.
 *
 *   cc -O2 -o read_bandwidth Benchmarks/read_bandwidth.c && ./read_bandwidth 151 cold
 *
 * The bar for the batch-1 linear layers (matrix-vector products, memory-bound): AlexNet's fc6
 * is 151 MB of weights, its classifier 244 MB. Not used by the build, the tests or CI.
 */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

// sum of p[0, n): eight streams p[r*n/8 ...], one 16-float vector of each per step
__attribute__((target("avx512f"))) static float sum8(const float *p, size_t n) {
    size_t s = n / 8;
    __m512 a[8];
    for (int r = 0; r < 8; r++) a[r] = _mm512_setzero_ps();
    for (size_t k = 0; k < s; k += 16)
        for (int r = 0; r < 8; r++) a[r] = _mm512_add_ps(a[r], _mm512_loadu_ps(p + r * s + k));
    for (int r = 1; r < 8; r++) a[0] = _mm512_add_ps(a[0], a[r]);
    return _mm512_reduce_add_ps(a[0]);
}

int main(int argc, char **argv) {
    if (argc < 2 || atoi(argv[1]) < 1 || (argc > 2 && strcmp(argv[2], "cold") != 0)) {
        fprintf(stderr, "usage: %s MB [cold]\n", argv[0]);
        return 2;
    }
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f")) {
        fprintf(stderr, "read_bandwidth: this CPU has no AVX-512\n");
        return 1;
    }
    size_t mb = (size_t)atoi(argv[1]), n = mb * 1024 * 1024 / 4;
    n -= n % 128;
    int cold = argc > 2;
    size_t en = cold ? 600ull * 1024 * 1024 / 4 : 0;
    float *p = aligned_alloc(64, n * 4), *e = cold ? aligned_alloc(64, en * 4) : NULL;
    if (!p || (cold && !e)) {
        fprintf(stderr, "read_bandwidth: cannot allocate %zu MB\n", mb + (cold ? 600 : 0));
        return 1;
    }
    for (size_t i = 0; i < n; i++) p[i] = 1e-9f * (float)(i & 1023);
    for (size_t i = 0; i < en; i++) e[i] = 0.0f;
    double best = 1e30;
    float sink = 0.0f;
    for (int rep = 0; rep < 7; rep++) {
        if (cold) sink += sum8(e, en);
        double t = cpu_seconds();
        sink += sum8(p, n);
        t = cpu_seconds() - t;
        if (t < best) best = t;
    }
    printf("%zu MB%s: best of 7 %.2f ms, %.1f GB/s (checksum %g)\n", mb, cold ? " cold" : "", best * 1e3,
           (double)n * 4 / best / 1e9, (double)sink);
    return 0;
}
