/* tests/test_kernels_conv.c — convolution and fully-connected layers against PyTorch's vectors
 * (tests/reference, gen_kernels.py): forward output, dx, dw and db for stride 2, SAME with odd
 * and even sizes (asymmetric padding), 1x1 (stride 1 and 2), 7x7, 1x7 / 7x1, VALID with IC = 17,
 * batch > 1, non-square inputs, with and without bias. Also the API's contract that dx, dw and
 * db are overwritten (their old contents, NaN, never read). Both the naive conv2d_*_ref and the
 * fast conv2d_* are checked, and the fast conv is compared with the reference on tail shapes; a
 * 1x1 backward filter too big for the reference (the big-dW pixel split) against dot products in
 * double.
 *
 * Tolerance: |got - want| <= atol + 1e-4 * |want|, atol = 1e-5 * max|want|. The references are
 * float64 results rounded once. conv2d_*_ref sums in double, so only its final rounding is left;
 * the fast conv and fc sum in float over at most a few hundred terms here, whose rounding error
 * (~sqrt(terms) ulps of the tensor's scale, ~1e-6 relative) stays far inside atol. */
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

typedef struct refset {
    tu_ref r[16];
    int n;
} refset;

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

static void check_close(const char *what, const float *got, const float *want, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)want[i]));
    if (tu_allclose(what, got, want, n, ATOL_SCALE * m + 1e-30, RTOL) != 0)
        fail_msg("%s differs", what);
}

static float *fbuf(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    assert_non_null(p);
    return p;
}

/* One implementation of the three conv passes (the _ref functions, or the fast ones). */
typedef struct conv_impl {
    const char *name;
    void (*fwd)(float *, const float *, const float *, const float *, const conv2d_shape *, void *);
    void (*bwd_data)(float *, const float *, const float *, const conv2d_shape *, void *);
    void (*bwd_filter)(float *, float *, const float *, const float *, const conv2d_shape *,
                       void *);
    int uses_ws;
} conv_impl;

static const conv_impl conv_impls[] = {
    {"conv2d_ref", conv2d_forward_ref, conv2d_backward_data_ref, conv2d_backward_filter_ref, 0},
    {"conv2d", conv2d_forward, conv2d_backward_data, conv2d_backward_filter, 1},
};

static const char *const conv_cases[] = {
    "conv_s2_same_odd", "conv_1x1", "conv_1x1_s2",     "conv_7x7_s2",
    "conv_1x7",         "conv_7x1", "conv_valid_tail", "conv_s2_same_even",
    /* 3 -> 64 channels: the direct forward and the dot-product backward data */
    "conv_stem_3x3",    "conv_stem_7x7_s2",
};

