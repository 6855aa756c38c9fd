/*
 * user_activation: an element-wise activation whose function the user supplies,
 * called through libffi.
 *
 * The function comes either from the host's registry of named functions
 * (`function: NAME`: the application registered NAME with
 * ply_runtime_register_function / ply_runtime_register_activation in C, or
 * UserActivation.register(as:in:) / Runtime.registerFunction in Swift, and
 * the plugin obtains it through host->resolve_function), or from a shared
 * library (`library` + `symbol`) that the host opens for it -- which runs
 * that library's code, and which the application can switch off
 * (Runtime.Options.allowUserLibraries, `ply --no-user-libraries`).
 * Function pointers never come from attributes: `address`,
 * `derivative_address`, `owner`, `owner_retain` and `owner_release` (accepted
 * before ABI 1.2) are refused, since any model file could otherwise make the
 * process call an arbitrary address.
 * `signature` says how to call it:
 *
 *   scalar      float(float)            called once per element
 *               float(float, float...)  extra parameters from `params` (floats)
 *               double(double[, double...])  the same in double precision
 *   vectorised  void(const float *, float *, int64_t)
 *                                       called once per tensor with n = numel
 *
 * The call interface is prepared once at create (ffi_prep_cif); forward and
 * backward only ffi_call. An optional derivative of the same shape
 * (the `derivative` symbol, or the registered derivative) gives dy/dx: for a scalar
 * signature f'(x, params...), for a vectorised one it fills out[i] = f'(in[i]).
 * A registered function brings its own signature and derivative; a
 * `signature` attribute given with `function` must equal the registered one.
 * Without one, backward uses central differences with the step
 *
 *   h = fd_step * max(1, |x|),   fd_step = cbrt(machine epsilon)
 *
 * of the signature's type (4.9e-3 for float, 6.1e-6 for double), which balances
 * the O(h^2) truncation error against the O(eps/h) rounding error; x + h and
 * x - h are rounded to that type and the derivative divides by their actual
 * distance. `fd_step` overrides the relative step.
 *
 * Every error (missing library or symbol, unknown signature, wrong number of
 * params, unknown attribute) is reported by create, i.e. when the model is
 * loaded, never in the middle of training.
 *
 * Scalar functions run on the host's thread pool (`parallel`, default true), so
 * they must be safe to call concurrently (pure functions are); set
 * `parallel: false` for one that is not. A vectorised function is called once,
 * from the calling thread.
 *
 * Registered functions (and libraries the host opened) stay valid for as long
 * as the host table does, i.e. longer than any layer: the layer owns nothing
 * of them.
 */
#include <dlfcn.h>
#include <errno.h>
#include <ffi.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ply/plugin.h"
#include "plugin_support.h"
#include "user_activation_signature.h"

#define UA_GRAIN 2048 /* elements per parallel chunk on the scalar path */

typedef void (*ua_fn)(void);
typedef void (*ua_vec_fn)(const float *, float *, int64_t);

struct ply_layer {
    const ply_host *host;
    void *library; /* dlopen handle when an ABI 1.0/1.1 host could not open it for us */
    int vectorised;
    ua_precision precision;
    int32_t arity; /* number of arguments of a scalar signature (x + params) */
    int parallel;
    double fd_step;
    ua_fn fn, dfn; /* dfn may be NULL: central differences */
    float paramf[UA_MAX_ARGS];
    double paramd[UA_MAX_ARGS];
    ffi_type *arg_types[UA_MAX_ARGS];
    ffi_cif cif;
    float *scratch; /* 2 * scratch_count floats for vectorised finite differences */
    int64_t scratch_count;
};

/* ------------------------------------------------------------------------ */
/* Attributes                                                               */
/* ------------------------------------------------------------------------ */

