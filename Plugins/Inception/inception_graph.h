/*
 * Private to the Inception plugin: a small graph of child layers.
 *
 * Every block of this plugin (basic_conv2d, the GoogLeNet and Inception-v3
 * blocks) is a list of child nodes created through host->create_layer, each
 * reading one or more earlier values. Value 0 is the block's input; value
 * k >= 1 is the output of node k-1; the last node's output is the block's
 * output. Nodes are listed in topological order, which is also torchvision's
 * registration order, so the parameters come out in state_dict order, each
 * child's names prefixed with the node's name ("branch3x3dbl_2" +
 * "conv.weight").
 */
#ifndef PLY_INCEPTION_GRAPH_H
#define PLY_INCEPTION_GRAPH_H

#include "ply/plugin.h"
#include "plugin_support.h"
#include "plugin_fold.h"

PLY_INTERNAL_BEGIN

#define BLK_MAX_NODES 16
#define BLK_MAX_IN 6

/* Evaluation above batch 1 (inception_fuse.c): the 1x1 basic_conv2d branches that read
 * the block's input (GoogLeNet's branch1, branch2.0 and branch3.0; Inception v3's branch1x1 and the first
 * convs of its other branches in blocks A, C and D; not E: inception_fuse.c) run as one conv2d child
 * whose output channels are theirs stacked in node order -- one product with OC = their sum, reading the input once instead of once
 * per branch. Member j's value is then channels [c0[j], c0[j] + oc[j]) of every image of that stacked
 * output: copied out where another child reads it (children take no strided tensors), read in place by
 * the block's concat. */
typedef struct blk_fused {
    int32_t n;                  /* members (0: this block does not fuse) */
    int32_t node[BLK_MAX_IN];   /* their node indices, ascending */
    int64_t c0[BLK_MAX_IN], oc[BLK_MAX_IN], oc_total; /* known once the stacked conv is made */
    int32_t failed;             /* the stacked conv could not take the relu, or the block was frozen before it was
                                 * made (blk_freeze): never fuse */
    int32_t final;              /* frozen with the stacked conv made: its values are final (blk_freeze) */
    ply_fold conv;              /* the stacked conv (bias on, relu fused); `valid`/`generation` as a fold's */
} blk_fused;

typedef struct blk_node {
    const ply_layer_type *type;
    ply_layer *layer;
    int32_t in[BLK_MAX_IN];   /* value indices this node reads */
    int32_t n_in;
    int32_t n_params;         /* the child's param_count */
    char prefix[32];          /* torchvision module name ("" = no parameters) */
    ply_shape shape;          /* output shape of the last forward */
    float *value, *grad;      /* output and its gradient (not for the last node) */
    int64_t value_cap, grad_cap;
} blk_node;

struct ply_layer {
    const ply_host *host;
    const char *type_name;    /* static: the block's type, for messages */
    const char *class_name;   /* static: torchvision's class ("InceptionA"), for summaries */
    int64_t in_channels;      /* checked by infer_shape */
    int32_t n_nodes;
    blk_node nodes[BLK_MAX_NODES];
    int32_t n_params;
    char **param_names;       /* dotted names, n_params of them */
    float *scratch[BLK_MAX_IN];
    int64_t scratch_cap[BLK_MAX_IN];
    /* Evaluation keeps no node value (kept = 0; nodes' value buffers are training's): its
     * intermediates live in the arena, and a backward after such a forward computes the node
     * values again first. */
    /* Evaluation's arena (blk_forward when not training): one block holding every intermediate
     * value, placed by liveness (a value's floats are reused once its last reader has run), kept
     * between calls and grown only when a larger input needs it, so a forward allocates nothing
     * and touches no fresh pages. Freed by destroy and by set_training(1). At batch 1 the
     * branches the final concat reads are written straight into their channels of the output
     * instead (the concat is skipped); a larger batch on planes of 17x17 and more runs in groups
     * of as many images as threads, one image at a time on one thread (inception_graph.c). */
    float *arena;
    int64_t arena_cap;
    int32_t training;         /* set_training; 1 at creation, as PyTorch */
    int32_t kept;             /* the node values are the last forward's (a training forward ran) */
    /* basic_conv2d: relu(bn(conv(x))) as one folded conv in evaluation (blk_fold) */
    int32_t fold_node;        /* the conv node (the bn is the next), or -1: no folding */
    int64_t fold_k[2], fold_s[2], fold_p[2];
    double fold_eps;
    ply_fold fold;
    /* Frozen for inference (blk_freeze, plugin.h's `freeze`): only infer_shape, forward and destroy
     * remain, and the fold is final. fold_only: basic_conv2d's conv, bn and relu children were
     * destroyed (their weights freed) and the folded conv alone gives shapes and values. */
    int32_t frozen, fold_only;
    blk_fused fused;          /* see blk_fused; set up by blk_fuse_1x1 at creation */
};

/* Building. Each builder is a no-op when *st is already an error, so a block's
 * create is a straight list of calls followed by blk_finish. Each returns the
 * new node's value index. */
