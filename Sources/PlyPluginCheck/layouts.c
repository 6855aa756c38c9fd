/*
 * Check 8: the blocked channel layout (ABI 1.7, plugin.h's ply_layout,
 * eval_layouts and forward_layout), for a type that has the slots, on the
 * sample shapes of the other checks (a golden case's inputs, or [2, 3, 4, 5]),
 * in evaluation mode (set_training(0)):
 *
 *   - both slots or neither (checks.c's check_type reports one alone);
 *   - eval_layouts succeeds for shapes infer_shape accepts, and NCHW is in
 *     every set it gives (accepts[i] and *produces), with no bit that is not
 *     a ply_layout;
 *   - for each combination it offers that involves NCHW16C (every 4-D input
 *     that accepts it blocked with the output NCHW; the inputs NCHW with a 4-D
 *     output blocked; both), forward_layout on the same random values
 *     reordered to NCHW16C (zero padding lanes), into an output pre-filled
 *     with a sentinel NaN, equals forward's NCHW output: every logical element
 *     written, within 1e-5 relative, and every padding lane of a blocked
 *     output exactly 0.
 */
#include "check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLK PLY_LAYOUT_BIT(PLY_LAYOUT_NCHW16C)
#define NCHW_BIT PLY_LAYOUT_BIT(PLY_LAYOUT_NCHW)
#define KNOWN_BITS (NCHW_BIT | BLK)

/* What forward_layout leaves where it wrote nothing: a NaN no arithmetic produces. */
static const uint32_t sentinel_bits = 0x7fa5a5a5u;

static float sentinel(void) {
    float f;
    memcpy(&f, &sentinel_bits, sizeof f);
    return f;
}

static bool is_sentinel(float f) {
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b == sentinel_bits;
}

static const char *layout_name(int32_t layout) {
    return layout == PLY_LAYOUT_NCHW ? "NCHW" : layout == PLY_LAYOUT_NCHW16C ? "NCHW16C" : "?";
}

static const char *set_str(uint32_t set, char *buf, size_t size) {
    snprintf(buf, size, "{%s%s%s", set & NCHW_BIT ? "NCHW" : "", (set & NCHW_BIT) && (set & BLK) ? ", " : "",
             set & BLK ? "NCHW16C" : "");
    size_t k = strlen(buf);
    if (set & ~KNOWN_BITS) snprintf(buf + k, size - k, "%s0x%x}", set & KNOWN_BITS ? ", " : "", set & ~KNOWN_BITS);
    else snprintf(buf + k, size - k, "}");
    return buf;
}

/* The element count of `s` in NCHW16C: N * ceil(C/16) * 16 * H * W; false when
 * it is not 4-D with dims >= 0 or the count (in bytes) overflows. */
static bool blocked_count(const ply_shape *s, int64_t *count) {
    if (s->ndim != 4) return false;
    int64_t c = 1;
    for (int d = 0; d < 4; d++) {
        int64_t v = s->dims[d];
        if (d == 1) {
            if (v < 0 || v > INT64_MAX - 15) return false;
            v = (v + 15) / 16 * 16;
        }
        if (v < 0) return false;
        if (v && c > (INT64_MAX / (int64_t)sizeof(float)) / v) return false;
        c *= v;
    }
    if ((uint64_t)c > SIZE_MAX / sizeof(float) - 64) return false;
    *count = c;
    return true;
}

/* A checker-owned buffer of `count` floats for a value of logical shape `shape`. */
static tensor buffer_new(ply_shape shape, int64_t count) {
    tensor t = {.shape = shape, .n = count};
    size_t bytes = ((size_t)(count > 0 ? count : 1) * sizeof(float) + 63) / 64 * 64;
    t.data = aligned_alloc(64, bytes);
    if (!t.data) {
        fprintf(stderr, "ply-plugin-check: out of memory\n");
        exit(2);
    }
    memset(t.data, 0, bytes);
    return t;
}

/* Offset of (n, c, h, w) of a 4-D value of shape s in `layout`. */
static int64_t at(int32_t layout, const ply_shape *s, int64_t n, int64_t c, int64_t h, int64_t w) {
    const int64_t C = s->dims[1], H = s->dims[2], W = s->dims[3];
    if (layout == PLY_LAYOUT_NCHW) return ((n * C + c) * H + h) * W + w;
    return (((n * ((C + 15) / 16) + c / 16) * H + h) * W + w) * 16 + c % 16;
}