/* The attribute schema (ABI 1.2): the host checks names and kinds against it before create, and
 * create checks names against it too (for hosts older than 1.2, which pass attributes unchecked).
 * No attribute carries a pointer: native functions come from the host's registry by name
 * (`function`), or from a library the model names (`library` + `symbol`), which the host may refuse. */
static const ply_attr_spec ua_specs[] = {
    {.name = "function", .kind = PLY_ATTR_STRING, .default_text = NULL,
     .doc = "a function registered with the runtime under this name (ply_runtime_register_function, "
            "UserActivation.register(as:in:)); its signature and derivative come with it"},
    {.name = "library", .kind = PLY_ATTR_STRING, .default_text = NULL,
     .doc = "shared library the host opens for `symbol` (and `derivative`); runs that library's code"},
    {.name = "symbol", .kind = PLY_ATTR_STRING, .default_text = NULL, .doc = "the function's name in `library`"},
    {.name = "signature", .kind = PLY_ATTR_STRING, .default_text = NULL,
     .doc = "how to call it: float(float[, float...]), double(double[, double...]) or "
            "void(const float *, float *, int64_t); required with `library`, checked against a registration"},
    {.name = "params", .kind = PLY_ATTR_FLOATS, .flags = PLY_ATTR_SCALAR_OR_LIST, .default_text = "[]",
     .doc = "values of the scalar signature's extra parameters after x"},
    {.name = "derivative", .kind = PLY_ATTR_STRING, .default_text = NULL,
     .doc = "symbol in `library` of dy/dx with the same signature; absent: central differences"},
    {.name = "fd_step", .kind = PLY_ATTR_FLOAT, .default_text = NULL,
     .doc = "relative step of the central differences, in (0, 1); absent: cbrt of the signature type's epsilon"},
    {.name = "parallel", .kind = PLY_ATTR_BOOL, .default_text = "true",
     .doc = "call a scalar function from several threads at once (it must be thread-safe)"},
    PLY_SPEC_END,
};

/* Attributes that used to carry pointers (before ABI 1.2): refused by name. */
static const char *const pointer_attributes[] = {"address", "derivative_address", "owner", "owner_retain",
                                                 "owner_release"};

/* Whether the host has the ABI 1.2 resolve_function slot. */
static int host_resolves(const ply_host *host) {
    return host->struct_size >= offsetof(ply_host, resolve_function) + sizeof host->resolve_function &&
           host->resolve_function != NULL;
}

/* Reads an optional attribute through one of the host's readers: 1 if present,
 * 0 if absent, -1 on error (message already set). */
#define READ_OPT(reader, name, out) \
    ((st = host->reader(host, attrs, name, out)) == PLY_OK ? 1 : st == PLY_ERR_NOT_FOUND ? 0 : -1)

static ply_status fail(ply_layer *self, ply_status st);

static ply_status open_library(ply_layer *self, const char *library);

/* The symbol `symbol` of `library` (attribute `attr`), opened by the host when it can. */
static ply_status resolve(ply_layer *self, const char *library, const char *symbol, const char *attr, ua_fn *out) {
    const ply_host *host = self->host;
    if (host_resolves(host)) {
        /* On failure the host's message names the library and the symbol (or says that
         * user libraries are switched off). */
        return host->resolve_function(host, library, symbol, NULL, out, NULL);
    }
    if (!self->library) {
        ply_status st = open_library(self, library);
        if (st != PLY_OK) return st;
    }
    dlerror();
    void *sym = dlsym(self->library, symbol);
    if (!sym) {
        const char *why = dlerror();
        return ply_errorf(host, PLY_ERR_NOT_FOUND, "user_activation: attribute '%s': symbol '%s' not found in '%s'%s%s",
                          attr, symbol, library, why ? ": " : "", why ? why : "");
    }
    memcpy(out, &sym, sizeof sym); /* object pointer -> function pointer, as POSIX allows */
    return PLY_OK;
}

