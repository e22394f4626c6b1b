/* tests/test_gemm.c — the blocked GEMM engine against naive oracles: sgemm vs sgemm_ref on
 * shapes that hit every tail (M % MR, N % NR, K % KC, N > NC), all transposes, padded leading
 * dimensions, alpha/beta (beta = 0 must ignore NaNs in C); fc forward/backward; and the fast
 * convolutions (forward, backward data, backward filter; dW/db overwritten) against a
 * double-precision direct convolution written here, on stride/padding/tail shapes. The
 * PyTorch-vector checks of the same ops live in the kernel tests of tests/test_kernels_*.c. */
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
#include "kernels/kernels_impl.h"
#include "tests/support/testutil.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static float frand(void) { /* uniform in [-1, 1), fixed sequence */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (2.0 / 16777216.0) - 1.0);
}

static float *rand_buf(size_t n) {
    float *p = sb_xmalloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) p[i] = frand();
    return p;
}

static void *ws_alloc(size_t n) { return sb_aligned_alloc(n ? n : 64); }

/* One sgemm case: fast and ref from the same C, compared with a K-scaled tolerance. */
static size_t check_sgemm(int ta, int tb, int M, int N, int K, float alpha, float beta, int pad,
                          int nan_c) {
    const int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    float *A = rand_buf((size_t)(ta ? K : M) * lda);
    float *B = rand_buf((size_t)(tb ? N : K) * ldb);
    float *C0 = rand_buf((size_t)M * ldc);
    if (nan_c)
        for (size_t i = 0; i < (size_t)M * ldc; i++) C0[i] = NAN;
    float *C1 = sb_xmalloc(sizeof(float) * (size_t)M * ldc);
    float *C2 = sb_xmalloc(sizeof(float) * (size_t)M * ldc);
    memcpy(C1, C0, sizeof(float) * (size_t)M * ldc);
    memcpy(C2, C0, sizeof(float) * (size_t)M * ldc);
    void *ws = ws_alloc(sgemm_workspace_size(M, N, K));
    sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C1, ldc, ws);
    sgemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C2, ldc, NULL);
    char what[128];
    snprintf(what, sizeof what, "sgemm ta=%d tb=%d M=%d N=%d K=%d alpha=%g beta=%g pad=%d", ta, tb,
             M, N, K, alpha, beta, pad);
    size_t bad = 0;
    for (int i = 0; i < M; i++)
        bad += tu_allclose(what, C1 + (size_t)i * ldc, C2 + (size_t)i * ldc, (size_t)N,
                           1e-5 * (K + 1), 1e-4);
    /* padding columns of C are never touched */
    for (int i = 0; i < M && pad; i++)
        for (int j = N; j < ldc; j++)
            if (memcmp(&C1[(size_t)i * ldc + j], &C0[(size_t)i * ldc + j], sizeof(float))) bad++;
    sb_aligned_free(ws);
    free(A), free(B), free(C0), free(C1), free(C2);
    return bad;
}

static void test_sgemm_shapes(void **state) {
    (void)state;
    static const int Ms[] = {1, 5, 6, 7, 13, 64, 97, KN_MC + 7}; /* the last: several MC blocks */
    static const int Ns[] = {1, 8, 15, 16, 64, 65, 130};
    static const int Ks[] = {1, 3, 64, 257, 600};
    size_t bad = 0;
    for (size_t a = 0; a < SB_ARRAY_LEN(Ms); a++)
        for (size_t b = 0; b < SB_ARRAY_LEN(Ns); b++)
            for (size_t c = 0; c < SB_ARRAY_LEN(Ks); c++)
                for (int t = 0; t < 4; t++)
                    bad += check_sgemm(t & 1, t >> 1, Ms[a], Ns[b], Ks[c], 1.0f, 0.0f, 0, 0);
    assert_int_equal(bad, 0);
}

/* The MC block height from the L2 size: a multiple of MR in [2 MR, KN_MC]; the A and C blocks
 * (MC x (KC + NC) floats) within KN_L2_SHARE of L2, and the largest such height; KN_MC when
 * the size is unknown. A 512 KB L2 (Zen 3) must get fewer rows than KN_MC: the 144 rows tuned
 * on larger L2s measured 1.05-1.16x slower there. */
