/*
 * capi_test.c -- the C API's error paths and its forward on caller buffers.
 *
 *     capi_test WEIGHTS.safetensors DATA-DIR
 *
 * Every check prints "ok <what>" or "FAIL <what>"; the exit status is the
 * number of failures. Then it prints "forward <i> <value>" for the ConvNet
 * with WEIGHTS on a fixed input (x[i] = ((i * 37) % 101) / 100, shape
 * [2, 1, 28, 28]) so the test can compare it with the Swift API's output.
 */
#include <ply/ply.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

static int failures = 0;

static void check(int ok, const char *what) {
  printf("%s %s\n", ok ? "ok" : "FAIL", what);
  if (!ok) failures++;
}

/* A failing call: the status is `expected` (or any non-zero one when
 * expected is -1) and ply_last_error() mentions `needle`. */
static void expect_error(ply_result status, ply_result expected,
                         const char *needle, const char *what) {
  const char *message = ply_last_error();
  int ok = status != PLY_OK && (expected == -1 || status == expected) &&
           message && message[0] && (!needle || strstr(message, needle));
  printf("%s %s -> %s: %s\n", ok ? "ok" : "FAIL", what, ply_result_name(status),
         message ? message : "(null)");
  if (!ok) failures++;
}

static float swish(float x) { return x / (1.0f + expf(-x)); }
static float swish_grad(float x) {
  float s = 1.0f / (1.0f + expf(-x));
  return s + x * s * (1.0f - s);
}

static int32_t stop_at_once(const ply_progress *p, void *user_data) {
  (void)p;
  (*(int *)user_data)++;
  return 1;
}

