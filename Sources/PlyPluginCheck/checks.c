/*
 * Checks 1 (library), 2 (descriptor and layer types) and 5 (error paths),
 * plus what is checked of a type that has no golden case (with checks 6 and 7
 * of schema.c and describe.c).
 *
 * Foreign structs are read only within their struct_size: the descriptor
 * and each layer type are copied into zero-padded host-size structs first.
 */
#include "check.h"

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the host needs of a descriptor: everything through `types`. */
static const size_t plugin_needed = offsetof(ply_plugin, types) + sizeof(((ply_plugin *)0)->types);
/* What the host needs of a layer type: the ABI 1.0 fields, through set_training. */
static const size_t type_needed = offsetof(ply_layer_type, fuse_activation);

static ply_plugin_entry_fn lookup_entry(void *handle) {
    ply_plugin_entry_fn entry = NULL;
    void *sym = dlsym(handle, PLY_PLUGIN_ENTRY_SYMBOL);
    memcpy(&entry, &sym, sizeof entry); /* object pointer to function pointer, as POSIX allows */
    return entry;
}

/* ------------------------------------------------------------ check 1 */

bool check_library(plugin_under_test *p) {
    report_section("library %s", p->path);
    report_doing("dlopen(%s)", p->path);
    p->handle = dlopen(p->path, RTLD_NOW | RTLD_LOCAL);
    if (!p->handle) {
        report_fail("dlopen: %s", dlerror());
        return false;
    }
    report_pass("dlopen with RTLD_NOW: every symbol resolves");
    p->entry = lookup_entry(p->handle);
    if (!p->entry) {
        report_fail("no exported symbol '%s' (PLY_PLUGIN_ENTRY_SYMBOL): declare it PLY_EXPORT, and check "
                    "that -fvisibility=hidden did not hide it",
                    PLY_PLUGIN_ENTRY_SYMBOL);
        return false;
    }
    report_pass("exports %s", PLY_PLUGIN_ENTRY_SYMBOL);
    host_error_clear();
    report_doing("%s(host)", PLY_PLUGIN_ENTRY_SYMBOL);
    p->plugin = p->entry(host_table());
    if (!p->plugin) {
        report_fail("%s returned NULL for a host with ABI %u.%u: %s", PLY_PLUGIN_ENTRY_SYMBOL, PLY_ABI_VERSION_MAJOR,
                    PLY_ABI_VERSION_MINOR, host_error_message());
        return false;
    }
    report_pass("%s returns a descriptor for a host with ABI %u.%u", PLY_PLUGIN_ENTRY_SYMBOL, PLY_ABI_VERSION_MAJOR,
                PLY_ABI_VERSION_MINOR);
    const ply_plugin *again = p->entry(host_table());
    if (again != p->plugin)
        report_fail("%s returned %p, then %p: it must return the same descriptor each time", PLY_PLUGIN_ENTRY_SYMBOL,
                    (const void *)p->plugin, (const void *)again);
    else
        report_pass("%s called twice returns the same descriptor", PLY_PLUGIN_ENTRY_SYMBOL);
    host_error_clear();
    report_doing("%s(host with ABI major %u)", PLY_PLUGIN_ENTRY_SYMBOL, PLY_ABI_VERSION_MAJOR + 1);
    const ply_plugin *other = p->entry(host_table_other_major());
    if (other)
        report_fail("%s accepted a host with ABI major %u (it was built for %u): it must return NULL",
                    PLY_PLUGIN_ENTRY_SYMBOL, PLY_ABI_VERSION_MAJOR + 1, PLY_ABI_VERSION_MAJOR);
    else if (!host_error_was_set())
        report_fail("%s refused a host with ABI major %u but did not say why: call host->set_error before "
                    "returning NULL", PLY_PLUGIN_ENTRY_SYMBOL, PLY_ABI_VERSION_MAJOR + 1);
    else
        report_pass("refuses a host with ABI major %u: \"%s\"", PLY_ABI_VERSION_MAJOR + 1, host_error_message());
    return true;
}

/* ------------------------------------------------------------ check 2 */

static bool valid_name(const char *s) {
    if (!s || !*s) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_')) return false;
    return true;
}

