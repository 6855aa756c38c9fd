/*
 * Private to the BatchNorm family: the scale layer type (scale.c), listed by
 * batchnorm.c's plugin.
 */
#ifndef PLY_BATCHNORM_SCALE_H
#define PLY_BATCHNORM_SCALE_H

#include "ply/plugin.h"
#include "plugin_support.h"

PLY_INTERNAL_BEGIN

extern const ply_layer_type ply_scale_type;

PLY_INTERNAL_END

#endif
