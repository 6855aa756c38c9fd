/*
 * The child-layer graph behind every block of the Inception plugin (see
 * inception_graph.h): building, shapes, forward, backward and parameters (the
 * evaluation forward's arena and image groups: inception_eval.c).
 * Conv, batch-norm, ReLU, pooling and concat are the host's own layers; this
 * file only wires them and sums the gradients where a value feeds several
 * children.
 */
#include <stdio.h>
#include <string.h>

#include "inception_graph.h"

static ply_attrs attr_list(const ply_attr *items, int32_t count) {
    ply_attrs a;
    a.struct_size = (uint32_t)sizeof(ply_attrs);
    a.abi_version = PLY_ABI_VERSION;
    a.count = count;
    a.reserved = 0;
    a.items = items;
    return a;
}

static ply_attr attr_int(const char *name, int64_t v) {
    ply_attr a;
    a.name = name; a.kind = PLY_ATTR_INT; a.count = 1; a.v.i = v;
    return a;
}

static ply_attr attr_ints(const char *name, const int64_t *v, int32_t count) {
    ply_attr a;
    a.name = name; a.kind = PLY_ATTR_INTS; a.count = count; a.v.ints = v;
    return a;
}

static ply_attr attr_bool(const char *name, int v) {
    ply_attr a;
    a.name = name; a.kind = PLY_ATTR_BOOL; a.count = 1; a.v.i = v ? 1 : 0;
    return a;
}

ply_status blk_positive_attr(const ply_host *host, const ply_attrs *attrs, const char *type_name, const char *name,
                             int64_t *out) {
    ply_status st = host->attr_int(host, attrs, name, out);
    if (st == PLY_ERR_NOT_FOUND)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "%s: missing required attribute '%s'", type_name, name);
    if (st != PLY_OK) return st;
    if (*out <= 0 || *out > INT32_MAX)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "%s: %s must be a positive integer (got %lld)", type_name,
                          name, (long long)*out);
    return PLY_OK;
}

// ----------------------------------------------------------------------------
// building

ply_layer *blk_new(const ply_host *host, const char *type_name, const char *class_name, int64_t in_channels) {
    ply_layer *self = host->alloc(host, sizeof *self);
    if (!self) {
        ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "%s: out of memory", type_name);
        return NULL;
    }
    memset(self, 0, sizeof *self);
    self->host = host;
    self->type_name = type_name;
    self->class_name = class_name;
    self->in_channels = in_channels;
    self->training = 1;
    self->fold_node = -1;
    return self;
}

void blk_fold(ply_layer *self, const ply_status *st, int32_t conv_node, const int64_t k[2], const int64_t s[2],
              const int64_t p[2], double eps) {
    if (*st != PLY_OK) return;
    self->fold_node = conv_node;
    for (int a = 0; a < 2; a++) {
        self->fold_k[a] = k[a];
        self->fold_s[a] = s[a];
        self->fold_p[a] = p[a];
    }
    self->fold_eps = eps;
}

int32_t blk_add(ply_layer *self, ply_status *st, const char *prefix, const char *type, const ply_attr *attrs,
                int32_t n_attrs, const int32_t *in, int32_t n_in) {
    if (*st != PLY_OK) return -1;
    const ply_host *h = self->host;
    if (self->n_nodes >= BLK_MAX_NODES || n_in < 1 || n_in > BLK_MAX_IN) {
        *st = ply_errorf(h, PLY_ERR_INTERNAL, "%s: block graph limits exceeded", self->type_name);
        return -1;
    }
    blk_node *nd = &self->nodes[self->n_nodes];
    for (int32_t j = 0; j < n_in; j++) {
        if (in[j] < 0 || in[j] > self->n_nodes) {
            *st = ply_errorf(h, PLY_ERR_INTERNAL, "%s: node %s reads an undefined value", self->type_name, type);
            return -1;
        }
        nd->in[j] = in[j];
    }
    nd->n_in = n_in;
    snprintf(nd->prefix, sizeof nd->prefix, "%s", prefix ? prefix : "");
    ply_attrs list = attr_list(attrs, n_attrs);
    ply_status s = h->create_layer(h, type, &list, &nd->type, &nd->layer);
    if (s != PLY_OK) {
        nd->type = NULL;
        nd->layer = NULL;
        *st = s;  // the child's message stands
        return -1;
    }
    nd->n_params = nd->type->param_count ? nd->type->param_count(nd->layer) : 0;
    if (nd->n_params > 0 && !nd->type->get_param) nd->n_params = 0;
    self->n_nodes++;
    return self->n_nodes;
}

