/*
 * pool_roundtrip.c -- what one parallel region costs on this machine, with the protocol of Ply's
 * WorkerPool (Sources/Ply/Runtime/HostServices.swift): the caller posts a job by bumping a
 * generation counter, runs chunk 0 itself, and spins until the worker has counted `pending`
 * down; the worker polls the generation, and after a spin budget sleeps on a condition variable
 * (the caller then broadcasts when it posts). One caller and one worker: the 2-thread case.
 *
 *     cc -O2 -pthread -o pool_roundtrip Benchmarks/pool_roundtrip.c && ./pool_roundtrip
 *
 * Each case runs regions of W us of busy work per chunk (both threads), with G us of busy work
 * on the caller alone between regions (the host's glue, a layer left on one thread), the
 * worker spinning at most S us before it sleeps. Printed per case (median of 7 rounds of
 * 400 regions): the overhead per region in wall time, (round wall time - regions * (W + G)) /
 * regions, which is what a forward pays per parallel_for beyond the work itself; how many posts
 * found the worker asleep; and the worker's start latency (post -> its chunk begins).
 * S = 0 is a worker that always sleeps (the condvar wake-up alone). Not used by the build,
 * the tests or CI. Wall time: run it on a quiet machine (`uptime`), or the numbers are noise.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec * 1e-3;
}

/* Busy work for `us` microseconds of wall time (a stand-in for a chunk of a layer). */
static void busy(double us) {
  if (us <= 0) return;
  double end = now_us() + us;
  while (now_us() < end) {
  }
}

static struct {
  _Atomic long generation, pending, sleepers, stopping;
  pthread_mutex_t mutex;
  pthread_cond_t cond;
  double work_us, spin_us;
  _Atomic double posted_at; /* caller's post time, for the worker's start latency */
  double latency_sum;       /* written by the worker only */
} pool = {.mutex = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void *worker(void *unused) {
  (void)unused;
  long seen = 0;
  for (;;) {
    long g = atomic_load(&pool.generation);
    double spin_end = now_us() + pool.spin_us;
    unsigned polls = 0;
    while (g == seen) {
      /* the time is read every 64 polls, as a pool would (a poll is ~1 ns, a clock read ~20) */
      if ((++polls & 63) == 0 && now_us() >= spin_end) {
        pthread_mutex_lock(&pool.mutex);
        atomic_fetch_add(&pool.sleepers, 1);
        g = atomic_load(&pool.generation);
        while (g == seen) {
          pthread_cond_wait(&pool.cond, &pool.mutex);
          g = atomic_load(&pool.generation);
        }
        atomic_fetch_sub(&pool.sleepers, 1);
        pthread_mutex_unlock(&pool.mutex);
        break;
      }
      g = atomic_load(&pool.generation);
    }
    seen = g;
    if (atomic_load(&pool.stopping)) return NULL;
    pool.latency_sum += now_us() - atomic_load(&pool.posted_at);
    busy(pool.work_us);
    atomic_fetch_sub(&pool.pending, 1);
  }
}

/* One parallel region; returns 1 when the post found the worker asleep. */
static int region(void) {
  atomic_store(&pool.pending, 1);
  atomic_store(&pool.posted_at, now_us());
  atomic_fetch_add(&pool.generation, 1);
  int slept = 0;
  if (atomic_load(&pool.sleepers) > 0) {
    slept = 1;
    pthread_mutex_lock(&pool.mutex);
    pthread_cond_broadcast(&pool.cond);
    pthread_mutex_unlock(&pool.mutex);
  }
  busy(pool.work_us);
  while (atomic_load(&pool.pending) > 0) {
  }
  return slept;
}

static int compare(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, worker, NULL) != 0) {
    perror("pthread_create");
    return 1;
  }
  const double works[] = {0, 20, 100, 400};
  const double gaps[] = {0, 10, 50, 100, 300};
  const double spins[] = {0, 60, 300, 1000};
  enum { rounds = 7, regions = 400 };
  printf("%8s %8s %8s | %14s %8s %14s\n", "work us", "gap us", "spin us", "overhead us", "asleep", "start lat. us");
  for (size_t w = 0; w < sizeof works / sizeof *works; w++)
    for (size_t s = 0; s < sizeof spins / sizeof *spins; s++)
      for (size_t gi = 0; gi < sizeof gaps / sizeof *gaps; gi++) {
        pool.work_us = works[w];
        pool.spin_us = spins[s];
        double over[rounds], lat[rounds], asleep[rounds];
        region(); /* lets the worker pick up the new spin budget */
        for (int r = 0; r < rounds; r++) {
          int slept = 0;
          pool.latency_sum = 0;
          double t0 = now_us();
          for (int i = 0; i < regions; i++) {
            busy(gaps[gi]);
            slept += region();
          }
          double wall = now_us() - t0;
          over[r] = (wall - regions * (works[w] + gaps[gi])) / regions;
          lat[r] = pool.latency_sum / regions;
          asleep[r] = (double)slept / regions;
        }
        qsort(over, rounds, sizeof *over, compare);
        qsort(lat, rounds, sizeof *lat, compare);
        qsort(asleep, rounds, sizeof *asleep, compare);
        printf("%8.0f %8.0f %8.0f | %14.1f %7.0f%% %14.1f\n", works[w], gaps[gi], spins[s],
               over[rounds / 2], 100 * asleep[rounds / 2], lat[rounds / 2]);
      }
  atomic_store(&pool.stopping, 1);
  atomic_fetch_add(&pool.generation, 1);
  pthread_mutex_lock(&pool.mutex);
  pthread_cond_broadcast(&pool.cond);
  pthread_mutex_unlock(&pool.mutex);
  pthread_join(t, NULL);
  return 0;
}