/* One layer type; false when it cannot be used by later checks. */
static bool check_type(const ply_layer_type *orig, int index, type_info *ti, const char *library) {
    char label[160];
    snprintf(label, sizeof label, "types[%d]", index);
    if (!orig) {
        report_fail("%s is NULL", label);
        return false;
    }
    report_doing("reading %s", label);
    if (orig->struct_size < type_needed) {
        report_fail("%s: struct_size %u, the host needs at least %zu (the ABI 1.0 fields, through set_training)",
                    label, orig->struct_size, type_needed);
        return false;
    }
    host_copy_type(orig, ti, library);
    const ply_layer_type *t = &ti->t;
    if (t->name) snprintf(label, sizeof label, "type %s", t->name);
    int problems = 0;
    if (PLY_ABI_MAJOR_OF(t->abi_version) != PLY_ABI_VERSION_MAJOR) {
        report_fail("%s: abi_version %u.%u, the host speaks %u.x", label, PLY_ABI_MAJOR_OF(t->abi_version),
                    PLY_ABI_MINOR_OF(t->abi_version), PLY_ABI_VERSION_MAJOR);
        return false;
    }
    if (!valid_name(t->name)) {
        report_fail("%s: name \"%s\" must match [a-z0-9_]+", label, t->name ? t->name : "(NULL)");
        problems++;
    }
    if (!t->doc || !*t->doc)
        report_fail("%s: doc is %s, it must be a one-line description", label, t->doc ? "empty" : "NULL"), problems++;
    if (t->min_inputs < 0) report_fail("%s: min_inputs %d < 0", label, (int)t->min_inputs), problems++;
    if (t->max_inputs != -1 && t->max_inputs < t->min_inputs)
        report_fail("%s: max_inputs %d, expected -1 (unbounded) or >= min_inputs %d", label, (int)t->max_inputs,
                    (int)t->min_inputs), problems++;
    const struct { const char *name; bool present; } required[] = {
        {"create", t->create != NULL}, {"destroy", t->destroy != NULL},
        {"infer_shape", t->infer_shape != NULL}, {"forward", t->forward != NULL}};
    for (int k = 0; k < 4; k++)
        if (!required[k].present) report_fail("%s: required callback %s is NULL", label, required[k].name), problems++;
    if (t->param_count && !t->get_param) report_fail("%s: param_count is set but get_param is NULL", label), problems++;
    if (problems) return false;
    char max[16] = "any";
    if (t->max_inputs != -1) snprintf(max, sizeof max, "%d", (int)t->max_inputs);
    report_doing("%s: destroy(NULL)", label);
    t->destroy(NULL); /* must be a no-op: a crash here is caught by the crash handler */
    report_pass("%s: struct_size %u, ABI %u.%u, %d..%s inputs, doc \"%s\"; callbacks present%s%s%s%s; destroy(NULL) is "
                "a no-op",
                label, orig->struct_size, PLY_ABI_MAJOR_OF(t->abi_version), PLY_ABI_MINOR_OF(t->abi_version),
                (int)t->min_inputs, max, t->doc,
                t->backward ? ", backward" : ", no backward", t->param_count ? ", parameters" : "",
                t->set_training ? ", set_training" : "", t->fuse_activation ? ", fuse_activation" : "");
    /* ABI 1.7: eval_layouts and forward_layout, both or neither (the runtime refuses one alone). */
    if ((t->eval_layouts != NULL) != (t->forward_layout != NULL))
        report_fail("%s: layouts: eval_layouts is %s but forward_layout is %s (ABI 1.7: both or neither)", label,
                    t->eval_layouts ? "set" : "NULL", t->forward_layout ? "set" : "NULL");
    return true;
}

