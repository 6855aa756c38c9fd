/*
 * conv2d's attributes and creation (conv_layer.h): PyTorch's nn.Conv2d arguments, checked
 * where they are read, and the plugin's own (algorithm, winograd_tile, workspace_mb,
 * trainable); weights [OC, C/groups, KH, KW] initialised as PyTorch does.
 */
#include "plugin_support.h"

#include "conv_layer.h"

#include <math.h>
#include <string.h>

#include "conv_direct.h"
#include "conv_s2d.h"

// Read a required positive int attribute.
static ply_status positive_attr(const ply_host *host, const ply_attrs *attrs, const char *name, int64_t *out) {
    ply_status st = host->attr_int(host, attrs, name, out);
    if (st == PLY_ERR_NOT_FOUND) return ply_errorf(host, PLY_ERR_NOT_FOUND, "conv2d: missing attribute '%s'", name);
    if (st != PLY_OK) return st;
    if (*out <= 0)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "conv2d: %s must be positive (got %lld)", name,
                          (long long)*out);
    return PLY_OK;
}

// Read an optional int-or-pair attribute with a default and a lower bound.
static ply_status pair_attr(const ply_host *host, const ply_attrs *attrs, const char *name, int64_t dflt,
                            int64_t min, int64_t out[2]) {
    ply_status st = host->attr_pair(host, attrs, name, out);
    if (st == PLY_ERR_NOT_FOUND) { out[0] = out[1] = dflt; return PLY_OK; }
    if (st != PLY_OK) return st;
    if (out[0] < min || out[1] < min)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "conv2d: %s must be >= %lld (got (%lld, %lld))", name,
                          (long long)min, (long long)out[0], (long long)out[1]);
    return PLY_OK;
}

// The CPU level as PLY_CPU spells it, for messages.
static const char *cpu_level_name(ply_cpu c) {
    return c == PLY_CPU_AVX512 ? "avx512" : c == PLY_CPU_AVX2 ? "avx2" : "generic";
}

