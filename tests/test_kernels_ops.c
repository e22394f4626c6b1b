/* tests/test_kernels_ops.c — batch norm, pooling, ReLU, softmax cross-entropy, dropout, concat,
 * add and bias against PyTorch's vectors (tests/reference, gen_kernels.py), plus the properties
 * PyTorch cannot give: dropout's keep rate and mask replay, the concat round trip, accumulation
 * semantics (dw/db +=, dx overwritten), in-place aliasing, and bit-identical results for 1, 2 and
 * 3 threads on shapes large enough to run in parallel.
 *
 * Tolerance: |got - want| <= atol + 1e-4 * |want| with atol = 1e-5 * max|want| (1e-5 of the
 * tensor's scale). The references are float64 results rounded once, so this allows the float32
 * rounding of our sums (a few ulps times sqrt(terms)) while still catching any wrong term. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sb.h"
#include "kernels/kernels.h"
#include "tests/support/testutil.h"

#define RTOL 1e-4
#define ATOL_SCALE 1e-5

/* ---- helpers ------------------------------------------------------------------------------ */

typedef struct refset {
    tu_ref r[24];
    int n;
} refset;

/* Load "<cs>_<t>.bin"; checks the dtype and, when count > 0, the element count. */
static void *ref_get(refset *s, const char *cs, const char *t, int dtype, size_t count) {
    char name[160];
    snprintf(name, sizeof name, "%s_%s.bin", cs, t);
    assert_true(s->n < (int)SB_ARRAY_LEN(s->r));
    tu_ref *r = &s->r[s->n++];
    tu_ref_load(r, name);
    if (r->dtype != dtype) fail_msg("%s: dtype %d, want %d", name, r->dtype, dtype);
    if (count && r->count != count) fail_msg("%s: %zu values, want %zu", name, r->count, count);
    return r->data;
}
#define REF_F(s, cs, t, n) ((float *)ref_get((s), (cs), (t), 0, (n)))
#define REF_I(s, cs, t, n) ((int32_t *)ref_get((s), (cs), (t), 1, (n)))

static void refs_free(refset *s) {
    for (int i = 0; i < s->n; i++) tu_ref_free(&s->r[i]);
    s->n = 0;
}

static double max_abs(const float *a, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i]));
    return m;
}

/* Every output goes through this: fails the test (after printing) on any mismatch. */
static void check_close(const char *what, const float *got, const float *want, size_t n) {
    const double atol = ATOL_SCALE * max_abs(want, n) + 1e-30;
    if (tu_allclose(what, got, want, n, atol, RTOL) != 0) fail_msg("%s differs", what);
}

static float *fbuf(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    assert_non_null(p);
    return p;
}

