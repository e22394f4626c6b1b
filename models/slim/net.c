/* models/slim/net.c — the graph of a net: the slim-like builder the definitions call, the planner
 * that places every parameter, activation and activation gradient in arenas sized once, the
 * queries (variables, counts, FLOPs, memory) and the printers (table and Graphviz dot).
 *
 * It must not run kernels: it only uses kernels/' shape helpers, so the graph, counts and
 * printing work (and are tested) without the compute code. Execution lives in net_exec.c.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "models/slim/net_impl.h"

static const char *const layer_kind_names[] = {
    [NET_LAYER_CONV] = "conv2d",
    [NET_LAYER_BN] = "batch_norm",
    [NET_LAYER_RELU] = "relu",
    [NET_LAYER_MAXPOOL] = "max_pool",
    [NET_LAYER_AVGPOOL] = "avg_pool",
    [NET_LAYER_GLOBAL_AVGPOOL] = "reduce_mean",
    [NET_LAYER_FC] = "fully_connected",
    [NET_LAYER_DROPOUT] = "dropout",
    [NET_LAYER_ADD] = "add",
    [NET_LAYER_CONCAT] = "concat",
    [NET_LAYER_LRN] = "lrn",
    [NET_LAYER_FLATTEN] = "flatten",
    [NET_LAYER_SOFTMAX_XENT] = "softmax_xent",
};
_Static_assert(SB_ARRAY_LEN(layer_kind_names) == NET_LAYER_KIND_COUNT, "layer kind names");

static const char *const init_kind_names[] = {
    [NET_INIT_ZEROS] = "zeros",
    [NET_INIT_ONES] = "ones",
    [NET_INIT_CONSTANT] = "constant",
    [NET_INIT_TRUNCATED_NORMAL] = "truncated_normal",
    [NET_INIT_VARIANCE_SCALING] = "variance_scaling",
    [NET_INIT_GLOROT_UNIFORM] = "glorot_uniform",
};
_Static_assert(SB_ARRAY_LEN(init_kind_names) == NET_INIT_COUNT, "init kind names");

const char *net_layer_kind_name(net_layer_kind k) {
    return (unsigned)k < NET_LAYER_KIND_COUNT ? layer_kind_names[k] : "?";
}

const char *net_init_kind_name(net_init_kind k) {
    return (unsigned)k < NET_INIT_COUNT ? init_kind_names[k] : "?";
}

/* ---------------------------------------------------------------------------------------------
 * Initializers and the default arg scope.
 * ------------------------------------------------------------------------------------------- */
net_init nb_init_zeros(void) { return (net_init){.kind = NET_INIT_ZEROS}; }
net_init nb_init_constant(float v) { return (net_init){.kind = NET_INIT_CONSTANT, .value = v}; }
net_init nb_init_trunc_normal(float stddev) {
    return (net_init){.kind = NET_INIT_TRUNCATED_NORMAL, .value = stddev};
}
net_init nb_init_variance_scaling(void) {
    return (net_init){.kind = NET_INIT_VARIANCE_SCALING, .factor = 2.0f};
}
net_init nb_init_xavier(void) { return (net_init){.kind = NET_INIT_GLOROT_UNIFORM, .factor = 1.0f}; }

nb_scope nb_scope_default(void) {
    return (nb_scope){
        .bn = 0, .relu = 1, .bn_decay = 0.999f, .bn_eps = 0.001f, .bn_scale = 0,
        .conv_w_init = nb_init_xavier(), .fc_w_init = nb_init_xavier(),
        .conv_b_init = nb_init_zeros(), .fc_b_init = nb_init_zeros(),
        .conv_w_reg = 0, .fc_w_reg = 0,
        .conv_pad = KN_PADDING_SAME, .pool_pad = KN_PADDING_VALID,
    };
}

/* Resolve fan-dependent initializers for a variable with these fans. */
static net_init init_resolve(net_init in, int fan_in, int fan_out) {
    in.fan_in = fan_in;
    in.fan_out = fan_out;
    if (in.kind == NET_INIT_VARIANCE_SCALING)
        in.value = (float)sqrt(1.3 * in.factor / (double)fan_in);
    else if (in.kind == NET_INIT_GLOROT_UNIFORM)
        in.value = (float)sqrt(6.0 / ((double)fan_in + fan_out));
    return in;
}

/* ---------------------------------------------------------------------------------------------
 * Scopes, tensors, variables, layers.
 * ------------------------------------------------------------------------------------------- */
