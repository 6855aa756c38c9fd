/*
 * ply/ply.h -- the Ply C API: use Ply (runtime, models, training, data sets)
 * from C or C++.
 *
 * Link against the Ply library (installed as libply.so; in a build tree it is
 * .build/<config>/libPlyC.so):
 *
 *     cc prog.c $(pkg-config --cflags --libs ply)
 *     cc prog.c -I<ply>/Include -L<ply>/.build/release -lPlyC \
 *        -Wl,-rpath,<ply>/.build/release
 *
 * The library is written in Swift; nothing of Swift appears here. Every
 * object is an opaque handle made by a `*_create` / `*_from_*` / `*_load_*`
 * call and freed by the matching `*_destroy`.
 *
 * ------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------
 *  - Every fallible call returns a ply_result: PLY_OK (0) on success, a
 *    non-zero code otherwise. On failure the call also records a message
 *    that says what was wrong (naming the file, node, shape ...) and that
 *    ply_last_error() returns. On failure, out-parameters are left as they
 *    were unless a call says otherwise, and no handle is leaked.
 *  - Bad input never crashes the library: NULL handles and pointers, wrong
 *    shapes, missing or malformed files, bad options all come back as a
 *    status and a message. (Passing a handle that was already destroyed, or
 *    a pointer to less memory than a call is told it has, cannot be detected
 *    and is undefined behaviour, as everywhere in C.)
 *
 * ------------------------------------------------------------------------
 * Ownership and lifetime
 * ------------------------------------------------------------------------
 *  - The caller owns every handle it receives and MUST destroy it exactly
 *    once. Destroy functions accept NULL (no-op).
 *  - A model keeps its runtime (and so the plugin libraries its layers come
 *    from) alive: a runtime may be destroyed before the models made from it.
 *  - Strings passed in are copied or used only during the call. Strings
 *    returned are owned by the library; how long each stays valid is said
 *    at the call.
 *  - Buffers passed in (images, labels, input, output) belong to the caller
 *    and are used only during the call.
 *
 * ------------------------------------------------------------------------
 * Threads
 * ------------------------------------------------------------------------
 *  - A handle is used from one thread at a time, unless a call says it is
 *    thread-safe. Different handles may be used from different threads at
 *    once: two models (even from one runtime) can run side by side.
 *  - ply_last_error() is per thread.
 *  - Layers run on the runtime's own thread pool (`threads` option); the
 *    calling thread waits.
 *
 * ------------------------------------------------------------------------
 * Versioning
 * ------------------------------------------------------------------------
 *  Functions are only added. Option and result structs start with
 *  `struct_size` (sizeof as the caller compiled it): fill them with the
 *  matching `*_init` function, which sets the size and the defaults; the
 *  library reads and writes no byte past `struct_size`, so a program built
 *  against an older header keeps working with a newer library. The `*_init`
 *  functions are inline for that reason: the size is the program's own.
 */
#ifndef PLY_PLY_H
#define PLY_PLY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "plugin.h" /* ply_status and its codes, PLY_MAX_NDIM, PLY_EXPORT */

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------- */
/* Versions, results, errors                                              */
/* ---------------------------------------------------------------------- */

/* Minor versions: 1.1 ply_model_infer; 1.2 flush_denormals; 1.3
 * ply_runtime_register_function, registered functions named by `function:`
 * in user_activation layers (model text is no longer rewritten), result
 * codes that keep their kind (PLY_ERR_IO, a plugin's own status); 1.4
 * data-parallel training: ply_communicator_*, ply_fit_options.communicator;
 * ply_inspect_filters, ply_inspect_feature_maps, ply_inspect_receptive_field
 * and ply_inspect_receptive_field_png (PNG pictures of a model);
 * ply_dataset_load (CIFAR, image folders, transforms), class names, skipped
 * images, ply_fit_options.random_crop_padding and horizontal_flip;
 * 1.5 ply_fit_options.sync_batchnorm; 1.6 ply_data_options.cache_decoded
 * and cache_budget (image folders streamed from disk when large),
 * ply_image_read (a PNG or JPEG file as a model's input); 1.7
 * ply_model_freeze (inference only: the layers free the weights they folded);
 * 1.8 ply_model_prepare_lanes (batches split over copies of the model). */
#define PLY_API_VERSION_MAJOR 1
#define PLY_API_VERSION_MINOR 8 /* 1.8: see above */
/** Packed as PLY_ABI_VERSION is: major in the high 16 bits. */
#define PLY_API_VERSION \
  ((uint32_t)(((uint32_t)PLY_API_VERSION_MAJOR << 16) | PLY_API_VERSION_MINOR))

/**
 * Result of every fallible call: a ply_status value from plugin.h (PLY_OK,
 * PLY_ERR_INVALID_ARGUMENT, PLY_ERR_SHAPE, PLY_ERR_NOT_FOUND, PLY_ERR_ABI,
 * PLY_ERR_NUMERIC, PLY_ERR_INTERNAL, ...) or one of the C-API codes below.
 * An int32_t rather than the enum, so that new codes never make a value
 * out of the enum's range. C-API-only codes start at 64, clear of any code
 * plugin.h may add.
 */
typedef int32_t ply_result;
/* Results keep their kind (API 1.3): a layer callback that fails during a
 * call returns the plugin's own ply_status (a plugin's PLY_ERR_OUT_OF_MEMORY
 * is PLY_ERR_OUT_OF_MEMORY here), with a message naming the node and its
 * layer type; missing or unreadable files are PLY_ERR_IO. Codes are chosen
 * by the kind of error, never by its message. */

/** A file or directory is missing, unreadable, unwritable or malformed
 *  (IDX, safetensors). */
#define PLY_ERR_IO ((ply_result)64)

/** PLY_API_VERSION of the library actually loaded (may be newer than the
 *  header a program was compiled with). Thread-safe. */
PLY_EXPORT uint32_t ply_api_version(void);

/**
 * The message of the last failing call on the calling thread, or "" when
 * no call on this thread has failed yet. Never NULL. Owned by the library;
 * valid until the next failing call on the same thread (successful calls
 * leave it alone). Thread-safe (each thread has its own).
 */
