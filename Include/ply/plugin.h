/*
 * ply/plugin.h -- the Ply layer-plugin ABI.
 *
 * This header is the whole contract between the Ply host (the Swift runtime,
 * `libply`, the `ply` tool) and a layer plugin: a shared library that
 * implements one or more layer types (conv2d, batchnorm2d, a residual block,
 * ...). A plugin needs nothing but this header and a C compiler:
 *
 *     cc -std=c99 -shared -fPIC -I<ply>/Include my_layer.c -o libmy_layer.so
 *
 * ------------------------------------------------------------------------
 * Versioning promise
 * ------------------------------------------------------------------------
 *  - PLY_ABI_VERSION_MAJOR changes only when an existing field or callback
 *    changes meaning or position. The host refuses a plugin built against
 *    another major version, with a message naming both versions.
 *  - PLY_ABI_VERSION_MINOR grows when fields are appended to a struct.
 *    Fields are never removed or reordered; new ones go at the end.
 *  - Every struct that crosses the boundary and may grow starts with
 *    `struct_size` (sizeof the struct as the writer compiled it) and
 *    `abi_version` (PLY_ABI_VERSION of the writer). A reader MUST NOT read
 *    past `struct_size`; a field beyond it is treated as absent (NULL / 0).
 *    The host refuses a struct smaller than the fields it requires.
 *  - Value structs marked FROZEN (ply_shape, ply_attr, ply_tensor,
 *    ply_attr_spec) never change layout. New versioned structs follow one
 *    layout: struct_size, then abi_version, then the fields (ply_layer_info).
 *
 * ------------------------------------------------------------------------
 * Life of a plugin
 * ------------------------------------------------------------------------
 *  1. The host dlopen()s the library and looks up the one entry symbol,
 *     `ply_plugin_entry` (PLY_PLUGIN_ENTRY_SYMBOL).
 *  2. It calls the entry with its services table (ply_host). The entry
 *     returns a static descriptor (ply_plugin) listing layer types, or NULL
 *     after reporting why through host->set_error.
 *  3. For every layer instance the host calls type->create with typed
 *     attributes, then infer_shape / forward / backward any number of
 *     times, then destroy. The host unloads the library only after every
 *     instance of its types has been destroyed.
 *
 * ------------------------------------------------------------------------
 * Rules every plugin follows
 * ------------------------------------------------------------------------
 *  - Every fallible callback returns a ply_status. On failure it SHOULD call
 *    host->set_error (or ply_errorf below) with a message that says what was
 *    wrong, and MUST leave its outputs unspecified but its own state valid.
 *  - A plugin MUST NOT exit, abort, longjmp out of a callback, or write to
 *    stdout/stderr. Diagnostics go through host->log.
 *  - Tensors are NCHW float32 unless a callback says otherwise.
 *  - Threading: the host calls the callbacks of one layer instance from one
 *    thread at a time. Different instances may be used from different
 *    threads at once, so a plugin MUST NOT keep mutable global state.
 *    Inside a callback a plugin MAY use host->parallel_for.
 */
#ifndef PLY_PLUGIN_H
#define PLY_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------- */
/* Versions                                                               */
/* ---------------------------------------------------------------------- */

#define PLY_ABI_VERSION_MAJOR 1
#define PLY_ABI_VERSION_MINOR 7 /* 1.1: fuse_activation; 1.2: attribute schemas, describe;
                                   1.3: param_generation; 1.4: sync_ranks, sync_allreduce_sum;
                                   1.5: alloc_zeroed; 1.6: freeze;
                                   1.7: eval_layouts, forward_layout (blocked channels) */
/** Packed version: major in the high 16 bits, minor in the low 16 bits. */
#define PLY_ABI_VERSION \
  ((uint32_t)(((uint32_t)PLY_ABI_VERSION_MAJOR << 16) | PLY_ABI_VERSION_MINOR))
#define PLY_ABI_MAJOR_OF(v) ((uint32_t)(v) >> 16)
#define PLY_ABI_MINOR_OF(v) ((uint32_t)(v)&0xFFFFu)

/** The one symbol a plugin library exports (see ply_plugin_entry_fn). */
#define PLY_PLUGIN_ENTRY_SYMBOL "ply_plugin_entry"

/** Largest number of dimensions a tensor or shape may have. */
#define PLY_MAX_NDIM 8

#if defined(_WIN32)
#define PLY_EXPORT __declspec(dllexport)
#else
#define PLY_EXPORT __attribute__((visibility("default")))
#endif

/* ---------------------------------------------------------------------- */
/* Status codes                                                           */
/* ---------------------------------------------------------------------- */

/** Result of every fallible call. Values are stable; new ones may be added. */
typedef enum ply_status {
  PLY_OK = 0,
  /** An attribute or argument has the wrong type or an invalid value. */
  PLY_ERR_INVALID_ARGUMENT = 1,
  /** An input shape the layer cannot take. */
  PLY_ERR_SHAPE = 2,
  /** Memory could not be allocated. */
  PLY_ERR_OUT_OF_MEMORY = 3,
  /** The layer does not support this request (e.g. strided input). */
  PLY_ERR_UNSUPPORTED = 4,
  /** A required attribute, layer type or symbol does not exist. */
  PLY_ERR_NOT_FOUND = 5,
  /** Version or struct-size mismatch between host and plugin. */
  PLY_ERR_ABI = 6,
  /** Numerical failure (NaN / Inf where it must not occur). */
  PLY_ERR_NUMERIC = 7,
  /** Any other failure inside the plugin. */
  PLY_ERR_INTERNAL = 8
} ply_status;