void nb_push(net *n, const char *scope) {
    SB_ASSERT(n->scope_depth < (int)SB_ARRAY_LEN(n->scope_len));
    size_t len = strlen(n->scope);
    n->scope_len[n->scope_depth++] = (int)len;
    int w = snprintf(n->scope + len, sizeof n->scope - len, "%s%s", len ? "/" : "", scope);
    SB_ASSERTF(w > 0 && (size_t)w < sizeof n->scope - len, "scope too long: %s/%s", n->scope, scope);
}

void nb_pop(net *n) {
    SB_ASSERT(n->scope_depth > 0);
    n->scope[n->scope_len[--n->scope_depth]] = '\0';
}

static char *scoped(const net *n, const char *local) {
    size_t len = strlen(n->scope) + 1 + strlen(local) + 1;
    char *s = sb_xmalloc(len);
    snprintf(s, len, "%s%s%s", n->scope, n->scope[0] && local[0] ? "/" : "", local);
    return s;
}

static int new_tensor(net *n, int N, int H, int W, int C, int producer, const char *name) {
    if (n->n_tensors == n->cap_tensors) {
        n->cap_tensors = n->cap_tensors ? 2 * n->cap_tensors : 256;
        n->tensors = sb_xrealloc(n->tensors, (size_t)n->cap_tensors * sizeof *n->tensors);
    }
    int id = n->n_tensors++;
    n->tensors[id] = (net_tensor){.name = sb_xstrdup(name), .N = N, .H = H, .W = W, .C = C,
                                  .producer = producer, .last_consumer = -1, .storage = id,
                                  .goff = SIZE_MAX};
    return id;
}

static int new_var(net *n, const char *local, int ndim, const int *shape, unsigned flags,
                   net_init init) {
    if (n->n_vars == n->cap_vars) {
        n->cap_vars = n->cap_vars ? 2 * n->cap_vars : 256;
        n->vars = sb_xrealloc(n->vars, (size_t)n->cap_vars * sizeof *n->vars);
    }
    int id = n->n_vars++;
    net_var *v = &n->vars[id];
    *v = (net_var){.name = scoped(n, local), .ndim = ndim, .flags = flags, .count = 1};
    for (int i = 0; i < ndim; i++) {
        v->shape[i] = shape[i];
        v->count *= (size_t)shape[i];
    }
    int fan_in = 1, fan_out = 1;
    if (ndim == 4) {
        fan_in = shape[0] * shape[1] * shape[2];
        fan_out = shape[0] * shape[1] * shape[3];
    } else if (ndim == 2) {
        fan_in = shape[0];
        fan_out = shape[1];
    } else {
        fan_in = fan_out = shape[0];
    }
    v->init = init_resolve(init, fan_in, fan_out);
    return id;
}

/* Append a layer named <scope>/<local> (local may be "" for the scope itself) reading inputs
 * `in` and producing a new tensor of the given shape (C = 0: no output). Returns the layer id. */
static int new_layer(net *n, net_layer_kind kind, const char *local, const int *in, int n_in,
                     int H, int W, int C) {
    if (n->n_layers == n->cap_layers) {
        n->cap_layers = n->cap_layers ? 2 * n->cap_layers : 256;
        n->layers = sb_xrealloc(n->layers, (size_t)n->cap_layers * sizeof *n->layers);
    }
    int id = n->n_layers++;
    net_layer *l = &n->layers[id];
    *l = (net_layer){.kind = kind, .name = scoped(n, local), .n_in = n_in, .out = -1,
                     .w = -1, .b = -1, .mm = -1, .mv = -1};
    SB_ASSERT(n_in <= NET_MAX_IN);
    for (int i = 0; i < n_in; i++) {
        l->in[i] = in[i];
        n->tensors[in[i]].n_consumers++;
        n->tensors[in[i]].last_consumer = id;
    }
    if (C > 0) l->out = new_tensor(n, n->opt.batch_size, H, W, C, id, l->name);
    return id;
}

static void build_error(net *n, const char *fmt, const char *layer, int a, int b) {
    if (n->error) return;
    n->error = SB_E_RANGE;
    char msg[600];
    snprintf(msg, sizeof msg, fmt, a, b);
    sb_err_set(&n->err, SB_E_RANGE, "model %s at image size %d: layer %s: %s", n->model,
               n->opt.image_size, layer, msg);
}