/* Opens `library` ourselves: only for an ABI 1.0/1.1 host without resolve_function. */
static ply_status open_library(ply_layer *self, const char *library) {
    const ply_host *host = self->host;
    if (strchr(library, '/')) {
        struct stat st;
        if (stat(library, &st) != 0) {
            char cwd[512];
            int relative = library[0] != '/';
            if (!relative || !getcwd(cwd, sizeof cwd)) cwd[0] = 0;
            return ply_errorf(host, PLY_ERR_NOT_FOUND, "user_activation: attribute 'library': '%s' not found (%s)%s%s",
                              library, strerror(errno), cwd[0] ? "; relative to the current directory " : "", cwd);
        }
    }
    dlerror();
    self->library = dlopen(library, RTLD_NOW | RTLD_LOCAL);
    if (!self->library) {
        const char *why = dlerror();
        return ply_errorf(host, PLY_ERR_NOT_FOUND, "user_activation: attribute 'library': cannot load '%s': %s", library,
                          why ? why : "unknown dlopen error");
    }
    return PLY_OK;
}

static ply_status read_params(ply_layer *self, const ply_attrs *attrs, int32_t *count) {
    const ply_attr *a = ply_find_attr(attrs, "params");
    *count = 0;
    if (!a) return PLY_OK;
    double values[UA_MAX_ARGS];
    int32_t n;
    switch (a->kind) {
    case PLY_ATTR_FLOAT: n = 1; values[0] = a->v.f; break;
    case PLY_ATTR_INT: n = 1; values[0] = (double)a->v.i; break;
    case PLY_ATTR_FLOATS:
    case PLY_ATTR_INTS:
        n = a->count;
        if (n < 0 || n > UA_MAX_ARGS - 1)
            return ply_errorf(self->host, PLY_ERR_INVALID_ARGUMENT,
                              "user_activation: attribute 'params' has %d values; at most %d are supported", (int)n,
                              UA_MAX_ARGS - 1);
        for (int32_t i = 0; i < n; i++)
            values[i] = a->kind == PLY_ATTR_FLOATS ? a->v.floats[i] : (double)a->v.ints[i];
        break;
    default:
        return ply_errorf(self->host, PLY_ERR_INVALID_ARGUMENT,
                          "user_activation: attribute 'params' must be a list of floats");
    }
    for (int32_t i = 0; i < n; i++) {
        self->paramd[i] = values[i];
        self->paramf[i] = (float)values[i];
    }
    *count = n;
    return PLY_OK;
}

