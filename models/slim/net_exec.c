/* models/slim/net_exec.c — running a planned net: net_forward is one switch over the layer kinds
 * calling kernels/, net_backward the reversed mirror. Also sizes the kernel workspace at plan
 * time (net_plan_workspace), since only the kernels know what they need.
 *
 * Gradient bookkeeping: kernels OVERWRITE dx, so the first consumer (in backward order) of a
 * tensor writes its gradient buffer directly and any later consumer writes the scratch buffer
 * and accumulates it (residual shortcuts, Inception branch inputs, inception_v3's Mixed_6e).
 * In-place ReLU and flatten share their input's buffers, so their gradient is in place too.
 * It must not know any particular net.
 */
#include <string.h>

#include "models/slim/net_impl.h"

static inline float *act(net *n, int t) { return (float *)(n->acts + n->tensors[t].off); }
static inline float *grad(net *n, int t) { return (float *)(n->act_grads + n->tensors[t].goff); }
static inline float *param(net *n, int v) { return v >= 0 ? n->params + n->vars[v].offset : NULL; }
static inline float *pgrad(net *n, int v) { return v >= 0 ? n->grads + n->vars[v].offset : NULL; }
static inline size_t count(const net *n, int t) {
    const net_tensor *x = &n->tensors[t];
    return (size_t)x->N * x->H * x->W * x->C;
}
static inline int in_place(const net *n, const net_layer *l) {
    return n->tensors[l->in[0]].storage == n->tensors[l->out].storage;
}

void net_plan_workspace(net *n) {
    size_t ws = 0;
    for (int i = 0; i < n->n_layers; i++) {
        const net_layer *l = &n->layers[i];
        if (l->kind == NET_LAYER_CONV) ws = SB_MAX(ws, conv2d_workspace_size(&l->p.conv));
        else if (l->kind == NET_LAYER_FC)
            ws = SB_MAX(ws, fc_workspace_size(l->p.fc.N, l->p.fc.IC, l->p.fc.OC));
    }
    n->ws_bytes = ws;
}

