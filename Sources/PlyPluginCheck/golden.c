/*
 * Golden cases (check 3): a PyTorch-made file per case (see
 * Tests/PlyTests/Fixtures/golden/README.md) is turned into attributes,
 * tensors and named parameters, and run through the plugin's layer the way
 * the Ply runtime would: create, set_training, infer_shape, load parameters
 * and buffers by name, forward, backward, destroy. Every number is compared
 * with max|ours - ref| <= 1e-5 * max(1, max|ref|), as the Swift golden tests do.
 *
 * As in Tests/PlyTests/GoldenLayerTests.swift, `cross_entropy` takes
 * attrs.target as a second input (class indices as floats), with no gradient.
 */
#include "check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ small helpers */

ply_shape shape_of(int ndim, const int64_t *dims) {
    ply_shape s = {.ndim = ndim, .reserved = 0};
    for (int i = 0; i < ndim && i < PLY_MAX_NDIM; i++) s.dims[i] = dims[i];
    return s;
}

bool shape_eq(const ply_shape *a, const ply_shape *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim && i < PLY_MAX_NDIM; i++)
        if (a->dims[i] != b->dims[i]) return false;
    return true;
}

const char *shape_str(const ply_shape *s, char *buf, size_t size) {
    size_t k = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < s->ndim && i < PLY_MAX_NDIM && k < size; i++)
        k += (size_t)snprintf(buf + k, size - k, i ? ", %lld" : "%lld", (long long)s->dims[i]);
    if (k < size) snprintf(buf + k, size - k, "]");
    return buf;
}

const char *status_name(ply_status s) {
    static const char *const names[] = {"PLY_OK", "PLY_ERR_INVALID_ARGUMENT", "PLY_ERR_SHAPE",
                                        "PLY_ERR_OUT_OF_MEMORY", "PLY_ERR_UNSUPPORTED", "PLY_ERR_NOT_FOUND",
                                        "PLY_ERR_ABI", "PLY_ERR_NUMERIC", "PLY_ERR_INTERNAL"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "an unknown status";
}

tensor tensor_new(ply_shape shape) {
    tensor t = {.shape = shape, .n = 1};
    for (int i = 0; i < shape.ndim; i++) t.n *= shape.dims[i];
    size_t bytes = ((size_t)(t.n > 0 ? t.n : 1) * sizeof(float) + 63) / 64 * 64;
    t.data = aligned_alloc(64, bytes);
    if (!t.data) {
        fprintf(stderr, "ply-plugin-check: out of memory\n");
        exit(2);
    }
    memset(t.data, 0, bytes);
    return t;
}

void tensor_free(tensor *t) {
    free(t->data);
    t->data = NULL;
}

tensor tensor_copy(const tensor *t) {
    tensor c = tensor_new(t->shape);
    memcpy(c.data, t->data, (size_t)t->n * sizeof(float));
    return c;
}

ply_tensor tensor_view(const tensor *t) {
    return (ply_tensor){.struct_size = (uint32_t)sizeof(ply_tensor), .abi_version = PLY_ABI_VERSION,
                        .data = t->data, .dtype = PLY_DTYPE_F32, .reserved = 0, .shape = t->shape, .strides = NULL};
}

bool close_enough(const float *ours, const float *ref, int64_t n, double *error, double *bound) {
    double worst = 0, scale = 1;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)ours[i] - (double)ref[i]);
        if (isnan(ours[i]) != isnan(ref[i])) d = INFINITY;
        if (d > worst) worst = d;
        if (fabs((double)ref[i]) > scale) scale = fabs((double)ref[i]);
    }
    *error = worst;
    *bound = 1e-5 * scale;
    return worst <= *bound;
}

void attr_set_init(attr_set *a) {
    memset(a, 0, sizeof *a);
    a->list = (ply_attrs){.struct_size = (uint32_t)sizeof(ply_attrs), .abi_version = PLY_ABI_VERSION,
                          .count = 0, .reserved = 0, .items = a->items};
}