static void run_conv_case(const conv_impl *im, const char *cs) {
    refset s = {0};
    const int32_t *p = REF_I(&s, cs, "params", 11);
    conv2d_shape sh;
    assert_int_equal(conv2d_shape_init(&sh, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8],
                                       p[9] ? KN_PADDING_VALID : KN_PADDING_SAME, 0, 0, 0, 0),
                     0);
    const int has_bias = p[10];
    const size_t nx = (size_t)sh.N * sh.IH * sh.IW * sh.IC;
    const size_t nw = (size_t)sh.KH * sh.KW * sh.IC * sh.OC;
    const size_t ny = (size_t)sh.N * sh.OH * sh.OW * sh.OC;
    const float *x = REF_F(&s, cs, "x", nx), *w = REF_F(&s, cs, "w", nw);
    const float *dy = REF_F(&s, cs, "dy", ny);
    const float *b = has_bias ? REF_F(&s, cs, "b", (size_t)sh.OC) : NULL;
    void *ws = NULL;
    if (im->uses_ws) {
        const size_t wsz = conv2d_workspace_size(&sh);
        ws = wsz ? sb_aligned_alloc(wsz) : NULL;
    }
    float *y = fbuf(ny), *dx = fbuf(nx), *dw = fbuf(nw), *dw2 = fbuf(nw), *db = fbuf(sh.OC);
    float *db2 = fbuf(sh.OC);
    char what[200];

    for (size_t i = 0; i < ny; i++) y[i] = NAN; /* overwritten, old contents ignored */
    im->fwd(y, x, w, b, &sh, ws);
    snprintf(what, sizeof what, "%s %s y", im->name, cs);
    check_close(what, y, REF_F(&s, cs, "y", ny), ny);

    for (size_t i = 0; i < nx; i++) dx[i] = NAN;
    im->bwd_data(dx, dy, w, &sh, ws);
    snprintf(what, sizeof what, "%s %s dx", im->name, cs);
    check_close(what, dx, REF_F(&s, cs, "dx", nx), nx);

    for (size_t i = 0; i < nw; i++) dw[i] = NAN; /* overwritten too */
    for (int i = 0; i < sh.OC; i++) db[i] = NAN;
    im->bwd_filter(dw, has_bias ? db : NULL, dy, x, &sh, ws);
    snprintf(what, sizeof what, "%s %s dw", im->name, cs);
    check_close(what, dw, REF_F(&s, cs, "dw", nw), nw);
    if (has_bias) {
        snprintf(what, sizeof what, "%s %s db", im->name, cs);
        check_close(what, db, REF_F(&s, cs, "db", (size_t)sh.OC), (size_t)sh.OC);
    }
    /* and do not depend on the old contents: a second call into the result gives it again */
    memcpy(dw2, dw, nw * sizeof(float));
    memcpy(db2, db, (size_t)sh.OC * sizeof(float));
    im->bwd_filter(dw2, has_bias ? db2 : NULL, dy, x, &sh, ws);
    snprintf(what, sizeof what, "%s %s dw written over itself", im->name, cs);
    check_close(what, dw2, dw, nw);
    if (has_bias) {
        snprintf(what, sizeof what, "%s %s db written over itself", im->name, cs);
        check_close(what, db2, db, (size_t)sh.OC);
    }

    free(y), free(dx), free(dw), free(dw2), free(db), free(db2);
    sb_aligned_free(ws);
    refs_free(&s);
}

static void test_conv_vs_pytorch(void **state) {
    (void)state;
    for (size_t i = 0; i < SB_ARRAY_LEN(conv_impls); i++)
        for (size_t c = 0; c < SB_ARRAY_LEN(conv_cases); c++)
            run_conv_case(&conv_impls[i], conv_cases[c]);
}

/* The FC reference through the conv reference (an FC layer is a 1x1 convolution on a 1x1
 * image): checks the vectors and the HWIO = (IC, OC) weight layout agreement. */
static void test_fc_vectors_via_conv_ref(void **state) {
    (void)state;
    refset s = {0};
    const int32_t *p = REF_I(&s, "fc", "params", 3);
    const int N = p[0], IC = p[1], OC = p[2];
    conv2d_shape sh;
    assert_int_equal(
        conv2d_shape_init(&sh, N, 1, 1, IC, OC, 1, 1, 1, 1, KN_PADDING_VALID, 0, 0, 0, 0), 0);
    const float *x = REF_F(&s, "fc", "x", (size_t)N * IC);
    const float *w = REF_F(&s, "fc", "w", (size_t)IC * OC);
    const float *b = REF_F(&s, "fc", "b", (size_t)OC), *dy = REF_F(&s, "fc", "dy", (size_t)N * OC);
    float *y = fbuf((size_t)N * OC), *dx = fbuf((size_t)N * IC), *dw = fbuf((size_t)IC * OC);
    float *db = fbuf((size_t)OC);
    conv2d_forward_ref(y, x, w, b, &sh, NULL);
    check_close("fc (conv_ref) y", y, REF_F(&s, "fc", "y", (size_t)N * OC), (size_t)N * OC);
    conv2d_backward_data_ref(dx, dy, w, &sh, NULL);
    check_close("fc (conv_ref) dx", dx, REF_F(&s, "fc", "dx", (size_t)N * IC), (size_t)N * IC);
    conv2d_backward_filter_ref(dw, db, dy, x, &sh, NULL);
    check_close("fc (conv_ref) dw", dw, REF_F(&s, "fc", "dw", (size_t)IC * OC), (size_t)IC * OC);
    check_close("fc (conv_ref) db", db, REF_F(&s, "fc", "db", (size_t)OC), (size_t)OC);
    free(y), free(dx), free(dw), free(db);
    refs_free(&s);
}

