/* kernels/batchnorm.c — batch normalization over the channel axis of (M, C) data (NHWC with
 * M = N*H*W), training and inference forward and the training backward, with slim's semantics:
 * biased batch variance for normalizing, unbiased for the moving variance, moving averages with
 * `decay`.
 *
 * Every pass streams whole rows (up to BN_W channels at a time, so C <= BN_W is one contiguous
 * sweep; runs of a few hundred bytes strided by the row length measured 2-3x slower). The
 * per-channel sums are reductions over M rows: each thread sums its contiguous share of rows in
 * double into its own stack buffer, and the shares are added to the shared totals inside an
 * `omp ordered` section, in thread order. So results are deterministic for a given thread count
 * (the grouping of the double sums changes with it, at the 1e-16 level), nothing is allocated,
 * there are no float atomics, and a reduction costs one hand-over per thread. (Fixed row blocks
 * handed over in block order would make results independent of the thread count too, but cost
 * one hand-over per block, which measured several times slower on a busy machine.) Forward
 * training reads x twice (sums, then normalize): the sums are taken around a per-channel shift
 * k = x[0, c] (s1 = sum(x - k), s2 = sum((x - k)^2), var = s2/M - (s1/M)^2), which keeps the
 * variance exact to double rounding for any realistic first row, so large means do not cancel
 * the variance away. The backward reads x and dy twice (sums, then dx). With bn_param.relu the
 * ReLU that follows is applied in the normalize pass, and the backward masks dy with the
 * output recomputed from x (no extra pass, no extra read). */
#include "kernels/kernels.h"

#include <math.h>
#include <omp.h>

#include "core/sb.h"
#include "kernels/kernels_impl.h"

#define BN_W 1024 /* channels per sweep; per-thread accumulators are 2 * BN_W doubles (16 KiB) */
#define BN_PAR_MIN 16384

/* Shared state of one op call, on the calling thread's stack (28 KiB). */
typedef struct bn_shared {
    double t1[BN_W], t2[BN_W];          /* reduction totals */
    float k1[BN_W], k2[BN_W], k3[BN_W]; /* per-channel coefficients of the current sweep */
    float r1[BN_W], r3[BN_W];           /* fused ReLU's backward: the forward's scale, beta */
} bn_shared;

/* This thread's [lo, hi) of M rows for the elementwise passes. */
static void bn_range(size_t M, size_t *lo, size_t *hi) {
    const size_t nth = (size_t)omp_get_num_threads(), ith = (size_t)omp_get_thread_num();
    const size_t per = (M + nth - 1) / nth;
    *lo = SB_MIN(ith * per, M);
    *hi = SB_MIN(*lo + per, M);
}

/* The gradient reaching the batch norm's output through a fused ReLU: dy where the forward's
 * output (x - mean) * scale + beta, recomputed with the forward's own float operations, was
 * positive (ISO C mode keeps GCC from contracting either into an FMA, so they agree). */
static inline float bn_relu_dy(float dy, float x, float mean, float scale, float beta) {
    const float y = (x - mean) * scale + beta;
    return y > 0.0f ? dy : 0.0f;
}

/* Row r + ahead (the rows in 4 KB), channels [0, w) as seen from row r's pointer p, into L1, if
 * that row is before `end`, for two streams the hardware prefetchers left waiting on memory:
 *  - dy in the fused ReLU's backward, read through masked loads only (kn_prefetch_floats).
 *    Backward pass, C = 64, 103 MB: 17.9 -> 8.8 ms; C = 2048, 13 MB: 1.6 -> 1.3-1.7 ms.
 *  - x in the forward's sums, with their conversions to double and two FMAs per element the
 *    heaviest loop over a stream here: at C = 256 and 512 (103 and 51 MB) it read 11-13 GB/s
 *    where the normalize pass after it moves 33 (Zen 4, two threads). */
static inline void bn_prefetch_row(const float *p, size_t r, size_t end, int C, int w) {
    const size_t row = sizeof(float) * (size_t)C, ahead = (4096 + row - 1) / row;
    if (r + ahead < end) kn_prefetch_floats(p + ahead * (size_t)C, (size_t)w);
}

/* Inside the parallel region, for channels [c0, c0 + w), with d = a - shift:
 *   b == NULL:  t1 = sum d,   t2 = sum d^2       (forward: a = x, shift = x's first row)
 *   b != NULL:  t1 = sum b,   t2 = sum b * d     (backward: a = x, b = dy, shift = mean;
 *               relu: b masked by bn_relu_dy with S->r1, S->r3)
 * Each thread sums its contiguous share of rows; the shares are added in thread order. Ends
 * with a barrier. */