/* A per-layer dropout seed from the step seed (SplitMix64 step). */
static uint64_t layer_seed(uint64_t seed, int layer) {
    uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (uint64_t)(layer + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

float net_forward(net *n, net_mode mode, uint64_t seed) {
    SB_ASSERTF(n->acts, "net_forward(%s) before net_alloc", n->model);
    SB_ASSERT(mode == NET_MODE_TRAIN || mode == NET_MODE_INFER);
    const int train = mode == NET_MODE_TRAIN;
    const int32_t *labels = (const int32_t *)(n->acts + n->labels_off);
    float total = 0;
    n->aux_loss = 0;
    if (n->prof) n->prof_fwd++;
    for (int i = 0; i < n->n_layers; i++) {
        net_layer *l = &n->layers[i];
        const int x = l->in[0], y = l->out;
        const double t0 = n->prof ? sb_now() : 0.0;
        switch (l->kind) {
        case NET_LAYER_CONV:
            conv2d_forward(act(n, y), act(n, x), param(n, l->w), param(n, l->b), &l->p.conv, n->ws);
            break;
        case NET_LAYER_BN:
            if (train)
                bn_forward_train(act(n, y), (float *)(n->acts + l->saved0),
                                 (float *)(n->acts + l->saved1), param(n, l->mm), param(n, l->mv),
                                 act(n, x), param(n, l->w), param(n, l->b), &l->p.bn);
            else
                bn_forward_infer(act(n, y), act(n, x), param(n, l->w), param(n, l->b),
                                 param(n, l->mm), param(n, l->mv), &l->p.bn);
            break;
        case NET_LAYER_RELU:
            if (!l->fused) relu_forward(act(n, y), act(n, x), count(n, x));
            break;
        case NET_LAYER_MAXPOOL:
            maxpool_forward(act(n, y), (int32_t *)(n->acts + l->saved0), act(n, x), &l->p.pool);
            break;
        case NET_LAYER_AVGPOOL:
            avgpool_forward(act(n, y), act(n, x), &l->p.pool);
            break;
        case NET_LAYER_GLOBAL_AVGPOOL: {
            const net_tensor *t = &n->tensors[x];
            global_avgpool_forward(act(n, y), act(n, x), t->N, t->H * t->W, t->C);
            break;
        }
        case NET_LAYER_FC:
            fc_forward(act(n, y), act(n, x), param(n, l->w), param(n, l->b), l->p.fc.N, l->p.fc.IC,
                       l->p.fc.OC, n->ws);
            break;
        case NET_LAYER_DROPOUT:
            if (train)
                dropout_forward(act(n, y), n->acts + l->saved0, act(n, x), count(n, x),
                                l->p.dropout.keep_prob, layer_seed(seed, i));
            else
                memcpy(act(n, y), act(n, x), count(n, x) * sizeof(float));
            break;
        case NET_LAYER_ADD:
            if (l->applies_relu)
                add_relu_forward(act(n, y), act(n, l->in[0]), act(n, l->in[1]), count(n, y));
            else
                add_forward(act(n, y), act(n, l->in[0]), act(n, l->in[1]), count(n, y));
            break;
        case NET_LAYER_CONCAT: {
            const float *xs[NET_MAX_IN];
            for (int k = 0; k < l->n_in; k++) xs[k] = act(n, l->in[k]);
            const net_tensor *t = &n->tensors[y];
            concat_forward(act(n, y), xs, l->p.concat.cs, l->n_in, (size_t)t->N * t->H * t->W);
            break;
        }
        case NET_LAYER_LRN:
            net_lrn_forward(act(n, y), (float *)(n->acts + l->saved0), act(n, x), &l->p.lrn);
            break;
        case NET_LAYER_FLATTEN:
            SB_ASSERTF(in_place(n, l), "flatten %s is a view", l->name);
            break;
        case NET_LAYER_SOFTMAX_XENT: {
            const net_tensor *t = &n->tensors[x];
            float loss = softmax_xent_forward((float *)(n->acts + l->saved0), act(n, x), labels,
                                              t->N, t->C, n->opt.label_smoothing);
            if (x == n->aux_logits) n->aux_loss = loss;
            else n->loss = loss;
            total += l->p.xent.weight * loss;
            break;
        }
        case NET_LAYER_KIND_COUNT:
            SB_ASSERT(0);
        }
        if (n->prof) n->prof[i].fwd_s += sb_now() - t0;
    }
    return total;
}

/* Where to write dL/d(tensor t): its buffer for the first consumer in backward order, the
 * scratch buffer (accumulated by grad_end) for later ones. NULL when t needs no gradient. */
static float *grad_begin(net *n, int t, int *acc) {
    const net_tensor *x = &n->tensors[t];
    *acc = 0;
    if (x->producer < 0) return NULL;
    if (n->grad_written[x->storage]) {
        *acc = 1;
        return (float *)(n->act_grads + n->scratch_off);
    }
    return grad(n, t);
}

static void grad_end(net *n, int t, int acc) {
    const net_tensor *x = &n->tensors[t];
    if (x->producer < 0) return;
    if (acc) add_accumulate(grad(n, t), (const float *)(n->act_grads + n->scratch_off), count(n, t));
    n->grad_written[x->storage] = 1;
}

/* Start (in floats) of layer l's trainable gradients, SIZE_MAX when it has none. */
static size_t layer_grads_start(const net *n, const net_layer *l) {
    size_t lo = SIZE_MAX;
    const int v[2] = {l->w, l->b};
    for (int k = 0; k < 2; k++)
        if (v[k] >= 0 && (n->vars[v[k]].flags & NET_VAR_TRAINABLE))
            lo = SB_MIN(lo, n->vars[v[k]].offset);
    return lo;
}

int net_set_grads_ready_hook(net *n, net_grads_ready_fn fn, void *ctx) {
    size_t end = 0; /* every earlier layer's gradients end at or before this */
    for (int i = 0; fn && i < n->n_layers; i++) {
        const net_layer *l = &n->layers[i];
        const int v[2] = {l->w, l->b}; /* any order inside a layer (slim makes beta first) */
        if (layer_grads_start(n, l) == SIZE_MAX) continue;
        if (layer_grads_start(n, l) < end) return SB_E_UNSUPPORTED;
        for (int k = 0; k < 2; k++)
            if (v[k] >= 0 && (n->vars[v[k]].flags & NET_VAR_TRAINABLE))
                end = SB_MAX(end, n->vars[v[k]].offset + n->vars[v[k]].count);
    }
    n->grads_ready = fn;
    n->grads_ready_ctx = ctx;
    return 0;
}

void net_backward(net *n) {
    SB_ASSERTF(n->acts, "net_backward(%s) before net_alloc", n->model);
    const int32_t *labels = (const int32_t *)(n->acts + n->labels_off);
    memset(n->grad_written, 0, (size_t)n->n_tensors);
    size_t ready = n->grads_len; /* grads[ready, grads_len) are final */
    if (n->prof) n->prof_bwd++;
    for (int i = n->n_layers - 1; i >= 0; i--) {
        if (n->grads_ready && i < n->n_layers - 1) {
            ready = SB_MIN(ready, layer_grads_start(n, &n->layers[i + 1]));
            n->grads_ready(n->grads_ready_ctx, ready);
        }
        const double t0 = n->prof ? sb_now() : 0.0;
        net_layer *l = &n->layers[i];
        const int x = l->in[0], y = l->out;
        const float *dy = NULL;
        if (y >= 0) {
            SB_ASSERTF(n->grad_written[n->tensors[y].storage], "%s: output has no gradient", l->name);
            dy = grad(n, y);
        }
        int acc;
        float *dx;
        switch (l->kind) {
        case NET_LAYER_CONV:
            conv2d_backward_filter(pgrad(n, l->w), pgrad(n, l->b), dy, act(n, x), &l->p.conv, n->ws);
            if ((dx = grad_begin(n, x, &acc)) != NULL) {
                conv2d_backward_data(dx, dy, param(n, l->w), &l->p.conv, n->ws);
                grad_end(n, x, acc);
            }
            break;
        case NET_LAYER_BN:
            dx = grad_begin(n, x, &acc);
            SB_ASSERT(dx);
            bn_backward(dx, pgrad(n, l->w), pgrad(n, l->b), dy, act(n, x),
                        (const float *)(n->acts + l->saved0), (const float *)(n->acts + l->saved1),
                        param(n, l->w), param(n, l->b), &l->p.bn);
            grad_end(n, x, acc);
            break;
        case NET_LAYER_RELU:
            if (l->fused) {
                /* the batch norm or add before it masks dy (same buffer, in place) */
            } else if (in_place(n, l)) {
                relu_backward(grad(n, y), dy, act(n, y), count(n, y));
            } else if ((dx = grad_begin(n, x, &acc)) != NULL) {
                relu_backward(dx, dy, act(n, y), count(n, y));
                grad_end(n, x, acc);
            }
            break;
        case NET_LAYER_MAXPOOL:
            if ((dx = grad_begin(n, x, &acc)) != NULL) {
                maxpool_backward(dx, dy, (const int32_t *)(n->acts + l->saved0), &l->p.pool);
                grad_end(n, x, acc);
            }
            break;
        case NET_LAYER_AVGPOOL:
            if ((dx = grad_begin(n, x, &acc)) != NULL) {
                avgpool_backward(dx, dy, &l->p.pool);
                grad_end(n, x, acc);
            }
            break;
        case NET_LAYER_GLOBAL_AVGPOOL:
            if ((dx = grad_begin(n, x, &acc)) != NULL) {
                const net_tensor *t = &n->tensors[x];
                global_avgpool_backward(dx, dy, t->N, t->H * t->W, t->C);
                grad_end(n, x, acc);
            }
            break;
        case NET_LAYER_FC:
            dx = grad_begin(n, x, &acc);
            fc_backward(dx, pgrad(n, l->w), pgrad(n, l->b), dy, act(n, x), param(n, l->w),
                        l->p.fc.N, l->p.fc.IC, l->p.fc.OC, n->ws);
            if (dx) grad_end(n, x, acc);
            break;
        case NET_LAYER_DROPOUT:
            if ((dx = grad_begin(n, x, &acc)) != NULL) {
                dropout_backward(dx, dy, n->acts + l->saved0, count(n, x), l->p.dropout.keep_prob);
                grad_end(n, x, acc);
            }
            break;
        case NET_LAYER_ADD: {
            /* the shortcut and the residual both receive dy: copied the first time, else added
             * (in order, so x + x gets 2 dy) */
            float *d[2] = {NULL, NULL};
            int accum[2] = {0, 0};
            for (int k = 0; k < 2; k++) {
                const net_tensor *t = &n->tensors[l->in[k]];
                if (t->producer < 0) continue;
                d[k] = grad(n, l->in[k]);
                accum[k] = n->grad_written[t->storage];
                n->grad_written[t->storage] = 1;
            }
            add_backward(d[0], accum[0], d[1], accum[1], dy, l->applies_relu ? act(n, y) : NULL,
                         count(n, y));
            break;
        }
        case NET_LAYER_CONCAT: {
            float *dxs[NET_MAX_IN];
            for (int k = 0; k < l->n_in; k++) {
                const net_tensor *t = &n->tensors[l->in[k]];
                SB_ASSERTF(t->producer >= 0 && !n->grad_written[t->storage],
                           "%s: concat input %d has another consumer", l->name, k);
                dxs[k] = grad(n, l->in[k]);
            }
            const net_tensor *t = &n->tensors[y];
            concat_backward(dxs, dy, l->p.concat.cs, l->n_in, (size_t)t->N * t->H * t->W);
            for (int k = 0; k < l->n_in; k++) n->grad_written[n->tensors[l->in[k]].storage] = 1;
            break;
        }
        case NET_LAYER_LRN:
            if ((dx = grad_begin(n, x, &acc)) != NULL) {
                net_lrn_backward(dx, dy, act(n, x), act(n, y), (const float *)(n->acts + l->saved0),
                                 &l->p.lrn);
                grad_end(n, x, acc);
            }
            break;
        case NET_LAYER_FLATTEN:
            break; /* a view: its gradient buffer is its input's */
        case NET_LAYER_SOFTMAX_XENT: {
            const net_tensor *t = &n->tensors[x];
            dx = grad_begin(n, x, &acc);
            softmax_xent_backward(dx, (const float *)(n->acts + l->saved0), labels, t->N, t->C,
                                  n->opt.label_smoothing, l->p.xent.weight);
            grad_end(n, x, acc);
            break;
        }
        case NET_LAYER_KIND_COUNT:
            SB_ASSERT(0);
        }
        if (n->prof) n->prof[i].bwd_s += sb_now() - t0;
    }
    if (n->grads_ready) n->grads_ready(n->grads_ready_ctx, 0);
}

float net_loss(const net *n, int aux) { return aux ? n->aux_loss : n->loss; }

void net_profile_start(net *n) {
    if (!n->prof) n->prof = sb_xcalloc((size_t)n->n_layers, sizeof *n->prof);
    for (int i = 0; i < n->n_layers; i++) {
        const net_layer *l = &n->layers[i];
        /* backward of a conv / fc layer: the weight gradient always, the input gradient unless
         * the input is the images (grad_begin gives no buffer for them) */
        const int has_dx = n->tensors[l->in[0]].producer >= 0;
        const int gemm = l->kind == NET_LAYER_CONV || l->kind == NET_LAYER_FC;
        /* a layer that applies the next ReLU is timed with it; the ReLU shows 0 ms */
        const char *kind = net_layer_kind_name(l->kind);
        if (l->applies_relu) kind = l->kind == NET_LAYER_BN ? "batch_norm+relu" : "add+relu";
        if (l->fused) kind = "relu (fused)";
        n->prof[i] = (net_layer_profile){.scope = l->name, .kind = kind,
                                         .fwd_flops = l->flops,
                                         .bwd_flops = gemm ? l->flops * (1 + has_dx) : 0.0};
    }
    n->prof_fwd = n->prof_bwd = 0;
}

const net_layer_profile *net_profile(const net *n, int *count, int *fwd_passes, int *bwd_passes) {
    *count = n->n_layers;
    *fwd_passes = n->prof_fwd;
    *bwd_passes = n->prof_bwd;
    return n->prof;
}
