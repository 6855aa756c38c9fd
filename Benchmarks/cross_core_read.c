/*
 * What it costs a core to read data another core just wrote, against data it wrote itself: the
 * price a multi-threaded layer pays when its split of the input differs from the previous layer's
 * split of that same tensor (batch 1 at 2 threads: a 3x3 conv split by output channels, followed
 * by a 1x1 conv split by positions, reads half its input from the other core's cache).
 *
 * Two threads, each pinned to its own CPU (0 and 1). Per repetition, for each mode: both write
 * their half of an MB-megabyte buffer, meet at a barrier, then each sums (a) its own half or
 * (b) the other thread's half, as AVX-512 loads, timed in the thread's CPU time (time spent
 * descheduled on a shared machine does not count). Prints each thread's GB/s for both modes,
 * summed over 15 repetitions after 5 untimed ones. Sizes past the L2 (here 4 MB per core) read
 * from the last level either way.
 *
 *   cc -O2 -mavx512f -pthread -o /tmp/cross_core_read Benchmarks/cross_core_read.c
 *   /tmp/cross_core_read 1 && /tmp/cross_core_read 3 && /tmp/cross_core_read 6
 *
 * Linux, x86-64 with AVX-512 only. Not used by the build, the tests or CI.
 */
#define _GNU_SOURCE
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define WARMUP 5
#define TIMED 15

static float *buffer;
static size_t floats;  // the whole buffer; each thread owns half
static pthread_barrier_t barrier;
static double seconds[2][2];  // [thread][0: own half, 1: the other's half]
static volatile float sink;

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

// sum of p[0..n), n a multiple of 32, two independent chains of 16-lane loads
static float sum(const float *p, size_t n) {
    __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 32) {
        a = _mm512_add_ps(a, _mm512_load_ps(p + i));
        b = _mm512_add_ps(b, _mm512_load_ps(p + i + 16));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a, b));
}

static void *run(void *arg) {
    const long t = (long)arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((int)t, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
        perror("sched_setaffinity (needs CPUs 0 and 1)");
        exit(1);
    }
    const size_t half = floats / 2;
    float *mine = buffer + (size_t)t * half, *theirs = buffer + (size_t)(1 - t) * half;
    for (int rep = 0; rep < WARMUP + TIMED; rep++) {
        for (int mode = 0; mode < 2; mode++) {
            pthread_barrier_wait(&barrier);
            for (size_t i = 0; i < half; i++) mine[i] = (float)(i + (size_t)rep);
            pthread_barrier_wait(&barrier);
            const double t0 = cpu_now();
            sink += sum(mode ? theirs : mine, half);
            if (rep >= WARMUP) seconds[t][mode] += cpu_now() - t0;
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    const long mb = argc > 1 ? atol(argv[1]) : 3;
    if (argc > 2 || mb < 1 || mb > 1024) {
        fprintf(stderr, "usage: %s [MB]   (1-1024, default 3)\n", argv[0]);
        return 2;
    }
    floats = (size_t)mb * 1024 * 1024 / sizeof(float);
    buffer = aligned_alloc(64, floats * sizeof(float));
    if (buffer == NULL) {
        perror("aligned_alloc");
        return 1;
    }
    pthread_barrier_init(&barrier, NULL, 2);
    pthread_t threads[2];
    for (long t = 0; t < 2; t++) pthread_create(&threads[t], NULL, run, (void *)t);
    for (int t = 0; t < 2; t++) pthread_join(threads[t], NULL);
    const double bytes = (double)TIMED * (double)(floats / 2) * sizeof(float);
    for (int t = 0; t < 2; t++)
        printf("%ld MB, thread %d: own half %.1f GB/s, the other's half %.1f GB/s\n", mb, t,
               bytes / seconds[t][0] * 1e-9, bytes / seconds[t][1] * 1e-9);
    free(buffer);
    return 0;
}