PLY_EXPORT const char *ply_last_error(void);

/** A short static name for a result code ("ok", "invalid argument",
 *  "shape", "I/O", ...; "unknown" for codes it does not know). Never NULL,
 *  valid forever. Thread-safe. */
PLY_EXPORT const char *ply_result_name(ply_result result);

/* ---------------------------------------------------------------------- */
/* Handles                                                                */
/* ---------------------------------------------------------------------- */

/** The plugin registry, thread pool and seeded generator. */
typedef struct ply_runtime ply_runtime;
/** A model: a graph of plugin layers, its weights and its buffers. */
typedef struct ply_model ply_model;
/** An optimizer (SGD or Adam) with its per-parameter state. */
typedef struct ply_optimizer ply_optimizer;
/** Labelled (or unlabelled) images held in memory, NCHW float32. */
typedef struct ply_dataset ply_dataset;

/* ---------------------------------------------------------------------- */
/* Runtime                                                                */
/* ---------------------------------------------------------------------- */

/** Log levels are plugin.h's ply_log_level (PLY_LOG_DEBUG .. PLY_LOG_ERROR). */
typedef void (*ply_log_fn)(void *user_data, int32_t level, const char *message);

/** How a runtime is set up. Fill with ply_runtime_options_init first. */
typedef struct ply_runtime_options {
  uint32_t struct_size; /**< sizeof(ply_runtime_options); set by _init */
  uint32_t api_version; /**< PLY_API_VERSION; set by _init */
  /** Seed of the generator behind PyTorch-default initialisation and
   *  dropout masks. Default 1. */
  uint64_t seed;
  /** Threads lent to layers; 0 (default) = one per available processor. */
  int32_t threads;
  /** 1 (default): load the built-in plugins (libply_*.so next to the
   *  executable, in <exe dir>/../lib/ply, next to the Ply library or in
   *  <Ply library dir>/ply). 0: start with no layer types at all. */
  int32_t load_builtins;
  /** 1 (default): also load what PLY_PLUGIN_PATH names. */
  int32_t use_environment;
  /** Messages below this ply_log_level are dropped. Default PLY_LOG_WARNING. */
  int32_t log_level;
  /** Receives plugin and runtime log messages (NULL, the default: they go
   *  to stderr). Called from any thread, possibly several at once; the
   *  message is valid only during the call. */
  ply_log_fn log;
  /** Passed to `log` unchanged. */
  void *log_user_data;
  /** 1 (default): layers and optimizer steps compute with denormal floats
   *  (below 1.2e-38) flushed to zero: x86's FTZ and DAZ modes, set on the
   *  calling thread for the duration of each call and put back before it
   *  returns, and on Ply's own worker threads. A model that fits its batch
   *  can otherwise leave gradients and momentum buffers denormal, and every
   *  operation on them is many times slower. 0: IEEE gradual underflow, as
   *  PyTorch by default. Since API 1.2 (ignored by older libraries). */
  int32_t flush_denormals;
  /** 0 (default): a `user_activation` layer may name a shared library
   *  (`library:` + `symbol:`), which the runtime opens -- running that
   *  library's code. 1: such layers fail at create (PLY_ERR_UNSUPPORTED);
   *  only functions registered with ply_runtime_register_function can be
   *  called. Set it when model text comes from anyone you do not trust.
   *  Zero means the default so that the padding an API 1.2 program's _init
   *  zeroed reads as "allowed". Since API 1.3 (ignored by older libraries). */
  int32_t no_user_libraries;
} ply_runtime_options;

/** Sets struct_size, api_version and every default. `options` may be NULL
 *  (no-op). Inline, so struct_size is the size this program was compiled
 *  with. */
static inline void ply_runtime_options_init(ply_runtime_options *options) {
  if (!options) return;
  memset(options, 0, sizeof *options);
  options->struct_size = (uint32_t)sizeof *options;
  options->api_version = PLY_API_VERSION;
  options->seed = 1;
  options->threads = 0;
  options->load_builtins = 1;
  options->use_environment = 1;
  options->log_level = PLY_LOG_WARNING;
  options->flush_denormals = 1;
}

/**
 * Creates a runtime and loads the plugins `options` ask for (NULL: all
 * defaults). On success *out is a new handle for ply_runtime_destroy. Fails
 * (PLY_ERR_NOT_FOUND / PLY_ERR_IO / PLY_ERR_ABI ...) when a built-in or
 * PLY_PLUGIN_PATH library cannot be loaded, naming it. Thread-safe.
 */
PLY_EXPORT ply_result ply_runtime_create(const ply_runtime_options *options,
                                         ply_runtime **out);

/** Releases the caller's reference. Models made from the runtime keep it
 *  alive until they are destroyed. NULL is a no-op. */
PLY_EXPORT void ply_runtime_destroy(ply_runtime *runtime);

/**
 * Loads one plugin library (a path to a .so) and registers its layer types,
 * all or none. Fails when the file is missing or not a Ply plugin, its ABI
 * differs, or a type name is already registered. Thread-safe with respect
 * to other runtime calls.
 */
PLY_EXPORT ply_result ply_runtime_load_plugin(ply_runtime *runtime,
                                              const char *path);

/** Loads every plugin library (*.so) in `directory`. Shared libraries that
 *  are not Ply plugins are skipped; a library that fails to load or register
 *  (wrong ABI, bad descriptor, a type name already taken) is skipped with a
 *  PLY_LOG_WARNING naming it and the reason, and the rest still load. Fails
 *  only when the directory does not exist (PLY_ERR_IO). Thread-safe like
 *  load_plugin. */
PLY_EXPORT ply_result ply_runtime_load_plugin_dir(ply_runtime *runtime,
                                                  const char *directory);

/** Number of registered layer types, into *count_out. */
PLY_EXPORT ply_result ply_runtime_layer_type_count(ply_runtime *runtime,
                                                   int32_t *count_out);

/** What a registered layer type is. Strings are owned by the runtime and
 *  valid until the runtime is destroyed (not merely released: while a model
 *  keeps it alive they stay valid too). */
