/* models/slim/models.h — the public API of models/slim: TF-slim's nets (VGG, ResNet v1/v2,
 * Inception v1/v3, LeNet, CifarNet) built exactly as the nets/ files of slim build them, as a flat list
 * of layers over tensors in arenas planned once and allocated once.
 *
 * Life of a net (STYLE.md §4, llm.c's scheme):
 *   net_create()   builds the graph for one model, batch size and image size and PLANS every
 *                  arena (parameters, gradients, activations with the tensors backward needs,
 *                  activation gradients reused by liveness, workspace). Nothing big is allocated,
 *                  so `--print_model` and parameter counts cost nothing.
 *   net_alloc()    allocates all arenas at once, 64-byte aligned, zeroed; after it, peak RSS is
 *                  known and no step allocates.
 *   net_forward() / net_backward()   one training or inference step (models/slim/net_exec.c).
 *   net_destroy()  frees everything.
 *
 * Variables carry slim's full names ("vgg_16/conv1/conv1_1/weights",
 * "resnet_v1_50/block1/unit_1/bottleneck_v1/conv1/BatchNorm/moving_mean"), TensorFlow's shapes
 * (conv weights HWIO, fc weights (IC, OC)), slim's initializer and whether slim's arg scope puts
 * an L2 regularizer on them. The parameters arena holds the trainable variables first, in
 * creation order, then the batch-norm moving statistics; the gradients arena has the same offsets
 * for the trainable part, so it is one contiguous buffer to allreduce.
 */
#ifndef MODELS_H
#define MODELS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/sb.h"

/* ---------------------------------------------------------------------------------------------
 * Variables.
 * ------------------------------------------------------------------------------------------- */
enum net_var_flag {
    NET_VAR_TRAINABLE = 1u << 0,   /* in tf.trainable_variables(); has a gradient */
    NET_VAR_REGULARIZED = 1u << 1, /* slim's arg scope sets weights_regularizer=l2(weight_decay) */
    NET_VAR_MOVING_STAT = 1u << 2, /* batch-norm moving_mean / moving_variance: saved, not trained */
};

/* How slim initializes a variable. `value` is the constant (CONSTANT), the stddev (TRUNCATED_
 * NORMAL, resolved for VARIANCE_SCALING as sqrt(1.3 * factor / fan_in), slim's
 * variance_scaling_initializer with uniform=False) or the limit (GLOROT_UNIFORM: slim's
 * xavier_initializer, sqrt(6 / (fan_in + fan_out))). TF's truncated normal redraws samples
 * beyond 2 stddev. */
typedef enum net_init_kind {
    NET_INIT_ZEROS,
    NET_INIT_ONES,
    NET_INIT_CONSTANT,
    NET_INIT_TRUNCATED_NORMAL,
    NET_INIT_VARIANCE_SCALING, /* truncated normal with stddev = value */
    NET_INIT_GLOROT_UNIFORM,   /* uniform in [-value, value] */
    NET_INIT_COUNT
} net_init_kind;

typedef struct net_init {
    net_init_kind kind;
    float value;           /* see above */
    float factor;          /* VARIANCE_SCALING's factor (slim default 2.0) */
    int fan_in, fan_out;   /* KH*KW*IC and KH*KW*OC for conv, IC and OC for fc */
} net_init;

/* Name of an initializer kind ("truncated_normal", ...); never NULL. */
const char *net_init_kind_name(net_init_kind k);

/* A variable descriptor. Valid until net_destroy(). */
typedef struct net_var {
    const char *name;  /* slim's full variable name, without ":0" */
    size_t offset;     /* in floats, into net_params() (and net_grads() when trainable) */
    size_t count;      /* number of floats */
    int ndim;
    int shape[4];      /* TensorFlow's shape: (KH, KW, IC, OC), (IC, OC) or (C) */
    unsigned flags;    /* enum net_var_flag */
    net_init init;
} net_var;

/* ---------------------------------------------------------------------------------------------
 * Building.
 * ------------------------------------------------------------------------------------------- */
typedef struct net_options {
    int num_classes;        /* logits width; <= 0: the model's usual dataset (1001 ImageNet
                               classes, 10 for lenet/cifarnet). The launcher passes the dataset's
                               num_classes - labels_offset, as train_image_classifier.py does. */
    int image_size;         /* <= 0: slim's default_image_size (224, 299, 28, 32) */
    int image_channels;     /* <= 0: 3 (1 for lenet, MNIST's grayscale) */
    int batch_size;         /* <= 0: 1 */
    float dropout_keep_prob;/* <= 0: slim's default for the model (0.5 VGG/LeNet/CifarNet,
                               0.8 Inception) */
    float label_smoothing;  /* --label_smoothing, used by the softmax cross-entropy loss */
} net_options;

typedef struct net net; /* opaque */

/* Build model `name` (one of net_model_names()) with options `opt` (NULL = all defaults) and plan
 * its arenas. On success *out owns a net to release with net_destroy(). Errors: SB_E_NOTFOUND
 * for an unknown name (the message lists the known ones), SB_E_RANGE when the image is too small
 * for the net (the message names the layer). */
int net_create(net **out, const char *name, const net_options *opt, sb_err *err);
/* Allocate every planned arena once (aborts with the size on out of memory) and initialize
 * moving variances to 1; parameters stay zero until the caller initializes them. Idempotent. */
void net_alloc(net *n);
/* Free the net; NULL is a no-op. */
void net_destroy(net *n);

/* Model names of the factory, slim's spelling, NULL-terminated; static storage. */
const char *const *net_model_names(void);
/* slim's default_image_size for a model, or 0 if unknown. */
int net_default_image_size(const char *name);