bool check_descriptor(plugin_under_test *p, const char *only_type) {
    const ply_plugin *d = p->plugin;
    report_section("descriptor");
    if (d->struct_size < plugin_needed) {
        report_fail("descriptor struct_size %u, the host needs at least %zu (through type_count and types)",
                    d->struct_size, plugin_needed);
        return false;
    }
    memset(&p->desc, 0, sizeof p->desc);
    memcpy(&p->desc, d, d->struct_size < sizeof p->desc ? d->struct_size : sizeof p->desc);
    d = &p->desc;
    if (PLY_ABI_MAJOR_OF(d->abi_version) != PLY_ABI_VERSION_MAJOR) {
        report_fail("descriptor abi_version %u.%u, the host speaks %u.x", PLY_ABI_MAJOR_OF(d->abi_version),
                    PLY_ABI_MINOR_OF(d->abi_version), PLY_ABI_VERSION_MAJOR);
        return false;
    }
    bool ok = true;
    if (!d->name) report_fail("descriptor name is NULL"), ok = false;
    if (!d->version) report_fail("descriptor version is NULL"), ok = false;
    if (d->type_count <= 0) report_fail("descriptor type_count %d, expected > 0", (int)d->type_count), ok = false;
    if (!d->types) report_fail("descriptor types is NULL"), ok = false;
    if (!ok && (d->type_count <= 0 || !d->types)) return false;
    if (ok)
        report_pass("descriptor: struct_size %u, ABI %u.%u, \"%s\" version \"%s\", %d type(s)", d->struct_size,
                    PLY_ABI_MAJOR_OF(d->abi_version), PLY_ABI_MINOR_OF(d->abi_version), d->name, d->version,
                    (int)d->type_count);
    report_section("layer types");
    p->types = calloc((size_t)d->type_count, sizeof *p->types);
    p->others = calloc((size_t)d->type_count, sizeof *p->others);
    p->type_count = p->other_count = 0;
    for (int i = 0; i < d->type_count; i++) {
        type_info ti;
        if (!check_type(d->types[i], i, &ti, p->path)) continue;
        bool duplicate = false;
        for (int j = 0; j < p->type_count; j++) duplicate |= strcmp(p->types[j].t.name, ti.t.name) == 0;
        for (int j = 0; j < p->other_count; j++) duplicate |= strcmp(p->others[j].t.name, ti.t.name) == 0;
        if (duplicate) {
            report_fail("type %s: the descriptor lists the name twice", ti.t.name);
            continue;
        }
        if (only_type && strcmp(ti.t.name, only_type) != 0) {
            p->others[p->other_count++] = ti; /* a composite's child may be one of them */
            continue;
        }
        p->types[p->type_count++] = ti;
        check_schema(&p->types[p->type_count - 1]);
    }
    return p->type_count > 0;
}

bool load_dependency(const char *path, plugin_under_test *dep) {
    memset(dep, 0, sizeof *dep);
    dep->path = path;
    report_doing("loading --with %s", path);
    if (!(dep->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL))) {
        report_fail("--with %s: dlopen: %s", path, dlerror());
        return false;
    }
    dep->entry = lookup_entry(dep->handle);
    dep->plugin = dep->entry ? dep->entry(host_table()) : NULL;
    const ply_plugin *d = dep->plugin;
    if (!d || d->struct_size < plugin_needed || PLY_ABI_MAJOR_OF(d->abi_version) != PLY_ABI_VERSION_MAJOR ||
        d->type_count <= 0 || !d->types) {
        const char *why = !dep->entry ? "no ply_plugin_entry" : !d ? host_error_message()
                                                                   : "unusable descriptor (check it on its own)";
        report_fail("--with %s: %s", path, why);
        return false;
    }
    memcpy(&dep->desc, d, d->struct_size < sizeof dep->desc ? d->struct_size : sizeof dep->desc);
    dep->types = calloc((size_t)d->type_count, sizeof *dep->types);
    char names[600] = "";
    size_t k = 0;
    for (int i = 0; i < d->type_count; i++) {
        const ply_layer_type *t = d->types[i];
        if (!t || t->struct_size < type_needed) continue;
        host_copy_type(t, &dep->types[dep->type_count], path);
        if (!dep->types[dep->type_count].t.name || !dep->types[dep->type_count].t.create) continue;
        const type_info *clash = host_find_type(t->name);
        if (clash) {
            report_fail("--with %s: type %s is also provided by %s (the runtime refuses a second library "
                        "that claims a loaded type's name)", path, t->name, clash->library);
            continue;
        }
        if (k < sizeof names)
            k += (size_t)snprintf(names + k, sizeof names - k, "%s%s", dep->type_count ? ", " : "", t->name);
        dep->type_count++;
    }
    report_pass("--with %s (%s): %s", path, dep->desc.name ? dep->desc.name : "?", names);
    return true;
}

void unload_library(plugin_under_test *p) {
    free(p->types);
    free(p->others);
    p->types = p->others = NULL;
    if (p->handle) dlclose(p->handle);
    p->handle = NULL;
}

/* ------------------------------------------------------------ check 5 */