typedef struct ply_layer_type_info {
  uint32_t struct_size; /**< set by the caller: sizeof(ply_layer_type_info) */
  uint32_t reserved;    /**< 0 */
  const char *name;     /**< "conv2d" */
  const char *doc;      /**< one line, "" when the plugin gives none */
  const char *library_path; /**< the .so it was loaded from */
  int32_t min_inputs;
  int32_t max_inputs; /**< -1: unbounded */
  int32_t differentiable; /**< 1 when it has a backward (can be trained) */
  int32_t reserved2;      /**< 0 */
} ply_layer_type_info;

/** Describes layer type `index` (0 .. count-1, in load order) into *info,
 *  whose struct_size the caller sets. PLY_ERR_INVALID_ARGUMENT when the
 *  index is out of range. */
PLY_EXPORT ply_result ply_runtime_layer_type(ply_runtime *runtime,
                                             int32_t index,
                                             ply_layer_type_info *info);

/** An element-wise function y = f(x) or its derivative dy/dx. */
typedef float (*ply_activation_fn)(float x);

/** Any native function, cast to this type for registration; its real type
 *  is given by a signature string. */
typedef void (*ply_native_fn)(void);

/**
 * Registers a native function with the runtime under `name` (API 1.3), for
 * `user_activation` layers that name it in model text:
 *
 *     ply_runtime_register_function(rt, "swish", "float(float)",
 *                                   (ply_native_fn)swish,
 *                                   (ply_native_fn)swish_grad, NULL, NULL);
 *     ... layers: [{name: act, type: user_activation, function: swish}]
 *
 * The pointer never appears in text: the layer obtains it from the host by
 * name (plugin.h, ply_host.resolve_function), and a model file cannot give
 * a function address (`address:` and the like are refused).
 *
 *  - `name`: letters, digits, '_', '.', '-'; registered once per runtime
 *    (PLY_ERR_INVALID_ARGUMENT otherwise: registrations are never replaced
 *    or removed, since layers may be using them). Copied.
 *  - `signature`: how user_activation calls `fn` (docs/user-activations.md):
 *    "float(float)", "float(float, float, ...)" with `params:` in the model,
 *    "double(double[, ...])" or "void(const float *, float *, int64_t)".
 *    Copied; checked when a layer is created.
 *  - `derivative`: same signature, or NULL for central differences.
 *  - `fn`, `derivative` MUST stay callable until the runtime is gone (every
 *    model keeps it alive), MUST be safe to call from several threads at
 *    once unless the layer says `parallel: false`, and MUST NOT call back
 *    into Ply.
 *  - `release`, if not NULL, is called once with `user_data` when the
 *    runtime is gone (after its last model), from whichever thread releases
 *    it last. When registration fails it is not called: the caller keeps
 *    ownership.
 *  - Needs the user_activation layer type (a built-in): PLY_ERR_NOT_FOUND
 *    when the runtime was created without it.
 *
 * Thread-safe with respect to other runtime calls.
 */
PLY_EXPORT ply_result ply_runtime_register_function(
    ply_runtime *runtime, const char *name, const char *signature,
    ply_native_fn fn, ply_native_fn derivative, void *user_data,
    void (*release)(void *user_data));

/**
 * ply_runtime_register_function(runtime, name, "float(float)", fn,
 * derivative, NULL, NULL) for the common case. Model text names it as
 * `{type: user_activation, function: NAME}`. (Before API 1.3 the text said
 * `{type: NAME}` and was rewritten with the function's address; that
 * rewriting is gone.)
 */
PLY_EXPORT ply_result ply_runtime_register_activation(
    ply_runtime *runtime, const char *name, ply_activation_fn fn,
    ply_activation_fn derivative);

/* ---------------------------------------------------------------------- */
/* Models                                                                 */
/* ---------------------------------------------------------------------- */

/**
 * Builds a zoo model ("convnet", "lenet5", "alexnet", "vgg11" .. "vgg19_bn",
 * "googlenet", "inception_v3", "resnet18" .. "resnet152", ...) or the model
 * file at `name` when it ends in .yaml, .yml or .json, for images of
 * `in_channels` x `image_size` x `image_size` and `num_classes` classes.
 * Weights start with PyTorch's default initialisation from the runtime's
 * seeded generator. The model starts in training mode. The model keeps
 * `runtime` alive. Unknown names fail with PLY_ERR_INVALID_ARGUMENT, listing
 * the zoo; a model file that is missing or unreadable with PLY_ERR_IO; a
 * layer whose plugin refuses it with the plugin's own status (see
 * ply_model_from_text). On success *out is a new handle for
 * ply_model_destroy.
 */
PLY_EXPORT ply_result ply_model_from_zoo(ply_runtime *runtime, const char *name,
                                         int32_t num_classes,
                                         int32_t in_channels,
                                         int32_t image_size, ply_model **out);

/**
 * Builds a model from model-file text, YAML or JSON (docs/model-format.md);
 * `num_classes`, `in_channels` and `image_size` go to the file's parameters
 * of those names when it declares them. Errors give line and column. The
 * result says what kind of error it is: a layer whose plugin fails in create
 * or infer_shape returns the plugin's own ply_status (PLY_ERR_NOT_FOUND for
 * an unregistered `function:`, PLY_ERR_OUT_OF_MEMORY, ...), a shape that
 * does not fit PLY_ERR_SHAPE, an unknown layer type PLY_ERR_NOT_FOUND, other
 * mistakes in the text PLY_ERR_INVALID_ARGUMENT.
 */
PLY_EXPORT ply_result ply_model_from_text(ply_runtime *runtime,
                                          const char *text,
                                          int32_t num_classes,
                                          int32_t in_channels,
                                          int32_t image_size, ply_model **out);

/** Frees the model (and its runtime, if nothing else holds it). NULL is a
 *  no-op. */
PLY_EXPORT void ply_model_destroy(ply_model *model);

/**
 * Loads weights and buffers from a safetensors file with PyTorch
 * state_dict names ("conv_1.weight", "bn1.running_var", ...). Strict: when
 * any tensor is missing, unexpected or of the wrong shape or type, nothing
 * is loaded and the message lists them all (PLY_ERR_INVALID_ARGUMENT).
 * Entries named "optimizer.*" (a `ply train` checkpoint's optimizer state)
 * are skipped, so checkpoints load as weights. Missing or malformed files:
 * PLY_ERR_IO.
 */
