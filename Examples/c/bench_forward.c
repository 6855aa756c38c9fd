/*
 * bench_forward.c -- time ply_model_forward for the tutorial's ConvNet.
 *
 *     bench_forward [THREADS]
 *
 * For batch 1 and batch 128 (evaluation mode, PyTorch-default weights, a fixed
 * input), runs 7 rounds of many calls and prints the best and the median
 * round's mean time per call. `ply bench-capi` measures Model.forward through
 * the Swift API the same way; the difference is the C API's overhead
 * (argument checks, handle lookup, copying the output into the caller's
 * buffer). See BENCHMARKS.md.
 */
#define _POSIX_C_SOURCE 199309L
#include <ply/ply.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int compare(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  ply_runtime_options options;
  ply_runtime *runtime = NULL;
  ply_model *model = NULL;
  int batches[2] = {1, 128}, b;
  ply_runtime_options_init(&options);
  if (argc > 1) options.threads = atoi(argv[1]);
  if (ply_runtime_create(&options, &runtime) != PLY_OK ||
      ply_model_from_zoo(runtime, "convnet", 10, 1, 28, &model) != PLY_OK) {
    fprintf(stderr, "bench_forward: %s\n", ply_last_error());
    return 1;
  }
  ply_model_set_training(model, 0);
  for (b = 0; b < 2; b++) {
    int64_t n = batches[b], shape[4], i;
    int iterations = n == 1 ? 20000 : 400, round, k;
    float *input = malloc((size_t)(n * 784) * sizeof *input);
    float *output = malloc((size_t)(n * 10) * sizeof *output);
    double rounds[7], checksum = 0;
    shape[0] = n; shape[1] = 1; shape[2] = 28; shape[3] = 28;
    for (i = 0; i < n * 784; i++) input[i] = (float)((i * 37) % 101) / 100.0f;
    for (k = 0; k < iterations / 10; k++) /* warm up: plans buffers, faults pages */
      ply_model_forward(model, input, shape, 4, output, n * 10, NULL, NULL);
    for (round = 0; round < 7; round++) {
      double start = now();
      for (k = 0; k < iterations; k++) {
        if (ply_model_forward(model, input, shape, 4, output, n * 10, NULL, NULL) != PLY_OK) {
          fprintf(stderr, "bench_forward: %s\n", ply_last_error());
          return 1;
        }
      }
      rounds[round] = (now() - start) / iterations;
      checksum += output[0];
    }
    qsort(rounds, 7, sizeof rounds[0], compare);
    printf("C API  ply_model_forward batch %3lld: best %9.2f us, median %9.2f us per call (%d calls x 7; checksum %g)\n",
           (long long)n, rounds[0] * 1e6, rounds[3] * 1e6, iterations, checksum);
    free(input);
    free(output);
  }
  ply_model_destroy(model);
  ply_runtime_destroy(runtime);
  return 0;
}