/* A create that must fail: status, *out left NULL, a message, nothing leaked. */
static void expect_create_fails(const type_info *ti, const char *label, const attr_set *attrs, const char *change) {
    ply_layer *layer = NULL;
    long live0 = host_live_allocations();
    host_error_clear();
    report_doing("%s: create with %s", label, change);
    ply_status st = ti->t.create(host_table(), &attrs->list, &layer);
    if (st == PLY_OK) {
        report_fail("%s: create accepted %s (expected an error status)", label, change);
        ti->t.destroy(layer);
        return;
    }
    long left = host_live_allocations() - live0;
    const char *status = status_name(st);
    if (layer)
        report_fail("%s: create with %s returned %s but set *out to %p (must stay NULL)", label, change, status,
                    (void *)layer);
    else if (!host_error_was_set())
        report_fail("%s: create with %s returned %s without a message via set_error", label, change, status);
    else if (left)
        report_fail("%s: create with %s failed but leaked %ld host allocation(s)", label, change, left);
    else
        report_pass("%s: create with %s fails cleanly: %s \"%s\"", label, change, status, host_error_message());
}

void check_error_paths(const type_info *ti, const char *label, const attr_set *attrs, int n_inputs,
                       const ply_shape *shapes) {
    static const char *const sizes[] = {"kernel_size", "in_channels", "out_channels", "num_features",
                                        "in_features", "out_features", "inplanes", "planes"};
    attr_set bad;
    /* An invalid value of the first size-like attribute, then the wrong kind for it. */
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int i = 0;
        while (i < attrs->list.count && strcmp(attrs->items[i].name, sizes[s]) != 0) i++;
        if (i == attrs->list.count) continue;
        char change[120];
        bad = *attrs;
        bad.list.items = bad.items;
        bad.items[i] = (ply_attr){.name = sizes[s], .kind = PLY_ATTR_INT, .count = 1, .v.i = -1};
        snprintf(change, sizeof change, "%s = -1", sizes[s]);
        expect_create_fails(ti, label, &bad, change);
        bad.items[i] = (ply_attr){.name = sizes[s], .kind = PLY_ATTR_STRING, .count = 1, .v.s = "3"};
        snprintf(change, sizeof change, "%s = \"3\" (a string)", sizes[s]);
        expect_create_fails(ti, label, &bad, change);
        break;
    }
    /* An unknown value of a string attribute (e.g. cross_entropy's reduction). */
    for (int i = 0; i < attrs->list.count; i++) {
        if (attrs->items[i].kind != PLY_ATTR_STRING) continue;
        char change[160];
        bad = *attrs;
        bad.list.items = bad.items;
        bad.items[i].v.s = "no_such_value";
        snprintf(change, sizeof change, "%s = \"no_such_value\"", attrs->items[i].name);
        expect_create_fails(ti, label, &bad, change);
        break;
    }
    /* infer_shape with a wrong number of dims: 1-D, and one dim more than the valid shape. */
    ply_layer *layer = NULL;
    long live0 = host_live_allocations();
    host_error_clear();
    report_doing("%s: create for the infer_shape error path", label);
    if (ti->t.create(host_table(), &attrs->list, &layer) != PLY_OK || !layer) {
        report_skip("%s: infer_shape error path not checked: create failed: %s", label, host_error_message());
        return;
    }
    ply_shape tries[2], in[MAX_INPUTS], out;
    int n_tries = 0, rejected = 0, accepted = 0;
    char a[100], b[100] = "";
    tries[n_tries++] = shape_of(1, (int64_t[]){ply_shape_numel(&shapes[0])});
    if (shapes[0].ndim < PLY_MAX_NDIM) {
        tries[n_tries] = shapes[0];
        tries[n_tries].dims[tries[n_tries].ndim++] = 1;
        n_tries++;
    }
    for (int k = 0; k < n_tries; k++) {
        for (int i = 0; i < n_inputs; i++) in[i] = shapes[i];
        in[0] = tries[k];
        memset(&out, 0, sizeof out);
        host_error_clear();
        report_doing("%s: infer_shape with input 0 of shape %s", label, shape_str(&in[0], a, sizeof a));
        ply_status st = ti->t.infer_shape(layer, n_inputs, in, &out);
        shape_str(&in[0], a, sizeof a);
        if (st == PLY_OK) {
            accepted++;
        } else if (st != PLY_ERR_SHAPE) {
            report_fail("%s: infer_shape with input 0 of shape %s returned %s, expected PLY_ERR_SHAPE", label, a,
                        status_name(st));
        } else if (!host_error_was_set()) {
            report_fail("%s: infer_shape with input 0 of shape %s returned PLY_ERR_SHAPE without a message via "
                        "set_error", label, a);
        } else {
            rejected++;
            snprintf(b, sizeof b, "%s", host_error_message());
        }
    }
    if (rejected)
        report_pass("%s: infer_shape rejects %d wrong-rank input(s) with PLY_ERR_SHAPE and a message (\"%s\")%s", label,
                    rejected, b, accepted ? "; accepts the other" : "");
    else if (accepted == n_tries)
        report_skip("%s: infer_shape accepts inputs of any rank: no wrong rank to try", label);
    ti->t.destroy(layer);
    long left = host_live_allocations() - live0;
    if (left) report_fail("%s: %ld host allocation(s) left after destroy", label, left);
}