ply_status conv_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    int64_t C, OC, k[2], s[2], p[2] = {0, 0}, d[2], groups = 1;
    int32_t bias = 1;
    ply_status st;
    if ((st = positive_attr(host, attrs, "in_channels", &C)) != PLY_OK) return st;
    if ((st = positive_attr(host, attrs, "out_channels", &OC)) != PLY_OK) return st;
    st = host->attr_pair(host, attrs, "kernel_size", k);
    if (st == PLY_ERR_NOT_FOUND) return ply_errorf(host, st, "conv2d: missing attribute 'kernel_size'");
    if (st != PLY_OK) return st;
    if (k[0] <= 0 || k[1] <= 0)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "conv2d: kernel_size must be positive (got (%lld, %lld))",
                          (long long)k[0], (long long)k[1]);
    if ((st = pair_attr(host, attrs, "stride", 1, 1, s)) != PLY_OK) return st;
    if ((st = pair_attr(host, attrs, "dilation", 1, 1, d)) != PLY_OK) return st;
    // padding: int, pair, or PyTorch's strings "valid" / "same" (stride 1, odd kernels: d*(k-1)/2 each side)
    const ply_attr *pa = ply_find_attr(attrs, "padding");
    if (pa && pa->kind == PLY_ATTR_STRING) {
        if (strcmp(pa->v.s, "valid") == 0) {
            p[0] = p[1] = 0;
        } else if (strcmp(pa->v.s, "same") == 0 && s[0] == 1 && s[1] == 1 && k[0] % 2 == 1 && k[1] % 2 == 1) {
            p[0] = d[0] * (k[0] - 1) / 2; p[1] = d[1] * (k[1] - 1) / 2;
        } else {
            return ply_errorf(host, PLY_ERR_UNSUPPORTED,
                              "conv2d: padding '%s' is not supported (expected an int, a pair, 'valid', or 'same' "
                              "with stride 1 and odd kernel sizes)", pa->v.s);
        }
    } else if ((st = pair_attr(host, attrs, "padding", 0, 0, p)) != PLY_OK) {
        return st;
    }
    st = host->attr_int(host, attrs, "groups", &groups);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    if (groups < 1 || C % groups != 0 || OC % groups != 0)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                          "conv2d: groups=%lld must be positive and divide in_channels=%lld and out_channels=%lld",
                          (long long)groups, (long long)C, (long long)OC);
    const ply_attr *pm = ply_find_attr(attrs, "padding_mode");
    if (pm && (pm->kind != PLY_ATTR_STRING || strcmp(pm->v.s, "zeros") != 0))
        return ply_errorf(host, PLY_ERR_UNSUPPORTED, "conv2d: padding_mode must be 'zeros'");
    st = host->attr_bool(host, attrs, "bias", &bias);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    conv_algo algo = ALGO_AUTO;
    const char *algo_name = "auto";
    st = host->attr_string(host, attrs, "algorithm", &algo_name);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    if (strcmp(algo_name, "auto") == 0) algo = ALGO_AUTO;
    else if (strcmp(algo_name, "im2col") == 0) algo = ALGO_IM2COL;
    else if (strcmp(algo_name, "blas") == 0) algo = ALGO_BLAS;
    else if (strcmp(algo_name, "direct") == 0) algo = ALGO_DIRECT;
    else if (strcmp(algo_name, "taps") == 0) algo = ALGO_TAPS;
    else if (strcmp(algo_name, "winograd") == 0) algo = ALGO_WINOGRAD;
    else if (strcmp(algo_name, "s2d") == 0) algo = ALGO_S2D;
    else if (strcmp(algo_name, "depthwise") == 0) algo = ALGO_DEPTHWISE;
    else if (strcmp(algo_name, "pointwise") == 0) algo = ALGO_POINTWISE;
    else if (strcmp(algo_name, "panels") == 0) algo = ALGO_PANELS;
    else if (strcmp(algo_name, "spans") == 0) algo = ALGO_SPANS;
    else
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                          "conv2d: algorithm must be \"auto\", \"im2col\", \"blas\", \"direct\", \"taps\", "
                          "\"winograd\", \"s2d\", \"depthwise\", \"pointwise\", \"panels\" or \"spans\" (got \"%s\")",
                          algo_name);
    // direct, taps, winograd, s2d, pointwise, panels and spans compute groups 1 and dilation 1 only; depthwise, groups ==
    // in_channels
    if (algo == ALGO_DIRECT || algo == ALGO_TAPS || algo == ALGO_WINOGRAD || algo == ALGO_S2D ||
        algo == ALGO_POINTWISE || algo == ALGO_PANELS || algo == ALGO_SPANS) {
        if (groups != 1)
            return ply_errorf(host, PLY_ERR_UNSUPPORTED,
                              "conv2d: algorithm \"%s\" computes groups=1 only (got groups=%lld); \"auto\", "
                              "\"im2col\" and \"blas\" compute any groups",
                              algo_name, (long long)groups);
        if (d[0] != 1 || d[1] != 1)
            return ply_errorf(host, PLY_ERR_UNSUPPORTED,
                              "conv2d: algorithm \"%s\" computes dilation 1 only (got dilation (%lld, %lld)); "
                              "\"auto\", \"im2col\" and \"blas\" compute any dilation",
                              algo_name, (long long)d[0], (long long)d[1]);
    }
    if (algo == ALGO_DEPTHWISE && groups != C)
        return ply_errorf(host, PLY_ERR_UNSUPPORTED,
                          "conv2d: algorithm \"depthwise\" needs groups == in_channels (got groups=%lld, "
                          "in_channels=%lld)", (long long)groups, (long long)C);
    int64_t wino_tile = 0;
    st = host->attr_int(host, attrs, "winograd_tile", &wino_tile);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    if (wino_tile != 0 && wino_tile != 2 && wino_tile != 4 && wino_tile != 6)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "conv2d: winograd_tile must be 0 (auto), 2, 4 or 6 (got %lld)",
                          (long long)wino_tile);
    int64_t workspace_mb = 32;
    st = host->attr_int(host, attrs, "workspace_mb", &workspace_mb);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    if (workspace_mb < 0 || workspace_mb > (1 << 20))
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "conv2d: workspace_mb must be in 0...%d (got %lld)", 1 << 20,
                          (long long)workspace_mb);
    int32_t trainable = 1;
    st = host->attr_bool(host, attrs, "trainable", &trainable);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    // winograd, s2d and panels have AVX-512 kernels only, direct, pointwise and spans AVX-512 and AVX2 ones
    // (conv_direct_avx2.c, conv_1x1_avx2.c, conv_spans.c); im2col is their portable path
    if ((algo == ALGO_WINOGRAD || algo == ALGO_S2D || algo == ALGO_PANELS) &&
        ply_cpu_level() < PLY_CPU_AVX512)
        return ply_errorf(host, PLY_ERR_UNSUPPORTED,
                          "conv2d: algorithm \"%s\" needs the AVX-512 kernels and the CPU level is %s%s; \"auto\" "
                          "and \"im2col\" run at every level",
                          algo_name, cpu_level_name(ply_cpu_level()),
                          ply_cpu_level() < ply_cpu_detected() ? " (lowered by PLY_CPU)" : "");
    if ((algo == ALGO_DIRECT || algo == ALGO_POINTWISE || algo == ALGO_SPANS) && ply_cpu_level() < PLY_CPU_AVX2)
        return ply_errorf(host, PLY_ERR_UNSUPPORTED,
                          "conv2d: algorithm \"%s\" needs the AVX2 or AVX-512 kernels and the CPU level is %s%s; "
                          "\"auto\" and \"im2col\" run at every level",
                          algo_name, cpu_level_name(ply_cpu_level()),
                          ply_cpu_level() < ply_cpu_detected() ? " (lowered by PLY_CPU)" : "");
    if (algo == ALGO_WINOGRAD && (k[0] != 3 || k[1] != 3 || s[0] != 1 || s[1] != 1))
        return ply_errorf(host, PLY_ERR_UNSUPPORTED, "conv2d: algorithm \"winograd\" needs a 3x3 kernel and stride 1");
    if (algo == ALGO_PANELS && (k[0] != 3 || k[1] != 3 || s[0] != s[1] || (s[0] != 1 && s[0] != 2)))
        return ply_errorf(host, PLY_ERR_UNSUPPORTED,
                          "conv2d: algorithm \"panels\" needs a 3x3 kernel and stride 1 or 2 both ways (got kernel "
                          "%lldx%lld, stride %lldx%lld)",
                          (long long)k[0], (long long)k[1], (long long)s[0], (long long)s[1]);
    if (algo == ALGO_SPANS && k[0] * k[1] > 64)
        return ply_errorf(host, PLY_ERR_UNSUPPORTED,
                          "conv2d: algorithm \"spans\" needs a kernel of at most 64 taps (got kernel %lldx%lld)",
                          (long long)k[0], (long long)k[1]);
    if (algo == ALGO_POINTWISE && (k[0] != 1 || k[1] != 1 || p[0] != 0 || p[1] != 0))
        return ply_errorf(host, PLY_ERR_UNSUPPORTED,
                          "conv2d: algorithm \"pointwise\" needs a 1x1 kernel and padding 0 (got kernel %lldx%lld, "
                          "padding %lldx%lld)",
                          (long long)k[0], (long long)k[1], (long long)p[0], (long long)p[1]);
    if (algo == ALGO_S2D && !conv_s2d_fits(k[0], k[1], s[0], s[1]))
        return ply_errorf(host, PLY_ERR_UNSUPPORTED,
                          "conv2d: algorithm \"s2d\" needs equal strides S >= 2 and a kernel of at most 3S x 3S "
                          "(got kernel %lldx%lld, stride %lldx%lld)",
                          (long long)k[0], (long long)k[1], (long long)s[0], (long long)s[1]);
    if (algo == ALGO_DIRECT) {
        if (s[0] != 1 || s[1] != 1 || !conv_direct_fits(C, OC, k[0], k[1], p[0], p[1]))
            return ply_errorf(host, PLY_ERR_UNSUPPORTED,
                              "conv2d: algorithm \"direct\" needs stride 1, in_channels <= 16, out_channels <= 64, "
                              "at most 64 kernel taps and padding smaller than the kernel");
    }

    ply_layer *L = host->alloc(host, sizeof *L);
    if (!L) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "conv2d: out of memory");
    memset(L, 0, sizeof *L);
    L->host = host;
    L->C = C; L->OC = OC; L->KH = k[0]; L->KW = k[1];
    L->SH = s[0]; L->SW = s[1]; L->PH = p[0]; L->PW = p[1];
    L->DH = d[0]; L->DW = d[1]; L->G = groups;
    L->has_bias = bias != 0;
    L->algorithm = algo;
    L->wino_tile = (int)wino_tile;
    L->training = 1; // as PyTorch: new instances train
    L->rows_limit = (size_t)workspace_mb * ((1 << 20) / sizeof(float));
    int64_t fan_in = C / groups * k[0] * k[1], nw = OC * fan_in; // PyTorch's fan_in: C/groups*kh*kw
    size_t wbytes = (size_t)nw * sizeof(float), bbytes = (size_t)OC * sizeof(float);
    L->trainable = trainable != 0;
    L->weight = host->alloc(host, wbytes);
    // gradients zeroed by the host without a write: a model that never trains never touches them
    if (L->trainable) L->dweight = ply_alloc_zeroed(host, wbytes);
    // wflip is taken on the first direct-kernel call (conv_direct_job_make): only those layers use it, and
    // unwritten it would still cost memory wherever the host places it on huge pages (its arena)
    if (L->has_bias) {
        L->bias = host->alloc(host, bbytes);
        if (L->trainable) L->dbias = ply_alloc_zeroed(host, bbytes);
    }
    if (!L->weight || (L->trainable && !L->dweight) ||
        (L->has_bias && (!L->bias || (L->trainable && !L->dbias)))) {
        host->free(host, L->weight); host->free(host, L->dweight);
        host->free(host, L->bias); host->free(host, L->dbias);
        host->free(host, L);
        return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "conv2d: cannot allocate %lld weights", (long long)nw);
    }
    if (!L->trainable) { // inference only: the owner writes the values; no draw from the generator
        memset(L->weight, 0, wbytes);
        if (L->has_bias) memset(L->bias, 0, bbytes);
        *out = L;
        return PLY_OK;
    }
    // kaiming_uniform(a=sqrt(5)) => U(-1/sqrt(fan_in), 1/sqrt(fan_in)), bias likewise
    float bound = (float)(1.0 / sqrt((double)fan_in));
    host->fill_uniform(host, L->weight, nw, -bound, bound);
    if (L->has_bias) host->fill_uniform(host, L->bias, OC, -bound, bound);
    *out = L;
    return PLY_OK;
}

