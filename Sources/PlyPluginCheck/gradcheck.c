/*
 * Check 4: backward against central differences.
 *
 * With L(x, W) = sum_k output[k] * grad_output[k] (accumulated in double),
 * backward's input gradients and weight gradients are dL/dx and dL/dW. For
 * a deterministic sample of elements (up to 32 per input, up to 16 per
 * weight) the checker sets v -> v+ = fl(v + h) and v- = fl(v - h) with
 * h = 1e-3 * max(1, |v|), runs forward, and compares
 *     fd = (L(v+) - L(v-)) / (v+ - v-)          (the step actually taken)
 * with the analytic value a. Tolerance, per sample:
 *     tol = 8 * noise + 1e-2 * max(|a|, |fd|) + 1e-7
 * noise estimates the float32 rounding in (L(v+) - L(v-)) / (v+ - v-).
 * Outputs that did not change are bitwise equal and cancel exactly in
 * double, so only the changed ones count; each is trusted to 4 ulps (2^-21)
 * of its scale, |out+_k| + |out-_k| + 2 mean|out| (the mean magnitude stands
 * in for the intermediate values a cancelling sum went through), and
 * independent roundings add like a random walk:
 *     noise = 2 * 2^-21 * sqrt(sum_{k changed} (scale_k * |g_k|)^2) / (v+ - v-)
 * The factor 8: over the 3,229 samples of the built-in plugins' golden cases
 * no smooth sample needed more than 4. The 1e-2 relative term covers the
 * O(h^2) truncation of smooth layers (tanh, softmax, batch-norm); a wrong
 * gradient is typically off by far more than 1%.
 *
 * Kinks (relu, max-pooling, relus inside blocks): if the step crosses one,
 * the central difference averages two slopes. Then the one-sided
 * differences (L(v+) - L(v))/(v+ - v) and (L(v) - L(v-))/(v - v-) disagree;
 * such a sample passes when a lies between them (within tol) -- a subgradient
 * -- and is counted as "at a kink"; otherwise it fails.
 *
 * State: every forward is followed by restoring all buffers (running
 * statistics, num_batches_tracked) to their values before the check, so a
 * train-mode batch-norm sees the same state each time. Forward is first run
 * twice on the same input: if the two outputs differ (dropout in train mode
 * draws a new mask each time) the check switches the layer to eval mode and
 * says so; if eval is not deterministic either, it is skipped.
 */
#include "check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INPUT_SAMPLES 32
#define MAX_WEIGHT_SAMPLES 16

typedef struct state {
    const type_info *ti;
    ply_layer *layer;
    int n_inputs;
    tensor inputs[MAX_INPUTS];
    ply_param *params;
    int n_params;
    void **saved; /* buffer values before the check */
    const float *g;
    double mean_abs;
} state;

static size_t param_bytes(const ply_param *p) {
    return (size_t)ply_shape_numel(&p->value.shape) * (p->value.dtype == PLY_DTYPE_I64 ? 8 : 4);
}

static void restore_buffers(state *s) {
    for (int i = 0; i < s->n_params; i++)
        if (s->saved[i]) memcpy(s->params[i].value.data, s->saved[i], param_bytes(&s->params[i]));
}

/* forward, then put the buffers back */
static bool run(state *s, tensor *out, const char *label) {
    char why[600];
    ply_status st = layer_forward(s->ti, s->layer, s->n_inputs, s->inputs, out, why, sizeof why);
    restore_buffers(s);
    if (st != PLY_OK) report_fail("%s: central differences: %s", label, why);
    return st == PLY_OK;
}

static double loss(const tensor *out, const float *g) {
    double l = 0;
    for (int64_t k = 0; k < out->n; k++) l += (double)out->data[k] * (double)g[k];
    return l;
}

