/* kernels/softmax_xent.c — softmax cross-entropy with label smoothing, averaged over the batch,
 * as tf.losses.softmax_cross_entropy: target = onehot*(1-ls) + ls/K. The log-softmax is shifted by
 * the row maximum, so large logits neither overflow nor lose the loss. Since the target sums to
 * one, a row's loss is lse - sum_k target_k * logit_k with lse = log(sum exp(logit)). The batch
 * mean sums fixed row blocks in block order (no dependence on the thread count). */
#include "kernels/kernels.h"

#include <math.h>
#include <omp.h>

#include "core/sb.h"

#define XENT_RB 64 /* row blocks of the loss reduction */
#define XENT_PAR_MIN 16384

/* probs: (N, K) out. logits: (N, K). labels: (N) in [0, K). Returns the mean loss. */
float softmax_xent_forward(float *probs, const float *logits, const int32_t *labels, int N, int K,
                           float label_smoothing) {
    SB_ASSERT(N > 0 && K > 0);
    const double ls = label_smoothing;
    double part[XENT_RB];
#pragma omp parallel if ((size_t)N * K >= XENT_PAR_MIN)
    {
#pragma omp for schedule(static)
        for (int blk = 0; blk < XENT_RB; blk++) {
            const int r0 = (int)((long)N * blk / XENT_RB);
            const int r1 = (int)((long)N * (blk + 1) / XENT_RB);
            double acc = 0.0;
            for (int n = r0; n < r1; n++) {
                const float *x = logits + (size_t)n * K;
                float *pr = probs + (size_t)n * K;
                const int label = labels[n];
                SB_ASSERTF(label >= 0 && label < K, "label %d of row %d outside [0, %d)", label, n,
                           K);
                float m = x[0];
                for (int k = 1; k < K; k++) m = x[k] > m ? x[k] : m;
                double sum = 0.0, sumx = 0.0;
                for (int k = 0; k < K; k++) {
                    const float e = expf(x[k] - m);
                    pr[k] = e;
                    sum += e;
                    sumx += x[k];
                }
                const float inv = (float)(1.0 / sum);
                for (int k = 0; k < K; k++) pr[k] *= inv;
                const double lse = (double)m + log(sum);
                acc += lse - (1.0 - ls) * x[label] - ls / K * sumx;
            }
            part[blk] = acc;
        }
    }
    double total = 0.0;
    for (int blk = 0; blk < XENT_RB; blk++) total += part[blk];
    return (float)(total / N);
}

/* dlogits: (N, K) overwritten = scale * (probs - target) / N. dlogits may alias probs. */
void softmax_xent_backward(float *dlogits, const float *probs, const int32_t *labels, int N, int K,
                           float label_smoothing, float scale) {
    const float s = scale / (float)N;
    const float off = label_smoothing / (float)K;
    const float on = 1.0f - label_smoothing + off;
#pragma omp parallel if ((size_t)N * K >= XENT_PAR_MIN)
    {
        const int nth = omp_get_num_threads(), ith = omp_get_thread_num();
        const int per = (N + nth - 1) / nth;
        const int lo = SB_MIN(ith * per, N), hi = SB_MIN(lo + per, N);
        for (int n = lo; n < hi; n++) {
            const float *pr = probs + (size_t)n * K;
            float *d = dlogits + (size_t)n * K;
            for (int k = 0; k < K; k++) d[k] = s * (pr[k] - off);
            d[labels[n]] = s * (pr[labels[n]] - on);
        }
    }
}