ply_layer *blk_new(const ply_host *host, const char *type_name, const char *class_name, int64_t in_channels);
int32_t blk_add(ply_layer *self, ply_status *st, const char *prefix, const char *type, const ply_attr *attrs,
                int32_t n_attrs, const int32_t *in, int32_t n_in);
/* torchvision BasicConv2d: conv (no bias) + batch-norm (eps 0.001) + ReLU. */
int32_t blk_conv(ply_layer *self, ply_status *st, const char *prefix, int32_t in, int64_t cin, int64_t cout,
                 int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw);
/* maxpool2d / avgpool2d (count_include_pad=True), square kernel. */
int32_t blk_pool(ply_layer *self, ply_status *st, const char *type, int32_t in, int64_t k, int64_t s, int64_t p,
                 int ceil_mode);
int32_t blk_concat(ply_layer *self, ply_status *st, const int32_t *in, int32_t n_in);
/* Names the parameter-free node that produced value `v` as torchvision's module (GoogLeNet's
 * "branch4.0" max pool), so describe reports it and messages name it. No-op when *st is an error. */
void blk_name(ply_layer *self, const ply_status *st, int32_t v, const char *name);
/* basic_conv2d: in evaluation the whole block -- conv node `conv_node` (kernel k, stride s,
 * padding p, no bias), the bn node after it (eps) and the relu -- runs as one folded conv with
 * the relu fused (Plugins/Support/plugin_fold.h). The block must be exactly that. */
void blk_fold(ply_layer *self, const ply_status *st, int32_t conv_node, const int64_t k[2], const int64_t s[2],
              const int64_t p[2], double eps);
/* Marks the block's 1x1 basic_conv2d children that read its input (value 0) as members of one stacked
 * conv in evaluation above batch 1 (blk_fused); needs at least two. No-op when *st is an error. */
void blk_fuse_1x1(ply_layer *self, const ply_status *st);
/* Makes the stacked conv (first call) and copies the members' folded weights and biases into it when
 * stale (never derived, invalidated, or the host's parameter generation moved). *ok = 0: do not fuse
 * (no members, or a member or the stacked conv cannot fold / take the relu). */
ply_status blk_fused_sync(ply_layer *self, int *ok);
/* The fold of a basic_conv2d block (made on first use, derived again when stale); *ok = 0 when the conv type
 * will not take the relu. */
ply_status blk_sync_fold(ply_layer *self, int *ok);
/* dst[n][0 : count) = src[n * src_stride : + count) for n < images, and dst rows dst_stride apart,
 * split over the host's threads when large. */
void blk_copy_images(const ply_host *h, float *dst, int64_t dst_stride, const float *src, int64_t src_stride,
                     int64_t count, int64_t images);

/* Build the dotted parameter names; on failure (or when st is an error)
 * destroy self and return the status, else set *out. */
ply_status blk_finish(ply_layer *self, ply_status st, ply_layer **out);

/* Reads a required attribute that must be a positive integer. */
ply_status blk_positive_attr(const ply_host *host, const ply_attrs *attrs, const char *type_name, const char *name,
                             int64_t *out);

/* Grows the float buffer *buf (capacity *cap) to hold n values; an error naming the block when it cannot. */
ply_status blk_ensure(ply_layer *self, float **buf, int64_t *cap, int64_t n);
/* Shapes of every value for an input of shape in (shapes[0] = *in). */
ply_status blk_value_shapes(ply_layer *self, const ply_shape *in, ply_shape *shapes);
/* The evaluation forward of the unfolded graph (inception_eval.c): values in the arena, by lifetime; every
 * value, input and output laid out as `layout` (NCHW16C only where blk_eval_layouts offers it). */
ply_status blk_forward_eval(ply_layer *self, const ply_tensor *input, ply_tensor *output, int32_t layout);
/* Frees the node values training kept (evaluation keeps nothing between calls). */
void blk_release_values(ply_layer *self);
/* ABI 1.7 (inception_layouts.c): basic_conv2d answers for its fold; a block takes NCHW16C in, out and
 * between its children where every child reads and writes it and every concat input has a multiple
 * of 16 channels. */
ply_status blk_eval_layouts(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, uint32_t *accepts,
                            uint32_t *produces);
ply_status blk_forward_layout(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, const int32_t *in_layouts,
                              ply_tensor *output, int32_t out_layout);

/* The shared vtable entries. */
void blk_destroy(ply_layer *self);
ply_status blk_infer_shape(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, ply_shape *output);
ply_status blk_forward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output);
ply_status blk_backward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, const ply_tensor *output,
                        const ply_tensor *grad_output, ply_tensor *grad_inputs);
int32_t blk_param_count(ply_layer *self);
ply_status blk_get_param(ply_layer *self, int32_t index, ply_param *out);
void blk_set_training(ply_layer *self, int32_t training);
/* freeze (ABI 1.6): basic_conv2d derives its fold a last time and destroys the children it replaces;
 * the other blocks pass the promise on to their children and free what training kept. */
ply_status blk_freeze(ply_layer *self);
/* describe (ABI 1.2): every named node as a child, in order, with the shapes it sees; no MACs of its own;
 * the window of the longest path from the input to the output, children's windows composed. */
ply_status blk_describe(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, ply_layer_info *info);


PLY_INTERNAL_END
#endif
