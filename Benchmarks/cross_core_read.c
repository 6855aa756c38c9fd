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
 * from the last level either way. With "demote" (CPUs with CLDEMOTE), two more modes: the writer
 * runs `cldemote` over its half after writing it (pushing the lines towards the shared cache), then
 * each reads its own or the other's half; the demote's own cost is printed per MB.
 *
 *   cc -O2 -mavx512f -pthread -o /tmp/cross_core_read Benchmarks/cross_core_read.c
 *   /tmp/cross_core_read 1 && /tmp/cross_core_read 3 && /tmp/cross_core_read 6
 *   /tmp/cross_core_read 1 demote
 *
 * Linux, x86-64 with AVX-512 only. Not used by the build, the tests or CI.
 */
#define _GNU_SOURCE
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WARMUP 5
#define TIMED 15

static float *buffer;
static size_t floats;  // the whole buffer; each thread owns half
static pthread_barrier_t barrier;
static double seconds[2][4];  // [thread][mode: own half, the other's half, both after a demote]
static double demote_seconds[2];
static int modes = 2;  // 4 with "demote"

// Pushes [p, p + n) from this core's caches towards the shared cache, one hint per 64-byte line.
__attribute__((target("cldemote"))) static void demote(float *p, size_t n) {
    for (size_t i = 0; i < n; i += 16) _cldemote(p + i);
}
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
        for (int mode = 0; mode < modes; mode++) {
            pthread_barrier_wait(&barrier);
            for (size_t i = 0; i < half; i++) mine[i] = (float)(i + (size_t)rep);
            if (mode >= 2) {
                const double d0 = cpu_now();
                demote(mine, half);
                if (rep >= WARMUP) demote_seconds[t] += cpu_now() - d0;
            }
            pthread_barrier_wait(&barrier);
            const double t0 = cpu_now();
            sink += sum((mode & 1) ? theirs : mine, half);
            if (rep >= WARMUP) seconds[t][mode] += cpu_now() - t0;
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    const long mb = argc > 1 ? atol(argv[1]) : 3;
    if (argc > 3 || mb < 1 || mb > 1024 || (argc == 3 && strcmp(argv[2], "demote"))) {
        fprintf(stderr, "usage: %s [MB [demote]]   (MB 1-1024, default 3)\n", argv[0]);
        return 2;
    }
    if (argc == 3) {
        if (!__builtin_cpu_supports("cldemote")) {
            fprintf(stderr, "%s: this CPU has no CLDEMOTE\n", argv[0]);
            return 1;
        }
        modes = 4;
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
    for (int t = 0; t < 2; t++) {
        printf("%ld MB, thread %d: own half %.1f GB/s, the other's half %.1f GB/s", mb, t,
               bytes / seconds[t][0] * 1e-9, bytes / seconds[t][1] * 1e-9);
        if (modes == 4)
            printf("; after a demote: own %.1f, the other's %.1f GB/s; the demote %.0f us per MB",
                   bytes / seconds[t][2] * 1e-9, bytes / seconds[t][3] * 1e-9,
                   demote_seconds[t] / (2.0 * TIMED) / (mb / 2.0) * 1e6);
        printf("\n");
    }
    free(buffer);
    return 0;
}
