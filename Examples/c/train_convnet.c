/*
 * train_convnet.c -- train the tutorial's ConvNet through Ply's C API.
 *
 *     train_convnet [MNIST-DIR] [EPOCHS]
 *
 * MNIST-DIR holds MNIST-format IDX files (train-images-idx3-ubyte[.gz], ...;
 * default /usr/share/datasets/fashion-mnist). One epoch of SGD, learning
 * rate 0.05, batch 128, N(0, 0.01) weights: the tutorial's settings. Prints
 * the tutorial's progress lines and the test accuracy, and saves the weights
 * to convnet.safetensors (override with PLY_WEIGHTS_OUT).
 */
#include <ply/ply.h>

#include <stdio.h>
#include <stdlib.h>

static int fail(const char *what, ply_result status) {
  fprintf(stderr, "train_convnet: %s failed (%s): %s\n", what,
          ply_result_name(status), ply_last_error());
  return 1;
}

static int32_t on_progress(const ply_progress *p, void *user_data) {
  (void)user_data;
  if (p->kind == PLY_PROGRESS_BATCH && p->log) {
    printf("Epoch: %03d/%03d | Batch %03d/%03d | Cost: %.4f\n", p->epoch,
           p->epochs, p->batch, p->batches, p->loss);
  } else if (p->kind == PLY_PROGRESS_EPOCH) {
    if (p->training_accuracy >= 0)
      printf("Epoch: %03d/%03d training accuracy: %.2f%%\n", p->epoch, p->epochs,
             p->training_accuracy);
    printf("Time elapsed: %.2f min\n", p->elapsed_seconds / 60);
  }
  fflush(stdout);
  return 0; /* non-zero would stop training before the next batch */
}

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
  const char *weights = getenv("PLY_WEIGHTS_OUT");
  ply_runtime *runtime = NULL;
  ply_model *model = NULL;
  ply_dataset *train = NULL, *test = NULL;
  ply_fit_options options;
  ply_fit_result result;
  ply_result status;
  double accuracy = 0;
  int64_t params = 0, height = 0;
  int code = 1;

  if ((status = ply_runtime_create(NULL, &runtime)) != PLY_OK)
    return fail("ply_runtime_create", status);
  if ((status = ply_dataset_load_mnist(dir, PLY_SPLIT_TRAIN, &train)) != PLY_OK) {
    fail("loading the training set", status);
    goto done;
  }
  if ((status = ply_dataset_load_mnist(dir, PLY_SPLIT_TEST, &test)) != PLY_OK) {
    fail("loading the test set", status);
    goto done;
  }
  ply_dataset_shape(train, NULL, NULL, &height, NULL);
  if ((status = ply_model_from_zoo(runtime, "convnet", 10, 1, (int32_t)height,
                                   &model)) != PLY_OK) {
    fail("ply_model_from_zoo", status);
    goto done;
  }
  ply_model_parameter_count(model, &params);
  printf("ConvNet: %lld parameters\n", (long long)params);

  ply_fit_options_init(&options); /* the tutorial's SGD, lr 0.05, batch 128 */
  options.epochs = argc > 2 ? atoi(argv[2]) : 1;
  options.learning_rate = 0.05;
  options.batch_size = 128;
  ply_fit_result_init(&result);
  if ((status = ply_fit(model, train, &options, on_progress, NULL, &result)) !=
      PLY_OK) {
    fail("ply_fit", status);
    goto done;
  }
  printf("Total Training Time: %.2f min\n", result.seconds / 60);
  if ((status = ply_evaluate(model, test, &accuracy)) != PLY_OK) {
    fail("ply_evaluate", status);
    goto done;
  }
  printf("Test accuracy: %.2f%%\n", accuracy);
  if ((status = ply_model_save_weights(
           model, weights ? weights : "convnet.safetensors")) != PLY_OK) {
    fail("ply_model_save_weights", status);
    goto done;
  }
  code = 0;
done:
  ply_model_destroy(model);
  ply_dataset_destroy(train);
  ply_dataset_destroy(test);
  ply_runtime_destroy(runtime);
  return code;
}