ply_attr *attr_set_put(attr_set *a, const char *name) {
    int i = 0;
    while (i < a->list.count && strcmp(a->items[i].name, name) != 0) i++;
    if (i == a->list.count) {
        if (i == MAX_ATTRS) return NULL;
        a->list.count++;
    }
    a->items[i] = (ply_attr){.name = name, .kind = PLY_ATTR_INT, .count = 1};
    return &a->items[i];
}

/* ------------------------------------------------------------ reading a case */

static bool to_tensor(const jval *v, tensor *out, const char *what, char *err, size_t err_size) {
    const jval *shape = json_get(v, "shape"), *data = json_get(v, "data");
    if (!shape || shape->kind != J_ARR || !data || data->kind != J_ARR || shape->n > PLY_MAX_NDIM) {
        snprintf(err, err_size, "%s is not a {\"shape\": [...], \"data\": [...]} tensor", what);
        return false;
    }
    int64_t dims[PLY_MAX_NDIM];
    for (size_t i = 0; i < shape->n; i++) dims[i] = (int64_t)shape->items[i].num;
    *out = tensor_new(shape_of((int)shape->n, dims));
    if ((size_t)out->n != data->n) {
        snprintf(err, err_size, "%s: shape holds %lld values, data has %zu", what, (long long)out->n, data->n);
        tensor_free(out);
        return false;
    }
    for (size_t i = 0; i < data->n; i++) out->data[i] = (float)data->items[i].num;
    return true;
}

static bool to_named(const jval *v, named_tensor **out, int *count, const char *what, char *err, size_t err_size) {
    *out = NULL;
    *count = 0;
    if (!v) return true;
    if (v->kind != J_OBJ) {
        snprintf(err, err_size, "%s is not an object", what);
        return false;
    }
    *out = calloc(v->n ? v->n : 1, sizeof **out);
    for (size_t i = 0; i < v->n; i++) {
        char label[300];
        snprintf(label, sizeof label, "%s.%s", what, v->keys[i]);
        if (!to_tensor(&v->items[i], &(*out)[i].t, label, err, err_size)) return false;
        (*out)[i].name = v->keys[i];
        (*count)++;
    }
    return true;
}

static bool to_attr(const char *name, const jval *v, attr_set *a, char *err, size_t err_size) {
    if (v->kind == J_NULL) return true; /* PyTorch's None: the layer's default */
    ply_attr *at = attr_set_put(a, name);
    int slot = (int)(at - a->items);
    if (!at) {
        snprintf(err, err_size, "more than %d attributes", MAX_ATTRS);
        return false;
    }
    switch (v->kind) {
    case J_BOOL: at->kind = PLY_ATTR_BOOL; at->v.i = v->b; break;
    case J_STR: at->kind = PLY_ATTR_STRING; at->v.s = v->str; break;
    case J_NUM:
        if (v->is_int) { at->kind = PLY_ATTR_INT; at->v.i = (int64_t)v->num; }
        else { at->kind = PLY_ATTR_FLOAT; at->v.f = v->num; }
        break;
    case J_ARR: {
        bool ints = true;
        if (v->n > PLY_MAX_NDIM) {
            snprintf(err, err_size, "attribute %s: more than %d values", name, PLY_MAX_NDIM);
            return false;
        }
        for (size_t i = 0; i < v->n; i++) {
            if (v->items[i].kind != J_NUM) {
                snprintf(err, err_size, "attribute %s: a list of non-numbers", name);
                return false;
            }
            ints = ints && v->items[i].is_int;
        }
        for (size_t i = 0; i < v->n; i++) {
            a->ints[slot][i] = (int64_t)v->items[i].num;
            a->floats[slot][i] = v->items[i].num;
        }
        at->kind = ints ? PLY_ATTR_INTS : PLY_ATTR_FLOATS;
        at->count = (int32_t)v->n;
        if (ints) at->v.ints = a->ints[slot];
        else at->v.floats = a->floats[slot];
        break;
    }
    default: snprintf(err, err_size, "attribute %s: an object is not an attribute", name); return false;
    }
    return true;
}

