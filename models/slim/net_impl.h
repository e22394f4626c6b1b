/* models/slim/net_impl.h — internals of models/slim shared by net.c (graph, plan, print),
 * net_exec.c (forward/backward) and the net definitions (vgg.c, resnet_v1.c, ...).
 *
 * A net is a flat list of small layers {kind, scope, inputs, output, typed params} over tensors.
 * The definitions build it through a builder that mimics slim: a variable-scope stack and an
 * "arg scope" (normalizer, activation, initializers, regularizer, padding) that each call reads,
 * so a definition reads like its slim source. Shapes are resolved while building (the batch size
 * is known), so the planner only places buffers.
 */
#ifndef NET_IMPL_H
#define NET_IMPL_H

#include <stdint.h>

#include "kernels/kernels.h"
#include "models/slim/models.h"

typedef enum net_layer_kind {
    NET_LAYER_CONV,           /* conv2d, bias when slim has no normalizer */
    NET_LAYER_BN,             /* slim.batch_norm */
    NET_LAYER_RELU,           /* tf.nn.relu, in place when its input has no other use */
    NET_LAYER_MAXPOOL,        /* slim.max_pool2d */
    NET_LAYER_AVGPOOL,        /* slim.avg_pool2d */
    NET_LAYER_GLOBAL_AVGPOOL, /* tf.reduce_mean(net, [1, 2], keep_dims=True) */
    NET_LAYER_FC,             /* slim.fully_connected */
    NET_LAYER_DROPOUT,        /* slim.dropout */
    NET_LAYER_ADD,            /* residual shortcut + residual */
    NET_LAYER_CONCAT,         /* tf.concat(axis=3) */
    NET_LAYER_LRN,            /* tf.nn.lrn (CifarNet) */
    NET_LAYER_FLATTEN,        /* slim.flatten / tf.squeeze: a view, no data moves */
    NET_LAYER_SOFTMAX_XENT,   /* tf.losses.softmax_cross_entropy with a loss weight */
    NET_LAYER_KIND_COUNT
} net_layer_kind;

/* Kind names for printing ("conv", "batch_norm", ...). */
const char *net_layer_kind_name(net_layer_kind k);

#define NET_MAX_IN 4

/* Local response normalization, tf.nn.lrn semantics over the channel axis:
 * sqr_sum[c] = sum_{|c'-c| <= depth_radius} x[c']^2, y = x / (bias + alpha * sqr_sum)^beta. */
typedef struct lrn_param {
    int M, C;            /* rows (N*H*W), channels */
    int depth_radius;
    float bias, alpha, beta;
} lrn_param;

typedef struct net_layer {
    net_layer_kind kind;
    char *name;           /* slim scope, e.g. "vgg_16/conv1/conv1_1" or ".../BatchNorm" */
    int n_in;
    int in[NET_MAX_IN];   /* tensor ids */
    int out;              /* tensor id (-1 for the loss) */
    int w, b;             /* variable ids or -1: conv/fc weights and biases; bn gamma, beta */
    int mm, mv;           /* bn moving_mean, moving_variance */
    size_t saved0, saved1;/* byte offsets into the acts arena of what backward needs:
                             BN mean/rstd, maxpool argmax, dropout mask, LRN scale, xent probs */
    double flops;         /* forward FLOPs for the whole batch */
    int applies_relu;     /* a batch norm (bn_param.relu) or add that also applies the ReLU
                             after it, in the same pass over the tensor */
    int fused;            /* a ReLU applied by the layer before it: skipped */
    union {
        conv2d_shape conv;
        bn_param bn;
        pool_shape pool;
        struct { int N, IC, OC; } fc;
        struct { float keep_prob; } dropout;
        struct { int cs[NET_MAX_IN]; } concat;
        lrn_param lrn;
        struct { float weight; } xent;
    } p;
} net_layer;

typedef struct net_tensor {
    char *name;           /* the producing layer's scope */
    int N, H, W, C;
    int producer;         /* layer id, -1 for the input images */
    int n_consumers;
    int last_consumer;    /* highest consuming layer id, -1 if none */
    int storage;          /* tensor id whose buffers this one shares (itself if it owns them) */
    size_t off;           /* byte offset into the acts arena (of the storage owner) */
    size_t goff;          /* byte offset into the act-grads arena; SIZE_MAX: no gradient */
} net_tensor;

/* slim's arg scope, as far as the nets here use it. */
typedef struct nb_scope {
    int bn;                 /* normalizer_fn=slim.batch_norm on conv2d */
    int relu;               /* activation_fn=tf.nn.relu on conv2d / fully_connected */
    float bn_decay, bn_eps; /* batch_norm_params */
    int bn_scale;           /* batch_norm 'scale' (gamma variable) */
    net_init conv_w_init, fc_w_init;
    net_init conv_b_init, fc_b_init;
    int conv_w_reg, fc_w_reg;       /* weights_regularizer set */
    kn_padding conv_pad, pool_pad;  /* default padding of conv2d and max/avg_pool2d */
} nb_scope;

struct net {
    char *model;
    net_options opt;
    int n_layers, cap_layers;
    net_layer *layers;
    int n_tensors, cap_tensors;
    net_tensor *tensors;
    int n_vars, cap_vars;
    net_var *vars;

