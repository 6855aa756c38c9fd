/*
 * capi_errors.c -- every result code reaches C callers with its kind: a file
 * that is missing is PLY_ERR_IO, a plugin built for another ABI is
 * PLY_ERR_ABI, and a plugin's own status (out of memory, numeric, ...) is
 * returned unchanged, whether it fails in create, infer_shape or forward.
 * Also: attribute schema errors, registered functions (API 1.3), their
 * release, and a directory scan that skips a bad library.
 *
 *     capi_errors LIBFAIL_STATUS.so LIBABI_MAJOR2.so TMPDIR
 *
 * TMPDIR holds libfail_status.so's copy beside a bad library (for the
 * directory scan) and an empty directory named dir.yaml. Every check prints
 * "ok <what>" or "FAIL <what>"; the exit status is the number of failures.
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

static void expect_error(ply_result status, ply_result expected, const char *needle, const char *what) {
  const char *message = ply_last_error();
  int ok = status == expected && message && message[0] && (!needle || strstr(message, needle));
  printf("%s %s -> %s (%d, expected %d): %s\n", ok ? "ok" : "FAIL", what, ply_result_name(status), (int)status,
         (int)expected, message ? message : "(null)");
  if (!ok) failures++;
}

static float twice(float x) { return 2.0f * x; }
static int released = 0;
static void release_counter(void *user_data) { (*(int *)user_data)++; }

/* Model text with one fail_status layer failing with `status` in `call`. */
static ply_result run_failing(ply_runtime *rt, int status, const char *call, ply_model **model) {
  char text[512];
  static float input[4] = {1, 2, 3, 4}, output[16];
  int64_t shape[4] = {1, 1, 2, 2};
  ply_result r;
  snprintf(text, sizeof text,
           "model: failing\n"
           "layers:\n"
           "  - {name: bad_node, type: fail_status, status: %d, call: %s}\n",
           status, call);
  r = ply_model_from_text(rt, text, 10, 1, 2, model);
  if (r != PLY_OK) return r;
  return ply_model_forward(*model, input, shape, 4, output, 16, NULL, NULL);
}