/* ---------------------------------------------------------------------------------------------
 * Builder.
 * ------------------------------------------------------------------------------------------- */
int nb_input(net *n, int H, int W, int C) {
    n->input = new_tensor(n, n->opt.batch_size, H, W, C, -1, "images");
    return n->input;
}

int nb_batch_norm(net *n, int x, int relu, const char *scope) {
    if (n->error) return x;
    const net_tensor *t = &n->tensors[x];
    int C = t->C;
    nb_push(n, scope);
    int shape[1] = {C};
    /* slim.batch_norm creates beta, gamma (scale=True), moving_mean, moving_variance */
    int beta = new_var(n, "beta", 1, shape, NET_VAR_TRAINABLE, nb_init_zeros());
    int gamma = -1;
    if (n->sc.bn_scale)
        gamma = new_var(n, "gamma", 1, shape, NET_VAR_TRAINABLE, (net_init){.kind = NET_INIT_ONES});
    int mm = new_var(n, "moving_mean", 1, shape, NET_VAR_MOVING_STAT, nb_init_zeros());
    int mv = new_var(n, "moving_variance", 1, shape, NET_VAR_MOVING_STAT,
                     (net_init){.kind = NET_INIT_ONES});
    int id = new_layer(n, NET_LAYER_BN, "", &x, 1, t->H, t->W, C);
    net_layer *l = &n->layers[id];
    l->w = gamma;
    l->b = beta;
    l->mm = mm;
    l->mv = mv;
    l->p.bn = (bn_param){.M = n->opt.batch_size * n->tensors[x].H * n->tensors[x].W, .C = C,
                         .eps = n->sc.bn_eps, .decay = n->sc.bn_decay};
    int y = l->out;
    if (relu) y = nb_relu(n, y, "Relu");
    nb_pop(n);
    return y;
}

int nb_relu(net *n, int x, const char *scope) {
    if (n->error) return x;
    const net_tensor *t = &n->tensors[x];
    int id = new_layer(n, NET_LAYER_RELU, scope, &x, 1, t->H, t->W, t->C);
    return n->layers[id].out;
}

int nb_conv_explicit(net *n, int x, int OC, int KH, int KW, int stride, int pt, int pl, int pb,
                     int pr, const char *scope) {
    if (n->error) return x;
    const net_tensor *t = &n->tensors[x];
    int IC = t->C;
    conv2d_shape s;
    kn_padding pad = pt < 0 ? n->sc.conv_pad : KN_PADDING_EXPLICIT;
    if (pt < 0) pt = pl = pb = pr = 0;
    nb_push(n, scope);
    if (conv2d_shape_init(&s, n->opt.batch_size, t->H, t->W, IC, OC, KH, KW, stride, stride, pad,
                          pt, pl, pb, pr) != 0) {
        build_error(n, "a %dx%d kernel does not fit the input", n->scope, KH, KW);
        nb_pop(n);
        return x;
    }
    int wshape[4] = {KH, KW, IC, OC};
    int w = new_var(n, "weights", 4, wshape,
                    NET_VAR_TRAINABLE | (n->sc.conv_w_reg ? NET_VAR_REGULARIZED : 0u),
                    n->sc.conv_w_init);
    int b = -1;
    if (!n->sc.bn) b = new_var(n, "biases", 1, &OC, NET_VAR_TRAINABLE, n->sc.conv_b_init);
    int id = new_layer(n, NET_LAYER_CONV, "", &x, 1, s.OH, s.OW, OC);
    net_layer *l = &n->layers[id];
    l->w = w;
    l->b = b;
    l->p.conv = s;
    l->flops = conv2d_flops(&s);
    int y = l->out;
    if (n->sc.bn) {
        nb_scope save = n->sc;
        y = nb_batch_norm(n, y, 0, "BatchNorm");
        n->sc = save;
    }
    if (n->sc.relu) y = nb_relu(n, y, "Relu");
    nb_pop(n);
    return y;
}

int nb_conv(net *n, int x, int OC, int KH, int KW, int stride, int pad, const char *scope) {
    if (pad < 0) return nb_conv_explicit(n, x, OC, KH, KW, stride, -1, -1, -1, -1, scope);
    nb_scope save = n->sc;
    n->sc.conv_pad = (kn_padding)pad;
    int y = nb_conv_explicit(n, x, OC, KH, KW, stride, -1, -1, -1, -1, scope);
    n->sc = save;
    return y;
}

