/* kernels/batchnorm.c — batch normalization over the channel axis of (M, C) data (NHWC with
 * M = N*H*W), training and inference forward and the training backward, with slim's semantics:
 * biased batch variance for normalizing, unbiased for the moving variance, moving averages with
 * `decay`.
 *
 * The per-channel sums are reductions over M rows. They are computed for BN_CB channels at a
 * time: the rows are cut into BN_RB fixed blocks (whatever the thread count), each block sums its
 * rows in double into a stack buffer, and the blocks are combined in block order. So the results
 * are the same for any thread count, nothing is allocated, and there are no float atomics. The
 * variance uses a second pass over the data shifted by the mean (with the first-order correction
 * for the rounding of the mean), so large means do not cancel the variance away. */
#include "kernels/kernels.h"

#include <math.h>
#include <omp.h>

#include "core/sb.h"

#define BN_RB 64 /* row blocks of a reduction */
#define BN_CB 64 /* channels per chunk: partials are 2 * BN_RB * BN_CB doubles (64 KiB) */
#define BN_PAR_MIN 16384

/* Shared scratch of one op call, on the calling thread's stack. */
typedef struct bn_scratch {
    double s1[BN_RB][BN_CB];
    double s2[BN_RB][BN_CB];
    float k1[BN_CB], k2[BN_CB], k3[BN_CB]; /* per-channel coefficients of the current chunk */
} bn_scratch;

static inline void bn_block_rows(size_t M, int blk, size_t *r0, size_t *r1) {
    *r0 = M * (size_t)blk / BN_RB;
    *r1 = M * (size_t)(blk + 1) / BN_RB;
}

/* This thread's [lo, hi) of M rows for the elementwise passes. */
static void bn_range(size_t M, size_t *lo, size_t *hi) {
    const size_t nth = (size_t)omp_get_num_threads(), ith = (size_t)omp_get_thread_num();
    const size_t per = (M + nth - 1) / nth;
    *lo = SB_MIN(ith * per, M);
    *hi = SB_MIN(*lo + per, M);
}

/* Inside the parallel region, for channels [c0, c0 + cb) and each row block blk, with
 * d = a - shift (shift NULL: 0):
 *   b == NULL, !want_sq:  s1 = sum a
 *   b == NULL,  want_sq:  s1 = sum d,   s2 = sum d^2        (variance pass)
 *   b != NULL:            s1 = sum b,   s2 = sum b * d      (backward: b = dy, a = x)
 * Ends with the implicit barrier of the omp for. */
static void bn_block_sums(bn_scratch *S, const float *a, const float *b, const float *shift,
                          size_t M, int C, int c0, int cb, int want_sq) {
#pragma omp for schedule(static)
    for (int blk = 0; blk < BN_RB; blk++) {
        size_t r0, r1;
        bn_block_rows(M, blk, &r0, &r1);
        double acc1[BN_CB], acc2[BN_CB];
        float sh[BN_CB];
        for (int j = 0; j < cb; j++) {
            acc1[j] = acc2[j] = 0.0;
            sh[j] = shift ? shift[c0 + j] : 0.0f;
        }
        for (size_t r = r0; r < r1; r++) {
            const float *ar = a + r * (size_t)C + c0;
            if (b) {
                /* backward: acc1 = sum b (= dy), acc2 = sum b * (a - shift) */
                const float *br = b + r * (size_t)C + c0;
                for (int j = 0; j < cb; j++) {
                    acc1[j] += br[j];
                    acc2[j] += (double)br[j] * (ar[j] - sh[j]);
                }
            } else if (want_sq) {
                for (int j = 0; j < cb; j++) {
                    const double d = ar[j] - sh[j];
                    acc1[j] += d;
                    acc2[j] += d * d;
                }
            } else {
                for (int j = 0; j < cb; j++) acc1[j] += ar[j];
            }
        }
        for (int j = 0; j < cb; j++) {
            S->s1[blk][j] = acc1[j];
            S->s2[blk][j] = acc2[j];
        }
    }
}

/* Combine the blocks of s (in block order) for channel j. */
static inline double bn_total(double s[BN_RB][BN_CB], int j) {
    double t = 0.0;
    for (int blk = 0; blk < BN_RB; blk++) t += s[blk][j];
    return t;
}

/* y, x: (M, C), y may alias x. mean, rstd: (C) out. moving_mean, moving_var: (C) in/out or NULL.
 * gamma, beta: (C) or NULL. */