PLY_EXPORT ply_result ply_model_load_weights(ply_model *model, const char *path);

/** Saves every parameter and buffer to a safetensors file (F32, integer
 *  buffers I64), atomically: the file is complete or unchanged. */
PLY_EXPORT ply_result ply_model_save_weights(ply_model *model, const char *path);

/** Training (1: batch statistics, dropout on) or evaluation (0) mode. */
PLY_EXPORT ply_result ply_model_set_training(ply_model *model, int32_t training);

/** What the model was built for: *num_classes_out, *in_channels_out and
 *  *image_size_out (any may be NULL). */
PLY_EXPORT ply_result ply_model_input(ply_model *model, int32_t *num_classes_out,
                                      int32_t *in_channels_out,
                                      int32_t *image_size_out);

/** Number of trainable values (PyTorch's sum of p.numel() over
 *  parameters(); buffers such as running means are not counted), into
 *  *count_out. The tutorial's ConvNet has 9,098. */
PLY_EXPORT ply_result ply_model_parameter_count(ply_model *model,
                                                int64_t *count_out);

/**
 * Runs the model on the caller's buffers.
 *
 *  - `input`: shape[0] * ... * shape[ndim-1] floats, row-major (NCHW for
 *    images); `ndim` is 1 .. PLY_MAX_NDIM and every dim > 0.
 *  - `output`: room for `output_capacity` floats; the result is written
 *    there, row-major. `output` may be NULL when output_capacity is 0: the
 *    call then only reports the output shape (and fails with PLY_ERR_SHAPE).
 *  - `output_shape_out`: room for PLY_MAX_NDIM int64_t; receives the output
 *    shape; `output_ndim_out` receives its rank. Both may be NULL. They are
 *    filled whenever the output shape is known, also when the call fails
 *    because output_capacity is too small (PLY_ERR_SHAPE): call once with
 *    capacity 0 to size the buffer.
 *
 * An input shape the model cannot take fails with a message naming the
 * node. Uses the model's current mode (see ply_model_set_training; models
 * start in training mode, so call ply_model_set_training(model, 0) for
 * inference). Buffers are planned on the first call for a shape and reused
 * after, so repeated calls with one shape allocate nothing.
 */
PLY_EXPORT ply_result ply_model_forward(ply_model *model, const float *input,
                                        const int64_t *shape, int32_t ndim,
                                        float *output, int64_t output_capacity,
                                        int64_t *output_shape_out,
                                        int32_t *output_ndim_out);

/**
 * As ply_model_forward (the same arguments, checks and errors), but keeps no
 * activation for a backward pass: a value's buffer serves a later value once
 * every node reading it has run, so inference holds a few activations rather
 * than all of them (less memory at large batches). Its buffers are its own:
 * what ply_model_forward planned stays, and training through the model is
 * unaffected. Since API 1.1.
 */
PLY_EXPORT ply_result ply_model_infer(ply_model *model, const float *input,
                                      const int64_t *shape, int32_t ndim,
                                      float *output, int64_t output_capacity,
                                      int64_t *output_shape_out,
                                      int32_t *output_ndim_out);

/**
 * Freezes the model for inference (API 1.7): the caller's promise that from
 * now on the model only runs ply_model_infer and ply_model_forward in
 * evaluation mode, so that its layers may free what evaluation does not
 * read -- above all the unfolded weights of every batch norm folded into a
 * conv, one copy of the convs' weights (ResNet-50: 94 MB). Switches the model
 * to evaluation mode; outputs stay the same, bit for bit. Irreversible, and
 * for the whole model at once: afterwards every call that reads, writes or
 * trains the parameters (ply_model_load_weights, ply_model_save_weights,
 * ply_model_parameter_count, ply_model_init_normal, ply_fit,
 * ply_model_train_step, ...) and ply_model_set_training(model, 1) fail with
 * PLY_ERR_UNSUPPORTED and a message saying the model is frozen. Freezing a
 * frozen model is a no-op. Not thread-safe (as every call on one model).
 */
PLY_EXPORT ply_result ply_model_freeze(ply_model *model);

/**
 * Prepares ply_model_infer to split batches of about `batch` images into
 * lanes (API 1.8): runs of images each carried through the whole model by one
 * of the runtime's threads, its layers running as on one thread, rather than
 * every layer split over all the threads (ResNet-50 at batch 16 on 2 threads:
 * about 10% less time per batch). Lane 0 runs the model itself, every other
 * lane a copy of its layers with the parameter values copied (again whenever
 * they change): the weights are held once per lane. `lanes`: 0 lets Ply
 * choose (the runtime's threads when every lane gets two images or more and
 * no weight tensor has 4M elements or more, whose layers are bound by reading
 * their weights; else 1), 1 removes the lanes, at most the runtime's threads.
 * The lanes claim groups of up to 4 images; each group's output is, bit for
 * bit, what ply_model_infer without lanes gives that group alone (with the
 * built-in plugins, within the last bits of one call on the whole batch).
 * Lanes run in evaluation mode only. Call it before
 * ply_model_freeze (which freezes the copies too): on a frozen model it fails
 * with PLY_ERR_UNSUPPORTED; batch < 1 or lanes out of range fail with
 * PLY_ERR_INVALID_ARGUMENT. On success *lanes_out (when not NULL) is the
 * number of lanes made (1: none). Not thread-safe (as every call on one model).
 */
PLY_EXPORT ply_result ply_model_prepare_lanes(ply_model *model, int64_t batch,
                                              int32_t lanes, int32_t *lanes_out);

/**
 * The tutorial's initialisation: every trainable weight of two or more
 * dimensions from N(0, std^2), every trainable bias zero, drawn from a
 * generator seeded with `seed` (the same values ply_fit's PLY_INIT_NORMAL
 * gives).
 */
PLY_EXPORT ply_result ply_model_init_normal(ply_model *model, double std,
                                            uint64_t seed);