/* ---------------------------------------------------------------------- */
/* Tensors                                                                */
/* ---------------------------------------------------------------------- */

/** Element types. Only PLY_DTYPE_F32 flows through layers today; I64 is used
 *  for integer buffers such as batch-norm's `num_batches_tracked`. The codes
 *  are DLPack's (code << 8 | bits) so conversion is a table lookup. */
typedef enum ply_dtype {
  PLY_DTYPE_F32 = (2 << 8) | 32, /* kDLFloat, 32 bits */
  PLY_DTYPE_I64 = (0 << 8) | 64  /* kDLInt, 64 bits */
} ply_dtype;

/**
 * How an image tensor's values lie in memory (ABI 1.7). The tensor's shape is
 * always the logical (N, C, H, W); only the order of the values differs.
 *
 *  - PLY_LAYOUT_NCHW: compact row-major, as every tensor before 1.7 and
 *    every tensor outside an evaluation forward (training, backward, the
 *    model's own input and output).
 *  - PLY_LAYOUT_NCHW16C: channels in blocks of 16, a position's 16 channels
 *    adjacent: [N][ceil(C/16)][H][W][16], channel c at [c/16][h][w][c%16]
 *    (what ONNX Runtime calls NCHWc and ncnn pack16). The buffer holds
 *    N * ceil(C/16) * 16 * H * W floats; the lanes past C in the last block
 *    are 0, so a reader may load and compute whole blocks.
 *
 * Only ply_layer_type.eval_layouts and forward_layout speak of layouts; a
 * plugin without them only ever sees NCHW.
 */
typedef enum ply_layout {
  PLY_LAYOUT_NCHW = 0,
  PLY_LAYOUT_NCHW16C = 1
} ply_layout;

/** The bit of `layout` in eval_layouts' sets. */
#define PLY_LAYOUT_BIT(layout) (1u << (uint32_t)(layout))

/** A shape. FROZEN: this layout never changes. Unused dims[] are 0. */
typedef struct ply_shape {
  int32_t ndim;                /**< 0 (scalar) .. PLY_MAX_NDIM */
  int32_t reserved;            /**< MUST be 0 */
  int64_t dims[PLY_MAX_NDIM];  /**< dims[0] is the outermost (batch) */
} ply_shape;

/**
 * A non-owning view of a dense tensor, in the spirit of DLPack's DLTensor.
 * Whoever fills it keeps the memory alive for as long as the callee may use
 * it: for the duration of the call, unless a callback says otherwise.
 *
 * FROZEN value struct: it is embedded by value in ply_param (value, grad)
 * and passed in arrays, so its layout never changes, whatever struct_size
 * says; struct_size and abi_version are informative only. Readers MUST NOT
 * expect fields past `strides`; information a later ABI adds about tensors
 * (a blocked channel layout, say) comes in a struct of its own.
 *
 * DLPack conversion: data <-> DLTensor.data (device kDLCPU, byte_offset 0),
 * shape.ndim/dims <-> ndim/shape, dtype <-> {code = dtype >> 8,
 * bits = dtype & 0xFF, lanes = 1}, strides <-> strides (both in elements).
 */
typedef struct ply_tensor {
  uint32_t struct_size;  /**< sizeof(ply_tensor) of the writer */
  uint32_t abi_version;  /**< PLY_ABI_VERSION of the writer */
  void *data;            /**< first element; NULL only for "not wanted" */
  int32_t dtype;         /**< a ply_dtype */
  int32_t reserved;      /**< MUST be 0 */
  ply_shape shape;       /**< logical shape, NCHW for images */
  /** Strides in elements, one per dim, or NULL for compact row-major.
   *  Built-in layers accept only NULL and answer PLY_ERR_UNSUPPORTED to
   *  anything else; the host always passes compact tensors. */
  const int64_t *strides;
} ply_tensor;

/* ---------------------------------------------------------------------- */
/* Attributes                                                             */
/* ---------------------------------------------------------------------- */

/** Attribute value kinds. */
typedef enum ply_attr_kind {
  PLY_ATTR_INT = 1,    /**< v.i */
  PLY_ATTR_FLOAT = 2,  /**< v.f */
  PLY_ATTR_BOOL = 3,   /**< v.i, 0 or 1 */
  PLY_ATTR_STRING = 4, /**< v.s, NUL-terminated UTF-8 */
  PLY_ATTR_INTS = 5,   /**< v.ints[0..count) */
  PLY_ATTR_FLOATS = 6  /**< v.floats[0..count) */
} ply_attr_kind;

/** One named attribute, with PyTorch's argument names (`in_channels`,
 *  `kernel_size`, `stride`, `padding`, `ceil_mode`, `eps`, ...).
 *  FROZEN. Everything it points to is owned by the caller and valid only
 *  during the call that received it: a layer copies what it keeps. */
typedef struct ply_attr {
  const char *name;
  int32_t kind;   /**< a ply_attr_kind */
  int32_t count;  /**< element count for INTS / FLOATS, else 1 */
  union {
    int64_t i;
    double f;
    const char *s;
    const int64_t *ints;
    const double *floats;
  } v;
} ply_attr;

