/*
 * conv2d's optional second input: a residual added before the activation, inference only.
 *
 *   output[n][o][p] = act(conv(x)[n][o][p] + bias[o] + r[n][o][p])
 *
 * with act the fused relu (fuse_activation) or none, the sum taken in that order (the conv's
 * output first, then r), which is the rounding of a separate add after the conv: a residual
 * block's last conv with its add + relu (Plugins/Residual/residual_eval.c). r has the output's
 * shape [N, OC, OH, OW], is compact float32 and MUST NOT overlap the output. Only a layer made with
 * trainable=false takes it (there is no backward for it); conv_infer_shape checks both.
 *
 * Where the layer's forward runs conv_1x1.c at the AVX-512 level (ResNet-50's expand convs), the
 * residual is added inside the product's tiles, so each output is written once and never read
 * back; on every other path the forward runs without the relu and conv_residual_add finishes
 * (the same work as the block's separate add + relu).
 */
#ifndef PLY_CONV_RESIDUAL_H
#define PLY_CONV_RESIDUAL_H

#include <stdint.h>

#include "ply/plugin.h"
#include "plugin_support.h"

PLY_INTERNAL_BEGIN

/**
 * y[i] = y[i] + r[i], then max(., 0) when `relu` (NaN passes, as the relu layer), for i < n; split over
 * the host's threads when n is large. Any thread; no allocation.
 */
void conv_residual_add(const ply_host *host, float *y, const float *r, int64_t n, int relu);

PLY_INTERNAL_END
#endif