int32_t blk_conv(ply_layer *self, ply_status *st, const char *prefix, int32_t in, int64_t cin, int64_t cout,
                 int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw) {
    const int64_t k[2] = {kh, kw}, s[2] = {sh, sw}, p[2] = {ph, pw};
    const ply_attr a[5] = {
        attr_int("in_channels", cin), attr_int("out_channels", cout), attr_ints("kernel_size", k, 2),
        attr_ints("stride", s, 2), attr_ints("padding", p, 2),
    };
    return blk_add(self, st, prefix, "basic_conv2d", a, 5, &in, 1);
}

int32_t blk_pool(ply_layer *self, ply_status *st, const char *type, int32_t in, int64_t k, int64_t s, int64_t p,
                 int ceil_mode) {
    ply_attr a[5] = {attr_int("kernel_size", k), attr_int("stride", s), attr_int("padding", p),
                     attr_bool("ceil_mode", ceil_mode), attr_bool("count_include_pad", 1)};
    return blk_add(self, st, NULL, type, a, strcmp(type, "avgpool2d") == 0 ? 5 : 4, &in, 1);
}

int32_t blk_concat(ply_layer *self, ply_status *st, const int32_t *in, int32_t n_in) {
    ply_attr a[1] = {attr_int("dim", 1)};
    return blk_add(self, st, NULL, "concat", a, 1, in, n_in);
}

void blk_name(ply_layer *self, const ply_status *st, int32_t v, const char *name) {
    if (*st != PLY_OK || v < 1 || v > self->n_nodes) return;
    snprintf(self->nodes[v - 1].prefix, sizeof self->nodes[v - 1].prefix, "%s", name);
}

ply_status blk_finish(ply_layer *self, ply_status st, ply_layer **out) {
    const ply_host *h = self->host;
    if (st == PLY_OK && self->n_nodes == 0) st = ply_errorf(h, PLY_ERR_INTERNAL, "%s: empty block", self->type_name);
    int32_t total = 0;
    for (int32_t i = 0; st == PLY_OK && i < self->n_nodes; i++) total += self->nodes[i].n_params;
    if (st == PLY_OK && total > 0) {
        self->param_names = h->alloc(h, (size_t)total * sizeof(char *));
        if (!self->param_names) st = ply_errorf(h, PLY_ERR_OUT_OF_MEMORY, "%s: out of memory", self->type_name);
        else memset(self->param_names, 0, (size_t)total * sizeof(char *));
    }
    for (int32_t i = 0; st == PLY_OK && i < self->n_nodes; i++) {
        blk_node *nd = &self->nodes[i];
        for (int32_t k = 0; st == PLY_OK && k < nd->n_params; k++) {
            ply_param p;
            memset(&p, 0, sizeof p);
            if ((st = nd->type->get_param(nd->layer, k, &p)) != PLY_OK) break;
            const char *name = p.name ? p.name : "";
            size_t len = strlen(nd->prefix) + 1 + strlen(name) + 1;
            char *s = h->alloc(h, len);
            if (!s) { st = ply_errorf(h, PLY_ERR_OUT_OF_MEMORY, "%s: out of memory", self->type_name); break; }
            if (nd->prefix[0]) snprintf(s, len, "%s.%s", nd->prefix, name);
            else snprintf(s, len, "%s", name);
            self->param_names[self->n_params++] = s;
        }
    }
    if (st != PLY_OK) {
        blk_destroy(self);
        return st;
    }
    *out = self;
    return PLY_OK;
}