static int pool(net *n, net_layer_kind kind, int x, int KH, int KW, int stride, int pad,
                const char *scope) {
    if (n->error) return x;
    const net_tensor *t = &n->tensors[x];
    pool_shape s;
    if (pool_shape_init(&s, n->opt.batch_size, t->H, t->W, t->C, KH, KW, stride, stride,
                        pad < 0 ? n->sc.pool_pad : (kn_padding)pad) != 0) {
        char where[600];
        snprintf(where, sizeof where, "%s/%s", n->scope, scope);
        build_error(n, "a %dx%d pooling window does not fit the input", where, KH, KW);
        return x;
    }
    int id = new_layer(n, kind, scope, &x, 1, s.OH, s.OW, t->C);
    n->layers[id].p.pool = s;
    return n->layers[id].out;
}

int nb_max_pool(net *n, int x, int KH, int KW, int stride, int pad, const char *scope) {
    return pool(n, NET_LAYER_MAXPOOL, x, KH, KW, stride, pad, scope);
}

int nb_avg_pool(net *n, int x, int KH, int KW, int stride, int pad, const char *scope) {
    return pool(n, NET_LAYER_AVGPOOL, x, KH, KW, stride, pad, scope);
}

int nb_global_avg_pool(net *n, int x, const char *scope) {
    if (n->error) return x;
    const net_tensor *t = &n->tensors[x];
    int id = new_layer(n, NET_LAYER_GLOBAL_AVGPOOL, scope, &x, 1, 1, 1, t->C);
    return n->layers[id].out;
}

int nb_fc(net *n, int x, int OC, const char *scope) {
    if (n->error) return x;
    const net_tensor *t = &n->tensors[x];
    SB_ASSERTF(t->H == 1 && t->W == 1, "fully_connected %s/%s on a %dx%d map", n->scope, scope,
               t->H, t->W);
    int IC = t->C;
    nb_push(n, scope);
    int wshape[2] = {IC, OC};
    int w = new_var(n, "weights", 2, wshape,
                    NET_VAR_TRAINABLE | (n->sc.fc_w_reg ? NET_VAR_REGULARIZED : 0u),
                    n->sc.fc_w_init);
    int b = new_var(n, "biases", 1, &OC, NET_VAR_TRAINABLE, n->sc.fc_b_init);
    int id = new_layer(n, NET_LAYER_FC, "", &x, 1, 1, 1, OC);
    net_layer *l = &n->layers[id];
    l->w = w;
    l->b = b;
    l->p.fc.N = n->opt.batch_size;
    l->p.fc.IC = IC;
    l->p.fc.OC = OC;
    l->flops = 2.0 * n->opt.batch_size * (double)IC * OC;
    int y = l->out;
    if (n->sc.relu) y = nb_relu(n, y, "Relu");
    nb_pop(n);
    return y;
}

int nb_dropout(net *n, int x, float keep_prob, const char *scope) {
    if (n->error) return x;
    const net_tensor *t = &n->tensors[x];
    int id = new_layer(n, NET_LAYER_DROPOUT, scope, &x, 1, t->H, t->W, t->C);
    n->layers[id].p.dropout.keep_prob = keep_prob;
    return n->layers[id].out;
}

int nb_add(net *n, int a, int b, const char *scope) {
    if (n->error) return a;
    const net_tensor *ta = &n->tensors[a], *tb = &n->tensors[b];
    SB_ASSERTF(ta->H == tb->H && ta->W == tb->W && ta->C == tb->C,
               "add %s/%s: %dx%dx%d + %dx%dx%d", n->scope, scope, ta->H, ta->W, ta->C, tb->H,
               tb->W, tb->C);
    int in[2] = {a, b};
    int id = new_layer(n, NET_LAYER_ADD, scope, in, 2, ta->H, ta->W, ta->C);
    return n->layers[id].out;
}

int nb_concat(net *n, const int *xs, int k, const char *scope) {
    if (n->error) return xs[0];
    SB_ASSERT(k >= 1 && k <= NET_MAX_IN);
    int C = 0, H = n->tensors[xs[0]].H, W = n->tensors[xs[0]].W;
    for (int i = 0; i < k; i++) {
        SB_ASSERTF(n->tensors[xs[i]].H == H && n->tensors[xs[i]].W == W,
                   "concat %s/%s: input %d is %dx%d, not %dx%d", n->scope, scope, i,
                   n->tensors[xs[i]].H, n->tensors[xs[i]].W, H, W);
        C += n->tensors[xs[i]].C;
    }
    int id = new_layer(n, NET_LAYER_CONCAT, scope, xs, k, H, W, C);
    for (int i = 0; i < k; i++) n->layers[id].p.concat.cs[i] = n->tensors[xs[i]].C;
    return n->layers[id].out;
}

