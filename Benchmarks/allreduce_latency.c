/*
 * allreduce_latency.c -- MPI_Allreduce (sum, float) alone, for Benchmarks/distributed's
 * notes: what a gradient sum costs between ranks when nothing else runs in the step.
 *
 *     mpicc -O2 Benchmarks/allreduce_latency.c -o allreduce_latency
 *     mpirun -np 2 ./allreduce_latency 9098 11175370     (floats: ConvNet, ResNet-18)
 *
 * For each count: 5 warm-up calls, then rounds of calls; prints the median round's mean
 * time per call on rank 0.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int compare(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  for (int a = 1; a < argc; a++) {
    long count = atol(argv[a]);
    int calls = count > 1000000 ? 5 : 200, rounds = 7;
    float *data = calloc((size_t)count, sizeof *data);
    double times[7];
    for (int i = 0; i < 5; i++) MPI_Allreduce(MPI_IN_PLACE, data, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    for (int r = 0; r < rounds; r++) {
      MPI_Barrier(MPI_COMM_WORLD);
      double t = MPI_Wtime();
      for (int i = 0; i < calls; i++) MPI_Allreduce(MPI_IN_PLACE, data, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      times[r] = (MPI_Wtime() - t) / calls;
    }
    qsort(times, (size_t)rounds, sizeof times[0], compare);
    if (rank == 0) printf("%ld floats (%.3f MB): median %.1f us per allreduce (best %.1f)\n", count, count * 4e-6, times[rounds / 2] * 1e6, times[0] * 1e6);
    free(data);
  }
  MPI_Finalize();
  return 0;
}