/* ---------------------------------------------------------------------------------------------
 * Queries (valid after net_create; pointers live until net_destroy).
 * ------------------------------------------------------------------------------------------- */
const char *net_name(const net *n);
int net_batch_size(const net *n);
int net_image_size(const net *n);
int net_image_channels(const net *n);
int net_num_classes(const net *n);

int net_num_vars(const net *n);
const net_var *net_var_at(const net *n, int i);
/* Variable by its full slim name, or NULL. */
const net_var *net_var_find(const net *n, const char *name);
/* Sum of the counts of variables whose flags include all bits of `mask` (0 = every variable).
 * net_param_count(n, NET_VAR_TRAINABLE) is slim's trainable parameter count. */
size_t net_param_count(const net *n, unsigned mask);

/* Forward FLOPs per image: 2 * multiply-adds of every convolution and fully-connected layer
 * (the results CSV's gflop_per_image is this / 1e9). Training costs about 3x. */
double net_flops_per_image(const net *n);

/* Bytes of each planned arena at the net's batch size. */
typedef struct net_memory {
    size_t params;     /* trainable variables + moving statistics */
    size_t grads;      /* gradients of the trainable variables */
    size_t acts;       /* activations and what backward keeps (BN mean/rstd, argmax, masks) */
    size_t act_grads;  /* activation gradients, buffers shared by liveness */
    size_t workspace;  /* largest kernel workspace */
} net_memory;
void net_memory_plan(const net *n, net_memory *m);

/* ---------------------------------------------------------------------------------------------
 * Arenas (NULL before net_alloc). Valid until net_destroy.
 * ------------------------------------------------------------------------------------------- */
float *net_params(net *n);        /* net_params_len(n) floats */
float *net_grads(net *n);         /* net_grads_len(n) floats; the caller zeroes per step */
size_t net_params_len(const net *n);
size_t net_grads_len(const net *n);
float *net_input(net *n);         /* images (N, H, W, C) NHWC, written by the caller */
int32_t *net_labels(net *n);      /* (N) labels in [0, num_classes) */
const float *net_logits(const net *n);     /* (N, num_classes) after net_forward */
const float *net_aux_logits(const net *n); /* inception_v3's AuxLogits, else NULL */

/* ---------------------------------------------------------------------------------------------
 * Execution (models/slim/net_exec.c). Call from outside any OpenMP parallel region, with the
 * thread count the net was created under (kernel workspaces were sized for it).
 * ------------------------------------------------------------------------------------------- */
typedef enum net_mode {
    NET_MODE_TRAIN, /* batch norm on batch statistics (moving statistics updated), dropout on */
    NET_MODE_INFER, /* batch norm on moving statistics, dropout off (is_training=False) */
    NET_MODE_COUNT
} net_mode;

/* Forward pass over net_input() and net_labels() (net_alloc first). Returns the total loss:
 * softmax cross-entropy of the logits (mean over the batch, with the net's label smoothing) plus
 * 0.4 x that of inception_v3's auxiliary logits; regularization is the trainer's. `seed` keys
 * the dropout masks of this step (each layer derives its own). */
float net_forward(net *n, net_mode mode, uint64_t seed);
/* Backward pass after a NET_MODE_TRAIN forward: ADDS dL/dparam into net_grads() (the caller
 * zeroes it once per step, so micro-batches accumulate). */
void net_backward(net *n);
/* A hook net_backward calls after each layer (in backward order): grads[ready, grads_len) are
 * final for this step. dist/ starts its gradient allreduce buckets from it. */
typedef void (*net_grads_ready_fn)(void *ctx, size_t ready);
/* Install (fn non-NULL) or remove the hook. Returns 0, or SB_E_UNSUPPORTED when the net's
 * trainable variables are not in layer order in the gradient arena (the hook could not name a
 * finished suffix); the hook is then not installed. */
int net_set_grads_ready_hook(net *n, net_grads_ready_fn fn, void *ctx);
/* Unweighted losses of the last forward: main (aux = 0) or auxiliary (aux = 1; 0 if none). */
float net_loss(const net *n, int aux);

/* Per-layer timing (launch --profile). net_profile_start() turns it on (allocating once) and
 * clears the totals; each later net_forward / net_backward adds every layer's wall time. The
 * grads-ready hook's time is not counted in any layer. */
typedef struct net_layer_profile {
    const char *scope;   /* slim scope of the layer */
    const char *kind;    /* "conv2d", "batch_norm", ... */
    double fwd_s, bwd_s; /* summed over the passes counted */
    double fwd_flops;    /* per pass, whole batch: 2 x multiply-adds (conv / fully connected) */
    double bwd_flops;    /* per pass: weight gradient, plus the input gradient when it is
                            computed (not for the first layer: the images need none) */
} net_layer_profile;
void net_profile_start(net *n);
/* The layers' totals in layer order (*count entries) and the forward / backward passes they
 * sum; NULL before net_profile_start. */
const net_layer_profile *net_profile(const net *n, int *count, int *fwd_passes, int *bwd_passes);

/* ---------------------------------------------------------------------------------------------
 * Printing (for `launch --model_name=X --print_model[=dot]`).
 * ------------------------------------------------------------------------------------------- */
/* One line per layer: slim scope, kind, output shape (H x W x C per image), parameters and
 * forward MFLOPs per image; then totals (trainable / all parameters, GFLOPs per image) and the
 * arena sizes at the net's batch size. */
void net_print(FILE *out, const net *n);
/* The graph in Graphviz dot: one node per layer labelled with scope, kind and output shape,
 * edges along tensors. */
void net_write_dot(FILE *out, const net *n);

#endif /* MODELS_H */