/** An attribute list. Names are unique. */
typedef struct ply_attrs {
  uint32_t struct_size;
  uint32_t abi_version;
  int32_t count;
  int32_t reserved;
  const ply_attr *items;  /**< count entries */
} ply_attrs;

/* ---------------------------------------------------------------------- */
/* Parameters and buffers                                                 */
/* ---------------------------------------------------------------------- */

/** What a named tensor of a layer is. */
typedef enum ply_param_kind {
  /** Trainable: the optimizer updates `value` from `grad`. */
  PLY_PARAM_WEIGHT = 0,
  /** State saved with the model but not trained (running_mean, ...). */
  PLY_PARAM_BUFFER = 1
} ply_param_kind;

/**
 * One named parameter or buffer of a layer instance.
 *
 * The memory behind `value` and `grad` belongs to the layer and lives until
 * destroy. The host MAY read and write `value` (loading weights, optimizer
 * steps) and `grad` (zeroing) between calls, never during one.
 */
typedef struct ply_param {
  uint32_t struct_size;
  uint32_t abi_version;
  /** PyTorch state_dict name relative to the layer: "weight", "bias",
   *  "running_mean", or dotted for composite layers ("conv1.weight",
   *  "downsample.0.weight"). Owned by the layer, valid until destroy. */
  const char *name;
  int32_t kind;      /**< a ply_param_kind */
  int32_t reserved;  /**< MUST be 0 */
  ply_tensor value;
  /** Gradient of the same shape for PLY_PARAM_WEIGHT; backward ADDS into it.
   *  For buffers, grad.data is NULL. */
  ply_tensor grad;
} ply_param;

/* ---------------------------------------------------------------------- */
/* Layers                                                                 */
/* ---------------------------------------------------------------------- */

/** A layer instance. Opaque to the host: the plugin defines it. */
typedef struct ply_layer ply_layer;

struct ply_host;
struct ply_layer_type;

/* ---------------------------------------------------------------------- */
/* Self-description (ABI 1.2)                                             */
/* ---------------------------------------------------------------------- */

/** Flags of a ply_attr_spec. */
typedef enum ply_attr_flags {
  /** The attribute must be given; create fails without it. */
  PLY_ATTR_REQUIRED = 1,
  /** A pair as attr_pair reads it: an INT (repeated) or INTS of exactly two.
   *  `kind` is then PLY_ATTR_INTS. */
  PLY_ATTR_PAIR = 2,
  /** A STRING is accepted too (conv2d's padding: a pair, or "same" /
   *  "valid"); the plugin checks the word. */
  PLY_ATTR_OR_STRING = 4,
  /** The scalar and the list form of the kind are both accepted (INT or
   *  INTS, FLOAT or FLOATS; for FLOATS also INT and INTS): interpolate's
   *  scale_factor, one factor or one per axis. */
  PLY_ATTR_SCALAR_OR_LIST = 8
} ply_attr_flags;

/**
 * One attribute a layer type takes (ABI 1.2). FROZEN: this layout never
 * changes. Static storage, owned by the plugin.
 *
 * The host checks every attribute list against the type's specs BEFORE it
 * calls create — from model files, Swift, C and composite layers'
 * create_layer alike: a name not in the specs is an error naming the
 * attribute, the type and the closest valid name; a value of another kind is
 * an error; a missing PLY_ATTR_REQUIRED attribute is an error. Kinds accept
 * what the host's attribute readers accept: PLY_ATTR_INT takes INT and BOOL,
 * PLY_ATTR_FLOAT takes FLOAT and INT, PLY_ATTR_BOOL takes BOOL and INT 0/1,
 * PLY_ATTR_INTS takes INTS (and, with PLY_ATTR_PAIR, an INT),
 * PLY_ATTR_FLOATS takes FLOATS and INTS. A plugin still validates values
 * (ranges, consistency) in create: the schema is about names and kinds.
 */
typedef struct ply_attr_spec {
  /** PyTorch's argument name ("kernel_size"). NULL ends the list. */
  const char *name;
  int32_t kind;   /**< a ply_attr_kind */
  int32_t flags;  /**< ply_attr_flags */
  /** The default as a model file writes it ("1", "[0, 0]", "true",
   *  "zeros"), shown by `ply plugins --describe`; NULL when the attribute is
   *  required or its absence has a meaning the doc states. */
  const char *default_text;
  /** One line: what it does. */
  const char *doc;
} ply_attr_spec;

/** How one output position of a layer depends on the input plane, for
 *  receptive fields. */
typedef enum ply_window_kind {
  /** Position to position (element-wise layers, batch-norm, joins): the
   *  field passes through unchanged. The zero value. */
  PLY_WINDOW_IDENTITY = 0,
  /** A window of kernel[] input pixels, stride[] pixels apart (conv,
   *  pooling, resizing, and composite blocks' effective window along their
   *  longest path). */
  PLY_WINDOW_SPATIAL = 1,
  /** Every output depends on the whole input plane (global pooling,
   *  linear, squeeze-and-excitation gates). */
  PLY_WINDOW_GLOBAL = 2
} ply_window_kind;

/**
 * What a layer instance says about itself for given input shapes (ABI 1.2),
 * filled by the layer's `describe`. The host allocates it, zeroes it and sets
 * struct_size and abi_version to its own; the plugin writes no field past
 * struct_size (check it before writing a field added after the plugin's own
 * ABI minor).
 */
