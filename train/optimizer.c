/* train/optimizer.c — slim's optimizers with TensorFlow's update rules, and slim's L2 weight
 * decay.
 *
 * Each rule is a transcription of TensorFlow's CPU functor in core/kernels/training_ops.cc
 * (ApplyAdadelta, ApplyAdagrad, ApplyAdam, ApplyFtrl, ApplyMomentum, ApplyGradientDescent,
 * ApplyRMSProp), keeping its float32 operation order, and the slot initial values of the Python
 * optimizers in python/training/ (RMSProp's "rms" slot starts at ONE, Adagrad's and Ftrl's
 * accumulators at initial_accumulator_value, Adam's beta powers at beta1/beta2 and multiplied
 * after every step). rsqrt(x) is evaluated as 1/sqrt(x), both correctly rounded.
 *
 * Each rule is written once, on a vector of OPT_VL floats (GCC vector extensions, square root
 * from the build's widest SSE/AVX unit), and a range's last partial vector is run through the
 * same code on a padded copy. So every float sees the same instructions wherever a thread's range
 * starts, which makes the result independent of the thread count. -std=c11 keeps GCC from
 * contracting a*b+c into FMAs, so the order of rounding is the one written here.
 *
 * This file knows descriptors and arenas, not nets, flags or files.
 */
#include "train/train.h"

#include <assert.h>
#include <math.h>
#include <omp.h>
#include <string.h>
#if defined(__SSE__)
#include <immintrin.h>
#endif

/* ---------------------------------------------------------------------------------------------
 * Names and configuration
 * ------------------------------------------------------------------------------------------- */

static const char *const opt_kind_names[] = {
    [OPT_KIND_ADADELTA] = "adadelta", [OPT_KIND_ADAGRAD] = "adagrad", [OPT_KIND_ADAM] = "adam",
    [OPT_KIND_FTRL] = "ftrl",         [OPT_KIND_MOMENTUM] = "momentum", [OPT_KIND_SGD] = "sgd",
    [OPT_KIND_RMSPROP] = "rmsprop",
};
static_assert(SB_ARRAY_LEN(opt_kind_names) == OPT_KIND_COUNT, "one name per opt_kind");

/* Checkpoint suffixes: TF names slot variables "<var>/<optimizer name>[_k]" in creation order. */
static const char *const opt_slot_names[][OPT_MAX_SLOTS] = {
    [OPT_KIND_ADADELTA] = {"Adadelta", "Adadelta_1"},
    [OPT_KIND_ADAGRAD] = {"Adagrad", NULL},
    [OPT_KIND_ADAM] = {"Adam", "Adam_1"},
    [OPT_KIND_FTRL] = {"Ftrl", "Ftrl_1"},
    [OPT_KIND_MOMENTUM] = {"Momentum", NULL},
    [OPT_KIND_SGD] = {NULL, NULL},
    [OPT_KIND_RMSPROP] = {"RMSProp", "RMSProp_1"},
};
static_assert(SB_ARRAY_LEN(opt_slot_names) == OPT_KIND_COUNT, "slot names for every opt_kind");

static const int opt_slot_counts[] = {
    [OPT_KIND_ADADELTA] = 2, [OPT_KIND_ADAGRAD] = 1, [OPT_KIND_ADAM] = 2, [OPT_KIND_FTRL] = 2,
    [OPT_KIND_MOMENTUM] = 1, [OPT_KIND_SGD] = 0,     [OPT_KIND_RMSPROP] = 2,
};
static_assert(SB_ARRAY_LEN(opt_slot_counts) == OPT_KIND_COUNT, "slot count for every opt_kind");

const char *opt_kind_name(opt_kind kind) {
    SB_ASSERTF(kind >= 0 && kind < OPT_KIND_COUNT, "opt_kind %d", (int)kind);
    return opt_kind_names[kind];
}

int opt_kind_from_name(const char *name, opt_kind *kind, sb_err *err) {
    for (int k = 0; k < OPT_KIND_COUNT; k++) {
        if (name && !strcmp(name, opt_kind_names[k])) {
            *kind = (opt_kind)k;
            return 0;
        }
    }
    return sb_err_set(err, SB_E_USAGE,
                      "--optimizer=%s: Optimizer [%s] was not recognized; one of adadelta, "
                      "adagrad, adam, ftrl, momentum, sgd, rmsprop",
                      name ? name : "", name ? name : "");
}

