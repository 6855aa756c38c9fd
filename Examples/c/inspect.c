/*
 * inspect.c -- pictures of a trained model through Ply's C API (API 1.4),
 * what `ply inspect` draws.
 *
 *     inspect MODEL WEIGHTS.safetensors IMAGES-IDX INDEX LAYER Y X OUTDIR
 *
 * MODEL is a zoo name or a .yaml/.json model file, WEIGHTS its weights,
 * IMAGES-IDX an IDX image file (raw or gzip) and INDEX the image in it. Writes
 * OUTDIR/filters.png (the first convolution's filters), OUTDIR/features.png
 * (LAYER's feature maps for the image) and OUTDIR/receptive-field.png (the
 * input pixels output position Y,X of LAYER depends on, framed in red), and
 * prints "receptive field: rows TOP..BOTTOM, columns LEFT..RIGHT". LAYER is a
 * name as `ply summary` lists it ("conv_2" for the tutorial's ConvNet).
 */
#include <ply/ply.h>

#include <stdio.h>
#include <stdlib.h>

static int fail(const char *what, ply_result status) {
  fprintf(stderr, "inspect: %s failed (%s): %s\n", what,
          ply_result_name(status), ply_last_error());
  return 1;
}

int main(int argc, char **argv) {
  ply_runtime *runtime = NULL;
  ply_model *model = NULL;
  ply_dataset *images = NULL;
  ply_result status;
  int64_t count = 0, channels = 0, height = 0, width = 0, index, size;
  int32_t box[4];
  float *image = NULL;
  char path[4096];
  int code = 1;

  if (argc != 9) {
    fprintf(stderr, "usage: inspect MODEL WEIGHTS.safetensors IMAGES-IDX INDEX LAYER Y X OUTDIR\n");
    return 2;
  }
  index = atoll(argv[4]);
  if ((status = ply_runtime_create(NULL, &runtime)) != PLY_OK)
    return fail("ply_runtime_create", status);
  if ((status = ply_dataset_from_idx(argv[3], NULL, &images)) != PLY_OK) {
    fail("loading the images", status);
    goto done;
  }
  ply_dataset_shape(images, &count, &channels, &height, &width);
  if (index < 0 || index >= count) {
    fprintf(stderr, "inspect: INDEX %lld is outside 0..%lld\n", (long long)index, (long long)count - 1);
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
  size = channels * height * width;
  image = malloc((size_t)size * sizeof *image);
  if (!image) goto done;
  if ((status = ply_dataset_copy(images, index, 1, image, NULL)) != PLY_OK) {
    fail("ply_dataset_copy", status);
    goto done;
  }
  snprintf(path, sizeof path, "%s/filters.png", argv[8]);
  if ((status = ply_inspect_filters(model, 0, path)) != PLY_OK) {
    fail("ply_inspect_filters", status);
    goto done;
  }
  snprintf(path, sizeof path, "%s/features.png", argv[8]);
  if ((status = ply_inspect_feature_maps(model, image, size, argv[5], 0, path)) != PLY_OK) {
    fail("ply_inspect_feature_maps", status);
    goto done;
  }
  snprintf(path, sizeof path, "%s/receptive-field.png", argv[8]);
  if ((status = ply_inspect_receptive_field_png(model, image, size, argv[5], atoi(argv[6]),
                                                atoi(argv[7]), 0, path, box)) != PLY_OK) {
    fail("ply_inspect_receptive_field_png", status);
    goto done;
  }
  printf("receptive field: rows %d..%d, columns %d..%d\n", (int)box[0], (int)box[2], (int)box[1], (int)box[3]);
  code = 0;

done:
  free(image);
  ply_dataset_destroy(images);
  ply_model_destroy(model);
  ply_runtime_destroy(runtime);
  return code;
}