void blk_destroy(ply_layer *self) {
    if (!self) return;
    const ply_host *h = self->host;
    for (int32_t i = 0; i < self->n_nodes; i++) {
        blk_node *nd = &self->nodes[i];
        if (nd->type && nd->layer) nd->type->destroy(nd->layer);
        h->free(h, nd->value);
        h->free(h, nd->grad);
    }
    for (int32_t i = 0; i < self->n_params; i++) h->free(h, self->param_names[i]);
    h->free(h, self->param_names);
    for (int32_t j = 0; j < BLK_MAX_IN; j++) h->free(h, self->scratch[j]);
    h->free(h, self->arena);
    ply_fold_destroy(&self->fold);
    ply_fold_destroy(&self->fused.conv);
    h->free(h, self);
}

// ----------------------------------------------------------------------------
// running

// Grow a float buffer to hold n values (no-op when it already does).
ply_status blk_ensure(ply_layer *self, float **buf, int64_t *cap, int64_t n) {
    if (*cap >= n) return PLY_OK;
    const ply_host *h = self->host;
    h->free(h, *buf);
    *buf = h->alloc(h, (size_t)n * sizeof(float));
    *cap = *buf ? n : 0;
    if (!*buf)
        return ply_errorf(h, PLY_ERR_OUT_OF_MEMORY, "%s: cannot allocate %lld floats for intermediate values",
                          self->type_name, (long long)n);
    return PLY_OK;
}

// Shapes of every value for an input of shape `in` (shapes[0] = in).
ply_status blk_value_shapes(ply_layer *self, const ply_shape *in, ply_shape *shapes) {
    const ply_host *h = self->host;
    if (in->ndim != 4)
        return ply_errorf(h, PLY_ERR_SHAPE, "%s: input 0 must be [N, C, H, W] (got %d dimensions)", self->type_name,
                          in->ndim);
    if (self->in_channels > 0 && in->dims[1] != self->in_channels)
        return ply_errorf(h, PLY_ERR_SHAPE, "%s: input 0 dimension 1 (channels) is %lld, expected in_channels = %lld",
                          self->type_name, (long long)in->dims[1], (long long)self->in_channels);
    shapes[0] = *in;
    if (self->fold_only) // frozen basic_conv2d: the folded conv has the block's geometry
        return self->fold.type->infer_shape(self->fold.layer, 1, in, &shapes[self->n_nodes]);
    for (int32_t i = 0; i < self->n_nodes; i++) {
        blk_node *nd = &self->nodes[i];
        ply_shape ins[BLK_MAX_IN];
        for (int32_t j = 0; j < nd->n_in; j++) ins[j] = shapes[nd->in[j]];
        ply_status st = nd->type->infer_shape(nd->layer, nd->n_in, ins, &shapes[i + 1]);
        if (st != PLY_OK) return st;
        for (int32_t d = 0; d < shapes[i + 1].ndim; d++)
            if (shapes[i + 1].dims[d] <= 0)
                return ply_errorf(h, PLY_ERR_SHAPE,
                                  "%s: input 0 of %lld x %lld pixels is too small (%s%s%s gives an empty output)",
                                  self->type_name, (long long)in->dims[2], (long long)in->dims[3],
                                  nd->prefix[0] ? nd->prefix : nd->type->name, nd->prefix[0] ? " " : "",
                                  nd->prefix[0] ? nd->type->name : "");
    }
    return PLY_OK;
}