void opt_config_default(opt_config *c) {
    *c = (opt_config){
        .kind = OPT_KIND_RMSPROP,
        .adadelta_rho = 0.95f,
        .adagrad_initial_accumulator_value = 0.1f,
        .adam_beta1 = 0.9f,
        .adam_beta2 = 0.999f,
        .opt_epsilon = 1.0f,
        .ftrl_learning_rate_power = -0.5f,
        .ftrl_initial_accumulator_value = 0.1f,
        .ftrl_l1 = 0.0f,
        .ftrl_l2 = 0.0f,
        .momentum = 0.9f,
        .rmsprop_momentum = 0.9f,
        .rmsprop_decay = 0.9f,
    };
}

int opt_config_check(const opt_config *c, sb_err *err) {
    if (c->kind < 0 || c->kind >= OPT_KIND_COUNT)
        return sb_err_set(err, SB_E_RANGE, "--optimizer: invalid kind %d", (int)c->kind);
    const struct { const char *flag; float v; } all[] = {
        {"adadelta_rho", c->adadelta_rho},
        {"adagrad_initial_accumulator_value", c->adagrad_initial_accumulator_value},
        {"adam_beta1", c->adam_beta1},
        {"adam_beta2", c->adam_beta2},
        {"opt_epsilon", c->opt_epsilon},
        {"ftrl_learning_rate_power", c->ftrl_learning_rate_power},
        {"ftrl_initial_accumulator_value", c->ftrl_initial_accumulator_value},
        {"ftrl_l1", c->ftrl_l1},
        {"ftrl_l2", c->ftrl_l2},
        {"momentum", c->momentum},
        {"rmsprop_momentum", c->rmsprop_momentum},
        {"rmsprop_decay", c->rmsprop_decay},
    };
    for (size_t i = 0; i < SB_ARRAY_LEN(all); i++)
        if (!isfinite(all[i].v))
            return sb_err_set(err, SB_E_RANGE, "--%s=%g: must be a finite number", all[i].flag,
                              (double)all[i].v);
    /* The ValueErrors of TF's AdagradOptimizer and FtrlOptimizer constructors. */
    if (c->kind == OPT_KIND_ADAGRAD && !(c->adagrad_initial_accumulator_value > 0.0f))
        return sb_err_set(err, SB_E_RANGE,
                          "--adagrad_initial_accumulator_value=%g: must be positive",
                          (double)c->adagrad_initial_accumulator_value);
    if (c->kind == OPT_KIND_FTRL) {
        if (!(c->ftrl_initial_accumulator_value > 0.0f))
            return sb_err_set(err, SB_E_RANGE,
                              "--ftrl_initial_accumulator_value=%g: needs to be positive",
                              (double)c->ftrl_initial_accumulator_value);
        if (c->ftrl_learning_rate_power > 0.0f)
            return sb_err_set(err, SB_E_RANGE,
                              "--ftrl_learning_rate_power=%g: needs to be negative or zero",
                              (double)c->ftrl_learning_rate_power);
        if (c->ftrl_l1 < 0.0f)
            return sb_err_set(err, SB_E_RANGE, "--ftrl_l1=%g: needs to be positive or zero",
                              (double)c->ftrl_l1);
        if (c->ftrl_l2 < 0.0f)
            return sb_err_set(err, SB_E_RANGE, "--ftrl_l2=%g: needs to be positive or zero",
                              (double)c->ftrl_l2);
    }
    return 0;
}

int opt_slot_count(opt_kind kind) {
    SB_ASSERTF(kind >= 0 && kind < OPT_KIND_COUNT, "opt_kind %d", (int)kind);
    return opt_slot_counts[kind];
}

const char *opt_slot_name(opt_kind kind, int j) {
    SB_ASSERTF(j >= 0 && j < opt_slot_count(kind), "slot %d of %s", j, opt_kind_name(kind));
    return opt_slot_names[kind][j];
}