/* ---------------------------------------------------------------------- */
/* Optimizers and single training steps                                   */
/* ---------------------------------------------------------------------- */

/**
 * SGD exactly as torch.optim.SGD (dampening 0). Fails for negative or
 * non-finite values and for Nesterov without momentum. On success *out is a
 * new handle for ply_optimizer_destroy. The optimizer keeps per-parameter
 * state by parameter name: use one optimizer with one model.
 */
PLY_EXPORT ply_result ply_optimizer_sgd(double learning_rate, double momentum,
                                        double weight_decay, int32_t nesterov,
                                        ply_optimizer **out);

/** Adam exactly as torch.optim.Adam (L2 weight decay, not AdamW); PyTorch's
 *  defaults are 1e-3, 0.9, 0.999, 1e-8, 0. */
PLY_EXPORT ply_result ply_optimizer_adam(double learning_rate, double beta1,
                                         double beta2, double epsilon,
                                         double weight_decay,
                                         ply_optimizer **out);

/** Changes the rate the next steps use (for a schedule of one's own). */
PLY_EXPORT ply_result ply_optimizer_set_learning_rate(ply_optimizer *optimizer,
                                                      double learning_rate);

/** Frees the optimizer and its state. NULL is a no-op. */
PLY_EXPORT void ply_optimizer_destroy(ply_optimizer *optimizer);

/**
 * One training step on one batch: forward, mean cross-entropy against
 * `labels`, backward, one optimizer update. `images` holds `batch` images of
 * the model's in_channels x image_size x image_size (ply_model_input),
 * NCHW; `labels` holds `batch` classes in 0 .. num_classes-1. The model is
 * switched to training mode. *loss_out (may be NULL) receives the batch's
 * mean loss. A NaN or infinite loss fails with PLY_ERR_NUMERIC before the
 * update (the weights are left as they were).
 */
PLY_EXPORT ply_result ply_model_train_step(ply_model *model,
                                           ply_optimizer *optimizer,
                                           const float *images,
                                           const int32_t *labels, int64_t batch,
                                           float *loss_out);

/* ---------------------------------------------------------------------- */
/* Data sets                                                              */
/* ---------------------------------------------------------------------- */

/** Which half of an MNIST-format directory to load. */
typedef enum ply_split {
  PLY_SPLIT_TRAIN = 0, /**< train-images-idx3-ubyte[.gz], train-labels-... */
  PLY_SPLIT_TEST = 1   /**< t10k-images-idx3-ubyte[.gz], t10k-labels-... */
} ply_split;

/**
 * Loads MNIST or Fashion-MNIST (or any set in their format) from a
 * directory, raw or gzip. Pixels are scaled to [0, 1] (byte / 255); labels
 * must be 0..9. Missing or malformed files: PLY_ERR_IO, naming them. On
 * success *out is a new handle for ply_dataset_destroy.
 */
PLY_EXPORT ply_result ply_dataset_load_mnist(const char *directory,
                                             int32_t split, ply_dataset **out);

/** Loads an IDX image file (magic 0x803, raw or gzip) and, unless
 *  `labels_path` is NULL, its IDX label file (0x801, labels 0..9). Without
 *  labels the set can be classified but not trained or evaluated on. */
PLY_EXPORT ply_result ply_dataset_from_idx(const char *images_path,
                                           const char *labels_path,
                                           ply_dataset **out);

/** A data set copied from memory: `count` images of channels x height x
 *  width floats (NCHW) and `count` labels (`labels` may be NULL:
 *  unlabelled; else every label >= 0). */
PLY_EXPORT ply_result ply_dataset_from_memory(const float *images,
                                              const int32_t *labels,
                                              int64_t count, int64_t channels,
                                              int64_t height, int64_t width,
                                              ply_dataset **out);

/** Number of images and their shape; any out-pointer may be NULL.
 *  Thread-safe (a data set never changes). */
PLY_EXPORT ply_result ply_dataset_shape(const ply_dataset *dataset,
                                        int64_t *count_out,
                                        int64_t *channels_out,
                                        int64_t *height_out,
                                        int64_t *width_out);

/** Whether the set has labels (1) or not (0), into *labelled_out. */
PLY_EXPORT ply_result ply_dataset_labelled(const ply_dataset *dataset,
                                           int32_t *labelled_out);

/**
 * Copies images first .. first+count-1 into `images_out` (count x channels
 * x height x width floats) and their labels into `labels_out` (count
 * int32_t, -1 for an unlabelled set); either may be NULL. Fails when the
 * range is outside the set. A streamed set (ply_data_options.cache_decoded)
 * decodes the images here: PLY_ERR_IO, naming the file, when one cannot be
 * decoded any more. Thread-safe.
 */
PLY_EXPORT ply_result ply_dataset_copy(const ply_dataset *dataset, int64_t first,
                                       int64_t count, float *images_out,
                                       int32_t *labels_out);

/** Frees the data set. NULL is a no-op. */
PLY_EXPORT void ply_dataset_destroy(ply_dataset *dataset);

/** How ply_dataset_load reads and transforms a data directory (API 1.4).
 *  Fill with ply_data_options_init: the defaults read the images as they
 *  are. Fields are only appended. */