int main(int argc, char **argv) {
  ply_runtime *rt = NULL, *bare = NULL;
  ply_model *model = NULL, *other = NULL, *act = NULL;
  ply_dataset *train = NULL, *unlabelled = NULL;
  ply_optimizer *sgd = NULL;
  ply_runtime_options ro;
  ply_fit_options fo;
  ply_fit_result fr;
  static float input[2 * 28 * 28], output[64], images[4 * 28 * 28];
  int64_t shape[4] = {2, 1, 28, 28}, bad_shape[4] = {1, 3, 28, 28};
  int64_t out_shape[PLY_MAX_NDIM], params = 0;
  int32_t out_ndim = 0, labels[4] = {0, 1, 2, 3}, bad_labels[4] = {0, 1, 2, 10};
  int32_t count = 0, i, calls = 0;
  float loss = 0;
  ply_layer_type_info info;

  if (argc < 3) {
    fprintf(stderr, "usage: capi_test WEIGHTS DATA-DIR\n");
    return 100;
  }
  check(strcmp(ply_last_error(), "") == 0, "no error before any call");
  check(ply_api_version() == PLY_API_VERSION, "library and header versions agree");

  /* NULL everything. */
  expect_error(ply_runtime_create(NULL, NULL), PLY_ERR_INVALID_ARGUMENT, "NULL",
               "runtime_create with out NULL");
  expect_error(ply_model_from_zoo(NULL, "convnet", 10, 1, 28, &model),
               PLY_ERR_INVALID_ARGUMENT, "runtime is NULL", "model_from_zoo with runtime NULL");
  check(model == NULL, "a failed call leaves *out alone");
  expect_error(ply_model_forward(NULL, input, shape, 4, output, 64, NULL, NULL),
               PLY_ERR_INVALID_ARGUMENT, "model is NULL", "forward with model NULL");
  expect_error(ply_dataset_load_mnist(NULL, PLY_SPLIT_TRAIN, &train),
               PLY_ERR_INVALID_ARGUMENT, "directory", "load_mnist with directory NULL");
  ply_model_destroy(NULL);
  ply_runtime_destroy(NULL);
  ply_dataset_destroy(NULL);
  ply_optimizer_destroy(NULL);
  check(1, "destroy(NULL) is a no-op");

  /* A runtime, bad plugins and options. */
  ply_runtime_options_init(&ro);
  ro.threads = -2;
  expect_error(ply_runtime_create(&ro, &rt), PLY_ERR_INVALID_ARGUMENT, "threads",
               "runtime_create with threads -2");
  ply_runtime_options_init(&ro);
  check(ro.flush_denormals == 1, "flush_denormals defaults to 1 (API 1.2)");
  ro.threads = 2;
  ro.use_environment = 0;
  if (ply_runtime_create(&ro, &rt) != PLY_OK) {
    printf("FAIL runtime_create: %s\n", ply_last_error());
    return 101;
  }
  expect_error(ply_runtime_load_plugin(rt, "/nonexistent/libnope.so"), PLY_ERR_IO,
               "/nonexistent/libnope.so", "load_plugin of a missing file");
  expect_error(ply_runtime_load_plugin(rt, argv[1]), -1, argv[1],
               "load_plugin of a file that is not a shared library");
  check(strstr(ply_last_error(), argv[1]) != NULL && ply_api_version() > 0 &&
            strstr(ply_last_error(), argv[1]) != NULL,
        "the message survives successful calls");
  check(ply_runtime_layer_type_count(rt, &count) == PLY_OK && count > 10,
        "built-in layer types are listed");
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  check(ply_runtime_layer_type(rt, 0, &info) == PLY_OK && info.name && info.name[0] &&
            info.library_path && strstr(info.library_path, "libply_"),
        "layer type 0 has a name and a library");
  expect_error(ply_runtime_layer_type(rt, count, &info), PLY_ERR_INVALID_ARGUMENT,
               "out of range", "layer_type past the end");
  ro.load_builtins = 0;
  check(ply_runtime_create(&ro, &bare) == PLY_OK, "a runtime without built-ins");
  expect_error(ply_model_from_zoo(bare, "convnet", 10, 1, 28, &other), -1, "conv2d",
               "a model needs its layer types");

  /* Models. */
  expect_error(ply_model_from_zoo(rt, "no_such_net", 10, 1, 28, &model),
               PLY_ERR_INVALID_ARGUMENT, "unknown model", "unknown zoo name");
  expect_error(ply_model_from_zoo(rt, "convnet", 0, 1, 28, &model),
               PLY_ERR_INVALID_ARGUMENT, "num_classes", "num_classes 0");
  expect_error(ply_model_from_text(rt, "model: x\nlayers:\n  - {type: relu\n", 10, 1, 28, &model),
               -1, "<ply_model_from_text>:", "model text with a syntax error");
  expect_error(ply_model_from_text(rt, "layers:\n  - {type: nope}\n", 10, 1, 28, &model),
               -1, "nope", "model text with an unknown layer type");
  if (ply_model_from_zoo(rt, "convnet", 10, 1, 28, &model) != PLY_OK) {
    printf("FAIL model_from_zoo: %s\n", ply_last_error());
    return 102;
  }
  check(ply_model_parameter_count(model, &params) == PLY_OK && params == 9098,
        "ConvNet has 9,098 parameters");
  expect_error(ply_model_load_weights(model, "/nonexistent/w.safetensors"), PLY_ERR_IO,
               "/nonexistent/w.safetensors", "load_weights of a missing file");
  expect_error(ply_model_load_weights(model, argv[2]), -1, argv[2],
               "load_weights of a directory");
  expect_error(ply_model_save_weights(model, "/nonexistent/dir/w.safetensors"), -1,
               "/nonexistent/dir", "save_weights into a missing directory");
  check(ply_model_load_weights(model, argv[1]) == PLY_OK, "load_weights");
  check(ply_model_set_training(model, 0) == PLY_OK, "set_training(0)");

  /* forward on the caller's buffers */
  for (i = 0; i < 2 * 28 * 28; i++) input[i] = (float)((i * 37) % 101) / 100.0f;
  expect_error(ply_model_forward(model, input, bad_shape, 4, output, 64, out_shape, &out_ndim),
               PLY_ERR_SHAPE, "conv", "forward with 3 channels into a 1-channel model");
  expect_error(ply_model_forward(model, input, shape, 0, output, 64, NULL, NULL),
               PLY_ERR_SHAPE, "ndim", "forward with ndim 0");
  expect_error(ply_model_forward(model, input, shape, 9, output, 64, NULL, NULL),
               PLY_ERR_SHAPE, "ndim", "forward with ndim 9");
  expect_error(ply_model_forward(model, NULL, shape, 4, output, 64, NULL, NULL),
               PLY_ERR_INVALID_ARGUMENT, "input is NULL", "forward with input NULL");
  {
    int64_t negative[4] = {2, 1, -28, 28};
    expect_error(ply_model_forward(model, input, negative, 4, output, 64, NULL, NULL),
                 PLY_ERR_SHAPE, "-28", "forward with a negative dimension");
  }
  out_ndim = 0;
  expect_error(ply_model_forward(model, input, shape, 4, NULL, 0, out_shape, &out_ndim),
               PLY_ERR_SHAPE, "needs 20 floats", "forward with capacity 0 (size query)");
  check(out_ndim == 2 && out_shape[0] == 2 && out_shape[1] == 10,
        "the size query reports the output shape [2, 10]");
  expect_error(ply_model_forward(model, input, shape, 4, output, 19, NULL, NULL),
               PLY_ERR_SHAPE, "output_capacity is 19", "forward with capacity 19");
  if (ply_model_forward(model, input, shape, 4, output, 64, out_shape, &out_ndim) != PLY_OK) {
    printf("FAIL forward: %s\n", ply_last_error());
    return 103;
  }
  {
    /* the runtime flushes denormals during its calls only: this thread keeps gradual underflow */
    volatile float tiny_a = 1e-30f, tiny_b = 1e-10f;
    check(tiny_a * tiny_b != 0.0f, "the caller's floating-point modes are back after forward");
  }
  {
    float inferred[64];
    int64_t inf_shape[PLY_MAX_NDIM] = {0};
    int32_t inf_ndim = 0;
    check(ply_model_infer(model, input, shape, 4, inferred, 64, inf_shape, &inf_ndim) == PLY_OK &&
              inf_ndim == 2 && inf_shape[0] == 2 && inf_shape[1] == 10 &&
              memcmp(inferred, output, 20 * sizeof(float)) == 0,
          "infer gives forward's output, bit for bit");
    expect_error(ply_model_infer(model, input, shape, 4, inferred, 19, NULL, NULL), PLY_ERR_SHAPE,
                 "output_capacity is 19", "infer with capacity 19");
    expect_error(ply_model_infer(NULL, input, shape, 4, inferred, 64, NULL, NULL), PLY_ERR_INVALID_ARGUMENT,
                 "model", "infer on NULL");
  }

  /* Data sets. */
  expect_error(ply_dataset_load_mnist("/nonexistent-data", PLY_SPLIT_TRAIN, &train),
               PLY_ERR_IO, "/nonexistent-data", "load_mnist of a missing directory");
  expect_error(ply_dataset_load_mnist(argv[2], 7, &train), PLY_ERR_INVALID_ARGUMENT,
               "split", "load_mnist with split 7");
  expect_error(ply_dataset_from_idx(argv[1], NULL, &unlabelled), PLY_ERR_IO, argv[1],
               "from_idx of a file that is not IDX");
  check(ply_dataset_from_memory(images, NULL, 4, 1, 28, 28, &unlabelled) == PLY_OK,
        "from_memory without labels");
  expect_error(ply_evaluate(model, unlabelled, &(double){0}), PLY_ERR_INVALID_ARGUMENT,
               "no labels", "evaluate on an unlabelled set");
  expect_error(ply_dataset_copy(unlabelled, 3, 2, images, NULL), PLY_ERR_INVALID_ARGUMENT,
               "outside", "copy past the end");
  expect_error(ply_model_forward((ply_model *)unlabelled, input, shape, 4, output, 64, NULL, NULL),
               PLY_ERR_INVALID_ARGUMENT, "not a ply_model", "a data set passed as a model");
  check(ply_dataset_load_mnist(argv[2], PLY_SPLIT_TRAIN, &train) == PLY_OK, "load_mnist");

  /* Training. */
  expect_error(ply_optimizer_sgd(-1, 0, 0, 0, &sgd), PLY_ERR_INVALID_ARGUMENT,
               "learning rate", "SGD with a negative rate");
  expect_error(ply_optimizer_sgd(0.1, 0, 0, 1, &sgd), PLY_ERR_INVALID_ARGUMENT,
               "Nesterov", "Nesterov without momentum");
  check(ply_optimizer_sgd(0.05, 0.9, 0, 0, &sgd) == PLY_OK, "SGD with momentum");
  expect_error(ply_model_train_step(model, sgd, images, bad_labels, 4, &loss),
               PLY_ERR_INVALID_ARGUMENT, "label 3 is 10", "train_step with label 10");
  expect_error(ply_model_train_step(model, sgd, images, labels, 0, &loss),
               PLY_ERR_INVALID_ARGUMENT, "batch", "train_step with batch 0");
  check(ply_model_train_step(model, sgd, images, labels, 4, &loss) == PLY_OK && loss > 0 &&
            isfinite(loss),
        "train_step");
  ply_fit_options_init(&fo);
  fo.epochs = 0;
  expect_error(ply_fit(model, train, &fo, NULL, NULL, NULL), PLY_ERR_INVALID_ARGUMENT,
               "epochs", "fit with 0 epochs");
  ply_fit_options_init(&fo);
  fo.epochs = 2;
  fo.training_accuracy = 0;
  ply_fit_result_init(&fr);
  check(ply_fit(model, train, &fo, stop_at_once, &calls, &fr) == PLY_OK && fr.stopped == 1 &&
            calls == 1 && fr.epochs_completed == 0,
        "a progress callback returning 1 stops fit after one batch");

  /* A C activation, registered by name and named in model text (API 1.3). */
  check(ply_runtime_register_activation(rt, "cswish", swish, swish_grad) == PLY_OK,
        "register_activation");
  expect_error(ply_runtime_register_activation(rt, "cswish", swish, NULL),
               PLY_ERR_INVALID_ARGUMENT, "already", "registering a name twice");
  expect_error(ply_runtime_register_activation(rt, "bad name!", swish, NULL),
               PLY_ERR_INVALID_ARGUMENT, "letters, digits", "registering a bad name");
  expect_error(ply_runtime_register_activation(rt, "nofn", NULL, NULL),
               PLY_ERR_INVALID_ARGUMENT, "fn is NULL", "registering NULL");
  expect_error(ply_runtime_register_activation(bare, "cswish", swish, NULL),
               PLY_ERR_NOT_FOUND, "user_activation", "registering without the plugin");
  if (ply_model_from_text(rt,
                          "model: tiny\n"
                          "params: {num_classes: 10, in_channels: 1}\n"
                          "layers:\n"
                          "  - {name: conv, type: conv2d, in_channels: $in_channels, "
                          "out_channels: 4, kernel_size: 3, padding: 1}\n"
                          "  - {name: act, type: user_activation, function: cswish}\n"
                          "  - {name: pool, type: adaptive_avgpool2d, output_size: 1}\n"
                          "  - {name: flat, type: flatten}\n"
                          "  - {name: fc, type: linear, in_features: 4, out_features: $num_classes}\n",
                          10, 1, 28, &act) != PLY_OK) {
    printf("FAIL model text with a registered activation: %s\n", ply_last_error());
    failures++;
  } else {
    float before = 0, after = 0;
    int k;
    ply_optimizer *opt = NULL;
    check(ply_optimizer_sgd(0.5, 0, 0, 0, &opt) == PLY_OK, "a second optimizer");
    check(ply_model_train_step(act, opt, images, labels, 4, &before) == PLY_OK, "train_step through cswish");
    for (k = 0; k < 20; k++) ply_model_train_step(act, opt, images, labels, 4, &after);
    printf("activation loss %g -> %g\n", before, after);
    check(isfinite(after) && after < before, "training through a C activation lowers the loss");
    ply_optimizer_destroy(opt);
  }

  for (i = 0; i < 20; i++) printf("forward %d %.9g\n", i, output[i]);
  /* Destroy the runtime first: the models keep it alive. */
  ply_runtime_destroy(rt);
  ply_runtime_destroy(bare);
  check(ply_model_forward(model, input, shape, 4, output, 64, NULL, NULL) == PLY_OK,
        "a model outlives its runtime handle");
  { /* API 1.7: frozen for inference, the same output and the weights refused */
    float frozen_out[64];
    check(ply_model_set_training(model, 0) == PLY_OK &&
              ply_model_forward(model, input, shape, 4, output, 64, NULL, NULL) == PLY_OK,
          "forward in evaluation before the freeze");
    { /* API 1.8: two lanes of one image each give each image what it gets alone, bit for bit */
      int32_t made = -1;
      float laned[64], alone[20];
      int64_t one[4] = {1, 1, 28, 28};
      check(ply_model_infer(model, input, one, 4, alone, 10, NULL, NULL) == PLY_OK &&
                ply_model_infer(model, input + 28 * 28, one, 4, alone + 10, 10, NULL, NULL) == PLY_OK,
            "infer one image at a time");
      expect_error(ply_model_prepare_lanes(model, 0, 2, NULL), PLY_ERR_INVALID_ARGUMENT, "batch", "prepare_lanes, batch 0");
      expect_error(ply_model_prepare_lanes(model, 2, 3, NULL), PLY_ERR_INVALID_ARGUMENT, "lanes", "prepare_lanes, 3 lanes on 2 threads");
      expect_error(ply_model_prepare_lanes(NULL, 2, 2, NULL), PLY_ERR_INVALID_ARGUMENT, "model", "prepare_lanes of NULL");
      check(ply_model_prepare_lanes(model, 2, 2, &made) == PLY_OK && made == 2, "prepare_lanes: 2 lanes");
      check(ply_model_infer(model, input, shape, 4, laned, 64, NULL, NULL) == PLY_OK &&
                memcmp(laned, alone, 20 * sizeof(float)) == 0,
            "two lanes give each image its own output, bit for bit");
    }
    check(ply_model_freeze(model) == PLY_OK && ply_model_freeze(model) == PLY_OK, "freeze, twice");
    check(ply_model_infer(model, input, shape, 4, frozen_out, 64, NULL, NULL) == PLY_OK &&
              memcmp(frozen_out, output, 20 * sizeof(float)) == 0,
          "a frozen model gives the same output, bit for bit");
    expect_error(ply_model_save_weights(model, "/nonexistent/dir/w.safetensors"), PLY_ERR_UNSUPPORTED, "frozen",
                 "save_weights of a frozen model");
    expect_error(ply_model_set_training(model, 1), PLY_ERR_UNSUPPORTED, "frozen", "set_training(1) of a frozen model");
    expect_error(ply_model_freeze(NULL), PLY_ERR_INVALID_ARGUMENT, "model", "freeze of NULL");
    expect_error(ply_model_prepare_lanes(model, 2, 0, NULL), PLY_ERR_UNSUPPORTED, "frozen", "prepare_lanes of a frozen model");
  }
  ply_model_destroy(model);
  ply_model_destroy(act);
  ply_dataset_destroy(train);
  ply_dataset_destroy(unlabelled);
  ply_optimizer_destroy(sgd);
  printf("%d failures\n", failures);
  return failures;
}