    /* builder state */
    nb_scope sc;
    char scope[512];        /* "vgg_16/conv1" */
    int scope_depth;
    int scope_len[32];
    int error;              /* first build error (SB_E_RANGE), message in err */
    sb_err err;

    /* results of building */
    int input;              /* tensor id of the images */
    int logits, aux_logits; /* tensor ids (aux -1) */
    float loss, aux_loss;   /* last forward's losses (unweighted) */

    /* plan */
    size_t params_len, grads_len;          /* floats */
    size_t acts_bytes, act_grads_bytes, ws_bytes;
    size_t scratch_off;                    /* act-grads arena: buffer for accumulating grads */
    size_t labels_off;                     /* acts arena: int32 labels */

    /* arenas */
    float *params, *grads;
    unsigned char *acts, *act_grads, *ws;
    unsigned char *grad_written;           /* per tensor, used by backward */
    net_grads_ready_fn grads_ready;        /* net_set_grads_ready_hook; NULL: none */
    void *grads_ready_ctx;
    net_layer_profile *prof;               /* per layer, NULL unless net_profile_start */
    int prof_fwd, prof_bwd;                /* passes counted in prof */
};

/* ---------------------------------------------------------------------------------------------
 * Builder (net.c). Every function returns the output tensor id. After a build error all calls
 * return the input unchanged and net_create reports the first error.
 * ------------------------------------------------------------------------------------------- */
void nb_push(net *n, const char *scope);   /* tf.variable_scope(scope) */
void nb_pop(net *n);
int nb_input(net *n, int H, int W, int C);
/* slim.conv2d(x, OC, [KH, KW], stride, padding) under the current arg scope. pad < 0 takes the
 * arg scope's padding. With sc.bn: conv (no bias) -> BatchNorm; then ReLU when sc.relu. */
int nb_conv(net *n, int x, int OC, int KH, int KW, int stride, int pad, const char *scope);
/* Same with explicit padding (top, left, bottom, right), as resnet_utils.conv2d_same. */
int nb_conv_explicit(net *n, int x, int OC, int KH, int KW, int stride, int pt, int pl, int pb,
                     int pr, const char *scope);
/* slim.batch_norm(x, activation_fn=relu if relu, scope=scope) with the arg scope's params. */
int nb_batch_norm(net *n, int x, int relu, const char *scope);
int nb_relu(net *n, int x, const char *scope);
int nb_max_pool(net *n, int x, int KH, int KW, int stride, int pad, const char *scope);
int nb_avg_pool(net *n, int x, int KH, int KW, int stride, int pad, const char *scope);
int nb_global_avg_pool(net *n, int x, const char *scope);
/* slim.fully_connected(x, OC) under the arg scope (x must be flat: H = W = 1). */
int nb_fc(net *n, int x, int OC, const char *scope);
int nb_dropout(net *n, int x, float keep_prob, const char *scope);
int nb_add(net *n, int a, int b, const char *scope);
int nb_concat(net *n, const int *xs, int k, const char *scope);
int nb_lrn(net *n, int x, int depth_radius, float bias, float alpha, float beta,
           const char *scope);
int nb_flatten(net *n, int x, const char *scope);
/* softmax cross-entropy on logits (N, 1, 1, K) with a loss weight; records the logits. */
void nb_loss(net *n, int logits, float weight, int aux, const char *scope);

/* Initializers as slim spells them. */
net_init nb_init_zeros(void);
net_init nb_init_constant(float v);
net_init nb_init_trunc_normal(float stddev);
net_init nb_init_variance_scaling(void); /* slim.variance_scaling_initializer() defaults */
net_init nb_init_xavier(void);           /* slim's default weights_initializer */
/* slim.conv2d / slim.fully_connected defaults: xavier weights, zero biases, ReLU, no normalizer,
 * no regularizer, conv SAME, pools VALID. */
nb_scope nb_scope_default(void);

/* resnet_utils (resnet_utils.c) */
int resnet_conv2d_same(net *n, int x, int OC, int K, int stride, const char *scope);
int resnet_subsample(net *n, int x, int factor, const char *scope);
nb_scope resnet_arg_scope(void);
/* units per block of resnet_v{1,2}_{50,101,152,200} (resnet_v1.c) */
void resnet_units(const char *name, int units[4]);
/* inception_utils.c */
nb_scope inception_arg_scope(void);

/* The net definitions, each building under its own top scope; a build error (image too small)
 * is left in n->error / n->err. */
void build_vgg(net *n, const char *name);           /* vgg_a, vgg_16, vgg_19 */
void build_resnet_v1(net *n, const char *name);     /* resnet_v1_{50,101,152,200} */
void build_resnet_v2(net *n, const char *name);     /* resnet_v2_{50,101,152,200} */
void build_lenet(net *n);
void build_cifarnet(net *n);
void build_inception_v1(net *n);
void build_inception_v3(net *n);

/* net.c: place every buffer (after building); free the graph's own allocations. */
void net_plan(net *n);
void net_free_graph(net *n);
/* net_exec.c: size the kernel workspace (after net_plan). */
void net_plan_workspace(net *n);

/* Naive LRN (models/slim/lrn.c); scale: (M, C) saved for backward. dx overwritten. */
void net_lrn_forward(float *y, float *scale, const float *x, const lrn_param *p);
void net_lrn_backward(float *dx, const float *dy, const float *x, const float *y,
                      const float *scale, const lrn_param *p);

#endif /* NET_IMPL_H */