bool golden_load(const char *path, golden_case *c, char *err, size_t err_size) {
    char why[400] = "";
    memset(c, 0, sizeof *c);
    c->path = strdup(path);
    const char *base = strrchr(path, '/');
    c->name = base ? base + 1 : path;
    attr_set_init(&c->attrs);
    if (!(c->root = json_parse_file(path, why, sizeof why))) goto bad;
    const jval *op = json_get(c->root, "op"), *mode = json_get(c->root, "mode"), *attrs = json_get(c->root, "attrs");
    if (!op || op->kind != J_STR) { snprintf(why, sizeof why, "no \"op\" string"); goto bad; }
    c->op = op->str;
    c->train = !mode || (mode->kind == J_STR && strcmp(mode->str, "train") == 0);
    const jval *input = json_get(c->root, "input"), *inputs = json_get(c->root, "inputs");
    if (input) {
        if (!to_tensor(input, &c->inputs[0], "input", why, sizeof why)) goto bad;
        c->n_inputs = 1;
    } else if (inputs && inputs->kind == J_ARR && inputs->n > 0 && inputs->n < MAX_INPUTS) {
        for (size_t i = 0; i < inputs->n; i++, c->n_inputs++)
            if (!to_tensor(&inputs->items[i], &c->inputs[i], "inputs[i]", why, sizeof why)) goto bad;
    } else {
        snprintf(why, sizeof why, "no \"input\" tensor or \"inputs\" list");
        goto bad;
    }
    for (int i = 0; i < c->n_inputs; i++) c->wants_grad[i] = true;
    for (size_t i = 0; attrs && attrs->kind == J_OBJ && i < attrs->n; i++) {
        const jval *v = &attrs->items[i];
        if (strcmp(c->op, "cross_entropy") == 0 && strcmp(attrs->keys[i], "target") == 0 && v->kind == J_ARR) {
            int64_t n = (int64_t)v->n;
            c->inputs[c->n_inputs] = tensor_new(shape_of(1, &n));
            for (size_t k = 0; k < v->n; k++) c->inputs[c->n_inputs].data[k] = (float)v->items[k].num;
            c->wants_grad[c->n_inputs++] = false; /* class indices: no gradient */
            continue;
        }
        if (!to_attr(attrs->keys[i], v, &c->attrs, why, sizeof why)) goto bad;
    }
    const jval *output = json_get(c->root, "output"), *grad_output = json_get(c->root, "grad_output");
    if (!output || !to_tensor(output, &c->output, "output", why, sizeof why)) {
        if (!output) snprintf(why, sizeof why, "no \"output\" tensor");
        goto bad;
    }
    if (grad_output && !to_tensor(grad_output, &c->grad_output, "grad_output", why, sizeof why)) goto bad;
    const jval *gi = json_get(c->root, "grad_input"), *gis = json_get(c->root, "grad_inputs");
    if (gi) {
        if (!to_tensor(gi, &c->grad_inputs[0], "grad_input", why, sizeof why)) goto bad;
        c->n_grad_inputs = 1;
    } else if (gis && gis->kind == J_ARR && gis->n <= MAX_INPUTS) {
        for (size_t i = 0; i < gis->n; i++, c->n_grad_inputs++)
            if (!to_tensor(&gis->items[i], &c->grad_inputs[i], "grad_inputs[i]", why, sizeof why)) goto bad;
    }
    if (!to_named(json_get(c->root, "params"), &c->params, &c->n_params, "params", why, sizeof why) ||
        !to_named(json_get(c->root, "buffers"), &c->buffers, &c->n_buffers, "buffers", why, sizeof why) ||
        !to_named(json_get(c->root, "grad_params"), &c->grad_params, &c->n_grad_params, "grad_params", why,
                  sizeof why) ||
        !to_named(json_get(c->root, "buffers_after"), &c->buffers_after, &c->n_buffers_after, "buffers_after", why,
                  sizeof why))
        goto bad;
    return true;
bad:
    snprintf(err, err_size, "%s: %s", path, why);
    return false;
}

