/* train/init.c — slim's variable initializers and the net -> param_desc mapping.
 *
 * Each float is drawn from a counter-based generator: a SplitMix64 hash of (seed, variable
 * index, element index, attempt), so values do not depend on how elements are split across
 * threads and a variable's values do not depend on the variables before it. TensorFlow's
 * truncated normal redraws samples beyond two standard deviations; so does this (attempt + 1).
 * The numbers differ from TensorFlow's Philox stream, the distributions are the same.
 * Knows models.h's variable descriptors, nothing of the step loop.
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "train/train_loop.h"

static inline uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in (0, 1) from 53 random bits, never 0 (log is safe). */
static inline double unit(uint64_t h) { return ((double)(h >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

static inline uint64_t key(uint64_t seed, int var, size_t i, unsigned attempt) {
    return mix64(mix64(mix64(seed ^ 0x5b1bbe7c0ffeeULL) + (uint64_t)var) + (uint64_t)i * 64u +
                 attempt);
}

/* A standard normal sample truncated to [-2, 2] (Box-Muller, redraw outside). */
static float truncated_normal(uint64_t seed, int var, size_t i) {
    for (unsigned a = 0;; a++) {
        uint64_t h = key(seed, var, i, a);
        double u1 = unit(h), u2 = unit(mix64(h));
        double z = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
        if (fabs(z) <= 2.0) return (float)z;
    }
}

void train_init_params(net *n, uint64_t seed) {
    float *params = net_params(n);
    SB_ASSERTF(params, "train_init_params(%s) before net_alloc", net_name(n));
    for (int v = 0; v < net_num_vars(n); v++) {
        const net_var *d = net_var_at(n, v);
        float *w = params + d->offset;
        const net_init *in = &d->init;
        const long long cnt = (long long)d->count;
        switch (in->kind) {
        case NET_INIT_ZEROS:
            memset(w, 0, d->count * sizeof(float));
            break;
        case NET_INIT_ONES:
            for (size_t i = 0; i < d->count; i++) w[i] = 1.0f;
            break;
        case NET_INIT_CONSTANT:
            for (size_t i = 0; i < d->count; i++) w[i] = in->value;
            break;
        case NET_INIT_TRUNCATED_NORMAL:
        case NET_INIT_VARIANCE_SCALING:
#pragma omp parallel for schedule(static)
            for (long long i = 0; i < cnt; i++)
                w[i] = truncated_normal(seed, v, (size_t)i) * in->value;
            break;
        case NET_INIT_GLOROT_UNIFORM:
#pragma omp parallel for schedule(static)
            for (long long i = 0; i < cnt; i++)
                w[i] = (float)((2.0 * unit(key(seed, v, (size_t)i, 0)) - 1.0) * in->value);
            break;
        case NET_INIT_COUNT:
            SB_ASSERTF(0, "variable %s has no initializer", d->name);
        }
    }
}

bool train_scope_match(const char *name, const char *scopes) {
    if (!scopes) return false;
    const char *p = scopes;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        const char *e = p;
        while (*e && *e != ',') e++;
        const char *t = e;
        while (t > p && t[-1] == ' ') t--;
        size_t len = (size_t)(t - p);
        if (len && strncmp(name, p, len) == 0) return true;
        p = e;
    }
    return false;
}

param_desc *train_param_descs(const net *n, const char *trainable_scopes, size_t *count) {
    int nv = net_num_vars(n);
    param_desc *d = sb_xcalloc((size_t)(nv ? nv : 1), sizeof *d);
    bool scoped = trainable_scopes && trainable_scopes[0];
    for (int i = 0; i < nv; i++) {
        const net_var *v = net_var_at(n, i);
        d[i].name = v->name;
        d[i].offset = v->offset;
        d[i].count = v->count;
        d[i].ndim = v->ndim;
        memcpy(d[i].shape, v->shape, sizeof d[i].shape);
        d[i].flags = PARAM_FLAG_MODEL;
        if ((v->flags & NET_VAR_TRAINABLE) &&
            (!scoped || train_scope_match(v->name, trainable_scopes)))
            d[i].flags |= PARAM_FLAG_TRAINABLE;
        if (v->flags & NET_VAR_REGULARIZED) d[i].flags |= PARAM_FLAG_DECAY;
    }
    *count = (size_t)nv;
    return d;
}