int nb_lrn(net *n, int x, int depth_radius, float bias, float alpha, float beta,
           const char *scope) {
    if (n->error) return x;
    const net_tensor *t = &n->tensors[x];
    int id = new_layer(n, NET_LAYER_LRN, scope, &x, 1, t->H, t->W, t->C);
    n->layers[id].p.lrn = (lrn_param){.M = t->N * t->H * t->W, .C = t->C,
                                      .depth_radius = depth_radius, .bias = bias,
                                      .alpha = alpha, .beta = beta};
    return n->layers[id].out;
}

int nb_flatten(net *n, int x, const char *scope) {
    if (n->error) return x;
    const net_tensor *t = &n->tensors[x];
    int id = new_layer(n, NET_LAYER_FLATTEN, scope, &x, 1, 1, 1, t->H * t->W * t->C);
    return n->layers[id].out;
}

void nb_loss(net *n, int logits, float weight, int aux, const char *scope) {
    if (n->error) return;
    const net_tensor *t = &n->tensors[logits];
    SB_ASSERT(t->H == 1 && t->W == 1);
    int id = new_layer(n, NET_LAYER_SOFTMAX_XENT, scope, &logits, 1, 0, 0, 0);
    n->layers[id].p.xent.weight = weight;
    if (aux) n->aux_logits = logits;
    else n->logits = logits;
}

/* ---------------------------------------------------------------------------------------------
 * Planner.
 * ------------------------------------------------------------------------------------------- */