typedef struct ply_data_options {
  uint32_t struct_size; /**< set by _init */
  uint32_t api_version; /**< set by _init */
  /** Resize so the shorter side is this many pixels (Pillow's bilinear, as
   *  torchvision's Resize); without center_crop, then cropped to a square
   *  of this side. 0 (default): no resize. */
  int32_t resize;
  /** Crop the central center_crop x center_crop pixels; 0: none. */
  int32_t center_crop;
  /** 1 (gray) or 3 (RGB); 0 (default): 1 when every training image is
   *  gray, else 3. */
  int32_t channels;
  /** A ply_normalization: none (default), the training set's own
   *  per-channel mean and std, or `mean`/`std` below. */
  int32_t normalization;
  /** PLY_NORMALIZE_GIVEN: per-channel means and standard deviations (std
   *  > 0); `normalization_channels` (1 or 3) of each are read. */
  float mean[3];
  float std[3];
  int32_t normalization_channels;
  int32_t reserved; /**< 0 */
  /** Image folders without test/: hold out this fraction (0 < f < 1) of
   *  train/ as the PLY_SPLIT_TEST set, drawn with `seed`. 0: none. */
  double validation_split;
  uint64_t seed; /**< of the validation split; default 1 */
  /** 1: skip images that cannot be decoded (ply_dataset_skipped counts
   *  them); 0 (default): fail with PLY_ERR_IO naming the first. */
  int32_t skip_bad_images;
  /** Decoding threads; 0 (default): one per core. */
  int32_t threads;
  /** API 1.6. Image folders: a ply_cache_mode. PLY_CACHE_AUTO (default)
   *  holds the decoded split in memory when its N*C*H*W*4 bytes fit in
   *  cache_budget, else decodes its images batch by batch while ply_fit and
   *  ply_evaluate read them (on `threads` threads, ahead of training); the
   *  floats, and so the trained weights, are the same either way. Every
   *  image is decoded once by ply_dataset_load in both modes, so a corrupt
   *  one fails (or is skipped) there. Other formats are always in memory. */
  int32_t cache_decoded;
  int32_t reserved2; /**< 0 */
  /** API 1.6. With PLY_CACHE_AUTO: the most bytes a decoded split may take
   *  to be cached; 0 (default): a quarter of the machine's memory. */
  uint64_t cache_budget;
} ply_data_options;

/** ply_data_options.cache_decoded (API 1.6). */
typedef enum ply_cache_mode {
  PLY_CACHE_AUTO = 0, /**< cache what fits in cache_budget, else stream */
  PLY_CACHE_ON = 1,   /**< always cache (PLY_ERR_IO if it cannot fit in memory) */
  PLY_CACHE_OFF = 2   /**< always stream from the files */
} ply_cache_mode;

/** ply_data_options.normalization. */
typedef enum ply_normalization {
  PLY_NORMALIZE_NONE = 0,     /**< pixels in [0, 1] */
  PLY_NORMALIZE_COMPUTED = 1, /**< the training set's mean and std */
  PLY_NORMALIZE_GIVEN = 2     /**< options->mean and options->std */
} ply_normalization;

/** Sets struct_size, api_version and the defaults. NULL is a no-op.
 *  Inline, like ply_runtime_options_init. */
static inline void ply_data_options_init(ply_data_options *options) {
  if (!options) return;
  memset(options, 0, sizeof *options);
  options->struct_size = (uint32_t)sizeof *options;
  options->api_version = PLY_API_VERSION;
  options->seed = 1;
}

/**
 * Loads one split of a data directory in any format Ply reads (API 1.4),
 * detected from its files: MNIST-format IDX, CIFAR-10 binary
 * (data_batch_1.bin ... test_batch.bin), CIFAR-100 binary (train.bin,
 * test.bin; fine labels), or image folders as torchvision's ImageFolder
 * reads them (train/<class>/ ... .png|.jpg|.jpeg, test/<class>/...; classes
 * sorted by name). Images are decoded on `options->threads` threads and
 * transformed as `options` says (NULL: the defaults); pixels are scaled to
 * [0, 1] before any normalisation. A computed normalisation reads the
 * training split too (and applies its statistics to either split). Errors:
 * PLY_ERR_IO naming the file (missing, corrupt image, unknown format),
 * PLY_ERR_INVALID_ARGUMENT naming the option. On success *out is a new
 * handle for ply_dataset_destroy. Thread-safe.
 */
PLY_EXPORT ply_result ply_dataset_load(const char *directory, int32_t split,
                                       const ply_data_options *options,
                                       ply_dataset **out);

/** Number of class names the set has (folder names, CIFAR's; 0 for IDX
 *  files), into *count_out (API 1.4). */
PLY_EXPORT ply_result ply_dataset_class_count(const ply_dataset *dataset,
                                              int64_t *count_out);

/** The name of class `index` (0 .. count-1), into *name_out: a
 *  NUL-terminated UTF-8 string owned by the data set, valid until it is
 *  destroyed (API 1.4). */
PLY_EXPORT ply_result ply_dataset_class_name(const ply_dataset *dataset,
                                             int64_t index,
                                             const char **name_out);

/** Images skipped as unreadable while loading (skip_bad_images), into
 *  *count_out (API 1.4). */
PLY_EXPORT ply_result ply_dataset_skipped(const ply_dataset *dataset,
                                          int64_t *count_out);

/* ---------------------------------------------------------------------- */
/* Training loop and evaluation                                           */
/* ---------------------------------------------------------------------- */

/**
 * One rank of a data-parallel job (API 1.4): the MPI communicator
 * (Include/ply/comm.h), loaded from its own library so that libply links no
 * MPI. Start the program with `mpirun -np N prog`, open one communicator per
 * process, pass it in ply_fit_options.communicator, close it before exit.
 */
typedef struct ply_communicator ply_communicator;

/**
 * Loads the communicator library `library` (NULL: PLY_COMM_LIBRARY, else
 * libplycomm_mpi.so in the plugin directory, built by scripts/build-comm-mpi)
 * and joins the job (MPI_Init). At most once per process: MPI cannot be
 * initialised again after ply_communicator_close. Fails with PLY_ERR_NOT_FOUND
 * when the library is missing (the message says how to build it), PLY_ERR_ABI
 * when it is not a usable communicator. Not thread-safe: call from one thread.
 */
PLY_EXPORT ply_result ply_communicator_open(const char *library, ply_communicator **out);
/** This process's rank (0 .. size-1), or -1 for a NULL/invalid handle. */
PLY_EXPORT int32_t ply_communicator_rank(const ply_communicator *communicator);
/** The number of ranks in the job, or -1 for a NULL/invalid handle. */
PLY_EXPORT int32_t ply_communicator_size(const ply_communicator *communicator);
/** Leaves the job (MPI_Finalize; every rank calls it) and frees the handle.
 *  NULL is a no-op. */
PLY_EXPORT void ply_communicator_close(ply_communicator *communicator);

/** Optimizers ply_fit can build. */
typedef enum ply_optimizer_kind {
  PLY_OPTIMIZER_SGD = 0,
  PLY_OPTIMIZER_ADAM = 1
} ply_optimizer_kind;

