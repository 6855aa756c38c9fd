/*
 * The Inception plugin on ABI 1.7's blocked channel layout (NCHW16C), evaluation only.
 *
 *  - basic_conv2d answers for its folded conv (conv2d: NCHW16C where conv_blocked.c takes it).
 *  - A block (GoogLeNet's, Inception v3's A-E) runs with every value NCHW16C when every child reads
 *    and writes it for the shapes of the call and every concat input has a multiple of 16 channels
 *    (then channel c0 of a value starts at c0 * H * W floats into an image, as in NCHW, and the concat
 *    copies whole blocks: inception_eval.c's forward_eval with layout NCHW16C). The block then offers
 *    NCHW16C for its input and output; where the host gives one side NCHW, that side is converted
 *    here (ply_layout_reorder), which the host's rule makes rare (a run's first or last block).
 */
#include <string.h>

#include "inception_graph.h"

static const uint32_t nchw_bit = PLY_LAYOUT_BIT(PLY_LAYOUT_NCHW), blocked_bit = PLY_LAYOUT_BIT(PLY_LAYOUT_NCHW16C);

// basic_conv2d: the folded conv, made if need be (as the evaluation forward would); NULL where the block
// runs unfolded (a conv type that refuses the relu) or in training.
static ply_status the_fold(ply_layer *self, const ply_fold **fold) {
    *fold = NULL;
    if (self->training && !self->frozen) return PLY_OK;
    int ok = self->fold_only;
    if (!ok) {
        ply_status st = blk_sync_fold(self, &ok);
        if (st != PLY_OK) return st;
    }
    if (ok && PLY_TYPE_HAS_LAYOUTS(self->fold.type)) *fold = &self->fold;
    return PLY_OK;
}

// A block: whether every value can be NCHW16C for input shape `in` (shapes[] filled when so).
static ply_status graph_blocks(ply_layer *self, const ply_shape *in, ply_shape *shapes, int *ok) {
    *ok = 0;
    if ((self->training && !self->frozen) || in->ndim != 4) return PLY_OK;
    ply_status st = blk_value_shapes(self, in, shapes);
    if (st != PLY_OK) return st;
    for (int32_t i = 0; i < self->n_nodes; i++) {
        const blk_node *nd = &self->nodes[i];
        if (shapes[i + 1].ndim != 4) return PLY_OK;
        if (strcmp(nd->type->name, "concat") == 0) {
            for (int32_t j = 0; j < nd->n_in; j++)
                if (shapes[nd->in[j]].ndim != 4 || shapes[nd->in[j]].dims[1] % 16 != 0) return PLY_OK;
            continue;
        }
        if (!PLY_TYPE_HAS_LAYOUTS(nd->type)) return PLY_OK;
        ply_shape ins[BLK_MAX_IN];
        uint32_t accepts[BLK_MAX_IN] = {0}, produces = 0;
        for (int32_t j = 0; j < nd->n_in; j++) ins[j] = shapes[nd->in[j]];
        if ((st = nd->type->eval_layouts(nd->layer, nd->n_in, ins, accepts, &produces)) != PLY_OK) return st;
        if (!(produces & blocked_bit)) return PLY_OK;
        for (int32_t j = 0; j < nd->n_in; j++)
            if (!(accepts[j] & blocked_bit)) return PLY_OK;
    }
    *ok = 1;
    return PLY_OK;
}

ply_status blk_eval_layouts(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, uint32_t *accepts,
                            uint32_t *produces) {
    accepts[0] = nchw_bit;
    *produces = nchw_bit;
    ply_status st;
    if (self->fold_node >= 0) {
        const ply_fold *fold;
        if ((st = the_fold(self, &fold)) != PLY_OK || !fold) return st;
        return fold->type->eval_layouts(fold->layer, n_inputs, inputs, accepts, produces);
    }
    ply_shape shapes[BLK_MAX_NODES + 2];
    int ok;
    if ((st = graph_blocks(self, &inputs[0], shapes, &ok)) != PLY_OK || !ok) return st;
    accepts[0] = *produces = nchw_bit | blocked_bit;
    return PLY_OK;
}

ply_status blk_forward_layout(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, const int32_t *in_layouts,
                              ply_tensor *output, int32_t out_layout) {
    const int32_t lin = in_layouts[0];
    if (lin == PLY_LAYOUT_NCHW && out_layout == PLY_LAYOUT_NCHW) return blk_forward(self, n_inputs, inputs, output);
    if (inputs[0].strides || output->strides)
        return ply_errorf(self->host, PLY_ERR_UNSUPPORTED, "%s: strided tensors are not supported", self->type_name);
    ply_status st;
    const int known = (lin == PLY_LAYOUT_NCHW || lin == PLY_LAYOUT_NCHW16C) &&
                      (out_layout == PLY_LAYOUT_NCHW || out_layout == PLY_LAYOUT_NCHW16C);
    if (known && self->fold_node >= 0) {
        const ply_fold *fold;
        if ((st = the_fold(self, &fold)) != PLY_OK) return st;
        if (fold) return fold->type->forward_layout(fold->layer, n_inputs, inputs, in_layouts, output, out_layout);
    }
    ply_shape shapes[BLK_MAX_NODES + 2];
    int ok = 0;
    if (known && self->fold_node < 0 && (st = graph_blocks(self, &inputs[0].shape, shapes, &ok)) != PLY_OK) return st;
    if (!ok)
        return ply_errorf(self->host, PLY_ERR_UNSUPPORTED, "%s: forward_layout with input layout %d and output layout "
                          "%d is not one eval_layouts offers for this block", self->type_name, (int)lin, (int)out_layout);
    blk_release_values(self);
    // an NCHW side goes through a blocked copy in scratch[0] (input) or scratch[1] (output)
    const ply_shape *xs = &inputs[0].shape, *ys = &output->shape;
    ply_tensor x = inputs[0], y = *output;
    if (lin == PLY_LAYOUT_NCHW) {
        if ((st = blk_ensure(self, &self->scratch[0], &self->scratch_cap[0], ply_layout_numel(xs, PLY_LAYOUT_NCHW16C))) != PLY_OK)
            return st;
        ply_layout_reorder(self->scratch[0], inputs[0].data, 1, xs->dims[0], xs->dims[1], xs->dims[2] * xs->dims[3]);
        x.data = self->scratch[0];
    }
    if (out_layout == PLY_LAYOUT_NCHW) {
        if ((st = blk_ensure(self, &self->scratch[1], &self->scratch_cap[1], ply_layout_numel(ys, PLY_LAYOUT_NCHW16C))) != PLY_OK)
            return st;
        y.data = self->scratch[1];
    }
    if ((st = blk_forward_eval(self, &x, &y, PLY_LAYOUT_NCHW16C)) != PLY_OK) return st;
    if (out_layout == PLY_LAYOUT_NCHW)
        ply_layout_reorder(output->data, y.data, 0, ys->dims[0], ys->dims[1], ys->dims[2] * ys->dims[3]);
    return PLY_OK;
}