ply_status blk_describe(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, ply_layer_info *info) {
    ply_shape shapes[BLK_MAX_NODES + 1];
    ply_window win[BLK_MAX_NODES + 1];  // value v's window relative to the block's input
    double plane[BLK_MAX_NODES + 1][2]; // the last 4-d map on v's path (what a global child spans)
    (void)n_inputs;
    if (self->frozen)
        return ply_errorf(self->host, PLY_ERR_UNSUPPORTED, "%s: frozen for inference: no description",
                          self->type_name);
    ply_status st = blk_value_shapes(self, &inputs[0], shapes);
    if (st != PLY_OK) return st;
    win[0] = ply_window_identity();
    plane[0][0] = (double)inputs[0].dims[2];
    plane[0][1] = (double)inputs[0].dims[3];
    for (int32_t i = 0; i < self->n_nodes; i++) {
        blk_node *nd = &self->nodes[i];
        ply_shape ins[BLK_MAX_IN];
        ply_window w = win[nd->in[0]], cw;
        double pl[2] = {plane[nd->in[0]][0], plane[nd->in[0]][1]};
        for (int32_t j = 0; j < nd->n_in; j++) {
            int32_t v = nd->in[j];
            ins[j] = shapes[v];
            w = ply_window_join(w, win[v]);
            for (int a = 0; a < 2; a++) pl[a] = plane[v][a] > pl[a] ? plane[v][a] : pl[a];
        }
        if ((st = ply_child_window(nd->type, nd->layer, nd->n_in, ins, pl, &cw, NULL)) != PLY_OK) return st;
        win[i + 1] = ply_window_then(w, cw);
        const ply_shape *o = &shapes[i + 1];
        plane[i + 1][0] = o->ndim == 4 ? (double)o->dims[2] : pl[0];
        plane[i + 1][1] = o->ndim == 4 ? (double)o->dims[3] : pl[1];
        // Nodes torchvision registers as modules have a name; its functional steps (F.relu,
        // F.avg_pool2d, torch.cat) do not and are not reported.
        if (nd->prefix[0] &&
            (st = ply_info_add_child(info, nd->prefix, nd->type, nd->layer, nd->n_in, ins, o)) != PLY_OK)
            return st;
    }
    ply_info_set_window(info, win[self->n_nodes]);
    ply_info_set_class_name(info, self->class_name);
    return PLY_OK;
}

ply_status blk_infer_shape(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, ply_shape *output) {
    ply_shape shapes[BLK_MAX_NODES + 1];
    (void)n_inputs;
    ply_status st = blk_value_shapes(self, &inputs[0], shapes);
    if (st == PLY_OK) *output = shapes[self->n_nodes];
    return st;
}

static ply_tensor view(void *data, ply_shape shape) { return ply_tensor_make(data, shape); }

// The tensor of value v during the current forward/backward.
static ply_tensor value_of(ply_layer *self, int32_t v, const ply_tensor *input, const ply_tensor *output) {
    if (v == 0) return view(input->data, input->shape);
    if (v == self->n_nodes) return view(output->data, output->shape);
    return view(self->nodes[v - 1].value, self->nodes[v - 1].shape);
}

// ----------------------------------------------------------------------------
// evaluation: basic_conv2d folded

// Makes the folded conv (first call) and derives its values when stale. *ok = 0 when the conv type
// will not take the relu: the block then runs unfolded.
ply_status blk_sync_fold(ply_layer *self, int *ok) {
    const ply_host *h = self->host;
    blk_node *conv = &self->nodes[self->fold_node], *bn = &self->nodes[self->fold_node + 1];
    ply_param p;
    memset(&p, 0, sizeof p);
    ply_status st = conv->type->get_param(conv->layer, 0, &p);
    if (st != PLY_OK) return st;
    int64_t OC = p.value.shape.dims[0], K = ply_shape_numel(&p.value.shape) / (OC > 0 ? OC : 1);
    if (!self->fold.layer) {
        const ply_attr a[7] = {
            attr_int("in_channels", self->in_channels), attr_int("out_channels", OC),
            attr_ints("kernel_size", self->fold_k, 2), attr_ints("stride", self->fold_s, 2),
            attr_ints("padding", self->fold_p, 2), attr_bool("bias", 1), attr_bool("trainable", 0),
        };
        ply_attrs list = attr_list(a, 7);
        if ((st = h->create_layer(h, "conv2d", &list, &self->fold.type, &self->fold.layer)) != PLY_OK) {
            self->fold.type = NULL;
            self->fold.layer = NULL;
            return st;
        }
        const ply_layer_type *t = self->fold.type;
        if (t->set_training) t->set_training(self->fold.layer, 0);
        self->fold.relu = t->struct_size >= offsetof(ply_layer_type, fuse_activation) + sizeof(t->fuse_activation) &&
                          t->fuse_activation && t->fuse_activation(self->fold.layer, "relu") == PLY_OK;
    }
    *ok = self->fold.relu;
    if (!*ok || !ply_fold_stale(h, &self->fold)) return PLY_OK;
    return ply_fold_write(h, self->type_name, &self->fold, conv->type, conv->layer, bn->type, bn->layer, OC, K,
                          self->fold_eps);
}