static ply_status ua_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    *out = NULL;
    for (int32_t i = 0; attrs && i < attrs->count; i++) {
        const char *name = attrs->items[i].name ? attrs->items[i].name : "";
        for (size_t k = 0; k < sizeof pointer_attributes / sizeof pointer_attributes[0]; k++)
            if (strcmp(name, pointer_attributes[k]) == 0)
                return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                                  "user_activation: attribute '%s' is refused: function pointers never come from "
                                  "attributes (a model file could make the process call any address); register "
                                  "the function with the runtime (ply_runtime_register_function, "
                                  "UserActivation.register(as:in:)) and name it with `function: NAME`",
                                  name);
        int known = 0;
        for (const ply_attr_spec *spec = ua_specs; spec->name; spec++) known = known || strcmp(name, spec->name) == 0;
        if (!known)
            return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                              "user_activation: unknown attribute '%s'; known: function, library, symbol, signature, "
                              "params, derivative, fd_step, parallel",
                              name);
    }
    ply_layer *self = host->alloc(host, sizeof *self);
    if (!self) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "user_activation: out of memory");
    memset(self, 0, sizeof *self);
    self->host = host;
    self->parallel = 1;

    ply_status st;
    const char *function = NULL, *library = NULL, *symbol = NULL, *signature = NULL, *derivative = NULL;
    int has_function, has_library, has_symbol, has_signature, has_derivative, has_step, has_parallel;
    double fd_step = 0;
    int32_t parallel = 1;
    if ((has_function = READ_OPT(attr_string, "function", &function)) < 0) return fail(self, st);
    if ((has_library = READ_OPT(attr_string, "library", &library)) < 0) return fail(self, st);
    if ((has_symbol = READ_OPT(attr_string, "symbol", &symbol)) < 0) return fail(self, st);
    if ((has_signature = READ_OPT(attr_string, "signature", &signature)) < 0) return fail(self, st);
    if ((has_derivative = READ_OPT(attr_string, "derivative", &derivative)) < 0) return fail(self, st);
    if ((has_step = READ_OPT(attr_float, "fd_step", &fd_step)) < 0) return fail(self, st);
    if ((has_parallel = READ_OPT(attr_bool, "parallel", &parallel)) < 0) return fail(self, st);
    (void)has_parallel;

    /* Where the function comes from. */
    if (has_function && (has_library || has_symbol))
        return fail(self, ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                                     "user_activation: give either 'function' (registered with the runtime) or "
                                     "'library' + 'symbol', not both"));
    if (!has_function && !has_library && !has_symbol)
        return fail(self, ply_errorf(host, PLY_ERR_NOT_FOUND,
                                     "user_activation: missing attribute 'function' (a function registered with the "
                                     "runtime) or 'library' + 'symbol': say which function to call"));
    if (!has_function && !has_library)
        return fail(self, ply_errorf(host, PLY_ERR_NOT_FOUND,
                                     "user_activation: attribute 'symbol' needs 'library' (the shared library "
                                     "that exports '%s')",
                                     symbol));
    if (has_library && !has_symbol)
        return fail(self, ply_errorf(host, PLY_ERR_NOT_FOUND,
                                     "user_activation: missing attribute 'symbol': the function to call in '%s'",
                                     library));
    if (has_derivative && !has_library)
        return fail(self, ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                                     "user_activation: attribute 'derivative' (a symbol name) needs 'library'; "
                                     "a registered function brings its own derivative"));
    if (has_step && !(fd_step > 0 && fd_step < 1))
        return fail(self, ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                                     "user_activation: attribute 'fd_step' must be in (0, 1), got %g", fd_step));

    /* A registered function: resolved by the host, with its signature and derivative. */
    if (has_function) {
        if (!host_resolves(host))
            return fail(self, ply_errorf(host, PLY_ERR_UNSUPPORTED,
                                         "user_activation: attribute 'function' needs a host with "
                                         "resolve_function (Ply ABI 1.2); this host speaks ABI %u.%u",
                                         (unsigned)PLY_ABI_MAJOR_OF(host->abi_version),
                                         (unsigned)PLY_ABI_MINOR_OF(host->abi_version)));
        const char *registered = NULL;
        if ((st = host->resolve_function(host, NULL, function, &registered, &self->fn, &self->dfn)) != PLY_OK)
            return fail(self, st);
        if (!self->fn || !registered)
            return fail(self, ply_errorf(host, PLY_ERR_INTERNAL,
                                         "user_activation: the host resolved '%s' without a function or signature",
                                         function));
        if (has_signature && strcmp(signature, registered) != 0)
            return fail(self, ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                                         "user_activation: attribute 'signature' \"%s\" differs from the signature "
                                         "\"%s\" function '%s' was registered with (leave 'signature' out)",
                                         signature, registered, function));
        signature = registered;
        has_signature = 1;
    }

    /* The signature. */
    if (!has_signature)
        return fail(self, ply_errorf(host, PLY_ERR_NOT_FOUND,
                                     "user_activation: missing attribute 'signature', e.g. \"float(float)\"; " UA_SUPPORTED));
    ua_signature sig;
    const char *why;
    if (!ua_parse_signature(signature, &sig, &why))
        return fail(self, ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                                     "user_activation: attribute 'signature' \"%s\" cannot be parsed: %s; " UA_SUPPORTED,
                                     signature, why));
    ua_form form;
    if ((st = ua_classify(self->host, &sig, signature, &form)) != PLY_OK) return fail(self, st);
    self->vectorised = form.vectorised;
    self->precision = form.precision;
    self->arity = form.arity;

    int32_t nparams;
    if ((st = read_params(self, attrs, &nparams)) != PLY_OK) return fail(self, st);
    int32_t wanted = self->vectorised ? 0 : self->arity - 1;
    if (nparams != wanted) {
        if (self->vectorised)
            return fail(self, ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                                         "user_activation: attribute 'params' has %d value%s, but the vectorised "
                                         "signature \"%s\" takes none",
                                         (int)nparams, nparams == 1 ? "" : "s", signature));
        if (!ply_find_attr(attrs, "params"))
            return fail(self, ply_errorf(host, PLY_ERR_NOT_FOUND,
                                         "user_activation: missing attribute 'params': signature \"%s\" takes %d "
                                         "extra parameter%s after x (give %d float%s)",
                                         signature, (int)wanted, wanted == 1 ? "" : "s", (int)wanted,
                                         wanted == 1 ? "" : "s"));
        return fail(self, ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                                     "user_activation: attribute 'params' has %d value%s, but signature \"%s\" takes "
                                     "%d extra parameter%s after x",
                                     (int)nparams, nparams == 1 ? "" : "s", signature, (int)wanted,
                                     wanted == 1 ? "" : "s"));
    }
    self->fd_step = has_step ? fd_step : self->precision == UA_F64 ? cbrt(DBL_EPSILON) : cbrt(FLT_EPSILON);
    self->parallel = parallel != 0;

    /* The function and its derivative. */
    if (has_library) {
        if ((st = resolve(self, library, symbol, "symbol", &self->fn)) != PLY_OK) return fail(self, st);
        if (has_derivative && (st = resolve(self, library, derivative, "derivative", &self->dfn)) != PLY_OK)
            return fail(self, st);
    }

    /* The call interface, once (the derivative has the same one). */
    ffi_type *ret;
    if (self->vectorised) {
        ret = &ffi_type_void;
        self->arg_types[0] = &ffi_type_pointer;
        self->arg_types[1] = &ffi_type_pointer;
        self->arg_types[2] = &ffi_type_sint64;
    } else {
        ret = self->precision == UA_F64 ? &ffi_type_double : &ffi_type_float;
        for (int32_t i = 0; i < self->arity; i++) self->arg_types[i] = ret;
    }
    ffi_status fs = ffi_prep_cif(&self->cif, FFI_DEFAULT_ABI, (unsigned)self->arity, ret, self->arg_types);
    if (fs != FFI_OK)
        return fail(self, ply_errorf(host, PLY_ERR_INTERNAL,
                                     "user_activation: ffi_prep_cif failed for \"%s\" (ffi_status %d)", signature,
                                     (int)fs));

    *out = self;
    return PLY_OK;
}