/* fc_forward / fc_backward against the FC vectors: dx, dw and db overwritten (dx skipped when
 * NULL). */
static void test_fc_vs_pytorch(void **state) {
    (void)state;
    refset s = {0};
    const int32_t *p = REF_I(&s, "fc", "params", 3);
    const int N = p[0], IC = p[1], OC = p[2];
    const size_t nx = (size_t)N * IC, nw = (size_t)IC * OC, ny = (size_t)N * OC;
    const float *x = REF_F(&s, "fc", "x", nx), *w = REF_F(&s, "fc", "w", nw);
    const float *b = REF_F(&s, "fc", "b", (size_t)OC), *dy = REF_F(&s, "fc", "dy", ny);
    const float *want_dw = REF_F(&s, "fc", "dw", nw), *want_db = REF_F(&s, "fc", "db", (size_t)OC);
    float *y = fbuf(ny), *dx = fbuf(nx), *dw = fbuf(nw), *db = fbuf((size_t)OC);
    float *w2 = fbuf(nw), *b2 = fbuf((size_t)OC);
    const size_t wsz = fc_workspace_size(N, IC, OC);
    void *ws = wsz ? sb_aligned_alloc(wsz) : NULL;
    for (size_t i = 0; i < ny; i++) y[i] = NAN;
    fc_forward(y, x, w, b, N, IC, OC, ws);
    check_close("fc y", y, REF_F(&s, "fc", "y", ny), ny);
    for (size_t i = 0; i < nx; i++) dx[i] = NAN;
    for (size_t i = 0; i < nw; i++) dw[i] = NAN;
    for (int i = 0; i < OC; i++) db[i] = NAN;
    fc_backward(dx, dw, db, dy, x, w, N, IC, OC, ws);
    check_close("fc dx", dx, REF_F(&s, "fc", "dx", nx), nx);
    check_close("fc dw", dw, want_dw, nw);
    check_close("fc db", db, want_db, (size_t)OC);
    /* second call without dx, into buffers holding other values: the same dw and db */
    for (size_t i = 0; i < nw; i++) w2[i] = 1.0f;
    for (int i = 0; i < OC; i++) b2[i] = -1.0f;
    fc_backward(NULL, w2, b2, dy, x, w, N, IC, OC, ws);
    check_close("fc dw, second call", w2, want_dw, nw);
    check_close("fc db, second call", b2, want_db, (size_t)OC);
    sb_aligned_free(ws);
    free(y), free(dx), free(dw), free(db), free(w2), free(b2);
    refs_free(&s);
}