static void free_named(named_tensor *t, int n) {
    for (int i = 0; i < n; i++) tensor_free(&t[i].t);
    free(t);
}

void golden_free(golden_case *c) {
    for (int i = 0; i < MAX_INPUTS; i++) {
        tensor_free(&c->inputs[i]);
        tensor_free(&c->grad_inputs[i]);
    }
    tensor_free(&c->output);
    tensor_free(&c->grad_output);
    free_named(c->params, c->n_params);
    free_named(c->buffers, c->n_buffers);
    free_named(c->grad_params, c->n_grad_params);
    free_named(c->buffers_after, c->n_buffers_after);
    json_free(c->root);
    free(c->path);
    memset(c, 0, sizeof *c);
}

/* ------------------------------------------------------------ running layers */

/* Inside layer_params: say why, give up. */
#define BAD(...)                                  \
    do {                                          \
        snprintf(why, why_size, __VA_ARGS__);     \
        goto bad;                                 \
    } while (0)

int layer_params(const type_info *ti, ply_layer *layer, ply_param **out, char *why, size_t why_size) {
    const char *type = ti->t.name;
    ply_param *ps = NULL;
    *out = NULL;
    if (!ti->t.param_count) return 0;
    report_doing("%s: param_count", type);
    int32_t n = ti->t.param_count(layer);
    if (n < 0 || n > 100000) BAD("param_count returned %d", (int)n);
    if (n > 0 && !ti->t.get_param) BAD("param_count is %d but get_param is NULL", (int)n);
    ps = calloc(n ? (size_t)n : 1, sizeof *ps);
    for (int32_t i = 0; i < n; i++) {
        ply_param p = {0};
        report_doing("%s: get_param(%d)", type, (int)i);
        host_error_clear();
        ply_status st = ti->t.get_param(layer, i, &p);
        const char *name = p.name ? p.name : "(NULL)";
        const ply_tensor *v = &p.value;
        if (st != PLY_OK) BAD("get_param(%d) returned %s: %s", (int)i, status_name(st), host_error_message());
        if (p.struct_size < sizeof(ply_param))
            BAD("get_param(%d) (%s): struct_size %u, expected at least %zu", (int)i, name, p.struct_size,
                sizeof(ply_param));
        if (!p.name || !*p.name) BAD("get_param(%d): name is NULL or empty", (int)i);
        for (int32_t j = 0; j < i; j++)
            if (strcmp(ps[j].name, p.name) == 0) BAD("parameters %d and %d are both named '%s'", (int)j, (int)i, name);
        if (p.kind != PLY_PARAM_WEIGHT && p.kind != PLY_PARAM_BUFFER)
            BAD("%s: kind %d is neither WEIGHT (0) nor BUFFER (1)", name, (int)p.kind);
        if (v->struct_size < sizeof(ply_tensor) || !v->data)
            BAD("%s: value.struct_size %u (expected >= %zu), value.data %p", name, v->struct_size, sizeof(ply_tensor),
                v->data);
        if (v->shape.ndim < 0 || v->shape.ndim > PLY_MAX_NDIM) BAD("%s: value.shape.ndim %d", name, (int)v->shape.ndim);
        if (v->dtype != PLY_DTYPE_F32 && !(v->dtype == PLY_DTYPE_I64 && p.kind == PLY_PARAM_BUFFER))
            BAD("%s: dtype %d (weights are float32; buffers float32 or int64)", name, (int)v->dtype);
        if (p.kind == PLY_PARAM_BUFFER && p.grad.data) BAD("%s is a buffer but grad.data is not NULL", name);
        if (p.kind == PLY_PARAM_WEIGHT && !p.grad.data) BAD("%s is a weight but grad.data is NULL", name);
        if (p.kind == PLY_PARAM_WEIGHT && !shape_eq(&p.grad.shape, &v->shape))
            BAD("%s: grad.shape differs from value.shape", name);
        ps[i] = p;
    }
    *out = ps;
    return n;
bad:
    free(ps);
    return -1;
}
#undef BAD