/* Deterministic pseudo-random floats in [-1, 1). */
static void fill_uniform(float *a, size_t n, uint64_t seed) {
    uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        a[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
}

/* ---- batch norm --------------------------------------------------------------------------- */

static void run_bn_case(const char *cs) {
    refset s = {0};
    const int32_t *pr = REF_I(&s, cs, "params", 4);
    const bn_param p = {
        .M = pr[0], .C = pr[1], .eps = (float)(pr[2] * 1e-6), .decay = (float)(pr[3] * 1e-6)};
    const size_t M = (size_t)p.M, C = (size_t)p.C, n = M * C;
    const float *x = REF_F(&s, cs, "x", n), *gamma = REF_F(&s, cs, "gamma", C);
    const float *beta = REF_F(&s, cs, "beta", C), *dy = REF_F(&s, cs, "dy", n);
    float *rm = fbuf(C), *rv = fbuf(C), *y = fbuf(n), *mean = fbuf(C), *rstd = fbuf(C);
    memcpy(rm, REF_F(&s, cs, "rm0", C), C * sizeof(float));
    memcpy(rv, REF_F(&s, cs, "rv0", C), C * sizeof(float));

    bn_forward_train(y, mean, rstd, rm, rv, x, gamma, beta, &p);
    check_close("bn y", y, REF_F(&s, cs, "y", n), n);
    check_close("bn mean", mean, REF_F(&s, cs, "mean", C), C);
    check_close("bn rstd", rstd, REF_F(&s, cs, "rstd", C), C);
    check_close("bn moving_mean", rm, REF_F(&s, cs, "rm", C), C);
    check_close("bn moving_var", rv, REF_F(&s, cs, "rv", C), C);

    /* in place (y aliases x) gives the same output */
    float *xy = fbuf(n);
    memcpy(xy, x, n * sizeof(float));
    bn_forward_train(xy, mean, rstd, NULL, NULL, xy, gamma, beta, &p);
    assert_memory_equal(xy, y, n * sizeof(float));

    /* backward: dx, dgamma and dbeta overwritten (the old contents, NaN, never read) */
    float *dx = fbuf(n), *dg = fbuf(C), *db = fbuf(C);
    for (size_t i = 0; i < n; i++) dx[i] = NAN;
    for (size_t c = 0; c < C; c++) dg[c] = db[c] = NAN;
    bn_backward(dx, dg, db, dy, x, mean, rstd, gamma, beta, &p);
    check_close("bn dx", dx, REF_F(&s, cs, "dx", n), n);
    check_close("bn dgamma", dg, REF_F(&s, cs, "dgamma", C), C);
    check_close("bn dbeta", db, REF_F(&s, cs, "dbeta", C), C);

    /* dx aliasing dy */
    float *dd = fbuf(n);
    memcpy(dd, dy, n * sizeof(float));
    bn_backward(dd, NULL, NULL, dd, x, mean, rstd, gamma, beta, &p);
    assert_memory_equal(dd, dx, n * sizeof(float));

    bn_forward_infer(y, x, gamma, beta, REF_F(&s, cs, "rm0", C), REF_F(&s, cs, "rv0", C), &p);
    check_close("bn y_infer", y, REF_F(&s, cs, "y_infer", n), n);

    free(rm), free(rv), free(y), free(mean), free(rstd), free(xy), free(dx), free(dg), free(db);
    free(dd);
    refs_free(&s);
}

static void test_bn_small(void **state) {
    (void)state;
    run_bn_case("bn_small");
}

static void test_bn_tail_offset_mean(void **state) {
    (void)state;
    run_bn_case("bn_tail");
}

/* A mean 300 times the standard deviation (and an outlying first row, the sums' shift) against
 * a two-pass double reference computed here: the variance must not cancel away. */
static void test_bn_large_mean(void **state) {
    (void)state;
    const int M = 1000, C = 19;
    const bn_param p = {.M = M, .C = C, .eps = 1e-5f, .decay = 0.9f};
    const size_t n = (size_t)M * C;
    float *x = fbuf(n), *y = fbuf(n), *want = fbuf(n), *mean = fbuf(C), *rstd = fbuf(C);
    float *wmean = fbuf(C), *wrstd = fbuf(C);
    fill_uniform(x, n, 17);
    for (size_t i = 0; i < n; i++) x[i] = 300.0f + x[i];
    for (int c = 0; c < C; c++) x[c] = 320.0f; /* first row 35 sigma out */
    for (int c = 0; c < C; c++) {
        double mu = 0.0, var = 0.0;
        for (int m = 0; m < M; m++) mu += x[(size_t)m * C + c];
        mu /= M;
        for (int m = 0; m < M; m++) {
            const double d = x[(size_t)m * C + c] - mu;
            var += d * d;
        }
        var /= M;
        wmean[c] = (float)mu;
        wrstd[c] = (float)(1.0 / sqrt(var + 1e-5));
        for (int m = 0; m < M; m++)
            want[(size_t)m * C + c] = (float)((x[(size_t)m * C + c] - mu) / sqrt(var + 1e-5));
    }
    bn_forward_train(y, mean, rstd, NULL, NULL, x, NULL, NULL, &p);
    check_close("bn large-mean mean", mean, wmean, C);
    check_close("bn large-mean rstd", rstd, wrstd, C);
    /* y = (x - mean) * rstd: x - mean is exact in float, but mean itself is rounded to float
     * (half an ulp of 300 = 1.5e-5 against a std of 0.58), which shifts y by up to 3e-5. */
    if (tu_allclose("bn large-mean y", y, want, n, 5e-5, RTOL) != 0) fail_msg("bn y differs");
    free(x), free(y), free(want), free(mean), free(rstd), free(wmean), free(wrstd);
}

/* scale=False / center=False: gamma NULL acts as ones, beta NULL as zeros. */
static void test_bn_null_gamma_beta(void **state) {
    (void)state;
    const bn_param p = {.M = 37, .C = 70, .eps = 1e-3f, .decay = 0.9f};
    const size_t n = 37 * 70;
    float *x = fbuf(n), *y0 = fbuf(n), *y1 = fbuf(n), *ones = fbuf(70), *zeros = fbuf(70);
    float *m = fbuf(70), *r = fbuf(70), *dx0 = fbuf(n), *dx1 = fbuf(n);
    fill_uniform(x, n, 3);
    for (int c = 0; c < 70; c++) ones[c] = 1.0f;
    bn_forward_train(y0, m, r, NULL, NULL, x, ones, zeros, &p);
    bn_forward_train(y1, m, r, NULL, NULL, x, NULL, NULL, &p);
    assert_memory_equal(y0, y1, n * sizeof(float));
    bn_backward(dx0, NULL, NULL, x, x, m, r, ones, zeros, &p);
    bn_backward(dx1, NULL, NULL, x, x, m, r, NULL, NULL, &p);
    assert_memory_equal(dx0, dx1, n * sizeof(float));
    free(x), free(y0), free(y1), free(ones), free(zeros), free(m), free(r), free(dx0), free(dx1);
}

/* The ReLU fused into batch norm (p.relu) gives exactly what batch norm followed by relu_forward
 * gives, and its backward exactly relu_backward then bn_backward, in training and inference, on
 * rows split over threads, more channels than one sweep, and betas of both signs. */
static void test_bn_relu_fused(void **state) {
    (void)state;
    const int M = 301, C = 1030;
    const size_t n = (size_t)M * C;
    bn_param p = {.M = M, .C = C, .eps = 1e-3f, .decay = 0.9f};
    float *x = fbuf(n), *dy = fbuf(n), *y0 = fbuf(n), *y1 = fbuf(n), *g0 = fbuf(n);
    float *dx0 = fbuf(n), *dx1 = fbuf(n), *gamma = fbuf(C), *beta = fbuf(C);
    float *m0 = fbuf(C), *r0 = fbuf(C), *m1 = fbuf(C), *r1 = fbuf(C);
    float *dg0 = fbuf(C), *db0 = fbuf(C), *dg1 = fbuf(C), *db1 = fbuf(C);
    fill_uniform(x, n, 21);
    fill_uniform(dy, n, 22);
    fill_uniform(gamma, C, 23);
    fill_uniform(beta, C, 24);
    bn_forward_train(y0, m0, r0, NULL, NULL, x, gamma, beta, &p);
    relu_forward(y0, y0, n);
    relu_backward(g0, dy, y0, n);
    bn_backward(dx0, dg0, db0, g0, x, m0, r0, gamma, beta, &p);
    p.relu = 1;
    bn_forward_train(y1, m1, r1, NULL, NULL, x, gamma, beta, &p);
    size_t zeros = 0;
    for (size_t i = 0; i < n; i++) zeros += y1[i] == 0.0f;
    assert_true(zeros > n / 4 && zeros < 3 * n / 4); /* the mask matters */
    assert_memory_equal(y0, y1, n * sizeof(float));
    bn_backward(dx1, dg1, db1, dy, x, m1, r1, gamma, beta, &p);
    assert_memory_equal(dx0, dx1, n * sizeof(float));
    assert_memory_equal(dg0, dg1, C * sizeof(float));
    assert_memory_equal(db0, db1, C * sizeof(float));
    p.relu = 0;
    bn_forward_infer(y0, x, gamma, beta, m0, r0, &p);
    relu_forward(y0, y0, n);
    p.relu = 1;
    bn_forward_infer(y1, x, gamma, beta, m0, r0, &p);
    assert_memory_equal(y0, y1, n * sizeof(float));
    free(x), free(dy), free(y0), free(y1), free(g0), free(dx0), free(dx1), free(gamma), free(beta);
    free(m0), free(r0), free(m1), free(r1), free(dg0), free(db0), free(dg1), free(db1);
}

/* More channels than one sweep of the channel-wise reductions (BN_W, BIAS_W, GAP_W = 1024), on
 * enough rows to run in parallel: batch norm forward/backward, bias gradient and global average
 * pool against double references computed here. */
static void test_wide_channels(void **state) {
    (void)state;
    const int M = 29, C = 2100;
    const size_t n = (size_t)M * C;
    const bn_param p = {.M = M, .C = C, .eps = 1e-3f, .decay = 0.9f};
    float *x = fbuf(n), *dy = fbuf(n), *g = fbuf(C), *b = fbuf(C), *y = fbuf(n), *dx = fbuf(n);
    float *mean = fbuf(C), *rstd = fbuf(C), *dg = fbuf(C), *db = fbuf(C), *bdb = fbuf(C);
    float *wy = fbuf(n), *wdx = fbuf(n), *wdg = fbuf(C), *wdb = fbuf(C), *gap = fbuf(C);
    float *wgap = fbuf(C);
    fill_uniform(x, n, 31);
    fill_uniform(dy, n, 32);
    fill_uniform(g, C, 33);
    fill_uniform(b, C, 34);
    for (int c = 0; c < C; c++) {
        double mu = 0.0, var = 0.0, sdy = 0.0, sdyx = 0.0;
        for (int m = 0; m < M; m++) mu += x[(size_t)m * C + c];
        mu /= M;
        for (int m = 0; m < M; m++) {
            const double d = x[(size_t)m * C + c] - mu;
            var += d * d;
        }
        var /= M;
        const double rs = 1.0 / sqrt(var + 1e-3);
        for (int m = 0; m < M; m++) {
            const size_t i = (size_t)m * C + c;
            wy[i] = (float)(g[c] * (x[i] - mu) * rs + b[c]);
            sdy += dy[i];
            sdyx += dy[i] * (x[i] - mu) * rs;
        }
        for (int m = 0; m < M; m++) {
            const size_t i = (size_t)m * C + c;
            wdx[i] = (float)(g[c] * rs * (dy[i] - sdy / M - (x[i] - mu) * rs * sdyx / M));
        }
        wdg[c] = (float)sdyx;
        wdb[c] = (float)sdy;
        wgap[c] = (float)(mu);
    }
    bn_forward_train(y, mean, rstd, NULL, NULL, x, g, b, &p);
    check_close("wide bn y", y, wy, n);
    bn_backward(dx, dg, db, dy, x, mean, rstd, g, b, &p);
    check_close("wide bn dx", dx, wdx, n);
    check_close("wide bn dgamma", dg, wdg, C);
    check_close("wide bn dbeta", db, wdb, C);
    bias_add_backward(bdb, dy, M, C);
    check_close("wide bias db", bdb, wdb, C);
    global_avgpool_forward(gap, x, 1, M, C); /* one image of M pixels: the mean over rows */
    check_close("wide gap y", gap, wgap, C);
    free(x), free(dy), free(g), free(b), free(y), free(dx), free(mean), free(rstd), free(dg);
    free(db), free(bdb), free(wy), free(wdx), free(wdg), free(wdb), free(gap), free(wgap);
}

/* ---- pooling ------------------------------------------------------------------------------ */

static void run_pool_case(const char *cs) {
    refset s = {0};
    const int32_t *pr = REF_I(&s, cs, "params", 10);
    pool_shape ps;
    assert_int_equal(pool_shape_init(&ps, pr[0], pr[1], pr[2], pr[3], pr[4], pr[5], pr[6], pr[7],
                                     pr[8] ? KN_PADDING_VALID : KN_PADDING_SAME),
                     0);
    const size_t nx = (size_t)ps.N * ps.IH * ps.IW * ps.C, ny = (size_t)ps.N * ps.OH * ps.OW * ps.C;
    const float *x = REF_F(&s, cs, "x", nx), *dy = REF_F(&s, cs, "dy", ny);
    float *y = fbuf(ny), *dx = fbuf(nx);
    for (size_t i = 0; i < nx; i++) dx[i] = NAN;
    if (pr[9]) {
        int32_t *am = calloc(ny, sizeof(int32_t));
        maxpool_forward(y, am, x, &ps);
        check_close("maxpool y", y, REF_F(&s, cs, "y", ny), ny);
        maxpool_backward(dx, dy, am, &ps);
        check_close("maxpool dx", dx, REF_F(&s, cs, "dx", nx), nx);
        free(am);
    } else {
        avgpool_forward(y, x, &ps);
        check_close("avgpool y", y, REF_F(&s, cs, "y", ny), ny);
        avgpool_backward(dx, dy, &ps);
        check_close("avgpool dx", dx, REF_F(&s, cs, "dx", nx), nx);
    }
    free(y), free(dx);
    refs_free(&s);
}

static void test_pool_cases(void **state) {
    (void)state;
    static const char *const cases[] = {"maxpool_3x3_s2_same",      "maxpool_3x3_s2_same_even",
                                        "maxpool_2x2_s2_valid",     "avgpool_3x3_s1_same",
                                        "avgpool_3x3_s2_same_even", "avgpool_5x5_s3_valid"};
    for (size_t i = 0; i < SB_ARRAY_LEN(cases); i++) run_pool_case(cases[i]);
}

/* A max-pool window that overlaps padding only picks real inputs, even when all are negative
 * (TF pads with -inf, not 0). */
static void test_maxpool_negative_inputs_ignore_padding(void **state) {
    (void)state;
    pool_shape ps;
    assert_int_equal(pool_shape_init(&ps, 1, 4, 4, 2, 3, 3, 2, 2, KN_PADDING_SAME), 0);
    float x[32], y[8];
    int32_t am[8];
    for (int i = 0; i < 32; i++) x[i] = -1.0f - (float)i;
    maxpool_forward(y, am, x, &ps);
    for (int i = 0; i < 8; i++) assert_true(y[i] < -0.5f);
}

static void test_global_avgpool(void **state) {
    (void)state;
    refset s = {0};
    const int N = 3, HW = 35, C = 6;
    const float *x = REF_F(&s, "gap", "x", (size_t)N * HW * C);
    const float *dy = REF_F(&s, "gap", "dy", (size_t)N * C);
    float *y = fbuf((size_t)N * C), *dx = fbuf((size_t)N * HW * C);
    global_avgpool_forward(y, x, N, HW, C);
    check_close("gap y", y, REF_F(&s, "gap", "y", (size_t)N * C), (size_t)N * C);
    global_avgpool_backward(dx, dy, N, HW, C);
    check_close("gap dx", dx, REF_F(&s, "gap", "dx", (size_t)N * HW * C), (size_t)N * HW * C);
    free(y), free(dx);
    refs_free(&s);
}

/* ---- relu, add, bias ---------------------------------------------------------------------- */

static void test_relu(void **state) {
    (void)state;
    refset s = {0};
    const size_t n = 4 * 3 * 5 * 7;
    const float *x = REF_F(&s, "relu", "x", n), *dy = REF_F(&s, "relu", "dy", n);
    float *y = fbuf(n), *dx = fbuf(n);
    relu_forward(y, x, n);
    check_close("relu y", y, REF_F(&s, "relu", "y", n), n);
    relu_backward(dx, dy, y, n);
    check_close("relu dx", dx, REF_F(&s, "relu", "dx", n), n);
    memcpy(dx, dy, n * sizeof(float));
    relu_backward(dx, dx, y, n); /* in place */
    check_close("relu dx in place", dx, REF_F(&s, "relu", "dx", n), n);
    memcpy(y, x, n * sizeof(float));
    relu_forward(y, y, n);
    check_close("relu y in place", y, REF_F(&s, "relu", "y", n), n);
    free(y), free(dx);
    refs_free(&s);
}

/* add_backward's four copy/accumulate combinations, a skipped input, x + x, the fused ReLU, on
 * a size that is split over threads and off any vector width. */
static void test_add_backward_modes(void **state) {
    (void)state;
    const size_t n = 70001;
    float *dy = fbuf(n), *da = fbuf(n), *db = fbuf(n), *a0 = fbuf(n), *b0 = fbuf(n);
    fill_uniform(dy, n, 4);
    fill_uniform(a0, n, 5);
    fill_uniform(b0, n, 6);
    for (int mode = 0; mode < 4; mode++) {
        const int acc_a = mode & 1, acc_b = mode >> 1;
        memcpy(da, a0, n * sizeof(float));
        memcpy(db, b0, n * sizeof(float));
        add_backward(da, acc_a, db, acc_b, dy, NULL, n);
        for (size_t i = 0; i < n; i++) {
            assert_true(da[i] == (acc_a ? a0[i] + dy[i] : dy[i]));
            assert_true(db[i] == (acc_b ? b0[i] + dy[i] : dy[i]));
        }
    }
    memcpy(db, b0, n * sizeof(float));
    add_backward(NULL, 0, db, 1, dy, NULL, n); /* a needs no gradient */
    for (size_t i = 0; i < n; i++) assert_true(db[i] == b0[i] + dy[i]);
    memcpy(da, a0, n * sizeof(float));
    add_backward(da, 0, da, 1, dy, NULL, n); /* x + x: 2 dy */
    for (size_t i = 0; i < n; i++) assert_true(da[i] == dy[i] + dy[i]);
    /* with the ReLU: add_relu_forward = add then relu_forward, and the backward = relu_backward
     * then the plain add's backward, bit for bit */
    float *y0 = fbuf(n), *y1 = fbuf(n), *g = fbuf(n), *w0 = fbuf(n), *w1 = fbuf(n);
    add_forward(y0, a0, b0, n);
    relu_forward(y0, y0, n);
    add_relu_forward(y1, a0, b0, n);
    assert_memory_equal(y0, y1, n * sizeof(float));
    size_t zeros = 0;
    for (size_t i = 0; i < n; i++) zeros += y1[i] == 0.0f;
    assert_true(zeros > n / 4 && zeros < 3 * n / 4);
    relu_backward(g, dy, y0, n);
    memcpy(w0, b0, n * sizeof(float));
    add_backward(da, 0, w0, 1, g, NULL, n);
    memcpy(db, da, n * sizeof(float));
    memcpy(w1, b0, n * sizeof(float));
    add_backward(da, 0, w1, 1, dy, y1, n);
    assert_memory_equal(db, da, n * sizeof(float));
    assert_memory_equal(w0, w1, n * sizeof(float));
    free(y0), free(y1), free(g), free(w0), free(w1);
    free(dy), free(da), free(db), free(a0), free(b0);
}

static void test_add_and_bias(void **state) {
    (void)state;
    const size_t M = 301, C = 37, n = M * C; /* sizes off any vector width */
    float *a = fbuf(n), *b = fbuf(n), *y = fbuf(n), *bias = fbuf(C), *db = fbuf(C);
    fill_uniform(a, n, 1);
    fill_uniform(b, n, 2);
    fill_uniform(bias, C, 3);
    add_forward(y, a, b, n);
    for (size_t i = 0; i < n; i++) assert_true(y[i] == a[i] + b[i]);
    add_accumulate(y, a, n);
    for (size_t i = 0; i < n; i++) assert_true(y[i] == (a[i] + b[i]) + a[i]);
    memcpy(y, a, n * sizeof(float));
    add_forward(y, y, b, n); /* y aliases a */
    for (size_t i = 0; i < n; i++) assert_true(y[i] == a[i] + b[i]);
    memcpy(y, b, n * sizeof(float));
    bias_add_forward(y, bias, M, (int)C);
    for (size_t i = 0; i < n; i++) assert_true(y[i] == b[i] + bias[i % C]);
    /* db = column sums (the old contents, NaN, never read); want computed in double */
    for (size_t c = 0; c < C; c++) db[c] = NAN;
    bias_add_backward(db, b, M, (int)C);
    float want[37];
    for (size_t c = 0; c < C; c++) {
        double t = 0.0;
        for (size_t r = 0; r < M; r++) t += b[r * C + c];
        want[c] = (float)t;
    }
    check_close("bias db", db, want, C);
    free(a), free(b), free(y), free(bias), free(db);
}

/* ---- softmax cross-entropy ---------------------------------------------------------------- */

static void run_xent_case(const char *cs) {
    refset s = {0};
    const int32_t *pr = REF_I(&s, cs, "params", 3);
    const int N = pr[0], K = pr[1];
    const float ls = (float)(pr[2] * 1e-6);
    const size_t n = (size_t)N * K;
    const float *logits = REF_F(&s, cs, "logits", n);
    const int32_t *labels = REF_I(&s, cs, "labels", (size_t)N);
    float *probs = fbuf(n), *dl = fbuf(n);
    const float loss = softmax_xent_forward(probs, logits, labels, N, K, ls);
    check_close("xent loss", &loss, REF_F(&s, cs, "loss", 1), 1);
    check_close("xent probs", probs, REF_F(&s, cs, "probs", n), n);
    softmax_xent_backward(dl, probs, labels, N, K, ls, 1.0f);
    const float *want = REF_F(&s, cs, "dlogits", n);
    check_close("xent dlogits", dl, want, n);
    /* scale weights the gradient (inception's auxiliary head uses 0.4) */
    softmax_xent_backward(dl, probs, labels, N, K, ls, 0.4f);
    float *w4 = fbuf(n);
    for (size_t i = 0; i < n; i++) w4[i] = 0.4f * want[i];
    check_close("xent dlogits*0.4", dl, w4, n);
    free(probs), free(dl), free(w4);
    refs_free(&s);
}

static void test_xent_cases(void **state) {
    (void)state;
    run_xent_case("xent_ls");
    run_xent_case("xent_nols");
    run_xent_case("xent_large");
}

/* ---- dropout ------------------------------------------------------------------------------ */

static void test_dropout_keep_rate_and_mask(void **state) {
    (void)state;
    const size_t n = (size_t)1 << 20;
    float *x = fbuf(n), *y = fbuf(n), *dy = fbuf(n), *dx = fbuf(n);
    uint8_t *mask = malloc(n), *mask2 = malloc(n);
    fill_uniform(x, n, 7);
    fill_uniform(dy, n, 8);
    static const float keeps[] = {0.5f, 0.8f, 0.9f};
    for (size_t t = 0; t < SB_ARRAY_LEN(keeps); t++) {
        const float kp = keeps[t];
        dropout_forward(y, mask, x, n, kp, 1234 + t);
        size_t kept = 0;
        for (size_t i = 0; i < n; i++) {
            assert_true(mask[i] <= 1);
            kept += mask[i];
            assert_true(y[i] == (mask[i] ? x[i] * (1.0f / kp) : 0.0f));
        }
        /* binomial: |kept - n p| < 6 sigma fails with probability ~2e-9 for a good hash */
        const double sigma = sqrt((double)n * kp * (1.0 - kp));
        if (fabs((double)kept - (double)n * kp) > 6.0 * sigma)
            fail_msg("keep_prob %.2f: kept %zu of %zu (%.1f sigma)", (double)kp, kept, n,
                     ((double)kept - (double)n * kp) / sigma);
        /* every 64-element stretch has the same statistics (no lane or block pattern) */
        size_t kept_even = 0;
        for (size_t i = 0; i < n; i += 2) kept_even += mask[i];
        assert_true(fabs((double)kept_even - (double)n / 2 * kp) < 6.0 * sigma);
        dropout_backward(dx, dy, mask, n, kp);
        for (size_t i = 0; i < n; i++) assert_true(dx[i] == (mask[i] ? dy[i] * (1.0f / kp) : 0.0f));
        /* same seed replays the mask, another seed gives another one */
        dropout_forward(y, mask2, x, n, kp, 1234 + t);
        assert_memory_equal(mask, mask2, n);
        dropout_forward(y, mask2, x, n, kp, 99 + t);
        size_t same = 0;
        for (size_t i = 0; i < n; i++) same += mask[i] == mask2[i];
        const double p_same = kp * kp + (1.0 - kp) * (1.0 - kp);
        assert_true(fabs((double)same - n * p_same) < 6.0 * sqrt(n * p_same * (1.0 - p_same)));
    }
    /* keep_prob 1 is the identity */
    dropout_forward(y, mask, x, n, 1.0f, 5);
    assert_memory_equal(y, x, n * sizeof(float));
    for (size_t i = 0; i < n; i++) assert_int_equal(mask[i], 1);
    free(x), free(y), free(dy), free(dx), free(mask), free(mask2);
}

/* ---- concat ------------------------------------------------------------------------------- */

static void test_concat_round_trip(void **state) {
    (void)state;
    const size_t M = 23;
    const int cs[3] = {3, 16, 5};
    float *x[3], *dx[3];
    for (int i = 0; i < 3; i++) {
        x[i] = fbuf(M * cs[i]);
        dx[i] = fbuf(M * cs[i]);
        fill_uniform(x[i], M * cs[i], 10 + i);
    }
    float *y = fbuf(M * 24);
    const float *const xs[3] = {x[0], x[1], x[2]};
    concat_forward(y, xs, cs, 3, M);
    for (size_t r = 0; r < M; r++) {
        assert_memory_equal(y + r * 24, x[0] + r * 3, 3 * sizeof(float));
        assert_memory_equal(y + r * 24 + 3, x[1] + r * 16, 16 * sizeof(float));
        assert_memory_equal(y + r * 24 + 19, x[2] + r * 5, 5 * sizeof(float));
    }
    float *const dxs[3] = {dx[0], dx[1], dx[2]};
    concat_backward(dxs, y, cs, 3, M);
    for (int i = 0; i < 3; i++) {
        assert_memory_equal(dx[i], x[i], M * cs[i] * sizeof(float));
        free(x[i]), free(dx[i]);
    }
    free(y);
}

/* ---- thread-count independence ------------------------------------------------------------ */

/* Runs every op of this file on shapes above the parallel thresholds with 1, 2 and 3 threads.
 * Pools, softmax xent and dropout must be bit-identical (the loss sums fixed row blocks, the
 * gathers and window sums run in a fixed order). Batch norm and the bias gradient add per-thread
 * double partials in thread order: bit-identical on a rerun with the same thread count, and
 * equal to float rounding (1e-6 relative) across thread counts. */
typedef struct op_outputs {
    float *bn_y, *bn_mean, *bn_rstd, *bn_mm, *bn_mv, *bn_dx, *bn_dg, *bn_db;
    float *mp_y, *mp_dx, *ap_y, *ap_dx, *gap_y, *bias_db, *xent_p, *xent_dl, *drop_y;
    int32_t *mp_am;
    uint8_t *drop_mask;
    float loss;
} op_outputs;

enum { TM = 4099, TC = 70, TN = 2, TH = 33, TW = 31, TPC = 40, XN = 37, XK = 1001 };

static void run_all_ops(op_outputs *o, const float *x, const float *dy, const int32_t *labels) {
    const bn_param p = {.M = TM, .C = TC, .eps = 1e-3f, .decay = 0.9f};
    const size_t n = (size_t)TM * TC;
    o->bn_y = fbuf(n), o->bn_mean = fbuf(TC), o->bn_rstd = fbuf(TC), o->bn_mm = fbuf(TC);
    o->bn_mv = fbuf(TC), o->bn_dx = fbuf(n), o->bn_dg = fbuf(TC), o->bn_db = fbuf(TC);
    bn_forward_train(o->bn_y, o->bn_mean, o->bn_rstd, o->bn_mm, o->bn_mv, x, x + 5, x + 7, &p);
    bn_backward(o->bn_dx, o->bn_dg, o->bn_db, dy, x, o->bn_mean, o->bn_rstd, x + 5, x + 7, &p);

    pool_shape ps;
    assert_int_equal(pool_shape_init(&ps, TN, TH, TW, TPC, 3, 3, 2, 2, KN_PADDING_SAME), 0);
    const size_t nx = (size_t)TN * TH * TW * TPC, ny = (size_t)TN * ps.OH * ps.OW * TPC;
    o->mp_y = fbuf(ny), o->mp_dx = fbuf(nx), o->ap_y = fbuf(ny), o->ap_dx = fbuf(nx);
    o->mp_am = calloc(ny, sizeof(int32_t));
    maxpool_forward(o->mp_y, o->mp_am, x, &ps);
    maxpool_backward(o->mp_dx, dy, o->mp_am, &ps);
    avgpool_forward(o->ap_y, x, &ps);
    avgpool_backward(o->ap_dx, dy, &ps);
    o->gap_y = fbuf((size_t)TN * TPC);
    global_avgpool_forward(o->gap_y, x, TN, TH * TW, TPC);
    o->bias_db = fbuf(TC);
    bias_add_backward(o->bias_db, dy, TM, TC);
    o->xent_p = fbuf((size_t)XN * XK), o->xent_dl = fbuf((size_t)XN * XK);
    o->loss = softmax_xent_forward(o->xent_p, x, labels, XN, XK, 0.1f);
    softmax_xent_backward(o->xent_dl, o->xent_p, labels, XN, XK, 0.1f, 1.0f);
    o->drop_y = fbuf(n);
    o->drop_mask = malloc(n);
    dropout_forward(o->drop_y, o->drop_mask, x, n, 0.7f, 42);
}

static void free_outputs(op_outputs *o) {
    free(o->bn_y), free(o->bn_mean), free(o->bn_rstd), free(o->bn_mm), free(o->bn_mv);
    free(o->bn_dx), free(o->bn_dg), free(o->bn_db), free(o->mp_y), free(o->mp_dx), free(o->ap_y);
    free(o->ap_dx), free(o->gap_y), free(o->bias_db), free(o->xent_p), free(o->xent_dl);
    free(o->drop_y), free(o->mp_am), free(o->drop_mask);
}

#define SAME_BYTES(a, b, field, count) \
    assert_memory_equal((a)->field, (b)->field, (count) * sizeof(*(a)->field))

static void test_thread_count_determinism(void **state) {
    (void)state;
    const size_t n = (size_t)TM * TC;
    float *x = fbuf(n), *dy = fbuf(n);
    fill_uniform(x, n, 21);
    fill_uniform(dy, n, 22);
    for (size_t i = 0; i < n; i++) x[i] = 3.0f * x[i] + 0.5f;
    int32_t labels[XN];
    for (int i = 0; i < XN; i++) labels[i] = (i * 389) % XK;
    const int saved = omp_get_max_threads();
    op_outputs ref, got;
    omp_set_num_threads(1);
    run_all_ops(&ref, x, dy, labels);
    pool_shape ps;
    assert_int_equal(pool_shape_init(&ps, TN, TH, TW, TPC, 3, 3, 2, 2, KN_PADDING_SAME), 0);
    const size_t nx = (size_t)TN * TH * TW * TPC, ny = (size_t)TN * ps.OH * ps.OW * TPC;
    for (int t = 2; t <= 3; t++) {
        omp_set_num_threads(t);
        run_all_ops(&got, x, dy, labels);
        op_outputs again;
        run_all_ops(&again, x, dy, labels);
        SAME_BYTES(&again, &got, bn_y, n);
        SAME_BYTES(&again, &got, bn_mean, TC);
        SAME_BYTES(&again, &got, bn_rstd, TC);
        SAME_BYTES(&again, &got, bn_dx, n);
        SAME_BYTES(&again, &got, bn_dg, TC);
        SAME_BYTES(&again, &got, bn_db, TC);
        SAME_BYTES(&again, &got, bias_db, TC);
        free_outputs(&again);
        assert_int_equal(tu_allclose("bn y", got.bn_y, ref.bn_y, n, 1e-6, 1e-6), 0);
        assert_int_equal(tu_allclose("bn mean", got.bn_mean, ref.bn_mean, TC, 1e-6, 1e-6), 0);
        assert_int_equal(tu_allclose("bn rstd", got.bn_rstd, ref.bn_rstd, TC, 1e-6, 1e-6), 0);
        assert_int_equal(tu_allclose("bn mm", got.bn_mm, ref.bn_mm, TC, 1e-6, 1e-6), 0);
        assert_int_equal(tu_allclose("bn mv", got.bn_mv, ref.bn_mv, TC, 1e-6, 1e-6), 0);
        assert_int_equal(tu_allclose("bn dx", got.bn_dx, ref.bn_dx, n, 1e-6, 1e-6), 0);
        assert_int_equal(tu_allclose("bn dg", got.bn_dg, ref.bn_dg, TC, 1e-6, 1e-6), 0);
        assert_int_equal(tu_allclose("bn db", got.bn_db, ref.bn_db, TC, 1e-6, 1e-6), 0);
        SAME_BYTES(&ref, &got, mp_y, ny);
        SAME_BYTES(&ref, &got, mp_am, ny);
        SAME_BYTES(&ref, &got, mp_dx, nx);
        SAME_BYTES(&ref, &got, ap_y, ny);
        SAME_BYTES(&ref, &got, ap_dx, nx);
        SAME_BYTES(&ref, &got, gap_y, (size_t)TN * TPC);
        assert_int_equal(tu_allclose("bias db", got.bias_db, ref.bias_db, TC, 1e-6, 1e-6), 0);
        SAME_BYTES(&ref, &got, xent_p, (size_t)XN * XK);
        SAME_BYTES(&ref, &got, xent_dl, (size_t)XN * XK);
        SAME_BYTES(&ref, &got, drop_y, n);
        SAME_BYTES(&ref, &got, drop_mask, n);
        assert_true(memcmp(&ref.loss, &got.loss, sizeof(float)) == 0);
        free_outputs(&got);
    }
    omp_set_num_threads(saved);
    free_outputs(&ref);
    free(x), free(dy);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bn_small),
        cmocka_unit_test(test_bn_tail_offset_mean),
        cmocka_unit_test(test_bn_large_mean),
        cmocka_unit_test(test_bn_null_gamma_beta),
        cmocka_unit_test(test_bn_relu_fused),
        cmocka_unit_test(test_wide_channels),
        cmocka_unit_test(test_pool_cases),
        cmocka_unit_test(test_maxpool_negative_inputs_ignore_padding),
        cmocka_unit_test(test_global_avgpool),
        cmocka_unit_test(test_relu),
        cmocka_unit_test(test_add_and_bias),
        cmocka_unit_test(test_add_backward_modes),
        cmocka_unit_test(test_xent_cases),
        cmocka_unit_test(test_dropout_keep_rate_and_mask),
        cmocka_unit_test(test_concat_round_trip),
        cmocka_unit_test(test_thread_count_determinism),
    };
    return cmocka_run_group_tests_name("kernels_ops", tests, NULL, NULL);
}