/* ------------------------------------------------------------ types without golden cases */

void check_without_golden(const type_info *ti, bool finite_differences) {
    const char *name = ti->t.name;
    char why[600], a[100], b[100];
    attr_set none;
    attr_set_init(&none);
    report_section("type %s (no golden case: default attributes, random [2, 3, 4, 5] input)", name);
    ply_layer *layer = NULL;
    long live0 = host_live_allocations();
    host_error_clear();
    report_doing("%s: create without attributes", name);
    ply_status st = ti->t.create(host_table(), &none.list, &layer);
    if (st != PLY_OK) {
        long left = host_live_allocations() - live0;
        if (layer || !host_error_was_set() || left)
            report_fail("%s: create without attributes returned %s, %s", name, status_name(st),
                        layer ? "but *out is not NULL" : left ? "and leaked host allocations" : "without a message");
        else
            report_pass("%s: create without attributes fails cleanly: %s \"%s\"", name, status_name(st),
                        host_error_message());
        report_skip("%s: no golden case and no default attributes: forward/backward not checked (use --golden)", name);
        return;
    }
    int n = ti->t.min_inputs > 1 ? ti->t.min_inputs : 1;
    tensor inputs[MAX_INPUTS];
    ply_shape shapes[MAX_INPUTS];
    bool wants[MAX_INPUTS];
    uint64_t z = 0x1234;
    for (int i = 0; i < n && i < MAX_INPUTS; i++) {
        inputs[i] = tensor_new(shape_of(4, (int64_t[]){2, 3, 4, 5}));
        for (int64_t k = 0; k < inputs[i].n; k++) {
            z = z * 6364136223846793005ull + 1442695040888963407ull;
            inputs[i].data[k] = (float)((double)(z >> 11) / 9007199254740992.0 * 2 - 1);
        }
        shapes[i] = inputs[i].shape;
        wants[i] = true;
    }
    if (ti->t.set_training) ti->t.set_training(layer, 0);
    tensor out = {0};
    st = layer_forward(ti, layer, n, inputs, &out, why, sizeof why);
    bool ran = st == PLY_OK;
    if (!ran) {
        report_skip("%s: with default attributes: %s", name, why);
    } else {
        bool finite = true;
        for (int64_t k = 0; k < out.n; k++) finite &= isfinite(out.data[k]) != 0;
        shape_str(&shapes[0], a, sizeof a);
        shape_str(&out.shape, b, sizeof b);
        if (finite) report_pass("%s: eval-mode forward %s -> %s, every output element written and finite", name, a, b);
        else report_fail("%s: eval-mode forward %s -> %s left NaN or Inf in the output", name, a, b);
    }
    tensor_free(&out);
    ti->t.destroy(layer);
    long left = host_live_allocations() - live0;
    if (left) report_fail("%s: %ld host allocation(s) left after destroy", name, left);
    else report_pass("%s: destroy freed every host allocation", name);
    if (ran) {
        check_error_paths(ti, name, &none, n, shapes);
        check_describe(ti, name, &none.list, n, shapes);
        check_layouts(ti, name, &none.list, n, shapes);
        if (finite_differences && ti->t.backward)
            gradcheck(ti, name, &none.list, n, inputs, wants, NULL, 0, false, NULL);
        else if (ti->t.backward)
            report_skip("%s: central differences not run (--no-fd)", name);
    }
    for (int i = 0; i < n && i < MAX_INPUTS; i++) tensor_free(&inputs[i]);
}
