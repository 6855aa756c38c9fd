/*
 * capi_images.c -- ply_dataset_load (API 1.4) on an image folder and a CIFAR
 * directory, class names, skipped images, and ply_fit with augmentation; the
 * folder streamed (cache_decoded, API 1.6) gives the cached floats.
 *
 *     capi_images IMAGE-FOLDER-DIR CIFAR-DIR
 *
 * IMAGE-FOLDER-DIR has train/ and test/ with classes a_cat and b_dog and one
 * corrupt image in train/a_cat (ImageDataTests.makeFolder). Every check prints
 * "ok <what>" or "FAIL <what>"; the exit status is the number of failures.
 */
#include <ply/ply.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;

static void check(int ok, const char *what) {
  printf("%s %s%s%s\n", ok ? "ok" : "FAIL", what, ok ? "" : ": ", ok ? "" : ply_last_error());
  if (!ok) failures++;
}

static void expect_error(ply_result status, ply_result expected, const char *needle, const char *what) {
  const char *message = ply_last_error();
  int ok = status == expected && message && strstr(message, needle);
  printf("%s %s -> %s: %s\n", ok ? "ok" : "FAIL", what, ply_result_name(status), message ? message : "(null)");
  if (!ok) failures++;
}

int main(int argc, char **argv) {
  ply_data_options o;
  ply_dataset *train = NULL, *test = NULL, *cifar = NULL, *streamed = NULL;
  float *a = NULL, *b = NULL;
  int64_t sn = 0, streamed_skipped = -1;
  ply_runtime *rt = NULL;
  ply_runtime_options ro;
  ply_model *model = NULL;
  ply_fit_options fo;
  ply_fit_result fr;
  int64_t n = 0, c = 0, h = 0, w = 0, classes = 0, skipped = -1;
  const char *name = NULL;
  double accuracy = -1;

  if (argc < 3) {
    fprintf(stderr, "usage: capi_images IMAGE-FOLDER-DIR CIFAR-DIR\n");
    return 100;
  }
  ply_data_options_init(&o);
  o.resize = 14;
  o.center_crop = 12;
  expect_error(ply_dataset_load(argv[1], PLY_SPLIT_TRAIN, &o, &train), PLY_ERR_IO, "broken.jpg",
               "a corrupt image is named");
  o.skip_bad_images = 1;
  o.normalization = PLY_NORMALIZE_COMPUTED;
  check(ply_dataset_load(argv[1], PLY_SPLIT_TRAIN, &o, &train) == PLY_OK, "load train with skip_bad_images");
  check(ply_dataset_shape(train, &n, &c, &h, &w) == PLY_OK && n == 8 && c == 3 && h == 12 && w == 12,
        "train is 8 x 3 x 12 x 12");
  check(ply_dataset_skipped(train, &skipped) == PLY_OK && skipped == 1, "one image skipped");
  check(ply_dataset_class_count(train, &classes) == PLY_OK && classes == 2, "two classes");
  check(ply_dataset_class_name(train, 1, &name) == PLY_OK && strcmp(name, "b_dog") == 0,
        "class 1 is b_dog");
  expect_error(ply_dataset_class_name(train, 2, &name), PLY_ERR_INVALID_ARGUMENT, "2 class names",
               "class name out of range");
  check(ply_dataset_load(argv[1], PLY_SPLIT_TEST, &o, &test) == PLY_OK, "load test");

  /* The same split streamed: every float the same, the same image skipped. */
  o.cache_decoded = PLY_CACHE_OFF;
  check(ply_dataset_load(argv[1], PLY_SPLIT_TRAIN, &o, &streamed) == PLY_OK, "load train streamed");
  check(ply_dataset_shape(streamed, &sn, NULL, NULL, NULL) == PLY_OK && sn == n, "streamed: as many images");
  check(ply_dataset_skipped(streamed, &streamed_skipped) == PLY_OK && streamed_skipped == 1, "streamed: one image skipped");
  a = malloc((size_t)(n * c * h * w) * sizeof *a);
  b = malloc((size_t)(n * c * h * w) * sizeof *b);
  check(a && b && ply_dataset_copy(train, 0, n, a, NULL) == PLY_OK && ply_dataset_copy(streamed, 0, n, b, NULL) == PLY_OK &&
            memcmp(a, b, (size_t)(n * c * h * w) * sizeof *a) == 0,
        "streamed images equal the cached ones bit for bit");
  free(a);
  free(b);
  o.cache_decoded = 7;
  expect_error(ply_dataset_load(argv[1], PLY_SPLIT_TRAIN, &o, &test), PLY_ERR_INVALID_ARGUMENT, "cache_decoded",
               "cache_decoded 7 is refused");
  o.cache_decoded = PLY_CACHE_AUTO;

  o.channels = 2;
  expect_error(ply_dataset_load(argv[1], PLY_SPLIT_TRAIN, &o, &train), PLY_ERR_INVALID_ARGUMENT,
               "channels", "channels 2 is refused");
  o.channels = 0;
  o.validation_split = 0.5;
  expect_error(ply_dataset_load(argv[1], PLY_SPLIT_TRAIN, &o, &train), PLY_ERR_INVALID_ARGUMENT,
               "test exists", "a validation split beside test/ is refused");

  ply_data_options_init(&o);
  check(ply_dataset_load(argv[2], PLY_SPLIT_TRAIN, &o, &cifar) == PLY_OK, "load CIFAR-10");
  check(ply_dataset_shape(cifar, &n, &c, &h, &w) == PLY_OK && c == 3 && h == 32 && w == 32,
        "CIFAR images are 3 x 32 x 32");
  check(ply_dataset_class_name(cifar, 0, &name) == PLY_OK && strcmp(name, "airplane") == 0,
        "CIFAR-10 class 0 is airplane");
  expect_error(ply_dataset_load("/nonexistent/data", PLY_SPLIT_TRAIN, NULL, &cifar), PLY_ERR_IO,
               "/nonexistent/data", "a missing directory");

  ply_runtime_options_init(&ro);
  ro.threads = 1;
  ro.use_environment = 0;
  if (ply_runtime_create(&ro, &rt) != PLY_OK) {
    printf("FAIL runtime_create: %s\n", ply_last_error());
    return 101;
  }
  check(ply_model_from_zoo(rt, "convnet", 2, 3, 12, &model) == PLY_OK, "a ConvNet for 3 x 12 x 12");
  ply_fit_options_init(&fo);
  fo.epochs = 2;
  fo.batch_size = 4;
  fo.random_crop_padding = 2;
  fo.horizontal_flip = 1;
  ply_fit_result_init(&fr);
  check(ply_fit(model, train, &fo, NULL, NULL, &fr) == PLY_OK && fr.epochs_completed == 2,
        "fit with random crop and flip");
  check(ply_evaluate(model, test, &accuracy) == PLY_OK && accuracy >= 0 && accuracy <= 100,
        "evaluate on the test folder");
  fo.epochs = 1;
  check(ply_fit(model, streamed, &fo, NULL, NULL, NULL) == PLY_OK, "fit on the streamed set");
  fo.epochs = 2;
  fo.random_crop_padding = -1;
  expect_error(ply_fit(model, train, &fo, NULL, NULL, NULL), PLY_ERR_INVALID_ARGUMENT,
               "random_crop_padding", "a negative crop padding is refused");

  ply_model_destroy(model);
  ply_runtime_destroy(rt);
  ply_dataset_destroy(train);
  ply_dataset_destroy(test);
  ply_dataset_destroy(cifar);
  ply_dataset_destroy(streamed);
  printf("%d failures\n", failures);
  return failures;
}
