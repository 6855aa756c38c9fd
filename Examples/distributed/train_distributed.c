/*
 * train_distributed.c -- data-parallel training through Ply's C API, run with
 * mpirun: every rank trains on its share of each global batch, and the
 * gradients are summed over the ranks (Open MPI, through the communicator
 * library libplycomm_mpi.so that scripts/build-comm-mpi builds).
 *
 *     mpirun -np 2 train_distributed [MNIST-DIR] [EPOCHS]
 *
 * The program itself links only libply (no MPI): ply_communicator_open loads
 * the communicator and joins the job mpirun started. Rank 0 prints; the
 * weights after training are the same as one process's (the same global
 * batch of 128) within float rounding, whatever the number of ranks.
 */
#include <ply/ply.h>

#include <stdio.h>
#include <stdlib.h>

static int32_t on_progress(const ply_progress *p, void *user_data) {
  int rank = *(const int *)user_data;
  if (rank != 0) return 0; /* every rank gets the same reports: rank 0 prints */
  if (p->kind == PLY_PROGRESS_BATCH && p->log)
    printf("Epoch: %03d/%03d | Batch %03d/%03d | Cost: %.4f\n", p->epoch, p->epochs,
           p->batch, p->batches, p->loss);
  else if (p->kind == PLY_PROGRESS_EPOCH)
    printf("Time elapsed: %.2f min\n", p->elapsed_seconds / 60);
  fflush(stdout);
  return 0;
}

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
  ply_communicator *comm = NULL;
  ply_runtime *runtime = NULL;
  ply_runtime_options runtime_options;
  ply_model *model = NULL;
  ply_dataset *train = NULL, *test = NULL;
  ply_fit_options options;
  ply_fit_result result;
  double accuracy = 0;
  int64_t height = 0;
  int rank = 0, code = 1;
  ply_result status;

  if ((status = ply_communicator_open(NULL, &comm)) != PLY_OK) {
    fprintf(stderr, "train_distributed: %s\n", ply_last_error());
    return 1;
  }
  rank = ply_communicator_rank(comm);
  ply_runtime_options_init(&runtime_options);
  runtime_options.threads = 1; /* mpirun -np 2 on 2 cores: a core per rank */
  if ((status = ply_runtime_create(&runtime_options, &runtime)) != PLY_OK ||
      (status = ply_dataset_load_mnist(dir, PLY_SPLIT_TRAIN, &train)) != PLY_OK ||
      (status = ply_dataset_load_mnist(dir, PLY_SPLIT_TEST, &test)) != PLY_OK ||
      (status = ply_dataset_shape(train, NULL, NULL, &height, NULL)) != PLY_OK ||
      (status = ply_model_from_zoo(runtime, "convnet", 10, 1, (int32_t)height, &model)) != PLY_OK) {
    fprintf(stderr, "train_distributed: rank %d: %s\n", rank, ply_last_error());
    goto done;
  }
  if (rank == 0)
    printf("%d ranks, global batch 128\n", ply_communicator_size(comm));
  ply_fit_options_init(&options); /* the tutorial's SGD, lr 0.05, batch 128 */
  options.epochs = argc > 2 ? atoi(argv[2]) : 1;
  options.training_accuracy = 0;
  options.communicator = comm;
  ply_fit_result_init(&result);
  if ((status = ply_fit(model, train, &options, on_progress, &rank, &result)) != PLY_OK ||
      (status = ply_evaluate(model, test, &accuracy)) != PLY_OK) {
    fprintf(stderr, "train_distributed: rank %d: %s\n", rank, ply_last_error());
    goto done;
  }
  if (rank == 0) {
    printf("Test accuracy: %.2f%%\n", accuracy);
    printf("Throughput: %.0f images/s (all ranks)\n", result.images_per_second);
  }
  code = 0;
done:
  ply_model_destroy(model);
  ply_dataset_destroy(train);
  ply_dataset_destroy(test);
  ply_runtime_destroy(runtime);
  ply_communicator_close(comm); /* MPI_Finalize: every rank, before exit */
  return code;
}