// ----------------------------------------------------------------------------
// forward

// Runs nodes [0, upto) (all of them when upto is n_nodes; the last writes `output`).
static ply_status forward_nodes(ply_layer *self, const ply_tensor *input, ply_tensor *output, int32_t upto) {
    ply_shape shapes[BLK_MAX_NODES + 1];
    ply_status st = blk_value_shapes(self, &input->shape, shapes);
    if (st != PLY_OK) return st;
    int32_t last = self->n_nodes - 1;
    for (int32_t i = 0; i <= last; i++) {
        blk_node *nd = &self->nodes[i];
        nd->shape = shapes[i + 1];
        if (i < last && (st = blk_ensure(self, &nd->value, &nd->value_cap, ply_shape_numel(&nd->shape))) != PLY_OK)
            return st;
    }
    for (int32_t i = 0; i < upto; i++) {
        blk_node *nd = &self->nodes[i];
        ply_tensor ins[BLK_MAX_IN];
        for (int32_t j = 0; j < nd->n_in; j++) ins[j] = value_of(self, nd->in[j], input, output);
        ply_tensor out = i == last ? *output : view(nd->value, nd->shape);
        if ((st = nd->type->forward(nd->layer, nd->n_in, ins, &out)) != PLY_OK) return st;
    }
    return PLY_OK;
}

void blk_release_values(ply_layer *self) {
    const ply_host *h = self->host;
    for (int32_t i = 0; i < self->n_nodes; i++) {
        blk_node *nd = &self->nodes[i];
        h->free(h, nd->value);
        nd->value = NULL;
        nd->value_cap = 0;
    }
    self->kept = 0;
}

ply_status blk_forward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output) {
    (void)n_inputs;
    if (inputs[0].strides || output->strides)
        return ply_errorf(self->host, PLY_ERR_UNSUPPORTED, "%s: strided tensors are not supported", self->type_name);
    self->kept = 0;
    if (self->training && !self->frozen) {
        if (self->fold_node >= 0) self->fold.valid = 0; // the bn's running statistics move
        self->fused.conv.valid = 0;                      // (the members' too)
        ply_status st = forward_nodes(self, &inputs[0], output, self->n_nodes);
        self->kept = st == PLY_OK;
        return st;
    }
    ply_status st;
    int folded = 0;
    if (self->fold_node >= 0) {
        ply_shape out_shape;
        if ((st = blk_infer_shape(self, 1, &inputs[0].shape, &out_shape)) != PLY_OK) return st;
        if (self->fold_only) return self->fold.type->forward(self->fold.layer, 1, &inputs[0], output);
        if ((st = blk_sync_fold(self, &folded)) != PLY_OK) return st;
        if (folded) return self->fold.type->forward(self->fold.layer, 1, &inputs[0], output);
    }
    blk_release_values(self);
    return blk_forward_eval(self, &inputs[0], output, PLY_LAYOUT_NCHW);
}