int main(int argc, char **argv) {
  ply_runtime *rt = NULL;
  ply_runtime_options ro;
  ply_model *model = NULL;
  char path[1024];
  static const int statuses[] = {PLY_ERR_SHAPE, PLY_ERR_OUT_OF_MEMORY, PLY_ERR_UNSUPPORTED,
                                 PLY_ERR_NOT_FOUND, PLY_ERR_NUMERIC, PLY_ERR_INTERNAL};
  static const char *const calls[] = {"create", "infer_shape", "forward"};
  size_t i, c;

  if (argc < 4) {
    fprintf(stderr, "usage: capi_errors LIBFAIL_STATUS.so LIBABI_MAJOR2.so TMPDIR\n");
    return 100;
  }
  ply_runtime_options_init(&ro);
  ro.threads = 2;
  ro.use_environment = 0;
  if (ply_runtime_create(&ro, &rt) != PLY_OK) {
    printf("FAIL runtime_create: %s\n", ply_last_error());
    return 101;
  }

  /* I/O: missing and unreadable model files, missing plugins. */
  expect_error(ply_model_from_zoo(rt, "/nonexistent/model.yaml", 10, 1, 28, &model), PLY_ERR_IO,
               "/nonexistent/model.yaml", "model_from_zoo of a missing .yaml");
  snprintf(path, sizeof path, "%s/dir.yaml", argv[3]);
  expect_error(ply_model_from_zoo(rt, path, 10, 1, 28, &model), PLY_ERR_IO, "directory",
               "model_from_zoo of a directory named .yaml");
  expect_error(ply_runtime_load_plugin(rt, "/nonexistent/libnope.so"), PLY_ERR_IO, "/nonexistent/libnope.so",
               "load_plugin of a missing file");
  expect_error(ply_runtime_load_plugin_dir(rt, "/nonexistent-dir"), PLY_ERR_IO, "/nonexistent-dir",
               "load_plugin_dir of a missing directory");
  expect_error(ply_model_from_zoo(rt, "no_such_net", 10, 1, 28, &model), PLY_ERR_INVALID_ARGUMENT,
               "unknown model", "an unknown zoo name stays invalid argument");

  /* Attributes against the type's schema: a typo and a value of another kind are invalid
   * arguments whose message names the attribute, the layer and what was expected. */
  expect_error(ply_model_from_text(rt,
                                   "model: t\nlayers:\n  - {name: c, type: conv2d, in_channels: 1, out_channels: 4, "
                                   "kernel_size: 3, paddin: 1}\n",
                                   10, 1, 28, &model),
               PLY_ERR_INVALID_ARGUMENT, "did you mean 'padding'?", "a misspelt attribute");
  expect_error(ply_model_from_text(rt,
                                   "model: t\nlayers:\n  - {name: c, type: conv2d, in_channels: 1, out_channels: 4, "
                                   "kernel_size: three}\n",
                                   10, 1, 28, &model),
               PLY_ERR_INVALID_ARGUMENT, "'kernel_size'", "an attribute of another kind");

  /* ABI: another major version. */
  expect_error(ply_runtime_load_plugin(rt, argv[2]), PLY_ERR_ABI, "ABI 2.3", "load_plugin built for ABI 2.3");

  /* A directory with the bad library and a good one: the good one loads. */
  check(ply_runtime_load_plugin_dir(rt, argv[3]) == PLY_OK, "load_plugin_dir skips the bad library");
  expect_error(ply_runtime_load_plugin(rt, argv[1]), PLY_ERR_INVALID_ARGUMENT, "already loaded",
               "the good library of the directory was loaded");

  /* A plugin's own status, from each callback. */
  for (c = 0; c < sizeof calls / sizeof calls[0]; c++) {
    for (i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
      char what[128];
      ply_result r;
      model = NULL;
      r = run_failing(rt, statuses[i], calls[c], &model);
      snprintf(what, sizeof what, "fail_status %s with %s", calls[c], ply_result_name(statuses[i]));
      expect_error(r, statuses[i], c == 0 ? "fail_status: create fails" : "bad_node", what);
      ply_model_destroy(model);
    }
  }

  /* Registered functions: by name, never by address. */
  check(ply_runtime_register_function(rt, "twice", "float(float)", (ply_native_fn)twice, NULL, &released,
                                      release_counter) == PLY_OK,
        "register_function");
  expect_error(ply_runtime_register_function(rt, "twice", "float(float)", (ply_native_fn)twice, NULL, NULL, NULL),
               PLY_ERR_INVALID_ARGUMENT, "already", "register_function twice");
  {
    static float input[4] = {1, -2, 3, 0.5f}, output[4];
    int64_t shape[2] = {1, 4};
    model = NULL;
    check(ply_model_from_text(rt, "model: t\nlayers:\n  - {name: a, type: user_activation, function: twice}\n",
                              10, 1, 2, &model) == PLY_OK &&
              ply_model_forward(model, input, shape, 2, output, 4, NULL, NULL) == PLY_OK && output[0] == 2.0f &&
              output[1] == -4.0f && output[3] == 1.0f,
          "a registered function named in model text");
  }
  {
    ply_model *m = NULL;
    expect_error(ply_model_from_text(rt, "model: t\nlayers:\n  - {name: a, type: user_activation, function: nope}\n",
                                     10, 1, 2, &m),
                 PLY_ERR_NOT_FOUND, "'nope'", "an unregistered function is not found");
    expect_error(ply_model_from_text(rt,
                                     "model: t\nlayers:\n  - {name: a, type: user_activation, address: 4198400, "
                                     "signature: \"float(float)\"}\n",
                                     10, 1, 2, &m),
                 PLY_ERR_INVALID_ARGUMENT, "'address'", "an address in model text is refused");
  }
  {
    /* no_user_libraries (API 1.3): a model naming a library is refused. */
    ply_runtime *strict = NULL;
    ply_model *m = NULL;
    char text[1024];
    ro.no_user_libraries = 1;
    check(ply_runtime_create(&ro, &strict) == PLY_OK, "a runtime with no_user_libraries");
    snprintf(text, sizeof text,
             "model: t\nlayers:\n  - {name: a, type: user_activation, library: \"%s\", symbol: x, "
             "signature: \"float(float)\"}\n",
             argv[1]);
    expect_error(ply_model_from_text(strict, text, 10, 1, 2, &m), PLY_ERR_UNSUPPORTED, "switched off",
                 "no_user_libraries refuses library:");
    ply_runtime_destroy(strict);
  }
  ply_runtime_destroy(rt);
  check(released == 0, "release waits for the last model");
  ply_model_destroy(model);
  check(released == 1, "release is called once the runtime is gone");

  printf("%d failures\n", failures);
  return failures;
}