/** How ply_fit sets the weights before training. */
typedef enum ply_init_kind {
  /** The tutorial's: N(0, init_std^2) weights, zero biases, from `seed`. */
  PLY_INIT_NORMAL = 0,
  /** Keep the current weights (PyTorch's default init, or loaded ones). */
  PLY_INIT_KEEP = 1
} ply_init_kind;

/** A training run. Fill with ply_fit_options_init: the defaults are the
 *  tutorial's (SGD, lr 0.05, batch 128, N(0, 0.01) init, seed 1). */
typedef struct ply_fit_options {
  uint32_t struct_size; /**< set by _init */
  uint32_t api_version; /**< set by _init */
  int32_t epochs;       /**< >= 1; default 10 */
  int32_t batch_size;   /**< >= 1; default 128 */
  int32_t optimizer;    /**< a ply_optimizer_kind; default SGD */
  int32_t nesterov;     /**< SGD: 1 for Nesterov momentum; default 0 */
  double learning_rate; /**< default 0.05 */
  double momentum;      /**< SGD; default 0 */
  double weight_decay;  /**< L2, both optimizers; default 0 */
  int32_t initialization; /**< a ply_init_kind; default PLY_INIT_NORMAL */
  /** Report training accuracy after every epoch (1, default) or not (0):
   *  costs one evaluation pass over the training set per epoch. */
  int32_t training_accuracy;
  double init_std;        /**< for PLY_INIT_NORMAL; default 0.01 */
  /** Seeds initialisation and the shuffle of every epoch. Default 1. */
  uint64_t seed;
  /** The progress `log` flag is 1 every this many batches. Default 50. */
  int32_t log_every;
  int32_t reserved; /**< 0 */
  /** A directory for a checkpoint after every epoch, training.svg and the
   *  confusion matrix, or NULL (default) for none. Copied. */
  const char *output_directory;
  /** API 1.4. Data-parallel training: every rank calls ply_fit with the same
   *  options and data; batch_size is the global batch, shared out between
   *  the ranks, and gradients are summed over them (the weights match one
   *  process's within float rounding). Rank 0 alone writes output_directory.
   *  The progress callback runs on every rank, with the same numbers; a stop
   *  request from any rank stops all after the same batch. Borrowed: it must
   *  outlive the call. NULL (default): this process alone. */
  ply_communicator *communicator;
  /** Random crop of the training images (API 1.4): pad this many pixels on
   *  each side, cut the image's size back out at a random place, drawn per
   *  (seed, epoch, image) so that runs repeat exactly. The padding is black:
   *  0, or (0 - mean) / std when the set was loaded normalised. 0 (default):
   *  none. */
  int32_t random_crop_padding;
  /** 1: flip half of the training images left to right (API 1.4). */
  int32_t horizontal_flip;
  /** API 1.5. With a communicator: 1 makes batch-norm layers normalise with
   *  the statistics of the whole global batch, summed over the ranks while
   *  training (PyTorch's SyncBatchNorm), so that the weights match one
   *  process's for models with batch norm too; 0 (default): each rank uses
   *  its own share's. Every rank needs at least one image of the last batch.
   *  1 without a communicator is PLY_ERR_INVALID_ARGUMENT. */
  int32_t sync_batchnorm;
} ply_fit_options;

/** Sets struct_size, api_version and the defaults. NULL is a no-op.
 *  Inline, like ply_runtime_options_init. */
static inline void ply_fit_options_init(ply_fit_options *options) {
  if (!options) return;
  memset(options, 0, sizeof *options);
  options->struct_size = (uint32_t)sizeof *options;
  options->api_version = PLY_API_VERSION;
  options->epochs = 10;
  options->batch_size = 128;
  options->optimizer = PLY_OPTIMIZER_SGD;
  options->learning_rate = 0.05;
  options->initialization = PLY_INIT_NORMAL;
  options->training_accuracy = 1;
  options->init_std = 0.01;
  options->seed = 1;
  options->log_every = 50;
}

/** What a progress report is about. */
typedef enum ply_progress_kind {
  PLY_PROGRESS_BATCH = 0, /**< a training batch finished */
  PLY_PROGRESS_EPOCH = 1  /**< an epoch finished */
} ply_progress_kind;

/** One progress report. Valid only during the callback. Fields are only
 *  appended: check struct_size before reading one added later. */
typedef struct ply_progress {
  uint32_t struct_size;
  int32_t kind;       /**< a ply_progress_kind */
  int32_t epoch;      /**< 1 .. epochs */
  int32_t epochs;
  int32_t batch;      /**< 0 .. batches-1 (BATCH reports) */
  int32_t batches;    /**< batches per epoch */
  /** BATCH: this batch's mean loss. EPOCH: the epoch's mean loss. */
  double loss;
  /** BATCH: training throughput of this batch (images/s). */
  double images_per_second;
  /** EPOCH: training accuracy in percent, or -1 when not measured. */
  double training_accuracy;
  /** Seconds since ply_fit started. */
  double elapsed_seconds;
  /** BATCH: 1 on every log_every-th batch (the tutorial's log lines). */
  int32_t log;
  int32_t reserved;
} ply_progress;

/** Progress callback: called on the thread that called ply_fit after
 *  every batch and every epoch. Return 0 to go on; non-zero to stop before
 *  the next batch (ply_fit then returns PLY_OK with result->stopped = 1). */
typedef int32_t (*ply_progress_fn)(const ply_progress *progress,
                                   void *user_data);

/** What ply_fit did. The caller sets struct_size (or uses _init). */
typedef struct ply_fit_result {
  uint32_t struct_size;
  int32_t stopped;          /**< 1 when the callback stopped the run */
  int32_t epochs_completed; /**< whole epochs trained */
  int32_t reserved;
  double loss;              /**< mean loss of the last whole epoch, or NaN */
  double training_accuracy; /**< of the last epoch, percent, or -1 */
  double seconds;           /**< wall time of the run */
  double images_per_second; /**< training steps only */
} ply_fit_result;

/** Sets struct_size and clears the rest (training_accuracy -1). NULL is a
 *  no-op. Inline. The library writes no field past struct_size. */
