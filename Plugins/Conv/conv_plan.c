/*
 * conv2d's choice of plan per call (conv.c runs it): which implementation computes a forward (and
 * with it the backward's), from the layer's "algorithm" attribute, the call's geometry, the mode
 * and the CPU level. The thresholds' measurements are beside them.
 */
#include "plugin_support.h"

#include "conv_1x1.h"
#include "conv_direct.h"
#include "conv_gemm.h"
#include "conv_layer.h"
#include "conv_panels.h"
#include "conv_s2d.h"
#include "conv_spans.h"
#include "conv_stem.h"
#include "conv_taps.h"
#include "conv_winograd.h"

// "auto" takes the live-tap plan where at most this share of im2col is inside the input.
#define TAPS_MAX_LIVE 0.75
// ...except in training on planes of at least this side where Winograd suits: its forward and input
// gradient beat the live taps' there. ResNet-18's layers at 32x32, 64 images, 3x3, ms of forward +
// weight gradient + input gradient (`ply bench-layers --training --cpu-time`, shared machine):
//   128->128 4x4: taps 4.6 + 3.0 + 3.3 = 10.9, Winograd 3.0 + 3.1 + 3.4 = 9.5 (1 thread);
//                 taps 6.3, Winograd 5.1-5.9 (2 threads, CPU time over threads)
//   256->256 2x2: taps 2.3 + 2.0 + 1.3 = 5.6, Winograd and im2col 8.5-8.7 (1 thread)
#define WINOGRAD_TRAIN_MIN_SIDE 4

// Groups 1 and dilation 1: the only layers the direct, taps, Winograd and s2d plans compute.
int conv_is_plain(const ply_layer *L) { return L->G == 1 && L->DH == 1 && L->DW == 1; }

// A depthwise layer (groups == in_channels) takes conv_depthwise.c unless an im2col plan is forced.
int conv_use_depthwise(const ply_layer *L) {
    return L->G == L->C && L->G > 1 && (L->algorithm == ALGO_AUTO || L->algorithm == ALGO_DEPTHWISE);
}

int conv_use_direct(const ply_layer *L) {
    return conv_is_plain(L) && (L->algorithm == ALGO_AUTO || L->algorithm == ALGO_DIRECT) && L->SH == 1 && L->SW == 1 &&
           ply_cpu_level() >= PLY_CPU_AVX2 && conv_direct_fits(L->C, L->OC, L->KH, L->KW, L->PH, L->PW);
}

// Whether this call takes the live-tap plan (conv_taps.c); an error when "taps" is forced where it cannot.
ply_status conv_use_taps(const ply_layer *L, const conv_geom *g, int *taps) {
    *taps = 0;
    if (L->algorithm == ALGO_TAPS) {
        if (!conv_taps_fits(g))
            return ply_errorf(L->host, PLY_ERR_UNSUPPORTED,
                              "conv2d: algorithm \"taps\" needs an output plane of at most 16x16 (got %lldx%lld)",
                              (long long)g->OH, (long long)g->OW);
        *taps = 1;
    } else if (L->algorithm == ALGO_AUTO && conv_is_plain(L) && !conv_use_direct(L)) {
        *taps = conv_taps_suits(g, TAPS_MAX_LIVE) && conv_taps_backward_floats(g) <= L->rows_limit &&
                !(L->training && g->OH >= WINOGRAD_TRAIN_MIN_SIDE && g->OW >= WINOGRAD_TRAIN_MIN_SIDE &&
                  conv_winograd_suits(g));
    }
    return PLY_OK;
}

// Whether this call's forward takes Winograd (conv_winograd.c); its input gradient then does too where it suits.
int conv_use_winograd(const ply_layer *L, const conv_geom *g) {
    if (L->algorithm == ALGO_WINOGRAD) return conv_winograd_fits(g);
    // in evaluation from fewer tiles: U is made once per weight version there (conv_winograd.h); below AVX-512 F(4x4)
    // only, so not where winograd_tile forces another
    return L->algorithm == ALGO_AUTO && conv_is_plain(L) && !conv_use_direct(L) &&
           (L->training ? conv_winograd_suits(g)
                        : conv_winograd_suits_inference(g) &&
                              (ply_cpu_level() >= PLY_CPU_AVX512 || L->wino_tile == 0 || L->wino_tile == 4));
}

// Whether this call's forward is conv_1x1.c's product on the input in place. The backward is im2col's.
int conv_use_1x1(const ply_layer *L, const conv_geom *g) {
    return conv_is_plain(L) && (L->algorithm == ALGO_POINTWISE || (L->algorithm == ALGO_AUTO && !conv_use_direct(L))) &&
           conv_1x1_fits(g);
}

// Whether this call's forward is conv_panels.c's direct kernel: forced, or "auto" in evaluation where it suits
// (in training the backward reuses what Winograd's and the live taps' forwards leave).
int conv_use_panels(const ply_layer *L, const conv_geom *g) {
    if (L->algorithm == ALGO_PANELS) return conv_panels_fits(g);
    return L->algorithm == ALGO_AUTO && conv_is_plain(L) && !conv_use_direct(L) && !L->training && conv_panels_suits(g);
}

// Images per call of the panels where "auto" in evaluation runs a batch through them a few images at a
// time (stride 2, the whole batch too large for them: conv_panels_images_per_call), 0 where not. Not
// where the spans would take those images (their rows ending in a short call of the panels).
int64_t conv_panels_chunk(const ply_layer *L, const conv_geom *g) {
    if (L->algorithm != ALGO_AUTO || !conv_is_plain(L) || conv_use_direct(L) || L->training) return 0;
    conv_geom gc = *g;
    gc.N = conv_panels_images_per_call(g);
    if (gc.N < 1 || conv_spans_suits(&gc, conv_panels_suits(&gc))) return 0;
    return gc.N;
}

// Whether this call's forward is conv_spans.c's kernel: forced, or "auto" in evaluation where it suits
// (before the panels: 3x3 layers the panels suit whose rows end in a short call of theirs go to the spans).
int conv_use_spans(const ply_layer *L, const conv_geom *g) {
    if (L->algorithm == ALGO_SPANS) return conv_spans_fits(g);
    return L->algorithm == ALGO_AUTO && conv_is_plain(L) && !conv_use_direct(L) && !L->training &&
           conv_spans_suits(g, conv_panels_suits(g));
}

// Whether this call's forward is conv_stem.c's direct kernel: "auto" in evaluation where it suits (in
// training the forward stays im2col's, as the panels' and the spans' do).
int conv_use_stem(const ply_layer *L, const conv_geom *g) {
    return L->algorithm == ALGO_AUTO && conv_is_plain(L) && !conv_use_direct(L) && !L->training && conv_stem_suits(g);
}

// Whether this call's forward folds the input by space-to-depth for Winograd (conv_s2d.c).
int conv_use_s2d(const ply_layer *L, const conv_geom *g) {
    return L->algorithm == ALGO_S2D || (L->algorithm == ALGO_AUTO && conv_is_plain(L) && conv_s2d_suits(g));
}