/* One run of forward_layout against forward's NCHW output `ref`. */
static void run_combination(const type_info *ti, ply_layer *layer, const char *label, int n_inputs,
                            const tensor *inputs, const int32_t *in_layouts, const tensor *ref, int32_t out_layout) {
    char layouts[200], why[300] = "";
    size_t k = (size_t)snprintf(layouts, sizeof layouts, "inputs [");
    for (int i = 0; i < n_inputs && k < sizeof layouts; i++)
        k += (size_t)snprintf(layouts + k, sizeof layouts - k, "%s%s", i ? ", " : "", layout_name(in_layouts[i]));
    if (k < sizeof layouts) snprintf(layouts + k, sizeof layouts - k, "] -> output %s", layout_name(out_layout));

    tensor blocked[MAX_INPUTS], out = {0};
    ply_tensor views[MAX_INPUTS];
    memset(blocked, 0, sizeof blocked);
    bool sized = true;
    for (int i = 0; i < n_inputs; i++) {
        views[i] = tensor_view(&inputs[i]);
        if (in_layouts[i] != PLY_LAYOUT_NCHW16C) continue;
        const ply_shape *s = &inputs[i].shape;
        int64_t count;
        if (!blocked_count(s, &count)) {
            snprintf(why, sizeof why, "input %d: NCHW16C size overflows", i);
            sized = false;
            break;
        }
        blocked[i] = buffer_new(*s, count); /* zero: the padding lanes */
        for (int64_t n = 0; n < s->dims[0]; n++)
            for (int64_t c = 0; c < s->dims[1]; c++)
                for (int64_t h = 0; h < s->dims[2]; h++)
                    for (int64_t w = 0; w < s->dims[3]; w++)
                        blocked[i].data[at(PLY_LAYOUT_NCHW16C, s, n, c, h, w)] =
                            inputs[i].data[at(PLY_LAYOUT_NCHW, s, n, c, h, w)];
        views[i] = tensor_view(&blocked[i]);
    }
    const ply_shape *os = &ref->shape;
    int64_t out_count = ref->n;
    if (sized && out_layout == PLY_LAYOUT_NCHW16C && !blocked_count(os, &out_count)) {
        snprintf(why, sizeof why, "output: NCHW16C size overflows");
        sized = false;
    }
    if (!sized) {
        report_fail("%s: forward_layout %s not run: %s", label, layouts, why);
        for (int i = 0; i < n_inputs; i++) tensor_free(&blocked[i]);
        return;
    }
    out = buffer_new(*os, out_count);
    for (int64_t i = 0; i < out.n; i++) out.data[i] = sentinel(); /* every element must be written */
    ply_tensor oview = tensor_view(&out);

    report_doing("%s: forward_layout %s", label, layouts);
    host_error_clear();
    ply_status st = ti->t.forward_layout(layer, n_inputs, views, in_layouts, &oview, out_layout);
    if (st != PLY_OK) {
        report_fail("%s: forward_layout %s (a combination eval_layouts offers) returned %s: %s", label, layouts,
                    status_name(st), host_error_message());
    } else {
        /* forward_layout may sum in another order than forward (blocked kernels,
         * Winograd on the layout): plugin.h allows what a different order of the
         * same sums gives, taken here as |got - expected| / max(1, |expected|)
         * <= 1e-5, the bound of the golden comparisons. */
        const double bound = 1e-5;
        const bool four = os->ndim == 4;
        const int64_t N = four ? os->dims[0] : 1, C = four ? os->dims[1] : 1, H = four ? os->dims[2] : 1,
                      W = four ? os->dims[3] : ref->n;
        const int64_t Cp = out_layout == PLY_LAYOUT_NCHW16C ? (C + 15) / 16 * 16 : C;
        double worst = -1;
        int64_t worst_at[4] = {0}, unwritten = 0, bad_pad = 0, first_unwritten[4] = {0}, first_pad[4] = {0};
        float worst_got = 0, worst_expected = 0, pad_value = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t c = 0; c < Cp; c++)
                for (int64_t h = 0; h < H; h++)
                    for (int64_t w = 0; w < W; w++) {
                        const int64_t o = four ? at(out_layout, os, n, c, h, w) : w;
                        const float got = out.data[o];
                        if (c >= C) { /* a padding lane */
                            if (!(got == 0.0f) && bad_pad++ == 0) {
                                first_pad[0] = n, first_pad[1] = c, first_pad[2] = h, first_pad[3] = w;
                                pad_value = got;
                            }
                            continue;
                        }
                        if (is_sentinel(got)) {
                            if (unwritten++ == 0)
                                first_unwritten[0] = n, first_unwritten[1] = c, first_unwritten[2] = h,
                                first_unwritten[3] = w;
                            continue;
                        }
                        const float expected = ref->data[four ? at(PLY_LAYOUT_NCHW, os, n, c, h, w) : w];
                        double e = fabs((double)got - (double)expected) / fmax(1.0, fabs((double)expected));
                        if (isnan(got) != isnan(expected)) e = INFINITY;
                        else if (isnan(got) || got == expected) e = 0;
                        if (e > worst) {
                            worst = e;
                            worst_at[0] = n, worst_at[1] = c, worst_at[2] = h, worst_at[3] = w;
                            worst_got = got, worst_expected = expected;
                        }
                    }
        char where[120];
#define WHERE(a) (four ? (snprintf(where, sizeof where, "[%lld, %lld, %lld, %lld]", (long long)(a)[0], \
                                   (long long)(a)[1], (long long)(a)[2], (long long)(a)[3]), where)     \
                       : (snprintf(where, sizeof where, "[%lld]", (long long)(a)[3]), where))
        bool ok = true;
        if (unwritten) {
            report_fail("%s: forward_layout %s left %lld output element(s) unwritten, the first at %s (the sentinel "
                        "NaN the checker filled it with)", label, layouts, (long long)unwritten, WHERE(first_unwritten));
            ok = false;
        }
        if (bad_pad) {
            report_fail("%s: forward_layout %s wrote %lld padding lane(s) not as 0 (plugin.h: a layer writing "
                        "NCHW16C MUST write them 0), the first at %s (channel %lld of %lld): got %.9g%s", label,
                        layouts, (long long)bad_pad, WHERE(first_pad), (long long)first_pad[1], (long long)C,
                        pad_value, is_sentinel(pad_value) ? " (never written)" : "");
            ok = false;
        }
        if (worst > bound) {
            report_fail("%s: forward_layout %s differs from forward: worst relative error %.3g > %g at %s: got "
                        "%.9g, expected %.9g", label, layouts, worst, bound, WHERE(worst_at), worst_got,
                        worst_expected);
            ok = false;
        }
        if (worst < 0) worst = 0;
        if (ok)
            report_pass("%s: forward_layout %s equals forward (worst relative error %.2g <= %g), every element "
                        "written%s", label, layouts, worst, bound,
                        out_layout == PLY_LAYOUT_NCHW16C ? ", padding lanes 0" : "");