#define ALIGN_FLOATS (SB_ALIGN / sizeof(float))
static size_t align_floats(size_t x) { return (x + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS; }
static size_t align_bytes(size_t x) { return (x + SB_ALIGN - 1) / SB_ALIGN * SB_ALIGN; }

static size_t tensor_bytes(const net_tensor *t) {
    return (size_t)t->N * t->H * t->W * t->C * sizeof(float);
}

typedef struct interval {
    int owner;
    int lo, hi;      /* layer ids during which the gradient buffer is live */
    size_t bytes;
    size_t off;
} interval;

static int cmp_interval_size(const void *a, const void *b) {
    const interval *x = a, *y = b;
    if (x->bytes != y->bytes) return x->bytes < y->bytes ? 1 : -1;
    return x->owner - y->owner;
}

/* Place activation gradients: a buffer is live from its producer's layer to its last consumer's
 * (backward visits them in reverse); buffers whose live ranges overlap may not share bytes.
 * Greedy best-known: biggest first, each at the lowest offset clear of every placed overlapping
 * buffer. */
static size_t place_grads(net *n) {
    int T = n->n_tensors;
    interval *iv = sb_xcalloc((size_t)T, sizeof *iv);
    int m = 0;
    for (int i = 0; i < T; i++) {
        net_tensor *t = &n->tensors[i];
        if (t->storage != i) continue;
        if (n->tensors[i].producer < 0) continue; /* the images need no gradient */
        int lo = t->producer, hi = t->last_consumer;
        for (int j = i + 1; j < T; j++)
            if (n->tensors[j].storage == i && n->tensors[j].last_consumer > hi)
                hi = n->tensors[j].last_consumer;
        if (hi < lo) hi = lo;
        iv[m++] = (interval){.owner = i, .lo = lo, .hi = hi, .bytes = align_bytes(tensor_bytes(t))};
    }
    qsort(iv, (size_t)m, sizeof *iv, cmp_interval_size);
    size_t total = 0;
    interval **placed = sb_xcalloc((size_t)m + 1, sizeof *placed);
    for (int i = 0; i < m; i++) {
        /* collect placed buffers overlapping in time, sorted by offset */
        int k = 0;
        for (int j = 0; j < i; j++)
            if (iv[j].lo <= iv[i].hi && iv[i].lo <= iv[j].hi) placed[k++] = &iv[j];
        for (int a = 1; a < k; a++) /* insertion sort by offset */
            for (int b = a; b > 0 && placed[b - 1]->off > placed[b]->off; b--) {
                interval *tmp = placed[b];
                placed[b] = placed[b - 1];
                placed[b - 1] = tmp;
            }
        size_t off = 0;
        for (int j = 0; j < k; j++) {
            if (off + iv[i].bytes <= placed[j]->off) break;
            if (placed[j]->off + placed[j]->bytes > off) off = placed[j]->off + placed[j]->bytes;
        }
        iv[i].off = off;
        if (off + iv[i].bytes > total) total = off + iv[i].bytes;
        n->tensors[iv[i].owner].goff = off;
    }
    free(placed);
    free(iv);
    return total;
}

void net_plan(net *n) {
    /* parameters: trainable first (their gradients form one contiguous arena), then moving stats */
    size_t off = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < n->n_vars; i++) {
            net_var *v = &n->vars[i];
            if (!!(v->flags & NET_VAR_TRAINABLE) != (pass == 0)) continue;
            v->offset = off;
            off = align_floats(off + v->count);
        }
        if (pass == 0) n->grads_len = off;
    }
    n->params_len = off;

    /* in-place ReLU and views share their input's buffers when nothing else reads the input */
    for (int i = 0; i < n->n_layers; i++) {
        net_layer *l = &n->layers[i];
        if (l->kind != NET_LAYER_RELU && l->kind != NET_LAYER_FLATTEN) continue;
        net_tensor *in = &n->tensors[l->in[0]];
        if (l->kind == NET_LAYER_FLATTEN)
            SB_ASSERTF(in->n_consumers == 1, "flatten %s: input has other uses", l->name);
        if (in->n_consumers == 1 && in->producer >= 0) n->tensors[l->out].storage = in->storage;
    }
    /* an in-place ReLU right on a batch norm's or an add's output is done by that layer, in
     * the same pass over the tensor (resnet v1: every ReLU; inception: every conv's) */
    for (int i = 0; i < n->n_layers; i++) {
        net_layer *l = &n->layers[i];
        if (l->kind != NET_LAYER_RELU) continue;
        const net_tensor *in = &n->tensors[l->in[0]];
        if (in->producer < 0 || n->tensors[l->out].storage != in->storage) continue;
        net_layer *prev = &n->layers[in->producer];
        if (prev->kind != NET_LAYER_BN && prev->kind != NET_LAYER_ADD) continue;
        prev->applies_relu = 1;
        if (prev->kind == NET_LAYER_BN) prev->p.bn.relu = 1;
        l->fused = 1;
    }

    /* activations and what backward keeps */
    size_t b = 0;
    for (int i = 0; i < n->n_tensors; i++) {
        net_tensor *t = &n->tensors[i];
        if (t->storage != i) continue;
        t->off = b;
        b += align_bytes(tensor_bytes(t));
    }
    for (int i = 0; i < n->n_tensors; i++) n->tensors[i].off = n->tensors[n->tensors[i].storage].off;
    for (int i = 0; i < n->n_layers; i++) {
        net_layer *l = &n->layers[i];
        const net_tensor *x = &n->tensors[l->in[0]];
        size_t count = (size_t)x->N * x->H * x->W * x->C;
        switch (l->kind) {
        case NET_LAYER_BN: /* mean, rstd */
            l->saved0 = b;
            b += align_bytes((size_t)l->p.bn.C * sizeof(float));
            l->saved1 = b;
            b += align_bytes((size_t)l->p.bn.C * sizeof(float));
            break;
        case NET_LAYER_MAXPOOL: /* argmax */
            l->saved0 = b;
            b += align_bytes(tensor_bytes(&n->tensors[l->out]));
            break;
        case NET_LAYER_DROPOUT: /* mask */
            l->saved0 = b;
            b += align_bytes(count);
            break;
        case NET_LAYER_LRN: /* scale */
            l->saved0 = b;
            b += align_bytes(count * sizeof(float));
            break;
        case NET_LAYER_SOFTMAX_XENT: /* probs */
            l->saved0 = b;
            b += align_bytes(count * sizeof(float));
            break;
        default:
            break;
        }
    }
    n->labels_off = b;
    b += align_bytes((size_t)n->opt.batch_size * sizeof(int32_t));
    n->acts_bytes = b;

    /* activation gradients; views share their input's gradient buffer */
    size_t g = place_grads(n);
    for (int i = 0; i < n->n_tensors; i++) n->tensors[i].goff = n->tensors[n->tensors[i].storage].goff;
    /* one more buffer for inputs whose gradient must be accumulated (several consumers) */
    size_t scratch = 0;
    for (int i = 0; i < n->n_tensors; i++)
        if (n->tensors[i].n_consumers > 1 && tensor_bytes(&n->tensors[i]) > scratch)
            scratch = tensor_bytes(&n->tensors[i]);
    n->scratch_off = g;
    n->act_grads_bytes = g + align_bytes(scratch);
}