ply_status layer_forward(const type_info *ti, ply_layer *layer, int n, const tensor *inputs, tensor *out, char *why,
                         size_t why_size) {
    ply_shape shapes[MAX_INPUTS], shape = {0};
    ply_tensor views[MAX_INPUTS];
    for (int i = 0; i < n; i++) {
        shapes[i] = inputs[i].shape;
        views[i] = tensor_view(&inputs[i]);
    }
    report_doing("%s: infer_shape", ti->t.name);
    host_error_clear();
    ply_status st = ti->t.infer_shape(layer, n, shapes, &shape);
    if (st != PLY_OK) {
        snprintf(why, why_size, "infer_shape returned %s: %s", status_name(st), host_error_message());
        return st;
    }
    if (shape.ndim < 0 || shape.ndim > PLY_MAX_NDIM) {
        snprintf(why, why_size, "infer_shape gave ndim %d", (int)shape.ndim);
        return PLY_ERR_SHAPE;
    }
    *out = tensor_new(shape);
    for (int64_t i = 0; i < out->n; i++) out->data[i] = NAN; /* forward must write every element */
    ply_tensor view = tensor_view(out);
    report_doing("%s: forward", ti->t.name);
    host_error_clear();
    st = ti->t.forward(layer, n, views, &view);
    if (st != PLY_OK) {
        snprintf(why, why_size, "forward returned %s: %s", status_name(st), host_error_message());
        tensor_free(out);
    }
    return st;
}

bool load_named(ply_param *params, int count, const named_tensor *src, int n, char *why, size_t why_size) {
    for (int i = 0; i < n; i++) {
        int j = 0;
        while (j < count && strcmp(params[j].name, src[i].name) != 0) j++;
        char a[100], b[100];
        if (j == count) {
            snprintf(why, why_size, "the layer has no parameter or buffer named '%s'", src[i].name);
            return false;
        }
        if (!shape_eq(&params[j].value.shape, &src[i].t.shape) || params[j].value.dtype != PLY_DTYPE_F32) {
            snprintf(why, why_size, "%s: shape %s, golden %s", src[i].name,
                     shape_str(&params[j].value.shape, a, sizeof a), shape_str(&src[i].t.shape, b, sizeof b));
            return false;
        }
        memcpy(params[j].value.data, src[i].t.data, (size_t)src[i].t.n * sizeof(float));
    }
    return true;
}

/* ------------------------------------------------------------ check 3 */

static const ply_param *find_param(const ply_param *ps, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(ps[i].name, name) == 0) return &ps[i];
    return NULL;
}

/* Compares, records the worst error; FAILs (and returns false) when out of bound. */
static bool compare(const char *label, const char *what, const float *ours, const tensor *ref, double *worst_ratio) {
    double error, bound;
    if (close_enough(ours, ref->data, ref->n, &error, &bound)) {
        if (error / bound > *worst_ratio) *worst_ratio = error / bound;
        return true;
    }
    int64_t at = 0;
    for (int64_t i = 0; i < ref->n; i++)
        if (!(fabs((double)ours[i] - ref->data[i]) <= bound)) { at = i; break; }
    report_fail("%s: %s max error %.3g > %.3g (first at flat index %lld: got %.9g, expected %.9g)", label, what,
                error, bound, (long long)at, (double)ours[at], (double)ref->data[at]);
    return false;
}

