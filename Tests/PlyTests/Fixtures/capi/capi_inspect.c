/*
 * capi_inspect.c -- ply_inspect_* (API 1.4) and ply_image_read (1.6) as a C
 * program uses them, for CAPITests.inspectFunctions.
 *
 *     capi_inspect WEIGHTS.safetensors OUTDIR JPEG
 *
 * Builds InspectTests' tiny model (conv 3x3 pad 1, avgpool 2, conv 3x3 stride 2
 * pad 1 on 8x8 input), loads WEIGHTS, writes OUTDIR/{filters,features,rf}.png
 * for the image 0, 1, ..., 63, and checks the receptive field and each error's
 * code. Reads JPEG (a 28x28 colour photograph) with ply_image_read as gray
 * into OUTDIR/jpeg-gray.f32 (784 floats) and checks its errors. Prints
 * "FAIL ..." per failed check and "N failures" at the end.
 */
#include <ply/ply.h>

#include <stdio.h>
#include <string.h>

static int failures = 0;

static void expect(int ok, const char *what) {
  if (!ok) {
    printf("FAIL %s (last error: %s)\n", what, ply_last_error());
    failures++;
  }
}

static const char *text =
    "model: tiny\n"
    "layers:\n"
    "  - {name: conv, type: conv2d, in_channels: 1, out_channels: 2, kernel_size: 3, padding: 1}\n"
    "  - {name: pool, type: avgpool2d, kernel_size: 2, stride: 2}\n"
    "  - {name: conv2, type: conv2d, in_channels: 2, out_channels: 2, kernel_size: 3, stride: 2, padding: 1}\n";