typedef struct ply_layer_info {
  uint32_t struct_size;  /**< sizeof(ply_layer_info) of the host */
  uint32_t abi_version;  /**< PLY_ABI_VERSION of the host */
  /** Multiply-accumulates of this layer alone for the whole batch, children
   *  excluded (the host adds theirs): conv and linear products by
   *  convention (conv: output elements x in_channels/groups x kh x kw;
   *  linear: output elements x in_features), 0 for everything else. */
  int64_t macs;
  int32_t window;  /**< a ply_window_kind */
  int32_t reserved;
  /** For PLY_WINDOW_SPATIAL: the input pixels one output spans along H and W
   *  (dilation applied: d*(k-1)+1; a block: its longest path's) and the
   *  input pixels between neighbouring outputs (fractional for resizing and
   *  adaptive pooling). */
  double kernel[2];
  double stride[2];
  /** Host-owned: pass `info` back to add_child unchanged. */
  void *host_context;
  /**
   * Report a child layer (composites: the instances they made with
   * host->create_layer), in PyTorch's module order, with its attribute name
   * relative to this layer ("conv1", "downsample.0", "branch3x3_1") and the
   * shapes it sees for this call. The host describes the child in turn (its
   * type, attributes, parameters, MACs, own children) and shows it under
   * this layer in summaries. `inputs` and `output` are read during the call
   * only. Returns PLY_OK, or an error the describe call passes on.
   * `output` MUST be what the child's infer_shape gives for `inputs`. When a
   * layer reports named children, they MUST account for its parameters: the
   * children's PLY_PARAM_WEIGHT parameters, each prefixed with the child's
   * name and '.', are the layer's own, name for name and in order (otherwise
   * summaries show the layer unexpanded). ply-plugin-check checks both.
   */
  ply_status (*add_child)(struct ply_layer_info *info, const char *name,
                          const struct ply_layer_type *type, ply_layer *child,
                          int32_t n_inputs, const ply_shape *inputs,
                          const ply_shape *output);
  /** The module's class name as PyTorch prints it in a model's tree
   *  ("BasicBlock", "InceptionA"), or NULL: the host prints the type name.
   *  Static storage. */
  const char *class_name;
} ply_layer_info;


/**
 * A layer type: its name, documentation and vtable.
 *
 * REQUIRED callbacks: create, destroy, infer_shape, forward.
 * OPTIONAL callbacks (may be NULL): backward (the layer cannot be trained
 * through), param_count/get_param (no parameters), set_training (behaves
 * the same in both modes).
 *
 * Calling order for one instance: create; then any sequence of
 * set_training, infer_shape, forward, backward, get_param; then destroy.
 * backward is only called after a forward (in either mode), with the same
 * inputs and output that forward saw, and before the next forward: a layer
 * MAY keep what it needs for backward (masks, argmax, batch statistics)
 * from that forward. The host MUST NOT change the layer's parameters
 * between that forward and the backward calls after it (the optimizer
 * steps after backward), so what a layer keeps MAY include values derived
 * from its parameters (gathered or transformed weights), as PyTorch's
 * autograd keeps the tensors forward saw.
 */