/* ---------------------------------------------------------------------------------------------
 * Queries.
 * ------------------------------------------------------------------------------------------- */
const char *net_name(const net *n) { return n->model; }
int net_batch_size(const net *n) { return n->opt.batch_size; }
int net_image_size(const net *n) { return n->opt.image_size; }
int net_image_channels(const net *n) { return n->opt.image_channels; }
int net_num_classes(const net *n) { return n->opt.num_classes; }
int net_num_vars(const net *n) { return n->n_vars; }

const net_var *net_var_at(const net *n, int i) {
    SB_ASSERT(i >= 0 && i < n->n_vars);
    return &n->vars[i];
}

const net_var *net_var_find(const net *n, const char *name) {
    for (int i = 0; i < n->n_vars; i++)
        if (!strcmp(n->vars[i].name, name)) return &n->vars[i];
    return NULL;
}

size_t net_param_count(const net *n, unsigned mask) {
    size_t c = 0;
    for (int i = 0; i < n->n_vars; i++)
        if ((n->vars[i].flags & mask) == mask) c += n->vars[i].count;
    return c;
}

double net_flops_per_image(const net *n) {
    double f = 0;
    for (int i = 0; i < n->n_layers; i++) f += n->layers[i].flops;
    return f / n->opt.batch_size;
}

void net_memory_plan(const net *n, net_memory *m) {
    m->params = n->params_len * sizeof(float);
    m->grads = n->grads_len * sizeof(float);
    m->acts = n->acts_bytes;
    m->act_grads = n->act_grads_bytes;
    m->workspace = n->ws_bytes;
}

float *net_params(net *n) { return n->params; }
float *net_grads(net *n) { return n->grads; }
size_t net_params_len(const net *n) { return n->params_len; }
size_t net_grads_len(const net *n) { return n->grads_len; }
float *net_input(net *n) { return n->acts ? (float *)(n->acts + n->tensors[n->input].off) : NULL; }
int32_t *net_labels(net *n) { return n->acts ? (int32_t *)(n->acts + n->labels_off) : NULL; }
const float *net_logits(const net *n) {
    return n->acts ? (const float *)(n->acts + n->tensors[n->logits].off) : NULL;
}
const float *net_aux_logits(const net *n) {
    return n->acts && n->aux_logits >= 0 ? (const float *)(n->acts + n->tensors[n->aux_logits].off)
                                         : NULL;
}

void net_free_graph(net *n) {
    for (int i = 0; i < n->n_layers; i++) free(n->layers[i].name);
    for (int i = 0; i < n->n_tensors; i++) free(n->tensors[i].name);
    for (int i = 0; i < n->n_vars; i++) free((char *)n->vars[i].name);
    free(n->layers);
    free(n->tensors);
    free(n->vars);
    free(n->model);
}

/* ---------------------------------------------------------------------------------------------
 * Printing.
 * ------------------------------------------------------------------------------------------- */
static void fmt_count(char *buf, size_t n, size_t v) {
    char tmp[32];
    int len = snprintf(tmp, sizeof tmp, "%zu", v);
    size_t o = 0;
    for (int i = 0; i < len && o + 1 < n; i++) {
        if (i > 0 && (len - i) % 3 == 0 && o + 1 < n) buf[o++] = ',';
        if (o + 1 < n) buf[o++] = tmp[i];
    }
    buf[o] = '\0';
}

static size_t layer_params(const net *n, const net_layer *l) {
    size_t c = 0;
    int ids[4] = {l->w, l->b, l->mm, l->mv};
    for (int i = 0; i < 4; i++)
        if (ids[i] >= 0 && (n->vars[ids[i]].flags & NET_VAR_TRAINABLE)) c += n->vars[ids[i]].count;
    return c;
}

static double mib(size_t b) { return (double)b / (1024.0 * 1024.0); }

