/*
 * conv2d's input gradient by Winograd (see conv_winograd_backward.h).
 */
#include "plugin_support.h"

#include "conv_winograd_backward.h"

#include "conv_winograd.h"

// The gradient's geometry: dy [N, OC, OH, OW] in, dx [N, C, H, W] out, padding 2 - P.
static conv_geom data_geom(const conv_geom *g) {
    conv_geom d = {.N = g->N, .C = g->OC, .H = g->OH, .W = g->OW, .OC = g->C, .KH = 3, .KW = 3, .SH = 1, .SW = 1,
                   .PH = 2 - g->PH, .PW = 2 - g->PW, .OH = g->H, .OW = g->W, .DH = 1, .DW = 1, .XC = g->OC, .YC = g->C};
    return d;
}

int conv_winograd_backward_data_suits(const conv_geom *g) {
    if (g->KH != 3 || g->KW != 3 || g->SH != 1 || g->SW != 1 || g->PH > 2 || g->PW > 2) return 0;
    conv_geom d = data_geom(g);
    return conv_winograd_suits(&d);
}

size_t conv_winograd_backward_data_floats(const conv_geom *g, int64_t threads) {
    conv_geom d = data_geom(g);
    return (size_t)(g->C * g->OC * 9) + conv_winograd_forward_floats(&d, threads);
}

void conv_winograd_backward_data(const ply_host *host, int64_t threads, const conv_geom *g, const float *w,
                                 const float *dy, float *dx, float *scratch) {
    conv_geom d = data_geom(g);
    // wf[c][oc][u][v] = w[oc][c][2 - u][2 - v]: the product's weights, C output channels of OC inputs
    float *wf = scratch;
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t oc = 0; oc < g->OC; oc++) {
            const float *src = w + (oc * g->C + c) * 9;
            float *dst = wf + (c * g->OC + oc) * 9;
            for (int k = 0; k < 9; k++) dst[k] = src[8 - k];
        }
    conv_winograd_forward(host, threads, &d, wf, NULL, 0, dy, dx, scratch + (size_t)(g->C * g->OC * 9));
}