typedef struct ply_layer_type {
  uint32_t struct_size;  /**< sizeof(ply_layer_type) of the plugin */
  uint32_t abi_version;  /**< PLY_ABI_VERSION the plugin was built with */
  /** Type name used in model files ("conv2d"). Lowercase, [a-z0-9_]. Static. */
  const char *name;
  /** One-line description shown by `ply plugins`. Static. */
  const char *doc;
  /** Number of inputs: min_inputs..max_inputs (max_inputs -1 = unbounded). */
  int32_t min_inputs;
  int32_t max_inputs;

  /**
   * Create an instance from attributes. `host` stays valid for the whole
   * life of the instance and MAY be kept. Parameters are allocated and
   * initialised with PyTorch's default init (the host overwrites them when
   * weights are loaded). On success *out is set; on failure *out is left
   * NULL, the error reported through host, and nothing is leaked.
   */
  ply_status (*create)(const struct ply_host *host, const ply_attrs *attrs,
                       ply_layer **out);

  /** Free everything the instance owns. `self` may be NULL (no-op). */
  void (*destroy)(ply_layer *self);

  /**
   * Output shape for the given input shapes, or PLY_ERR_SHAPE with a
   * message naming the offending input and dimension. Pure: no state change.
   */
  ply_status (*infer_shape)(ply_layer *self, int32_t n_inputs,
                            const ply_shape *inputs, ply_shape *output);

  /**
   * Compute output from inputs. `output` has the shape infer_shape gave and
   * is allocated by the host; inputs are read-only and never alias output.
   */
  ply_status (*forward)(ply_layer *self, int32_t n_inputs,
                        const ply_tensor *inputs, ply_tensor *output);

  /**
   * Given d(loss)/d(output), WRITE d(loss)/d(inputs[i]) into grad_inputs[i]
   * (overwrite, not accumulate) for every i whose grad_inputs[i].data is
   * non-NULL, and ADD parameter gradients into each parameter's grad.
   * OPTIONAL.
   */
  ply_status (*backward)(ply_layer *self, int32_t n_inputs,
                         const ply_tensor *inputs, const ply_tensor *output,
                         const ply_tensor *grad_output,
                         ply_tensor *grad_inputs);

  /** Number of named parameters and buffers. OPTIONAL (NULL = 0). */
  int32_t (*param_count)(ply_layer *self);

  /** Fill *out for index 0..param_count-1 in PyTorch state_dict order
   *  (a composite layer lists its children one after another, each child's
   *  own weights before its buffers). OPTIONAL with param_count. */
  ply_status (*get_param)(ply_layer *self, int32_t index, ply_param *out);

  /** Switch between training (1) and evaluation (0). New instances are in
   *  training mode, as in PyTorch. OPTIONAL. */
  void (*set_training)(ply_layer *self, int32_t training);

  /**
   * Take over the parameter-free activation that follows this layer
   * (ABI 1.1; OPTIONAL: NULL, or absent from a 1.0 plugin, never fuses).
   *
   * The host MAY call it once per instance, before the instance's first
   * forward, when the layer's output feeds nothing but one `activation`
   * layer; today `activation` is "relu" (max(x, 0) with NaN passed
   * through, as the built-in relu). Returning PLY_OK is a promise that from
   * then on:
   *  - forward writes activation(y) where it used to write y;
   *  - backward's `output` holds activation(y) and `grad_output` is
   *    d(loss)/d(activation(y)); the layer applies the activation's
   *    derivative itself (relu: the gradient passes where output > 0).
   * The host then runs no activation layer: its value is this layer's
   * output. Any other status leaves the layer as it was, and the host runs
   * the activation layer as usual; a layer SHOULD return
   * PLY_ERR_UNSUPPORTED, without calling set_error, for an activation it
   * does not know. `activation` is valid during the call only.
   */
  ply_status (*fuse_activation)(ply_layer *self, const char *activation);

  /* ---- ABI 1.2 ---- */

  /**
   * The attributes the type takes, ended by an entry whose name is NULL
   * (a list of just that entry: no attributes). NULL: the type declares no
   * schema, and the host passes attributes unchecked (with a warning, or an
   * error under `--strict-attributes` / Runtime.Options.strictAttributes).
   * Static. See ply_attr_spec.
   */
  const ply_attr_spec *attr_specs;

  /** One line naming the inputs and their shapes, e.g. "x: (N, C, H, W)",
   *  shown by `ply plugins --describe`; NULL if not given. Static. */
  const char *inputs_doc;

  /**
   * Describe this instance for the given input shapes: MACs, spatial window
   * and children (see ply_layer_info). OPTIONAL: NULL means no MACs, an
   * identity window and no children. Pure: no state change; MUST NOT fail
   * for shapes infer_shape accepts.
   */
  ply_status (*describe)(ply_layer *self, int32_t n_inputs,
                         const ply_shape *inputs, ply_layer_info *info);

  /* ---- ABI 1.6 ---- */

  /**
   * The host's promise that this instance only runs inference from now on
   * ("frozen for inference"), so that it MAY free what an evaluation forward
   * does not read: the unfolded originals of a batch norm folded into a conv
   * (the conv and bn children a composite no longer runs), gradients, what it
   * keeps for backward. OPTIONAL: NULL, or absent from an older plugin, keeps
   * everything, which is always correct.
   *
   * The host calls it at most once per instance, between calls, after
   * set_training(0). When it returns PLY_OK, the host from then on calls
   * only infer_shape, forward, eval_layouts, forward_layout and destroy on
   * the instance: never
   * set_training, backward, fuse_activation, param_count, get_param or
   * describe, and it reads and writes no parameter memory the instance lent
   * it earlier (get_param's value and grad): that memory MAY be freed.
   * forward MUST keep giving the same output, bit for bit, as before the
   * call, for every input shape infer_shape accepts, and MUST NOT depend on
   * the host's param_generation any more (what it derived from parameters
   * is final). The host's own API refuses training, backward and parameter
   * access on a frozen model with an error; nothing undoes a freeze.
   *
   * Any other status leaves the instance as it was, fully usable (nothing
   * freed: all-or-nothing); the host then keeps the promise anyway and the
   * instance simply keeps its memory. A composite passes the promise on to
   * the children it keeps running (checking each child type's struct_size
   * covers this slot), and MAY destroy the children it no longer runs.
   */
  ply_status (*freeze)(ply_layer *self);

  /* ---- ABI 1.7 ---- */

  /**
   * The layouts (ply_layout) this instance's evaluation forward can take for
   * these input shapes: for each input i, accepts[i] = the set of layouts it
   * can read inputs[i] in (bits of PLY_LAYOUT_BIT), and *produces = the set
   * it can write its output in. PLY_LAYOUT_NCHW MUST be in every set.
   * OPTIONAL (with forward_layout): NULL, or absent from an older plugin,
   * means NCHW only. Pure: no observable state change (a composite MAY make
   * the internal children it asks, as its forward would). It MAY depend on the shapes (a
   * blocked path only for 4-D inputs, or only where C is a multiple of 16)
   * and on the mode (the host asks only in evaluation mode, and again after
   * every change of mode, fusion or shapes). MUST NOT fail for shapes
   * infer_shape accepts.
   *
   * The host chooses, the layer does not: a value is kept NCHW16C only where
   * its producer can write it so and every layer reading it accepts it; the
   * model's input and output are always NCHW. So the host never converts:
   * a layer that reads NCHW and can write NCHW16C starts a blocked run, one
   * that reads NCHW16C and writes NCHW ends it.
   */
  ply_status (*eval_layouts)(ply_layer *self, int32_t n_inputs,
                             const ply_shape *inputs, uint32_t *accepts,
                             uint32_t *produces);

  /**
   * forward in evaluation mode with the layouts the host chose:
   * inputs[i] lies as in_layouts[i], and the output is to be written as
   * out_layout (shapes logical, strides NULL; buffers sized as ply_layout
   * says). The host calls it only in evaluation mode, only with layouts
   * eval_layouts allowed for these shapes, and only when at least one of
   * them is not NCHW (with all NCHW it calls forward). A layer writing
   * NCHW16C MUST write the padding lanes as 0. Its output MUST equal
   * forward's, reordered, to within what a different order of the same sums
   * gives; the host's tests hold it to the PyTorch goldens as forward.
   * OPTIONAL with eval_layouts: both or neither.
   */
  ply_status (*forward_layout)(ply_layer *self, int32_t n_inputs,
                               const ply_tensor *inputs,
                               const int32_t *in_layouts, ply_tensor *output,
                               int32_t out_layout);
} ply_layer_type;

