/*
 * pool_idle_cpu.c -- does Ply's worker pool sleep when the model is idle? Runs forwards of the
 * zoo's ResNet-18 (batch 1, evaluation mode) on THREADS threads, then idles: prints the
 * process's CPU time (all threads) burned in each of the following 5 intervals of IDLE_MS
 * milliseconds. The pool's workers poll for a new job for a bounded time after the last one
 * (Sources/Ply/Runtime/WorkerSpin.swift: 50 us, 7 us after a preemption), then sleep: the
 * first interval holds that spin once, the others must be ~0. Run it after any change to how
 * long the workers spin.
 *
 *     swift build -c release     # libPlyC.so and the plugins
 *     cc -std=c99 -O2 -I Include Benchmarks/pool_idle_cpu.c -o pool_idle_cpu \
 *        -L .build/release -lPlyC -Wl,-rpath,$PWD/.build/release
 *     ./pool_idle_cpu [THREADS=2] [IDLE_MS=200]
 *
 * Not used by the build, the tests or CI.
 */
#define _POSIX_C_SOURCE 199309L
#include <ply/ply.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double process_cpu_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec * 1e3 + 1e-6 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
  ply_runtime_options options;
  ply_runtime *runtime = NULL;
  ply_model *model = NULL;
  int idle_ms = argc > 2 ? atoi(argv[2]) : 200, k;
  int64_t shape[4] = {1, 3, 224, 224}, i;
  static float input[3 * 224 * 224], output[1000];
  ply_runtime_options_init(&options);
  options.threads = argc > 1 ? atoi(argv[1]) : 2;
  if (options.threads < 1 || idle_ms < 1) {
    fprintf(stderr, "usage: pool_idle_cpu [THREADS>=1] [IDLE_MS>=1]\n");
    return 2;
  }
  if (ply_runtime_create(&options, &runtime) != PLY_OK ||
      ply_model_from_zoo(runtime, "resnet18", 1000, 3, 224, &model) != PLY_OK) {
    fprintf(stderr, "pool_idle_cpu: %s\n", ply_last_error());
    return 1;
  }
  ply_model_set_training(model, 0);
  for (i = 0; i < 3 * 224 * 224; i++) input[i] = (float)((i * 37) % 101) / 100.0f;
  for (k = 0; k < 5; k++) {
    if (ply_model_forward(model, input, shape, 4, output, 1000, NULL, NULL) != PLY_OK) {
      fprintf(stderr, "pool_idle_cpu: %s\n", ply_last_error());
      return 1;
    }
  }
  printf("%d threads, 5 forwards done; process CPU time per idle interval of %d ms:", options.threads, idle_ms);
  for (k = 0; k < 5; k++) {
    double before = process_cpu_ms();
    struct timespec pause = {idle_ms / 1000, (long)(idle_ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
    printf(" %.3f", process_cpu_ms() - before);
  }
  printf(" ms\n");
  ply_model_destroy(model);
  ply_runtime_destroy(runtime);
  return 0;
}