void bn_forward_train(float *y, float *mean, float *rstd, float *moving_mean, float *moving_var,
                      const float *x, const float *gamma, const float *beta, const bn_param *p) {
    const size_t M = (size_t)p->M;
    const int C = p->C;
    SB_ASSERT(M > 0 && C > 0);
    bn_scratch S;
#pragma omp parallel if (M * C >= BN_PAR_MIN)
    {
        for (int c0 = 0; c0 < C; c0 += BN_CB) {
            const int cb = SB_MIN(BN_CB, C - c0);
            /* pass 1: mean */
            bn_block_sums(&S, x, NULL, NULL, M, C, c0, cb, 0);
#pragma omp for schedule(static)
            for (int j = 0; j < cb; j++) mean[c0 + j] = (float)(bn_total(S.s1, j) / (double)M);
            /* pass 2: variance around the (rounded) mean, corrected by the mean of the shift */
            bn_block_sums(&S, x, NULL, mean, M, C, c0, cb, 1);
#pragma omp for schedule(static)
            for (int j = 0; j < cb; j++) {
                const int c = c0 + j;
                const double d = bn_total(S.s1, j) / (double)M;
                double var = bn_total(S.s2, j) / (double)M - d * d;
                if (var < 0.0) var = 0.0;
                const double mu = (double)mean[c] + d;
                const double rs = 1.0 / sqrt(var + (double)p->eps);
                mean[c] = (float)mu;
                rstd[c] = (float)rs;
                if (moving_mean)
                    moving_mean[c] = (float)(p->decay * (double)moving_mean[c] +
                                             (1.0 - p->decay) * mu);
                if (moving_var) {
                    const double unbiased = M > 1 ? var * (double)M / (double)(M - 1) : var;
                    moving_var[c] = (float)(p->decay * (double)moving_var[c] +
                                            (1.0 - p->decay) * unbiased);
                }
                const float g = gamma ? gamma[c] : 1.0f;
                S.k1[j] = g * (float)rs;                               /* scale */
                S.k2[j] = (beta ? beta[c] : 0.0f) - (float)mu * S.k1[j]; /* shift */
            }
            /* pass 3: normalize this chunk's channels */
            size_t lo, hi;
            bn_range(M, &lo, &hi);
            for (size_t r = lo; r < hi; r++) {
                const float *xr = x + r * (size_t)C + c0;
                float *yr = y + r * (size_t)C + c0;
                for (int j = 0; j < cb; j++) yr[j] = xr[j] * S.k1[j] + S.k2[j];
            }
#pragma omp barrier
        }
    }
}

/* y, x: (M, C), y may alias x. gamma, beta: (C) or NULL. moving_mean, moving_var: (C). */
void bn_forward_infer(float *y, const float *x, const float *gamma, const float *beta,
                      const float *moving_mean, const float *moving_var, const bn_param *p) {
    const size_t M = (size_t)p->M;
    const int C = p->C;
#pragma omp parallel if (M * C >= BN_PAR_MIN)
    {
        size_t lo, hi;
        bn_range(M, &lo, &hi);
        for (int c0 = 0; c0 < C; c0 += BN_CB) {
            const int cb = SB_MIN(BN_CB, C - c0);
            float k1[BN_CB], k2[BN_CB];
            for (int j = 0; j < cb; j++) {
                const int c = c0 + j;
                const double rs = 1.0 / sqrt((double)moving_var[c] + (double)p->eps);
                k1[j] = (float)((gamma ? gamma[c] : 1.0f) * rs);
                k2[j] = (float)((beta ? beta[c] : 0.0f) - (double)moving_mean[c] * k1[j]);
            }
            for (size_t r = lo; r < hi; r++) {
                const float *xr = x + r * (size_t)C + c0;
                float *yr = y + r * (size_t)C + c0;
                for (int j = 0; j < cb; j++) yr[j] = xr[j] * k1[j] + k2[j];
            }
        }
    }
}

/* dx: (M, C) overwritten, may alias dy. dgamma, dbeta: (C) += or NULL. dy, x: (M, C).
 * mean, rstd: (C) from bn_forward_train. gamma: (C) or NULL.
 * With xhat = (x - mean) * rstd: dbeta = sum dy, dgamma = sum dy * xhat,
 * dx = gamma * rstd * (dy - dbeta/M - xhat * dgamma/M). */
void bn_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                 const float *mean, const float *rstd, const float *gamma, const bn_param *p) {
    const size_t M = (size_t)p->M;
    const int C = p->C;
    bn_scratch S;
#pragma omp parallel if (M * C >= BN_PAR_MIN)
    {
        for (int c0 = 0; c0 < C; c0 += BN_CB) {
            const int cb = SB_MIN(BN_CB, C - c0);
            bn_block_sums(&S, x, dy, mean, M, C, c0, cb, 0);
#pragma omp for schedule(static)
            for (int j = 0; j < cb; j++) {
                const int c = c0 + j;
                const double sdy = bn_total(S.s1, j);
                const double rs = rstd[c];
                const double sdyxhat = bn_total(S.s2, j) * rs;
                if (dbeta) dbeta[c] += (float)sdy;
                if (dgamma) dgamma[c] += (float)sdyxhat;
                const double k = (gamma ? gamma[c] : 1.0f) * rs;
                S.k1[j] = (float)k;                                  /* gamma * rstd */
                S.k2[j] = (float)(sdy / (double)M);                  /* mean of dy */
                S.k3[j] = (float)(sdyxhat * rs / (double)M);         /* per unit of (x-mean) */
            }
            size_t lo, hi;
            bn_range(M, &lo, &hi);
            float mu[BN_CB];
            for (int j = 0; j < cb; j++) mu[j] = mean[c0 + j];
            for (size_t r = lo; r < hi; r++) {
                const float *xr = x + r * (size_t)C + c0;
                const float *dyr = dy + r * (size_t)C + c0;
                float *dxr = dx + r * (size_t)C + c0;
                for (int j = 0; j < cb; j++)
                    dxr[j] = S.k1[j] * (dyr[j] - S.k2[j] - (xr[j] - mu[j]) * S.k3[j]);
            }
#pragma omp barrier
        }
    }
}