static void bn_sums(bn_shared *S, const float *a, const float *b, const float *shift, size_t M,
                    int C, int c0, int w, int relu) {
#pragma omp for schedule(static)
    for (int j = 0; j < w; j++) S->t1[j] = S->t2[j] = 0.0;
    const int nth = omp_get_num_threads();
#pragma omp for ordered schedule(static, 1)
    for (int t = 0; t < nth; t++) {
        const size_t r0 = M * (size_t)t / (size_t)nth, r1 = M * (size_t)(t + 1) / (size_t)nth;
        double acc1[BN_W], acc2[BN_W];
        float sh[BN_W], rs1[BN_W], rs3[BN_W]; /* shift; fused ReLU's scale and beta */
        for (int j = 0; j < w; j++) {
            acc1[j] = acc2[j] = 0.0;
            sh[j] = shift[c0 + j];
            rs1[j] = relu ? S->r1[j] : 0.0f;
            rs3[j] = relu ? S->r3[j] : 0.0f;
        }
        for (size_t r = r0; r < r1; r++) {
            const float *ar = a + r * (size_t)C + c0;
            if (b && relu) {
                const float *br = b + r * (size_t)C + c0;
                float g[BN_W]; /* masked first: GCC vectorizes neither a select feeding a
                                  float-to-double conversion nor the loop holding both */
                bn_prefetch_row(br, r, r1, C, w);
                for (int j = 0; j < w; j++) g[j] = bn_relu_dy(br[j], ar[j], sh[j], rs1[j], rs3[j]);
                for (int j = 0; j < w; j++) {
                    acc1[j] += g[j];
                    acc2[j] += (double)g[j] * (ar[j] - sh[j]);
                }
            } else if (b) {
                const float *br = b + r * (size_t)C + c0;
                for (int j = 0; j < w; j++) {
                    acc1[j] += br[j];
                    acc2[j] += (double)br[j] * (ar[j] - sh[j]);
                }
            } else {
                bn_prefetch_row(ar, r, r1, C, w);
                for (int j = 0; j < w; j++) {
                    const double d = ar[j] - sh[j];
                    acc1[j] += d;
                    acc2[j] += d * d;
                }
            }
        }
#pragma omp ordered
        for (int j = 0; j < w; j++) {
            S->t1[j] += acc1[j];
            S->t2[j] += acc2[j];
        }
    }
}

/* Rows [lo, hi), channels [c0, c0 + w): y = (x - k2) * k1 + k3, then max(y, 0) with relu
 * (relu_forward's expression, so the two agree bit for bit). */
static void bn_apply(float *y, const float *x, const bn_shared *S, size_t lo, size_t hi, int C,
                     int c0, int w, int relu) {
    for (size_t r = lo; r < hi; r++) {
        const float *xr = x + r * (size_t)C + c0;
        float *yr = y + r * (size_t)C + c0;
        if (relu)
            for (int j = 0; j < w; j++) {
                const float v = (xr[j] - S->k2[j]) * S->k1[j] + S->k3[j];
                yr[j] = v > 0.0f ? v : 0.0f;
            }
        else
            for (int j = 0; j < w; j++) yr[j] = (xr[j] - S->k2[j]) * S->k1[j] + S->k3[j];
    }
}

/* y, x: (M, C), y may alias x. mean, rstd: (C) out. moving_mean, moving_var: (C) in/out or NULL.
 * gamma, beta: (C) or NULL. */
void bn_forward_train(float *y, float *mean, float *rstd, float *moving_mean, float *moving_var,
                      const float *x, const float *gamma, const float *beta, const bn_param *p) {
    const size_t M = (size_t)p->M;
    const int C = p->C;
    SB_ASSERT(M > 0 && C > 0);
    bn_shared S;
#pragma omp parallel if (M * C >= BN_PAR_MIN)
    {
        for (int c0 = 0; c0 < C; c0 += BN_W) {
            const int w = SB_MIN(BN_W, C - c0);
            /* pass 1: sums around the first row (read before pass 2 may overwrite it in place) */
            bn_sums(&S, x, NULL, x, M, C, c0, w, 0);
#pragma omp for schedule(static)
            for (int j = 0; j < w; j++) {
                const int c = c0 + j;
                const double d = S.t1[j] / (double)M;
                double var = S.t2[j] / (double)M - d * d;
                if (var < 0.0) var = 0.0;
                const double mu = (double)x[c] + d;
                const double rs = 1.0 / sqrt(var + (double)p->eps);
                mean[c] = (float)mu;
                rstd[c] = (float)rs;
                if (moving_mean)
                    moving_mean[c] =
                        (float)(p->decay * (double)moving_mean[c] + (1.0 - p->decay) * mu);
                if (moving_var) {
                    const double unbiased = M > 1 ? var * (double)M / (double)(M - 1) : var;
                    moving_var[c] =
                        (float)(p->decay * (double)moving_var[c] + (1.0 - p->decay) * unbiased);
                }
                /* y = (x - mean) * scale + beta: subtracting first keeps large means exact */
                S.k1[j] = (gamma ? gamma[c] : 1.0f) * (float)rs;
                S.k2[j] = (float)mu;
                S.k3[j] = beta ? beta[c] : 0.0f;
            }
            /* pass 2: normalize (and the fused ReLU) */
            size_t lo, hi;
            bn_range(M, &lo, &hi);
            bn_apply(y, x, &S, lo, hi, C, c0, w, p->relu);
#pragma omp barrier
        }
    }
}