/* ---------------------------------------------------------------------- */
/* The plugin descriptor                                                  */
/* ---------------------------------------------------------------------- */

/** What a plugin library's entry returns. Static storage, owned by the
 *  plugin, valid until the library is unloaded. */
typedef struct ply_plugin {
  uint32_t struct_size;  /**< sizeof(ply_plugin) of the plugin */
  uint32_t abi_version;  /**< PLY_ABI_VERSION the plugin was built with */
  const char *name;      /**< e.g. "ply.conv" or "acme.shuffle" */
  const char *version;   /**< the plugin's own version string */
  int32_t type_count;
  int32_t reserved;
  /** type_count pointers (an array of pointers so ply_layer_type can grow). */
  const ply_layer_type *const *types;
} ply_plugin;

/* ---------------------------------------------------------------------- */
/* Host services                                                          */
/* ---------------------------------------------------------------------- */

/** Log levels for ply_host.log. */
typedef enum ply_log_level {
  PLY_LOG_DEBUG = 0,
  PLY_LOG_INFO = 1,
  PLY_LOG_WARNING = 2,
  PLY_LOG_ERROR = 3
} ply_log_level;

/** Body of a parallel loop: handle indices [begin, end). */
typedef void (*ply_parallel_fn)(void *context, int64_t begin, int64_t end);

/**
 * The services the host lends a plugin (cf. sqlite3_api_routines). Owned by
 * the host; valid from the entry call until the library is unloaded. The
 * table is append-only: a plugin built against an older minor version sees
 * a prefix of it; a plugin that needs a newer slot checks struct_size first.
 * All slots up to ABI 1.0 are always non-NULL.
 */