/* Deterministic pseudo-random floats in [-1, 1). */
static void fill_uniform(float *a, size_t n, uint64_t seed) {
    uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        a[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
}

/* Fast conv against conv2d_*_ref on tail shapes: IC and OC off multiples of 16, odd H/W,
 * stride 2, SAME and explicit padding, 1x1 (stride 1 and 2), 1x7/7x1, 7x7, channel counts that
 * straddle the GEMM blocking. The _ref passes sum in double; the fast ones in float over up to
 * KH*KW*IC (forward, dx: KH*KW*OC) or N*OH*OW (dw) terms, whose rounding stays within 1e-4
 * relative of the tensor's scale for these sizes. */
typedef struct tail_case {
    int N, IH, IW, IC, OC, KH, KW, SH, SW;
    kn_padding pad;
    int PT, PL, PB, PR, bias;
} tail_case;

static const tail_case tail_cases[] = {
    {2, 9, 7, 19, 13, 3, 3, 1, 1, KN_PADDING_SAME, 0, 0, 0, 0, 1},
    {1, 11, 10, 5, 33, 3, 3, 2, 2, KN_PADDING_SAME, 0, 0, 0, 0, 1},
    {3, 7, 7, 35, 17, 1, 1, 1, 1, KN_PADDING_SAME, 0, 0, 0, 0, 0},
    {2, 8, 9, 6, 20, 1, 1, 2, 2, KN_PADDING_SAME, 0, 0, 0, 0, 1},
    {1, 15, 13, 3, 16, 7, 7, 2, 2, KN_PADDING_SAME, 0, 0, 0, 0, 0},
    {1, 9, 9, 17, 9, 1, 7, 1, 1, KN_PADDING_SAME, 0, 0, 0, 0, 1},
    {1, 9, 9, 17, 9, 7, 1, 1, 1, KN_PADDING_SAME, 0, 0, 0, 0, 0},
    {2, 6, 5, 16, 16, 3, 3, 1, 1, KN_PADDING_VALID, 0, 0, 0, 0, 1},
    {1, 8, 8, 33, 65, 3, 3, 2, 2, KN_PADDING_EXPLICIT, 1, 1, 1, 1, 0}, /* slim conv2d_same */
    {2, 8, 8, 64, 64, 3, 3, 1, 1, KN_PADDING_SAME, 0, 0, 0, 0, 1},
    {1, 5, 6, 1, 1, 3, 3, 2, 2, KN_PADDING_SAME, 0, 0, 0, 0, 1},
    {1, 12, 11, 3, 8, 5, 5, 3, 3, KN_PADDING_SAME, 0, 0, 0, 0, 1},
    /* dW over 64K floats: threads split dW, X_col^T packed a pixel at a time — blocks that
     * start mid-tap and span taps (IC 40), that lie in one window row or one tap (IC 160, at
     * the image edge and inside), a strided 1x1 */
    {1, 9, 8, 40, 200, 3, 3, 2, 2, KN_PADDING_SAME, 0, 0, 0, 0, 1},
    {2, 6, 7, 160, 50, 3, 3, 1, 1, KN_PADDING_SAME, 0, 0, 0, 0, 0},
    {1, 5, 5, 300, 256, 1, 1, 2, 2, KN_PADDING_SAME, 0, 0, 0, 0, 1},
    /* rows of 14 to 45 output pixels, several micro-panels each, whose segment lists are one
     * list moved along the row (stride 1 and 2, merged taps with 3 channels); the first layers'
     * shapes (3 channels in, 64 out) */
    {2, 7, 45, 3, 64, 3, 3, 1, 1, KN_PADDING_SAME, 0, 0, 0, 0, 1},
    {1, 9, 40, 3, 64, 7, 7, 2, 2, KN_PADDING_SAME, 0, 0, 0, 0, 0},
    {1, 4, 31, 24, 20, 3, 3, 1, 1, KN_PADDING_SAME, 0, 0, 0, 0, 0},
    {1, 5, 50, 8, 70, 5, 5, 1, 1, KN_PADDING_VALID, 0, 0, 0, 0, 1},
    {1, 4, 30, 40, 24, 3, 3, 1, 1, KN_PADDING_SAME, 0, 0, 0, 0, 0},
    {1, 6, 38, 40, 16, 3, 3, 2, 2, KN_PADDING_SAME, 0, 0, 0, 0, 0},
    /* the direct forward of few-channel inputs (conv2d_direct.c): the resnet stem's explicit
     * pad 3 at 7x7/2, asymmetric SAME (even size, stride 2), VALID leaving the last input
     * column unread, one and four channels, rows narrower than a tile, two channel blocks */
    {2, 11, 20, 3, 64, 7, 7, 2, 2, KN_PADDING_EXPLICIT, 3, 3, 3, 3, 1},
    {1, 8, 8, 3, 64, 3, 3, 2, 2, KN_PADDING_SAME, 0, 0, 0, 0, 0},
    {1, 9, 18, 4, 128, 3, 3, 2, 2, KN_PADDING_VALID, 0, 0, 0, 0, 1},
    {1, 6, 13, 1, 64, 5, 5, 1, 1, KN_PADDING_SAME, 0, 0, 0, 0, 0},
    {3, 5, 4, 2, 64, 3, 3, 1, 1, KN_PADDING_SAME, 0, 0, 0, 0, 1},
    /* y (forward, with bias) and dx (1x1 backward data, K = OC = 32) over the engine's 16 MB
     * threshold for non-temporal C stores */
    {1, 130, 128, 3, 256, 3, 3, 1, 1, KN_PADDING_SAME, 0, 0, 0, 0, 1},
    {1, 130, 128, 256, 32, 1, 1, 1, 1, KN_PADDING_SAME, 0, 0, 0, 0, 0},
};

static void test_conv_fast_vs_ref_tails(void **state) {
    (void)state;
    for (size_t t = 0; t < SB_ARRAY_LEN(tail_cases); t++) {
        const tail_case *tc = &tail_cases[t];
        conv2d_shape sh;
        assert_int_equal(conv2d_shape_init(&sh, tc->N, tc->IH, tc->IW, tc->IC, tc->OC, tc->KH,
                                           tc->KW, tc->SH, tc->SW, tc->pad, tc->PT, tc->PL, tc->PB,
                                           tc->PR),
                         0);
        const size_t nx = (size_t)sh.N * sh.IH * sh.IW * sh.IC;
        const size_t nw = (size_t)sh.KH * sh.KW * sh.IC * sh.OC;
        const size_t ny = (size_t)sh.N * sh.OH * sh.OW * sh.OC;
        float *x = fbuf(nx), *w = fbuf(nw), *b = fbuf(sh.OC), *dy = fbuf(ny);
        /* the fast passes' outputs 64-byte aligned, as the layers allocate them (the engine
         * stores C non-temporally only into whole cache lines) */
        float *y0 = fbuf(ny), *y1 = sb_aligned_alloc(ny * sizeof(float));
        float *dx0 = fbuf(nx), *dx1 = sb_aligned_alloc(nx * sizeof(float));
        float *dw0 = fbuf(nw), *dw1 = fbuf(nw), *db0 = fbuf(sh.OC), *db1 = fbuf(sh.OC);
        fill_uniform(x, nx, 100 + t);
        fill_uniform(w, nw, 200 + t);
        fill_uniform(b, (size_t)sh.OC, 300 + t);
        fill_uniform(dy, ny, 400 + t);
        const size_t wsz = conv2d_workspace_size(&sh);
        void *ws = wsz ? sb_aligned_alloc(wsz) : NULL;
        const float *bias = tc->bias ? b : NULL;
        char what[160];
#define TAIL_WHAT(op)                                                                        \
    (snprintf(what, sizeof what, "conv2d %s N%d %dx%d IC%d OC%d k%dx%d s%d pad%d", op, sh.N, \
              sh.IH, sh.IW, sh.IC, sh.OC, sh.KH, sh.KW, sh.SH, (int)tc->pad),                \
     what)
        conv2d_forward_ref(y0, x, w, bias, &sh, NULL);
        for (size_t i = 0; i < ny; i++) y1[i] = NAN;
        conv2d_forward(y1, x, w, bias, &sh, ws);
        check_close(TAIL_WHAT("y"), y1, y0, ny);
        conv2d_backward_data_ref(dx0, dy, w, &sh, NULL);
        for (size_t i = 0; i < nx; i++) dx1[i] = NAN;
        conv2d_backward_data(dx1, dy, w, &sh, ws);
        check_close(TAIL_WHAT("dx"), dx1, dx0, nx);
        /* dw/db overwritten: the old contents (NaN here) are never read */
        for (size_t i = 0; i < nw; i++) dw0[i] = dw1[i] = NAN;
        for (int i = 0; i < sh.OC; i++) db0[i] = db1[i] = NAN;
        conv2d_backward_filter_ref(dw0, tc->bias ? db0 : NULL, dy, x, &sh, NULL);
        conv2d_backward_filter(dw1, tc->bias ? db1 : NULL, dy, x, &sh, ws);
        check_close(TAIL_WHAT("dw"), dw1, dw0, nw);
        if (tc->bias) check_close(TAIL_WHAT("db"), db1, db0, (size_t)sh.OC);
#undef TAIL_WHAT
        sb_aligned_free(ws);
        sb_aligned_free(y1), sb_aligned_free(dx1);
        free(x), free(w), free(b), free(dy), free(y0), free(dx0);
        free(dw0), free(dw1), free(db0), free(db1);
    }
}

/* n entries of dW (IC x OC) = x^T dy from (i, j) in steps (di, dj) against dot products in
 * double over the P pixels (x: P x IC, dy: P x OC); got and want hold n floats. */
static void check_dw_line(const char *what, const float *dw, const float *x, const float *dy,
                          size_t P, size_t IC, size_t OC, size_t i, size_t j, size_t di,
                          size_t dj, size_t n, float *got, float *want) {
    for (size_t e = 0; e < n; e++, i += di, j += dj) {
        double acc = 0.0;
        for (size_t p = 0; p < P; p++) acc += (double)x[p * IC + i] * dy[p * OC + j];
        got[e] = dw[i * OC + j], want[e] = (float)acc;
    }
    check_close(what, got, want, n);
}

/* A 1x1 layer's dW of 64K-256K floats with at least 8192 pixels per thread (two threads) is a
 * split reduction like the small ones (conv2d.c, CV_PARTIAL_BIG): too big for the naive
 * reference, so whole rows and columns of dW (and db) are checked against dot products in
 * double. */
static void test_conv_bwf_big_1x1(void **state) {
    (void)state;
    const int saved_threads = omp_get_max_threads();
    omp_set_num_threads(2);
    conv2d_shape sh;
    assert_int_equal(conv2d_shape_init(&sh, 1, 130, 128, 72, 1000, 1, 1, 1, 1,
                                       KN_PADDING_SAME, 0, 0, 0, 0),
                     0);
    const size_t P = (size_t)sh.N * sh.OH * sh.OW, IC = (size_t)sh.IC, OC = (size_t)sh.OC;
    assert_true(IC * OC > (1 << 16) && P >= 2 * 8192);
    float *x = fbuf(P * IC), *dy = fbuf(P * OC), *dw = fbuf(IC * OC), *db = fbuf(OC);
    fill_uniform(x, P * IC, 11);
    fill_uniform(dy, P * OC, 12);
    const size_t wsz = conv2d_workspace_size(&sh);
    void *ws = sb_aligned_alloc(wsz);
    conv2d_backward_filter(dw, db, dy, x, &sh, ws);
    const int rows[] = {0, 1, 35, 71}, cols[] = {0, 500, 999};
    float *got = fbuf(OC), *want = fbuf(OC);
    char what[64];
    for (size_t r = 0; r < SB_ARRAY_LEN(rows); r++) { /* dW row i: every output channel */
        snprintf(what, sizeof what, "big 1x1 dw row %d", rows[r]);
        check_dw_line(what, dw, x, dy, P, IC, OC, (size_t)rows[r], 0, 0, 1, OC, got, want);
    }
    for (size_t c = 0; c < SB_ARRAY_LEN(cols); c++) { /* dW column j: every input channel */
        snprintf(what, sizeof what, "big 1x1 dw column %d", cols[c]);
        check_dw_line(what, dw, x, dy, P, IC, OC, 0, (size_t)cols[c], 1, 0, IC, got, want);
    }
    for (size_t j = 0; j < OC; j++) {
        double acc = 0.0;
        for (size_t p = 0; p < P; p++) acc += dy[p * OC + j];
        want[j] = (float)acc;
    }
    check_close("big 1x1 db", db, want, OC);
    sb_aligned_free(ws);
    free(x), free(dy), free(dw), free(db), free(got), free(want);
    omp_set_num_threads(saved_threads);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_vs_pytorch),
        cmocka_unit_test(test_fc_vectors_via_conv_ref),
        cmocka_unit_test(test_fc_vs_pytorch),
        cmocka_unit_test(test_conv_fast_vs_ref_tails),
        cmocka_unit_test(test_conv_bwf_big_1x1),
    };
    return cmocka_run_group_tests_name("kernels_conv", tests, NULL, NULL);
}
