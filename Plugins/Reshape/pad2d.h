/*
 * Private to the Reshape family: the pad2d layer type (pad2d.c), listed by
 * reshape.c's plugin.
 */
#ifndef PLY_RESHAPE_PAD2D_H
#define PLY_RESHAPE_PAD2D_H

#include "ply/plugin.h"
#include "plugin_support.h"

PLY_INTERNAL_BEGIN

extern const ply_layer_type ply_pad2d_type;

PLY_INTERNAL_END

#endif