static void test_block_rows_from_l2(void **state) {
    (void)state;
    assert_int_equal(kn_block_rows_for_l2(0), KN_MC);
    assert_int_equal(kn_block_rows_for_l2(-1), KN_MC);
    assert_int_equal(kn_block_rows_for_l2(1 << 14), 2 * KN_MR);
    const double row_bytes = sizeof(float) * (double)(KN_KC + KN_NC);
    int prev = 0;
    for (long l2 = 64 << 10; l2 <= 32L << 20; l2 *= 2) {
        const int mc = kn_block_rows_for_l2(l2);
        assert_true(mc % KN_MR == 0 && mc >= 2 * KN_MR && mc <= KN_MC);
        assert_true(mc >= prev); /* more L2, no fewer rows */
        if (mc > 2 * KN_MR) assert_true(mc * row_bytes <= KN_L2_SHARE * l2);
        if (mc < KN_MC) assert_true((mc + KN_MR) * row_bytes > KN_L2_SHARE * l2);
        prev = mc;
    }
    assert_true(kn_block_rows_for_l2(512 << 10) < KN_MC);
    assert_int_equal(kn_block_rows_for_l2(32L << 20), KN_MC);
    const int here = kn_block_rows();
    assert_true(here % KN_MR == 0 && here >= 2 * KN_MR && here <= KN_MC);
}

static void test_sgemm_alpha_beta_nan_pad(void **state) {
    (void)state;
    size_t bad = 0;
    for (int t = 0; t < 4; t++) {
        bad += check_sgemm(t & 1, t >> 1, 37, 75, 70, 1.0f, 0.0f, 3, 1);   /* NaN C, beta 0 */
        bad += check_sgemm(t & 1, t >> 1, 37, 75, 70, 0.5f, 1.0f, 5, 0);
        bad += check_sgemm(t & 1, t >> 1, 12, 200, 300, -1.5f, -0.7f, 1, 0);
        bad += check_sgemm(t & 1, t >> 1, 20, 33, 9, 0.0f, 2.0f, 0, 0);    /* alpha 0 */
        bad += check_sgemm(t & 1, t >> 1, 9, 17, 0, 1.0f, 0.0f, 2, 1);     /* K = 0 */
    }
    /* N > NC and M large enough that every thread gets several panels */
    bad += check_sgemm(0, 0, 150, 1100, 40, 1.0f, 0.0f, 0, 1);
    bad += check_sgemm(1, 1, 150, 600, 40, 1.0f, 0.5f, 0, 0);
    /* several packed K chunks: 512 rows at full NC width, more for a narrow last NC block, and
     * two 4096-row chunks for a single 64-wide panel */
    bad += check_sgemm(0, 0, 40, 700, 1300, 1.0f, 0.5f, 0, 0);
    bad += check_sgemm(1, 0, 30, 64, 4500, 1.0f, 0.0f, 0, 0);
    /* a remainder of at most NC/4 columns joins the last NC block (one block of 576 or 640 with
     * AVX-512's NC = 512, chunked over K), one column more does not */
    bad += check_sgemm(0, 0, 50, 576, 1100, 1.0f, 0.5f, 0, 0);
    bad += check_sgemm(1, 1, 50, 640, 700, 1.0f, 0.0f, 0, 1);
    bad += check_sgemm(0, 1, 20, 641, 300, 1.0f, 1.0f, 0, 0);
    /* one K block into a C that is read (the fully connected backward filter): tiles along the
     * rows, each thread's rows across all 1100 columns at once (enough rows that the threads
     * split M), with a ragged last panel */
    for (int t = 0; t < 4; t++) bad += check_sgemm(t & 1, t >> 1, 1500, 1100, 32, 1.0f, 0.5f, 2, 0);
    assert_int_equal(bad, 0);
}