float opt_slot_init_value(const opt_config *c, int j) {
    SB_ASSERTF(j >= 0 && j < opt_slot_count(c->kind), "slot %d of %s", j, opt_kind_name(c->kind));
    switch (c->kind) {
    case OPT_KIND_ADAGRAD: return c->adagrad_initial_accumulator_value;
    case OPT_KIND_FTRL: return j == 0 ? c->ftrl_initial_accumulator_value : 0.0f;
    case OPT_KIND_RMSPROP: return j == 0 ? 1.0f : 0.0f;
    default: return 0.0f;
    }
}

void opt_slots_init(float *slots, size_t slot_stride, size_t n, const opt_config *c) {
    int ns = opt_slot_count(c->kind);
    SB_ASSERT(ns == 0 || slot_stride >= n);
    for (int j = 0; j < ns; j++) {
        float v = opt_slot_init_value(c, j);
        float *p = slots + (size_t)j * slot_stride;
        #pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) p[i] = v;
    }
}

int opt_scalar_count(opt_kind kind) {
    SB_ASSERTF(kind >= 0 && kind < OPT_KIND_COUNT, "opt_kind %d", (int)kind);
    return kind == OPT_KIND_ADAM ? 2 : 0;
}

const char *opt_scalar_name(opt_kind kind, int i) {
    SB_ASSERTF(i >= 0 && i < opt_scalar_count(kind), "scalar %d of %s", i, opt_kind_name(kind));
    return i == 0 ? "beta1_power" : "beta2_power";
}

void opt_scalars_init(float *scalars, const opt_config *c) {
    scalars[0] = c->kind == OPT_KIND_ADAM ? c->adam_beta1 : 0.0f;
    scalars[1] = c->kind == OPT_KIND_ADAM ? c->adam_beta2 : 0.0f;
}

void opt_scalars_advance(float *scalars, const opt_config *c) {
    if (c->kind != OPT_KIND_ADAM) return;
    scalars[0] = scalars[0] * c->adam_beta1;
    scalars[1] = scalars[1] * c->adam_beta2;
}

/* ---------------------------------------------------------------------------------------------
 * Vectors
 * ------------------------------------------------------------------------------------------- */

#if defined(__AVX512F__)
#define OPT_VL 16
#elif defined(__AVX__)
#define OPT_VL 8
#else
#define OPT_VL 4
#endif

typedef float vf __attribute__((vector_size(OPT_VL * sizeof(float))));
typedef int32_t vi __attribute__((vector_size(OPT_VL * sizeof(float))));