void golden_check(const type_info *ti, const golden_case *c) {
    const char *op = ti->t.name, *label = c->name;
    char why[600], a[100], b[100];
    report_section("golden case %s (%s, %s mode)", c->name, op, c->train ? "train" : "eval");
    long live0 = host_live_allocations(), bad0 = host_bad_frees();
    ply_layer *layer = NULL;
    report_doing("%s: create(%s)", label, op);
    host_error_clear();
    ply_status st = ti->t.create(host_table(), &c->attrs.list, &layer);
    if (st != PLY_OK || !layer) {
        report_fail("%s: create(%s) with the case's attrs returned %s%s: %s", label, op, status_name(st),
                    st == PLY_OK ? " and a NULL layer" : "", host_error_message());
        return;
    }
    report_pass("%s: create(%s) with %d attributes", label, op, (int)c->attrs.list.count);
    if (ti->t.set_training) ti->t.set_training(layer, c->train ? 1 : 0);

    ply_shape shapes[MAX_INPUTS], shape = {0};
    for (int i = 0; i < c->n_inputs; i++) shapes[i] = c->inputs[i].shape;
    host_error_clear();
    report_doing("%s: infer_shape", label);
    st = ti->t.infer_shape(layer, c->n_inputs, shapes, &shape);
    shape_str(&shapes[0], a, sizeof a);
    if (st != PLY_OK)
        report_fail("%s: infer_shape for input %s returned %s: %s", label, a, status_name(st), host_error_message());
    else if (!shape_eq(&shape, &c->output.shape))
        report_fail("%s: infer_shape gave %s, expected %s", label, shape_str(&shape, a, sizeof a),
                    shape_str(&c->output.shape, b, sizeof b));
    else
        report_pass("%s: infer_shape %s -> %s", label, a, shape_str(&shape, b, sizeof b));

    ply_param *ps = NULL;
    int np = layer_params(ti, layer, &ps, why, sizeof why);
    bool params_ok = np >= 0;
    if (np < 0) report_fail("%s: parameters: %s", label, why);
    for (int i = 0; params_ok && i < np; i++) {
        const char *name = ps[i].name;
        bool in_params = false, in_buffers = false;
        for (int k = 0; k < c->n_params; k++) in_params |= strcmp(c->params[k].name, name) == 0;
        for (int k = 0; k < c->n_buffers; k++) in_buffers |= strcmp(c->buffers[k].name, name) == 0;
        if (ps[i].kind == PLY_PARAM_WEIGHT && !in_params) {
            report_fail("%s: weight '%s' is %s", label, name,
                        in_buffers ? "a buffer in the golden file" : "not in the golden params");
            params_ok = false;
        } else if (ps[i].kind == PLY_PARAM_BUFFER && in_params) {
            report_fail("%s: '%s' is a buffer, the golden file has it as a weight", label, name);
            params_ok = false;
        } else if (!in_params && !in_buffers) {
            report_note("%s: buffer '%s' %s is not in the golden file (left as created)", label, name,
                        shape_str(&ps[i].value.shape, a, sizeof a));
        }
    }
    if (params_ok && !load_named(ps, np, c->params, c->n_params, why, sizeof why)) {
        report_fail("%s: params: %s", label, why);
        params_ok = false;
    }
    if (params_ok && !load_named(ps, np, c->buffers, c->n_buffers, why, sizeof why)) {
        report_fail("%s: buffers: %s", label, why);
        params_ok = false;
    }
    if (params_ok)
        report_pass("%s: %d named parameters/buffers, unique, shapes match the golden %d params and %d buffers; "
                    "loaded by name", label, np, c->n_params, c->n_buffers);
    for (int i = 0; params_ok && i < np; i++)
        if (ps[i].kind == PLY_PARAM_WEIGHT)
            memset(ps[i].grad.data, 0, (size_t)ply_shape_numel(&ps[i].value.shape) * sizeof(float));

    tensor out = {0};
    double worst = 0;
    st = layer_forward(ti, layer, c->n_inputs, c->inputs, &out, why, sizeof why);
    if (st != PLY_OK) report_fail("%s: %s", label, why);
    else if (!shape_eq(&out.shape, &c->output.shape))
        report_fail("%s: output shape %s, expected %s", label, shape_str(&out.shape, a, sizeof a),
                    shape_str(&c->output.shape, b, sizeof b));
    else if (compare(label, "forward output", out.data, &c->output, &worst))
        report_pass("%s: forward output within 1e-5 * max(1, max|ref|) (worst %.2f of the bound)", label, worst);

    if (st == PLY_OK && params_ok && shape_eq(&out.shape, &c->output.shape) && c->grad_output.data) {
        if (!ti->t.backward) {
            report_skip("%s: %s has no backward: gradients not checked", label, op);
        } else {
            tensor grads[MAX_INPUTS];
    memset(grads, 0, sizeof grads);
            ply_tensor views[MAX_INPUTS], gviews[MAX_INPUTS];
            for (int i = 0; i < c->n_inputs; i++) {
                views[i] = tensor_view(&c->inputs[i]);
                grads[i] = tensor_new(c->inputs[i].shape);
                for (int64_t k = 0; k < grads[i].n; k++) grads[i].data[k] = NAN; /* must be overwritten */
                gviews[i] = tensor_view(&grads[i]);
                if (!c->wants_grad[i]) gviews[i].data = NULL;
            }
            ply_tensor ov = tensor_view(&out), gov = tensor_view(&c->grad_output);
            report_doing("%s: backward", label);
            host_error_clear();
            st = ti->t.backward(layer, c->n_inputs, views, &ov, &gov, gviews);
            bool ok = st == PLY_OK;
            if (!ok) report_fail("%s: backward returned %s: %s", label, status_name(st), host_error_message());
            worst = 0;
            for (int i = 0; ok && i < c->n_grad_inputs && i < c->n_inputs; i++) {
                char what[64];
                snprintf(what, sizeof what, "grad_input[%d]", i);
                if (c->wants_grad[i]) ok &= compare(label, what, grads[i].data, &c->grad_inputs[i], &worst);
            }
            for (int i = 0; ok && i < c->n_grad_params; i++) {
                const ply_param *p = find_param(ps, np, c->grad_params[i].name);
                char what[300];
                snprintf(what, sizeof what, "grad of %s", c->grad_params[i].name);
                if (p && p->kind == PLY_PARAM_WEIGHT) {
                    ok &= compare(label, what, p->grad.data, &c->grad_params[i].t, &worst);
                } else {
                    report_fail("%s: no weight '%s' for grad_params", label, c->grad_params[i].name);
                    ok = false;
                }
            }
            for (int i = 0; i < MAX_INPUTS; i++) tensor_free(&grads[i]);
            if (ok)
                report_pass("%s: backward: %d input gradient(s) and %d grad_params within the bound (worst %.2f of it)",
                            label, c->n_grad_inputs, c->n_grad_params, worst);
        }
    }
    if (st == PLY_OK && params_ok && c->n_buffers_after) {
        bool ok = true;
        worst = 0;
        for (int i = 0; i < c->n_buffers_after; i++) {
            const ply_param *p = find_param(ps, np, c->buffers_after[i].name);
            char what[300];
            snprintf(what, sizeof what, "buffer %s after forward", c->buffers_after[i].name);
            if (p) {
                ok &= compare(label, what, p->value.data, &c->buffers_after[i].t, &worst);
            } else {
                report_fail("%s: no buffer '%s' for buffers_after", label, c->buffers_after[i].name);
                ok = false;
            }
        }
        if (ok)
            report_pass("%s: %d buffers_after within the bound (worst %.2f of it)", label, c->n_buffers_after, worst);
    }
    tensor_free(&out);
    free(ps);
    report_doing("%s: destroy", label);
    ti->t.destroy(layer);
    long left = host_live_allocations() - live0, bad = host_bad_frees() - bad0;
    if (left || bad)
        report_fail("%s: after destroy %ld host allocation(s) left, %ld free(s) of pointers not from alloc", label,
                    left, bad);
    else
        report_pass("%s: destroy freed every host allocation", label);
}