typedef struct ply_host {
  uint32_t struct_size;
  uint32_t abi_version;  /**< PLY_ABI_VERSION of the host */
  void *host_data;       /**< private to the host */

  /** Record the error message for the current failing call. The text is
   *  copied. Thread-safe: errors are per thread. */
  void (*set_error)(const struct ply_host *host, ply_status status,
                    const char *message);

  /** Log a message (copied). Never goes to stdout. Thread-safe. */
  void (*log)(const struct ply_host *host, ply_log_level level,
              const char *message);

  /** Allocate `bytes` aligned to 64 bytes, or NULL. Thread-safe. */
  void *(*alloc)(const struct ply_host *host, size_t bytes);
  /** Free memory from alloc. NULL is a no-op. Thread-safe. */
  void (*free)(const struct ply_host *host, void *ptr);

  /**
   * Run fn(context, begin, end) over chunks covering [0, n) on the host's
   * thread pool and return when all are done. Chunks are at least `grain`
   * long (grain <= 0 means the host chooses). fn MUST NOT call parallel_for
   * itself and MUST be safe to run concurrently on disjoint ranges.
   */
  void (*parallel_for)(const struct ply_host *host, int64_t n, int64_t grain,
                       ply_parallel_fn fn, void *context);

  /** Number of threads parallel_for uses (>= 1), for the calling thread: it
   *  MAY differ between calls and threads. Ply's runtime answers 1 on a thread
   *  that carries one lane of a batch split over copies of the model (and its
   *  parallel_for then runs every range on that thread). A plugin SHOULD ask
   *  in each call that splits work rather than keep the answer from create. */
  int32_t (*thread_count)(const struct ply_host *host);

  /**
   * Create a layer of any loaded type by name, for composite layers
   * (residual and inception blocks build their conv / batch-norm children
   * this way). On success *type_out and *layer_out are set; the caller owns
   * the instance and MUST free it with (*type_out)->destroy before its own
   * destroy returns. The child's callbacks are called directly through
   * *type_out. The child's error messages reach the caller's caller as is.
   */
  ply_status (*create_layer)(const struct ply_host *host, const char *type_name,
                             const ply_attrs *attrs,
                             const ply_layer_type **type_out,
                             ply_layer **layer_out);

  /**
   * Attribute readers with uniform error messages. Each returns PLY_OK and
   * sets *out when the attribute `name` exists with a fitting type;
   * PLY_ERR_NOT_FOUND (and NO error message) when it is absent, so the
   * caller can apply a default; PLY_ERR_INVALID_ARGUMENT with a message
   * naming the attribute when the type does not fit. Integers accept
   * PLY_ATTR_INT and PLY_ATTR_BOOL; floats accept FLOAT and INT; bools
   * accept BOOL and INT 0/1.
   */
  ply_status (*attr_int)(const struct ply_host *host, const ply_attrs *attrs,
                         const char *name, int64_t *out);
  ply_status (*attr_float)(const struct ply_host *host, const ply_attrs *attrs,
                           const char *name, double *out);
  ply_status (*attr_bool)(const struct ply_host *host, const ply_attrs *attrs,
                          const char *name, int32_t *out);
  /** Strings: *out points into attrs, valid only during the call. */
  ply_status (*attr_string)(const struct ply_host *host, const ply_attrs *attrs,
                            const char *name, const char **out);
  /** A pair as PyTorch takes `kernel_size=3` or `kernel_size=(1, 7)`: an INT
   *  is repeated, INTS must have exactly 2 entries. */
  ply_status (*attr_pair)(const struct ply_host *host, const ply_attrs *attrs,
                          const char *name, int64_t out[2]);

  /**
   * Fill data[0..n) with independent draws from U(low, high) taken from the
   * host's seeded generator, so that initialisation (create) and random
   * masks (dropout's forward) are reproducible from one seed and resumable
   * from a checkpoint. Thread-safe; draws are ordered per call.
   */
  void (*fill_uniform)(const struct ply_host *host, float *data, int64_t n,
                       float low, float high);

  /* ABI 1.2 */
  /**
   * Resolve a native function for a plugin that calls user code
   * (user_activation), so that no function pointer ever travels through
   * attributes (model text could otherwise make the process call any
   * address). Two forms:
   *  - library == NULL: the function the application registered under
   *    `name` with the runtime (ply_runtime_register_function /
   *    ply_runtime_register_activation in ply.h; Runtime.registerFunction or
   *    UserActivation.register(as:in:) in Swift). *signature receives its C
   *    signature ("float(float)"), *derivative its derivative (same
   *    signature) or NULL.
   *  - library != NULL: the symbol `name` of the shared library `library`,
   *    a path or a name dlopen searches for. The host opens it (RTLD_NOW |
   *    RTLD_LOCAL), which RUNS THE LIBRARY'S CODE (its initialisers), and
   *    keeps it open; *signature and *derivative are set to NULL. The host
   *    refuses with PLY_ERR_UNSUPPORTED when the application switched user
   *    libraries off (Runtime.Options.allowUserLibraries = false,
   *    `ply --no-user-libraries`).
   * Returns PLY_OK, or PLY_ERR_NOT_FOUND / PLY_ERR_UNSUPPORTED after
   * set_error with a message naming what is missing. Any out pointer may be
   * NULL when not wanted. Ownership and lifetime: everything returned is the
   * host's and stays valid while the host table does, i.e. for the whole
   * life of every layer created with this host; registrations are never
   * removed or replaced. Thread-safe. The functions themselves are called by
   * the plugin from any thread (the application promises they may be).
   * A plugin MUST check that host->struct_size covers this slot before
   * calling it (an ABI 1.0/1.1 host has no such slot).
   */
  ply_status (*resolve_function)(const struct ply_host *host,
                                 const char *library, const char *name,
                                 const char **signature, void (**fn)(void),
                                 void (**derivative)(void));

  /* ABI 1.3 */
  /**
   * A number that changes whenever the host may have written the value of
   * any parameter or buffer of any layer it lent this table to: loading
   * weights, an optimizer step, initialisation, handing a writable view of
   * a parameter to the application. Equal numbers from two calls mean no
   * value was written in between by the host.
   *
   * For layers that derive data from their own parameters and keep it
   * (batch-norm folded into a conv's weights, transformed kernels): keep
   * the number the data was derived at and derive again when it differs.
   * What a layer writes itself (a training forward's running statistics,
   * a composite writing its children's values) it tracks on its own.
   * Thread-safe and cheap (an atomic load). A plugin MUST check that
   * host->struct_size covers this slot before calling it; without it (an
   * ABI 1.0-1.2 host) derived data must be derived again on every call.
   */
  uint64_t (*param_generation)(const struct ply_host *host);

  /* ABI 1.4 */
  /**
   * Synchronised batch statistics (PyTorch's SyncBatchNorm): in data-parallel
   * training each process (rank) holds a share of every batch, and a layer
   * whose training forward normalises with statistics of the whole batch
   * (batchnorm2d) combines its per-rank sums through these two slots, so that
   * N ranks compute what one process computes on the whole batch.
   *
   * sync_ranks returns the number of ranks whose batches a layer in training
   * mode combines: 1 (the layer's own batch is the whole batch; nothing to
   * do) unless the application trains data-parallel with synchronised
   * batch norm (`ply train --distributed --sync-batchnorm`,
   * TrainingConfiguration.syncBatchNorm, ply_fit_options.sync_batchnorm),
   * and then the same value on every rank. It may change between training
   * steps, never during a forward or backward: a layer reads it in its
   * training forward and keeps that answer for the matching backward.
   *
   * sync_allreduce_sum replaces data[i] by the sum over the ranks of data[i]
   * for i in [0, count); every rank receives the same values. When
   * sync_ranks is 1 it returns PLY_OK and leaves data as it is. On failure
   * (a rank died, the network broke) it returns PLY_ERR_INTERNAL after
   * set_error with the engine's reason, leaves data unspecified, and the
   * layer returns that status from its callback (the job is over).
   *
   * Rules, because a collective involves every rank:
   *  - A layer MUST call sync_allreduce_sum the same number of times, in the
   *    same order, with the same count on every rank, whatever its own share
   *    (a rank with fewer images still calls it, with its sums): count and
   *    order may depend on shapes other than the batch dimension and on
   *    attributes, never on the data.
   *  - It MUST be called from the thread that called forward or backward,
   *    never inside parallel_for (calls are serialized by the host and
   *    their order is the order on every rank), and only while training
   *    (after set_training(1)): evaluation never synchronises.
   *  - The sum is taken in float64 (deep networks amplify float32 rounding
   *    of batch statistics); a layer still sends sums free of cancellation
   *    (centred sums of squares, not raw ones).
   *  - data is the caller's; the host reads and writes it during the call only.
   * Both slots are non-NULL in an ABI 1.4 host. A plugin MUST check that
   * host->struct_size covers them before calling (an older host has no such
   * slots: treat that as sync_ranks = 1).
   */
  int32_t (*sync_ranks)(const struct ply_host *host);
  ply_status (*sync_allreduce_sum)(const struct ply_host *host, double *data,
                                   int64_t count);

  /* ABI 1.5 */
  /**
   * As `alloc` (64-byte aligned, freed with `free`, NULL on failure,
   * thread-safe), and every byte of the block reads as zero. The host MAY
   * back a large block with pages the operating system maps only when they
   * are first written (anonymous memory), so that memory a layer allocates
   * but never writes costs no physical memory: gradients of a model that only
   * runs inference, which is most of the difference between a framework's
   * inference memory and the size of its weights. A plugin SHOULD take
   * zero-initialised memory it may never write (gradients, accumulators)
   * from here rather than alloc + memset, which writes every page.
   * A plugin MUST check that host->struct_size covers this slot and that it
   * is non-NULL before calling it; without it, alloc + memset is the same
   * (Plugins/Support/plugin_support.h: ply_alloc_zeroed does both).
   */
  void *(*alloc_zeroed)(const struct ply_host *host, size_t bytes);
} ply_host;