void net_print(FILE *out, const net *n) {
    fprintf(out, "%s: batch %d, image %dx%dx%d, %d classes\n", n->model, n->opt.batch_size,
            n->opt.image_size, n->opt.image_size, n->opt.image_channels, n->opt.num_classes);
    fprintf(out, "%-72s %-15s %-15s %12s %10s\n", "layer (slim scope)", "kind", "output",
            "params", "MFLOPs");
    for (int i = 0; i < n->n_layers; i++) {
        const net_layer *l = &n->layers[i];
        char shape[48] = "loss", params[32] = "";
        if (l->out >= 0) {
            const net_tensor *t = &n->tensors[l->out];
            snprintf(shape, sizeof shape, "%dx%dx%d", t->H, t->W, t->C);
        }
        size_t p = layer_params(n, l);
        if (p) fmt_count(params, sizeof params, p);
        char flops[32] = "";
        if (l->flops > 0) snprintf(flops, sizeof flops, "%.1f", l->flops / n->opt.batch_size / 1e6);
        fprintf(out, "%-72s %-15s %-15s %12s %10s\n", l->name, net_layer_kind_name(l->kind), shape,
                params, flops);
    }
    char tr[32], all[32];
    fmt_count(tr, sizeof tr, net_param_count(n, NET_VAR_TRAINABLE));
    fmt_count(all, sizeof all, net_param_count(n, 0));
    fprintf(out, "total: %d layers, %d variables, %s trainable parameters (%s with moving "
                 "statistics), %.3f GFLOPs per image forward\n",
            n->n_layers, n->n_vars, tr, all, net_flops_per_image(n) / 1e9);
    fprintf(out, "memory at batch %d: params %.1f MiB, grads %.1f MiB, activations %.1f MiB, "
                 "activation grads %.1f MiB",
            n->opt.batch_size, mib(n->params_len * sizeof(float)), mib(n->grads_len * sizeof(float)),
            mib(n->acts_bytes), mib(n->act_grads_bytes));
    if (n->ws_bytes) fprintf(out, ", workspace %.1f MiB", mib(n->ws_bytes));
    fputc('\n', out);
}

static void dot_escape(FILE *out, const char *s) {
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', out);
        fputc(*s, out);
    }
}

void net_write_dot(FILE *out, const net *n) {
    fprintf(out, "digraph \"%s\" {\n  rankdir=TB;\n  node [shape=box, fontsize=10];\n", n->model);
    const net_tensor *img = &n->tensors[n->input];
    fprintf(out, "  images [label=\"images\\n%dx%dx%d\", shape=ellipse];\n", img->H, img->W, img->C);
    for (int i = 0; i < n->n_layers; i++) {
        const net_layer *l = &n->layers[i];
        fprintf(out, "  L%d [label=\"", i);
        dot_escape(out, l->name);
        fprintf(out, "\\n%s", net_layer_kind_name(l->kind));
        if (l->out >= 0) {
            const net_tensor *t = &n->tensors[l->out];
            fprintf(out, " %dx%dx%d", t->H, t->W, t->C);
        }
        fprintf(out, "\"];\n");
        for (int k = 0; k < l->n_in; k++) {
            int p = n->tensors[l->in[k]].producer;
            if (p < 0) fprintf(out, "  images -> L%d;\n", i);
            else fprintf(out, "  L%d -> L%d;\n", p, i);
        }
    }
    fprintf(out, "}\n");
}

/* ---------------------------------------------------------------------------------------------
 * Allocation: every arena once.
 * ------------------------------------------------------------------------------------------- */
void net_alloc(net *n) {
    if (n->params) return;
    n->params = sb_aligned_alloc(SB_MAX(n->params_len, 1) * sizeof(float));
    /* zeroed once: backward overwrites every variable's gradient each step and never the
     * alignment gaps between them, which stay 0 through the allreduce and the optimizer */
    n->grads = sb_aligned_alloc(SB_MAX(n->grads_len, 1) * sizeof(float));
    memset(n->grads, 0, SB_MAX(n->grads_len, 1) * sizeof(float));
    n->acts = sb_aligned_alloc(SB_MAX(n->acts_bytes, 1));
    n->act_grads = sb_aligned_alloc(SB_MAX(n->act_grads_bytes, 1));
    n->ws = sb_aligned_alloc(SB_MAX(n->ws_bytes, 1));
    n->grad_written = sb_xcalloc((size_t)n->n_tensors, 1);
    for (int i = 0; i < n->n_vars; i++) {
        const net_var *v = &n->vars[i];
        if (v->init.kind == NET_INIT_ONES && !(v->flags & NET_VAR_TRAINABLE))
            for (size_t k = 0; k < v->count; k++) n->params[v->offset + k] = 1.0f;
    }
}