static uint64_t mix(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The k-th of `count` sampled indices of [0, n): one per stride, at a hashed offset. */
static int64_t sample_index(int64_t n, int count, int k) {
    if (n <= count) return k;
    int64_t stride = n / count;
    return (int64_t)k * stride + (int64_t)(mix((uint64_t)k * 7919u + (uint64_t)n) % (uint64_t)stride);
}

typedef struct tally {
    int samples, kinks, failures;
    double worst; /* |fd - a| / tol */
} tally;

/* Perturbs *v (float32), compares with `analytic`; returns false on forward failure. */
static bool probe(state *s, float *v, double analytic, double l0, const char *label, const char *what, int64_t index,
                  tally *t) {
    const float original = *v;
    const double h = 1e-3 * fmax(1.0, fabs((double)original));
    const float vp = (float)((double)original + h), vm = (float)((double)original - h);
    tensor op = {0}, om = {0};
    *v = vp;
    bool ok = run(s, &op, label);
    *v = vm;
    ok = ok && run(s, &om, label);
    *v = original;
    if (!ok) {
        tensor_free(&op);
        tensor_free(&om);
        return false;
    }
    double lp = loss(&op, s->g), lm = loss(&om, s->g), q2 = 0;
    for (int64_t k = 0; k < op.n; k++) {
        if (op.data[k] == om.data[k]) continue; /* bitwise equal: cancels exactly in double */
        double q = (fabs((double)op.data[k]) + fabs((double)om.data[k]) + 2 * s->mean_abs) * fabs((double)s->g[k]);
        q2 += q * q;
    }
    const double dv = (double)vp - (double)vm;
    const double noise = 2 * ldexp(sqrt(q2), -21) / dv; /* rounding of L(v+) - L(v-), over the step */
    const double fd = (lp - lm) / dv;
    const double tol = 8 * noise + 1e-2 * fmax(fabs(analytic), fabs(fd)) + 1e-7;
    double err = fabs(fd - analytic);
    t->samples++;
    if (err <= tol) {
        if (err / tol > t->worst) t->worst = err / tol;
    } else {
        const double dplus = (lp - l0) / ((double)vp - original), dminus = (l0 - lm) / ((double)original - vm);
        const double tol1 = 16 * noise + 1e-2 * fmax(fabs(dplus), fabs(dminus)) + 1e-7; /* half steps */
        const double lo = fmin(dplus, dminus) - tol1, hi = fmax(dplus, dminus) + tol1;
        if (fabs(dplus - dminus) > tol1 && analytic >= lo && analytic <= hi) {
            t->kinks++;
        } else {
            if (t->failures++ == 0)
                report_fail("%s: backward's d/d %s[%lld] = %.6g but central differences give %.6g "
                            "(|diff| %.3g > tolerance %.3g; one-sided %.6g / %.6g; h = %.3g)",
                            label, what, (long long)index, analytic, fd, err, tol, dminus, dplus, dv / 2);
        }
    }
    tensor_free(&op);
    tensor_free(&om);
    return true;
}

static void conclude(const char *label, const char *what, const tally *t) {
    if (t->failures > 1) report_note("%s: %d of %d samples of %s disagree", label, t->failures, t->samples, what);
    if (t->failures) return;
    if (t->kinks)
        report_pass("%s: d/d %s matches central differences at %d sampled element%s (worst %.2f of the tolerance; "
                    "%d at a kink, within the one-sided slopes)", label, what, t->samples, t->samples == 1 ? "" : "s",
                    t->worst, t->kinks);
    else
        report_pass("%s: d/d %s matches central differences at %d sampled element%s (worst %.2f of the tolerance)",
                    label, what, t->samples, t->samples == 1 ? "" : "s", t->worst);
}

void gradcheck(const type_info *ti, const char *label, const ply_attrs *attrs, int n_inputs, const tensor *inputs,
               const bool *wants_grad, const named_tensor *load, int n_load, bool train, const tensor *grad_output) {
    char why[600];
    state s = {.ti = ti, .n_inputs = n_inputs};
    if (!ti->t.backward) return;
    host_error_clear();
    report_doing("%s: central differences: create", label);
    ply_status st = ti->t.create(host_table(), attrs, &s.layer);
    if (st != PLY_OK || !s.layer) {
        report_fail("%s: central differences: create returned %s: %s", label, status_name(st), host_error_message());
        return;
    }
    if (ti->t.set_training) ti->t.set_training(s.layer, train);
    for (int i = 0; i < n_inputs; i++) s.inputs[i] = tensor_copy(&inputs[i]);
    tensor out0 = {0}, again = {0}, g = {0};
    tensor grads[MAX_INPUTS];
    memset(grads, 0, sizeof grads);
    float **wgrads = NULL;
    s.n_params = layer_params(ti, s.layer, &s.params, why, sizeof why);
    if (s.n_params < 0) {
        report_fail("%s: central differences: parameters: %s", label, why);
        goto done;
    }
    if (!load_named(s.params, s.n_params, load, n_load, why, sizeof why)) {
        report_fail("%s: central differences: %s", label, why);
        goto done;
    }
    s.saved = calloc((size_t)s.n_params + 1, sizeof *s.saved);
    wgrads = calloc((size_t)s.n_params + 1, sizeof *wgrads);
    for (int i = 0; i < s.n_params; i++) {
        if (s.params[i].kind == PLY_PARAM_BUFFER) {
            s.saved[i] = malloc(param_bytes(&s.params[i]));
            memcpy(s.saved[i], s.params[i].value.data, param_bytes(&s.params[i]));
        }
    }
    /* Determinism: the same forward twice must give the same bits. */
    if (!run(&s, &out0, label) || !run(&s, &again, label)) goto done;
    if (memcmp(out0.data, again.data, (size_t)out0.n * sizeof(float)) != 0) {
        if (!ti->t.set_training || !train) {
            report_skip("%s: central differences: forward gives different outputs for the same input", label);
            goto done;
        }
        ti->t.set_training(s.layer, 0);
        report_note("%s: train-mode forward is not deterministic (random masks?): central differences in eval mode",
                    label);
        tensor_free(&out0);
        tensor_free(&again);
        if (!run(&s, &out0, label) || !run(&s, &again, label)) goto done;
        if (memcmp(out0.data, again.data, (size_t)out0.n * sizeof(float)) != 0) {
            report_skip("%s: central differences: eval-mode forward is not deterministic either", label);
            goto done;
        }
    }
    if (grad_output && !shape_eq(&grad_output->shape, &out0.shape)) grad_output = NULL;
    if (grad_output) {
        g = tensor_copy(grad_output);
    } else {
        g = tensor_new(out0.shape);
        for (int64_t k = 0; k < g.n; k++) /* U[-1, 1) */
            g.data[k] = (float)((double)(mix((uint64_t)k + 12345u) >> 11) / 9007199254740992.0 * 2 - 1);
    }
    s.g = g.data;
    for (int64_t k = 0; k < out0.n; k++) s.mean_abs += fabs((double)out0.data[k]) / (double)out0.n;

    /* Analytic gradients: forward (buffers as before), backward. */
    tensor_free(&out0);
    for (int i = 0; i < s.n_params; i++)
        if (s.params[i].kind == PLY_PARAM_WEIGHT) memset(s.params[i].grad.data, 0, param_bytes(&s.params[i]));
    ply_tensor views[MAX_INPUTS], gviews[MAX_INPUTS];
    for (int i = 0; i < n_inputs; i++) {
        views[i] = tensor_view(&s.inputs[i]);
        grads[i] = tensor_new(inputs[i].shape);
        for (int64_t k = 0; k < grads[i].n; k++) grads[i].data[k] = NAN;
        gviews[i] = tensor_view(&grads[i]);
        if (!wants_grad[i]) gviews[i].data = NULL;
    }
    st = layer_forward(ti, s.layer, n_inputs, s.inputs, &out0, why, sizeof why);
    if (st != PLY_OK) { report_fail("%s: central differences: %s", label, why); goto done; }
    ply_tensor ov = tensor_view(&out0), gv = tensor_view(&g);
    report_doing("%s: central differences: backward", label);
    host_error_clear();
    st = ti->t.backward(s.layer, n_inputs, views, &ov, &gv, gviews);
    restore_buffers(&s);
    if (st != PLY_OK) {
        report_fail("%s: central differences: backward returned %s: %s", label, status_name(st), host_error_message());
        goto done;
    }
    for (int i = 0; i < s.n_params; i++) {
        if (s.params[i].kind != PLY_PARAM_WEIGHT) continue;
        wgrads[i] = malloc(param_bytes(&s.params[i]));
        memcpy(wgrads[i], s.params[i].grad.data, param_bytes(&s.params[i]));
    }
    const double l0 = loss(&out0, s.g);

    for (int i = 0; i < n_inputs; i++) {
        if (!wants_grad[i]) continue;
        char what[64];
        tally t = {0};
        int count = grads[i].n < MAX_INPUT_SAMPLES ? (int)grads[i].n : MAX_INPUT_SAMPLES;
        snprintf(what, sizeof what, "input[%d]", i);
        for (int k = 0; k < count; k++) {
            int64_t idx = sample_index(grads[i].n, count, k);
            report_doing("%s: central differences on %s[%lld]", label, what, (long long)idx);
            if (!probe(&s, &s.inputs[i].data[idx], grads[i].data[idx], l0, label, what, idx, &t)) goto done;
        }
        conclude(label, what, &t);
    }
    for (int i = 0; i < s.n_params; i++) {
        if (s.params[i].kind != PLY_PARAM_WEIGHT || s.params[i].value.dtype != PLY_DTYPE_F32) continue;
        tally t = {0};
        int64_t n = ply_shape_numel(&s.params[i].value.shape);
        int count = n < MAX_WEIGHT_SAMPLES ? (int)n : MAX_WEIGHT_SAMPLES;
        for (int k = 0; k < count; k++) {
            int64_t idx = sample_index(n, count, k);
            report_doing("%s: central differences on %s[%lld]", label, s.params[i].name, (long long)idx);
            if (!probe(&s, (float *)s.params[i].value.data + idx, wgrads[i][idx], l0, label, s.params[i].name, idx, &t))
                goto done;
        }
        conclude(label, s.params[i].name, &t);
    }
done:
    tensor_free(&out0);
    tensor_free(&again);
    tensor_free(&g);
    for (int i = 0; i < MAX_INPUTS; i++) {
        tensor_free(&grads[i]);
        tensor_free(&s.inputs[i]);
    }
    for (int i = 0; s.saved && i < s.n_params; i++) free(s.saved[i]);
    for (int i = 0; wgrads && i < s.n_params; i++) free(wgrads[i]);
    free(s.saved);
    free(wgrads);
    free(s.params);
    report_doing("%s: central differences: destroy", label);
    ti->t.destroy(s.layer);
}