void conv_destroy(ply_layer *L) {
    if (!L) return;
    const ply_host *h = L->host;
    h->free(h, L->weight); h->free(h, L->dweight); h->free(h, L->wflip);
    h->free(h, L->bias); h->free(h, L->dbias);
    h->free(h, L->scratch);
    h->free(h, L->dymask);
    conv_weight_cache_free(h, &L->wino);
    conv_weight_cache_free(h, &L->panels);
    conv_weight_cache_free(h, &L->pw);
    conv_weight_cache_free(h, &L->spans);
    conv_weight_cache_free(h, &L->blk);
    conv_weight_cache_free(h, &L->bwino);
    h->free(h, L->blk_tmp);
    h->free(h, L);
}

// ----------------------------------------------------------------------------
// self-description (ABI 1.2)

const ply_attr_spec conv_specs[] = {
    {.name = "in_channels", .kind = PLY_ATTR_INT, .flags = PLY_ATTR_REQUIRED, .doc = "C, channels of the input"},
    {.name = "out_channels", .kind = PLY_ATTR_INT, .flags = PLY_ATTR_REQUIRED, .doc = "channels of the output"},
    PLY_SPEC_KERNEL_SIZE,
    PLY_SPEC_STRIDE("1", "input pixels between neighbouring outputs: an int or [sh, sw]"),
    {.name = "padding", .kind = PLY_ATTR_INTS, .flags = PLY_ATTR_PAIR | PLY_ATTR_OR_STRING, .default_text = "0",
     .doc = "zeros added on both sides of each spatial axis: an int, [ph, pw], or 'valid' / 'same' (stride 1)"},
    PLY_SPEC_DILATION("spacing between kernel taps: an int or [dh, dw]"),
    {.name = "groups", .kind = PLY_ATTR_INT, .default_text = "1",
     .doc = "blocked connections: G divides in_channels and out_channels, each output channel reads in_channels/G "
            "inputs; in_channels = depthwise"},
    {.name = "padding_mode", .kind = PLY_ATTR_STRING, .default_text = "zeros",
     .doc = "what the padding holds; only \"zeros\" is supported"},
    {.name = "bias", .kind = PLY_ATTR_BOOL, .default_text = "true", .doc = "learn a per-channel bias"},
    {.name = "algorithm", .kind = PLY_ATTR_STRING, .default_text = "auto",
     .doc = "implementation: auto, im2col, blas, direct, taps, winograd, s2d, depthwise, pointwise, panels or spans "
            "(direct, taps, winograd, s2d, pointwise, panels and spans: groups 1 and dilation 1 only)"},
    {.name = "winograd_tile", .kind = PLY_ATTR_INT, .default_text = "0",
     .doc = "Winograd's output tile: 2 (F(2x2,3x3)), 4 (F(4x4,3x3)), 6 (F(6x6,3x3)) or 0, chosen per input shape"},
    {.name = "workspace_mb", .kind = PLY_ATTR_INT, .default_text = "32",
     .doc = "cap in MiB on the backward's whole-batch scratch; above it the batch goes a tile at a time"},
    {.name = "trainable", .kind = PLY_ATTR_BOOL, .default_text = "true",
     .doc = "false: inference only (zero-initialised without random draws, no gradients, no backward)"},
    PLY_SPEC_END,
};