static inline vf vsplat(float x) { return (vf){0} + x; }
static inline vf vload(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
static inline void vstore(float *p, vf v) { memcpy(p, &v, sizeof v); }

static inline vf vsqrt(vf x) {
#if defined(__AVX512F__)
    return (vf)_mm512_sqrt_ps((__m512)x);
#elif defined(__AVX__)
    return (vf)_mm256_sqrt_ps((__m256)x);
#elif defined(__SSE__)
    return (vf)_mm_sqrt_ps((__m128)x);
#else
    for (int l = 0; l < OPT_VL; l++) x[l] = sqrtf(x[l]);
    return x;
#endif
}

/* Step-wide values, computed once per call in float32 as TF computes its scalar tensors. */
typedef struct opt_hyper {
    vf lr, wd;
    vf a, b, c, d;           /* per kind, see opt_hyper_make */
    float lr_s, l1, l2x2, lr_power;
} opt_hyper;

static opt_hyper opt_hyper_make(const opt_config *c, float lr, float wd, const float *scalars) {
    opt_hyper h;
    memset(&h, 0, sizeof h);
    h.lr = vsplat(lr);
    h.wd = vsplat(wd);
    h.lr_s = lr;
    switch (c->kind) {
    case OPT_KIND_ADADELTA:
        h.a = vsplat(c->adadelta_rho);
        h.b = vsplat(1.0f - c->adadelta_rho);
        h.c = vsplat(c->opt_epsilon);
        break;
    case OPT_KIND_ADAM: {
        SB_ASSERT(scalars != NULL);
        float alpha = lr * sqrtf(1.0f - scalars[1]) / (1.0f - scalars[0]);
        h.a = vsplat(alpha);
        h.b = vsplat(1.0f - c->adam_beta1);
        h.c = vsplat(1.0f - c->adam_beta2);
        h.d = vsplat(c->opt_epsilon);
        break;
    }
    case OPT_KIND_FTRL:
        h.l1 = c->ftrl_l1;
        h.l2x2 = 2.0f * c->ftrl_l2;
        h.lr_power = c->ftrl_learning_rate_power;
        break;
    case OPT_KIND_MOMENTUM: h.a = vsplat(c->momentum); break;
    case OPT_KIND_RMSPROP:
        h.a = vsplat(1.0f - c->rmsprop_decay);
        h.b = vsplat(c->rmsprop_momentum);
        h.c = vsplat(c->opt_epsilon);
        break;
    default: break;
    }
    return h;
}

/* ---------------------------------------------------------------------------------------------
 * The update rules, one vector of floats at a time: w, s0, s1 in/out, g in.
 * ------------------------------------------------------------------------------------------- */

static inline void adadelta_v(vf *w, vf *accum, vf *accum_update, vf g, const opt_hyper *h) {
    vf a = *accum * h->a + g * g * h->b;
    vf update = vsqrt(*accum_update + h->c) * (1.0f / vsqrt(a + h->c)) * g;
    *w = *w - update * h->lr;
    *accum_update = *accum_update * h->a + update * update * h->b;
    *accum = a;
}

static inline void adagrad_v(vf *w, vf *accum, vf *unused, vf g, const opt_hyper *h) {
    (void)unused;
    vf a = *accum + g * g;
    *w = *w - g * h->lr * (1.0f / vsqrt(a));
    *accum = a;
}

static inline void adam_v(vf *w, vf *m, vf *v, vf g, const opt_hyper *h) {
    vf mm = *m + (g - *m) * h->b;
    vf vv = *v + (g * g - *v) * h->c;
    *w = *w - (mm * h->a) / (vsqrt(vv) + h->d);
    *m = mm;
    *v = vv;
}

/* ApplyFtrl on one float. linear is updated first and then read by the var update, as the
 * functor's statement order does; sign(0) = 0. */
static inline void ftrl_1(float *w, float *accum, float *linear, float g, const opt_hyper *h) {
    float a = *accum, na = a + g * g;
    float lr = h->lr_s;
    float pa, pna;
    if (h->lr_power == -0.5f) {
        pa = sqrtf(a);
        pna = sqrtf(na);
    } else {
        pa = powf(a, -h->lr_power);
        pna = powf(na, -h->lr_power);
    }
    float lin = *linear + (g - (pna - pa) / lr * *w);
    float sign = lin == 0.0f ? 0.0f : (lin < 0.0f ? -1.0f : 1.0f);
    float x = h->l1 * sign - lin;
    float y = pna / lr + h->l2x2;
    *w = fabsf(lin) > h->l1 ? x / y : 0.0f;
    *linear = lin;
    *accum = na;
}

static inline void ftrl_v(vf *w, vf *accum, vf *linear, vf g, const opt_hyper *h) {
    if (h->lr_power == -0.5f) {
        /* The functor's special case (and slim's default): square roots, vectorized. */
        vf na = *accum + g * g;
        vf pa = vsqrt(*accum), pna = vsqrt(na);
        vf lin = *linear + (g - (pna - pa) / h->lr * *w);
        vi pos = lin > 0.0f, neg = lin < 0.0f;          /* lanes of -1 (true) or 0 */
        vf sign = __builtin_convertvector(neg - pos, vf); /* +1, -1, or 0 for lin == 0 */
        vf x = h->l1 * sign - lin;
        vf y = pna / h->lr + h->l2x2;
        vi keep = (vf)((vi)lin & 0x7fffffff) > h->l1;   /* |lin| > l1 */
        *w = (vf)((vi)(x / y) & keep);                   /* else +0.0 */
        *linear = lin;
        *accum = na;
        return;
    }
    /* General learning_rate_power: powf per lane, the same expression as ftrl_1. */
    for (int l = 0; l < OPT_VL; l++) {
        float wl = (*w)[l], al = (*accum)[l], ll = (*linear)[l];
        ftrl_1(&wl, &al, &ll, g[l], h);
        (*w)[l] = wl;
        (*accum)[l] = al;
        (*linear)[l] = ll;
    }
}

static inline void momentum_v(vf *w, vf *accum, vf *unused, vf g, const opt_hyper *h) {
    (void)unused;
    vf a = *accum * h->a + g;
    *w = *w - a * h->lr;
    *accum = a;
}

static inline void sgd_v(vf *w, vf *unused0, vf *unused1, vf g, const opt_hyper *h) {
    (void)unused0, (void)unused1;
    *w = *w - g * h->lr;
}

static inline void rmsprop_v(vf *w, vf *ms, vf *mom, vf g, const opt_hyper *h) {
    vf s = *ms + (g * g - *ms) * h->a;
    vf m = *mom * h->b + (g * h->lr) / vsqrt(s + h->c);
    *w = *w - m;
    *ms = s;
    *mom = m;
}

typedef void (*opt_rule_fn)(vf *w, vf *s0, vf *s1, vf g, const opt_hyper *h);

/* Run one rule over [0, n): whole vectors in place, the tail on a zero-padded copy (padded lanes
 * compute values that are thrown away). Inlined per rule, so the rule is inlined too. */
static inline __attribute__((always_inline)) void
opt_run(opt_rule_fn rule, int nslots, float *w, float *s0, float *s1, const float *g, size_t n,
        bool decay, const opt_hyper *h) {
    size_t i = 0;
    vf zero = vsplat(0.0f);
    for (; i + OPT_VL <= n; i += OPT_VL) {
        vf W = vload(w + i), S0 = nslots > 0 ? vload(s0 + i) : zero;
        vf S1 = nslots > 1 ? vload(s1 + i) : zero, G = vload(g + i);
        if (decay) G = G + h->wd * W;
        rule(&W, &S0, &S1, G, h);
        vstore(w + i, W);
        if (nslots > 0) vstore(s0 + i, S0);
        if (nslots > 1) vstore(s1 + i, S1);
    }
    if (i < n) {
        size_t r = n - i, bytes = r * sizeof(float);
        vf W = zero, S0 = zero, S1 = zero, G = zero;
        memcpy(&W, w + i, bytes);
        memcpy(&G, g + i, bytes);
        if (nslots > 0) memcpy(&S0, s0 + i, bytes);
        if (nslots > 1) memcpy(&S1, s1 + i, bytes);
        if (decay) G = G + h->wd * W;
        rule(&W, &S0, &S1, G, h);
        memcpy(w + i, &W, bytes);
        if (nslots > 0) memcpy(s0 + i, &S0, bytes);
        if (nslots > 1) memcpy(s1 + i, &S1, bytes);
    }
}

static void opt_adadelta_step(float *w, float *s0, float *s1, const float *g, size_t n, bool decay,
                              const opt_hyper *h) {
    opt_run(adadelta_v, 2, w, s0, s1, g, n, decay, h);
}
static void opt_adagrad_step(float *w, float *s0, float *s1, const float *g, size_t n, bool decay,
                             const opt_hyper *h) {
    opt_run(adagrad_v, 1, w, s0, s1, g, n, decay, h);
}
static void opt_adam_step(float *w, float *s0, float *s1, const float *g, size_t n, bool decay,
                          const opt_hyper *h) {
    opt_run(adam_v, 2, w, s0, s1, g, n, decay, h);
}
static void opt_ftrl_step(float *w, float *s0, float *s1, const float *g, size_t n, bool decay,
                          const opt_hyper *h) {
    opt_run(ftrl_v, 2, w, s0, s1, g, n, decay, h);
}
static void opt_momentum_step(float *w, float *s0, float *s1, const float *g, size_t n, bool decay,
                              const opt_hyper *h) {
    opt_run(momentum_v, 1, w, s0, s1, g, n, decay, h);
}
static void opt_sgd_step(float *w, float *s0, float *s1, const float *g, size_t n, bool decay,
                         const opt_hyper *h) {
    opt_run(sgd_v, 0, w, s0, s1, g, n, decay, h);
}
static void opt_rmsprop_step(float *w, float *s0, float *s1, const float *g, size_t n, bool decay,
                             const opt_hyper *h) {
    opt_run(rmsprop_v, 2, w, s0, s1, g, n, decay, h);
}

/* One switch: the serial update of [off, off+n) of the arena-shaped buffers. */
static void opt_range(opt_kind kind, float *params, float *slots, size_t slot_stride,
                      const float *grads, size_t off, size_t n, bool decay, const opt_hyper *h) {
    float *w = params + off;
    const float *g = grads + off;
    float *s0 = slots ? slots + off : NULL;
    float *s1 = slots ? slots + slot_stride + off : NULL;
    switch (kind) {
    case OPT_KIND_ADADELTA: opt_adadelta_step(w, s0, s1, g, n, decay, h); break;
    case OPT_KIND_ADAGRAD: opt_adagrad_step(w, s0, NULL, g, n, decay, h); break;
    case OPT_KIND_ADAM: opt_adam_step(w, s0, s1, g, n, decay, h); break;
    case OPT_KIND_FTRL: opt_ftrl_step(w, s0, s1, g, n, decay, h); break;
    case OPT_KIND_MOMENTUM: opt_momentum_step(w, s0, NULL, g, n, decay, h); break;
    case OPT_KIND_SGD: opt_sgd_step(w, NULL, NULL, g, n, decay, h); break;
    case OPT_KIND_RMSPROP: opt_rmsprop_step(w, s0, s1, g, n, decay, h); break;
    case OPT_KIND_COUNT: SB_ASSERTF(0, "opt_kind %d", (int)kind);
    }
}

/* Thread ith's share [lo, hi) of total, cut at multiples of PARAM_SHARE_ALIGN floats (a whole
 * number of vectors for every OPT_VL). */
static void opt_split(size_t total, int ith, int nth, size_t *lo, size_t *hi) {
    static_assert(PARAM_SHARE_ALIGN % OPT_VL == 0, "shares start on whole vectors");
    size_t nb = (total + PARAM_SHARE_ALIGN - 1) / PARAM_SHARE_ALIGN;
    size_t a = nb * (size_t)ith / (size_t)nth, b = nb * (size_t)(ith + 1) / (size_t)nth;
    *lo = SB_MIN(a * PARAM_SHARE_ALIGN, total);
    *hi = SB_MIN(b * PARAM_SHARE_ALIGN, total);
}

void param_share_for_each(const param_desc *descs, size_t ndesc, unsigned need, int ith, int nth,
                          param_piece_fn fn, void *ctx) {
    SB_ASSERTF(nth > 0 && ith >= 0 && ith < nth, "share %d of %d", ith, nth);
    size_t total = 0, lo, hi, pos = 0;
    for (size_t k = 0; k < ndesc; k++)
        if ((descs[k].flags & need) == need) total += descs[k].count;
    opt_split(total, ith, nth, &lo, &hi);
    for (size_t k = 0; k < ndesc && pos < hi; k++) {
        const param_desc *d = &descs[k];
        if ((d->flags & need) != need) continue;
        size_t a = SB_MAX(lo, pos), b = SB_MIN(hi, pos + d->count);
        if (b > a) fn(ctx, d, d->offset + (a - pos), b - a);
        pos += d->count;
    }
}

void opt_step(float *params, float *slots, size_t slot_stride, const float *grads, size_t n,
              const opt_config *c, float lr, float weight_decay, const float *scalars) {
    int ns = opt_slot_count(c->kind);
    SB_ASSERT(ns == 0 || (slots != NULL && slot_stride >= n));
    opt_hyper h = opt_hyper_make(c, lr, weight_decay, scalars);
    bool decay = weight_decay != 0.0f;
    #pragma omp parallel
    {
        size_t lo, hi;
        opt_split(n, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        if (hi > lo) opt_range(c->kind, params, ns ? slots : NULL, slot_stride, grads, lo, hi - lo,
                               decay, &h);
    }
}

static void check_descs(const param_desc *descs, size_t ndesc, size_t arena_count,
                        size_t slot_limit) {
    for (size_t k = 0; k < ndesc; k++) {
        SB_ASSERTF(descs[k].offset <= arena_count &&
                       descs[k].count <= arena_count - descs[k].offset,
                   "%s: [%zu, +%zu) outside the arena of %zu floats", descs[k].name,
                   descs[k].offset, descs[k].count, arena_count);
        SB_ASSERTF(!(descs[k].flags & PARAM_FLAG_TRAINABLE) ||
                       descs[k].offset + descs[k].count <= slot_limit,
                   "%s: trainable [%zu, +%zu) beyond the slot planes of %zu floats",
                   descs[k].name, descs[k].offset, descs[k].count, slot_limit);
        SB_DASSERT(k == 0 || descs[k].offset >= descs[k - 1].offset + descs[k - 1].count ||
                   descs[k].offset + descs[k].count <= descs[k - 1].offset);
    }
}

typedef struct apply_ctx {
    opt_kind kind;
    float *params, *slots;
    const float *grads;
    size_t slot_stride;
    bool wd;
    const opt_hyper *h;
} apply_ctx;

static void apply_chunk(void *ctx, const param_desc *d, size_t off, size_t n) {
    apply_ctx *c = ctx;
    opt_range(c->kind, c->params, c->slots, c->slot_stride, c->grads, off, n,
              c->wd && (d->flags & PARAM_FLAG_DECAY), c->h);
}

void opt_apply(float *params, float *slots, size_t slot_stride, const float *grads,
               size_t arena_count, const param_desc *descs, size_t ndesc, const opt_config *c,
               float lr, float weight_decay, float *scalars) {
    int ns = opt_slot_count(c->kind);
    SB_ASSERT(ns == 0 || slots != NULL);
    check_descs(descs, ndesc, arena_count, ns ? slot_stride : arena_count);
    opt_hyper h = opt_hyper_make(c, lr, weight_decay, scalars);
    apply_ctx ac = {c->kind, params, ns ? slots : NULL, grads, slot_stride,
                    weight_decay != 0.0f, &h};
    /* One region; each thread updates its share of the trainable floats. */
    #pragma omp parallel
    param_share_for_each(descs, ndesc, PARAM_FLAG_TRAINABLE, omp_get_thread_num(),
                         omp_get_num_threads(), apply_chunk, &ac);
    opt_scalars_advance(scalars, c);
}

/* ---------------------------------------------------------------------------------------------
 * L2 weight decay
 * ------------------------------------------------------------------------------------------- */

typedef struct l2_loss_ctx { const float *params; double sum; } l2_loss_ctx;
static void l2_loss_chunk(void *ctx, const param_desc *d, size_t off, size_t n) {
    (void)d;
    l2_loss_ctx *c = ctx;
    const float *w = c->params + off;
    double s = 0.0;
    #pragma omp simd reduction(+ : s)
    for (size_t i = 0; i < n; i++) s += (double)w[i] * (double)w[i];
    c->sum += s;
}

double opt_l2_loss(const float *params, const param_desc *descs, size_t ndesc, float weight_decay) {
    int nmax = omp_get_max_threads();
    double part[nmax > 0 ? nmax : 1];
    memset(part, 0, sizeof part);
    int nused = 1;
    #pragma omp parallel
    {
        int ith = omp_get_thread_num(), nth = omp_get_num_threads();
        if (ith == 0) nused = nth;
        l2_loss_ctx c = {params, 0.0};
        param_share_for_each(descs, ndesc, PARAM_FLAG_DECAY, ith, nth, l2_loss_chunk, &c);
        part[ith] = c.sum;
    }
    double sum = 0.0;
    for (int t = 0; t < nused; t++) sum += part[t]; /* fixed order: deterministic for a given nth */
    return (double)weight_decay * sum / 2.0;
}

typedef struct l2_grad_ctx { float *grads; const float *params; float wd; } l2_grad_ctx;
static void l2_grad_chunk(void *ctx, const param_desc *d, size_t off, size_t n) {
    (void)d;
    l2_grad_ctx *c = ctx;
    float *g = c->grads + off;
    const float *w = c->params + off;
    for (size_t i = 0; i < n; i++) g[i] = g[i] + c->wd * w[i];
}

void opt_l2_grad_add(float *grads, const float *params, const param_desc *descs, size_t ndesc,
                     float weight_decay) {
    l2_grad_ctx c = {grads, params, weight_decay};
    #pragma omp parallel
    param_share_for_each(descs, ndesc, PARAM_FLAG_DECAY | PARAM_FLAG_TRAINABLE,
                         omp_get_thread_num(), omp_get_num_threads(), l2_grad_chunk, &c);
}
