/*
 * ply-plugin-check: what its files share.
 *
 *   main.c      the command line and the order of the checks
 *   host.c      the minimal ply_host the plugin runs against (allocation
 *               counting, per-thread errors, a two-thread parallel_for)
 *   json.c      a small JSON parser for the golden files
 *   golden.c    golden cases: reading them, running them, comparing
 *   gradcheck.c backward against central differences
 *   checks.c    library, descriptor and error-path checks
 *   schema.c    attribute schemas (attr_specs, ABI 1.2)
 *   describe.c  describe (ABI 1.2): MACs, window, children
 *   layouts.c   eval_layouts / forward_layout (ABI 1.7): the blocked layout
 *   report.c    PASS / FAIL / SKIP lines and the summary
 *
 * Plain C11 plus POSIX (dlopen, pthreads); no Swift, no C++.
 */
#ifndef PLY_PLUGIN_CHECK_H
#define PLY_PLUGIN_CHECK_H

#if !defined(_POSIX_C_SOURCE) || _POSIX_C_SOURCE < 200809L
#undef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ply/plugin.h"

/* ---------------------------------------------------------------- report.c */

void report_init(bool quiet);
void report_section(const char *format, ...) __attribute__((format(printf, 1, 2)));
void report_pass(const char *format, ...) __attribute__((format(printf, 1, 2)));
void report_fail(const char *format, ...) __attribute__((format(printf, 1, 2)));
void report_skip(const char *format, ...) __attribute__((format(printf, 1, 2)));
/** An indented detail line (plugin log messages, notes); not shown with --quiet. */
void report_note(const char *format, ...) __attribute__((format(printf, 1, 2)));
/** Names what is running, for the crash handler's last words. */
void report_doing(const char *format, ...) __attribute__((format(printf, 1, 2)));
int report_failures(void);
/** Prints the summary line; returns the exit status (0 or 1). */
int report_summary(void);
/** Installs SIGSEGV/SIGBUS/SIGFPE/SIGILL/SIGABRT handlers that report the crash. */
void report_install_crash_handler(void);

/* ------------------------------------------------------------------ host.c */

/** A layer type as the host sees it: the plugin's struct copied within its
 *  struct_size into a full-size, zero-padded one (absent fields are NULL). */
typedef struct type_info {
    const ply_layer_type *original;
    ply_layer_type t;
    const char *library; /* path of the library that provides it */
} type_info;

void host_init(int threads, uint64_t seed);
const ply_host *host_table(void);
/** The same services, claiming ABI major PLY_ABI_VERSION_MAJOR + 1. */
const ply_host *host_table_other_major(void);
void host_error_clear(void);
bool host_error_was_set(void);
ply_status host_error_status(void);
const char *host_error_message(void);
long host_live_allocations(void);
long host_bad_frees(void);
/** Copies `src` within its struct_size into `dst` (zero-padded). */
void host_copy_type(const ply_layer_type *src, type_info *dst, const char *library);
/** Registers a library's types for create_layer (main plugin first, then --with). */
void host_register_types(const type_info *types, int count);
const type_info *host_find_type(const char *name);

/* ------------------------------------------------------------------ json.c */

