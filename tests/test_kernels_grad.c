/* tests/test_kernels_grad.c — the second, independent oracle: central finite differences in
 * double precision on tiny shapes, for every op's backward.
 *
 * For each op this file has its own naive double-precision forward (written from the maths, not
 * from the kernels). With a random float-representable r, the scalar loss L = sum(y * r) (for
 * softmax xent L is the loss itself) is differentiated numerically with respect to every input
 * element, dL/dp ~ (L(p + h) - L(p - h)) / 2h, and compared with the float kernels' backward
 * called with dy = r. The float forward is also compared with the double forward.
 *
 * Why the tolerances hold: for the linear ops (conv, fc, pools, concat, add, bias, dropout) L is
 * linear in each input, so the central difference is exact up to double rounding,
 * ~1e-16 * |L| / h ~ 1e-12 with h = 1e-3. For the smooth nonlinear ones (batch norm, softmax
 * xent) h = 1e-5 gives truncation error h^2 * |L'''| ~ 1e-10 and rounding ~1e-11. Max pool and ReLU
 * are piecewise linear; the inputs are kept at least 1e-2 apart from each other (max pool) and
 * from 0 (ReLU), far more than h, so no kink is crossed. The FD gradients are thus exact to ~1e-9,
 * and the comparison |analytic - fd| <= 1e-5 * max|fd| + 1e-4 * |fd| measures only the float32
 * rounding of the kernels' backward (a few ulps times sqrt(terms) on these sizes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sb.h"
#include "kernels/kernels.h"
#include "tests/support/testutil.h"

#define RTOL 1e-4
#define ATOL_SCALE 1e-5
#define H_LINEAR 1e-3
#define H_SMOOTH 1e-5

/* ---- helpers ------------------------------------------------------------------------------ */

static float *fbuf(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    assert_non_null(p);
    return p;
}

static double *dbuf(size_t n) {
    double *p = calloc(n ? n : 1, sizeof(double));
    assert_non_null(p);
    return p;
}

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

/* Float values in [-1, 1) (so float and double copies are equal), double copy alongside. */
static void fill(float *f, double *d, size_t n, uint64_t seed) {
    uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1;
    for (size_t i = 0; i < n; i++) {
        f[i] = (float)((double)(rng_next(&s) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
        if (d) d[i] = f[i];
    }
}

/* Distinct values 2/n apart (>= 1e-2 here, >> h), in random order, in [-1, 1): no max-pool
 * ties and no kink crossed by the FD step. */
static void fill_distinct(float *f, double *d, size_t n, uint64_t seed) {
    uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1;
    for (size_t i = 0; i < n; i++) f[i] = -1.0f + 2.0f * (float)i / (float)n;
    for (size_t i = n; i > 1; i--) {
        const size_t j = rng_next(&s) % i;
        const float t = f[i - 1];
        f[i - 1] = f[j], f[j] = t;
    }
    for (size_t i = 0; i < n; i++) d[i] = f[i];
}

static void check_close(const char *what, const float *got, const float *want, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)want[i]));
    if (tu_allclose(what, got, want, n, ATOL_SCALE * m + 1e-30, RTOL) != 0)
        fail_msg("%s differs", what);
}

static void check_close_d(const char *what, const float *got, const double *want, size_t n) {
    float *w = fbuf(n);
    for (size_t i = 0; i < n; i++) w[i] = (float)want[i];
    check_close(what, got, w, n);
    free(w);
}

typedef double (*loss_fn)(void *ctx);

/* Central differences of loss(ctx) with respect to p[0..n), compared with `analytic`. */
static void fd_check(const char *what, const float *analytic, double *p, size_t n, double h,
                     loss_fn loss, void *ctx) {
    double *g = dbuf(n);
    for (size_t i = 0; i < n; i++) {
        const double save = p[i];
        p[i] = save + h;
        const double lp = loss(ctx);
        p[i] = save - h;
        const double lm = loss(ctx);
        p[i] = save;
        g[i] = (lp - lm) / (2.0 * h);
    }
    loss(ctx); /* leave the context's forward output at the unperturbed point */
    check_close_d(what, analytic, g, n);
    free(g);
}