static inline void ply_fit_result_init(ply_fit_result *result) {
  if (!result) return;
  memset(result, 0, sizeof *result);
  result->struct_size = (uint32_t)sizeof *result;
  result->training_accuracy = -1;
}

/**
 * Trains `model` on the labelled set `train` with mean cross-entropy, as
 * `ply train` does (same shuffle, same initialisation, same numbers for the
 * same options): initialise as options->initialization says, then per
 * epoch shuffle (seeded by seed and epoch), step through batches, report.
 * `options` NULL means the defaults. `progress` may be NULL. `result` may be
 * NULL. The model is left in training mode. A NaN or infinite loss fails
 * with PLY_ERR_NUMERIC naming the epoch and batch; data whose image shape
 * the model cannot take fails before any step.
 */
PLY_EXPORT ply_result ply_fit(ply_model *model, const ply_dataset *train,
                              const ply_fit_options *options,
                              ply_progress_fn progress, void *user_data,
                              ply_fit_result *result);

/**
 * Classifies every image of the labelled set `dataset` in evaluation mode
 * (batches of 128) and writes the share classified correctly, in percent
 * (0 .. 100), to *accuracy_out. The model's mode is restored afterwards.
 */
PLY_EXPORT ply_result ply_evaluate(ply_model *model, const ply_dataset *dataset,
                                   double *accuracy_out);

/* ---------------------------------------------------------------------- */
/* Inspection: pictures of a model (API 1.4)                              */
/* ---------------------------------------------------------------------- */

/*
 * `ply inspect` from C. Pictures are 8-bit RGB PNG files written with
 * libpng, atomically (a temporary file in the same directory, renamed into
 * place: on failure nothing is left at png_path). Every tile (a filter, a
 * channel's feature map, the input image) is normalised on its own: its
 * smallest finite value becomes 0, its largest 255 (rounded), all-equal
 * values 128, NaN and infinities 0; tiles sit in a grid of ceil(sqrt(n))
 * columns separated by 1-pixel lines of colour (64, 96, 160). `scale` is
 * the pixels per value, 1..32, or 0 for automatic (a tile's longer side at
 * least 64 pixels); other values fail with PLY_ERR_INVALID_ARGUMENT.
 *
 * `layer` is a node name as `ply summary` lists it (PyTorch's module path,
 * "conv_2", "layer1.0"); an unknown name fails with PLY_ERR_NOT_FOUND and a
 * message listing the valid names. `image` is one image of the size the
 * model was made for (in_channels x image_size x image_size floats, CHW, as
 * the model takes them): `image_count` must be that count (PLY_ERR_SHAPE
 * otherwise). Nothing is allocated for the caller: there is nothing to free.
 * Strings and buffers passed in are used only during the call. The model
 * runs in evaluation mode; its mode is restored. Same threading as every
 * call on `model`: one thread at a time.
 */

/** The first convolution's filters (the first node with a 4-D trainable
 *  weight (out, in, kh, kw)), one tile per filter, in colour when the
 *  convolution reads 3 channels (one row per filter, one tile per input
 *  channel when it reads neither 1 nor 3). PLY_ERR_NOT_FOUND when the model
 *  has no convolution; PLY_ERR_IO when png_path cannot be written. */
PLY_EXPORT ply_result ply_inspect_filters(ply_model *model, int32_t scale,
                                          const char *png_path);

/** The output of `layer` for `image`, one tile per channel. PLY_ERR_SHAPE
 *  when the layer's output is not a feature map (1, C, H, W). */
PLY_EXPORT ply_result ply_inspect_feature_maps(ply_model *model,
                                               const float *image,
                                               int64_t image_count,
                                               const char *layer,
                                               int32_t scale,
                                               const char *png_path);

/** The input pixels output position (y, x) of `layer` depends on, from the
 *  model summary's receptive field, jump and start: rows box_out[0] ..
 *  box_out[2] and columns box_out[1] .. box_out[3], inclusive (top, left,
 *  bottom, right), not clipped to the image (negative or past the edge
 *  where padding reaches). A position outside the layer's output fails with
 *  PLY_ERR_SHAPE, the message naming the output's height and width.
 *  box_out (4 int32_t, caller-owned) is written only on success. */
PLY_EXPORT ply_result ply_inspect_receptive_field(ply_model *model,
                                                  const char *layer,
                                                  int32_t y, int32_t x,
                                                  int32_t box_out[4]);

/** `image` with that receptive field framed by a 1-pixel red (255, 0, 0)
 *  rectangle on the outermost pixels of its part inside the image. box_out
 *  may be NULL; otherwise it is written as by ply_inspect_receptive_field. */
PLY_EXPORT ply_result ply_inspect_receptive_field_png(
    ply_model *model, const float *image, int64_t image_count,
    const char *layer, int32_t y, int32_t x, int32_t scale,
    const char *png_path, int32_t box_out[4]);

/** Decodes the PNG or JPEG file at `path` (told apart by its first bytes;
 *  API 1.6) into `image` as a model takes it, and as ply inspect's --image
 *  does: channels x height x width floats (CHW), byte / 255. `channels` 1
 *  (gray) or 3 (RGB) converts (RGB to gray as Pillow's convert("L")); 0
 *  keeps the file's own. PNG through libpng (16-bit reduced to 8, alpha
 *  composited over black), JPEG through libjpeg-turbo's TurboJPEG.
 *  shape_out (3 int64_t: channels, height, width; caller-owned) is written
 *  on success. `image` may be NULL to ask for the shape only; otherwise
 *  `capacity` is the number of floats it holds, and one smaller than the
 *  image needs fails with PLY_ERR_SHAPE (the message gives the shape). A
 *  missing, unreadable or corrupt file is PLY_ERR_IO naming it; `channels`
 *  other than 0, 1, 3 PLY_ERR_INVALID_ARGUMENT. Nothing is allocated for
 *  the caller. Thread-safe. */
PLY_EXPORT ply_result ply_image_read(const char *path, int32_t channels,
                                     float *image, int64_t capacity,
                                     int64_t shape_out[3]);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* PLY_PLY_H */
