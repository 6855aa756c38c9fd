/*
 * Check 7: a layer's `describe` (ABI 1.2, plugin.h's ply_layer_info), on the
 * sample shapes of the other checks (a golden case's inputs, or [2, 3, 4, 5]).
 * `ply summary` is built from nothing else, so a describe that fails, lies or
 * changes between calls shows as a wrong summary or a refused one:
 *
 *   - it succeeds for shapes infer_shape accepts (plugin.h: MUST NOT fail);
 *   - it leaves the host-owned fields (struct_size, abi_version, host_context,
 *     add_child) as the host set them;
 *   - MACs >= 0; window is a ply_window_kind; a spatial window has finite
 *     kernels >= 1 and strides > 0; a class_name is 1..128 letters, digits,
 *     '_' or '.';
 *   - each child given to add_child has a type with a name, an instance, its
 *     input shapes and an output shape that is what the child's own
 *     infer_shape gives for them; a name, when given, is dotted identifiers
 *     ("downsample.0"); children are described in turn, by the same rules;
 *   - when named children are reported, their trainable parameters, each
 *     prefixed with the child's name and '.', are the layer's own trainable
 *     parameters, name for name and in order (the children account for the
 *     layer: plugin.h's add_child; `ply summary` otherwise refuses to expand it);
 *   - a second call gives the same MACs, window and children (describe is pure).
 */
#include "check.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CHILDREN 64
#define MAX_DEPTH 8
#define MAX_NAMES 512

/* What one describe call reported. */
typedef struct described {
    int64_t macs;
    int32_t window;
    double kernel[2], stride[2];
    int children;       /* add_child calls */
    bool named;         /* any child with a name */
    int n_names;        /* the trainable parameter names the children imply */
    char *names[MAX_NAMES];
    int64_t child_macs; /* the children's MACs, theirs included */
    char problem[400];  /* the first problem found, or "" */
} described;

typedef struct describe_context {
    described *d;
    int depth;
    const char *label;
} describe_context;

static void describe_layer(const ply_layer_type *type, ply_layer *layer, int n_inputs, const ply_shape *inputs,
                           int depth, const char *label, described *d);

static void problem(described *d, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void problem(described *d, const char *format, ...) {
    if (d->problem[0]) return;
    va_list args;
    va_start(args, format);
    vsnprintf(d->problem, sizeof d->problem, format, args);
    va_end(args);
}

static void free_names(described *d) {
    for (int i = 0; i < d->n_names; i++) free(d->names[i]);
    d->n_names = 0;
}

/* Dotted identifiers: "conv1", "downsample.0", "branch3x3_1". */
static bool child_name_ok(const char *s) {
    size_t n = strlen(s);
    if (n > 127 || s[0] == '.' || s[n - 1] == '.') return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.' && s[i + 1] == '.') return false;
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '.')) return false;
    }
    return true;
}

/* The type behind a child's type pointer, copied within its struct_size (a registered type's full copy
 * when it is one). NULL when it cannot be read. */
static bool child_type(const ply_layer_type *type, type_info *out) {
    const type_info *known = type->name ? host_find_type(type->name) : NULL;
    if (known && (&known->t == type || known->original == type)) {
        *out = *known;
        return true;
    }
    if (type->struct_size < offsetof(ply_layer_type, fuse_activation)) return false;
    host_copy_type(type, out, "(unregistered)");
    return true;
}