ply_status blk_backward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, const ply_tensor *output,
                        const ply_tensor *grad_output, ply_tensor *grad_inputs) {
    const ply_host *h = self->host;
    int32_t last = self->n_nodes - 1;
    int written[BLK_MAX_NODES + 1] = {0};  // gradient of value v already holds a contribution
    ply_status st;
    (void)n_inputs;
    if (self->frozen)
        return ply_errorf(h, PLY_ERR_UNSUPPORTED, "%s: frozen for inference: no backward", self->type_name);
    // An evaluation forward kept no node value (or ran folded): every node again, so each child saves what
    // its backward reads; the last writes to scratch, leaving the output as the caller's forward saw it.
    if (!self->kept) {
        float *tmp = h->alloc(h, (size_t)ply_shape_numel(&output->shape) * sizeof(float));
        if (!tmp)
            return ply_errorf(h, PLY_ERR_OUT_OF_MEMORY, "%s: cannot allocate %lld floats to recompute the output",
                              self->type_name, (long long)ply_shape_numel(&output->shape));
        ply_tensor out = ply_tensor_make(tmp, output->shape);
        st = forward_nodes(self, &inputs[0], &out, self->n_nodes);
        h->free(h, tmp);
        if (st != PLY_OK) return st;
        self->kept = 1;
    }
    for (int32_t i = 0; i < last; i++) {
        blk_node *nd = &self->nodes[i];
        if ((st = blk_ensure(self, &nd->grad, &nd->grad_cap, ply_shape_numel(&nd->shape))) != PLY_OK) return st;
    }
    for (int32_t i = last; i >= 0; i--) {
        blk_node *nd = &self->nodes[i];
        if (!nd->type->backward)
            return ply_errorf(h, PLY_ERR_UNSUPPORTED, "%s: child layer %s has no backward", self->type_name,
                              nd->type->name);
        ply_tensor gout = i == last ? *grad_output : view(nd->grad, nd->shape);
        if (i < last && !written[i + 1]) memset(nd->grad, 0, (size_t)ply_shape_numel(&nd->shape) * sizeof(float));

        ply_tensor ins[BLK_MAX_IN], gins[BLK_MAX_IN];
        float *target[BLK_MAX_IN];
        int accumulate[BLK_MAX_IN], needed = nd->n_params > 0;
        for (int32_t j = 0; j < nd->n_in; j++) {
            int32_t v = nd->in[j];
            ins[j] = value_of(self, v, &inputs[0], output);
            target[j] = v == 0 ? grad_inputs[0].data : self->nodes[v - 1].grad;
            accumulate[j] = target[j] && written[v];
            if (accumulate[j]) {
                int64_t n = ply_shape_numel(&ins[j].shape);
                if ((st = blk_ensure(self, &self->scratch[j], &self->scratch_cap[j], n)) != PLY_OK) return st;
                gins[j] = view(self->scratch[j], ins[j].shape);
            } else {
                gins[j] = view(target[j], ins[j].shape);
            }
            if (target[j]) needed = 1;
        }
        if (!needed) continue;  // no parameters and no input gradient wanted
        ply_tensor out = i == last ? *output : view(nd->value, nd->shape);
        if ((st = nd->type->backward(nd->layer, nd->n_in, ins, &out, &gout, gins)) != PLY_OK) return st;
        for (int32_t j = 0; j < nd->n_in; j++) {
            if (!target[j]) continue;
            if (accumulate[j]) {
                int64_t n = ply_shape_numel(&ins[j].shape);
                float *dst = target[j];
                const float *src = self->scratch[j];
                for (int64_t k = 0; k < n; k++) dst[k] += src[k];
            }
            written[nd->in[j]] = 1;
        }
    }
    return PLY_OK;
}

// ----------------------------------------------------------------------------
// parameters and mode

int32_t blk_param_count(ply_layer *self) { return self->n_params; }

