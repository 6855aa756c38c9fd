/*
 * Private header of the residual plugin (residual_basic, residual_bottleneck):
 * the instance layout shared by residual.c (attributes, children, parameters,
 * vtable) and residual_pass.c (infer_shape, forward, backward).
 */
#ifndef PLY_RESIDUAL_H
#define PLY_RESIDUAL_H

#include "ply/plugin.h"
#include "plugin_support.h"
#include "plugin_fold.h"

PLY_INTERNAL_BEGIN

#define RB_MAX_STAGES 3  // conv+bn stages on the main path: 2 (basic), 3 (bottleneck)
#define RB_NAME_LEN 48   // longest name: "downsample.1.num_batches_tracked" (32)

typedef struct {
    const ply_layer_type *type;
    ply_layer *layer;
} rb_child;

// A float buffer owned by the instance, grown on demand and never shrunk.
typedef struct {
    float *data;
    size_t cap; // floats
} rb_buf;

// Activations kept by forward for backward, and gradient scratch.
enum {
    RB_C0, RB_C1, RB_C2,  // conv outputs of the stages (bn inputs)
    RB_B0, RB_B1, RB_B2,  // bn outputs (relu inputs; the last one is added to the shortcut)
    RB_R0, RB_R1,         // relu outputs (inputs of the next conv)
    RB_DC, RB_DB,         // downsample conv and bn outputs
    RB_SUM,               // main path + shortcut (input of the final relu)
    RB_GSUM,              // gradient of the sum
    RB_GC,                // gradient of a conv output
    RB_GR,                // gradient of a relu output
    RB_GB,                // gradient of a bn output
    RB_GX,                // gradient of the input through the downsample path
    RB_T0, RB_T1,         // evaluation: outputs of the folded stages before the last (relu applied)
    RB_TD,                // evaluation: output of the folded downsample
    RB_NBUF
};

struct ply_layer {
    const ply_host *host;
    const char *tname;       // "residual_basic" or "residual_bottleneck", for messages
    int32_t stages;          // 2 or 3
    int32_t downsample;      // 1 when the shortcut is conv1x1 + bn
    int64_t inplanes, planes, stride, out_channels;
    rb_child conv[RB_MAX_STAGES], bn[RB_MAX_STAGES];
    rb_child relu;           // one stateless relu, used after every stage as torchvision does
    int32_t fused[RB_MAX_STAGES]; // bn[k] applies the stage's relu itself (fuse_activation): no R buffer
    rb_child ds_conv, ds_bn; // downsample.0, downsample.1 (layer NULL without downsample)
    // Parameter table: children with parameters in state_dict order.
    int32_t nowners;
    const rb_child *owners[2 * RB_MAX_STAGES + 2];
    int32_t owner_count[2 * RB_MAX_STAGES + 2];
    int32_t nparams;
    char (*names)[RB_NAME_LEN]; // dotted names, nparams entries
    // Evaluation (residual_eval.c): each conv+bn pair as one folded conv, the stages but the last with the
    // relu fused; the last writes the block's output, and relu(output + shortcut) is one pass.
    int32_t training;        // set_training; 1 at creation, as PyTorch
    int32_t kept;            // buf holds the last forward's intermediates (a training forward ran)
    // Frozen for inference (rb_freeze, plugin.h's `freeze`): the folds are final, the conv and bn
    // children are destroyed (their weights freed), and only infer_shape, forward and destroy remain.
    int32_t frozen;
    ply_fold fold[RB_MAX_STAGES], ds_fold;
    // Shapes seen by the last forward.
    ply_shape shp_c[RB_MAX_STAGES], shp_dc;
    rb_buf buf[RB_NBUF];
};

// The shapes of a call: the stages' conv outputs c, the downsample's dc (x without one) and the output.
ply_status rb_plan(ply_layer *self, const ply_shape *x, ply_shape c[RB_MAX_STAGES], ply_shape *dc, ply_shape *out);
// ABI 1.7 (residual_eval.c): NCHW16C in, out and between the folds, where every fold takes it.
ply_status rb_eval_layouts(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, uint32_t *accepts,
                           uint32_t *produces);
ply_status rb_forward_layout(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, const int32_t *in_layouts,
                             ply_tensor *output, int32_t out_layout);
ply_status rb_infer_shape(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, ply_shape *output);
ply_status rb_forward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output);
// Evaluation forward on the folded convs (residual_eval.c); frees its buffers before it returns.
ply_status rb_forward_eval(ply_layer *self, const ply_tensor *x, ply_tensor *output, const ply_shape *out_shape);
// Frees every intermediate buffer (entering evaluation: backward's are not needed there).
void rb_release_buffers(ply_layer *self);
// The folded convs are stale (a training forward changed the running statistics).
void rb_invalidate_folds(ply_layer *self);
// plugin.h's `freeze`: derives the folds a last time and destroys the children they replace.
ply_status rb_freeze(ply_layer *self);

ply_status rb_backward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, const ply_tensor *output,
                       const ply_tensor *grad_output, ply_tensor *grad_inputs);


PLY_INTERNAL_END
#endif