static ply_status add_child(ply_layer_info *info, const char *name, const ply_layer_type *type, ply_layer *child,
                            int32_t n_inputs, const ply_shape *inputs, const ply_shape *output) {
    describe_context *ctx = info->host_context;
    described *d = ctx->d;
    char label[300], a[100], b[100];
    int index = d->children++;
    snprintf(label, sizeof label, "%s: add_child #%d%s%s%s", ctx->label, index, name && *name ? " '" : "",
             name && *name ? name : "", name && *name ? "'" : "");
    if (name && *name && !child_name_ok(name))
        problem(d, "%s: the name must be dotted identifiers (\"conv1\", \"downsample.0\"), at most 127 characters",
                label);
    if (!type || !type->name || !child) {
        problem(d, "%s: needs the child's type (with a name) and its instance, got type %p, instance %p", label,
                (const void *)type, (void *)child);
        return PLY_ERR_INVALID_ARGUMENT;
    }
    if (n_inputs < 0 || n_inputs > MAX_INPUTS || (n_inputs > 0 && !inputs) || !output) {
        problem(d, "%s: needs the child's input shapes (0..%d) and its output shape, got %d input(s), inputs %p, "
                "output %p", label, MAX_INPUTS, (int)n_inputs, (const void *)inputs, (const void *)output);
        return PLY_ERR_INVALID_ARGUMENT;
    }
    type_info ti;
    if (!child_type(type, &ti)) {
        problem(d, "%s: the child's type %s has struct_size %u, too small to be a layer type", label, type->name,
                type->struct_size);
        return PLY_ERR_INVALID_ARGUMENT;
    }
    /* The output it reports is the child's own infer_shape for those inputs. */
    ply_shape computed = {0};
    host_error_clear();
    report_doing("%s: %s.infer_shape", label, type->name);
    ply_status st = ti.t.infer_shape(child, n_inputs, inputs, &computed);
    if (st != PLY_OK)
        problem(d, "%s (%s): the child's infer_shape refuses the input shapes reported for it (input 0 %s): %s",
                label, type->name, n_inputs ? shape_str(&inputs[0], a, sizeof a) : "none", host_error_message());
    else if (!shape_eq(&computed, output))
        problem(d, "%s (%s): reported output shape %s, but the child's infer_shape gives %s for those inputs", label,
                type->name, shape_str(output, a, sizeof a), shape_str(&computed, b, sizeof b));
    /* Its trainable parameters, prefixed with its name. */
    ply_param *params = NULL;
    char why[300];
    int n = layer_params(&ti, child, &params, why, sizeof why);
    if (n < 0) problem(d, "%s (%s): %s", label, type->name, why);
    if (name && *name) d->named = true;
    for (int i = 0; i < n; i++) {
        if (params[i].kind != PLY_PARAM_WEIGHT) continue;
        if (d->n_names == MAX_NAMES) break;
        size_t size = (name ? strlen(name) : 0) + strlen(params[i].name) + 2;
        char *full = malloc(size);
        snprintf(full, size, "%s%s%s", name && *name ? name : "", name && *name ? "." : "", params[i].name);
        d->names[d->n_names++] = full;
    }
    free(params);
    /* Described in turn (its own children checked against its own parameters). */
    if (ctx->depth + 1 >= MAX_DEPTH) {
        problem(d, "%s: children nest more than %d levels deep", label, MAX_DEPTH);
        return PLY_OK;
    }
    if (ti.t.describe) {
        described inner;
        memset(&inner, 0, sizeof inner);
        describe_layer(&ti.t, child, n_inputs, inputs, ctx->depth + 1, label, &inner);
        if (inner.problem[0]) problem(d, "%s", inner.problem);
        int64_t sum = inner.macs + inner.child_macs;
        d->child_macs = sum < inner.macs || d->child_macs > INT64_MAX - sum ? INT64_MAX : d->child_macs + sum;
        free_names(&inner);
    }
    return PLY_OK;
}

/* One describe call into `d`, and the checks of what it reported. */
static void describe_layer(const ply_layer_type *type, ply_layer *layer, int n_inputs, const ply_shape *inputs,
                           int depth, const char *label, described *d) {
    describe_context ctx = {.d = d, .depth = depth, .label = label};
    ply_layer_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = (uint32_t)sizeof info;
    info.abi_version = PLY_ABI_VERSION;
    info.host_context = &ctx;
    info.add_child = add_child;
    host_error_clear();
    report_doing("%s: describe", label);
    ply_status st = type->describe(layer, n_inputs, inputs, &info);
    if (st != PLY_OK) {
        char a[100];
        problem(d, "%s: describe returned %s for input 0 %s, which infer_shape accepts (it must not fail then): %s",
                label, status_name(st), n_inputs ? shape_str(&inputs[0], a, sizeof a) : "none",
                host_error_message());
        return;
    }
    if (info.struct_size != sizeof info || info.abi_version != PLY_ABI_VERSION || info.host_context != &ctx ||
        info.add_child != add_child)
        problem(d, "%s: describe changed the host-owned fields of ply_layer_info (struct_size, abi_version, "
                "host_context, add_child)", label);
    d->macs = info.macs;
    d->window = info.window;
    for (int i = 0; i < 2; i++) {
        d->kernel[i] = info.kernel[i];
        d->stride[i] = info.stride[i];
    }
    if (info.macs < 0) problem(d, "%s: describe reported %lld MACs (must be >= 0)", label, (long long)info.macs);
    if (info.window == PLY_WINDOW_SPATIAL) {
        for (int i = 0; i < 2; i++)
            if (!isfinite(info.kernel[i]) || info.kernel[i] < 1 || !isfinite(info.stride[i]) || info.stride[i] <= 0)
                problem(d, "%s: describe reported a spatial window of kernel [%g, %g] and stride [%g, %g] (kernels "
                        "must be finite and >= 1, strides finite and > 0)", label, info.kernel[0], info.kernel[1],
                        info.stride[0], info.stride[1]);
    } else if (info.window != PLY_WINDOW_IDENTITY && info.window != PLY_WINDOW_GLOBAL) {
        problem(d, "%s: describe reported window kind %d (PLY_WINDOW_IDENTITY 0, SPATIAL 1 or GLOBAL 2)", label,
                (int)info.window);
    }
    if (info.class_name) {
        size_t n = strlen(info.class_name);
        bool ok = n >= 1 && n <= 128;
        for (size_t i = 0; ok && i < n; i++)
            ok = isalnum((unsigned char)info.class_name[i]) || info.class_name[i] == '_' || info.class_name[i] == '.';
        if (!ok)
            problem(d, "%s: describe reported class_name \"%.40s\" (1..128 letters, digits, '_' and '.')", label,
                    info.class_name);
    }
}