static void test_sgemm_deterministic(void **state) {
    (void)state;
    const int M = 200, N = 130, K = 700;
    float *A = rand_buf((size_t)M * K), *B = rand_buf((size_t)K * N);
    float *C1 = sb_xmalloc(sizeof(float) * M * N), *C2 = sb_xmalloc(sizeof(float) * M * N);
    void *ws = ws_alloc(sgemm_workspace_size(M, N, K));
    sgemm(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C1, N, ws);
    sgemm(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C2, N, ws);
    assert_memory_equal(C1, C2, sizeof(float) * M * N);
    sb_aligned_free(ws);
    free(A), free(B), free(C1), free(C2);
}

static void test_fc(void **state) {
    (void)state;
    static const int shapes[][3] = {{32, 100, 10}, {3, 70, 130}, {32, 4096, 1000}, {1, 5, 3}};
    for (size_t t = 0; t < SB_ARRAY_LEN(shapes); t++) {
        const int N = shapes[t][0], IC = shapes[t][1], OC = shapes[t][2];
        float *x = rand_buf((size_t)N * IC), *w = rand_buf((size_t)IC * OC), *b = rand_buf(OC);
        float *dy = rand_buf((size_t)N * OC);
        float *y = sb_xmalloc(sizeof(float) * N * OC), *yr = sb_xmalloc(sizeof(float) * N * OC);
        float *dx = sb_xmalloc(sizeof(float) * N * IC), *dxr = sb_xmalloc(sizeof(float) * N * IC);
        float *dw = sb_xmalloc(sizeof(float) * IC * OC), *dwr = sb_xmalloc(sizeof(float) * IC * OC);
        float *db = sb_xmalloc(sizeof(float) * OC), *dbr = sb_xmalloc(sizeof(float) * OC);
        /* every output overwritten: NaN in, never read */
        for (int i = 0; i < N * IC; i++) dx[i] = NAN;
        for (int i = 0; i < IC * OC; i++) dw[i] = NAN;
        for (int i = 0; i < OC; i++) db[i] = NAN;
        void *ws = ws_alloc(fc_workspace_size(N, IC, OC));
        fc_forward(y, x, w, b, N, IC, OC, ws);
        fc_backward(dx, dw, db, dy, x, w, N, IC, OC, ws);
        sgemm_ref(0, 0, N, OC, IC, 1.0f, x, IC, w, OC, 0.0f, yr, OC, NULL);
        for (int n = 0; n < N; n++)
            for (int j = 0; j < OC; j++) yr[n * OC + j] += b[j];
        sgemm_ref(0, 1, N, IC, OC, 1.0f, dy, OC, w, OC, 0.0f, dxr, IC, NULL);
        sgemm_ref(1, 0, IC, OC, N, 1.0f, x, IC, dy, OC, 0.0f, dwr, OC, NULL);
        for (int j = 0; j < OC; j++) dbr[j] = 0.0f;
        for (int n = 0; n < N; n++)
            for (int j = 0; j < OC; j++) dbr[j] += dy[n * OC + j];
        const double tol = 1e-5 * (IC + OC + N);
        size_t bad = tu_allclose("fc y", y, yr, (size_t)N * OC, tol, 1e-4) +
                     tu_allclose("fc dx", dx, dxr, (size_t)N * IC, tol, 1e-4) +
                     tu_allclose("fc dw", dw, dwr, (size_t)IC * OC, tol, 1e-4) +
                     tu_allclose("fc db", db, dbr, (size_t)OC, tol, 1e-4);
        assert_int_equal(bad, 0);
        fc_backward(NULL, dw, NULL, dy, x, w, N, IC, OC, ws); /* dx and db are optional */
        sb_aligned_free(ws);
        free(x), free(w), free(b), free(dy), free(y), free(yr), free(dx), free(dxr);
        free(dw), free(dwr), free(db), free(dbr);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Convolution against a direct double-precision loop nest.                                   */
/* ------------------------------------------------------------------------------------------ */
static void naive_conv(const conv2d_shape *s, const float *x, const float *w, const float *b,
                       const float *dy, float *y, float *dx, float *dw, float *db) {
    const int N = s->N, IH = s->IH, IW = s->IW, IC = s->IC, OC = s->OC;
    double *ddx = calloc((size_t)N * IH * IW * IC, sizeof(double));
    double *ddw = calloc((size_t)s->KH * s->KW * IC * OC, sizeof(double));
    for (int n = 0; n < N; n++)
        for (int oh = 0; oh < s->OH; oh++)
            for (int ow = 0; ow < s->OW; ow++)
                for (int oc = 0; oc < OC; oc++) {
                    double acc = b ? b[oc] : 0.0;
                    const double g = dy[(((size_t)n * s->OH + oh) * s->OW + ow) * OC + oc];
                    for (int kh = 0; kh < s->KH; kh++)
                        for (int kw = 0; kw < s->KW; kw++) {
                            const int ih = oh * s->SH - s->PT + kh, iw = ow * s->SW - s->PL + kw;
                            if (ih < 0 || ih >= IH || iw < 0 || iw >= IW) continue;
                            for (int ic = 0; ic < IC; ic++) {
                                const size_t xi = (((size_t)n * IH + ih) * IW + iw) * IC + ic;
                                const size_t wi = (((size_t)kh * s->KW + kw) * IC + ic) * OC + oc;
                                acc += (double)x[xi] * w[wi];
                                ddx[xi] += g * w[wi];
                                ddw[wi] += g * x[xi];
                            }
                        }
                    y[(((size_t)n * s->OH + oh) * s->OW + ow) * OC + oc] = (float)acc;
                    db[oc] += (float)g; /* db zeroed by the caller */
                }
    for (size_t i = 0; i < (size_t)N * IH * IW * IC; i++) dx[i] = (float)ddx[i];
    for (size_t i = 0; i < (size_t)s->KH * s->KW * IC * OC; i++) dw[i] = (float)ddw[i];
    free(ddx);
    free(ddw);
}

static size_t check_conv(int N, int IH, int IW, int IC, int OC, int KH, int KW, int SH, int SW,
                         kn_padding pad, int PT, int PL, int PB, int PR) {
    conv2d_shape s;
    assert_int_equal(
        conv2d_shape_init(&s, N, IH, IW, IC, OC, KH, KW, SH, SW, pad, PT, PL, PB, PR), 0);
    const size_t nx = (size_t)N * IH * IW * IC, nw = (size_t)KH * KW * IC * OC;
    const size_t ny = (size_t)N * s.OH * s.OW * OC;
    float *x = rand_buf(nx), *w = rand_buf(nw), *b = rand_buf(OC), *dy = rand_buf(ny);
    float *y = sb_xmalloc(sizeof(float) * ny), *yr = sb_xmalloc(sizeof(float) * ny);
    float *dx = sb_xmalloc(sizeof(float) * nx), *dxr = sb_xmalloc(sizeof(float) * nx);
    float *dw = sb_xmalloc(sizeof(float) * nw), *dwr = sb_xmalloc(sizeof(float) * nw);
    float *db = sb_xmalloc(sizeof(float) * OC), *dbr = sb_xcalloc(OC, sizeof(float));
    /* every output overwritten: NaN in, never read */
    for (size_t i = 0; i < ny; i++) y[i] = NAN;
    for (size_t i = 0; i < nx; i++) dx[i] = NAN;
    for (size_t i = 0; i < nw; i++) dw[i] = NAN;
    for (int i = 0; i < OC; i++) db[i] = NAN;
    naive_conv(&s, x, w, b, dy, yr, dxr, dwr, dbr);
    void *ws = ws_alloc(conv2d_workspace_size(&s));
    conv2d_forward(y, x, w, b, &s, ws);
    conv2d_backward_data(dx, dy, w, &s, ws);
    conv2d_backward_filter(dw, db, dy, x, &s, ws);
    char what[160];
    const double kf = 1e-5 * ((double)KH * KW * IC + OC + 1);
    const double kb = 1e-5 * ((double)N * s.OH * s.OW + 1);
    size_t bad = 0;
    snprintf(what, sizeof what, "conv fwd %dx%dx%dx%d oc%d k%dx%d s%dx%d pad%d", N, IH, IW, IC,
             OC, KH, KW, SH, SW, (int)pad);
    bad += tu_allclose(what, y, yr, ny, kf, 1e-4);
    what[5] = 'd', what[6] = 'x', what[7] = ' ';
    bad += tu_allclose(what, dx, dxr, nx, 1e-5 * ((double)KH * KW * OC + 1), 1e-4);
    what[5] = 'd', what[6] = 'w';
    bad += tu_allclose(what, dw, dwr, nw, kb, 1e-4);
    what[5] = 'd', what[6] = 'b';
    bad += tu_allclose(what, db, dbr, OC, kb, 1e-4);
    sb_aligned_free(ws);
    free(x), free(w), free(b), free(dy), free(y), free(yr), free(dx), free(dxr);
    free(dw), free(dwr), free(db), free(dbr);
    return bad;
}

static void test_conv_vs_direct(void **state) {
    (void)state;
    size_t bad = 0;
    const kn_padding S = KN_PADDING_SAME, V = KN_PADDING_VALID, E = KN_PADDING_EXPLICIT;
    bad += check_conv(2, 5, 6, 16, 24, 1, 1, 1, 1, S, 0, 0, 0, 0);   /* 1x1: plain GEMM */
    bad += check_conv(2, 7, 5, 19, 70, 3, 3, 1, 1, S, 0, 0, 0, 0);   /* IC, OC tails */
    bad += check_conv(1, 8, 8, 64, 64, 3, 3, 2, 2, E, 1, 1, 1, 1);   /* resnet 3x3/2 */
    bad += check_conv(2, 9, 7, 5, 9, 3, 3, 2, 2, S, 0, 0, 0, 0);     /* odd sizes, SAME /2 */
    bad += check_conv(1, 16, 16, 3, 64, 7, 7, 2, 2, E, 3, 3, 3, 3);  /* conv1, IC=3 merge */
    bad += check_conv(2, 6, 6, 8, 20, 1, 1, 2, 2, S, 0, 0, 0, 0);    /* 1x1/2: taps miss */
    bad += check_conv(1, 9, 11, 7, 13, 4, 3, 1, 1, V, 0, 0, 0, 0);   /* VALID, even kernel */
    bad += check_conv(1, 7, 9, 24, 40, 1, 7, 1, 1, S, 0, 0, 0, 0);   /* inception 1x7 */
    bad += check_conv(1, 9, 7, 24, 40, 7, 1, 1, 1, S, 0, 0, 0, 0);   /* inception 7x1 */
    bad += check_conv(1, 7, 7, 40, 100, 7, 7, 1, 1, V, 0, 0, 0, 0);  /* vgg fc6-like */
    bad += check_conv(1, 3, 3, 520, 300, 3, 3, 1, 1, S, 0, 0, 0, 0); /* large dW: split dW */
    bad += check_conv(3, 5, 5, 300, 8, 3, 3, 1, 1, S, 0, 0, 0, 0);  /* K' >> OC */
    /* wide IC: backward data through the phase GEMMs in every build (IC > NR/2) */
    bad += check_conv(2, 7, 6, 40, 24, 1, 1, 2, 2, S, 0, 0, 0, 0);   /* 1x1/2: empty phases */
    bad += check_conv(2, 9, 7, 70, 20, 3, 3, 2, 2, S, 0, 0, 0, 0);   /* odd, SAME /2 */
    bad += check_conv(1, 8, 9, 66, 10, 5, 5, 3, 2, E, 2, 1, 0, 2);   /* uneven pads, strides */
    assert_int_equal(bad, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgemm_shapes),
        cmocka_unit_test(test_block_rows_from_l2),
        cmocka_unit_test(test_sgemm_alpha_beta_nan_pad),
        cmocka_unit_test(test_sgemm_deterministic),
        cmocka_unit_test(test_fc),
        cmocka_unit_test(test_conv_vs_direct),
    };
    return cmocka_run_group_tests_name("gemm", tests, NULL, NULL);
}
