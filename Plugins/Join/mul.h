/*
 * Private to the Join family: the mul layer type (mul.c), listed by join.c's
 * plugin.
 */
#ifndef PLY_JOIN_MUL_H
#define PLY_JOIN_MUL_H

#include "ply/plugin.h"
#include "plugin_support.h"

PLY_INTERNAL_BEGIN

extern const ply_layer_type ply_mul_type;

PLY_INTERNAL_END

#endif