static void ua_destroy(ply_layer *self) {
    if (!self) return;
    if (self->library) dlclose(self->library);
    self->host->free(self->host, self->scratch);
    self->host->free(self->host, self);
}

/* Frees a half-built instance and passes the (already reported) status on. */
static ply_status fail(ply_layer *self, ply_status st) {
    ua_destroy(self);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Calls                                                                    */
/* ------------------------------------------------------------------------ */

typedef union {
    float f;
    double d;
    ffi_arg a;
} ua_ret;

/* Argument pointers for one chunk: av[0] is set per call, the rest point at
 * the layer's params. */
static void init_args(ply_layer *self, void **av) {
    for (int32_t i = 1; i < self->arity; i++)
        av[i] = self->precision == UA_F64 ? (void *)&self->paramd[i - 1] : (void *)&self->paramf[i - 1];
}

static inline float call_f(ply_layer *self, ua_fn fn, float x, void **av) {
    ua_ret r;
    av[0] = &x;
    ffi_call(&self->cif, fn, &r, av);
    return r.f;
}
static inline double call_d(ply_layer *self, ua_fn fn, double x, void **av) {
    ua_ret r;
    av[0] = &x;
    ffi_call(&self->cif, fn, &r, av);
    return r.d;
}

/* f'(x) for a scalar signature: the derivative function or central differences. */
static inline float derivative_at(ply_layer *self, float x, void **av) {
    if (self->precision == UA_F32) {
        if (self->dfn) return call_f(self, self->dfn, x, av);
        float h = (float)self->fd_step * fmaxf(1.0f, fabsf(x));
        float xp = x + h, xm = x - h;
        float fp = call_f(self, self->fn, xp, av), fm = call_f(self, self->fn, xm, av);
        return (float)(((double)fp - (double)fm) / ((double)xp - (double)xm));
    }
    double xd = x;
    if (self->dfn) return (float)call_d(self, self->dfn, xd, av);
    double h = self->fd_step * fmax(1.0, fabs(xd));
    double xp = xd + h, xm = xd - h;
    return (float)((call_d(self, self->fn, xp, av) - call_d(self, self->fn, xm, av)) / (xp - xm));
}

typedef struct {
    ply_layer *self;
    const float *x, *dy;
    float *out;
} ua_job;

static void forward_chunk(void *context, int64_t begin, int64_t end) {
    ua_job *job = context;
    ply_layer *self = job->self;
    void *av[UA_MAX_ARGS];
    init_args(self, av);
    if (self->precision == UA_F32) {
        for (int64_t i = begin; i < end; i++) job->out[i] = call_f(self, self->fn, job->x[i], av);
    } else {
        for (int64_t i = begin; i < end; i++) job->out[i] = (float)call_d(self, self->fn, job->x[i], av);
    }
}

static void backward_chunk(void *context, int64_t begin, int64_t end) {
    ua_job *job = context;
    ply_layer *self = job->self;
    void *av[UA_MAX_ARGS];
    init_args(self, av);
    for (int64_t i = begin; i < end; i++) job->out[i] = job->dy[i] * derivative_at(self, job->x[i], av);
}

static void run(ply_layer *self, int64_t n, ply_parallel_fn fn, ua_job *job) {
    if (self->parallel && n > UA_GRAIN)
        self->host->parallel_for(self->host, n, UA_GRAIN, fn, job);
    else
        fn(job, 0, n);
}

static void call_vec(ply_layer *self, ua_fn fn, const float *in, float *out, int64_t n) {
    void *av[3] = {&in, &out, &n};
    ua_ret r;
    ffi_call(&self->cif, fn, &r, av);
}

/* ------------------------------------------------------------------------ */
/* vtable                                                                   */
/* ------------------------------------------------------------------------ */

static ply_status check_tensor(ply_layer *self, const char *what, const ply_tensor *t) {
    if (t->dtype != PLY_DTYPE_F32 || t->strides != NULL)
        return ply_errorf(self->host, PLY_ERR_UNSUPPORTED, "user_activation: %s must be a compact float32 tensor",
                          what);
    return PLY_OK;
}

static ply_status ua_infer_shape(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, ply_shape *output) {
    (void)self;
    (void)n_inputs;
    *output = inputs[0];
    return PLY_OK;
}

static ply_status ua_forward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output) {
    (void)n_inputs;
    ply_status st;
    if ((st = check_tensor(self, "input 0", &inputs[0])) != PLY_OK) return st;
    if ((st = check_tensor(self, "the output", output)) != PLY_OK) return st;
    int64_t n = ply_shape_numel(&inputs[0].shape);
    if (n == 0) return PLY_OK;
    if (self->vectorised) {
        call_vec(self, self->fn, inputs[0].data, output->data, n);
        return PLY_OK;
    }
    ua_job job = {self, inputs[0].data, NULL, output->data};
    run(self, n, forward_chunk, &job);
    return PLY_OK;
}

