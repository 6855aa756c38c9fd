/*
 * This machine's fp32 peak, measured: one thread runs independent chains of
 * fused multiply-adds on registers (no memory traffic) for about a second and
 * reports GFLOPS = 2 * lanes * FMAs / seconds, for AVX-512 (16 lanes) and AVX2
 * (8 lanes). Seconds are the thread's CPU time, so that time the thread spent
 * descheduled on a shared machine does not count (a hypervisor's steal still
 * does). The peak of T threads is T times this on separate cores.
 *
 *   cc -O2 -o fma_peak Benchmarks/fma_peak.c && ./fma_peak
 *
 * Used by `ply bench-layers --peak` for the "fraction of peak" column. Each loop
 * keeps 12 accumulators: an FMA has 4 cycles latency and 2 issue ports on the
 * cores this was written for, so 8 are needed to fill them; 12 leaves room.
 * Prints `avx512_gflops: X` and `avx2_gflops: Y` (best of 5 runs each).
 */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

#define CHAINS 12
// Twelve named accumulators (an array of them is kept in memory by GCC at -O2, and the loop then
// measures store-to-load forwarding instead of the FMA units).
#define FMA12(F, a, b)                                                                                \
    c0 = F(c0, a, b); c1 = F(c1, a, b); c2 = F(c2, a, b); c3 = F(c3, a, b); c4 = F(c4, a, b);        \
    c5 = F(c5, a, b); c6 = F(c6, a, b); c7 = F(c7, a, b); c8 = F(c8, a, b); c9 = F(c9, a, b);        \
    c10 = F(c10, a, b); c11 = F(c11, a, b)
#define SUM12(ADD) ADD(ADD(ADD(ADD(c0, c1), ADD(c2, c3)), ADD(ADD(c4, c5), ADD(c6, c7))), ADD(ADD(c8, c9), ADD(c10, c11)))

__attribute__((target("avx512f"))) static double run512(long iters) {
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    __m512 c0 = _mm512_set1_ps(0), c1 = _mm512_set1_ps(1), c2 = _mm512_set1_ps(2), c3 = _mm512_set1_ps(3);
    __m512 c4 = _mm512_set1_ps(4), c5 = _mm512_set1_ps(5), c6 = _mm512_set1_ps(6), c7 = _mm512_set1_ps(7);
    __m512 c8 = _mm512_set1_ps(8), c9 = _mm512_set1_ps(9), c10 = _mm512_set1_ps(10), c11 = _mm512_set1_ps(11);
    double t0 = now();
    for (long i = 0; i < iters; i++) { FMA12(_mm512_fmadd_ps, a, b); }
    double t = now() - t0;
    volatile float sink = _mm512_reduce_add_ps(SUM12(_mm512_add_ps));
    (void)sink;
    return 2.0 * 16 * CHAINS * (double)iters / t * 1e-9;
}

__attribute__((target("avx2,fma"))) static double run256(long iters) {
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    __m256 c0 = _mm256_set1_ps(0), c1 = _mm256_set1_ps(1), c2 = _mm256_set1_ps(2), c3 = _mm256_set1_ps(3);
    __m256 c4 = _mm256_set1_ps(4), c5 = _mm256_set1_ps(5), c6 = _mm256_set1_ps(6), c7 = _mm256_set1_ps(7);
    __m256 c8 = _mm256_set1_ps(8), c9 = _mm256_set1_ps(9), c10 = _mm256_set1_ps(10), c11 = _mm256_set1_ps(11);
    double t0 = now();
    for (long i = 0; i < iters; i++) { FMA12(_mm256_fmadd_ps, a, b); }
    double t = now() - t0;
    float out[8];
    _mm256_storeu_ps(out, SUM12(_mm256_add_ps));
    volatile float sink = out[0];
    (void)sink;
    return 2.0 * 8 * CHAINS * (double)iters / t * 1e-9;
}

int main(void) {
    const long iters = 50L * 1000 * 1000; // about a second at 3 GHz
    double best512 = 0, best256 = 0;
    __builtin_cpu_init();
    for (int r = 0; r < 5; r++) {
        if (__builtin_cpu_supports("avx512f")) {
            double g = run512(iters);
            if (g > best512) best512 = g;
        }
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
            double g = run256(iters);
            if (g > best256) best256 = g;
        }
    }
    printf("avx512_gflops: %.1f\n", best512);
    printf("avx2_gflops: %.1f\n", best256);
    return 0;
}