int main(int argc, char **argv) {
  ply_runtime *runtime = NULL;
  ply_model *model = NULL;
  float image[64];
  int32_t box[4] = {-100, -100, -100, -100};
  char path[4096];
  float gray[28 * 28];
  int64_t shape[3] = {0, 0, 0};
  FILE *f;
  int i;

  if (argc != 4) {
    fprintf(stderr, "usage: capi_inspect WEIGHTS.safetensors OUTDIR JPEG\n");
    return 2;
  }
  for (i = 0; i < 64; i++) image[i] = (float)i;
  expect(PLY_API_VERSION_MINOR >= 4 && (ply_api_version() & 0xffff) >= 4, "API version 1.4");
  if (ply_runtime_create(NULL, &runtime) != PLY_OK || ply_model_from_text(runtime, text, 2, 1, 8, &model) != PLY_OK ||
      ply_model_load_weights(model, argv[1]) != PLY_OK) {
    printf("FAIL setting up: %s\n", ply_last_error());
    return 1;
  }

  snprintf(path, sizeof path, "%s/filters.png", argv[2]);
  expect(ply_inspect_filters(model, 1, path) == PLY_OK, "ply_inspect_filters");
  snprintf(path, sizeof path, "%s/features.png", argv[2]);
  expect(ply_inspect_feature_maps(model, image, 64, "pool", 2, path) == PLY_OK, "ply_inspect_feature_maps");
  snprintf(path, sizeof path, "%s/rf.png", argv[2]);
  expect(ply_inspect_receptive_field_png(model, image, 64, "conv2", 1, 0, 1, path, box) == PLY_OK,
         "ply_inspect_receptive_field_png");
  expect(box[0] == 1 && box[1] == -3 && box[2] == 8 && box[3] == 4, "receptive field of conv2 (1, 0) is 1, -3, 8, 4");
  expect(ply_inspect_receptive_field(model, "conv2", 1, 1, box) == PLY_OK, "ply_inspect_receptive_field");
  expect(box[0] == 1 && box[1] == 1 && box[2] == 8 && box[3] == 8, "receptive field of conv2 (1, 1) is 1, 1, 8, 8");

  /* Errors: each its own code, the message naming what is wrong; box_out untouched. */
  box[0] = 42;
  expect(ply_inspect_receptive_field(model, "conv3", 0, 0, box) == PLY_ERR_NOT_FOUND, "unknown layer: NOT_FOUND");
  expect(strstr(ply_last_error(), "conv, pool, conv2") != NULL, "unknown layer: the message lists the layers");
  expect(ply_inspect_receptive_field(model, "conv2", 0, 2, box) == PLY_ERR_SHAPE, "position outside: SHAPE");
  expect(strstr(ply_last_error(), "output of 2x2") != NULL, "position outside: the message names the size");
  expect(box[0] == 42, "box_out untouched on failure");
  expect(ply_inspect_receptive_field(model, "conv2", 0, 0, NULL) == PLY_ERR_INVALID_ARGUMENT, "NULL box_out");
  expect(ply_inspect_feature_maps(model, image, 63, "conv", 0, path) == PLY_ERR_SHAPE, "image_count 63: SHAPE");
  expect(ply_inspect_feature_maps(model, NULL, 64, "conv", 0, path) == PLY_ERR_INVALID_ARGUMENT, "NULL image");
  expect(ply_inspect_filters(model, 33, path) == PLY_ERR_INVALID_ARGUMENT, "scale 33: INVALID_ARGUMENT");
  expect(ply_inspect_filters(model, -1, path) == PLY_ERR_INVALID_ARGUMENT, "scale -1: INVALID_ARGUMENT");
  expect(ply_inspect_filters(NULL, 0, path) == PLY_ERR_INVALID_ARGUMENT, "NULL model");
  expect(ply_inspect_filters(model, 0, NULL) == PLY_ERR_INVALID_ARGUMENT, "NULL png_path");
  expect(ply_inspect_filters(model, 0, "/nonexistent/dir/f.png") == PLY_ERR_IO, "unwritable path: IO");
  expect(strstr(ply_last_error(), "/nonexistent/dir/f.png") != NULL, "unwritable path: the message names it");

  /* ply_image_read: the shape alone, then the pixels as gray; errors. */
  expect(PLY_API_VERSION_MINOR >= 6 && (ply_api_version() & 0xffff) >= 6, "API version 1.6");
  expect(ply_image_read(argv[3], 0, NULL, 0, shape) == PLY_OK, "ply_image_read: shape only");
  expect(shape[0] == 3 && shape[1] == 28 && shape[2] == 28, "the JPEG is 3x28x28");
  expect(ply_image_read(argv[3], 1, gray, 28 * 28, shape) == PLY_OK, "ply_image_read: gray");
  expect(shape[0] == 1 && shape[1] == 28 && shape[2] == 28, "as gray it is 1x28x28");
  snprintf(path, sizeof path, "%s/jpeg-gray.f32", argv[2]);
  if ((f = fopen(path, "wb")) != NULL) {
    expect(fwrite(gray, sizeof gray, 1, f) == 1, "writing jpeg-gray.f32");
    fclose(f);
  }
  shape[0] = 42;
  expect(ply_image_read(argv[3], 3, gray, 28 * 28, shape) == PLY_ERR_SHAPE, "RGB into 784 floats: SHAPE");
  expect(strstr(ply_last_error(), "3x28x28") != NULL, "capacity: the message gives the shape");
  expect(shape[0] == 42, "shape_out untouched on failure");
  expect(ply_image_read(argv[3], 2, gray, 28 * 28, shape) == PLY_ERR_INVALID_ARGUMENT, "channels 2: INVALID_ARGUMENT");
  expect(ply_image_read("/nonexistent/x.jpg", 0, NULL, 0, shape) == PLY_ERR_IO, "missing file: IO");
  expect(strstr(ply_last_error(), "/nonexistent/x.jpg") != NULL, "missing file: the message names it");
  expect(ply_image_read(argv[1], 0, NULL, 0, shape) == PLY_ERR_IO, "not an image: IO");
  expect(ply_image_read(argv[3], 0, NULL, 0, NULL) == PLY_ERR_INVALID_ARGUMENT, "NULL shape_out");

  ply_model_destroy(model);
  ply_runtime_destroy(runtime);
  printf("%d failures\n", failures);
  return failures == 0 ? 0 : 1;
}
