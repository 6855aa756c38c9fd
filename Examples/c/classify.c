/*
 * classify.c -- classify images with a trained model through Ply's C API.
 *
 *     classify MODEL WEIGHTS.safetensors IMAGES-IDX [N]
 *
 * MODEL is a zoo name ("convnet", "lenet5", ...) or a .yaml/.json model file;
 * WEIGHTS its weights (e.g. from train_convnet or `ply train`); IMAGES-IDX an
 * IDX image file (raw or gzip), such as t10k-images-idx3-ubyte.gz. Prints the
 * predicted class of the first N images (default 10), one per line:
 * "<index> <class>".
 */
#include <ply/ply.h>

#include <stdio.h>
#include <stdlib.h>

static int fail(const char *what, ply_result status) {
  fprintf(stderr, "classify: %s failed (%s): %s\n", what,
          ply_result_name(status), ply_last_error());
  return 1;
}

int main(int argc, char **argv) {
  ply_runtime *runtime = NULL;
  ply_model *model = NULL;
  ply_dataset *images = NULL;
  ply_result status;
  int64_t count = 0, channels = 0, height = 0, width = 0, n, i, k;
  int64_t shape[4], out_shape[PLY_MAX_NDIM];
  int32_t out_ndim = 0;
  float *input = NULL, *logits = NULL;
  int code = 1;

  if (argc < 4) {
    fprintf(stderr, "usage: classify MODEL WEIGHTS.safetensors IMAGES-IDX [N]\n");
    return 2;
  }
  n = argc > 4 ? atoll(argv[4]) : 10;

  if ((status = ply_runtime_create(NULL, &runtime)) != PLY_OK)
    return fail("ply_runtime_create", status);
  if ((status = ply_dataset_from_idx(argv[3], NULL, &images)) != PLY_OK) {
    fail("loading the images", status);
    goto done;
  }
  ply_dataset_shape(images, &count, &channels, &height, &width);
  if (n > count) n = count;
  if (n <= 0) {
    fprintf(stderr, "classify: no images to classify\n");
    goto done;
  }
  if ((status = ply_model_from_zoo(runtime, argv[1], 10, (int32_t)channels,
                                   (int32_t)height, &model)) != PLY_OK) {
    fail("building the model", status);
    goto done;
  }
  if ((status = ply_model_load_weights(model, argv[2])) != PLY_OK) {
    fail("loading the weights", status);
    goto done;
  }
  ply_model_set_training(model, 0); /* inference: evaluation mode */

  input = malloc((size_t)(n * channels * height * width) * sizeof *input);
  if (!input) goto done;
  if ((status = ply_dataset_copy(images, 0, n, input, NULL)) != PLY_OK) {
    fail("ply_dataset_copy", status);
    goto done;
  }
  shape[0] = n; shape[1] = channels; shape[2] = height; shape[3] = width;
  /* Ask for the output shape first (capacity 0), then run for real. */
  ply_model_forward(model, input, shape, 4, NULL, 0, out_shape, &out_ndim);
  if (out_ndim != 2 || out_shape[0] != n) {
    fprintf(stderr, "classify: expected [N, classes] logits: %s\n", ply_last_error());
    goto done;
  }
  logits = malloc((size_t)(out_shape[0] * out_shape[1]) * sizeof *logits);
  if (!logits) goto done;
  if ((status = ply_model_forward(model, input, shape, 4, logits,
                                  out_shape[0] * out_shape[1], out_shape,
                                  &out_ndim)) != PLY_OK) {
    fail("ply_model_forward", status);
    goto done;
  }
  for (i = 0; i < n; i++) {
    const float *row = logits + i * out_shape[1];
    int64_t best = 0;
    for (k = 1; k < out_shape[1]; k++)
      if (row[k] > row[best]) best = k;
    printf("%lld %lld\n", (long long)i, (long long)best);
  }
  code = 0;
done:
  free(input);
  free(logits);
  ply_model_destroy(model);
  ply_dataset_destroy(images);
  ply_runtime_destroy(runtime);
  return code;
}