ply_status blk_get_param(ply_layer *self, int32_t index, ply_param *out) {
    if (self->frozen)
        return ply_errorf(self->host, PLY_ERR_UNSUPPORTED, "%s: frozen for inference: its parameters may be freed",
                          self->type_name);
    if (index < 0 || index >= self->n_params)
        return ply_errorf(self->host, PLY_ERR_NOT_FOUND, "%s: parameter index %d out of range [0, %d)",
                          self->type_name, index, self->n_params);
    int32_t k = index;
    for (int32_t i = 0; i < self->n_nodes; i++) {
        blk_node *nd = &self->nodes[i];
        if (k < nd->n_params) {
            ply_status st = nd->type->get_param(nd->layer, k, out);
            if (st == PLY_OK) out->name = self->param_names[index];
            return st;
        }
        k -= nd->n_params;
    }
    return ply_errorf(self->host, PLY_ERR_INTERNAL, "%s: parameter %d not found", self->type_name, index);
}

void blk_set_training(ply_layer *self, int32_t training) {
    if (self->frozen) return; // plugin.h: the host no longer calls it; forward stays in evaluation
    self->training = training != 0;
    self->fused.conv.valid = 0; // the stacked weights are copied again before their next use
    if (!training) blk_release_values(self);
    if (training) {
        self->host->free(self->host, self->arena);
        self->arena = NULL;
        self->arena_cap = 0;
    }
    for (int32_t i = 0; i < self->n_nodes; i++) {
        blk_node *nd = &self->nodes[i];
        if (nd->type->set_training) nd->type->set_training(nd->layer, training);
    }
}

// ----------------------------------------------------------------------------
// frozen for inference

ply_status blk_freeze(ply_layer *self) {
    const ply_host *h = self->host;
    if (self->frozen) return PLY_OK;
    if (self->training)
        return ply_errorf(h, PLY_ERR_INVALID_ARGUMENT, "%s: freeze in training mode (call set_training(0) first)",
                          self->type_name);
    int folded = 0;
    if (self->fold_node >= 0) {
        ply_status st = blk_sync_fold(self, &folded); // nothing is freed before this succeeds: all-or-nothing
        if (st != PLY_OK) return st;
    }
    // The stacked 1x1 branches copy their members' folded weights when made and when stale, and a frozen member's
    // conv may have freed its weights (conv2d's freeze, below the AVX-512 level, keeps 1x1 weights packed only):
    // made before the freeze, the stacked conv is synced a last time and final; else it is never made (the
    // members run on their own at every batch). Synced before anything is freed: all-or-nothing.
    blk_fused *fz = &self->fused;
    if (fz->n && !fz->failed && fz->conv.layer) {
        int ok = 0;
        ply_status st = blk_fused_sync(self, &ok);
        if (st != PLY_OK) return st;
        fz->final = ok;
    }
    if (folded) { // the fold does the whole block: its children's weights go
        if (PLY_TYPE_HAS_FREEZE(self->fold.type)) (void)self->fold.type->freeze(self->fold.layer);
        for (int32_t i = 0; i < self->n_nodes; i++) {
            blk_node *nd = &self->nodes[i];
            if (nd->layer) nd->type->destroy(nd->layer);
            nd->layer = NULL;
        }
        self->fold_only = 1;
    } else { // a graph of children that keep running: each frees what it can (a refusal keeps its memory)
        for (int32_t i = 0; i < self->n_nodes; i++) {
            blk_node *nd = &self->nodes[i];
            if (nd->layer && PLY_TYPE_HAS_FREEZE(nd->type)) (void)nd->type->freeze(nd->layer);
        }
    }
    if (fz->final) {
        if (PLY_TYPE_HAS_FREEZE(fz->conv.type)) (void)fz->conv.type->freeze(fz->conv.layer);
    } else {
        fz->failed = 1;
    }
    blk_release_values(self);
    for (int32_t i = 0; i < self->n_nodes; i++) {
        blk_node *nd = &self->nodes[i];
        h->free(h, nd->grad);
        nd->grad = NULL;
        nd->grad_cap = 0;
    }
    for (int32_t j = 0; j < BLK_MAX_IN; j++) {
        h->free(h, self->scratch[j]);
        self->scratch[j] = NULL;
        self->scratch_cap[j] = 0;
    }
    self->frozen = 1;
    return PLY_OK;
}