static ply_status ua_backward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, const ply_tensor *output,
                              const ply_tensor *grad_output, ply_tensor *grad_inputs) {
    (void)n_inputs;
    (void)output;
    float *dx = grad_inputs[0].data;
    if (!dx) return PLY_OK;
    ply_status st;
    if ((st = check_tensor(self, "input 0", &inputs[0])) != PLY_OK) return st;
    if ((st = check_tensor(self, "the output gradient", grad_output)) != PLY_OK) return st;
    if ((st = check_tensor(self, "the input gradient", &grad_inputs[0])) != PLY_OK) return st;
    const float *x = inputs[0].data, *dy = grad_output->data;
    int64_t n = ply_shape_numel(&inputs[0].shape);
    if (n == 0) return PLY_OK;
    if (!self->vectorised) {
        ua_job job = {self, x, dy, dx};
        run(self, n, backward_chunk, &job);
        return PLY_OK;
    }
    if (self->dfn) {
        call_vec(self, self->dfn, x, dx, n);
        for (int64_t i = 0; i < n; i++) dx[i] *= dy[i];
        return PLY_OK;
    }
    /* Central differences, two calls over the whole tensor. */
    if (self->scratch_count < n) {
        float *s = self->host->alloc(self->host, (size_t)n * 2 * sizeof(float));
        if (!s)
            return ply_errorf(self->host, PLY_ERR_OUT_OF_MEMORY,
                              "user_activation: out of memory for finite-difference scratch (%lld floats)",
                              (long long)(2 * n));
        self->host->free(self->host, self->scratch);
        self->scratch = s;
        self->scratch_count = n;
    }
    float *shifted = self->scratch, *values = self->scratch + n;
    float step = (float)self->fd_step;
    for (int64_t i = 0; i < n; i++) shifted[i] = x[i] + step * fmaxf(1.0f, fabsf(x[i]));
    call_vec(self, self->fn, shifted, dx, n); /* dx holds f(x + h) for now */
    for (int64_t i = 0; i < n; i++) shifted[i] = x[i] - step * fmaxf(1.0f, fabsf(x[i]));
    call_vec(self, self->fn, shifted, values, n);
    for (int64_t i = 0; i < n; i++) {
        float h = step * fmaxf(1.0f, fabsf(x[i]));
        float xp = x[i] + h, xm = x[i] - h;
        dx[i] = dy[i] * (float)(((double)dx[i] - (double)values[i]) / ((double)xp - (double)xm));
    }
    return PLY_OK;
}

// No describe: no MACs, identity window.
static const ply_layer_type user_activation_type = {
    .struct_size = sizeof(ply_layer_type),
    .abi_version = PLY_ABI_VERSION,
    .name = "user_activation",
    .doc = "a user's element-wise function called through libffi (function registered with the runtime, or "
           "library+symbol; signature, params)",
    .min_inputs = 1,
    .max_inputs = 1,
    .create = ua_create,
    .destroy = ua_destroy,
    .infer_shape = ua_infer_shape,
    .forward = ua_forward,
    .backward = ua_backward,
    .attr_specs = ua_specs,
    .inputs_doc = "x: any shape",
};

static const ply_layer_type *const types[] = {&user_activation_type};

static const ply_plugin plugin = {
    sizeof(ply_plugin), PLY_ABI_VERSION, "ply.user_activation", "1.0.0", 1, 0, types,
};

PLY_BUILTIN_ENTRY(user_activation) {
    if (PLY_ABI_MAJOR_OF(host->abi_version) != PLY_ABI_VERSION_MAJOR) {
        host->set_error(host, PLY_ERR_ABI, "ply.user_activation: built for Ply ABI 1.x");
        return NULL;
    }
    return &plugin;
}