/* The layer's own trainable parameter names against what its named children imply. */
static void check_children_add_up(const type_info *ti, ply_layer *layer, const char *label, described *d) {
    if (!d->named) return;
    ply_param *params = NULL;
    char why[300];
    int n = layer_params(ti, layer, &params, why, sizeof why);
    if (n < 0) {
        problem(d, "%s: %s", label, why);
        return;
    }
    int k = 0;
    for (int i = 0; i < n && !d->problem[0]; i++) {
        if (params[i].kind != PLY_PARAM_WEIGHT) continue;
        if (k >= d->n_names)
            problem(d, "%s: the layer's parameter '%s' belongs to none of the children it reports (their "
                    "parameters, prefixed with their names, must be the layer's own, in order)", label,
                    params[i].name);
        else if (strcmp(d->names[k], params[i].name) != 0)
            problem(d, "%s: the layer's trainable parameter %d is '%s', but the children it reports imply '%s' there "
                    "(their parameters, prefixed with their names, must be the layer's own, in order)", label, k,
                    params[i].name, d->names[k]);
        k++;
    }
    if (!d->problem[0] && k < d->n_names)
        problem(d, "%s: the children imply parameter '%s', which the layer does not have (their parameters, prefixed "
                "with their names, must be the layer's own, in order)", label, d->names[k]);
    free(params);
}

void check_describe(const type_info *ti, const char *label, const ply_attrs *attrs, int n_inputs,
                    const ply_shape *shapes) {
    if (!ti->t.describe) {
        report_skip("%s: no describe (optional): summaries count 0 MACs, an identity window and no children", label);
        return;
    }
    ply_layer *layer = NULL;
    long live0 = host_live_allocations();
    host_error_clear();
    report_doing("%s: create for describe", label);
    if (ti->t.create(host_table(), attrs, &layer) != PLY_OK || !layer) {
        report_skip("%s: describe not checked: create failed: %s", label, host_error_message());
        return;
    }
    char a[100];
    ply_shape out = {0};
    host_error_clear();
    report_doing("%s: infer_shape before describe", label);
    if (ti->t.infer_shape(layer, n_inputs, shapes, &out) != PLY_OK) {
        report_skip("%s: describe not checked: infer_shape refuses input 0 %s: %s", label,
                    shape_str(&shapes[0], a, sizeof a), host_error_message());
        ti->t.destroy(layer);
        return;
    }
    described first, second;
    memset(&first, 0, sizeof first);
    memset(&second, 0, sizeof second);
    describe_layer(&ti->t, layer, n_inputs, shapes, 0, label, &first);
    if (!first.problem[0]) check_children_add_up(ti, layer, label, &first);
    if (!first.problem[0]) {
        describe_layer(&ti->t, layer, n_inputs, shapes, 0, label, &second);
        if (!second.problem[0] &&
            (second.macs != first.macs || second.window != first.window || second.children != first.children ||
             memcmp(second.kernel, first.kernel, sizeof first.kernel) != 0 ||
             memcmp(second.stride, first.stride, sizeof first.stride) != 0))
            problem(&first, "%s: a second describe for the same shapes reported something else (%lld MACs, window "
                    "%d, %d children; first %lld, %d, %d): describe must be pure", label, (long long)second.macs,
                    (int)second.window, second.children, (long long)first.macs, (int)first.window, first.children);
        if (second.problem[0]) problem(&first, "%s", second.problem);
    }
    if (first.problem[0]) {
        report_fail("%s", first.problem);
    } else {
        const char *window = first.window == PLY_WINDOW_SPATIAL ? "spatial" : first.window == PLY_WINDOW_GLOBAL
                                                                                  ? "global" : "identity";
        report_pass("%s: describe for input 0 %s: %lld MACs (children %lld), %s window, %d child(ren)%s; the same "
                    "twice", label, shape_str(&shapes[0], a, sizeof a), (long long)first.macs,
                    (long long)first.child_macs, window, first.children,
                    first.named ? " accounting for its parameters" : "");
    }
    free_names(&first);
    free_names(&second);
    ti->t.destroy(layer);
    long left = host_live_allocations() - live0;
    if (left) report_fail("%s: %ld host allocation(s) left after destroy (describe)", label, left);
}