#undef WHERE
    }
    tensor_free(&out);
    for (int i = 0; i < n_inputs; i++) tensor_free(&blocked[i]);
}

void check_layouts(const type_info *ti, const char *label, const ply_attrs *attrs, int n_inputs,
                   const ply_shape *shapes) {
    const ply_layer_type *t = &ti->t;
    if (!t->eval_layouts || !t->forward_layout) return; /* neither: NCHW only; one alone: check_type failed it */
    char a[100], b[100], sets[MAX_INPUTS * 40 + 60];
    ply_layer *layer = NULL;
    long live0 = host_live_allocations();
    host_error_clear();
    report_doing("%s: create for the layout check", label);
    if (t->create(host_table(), attrs, &layer) != PLY_OK || !layer) {
        report_skip("%s: layouts not checked: create failed: %s", label, host_error_message());
        return;
    }
    if (t->set_training) t->set_training(layer, 0);
    tensor inputs[MAX_INPUTS];
    memset(inputs, 0, sizeof inputs);
    uint64_t z = 0x6c61796fu;
    for (int i = 0; i < n_inputs; i++) {
        inputs[i] = tensor_new(shapes[i]);
        for (int64_t k = 0; k < inputs[i].n; k++) {
            z = z * 6364136223846793005ull + 1442695040888963407ull;
            inputs[i].data[k] = (float)((double)(z >> 11) / 9007199254740992.0 * 2 - 1);
        }
    }
    tensor ref = {0};
    ply_shape out_shape = {0};
    host_error_clear();
    report_doing("%s: infer_shape for the layout check", label);
    ply_status st = t->infer_shape(layer, n_inputs, shapes, &out_shape);
    if (st != PLY_OK) {
        report_skip("%s: layouts not checked: infer_shape refuses input 0 %s: %s", label,
                    shape_str(&shapes[0], a, sizeof a), host_error_message());
        goto done;
    }
    uint32_t accepts[MAX_INPUTS], produces = 0;
    for (int i = 0; i < MAX_INPUTS; i++) accepts[i] = 0;
    host_error_clear();
    report_doing("%s: eval_layouts", label);
    st = t->eval_layouts(layer, n_inputs, shapes, accepts, &produces);
    shape_str(&shapes[0], a, sizeof a);
    if (st != PLY_OK) {
        report_fail("%s: eval_layouts (evaluation mode) returned %s for input 0 %s, which infer_shape accepts "
                    "(plugin.h: MUST NOT fail): %s", label, status_name(st), a, host_error_message());
        goto done;
    }
    size_t k = 0;
    bool sets_ok = true;
    for (int i = 0; i <= n_inputs; i++) {
        uint32_t set = i < n_inputs ? accepts[i] : produces;
        if (k < sizeof sets)
            k += (size_t)snprintf(sets + k, sizeof sets - k, "%s%s %s", i ? ", " : "",
                                  i < n_inputs ? (snprintf(b, sizeof b, "accepts[%d]", i), b) : "produces",
                                  set_str(set, a, sizeof a));
        if (!(set & NCHW_BIT) || (set & ~KNOWN_BITS)) sets_ok = false;
    }
    shape_str(&shapes[0], a, sizeof a);
    if (!sets_ok) {
        report_fail("%s: eval_layouts for input 0 %s gave %s: NCHW must be in every set, and only ply_layout bits",
                    label, a, sets);
        goto done;
    }
    report_pass("%s: eval_layouts (evaluation mode) for input 0 %s: %s; NCHW in every set", label, a, sets);

    /* The combinations that involve NCHW16C (only 4-D values are blocked). */
    int32_t blocked_in[MAX_INPUTS], nchw_in[MAX_INPUTS];
    bool any_in = false;
    for (int i = 0; i < n_inputs; i++) {
        nchw_in[i] = PLY_LAYOUT_NCHW;
        blocked_in[i] = shapes[i].ndim == 4 && (accepts[i] & BLK) ? PLY_LAYOUT_NCHW16C : PLY_LAYOUT_NCHW;
        any_in |= blocked_in[i] == PLY_LAYOUT_NCHW16C;
    }
    bool any_out = out_shape.ndim == 4 && (produces & BLK);
    if (!any_in && !any_out) {
        report_skip("%s: eval_layouts offers NCHW16C for no 4-D value of these shapes: forward_layout not run", label);
        goto done;
    }
    char why[600];
    st = layer_forward(ti, layer, n_inputs, inputs, &ref, why, sizeof why);
    if (st != PLY_OK) {
        report_skip("%s: layouts not compared: the NCHW forward failed: %s", label, why);
        goto done;
    }
    if (!shape_eq(&ref.shape, &out_shape)) {
        report_skip("%s: layouts not compared: infer_shape gave %s, then %s", label,
                    shape_str(&out_shape, a, sizeof a), shape_str(&ref.shape, b, sizeof b));
        goto done;
    }
    if (any_in) run_combination(ti, layer, label, n_inputs, inputs, blocked_in, &ref, PLY_LAYOUT_NCHW);
    if (any_out) run_combination(ti, layer, label, n_inputs, inputs, nchw_in, &ref, PLY_LAYOUT_NCHW16C);
    if (any_in && any_out) run_combination(ti, layer, label, n_inputs, inputs, blocked_in, &ref, PLY_LAYOUT_NCHW16C);

done:
    tensor_free(&ref);
    for (int i = 0; i < n_inputs; i++) tensor_free(&inputs[i]);
    t->destroy(layer);
    long left = host_live_allocations() - live0;
    if (left) report_fail("%s: %ld host allocation(s) left after destroy (layout check)", label, left);
}