typedef enum jkind { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jkind;

typedef struct jval {
    jkind kind;
    bool is_int;       /* J_NUM written without '.', 'e' or 'E' */
    bool b;            /* J_BOOL */
    double num;        /* J_NUM */
    char *str;         /* J_STR */
    size_t n;          /* J_ARR / J_OBJ element count */
    struct jval *items;
    char **keys;       /* J_OBJ */
} jval;

/** Parses a whole file; NULL with a message (file, line, what) in err. */
jval *json_parse_file(const char *path, char *err, size_t err_size);
void json_free(jval *v);
const jval *json_get(const jval *object, const char *key);

/* ---------------------------------------------------------------- golden.c */

/** A float32 tensor owned by the checker (not by the host's allocator). */
typedef struct tensor {
    ply_shape shape;
    int64_t n;
    float *data;
} tensor;

typedef struct named_tensor {
    const char *name;
    tensor t;
} named_tensor;

#define MAX_INPUTS 8
#define MAX_ATTRS 32

typedef struct attr_set {
    ply_attr items[MAX_ATTRS];
    int64_t ints[MAX_ATTRS][PLY_MAX_NDIM];
    double floats[MAX_ATTRS][PLY_MAX_NDIM];
    ply_attrs list;
} attr_set;

typedef struct golden_case {
    char *path;
    const char *name; /* file name without directory and .json */
    const char *op;
    bool train;
    jval *root;
    attr_set attrs;
    int n_inputs;
    tensor inputs[MAX_INPUTS];
    bool wants_grad[MAX_INPUTS];
    tensor output, grad_output;
    int n_grad_inputs;
    tensor grad_inputs[MAX_INPUTS];
    int n_params, n_buffers, n_grad_params, n_buffers_after;
    named_tensor *params, *buffers, *grad_params, *buffers_after;
} golden_case;

tensor tensor_new(ply_shape shape);
void tensor_free(tensor *t);
tensor tensor_copy(const tensor *t);
ply_tensor tensor_view(const tensor *t);
ply_shape shape_of(int ndim, const int64_t *dims);
/** "[2, 3, 4, 4]" into buf. */
const char *shape_str(const ply_shape *s, char *buf, size_t size);
bool shape_eq(const ply_shape *a, const ply_shape *b);
const char *status_name(ply_status s);
/** max|a-b| (infinite when NaN-ness differs) and the bound 1e-5 * max(1, max|ref|). */
bool close_enough(const float *ours, const float *ref, int64_t n, double *error, double *bound);
void attr_set_init(attr_set *a);
/** Sets or replaces an attribute (name must outlive the set). */
ply_attr *attr_set_put(attr_set *a, const char *name);

/** Reads a golden file; false with a message in err. */
bool golden_load(const char *path, golden_case *c, char *err, size_t err_size);
void golden_free(golden_case *c);
/** Runs check 3 for one case. */
void golden_check(const type_info *ti, const golden_case *c);

/** Params of a live layer, validated; returns count or -1 (message in why). */
int layer_params(const type_info *ti, ply_layer *layer, ply_param **out, char *why, size_t why_size);
/** infer_shape + forward into a fresh tensor (output pre-filled with NaN). */
ply_status layer_forward(const type_info *ti, ply_layer *layer, int n, const tensor *inputs, tensor *out,
                         char *why, size_t why_size);
/** Loads named tensors into the layer's params by name; false with why. */
bool load_named(ply_param *params, int count, const named_tensor *src, int n, char *why, size_t why_size);

/* ------------------------------------------------------------- gradcheck.c */

/** Check 4: central differences for one instance description. `load` are
 *  parameters/buffers to load after create (may be 0); `grad_output` may be
 *  NULL (then a seeded random one is used). */
void gradcheck(const type_info *ti, const char *label, const ply_attrs *attrs, int n_inputs, const tensor *inputs,
               const bool *wants_grad, const named_tensor *load, int n_load, bool train, const tensor *grad_output);

/* ---------------------------------------------------------------- checks.c */

typedef struct plugin_under_test {
    const char *path;
    void *handle;
    ply_plugin_entry_fn entry;
    const ply_plugin *plugin;
    ply_plugin desc; /* copied within struct_size */
    int type_count;
    type_info *types;   /* the types to check (all, or --type's) */
    int other_count;
    type_info *others;  /* the library's other valid types: not checked, but registered for create_layer */
} plugin_under_test;

/** Checks 1 and 2; false when the plugin cannot be checked further. */
bool check_library(plugin_under_test *p);
bool check_descriptor(plugin_under_test *p, const char *only_type);
/** Loads a --with library (reported as one line); false on failure. */
bool load_dependency(const char *path, plugin_under_test *dep);
/** Check 5 for one type: invalid attribute values (when `attrs` has one to
 *  spoil) and wrong input ranks for infer_shape, from valid attrs and shapes. */
void check_error_paths(const type_info *ti, const char *label, const attr_set *attrs, int n_inputs,
                       const ply_shape *shapes);
/** For a type without golden cases: create with no attributes and run check 4
 *  on a random [2, 3, 4, 5] input, or SKIP saying why not. */
void check_without_golden(const type_info *ti, bool finite_differences);
void unload_library(plugin_under_test *p);

/* ---------------------------------------------------------------- schema.c */

/** Check 6: the type's attr_specs (names, kinds, flags, defaults, docs); SKIP
 *  when it declares none. */
void check_schema(const type_info *ti);

/* -------------------------------------------------------------- describe.c */

/** Check 7: describe for an instance created from `attrs` and the input
 *  `shapes` infer_shape accepts (MACs, window, class name, children that
 *  account for the layer's parameters, the same result twice); SKIP when the
 *  type has no describe. */
void check_describe(const type_info *ti, const char *label, const ply_attrs *attrs, int n_inputs,
                    const ply_shape *shapes);

/* --------------------------------------------------------------- layouts.c */

/** Check 8: for a type with eval_layouts and forward_layout (ABI 1.7), an
 *  instance created from `attrs` in evaluation mode and the input `shapes`:
 *  eval_layouts succeeds with NCHW in every set, and forward_layout in each
 *  offered combination involving NCHW16C equals forward (within 1e-5
 *  relative), writes every element and writes padding lanes as 0. Silent for
 *  a type without the slots; one slot alone is check_type's failure. */
void check_layouts(const type_info *ti, const char *label, const ply_attrs *attrs, int n_inputs,
                   const ply_shape *shapes);

#endif