/**
 * The entry point every plugin library exports under the name
 * "ply_plugin_entry":
 *
 *     PLY_EXPORT const ply_plugin *ply_plugin_entry(const ply_host *host);
 *
 * It MUST check PLY_ABI_MAJOR_OF(host->abi_version) and return NULL (after
 * host->set_error) when it cannot work with that host. It MAY be called
 * more than once and MUST return the same descriptor each time.
 */
typedef const ply_plugin *(*ply_plugin_entry_fn)(const ply_host *host);

/* ---------------------------------------------------------------------- */
/* Small helpers for plugin authors (header-only, optional)              */
/* ---------------------------------------------------------------------- */

/** printf-style error report through host->set_error. Returns `status`. */
static inline ply_status ply_errorf(const ply_host *host, ply_status status,
                                    const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static inline ply_status ply_errorf(const ply_host *host, ply_status status,
                                    const char *format, ...) {
  char message[512];
  va_list args;
  va_start(args, format);
  vsnprintf(message, sizeof message, format, args);
  va_end(args);
  host->set_error(host, status, message);
  return status;
}

/** Number of elements of a shape (1 for a scalar). */
static inline int64_t ply_shape_numel(const ply_shape *shape) {
  int64_t n = 1;
  int32_t i;
  for (i = 0; i < shape->ndim; i++) n *= shape->dims[i];
  return n;
}

/** A shape from up to four dimensions; pass ndim to say how many count. */
static inline ply_shape ply_shape_make(int32_t ndim, int64_t d0, int64_t d1,
                                       int64_t d2, int64_t d3) {
  ply_shape s;
  int32_t i;
  s.ndim = ndim;
  s.reserved = 0;
  for (i = 0; i < PLY_MAX_NDIM; i++) s.dims[i] = 0;
  if (ndim > 0) s.dims[0] = d0;
  if (ndim > 1) s.dims[1] = d1;
  if (ndim > 2) s.dims[2] = d2;
  if (ndim > 3) s.dims[3] = d3;
  return s;
}

/** A float32 tensor view of `data` with `shape`. */
static inline ply_tensor ply_tensor_make(float *data, ply_shape shape) {
  ply_tensor t;
  t.struct_size = (uint32_t)sizeof(ply_tensor);
  t.abi_version = PLY_ABI_VERSION;
  t.data = data;
  t.dtype = PLY_DTYPE_F32;
  t.reserved = 0;
  t.shape = shape;
  t.strides = NULL;
  return t;
}

/** Fill a ply_param for a float32 weight (grad != NULL) or buffer. */
static inline ply_param ply_param_make(const char *name, float *value,
                                       float *grad, ply_shape shape) {
  ply_param p;
  p.struct_size = (uint32_t)sizeof(ply_param);
  p.abi_version = PLY_ABI_VERSION;
  p.name = name;
  p.kind = grad ? PLY_PARAM_WEIGHT : PLY_PARAM_BUFFER;
  p.reserved = 0;
  p.value = ply_tensor_make(value, shape);
  p.grad = ply_tensor_make(grad, shape);
  return p;
}

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* PLY_PLUGIN_H */