static double dot(const double *a, const double *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* ---- convolution -------------------------------------------------------------------------- */

typedef struct conv_ctx {
    conv2d_shape s;
    double *x, *w, *b, *r, *y;
} conv_ctx;

static void dconv(double *y, const double *x, const double *w, const double *b,
                  const conv2d_shape *s) {
    for (int n = 0; n < s->N; n++)
        for (int oh = 0; oh < s->OH; oh++)
            for (int ow = 0; ow < s->OW; ow++)
                for (int oc = 0; oc < s->OC; oc++) {
                    double acc = b ? b[oc] : 0.0;
                    for (int kh = 0; kh < s->KH; kh++)
                        for (int kw = 0; kw < s->KW; kw++) {
                            const int ih = oh * s->SH + kh - s->PT, iw = ow * s->SW + kw - s->PL;
                            if (ih < 0 || ih >= s->IH || iw < 0 || iw >= s->IW) continue;
                            for (int ic = 0; ic < s->IC; ic++)
                                acc += x[((n * s->IH + ih) * s->IW + iw) * s->IC + ic] *
                                       w[((kh * s->KW + kw) * s->IC + ic) * s->OC + oc];
                        }
                    y[((n * s->OH + oh) * s->OW + ow) * s->OC + oc] = acc;
                }
}

static double conv_loss(void *vc) {
    conv_ctx *c = vc;
    dconv(c->y, c->x, c->w, c->b, &c->s);
    return dot(c->y, c->r, (size_t)c->s.N * c->s.OH * c->s.OW * c->s.OC);
}

static void run_conv_fd(int N, int IH, int IW, int IC, int OC, int KH, int KW, int SH, int SW,
                        kn_padding pad, int PT, int PL, int PB, int PR, int bias) {
    conv_ctx c = {0};
    assert_int_equal(
        conv2d_shape_init(&c.s, N, IH, IW, IC, OC, KH, KW, SH, SW, pad, PT, PL, PB, PR), 0);
    const size_t nx = (size_t)N * IH * IW * IC, nw = (size_t)KH * KW * IC * OC;
    const size_t ny = (size_t)N * c.s.OH * c.s.OW * OC;
    float *x = fbuf(nx), *w = fbuf(nw), *b = fbuf(OC), *r = fbuf(ny), *y = fbuf(ny);
    float *dx = fbuf(nx), *dw = fbuf(nw), *db = fbuf(OC);
    c.x = dbuf(nx), c.w = dbuf(nw), c.b = bias ? dbuf(OC) : NULL, c.r = dbuf(ny), c.y = dbuf(ny);
    fill(x, c.x, nx, 1);
    fill(w, c.w, nw, 2);
    fill(b, c.b, bias ? (size_t)OC : 0, 3);
    fill(r, c.r, ny, 4);

    conv2d_forward_ref(y, x, w, bias ? b : NULL, &c.s, NULL);
    conv_loss(&c);
    check_close_d("conv_ref y vs double", y, c.y, ny);
    conv2d_backward_data_ref(dx, r, w, &c.s, NULL);
    conv2d_backward_filter_ref(dw, bias ? db : NULL, r, x, &c.s, NULL);
    fd_check("conv_ref dx vs fd", dx, c.x, nx, H_LINEAR, conv_loss, &c);
    fd_check("conv_ref dw vs fd", dw, c.w, nw, H_LINEAR, conv_loss, &c);
    if (bias) fd_check("conv_ref db vs fd", db, c.b, OC, H_LINEAR, conv_loss, &c);

    /* the fast conv against the same finite differences */
    const size_t wsz = conv2d_workspace_size(&c.s);
    void *ws = wsz ? sb_aligned_alloc(wsz) : NULL;
    conv2d_forward(y, x, w, bias ? b : NULL, &c.s, ws);
    check_close_d("conv2d y vs double", y, c.y, ny);
    memset(dw, 0, nw * sizeof(float));
    memset(db, 0, (size_t)OC * sizeof(float));
    conv2d_backward_data(dx, r, w, &c.s, ws);
    conv2d_backward_filter(dw, bias ? db : NULL, r, x, &c.s, ws);
    fd_check("conv2d dx vs fd", dx, c.x, nx, H_LINEAR, conv_loss, &c);
    fd_check("conv2d dw vs fd", dw, c.w, nw, H_LINEAR, conv_loss, &c);
    if (bias) fd_check("conv2d db vs fd", db, c.b, OC, H_LINEAR, conv_loss, &c);
    sb_aligned_free(ws);

    free(x), free(w), free(b), free(r), free(y), free(dx), free(dw), free(db);
    free(c.x), free(c.w), free(c.b), free(c.r), free(c.y);
}

static void test_conv_fd(void **state) {
    (void)state;
    /* stride 2, SAME with odd sizes: asymmetric padding (extra row/column bottom/right) */
    run_conv_fd(2, 5, 4, 3, 2, 3, 3, 2, 2, KN_PADDING_SAME, 0, 0, 0, 0, 1);
    /* 1x1, no bias */
    run_conv_fd(1, 3, 3, 4, 3, 1, 1, 1, 1, KN_PADDING_SAME, 0, 0, 0, 0, 0);
    /* explicit asymmetric padding, non-square kernel and strides */
    run_conv_fd(1, 5, 5, 2, 3, 2, 3, 2, 1, KN_PADDING_EXPLICIT, 1, 0, 2, 1, 1);
    /* 1x7 and 7x1 SAME */
    run_conv_fd(1, 2, 8, 2, 2, 1, 7, 1, 1, KN_PADDING_SAME, 0, 0, 0, 0, 1);
    run_conv_fd(1, 8, 2, 2, 2, 7, 1, 1, 1, KN_PADDING_SAME, 0, 0, 0, 0, 0);
}

/* ---- fully connected ---------------------------------------------------------------------- */

typedef struct fc_ctx {
    int N, IC, OC;
    double *x, *w, *b, *r, *y;
} fc_ctx;

static double fc_loss(void *vc) {
    fc_ctx *c = vc;
    for (int n = 0; n < c->N; n++)
        for (int o = 0; o < c->OC; o++) {
            double acc = c->b[o];
            for (int i = 0; i < c->IC; i++) acc += c->x[n * c->IC + i] * c->w[i * c->OC + o];
            c->y[n * c->OC + o] = acc;
        }
    return dot(c->y, c->r, (size_t)c->N * c->OC);
}

static void test_fc_fd(void **state) {
    (void)state;
    fc_ctx c = {.N = 3, .IC = 5, .OC = 4};
    const size_t nx = 15, nw = 20, ny = 12;
    float *x = fbuf(nx), *w = fbuf(nw), *b = fbuf(4), *r = fbuf(ny), *y = fbuf(ny);
    float *dx = fbuf(nx), *dw = fbuf(nw), *db = fbuf(4);
    c.x = dbuf(nx), c.w = dbuf(nw), c.b = dbuf(4), c.r = dbuf(ny), c.y = dbuf(ny);
    fill(x, c.x, nx, 101);
    fill(w, c.w, nw, 102);
    fill(b, c.b, 4, 103);
    fill(r, c.r, ny, 104);
    const size_t wsz = fc_workspace_size(c.N, c.IC, c.OC);
    void *ws = wsz ? sb_aligned_alloc(wsz) : NULL;
    fc_forward(y, x, w, b, c.N, c.IC, c.OC, ws);
    fc_loss(&c);
    check_close_d("fc y vs double", y, c.y, ny);
    fc_backward(dx, dw, db, r, x, w, c.N, c.IC, c.OC, ws);
    fd_check("fc dx vs fd", dx, c.x, nx, H_LINEAR, fc_loss, &c);
    fd_check("fc dw vs fd", dw, c.w, nw, H_LINEAR, fc_loss, &c);
    fd_check("fc db vs fd", db, c.b, 4, H_LINEAR, fc_loss, &c);
    sb_aligned_free(ws);
    free(x), free(w), free(b), free(r), free(y), free(dx), free(dw), free(db);
    free(c.x), free(c.w), free(c.b), free(c.r), free(c.y);
}

/* ---- batch norm (training) ---------------------------------------------------------------- */

typedef struct bn_ctx {
    int M, C;
    double eps;
    double *x, *gamma, *beta, *r, *y;
} bn_ctx;

static double bn_loss(void *vc) {
    bn_ctx *c = vc;
    for (int ch = 0; ch < c->C; ch++) {
        double mu = 0.0, var = 0.0;
        for (int m = 0; m < c->M; m++) mu += c->x[m * c->C + ch];
        mu /= c->M;
        for (int m = 0; m < c->M; m++) {
            const double d = c->x[m * c->C + ch] - mu;
            var += d * d;
        }
        var /= c->M;
        for (int m = 0; m < c->M; m++)
            c->y[m * c->C + ch] =
                c->gamma[ch] * (c->x[m * c->C + ch] - mu) / sqrt(var + c->eps) + c->beta[ch];
    }
    return dot(c->y, c->r, (size_t)c->M * c->C);
}

static void test_bn_fd(void **state) {
    (void)state;
    bn_ctx c = {.M = 6, .C = 3, .eps = 1e-3};
    const size_t n = 18;
    const bn_param p = {.M = c.M, .C = c.C, .eps = 1e-3f, .decay = 0.9f};
    float *x = fbuf(n), *g = fbuf(3), *b = fbuf(3), *r = fbuf(n), *y = fbuf(n);
    float *mean = fbuf(3), *rstd = fbuf(3), *dx = fbuf(n), *dg = fbuf(3), *db = fbuf(3);
    c.x = dbuf(n), c.gamma = dbuf(3), c.beta = dbuf(3), c.r = dbuf(n), c.y = dbuf(n);
    fill(x, c.x, n, 11);
    fill(g, c.gamma, 3, 12);
    fill(b, c.beta, 3, 13);
    fill(r, c.r, n, 14);
    bn_forward_train(y, mean, rstd, NULL, NULL, x, g, b, &p);
    bn_loss(&c);
    check_close_d("bn y vs double", y, c.y, n);
    bn_backward(dx, dg, db, r, x, mean, rstd, g, b, &p);
    fd_check("bn dx vs fd", dx, c.x, n, H_SMOOTH, bn_loss, &c);
    fd_check("bn dgamma vs fd", dg, c.gamma, 3, H_SMOOTH, bn_loss, &c);
    fd_check("bn dbeta vs fd", db, c.beta, 3, H_SMOOTH, bn_loss, &c);
    free(x), free(g), free(b), free(r), free(y), free(mean), free(rstd), free(dx), free(dg);
    free(db), free(c.x), free(c.gamma), free(c.beta), free(c.r), free(c.y);
}

/* ---- pooling ------------------------------------------------------------------------------ */

typedef struct pool_ctx {
    pool_shape s;
    int is_max;
    double *x, *r, *y;
} pool_ctx;

static double pool_loss(void *vc) {
    pool_ctx *c = vc;
    const pool_shape *s = &c->s;
    for (int n = 0; n < s->N; n++)
        for (int oh = 0; oh < s->OH; oh++)
            for (int ow = 0; ow < s->OW; ow++)
                for (int ch = 0; ch < s->C; ch++) {
                    double acc = c->is_max ? -INFINITY : 0.0;
                    int cnt = 0;
                    for (int kh = 0; kh < s->KH; kh++)
                        for (int kw = 0; kw < s->KW; kw++) {
                            const int ih = oh * s->SH + kh - s->PT, iw = ow * s->SW + kw - s->PL;
                            if (ih < 0 || ih >= s->IH || iw < 0 || iw >= s->IW) continue;
                            const double v = c->x[((n * s->IH + ih) * s->IW + iw) * s->C + ch];
                            acc = c->is_max ? fmax(acc, v) : acc + v;
                            cnt++;
                        }
                    c->y[((n * s->OH + oh) * s->OW + ow) * s->C + ch] = c->is_max ? acc : acc / cnt;
                }
    return dot(c->y, c->r, (size_t)s->N * s->OH * s->OW * s->C);
}

static void run_pool_fd(int is_max, int N, int IH, int IW, int C, int K, int S, kn_padding pad) {
    pool_ctx c = {.is_max = is_max};
    assert_int_equal(pool_shape_init(&c.s, N, IH, IW, C, K, K, S, S, pad), 0);
    const size_t nx = (size_t)N * IH * IW * C, ny = (size_t)N * c.s.OH * c.s.OW * C;
    float *x = fbuf(nx), *r = fbuf(ny), *y = fbuf(ny), *dx = fbuf(nx);
    int32_t *am = calloc(ny, sizeof(int32_t));
    c.x = dbuf(nx), c.r = dbuf(ny), c.y = dbuf(ny);
    fill_distinct(x, c.x, nx, 21);
    fill(r, c.r, ny, 22);
    if (is_max) {
        maxpool_forward(y, am, x, &c.s);
        maxpool_backward(dx, r, am, &c.s);
    } else {
        avgpool_forward(y, x, &c.s);
        avgpool_backward(dx, r, &c.s);
    }
    pool_loss(&c);
    check_close_d(is_max ? "maxpool y vs double" : "avgpool y vs double", y, c.y, ny);
    fd_check(is_max ? "maxpool dx vs fd" : "avgpool dx vs fd", dx, c.x, nx, H_LINEAR, pool_loss,
             &c);
    free(x), free(r), free(y), free(dx), free(am), free(c.x), free(c.r), free(c.y);
}

static void test_pool_fd(void **state) {
    (void)state;
    run_pool_fd(1, 2, 5, 6, 3, 3, 2, KN_PADDING_SAME);
    run_pool_fd(1, 1, 6, 5, 2, 2, 2, KN_PADDING_VALID);
    run_pool_fd(1, 1, 4, 4, 2, 3, 1, KN_PADDING_SAME); /* stride 1: windows overlap a lot */
    run_pool_fd(0, 2, 6, 5, 3, 3, 2, KN_PADDING_SAME);
    run_pool_fd(0, 1, 5, 5, 2, 3, 1, KN_PADDING_SAME);
    run_pool_fd(0, 1, 5, 4, 2, 2, 1, KN_PADDING_VALID);
    /* stride > kernel: some inputs are in no window (slim's resnet subsample: 1x1 max pool) */
    run_pool_fd(1, 2, 5, 6, 3, 1, 2, KN_PADDING_SAME);
    run_pool_fd(0, 1, 8, 7, 2, 2, 3, KN_PADDING_SAME);
}

typedef struct gap_ctx {
    int N, HW, C;
    double *x, *r, *y;
} gap_ctx;

static double gap_loss(void *vc) {
    gap_ctx *c = vc;
    for (int n = 0; n < c->N; n++)
        for (int ch = 0; ch < c->C; ch++) {
            double s = 0.0;
            for (int p = 0; p < c->HW; p++) s += c->x[(n * c->HW + p) * c->C + ch];
            c->y[n * c->C + ch] = s / c->HW;
        }
    return dot(c->y, c->r, (size_t)c->N * c->C);
}

static void test_global_avgpool_fd(void **state) {
    (void)state;
    gap_ctx c = {.N = 2, .HW = 6, .C = 3};
    const size_t nx = 36, ny = 6;
    float *x = fbuf(nx), *r = fbuf(ny), *y = fbuf(ny), *dx = fbuf(nx);
    c.x = dbuf(nx), c.r = dbuf(ny), c.y = dbuf(ny);
    fill(x, c.x, nx, 31);
    fill(r, c.r, ny, 32);
    global_avgpool_forward(y, x, c.N, c.HW, c.C);
    gap_loss(&c);
    check_close_d("gap y vs double", y, c.y, ny);
    global_avgpool_backward(dx, r, c.N, c.HW, c.C);
    fd_check("gap dx vs fd", dx, c.x, nx, H_LINEAR, gap_loss, &c);
    free(x), free(r), free(y), free(dx), free(c.x), free(c.r), free(c.y);
}

/* ---- elementwise: relu, add, bias, dropout, concat ---------------------------------------- */

typedef struct elt_ctx {
    int op;        /* ELT_* */
    size_t n, M;   /* elements; rows for bias/concat */
    int C, c0, c1; /* bias channels; concat widths */
    float keep;    /* dropout */
    const uint8_t *mask;
    double *a, *b, *r, *y;
} elt_ctx;

enum { ELT_RELU, ELT_ADD, ELT_BIAS, ELT_DROPOUT, ELT_CONCAT };

static double elt_loss(void *vc) {
    elt_ctx *c = vc;
    switch (c->op) {
    case ELT_RELU:
        for (size_t i = 0; i < c->n; i++) c->y[i] = c->a[i] > 0 ? c->a[i] : 0.0;
        break;
    case ELT_ADD:
        for (size_t i = 0; i < c->n; i++) c->y[i] = c->a[i] + c->b[i];
        break;
    case ELT_BIAS:
        for (size_t i = 0; i < c->n; i++) c->y[i] = c->a[i] + c->b[i % (size_t)c->C];
        break;
    case ELT_DROPOUT:
        for (size_t i = 0; i < c->n; i++) c->y[i] = c->mask[i] ? c->a[i] / c->keep : 0.0;
        break;
    case ELT_CONCAT:
        for (size_t m = 0; m < c->M; m++) {
            for (int j = 0; j < c->c0; j++) c->y[m * (c->c0 + c->c1) + j] = c->a[m * c->c0 + j];
            for (int j = 0; j < c->c1; j++)
                c->y[m * (c->c0 + c->c1) + c->c0 + j] = c->b[m * c->c1 + j];
        }
        break;
    }
    return dot(c->y, c->r, c->n);
}

static void test_relu_fd(void **state) {
    (void)state;
    const size_t n = 40;
    elt_ctx c = {.op = ELT_RELU, .n = n};
    float *x = fbuf(n), *r = fbuf(n), *y = fbuf(n), *dx = fbuf(n);
    c.a = dbuf(n), c.r = dbuf(n), c.y = dbuf(n);
    fill(x, c.a, n, 41);
    for (size_t i = 0; i < n; i++) { /* keep |x| >= 0.05: away from the kink */
        if (fabsf(x[i]) < 0.05f) x[i] = x[i] < 0 ? -0.05f - x[i] : 0.05f + x[i];
        c.a[i] = x[i];
    }
    fill(r, c.r, n, 42);
    relu_forward(y, x, n);
    elt_loss(&c);
    check_close_d("relu y vs double", y, c.y, n);
    relu_backward(dx, r, y, n);
    fd_check("relu dx vs fd", dx, c.a, n, H_LINEAR, elt_loss, &c);
    free(x), free(r), free(y), free(dx), free(c.a), free(c.r), free(c.y);
}

/* Residual add: dL/da = dy; the shortcut's dL/db is accumulated with add_accumulate. */
static void test_add_fd(void **state) {
    (void)state;
    const size_t n = 30;
    elt_ctx c = {.op = ELT_ADD, .n = n};
    float *a = fbuf(n), *b = fbuf(n), *r = fbuf(n), *y = fbuf(n), *db = fbuf(n);
    c.a = dbuf(n), c.b = dbuf(n), c.r = dbuf(n), c.y = dbuf(n);
    fill(a, c.a, n, 51);
    fill(b, c.b, n, 52);
    fill(r, c.r, n, 53);
    add_forward(y, a, b, n);
    elt_loss(&c);
    check_close_d("add y vs double", y, c.y, n);
    add_accumulate(db, r, n);
    fd_check("add da vs fd", r, c.a, n, H_LINEAR, elt_loss, &c);
    fd_check("add db (accumulated) vs fd", db, c.b, n, H_LINEAR, elt_loss, &c);
    free(a), free(b), free(r), free(y), free(db), free(c.a), free(c.b), free(c.r), free(c.y);
}

static void test_bias_fd(void **state) {
    (void)state;
    const size_t M = 7;
    const int C = 5;
    const size_t n = M * C;
    elt_ctx c = {.op = ELT_BIAS, .n = n, .M = M, .C = C};
    float *x = fbuf(n), *b = fbuf(C), *r = fbuf(n), *db = fbuf(C);
    c.a = dbuf(n), c.b = dbuf(C), c.r = dbuf(n), c.y = dbuf(n);
    fill(x, c.a, n, 61);
    fill(b, c.b, C, 62);
    fill(r, c.r, n, 63);
    bias_add_forward(x, b, M, C);
    elt_loss(&c);
    check_close_d("bias y vs double", x, c.y, n);
    bias_add_backward(db, r, M, C);
    fd_check("bias db vs fd", db, c.b, C, H_LINEAR, elt_loss, &c);
    free(x), free(b), free(r), free(db), free(c.a), free(c.b), free(c.r), free(c.y);
}

static void test_dropout_fd(void **state) {
    (void)state;
    const size_t n = 64;
    const float keep = 0.75f;
    uint8_t *mask = malloc(n);
    elt_ctx c = {.op = ELT_DROPOUT, .n = n, .keep = keep, .mask = mask};
    float *x = fbuf(n), *r = fbuf(n), *y = fbuf(n), *dx = fbuf(n);
    c.a = dbuf(n), c.r = dbuf(n), c.y = dbuf(n);
    fill(x, c.a, n, 71);
    fill(r, c.r, n, 72);
    dropout_forward(y, mask, x, n, keep, 7); /* the mask is then fixed for the FD */
    elt_loss(&c);
    check_close_d("dropout y vs double", y, c.y, n);
    dropout_backward(dx, r, mask, n, keep);
    fd_check("dropout dx vs fd", dx, c.a, n, H_LINEAR, elt_loss, &c);
    free(mask), free(x), free(r), free(y), free(dx), free(c.a), free(c.r), free(c.y);
}

static void test_concat_fd(void **state) {
    (void)state;
    const size_t M = 4;
    const int cs[2] = {2, 3};
    const size_t n = M * 5;
    elt_ctx c = {.op = ELT_CONCAT, .n = n, .M = M, .c0 = 2, .c1 = 3};
    float *x0 = fbuf(M * 2), *x1 = fbuf(M * 3), *r = fbuf(n), *y = fbuf(n);
    float *d0 = fbuf(M * 2), *d1 = fbuf(M * 3);
    c.a = dbuf(M * 2), c.b = dbuf(M * 3), c.r = dbuf(n), c.y = dbuf(n);
    fill(x0, c.a, M * 2, 81);
    fill(x1, c.b, M * 3, 82);
    fill(r, c.r, n, 83);
    const float *const xs[2] = {x0, x1};
    concat_forward(y, xs, cs, 2, M);
    elt_loss(&c);
    check_close_d("concat y vs double", y, c.y, n);
    float *const dxs[2] = {d0, d1};
    concat_backward(dxs, r, cs, 2, M);
    fd_check("concat dx0 vs fd", d0, c.a, M * 2, H_LINEAR, elt_loss, &c);
    fd_check("concat dx1 vs fd", d1, c.b, M * 3, H_LINEAR, elt_loss, &c);
    free(x0), free(x1), free(r), free(y), free(d0), free(d1);
    free(c.a), free(c.b), free(c.r), free(c.y);
}

/* ---- softmax cross-entropy ---------------------------------------------------------------- */

typedef struct xent_ctx {
    int N, K;
    double ls;
    const int32_t *labels;
    double *logits;
} xent_ctx;

static double xent_loss(void *vc) {
    xent_ctx *c = vc;
    double total = 0.0;
    for (int n = 0; n < c->N; n++) {
        const double *x = c->logits + (size_t)n * c->K;
        double m = x[0], s = 0.0;
        for (int k = 1; k < c->K; k++) m = fmax(m, x[k]);
        for (int k = 0; k < c->K; k++) s += exp(x[k] - m);
        const double lse = m + log(s);
        for (int k = 0; k < c->K; k++) {
            const double t = (k == c->labels[n] ? 1.0 - c->ls : 0.0) + c->ls / c->K;
            total -= t * (x[k] - lse);
        }
    }
    return total / c->N;
}

static void test_xent_fd(void **state) {
    (void)state;
    static const int32_t labels[3] = {2, 0, 6};
    static const float lss[2] = {0.0f, 0.1f};
    for (int t = 0; t < 2; t++) {
        xent_ctx c = {.N = 3, .K = 7, .ls = lss[t], .labels = labels};
        const size_t n = 21;
        float *lg = fbuf(n), *probs = fbuf(n), *dl = fbuf(n);
        c.logits = dbuf(n);
        fill(lg, c.logits, n, 91 + t);
        for (size_t i = 0; i < n; i++) lg[i] *= 4.0f, c.logits[i] *= 4.0;
        const float loss = softmax_xent_forward(probs, lg, labels, c.N, c.K, lss[t]);
        const double want = xent_loss(&c);
        check_close_d("xent loss vs double", &loss, &want, 1);
        softmax_xent_backward(dl, probs, labels, c.N, c.K, lss[t], 1.0f);
        fd_check("xent dlogits vs fd", dl, c.logits, n, H_SMOOTH, xent_loss, &c);
        free(lg), free(probs), free(dl), free(c.logits);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_fd),
        cmocka_unit_test(test_fc_fd),
        cmocka_unit_test(test_bn_fd),
        cmocka_unit_test(test_pool_fd),
        cmocka_unit_test(test_global_avgpool_fd),
        cmocka_unit_test(test_relu_fd),
        cmocka_unit_test(test_add_fd),
        cmocka_unit_test(test_bias_fd),
        cmocka_unit_test(test_dropout_fd),
        cmocka_unit_test(test_concat_fd),
        cmocka_unit_test(test_xent_fd),
    };
    return cmocka_run_group_tests_name("kernels_grad", tests, NULL, NULL);
}