/* y, x: (M, C), y may alias x. gamma, beta: (C) or NULL. moving_mean, moving_var: (C). */
void bn_forward_infer(float *y, const float *x, const float *gamma, const float *beta,
                      const float *moving_mean, const float *moving_var, const bn_param *p) {
    const size_t M = (size_t)p->M;
    const int C = p->C;
    bn_shared S;
#pragma omp parallel if (M * C >= BN_PAR_MIN)
    {
        size_t lo, hi;
        bn_range(M, &lo, &hi);
        for (int c0 = 0; c0 < C; c0 += BN_W) {
            const int w = SB_MIN(BN_W, C - c0);
#pragma omp for schedule(static)
            for (int j = 0; j < w; j++) {
                const int c = c0 + j;
                const double rs = 1.0 / sqrt((double)moving_var[c] + (double)p->eps);
                S.k1[j] = (float)((gamma ? gamma[c] : 1.0f) * rs);
                S.k2[j] = moving_mean[c];
                S.k3[j] = beta ? beta[c] : 0.0f;
            }
            bn_apply(y, x, &S, lo, hi, C, c0, w, p->relu);
#pragma omp barrier
        }
    }
}

/* dx: (M, C) overwritten, may alias dy. dgamma, dbeta: (C) overwritten or NULL. dy, x: (M, C).
 * mean, rstd: (C) from bn_forward_train. gamma: (C) or NULL.
 * With xhat = (x - mean) * rstd: dbeta = sum dy, dgamma = sum dy * xhat,
 * dx = gamma * rstd * (dy - dbeta/M - xhat * dgamma/M). */
void bn_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                 const float *mean, const float *rstd, const float *gamma, const float *beta,
                 const bn_param *p) {
    const size_t M = (size_t)p->M;
    const int C = p->C, relu = p->relu;
    bn_shared S;
    float mu[BN_W];
#pragma omp parallel if (M * C >= BN_PAR_MIN)
    {
        for (int c0 = 0; c0 < C; c0 += BN_W) {
            const int w = SB_MIN(BN_W, C - c0);
            if (relu) {
#pragma omp for schedule(static)
                for (int j = 0; j < w; j++) { /* the forward's k1 and k3, in float as there */
                    S.r1[j] = (gamma ? gamma[c0 + j] : 1.0f) * rstd[c0 + j];
                    S.r3[j] = beta ? beta[c0 + j] : 0.0f;
                }
            }
            bn_sums(&S, x, dy, mean, M, C, c0, w, relu);
#pragma omp for schedule(static)
            for (int j = 0; j < w; j++) {
                const int c = c0 + j;
                const double sdy = S.t1[j];
                const double rs = rstd[c];
                const double sdyxhat = S.t2[j] * rs;
                if (dbeta) dbeta[c] = (float)sdy;
                if (dgamma) dgamma[c] = (float)sdyxhat;
                S.k1[j] = (float)((gamma ? gamma[c] : 1.0f) * rs); /* gamma * rstd */
                S.k2[j] = (float)(sdy / (double)M);                /* mean of dy */
                S.k3[j] = (float)(sdyxhat * rs / (double)M);       /* per unit of (x - mean) */
                mu[j] = mean[c];
            }
            size_t lo, hi;
            bn_range(M, &lo, &hi);
            for (size_t r = lo; r < hi; r++) {
                const float *xr = x + r * (size_t)C + c0;
                const float *dyr = dy + r * (size_t)C + c0;
                float *dxr = dx + r * (size_t)C + c0;
                if (relu) {
                    bn_prefetch_row(dyr, r, hi, C, w);
                    for (int j = 0; j < w; j++) {
                        const float g = bn_relu_dy(dyr[j], xr[j], mu[j], S.r1[j], S.r3[j]);
                        dxr[j] = S.k1[j] * (g - S.k2[j] - (xr[j] - mu[j]) * S.k3[j]);
                    }
                } else
                    for (int j = 0; j < w; j++)
                        dxr[j] = S.k1[j] * (dyr[j] - S.k2[j] - (xr[j] - mu[j]) * S.k3[j]);
            }
#pragma omp barrier
        }
    }
}
