/* kernels/dropout.c — TF dropout: keep each element with probability keep_prob and scale the kept
 * ones by 1/keep_prob. The keep decision for element i is a pure function of (seed, i) — a
 * SplitMix64-style hash of the index keyed by the seed — so any split of the work over threads
 * gives the same mask, and a replay with the same seed reproduces it. */
#include "kernels/kernels.h"

#include <omp.h>

#include "core/sb.h"

#define DROP_PAR_MIN 16384

/* SplitMix64's finalizer: a bijection on 64 bits with full avalanche. */
static inline uint64_t drop_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void drop_range(size_t n, size_t *lo, size_t *hi) {
    const size_t nth = (size_t)omp_get_num_threads(), ith = (size_t)omp_get_thread_num();
    size_t per = (n + nth - 1) / nth;
    per = (per + 63) / 64 * 64;
    *lo = SB_MIN(ith * per, n);
    *hi = SB_MIN(*lo + per, n);
}

/* y, x: (n), y may alias x. mask: (n) bytes, 1 = kept. keep_prob in (0, 1]. */
void dropout_forward(float *y, uint8_t *mask, const float *x, size_t n, float keep_prob,
                     uint64_t seed) {
    SB_ASSERTF(keep_prob > 0.0f && keep_prob <= 1.0f, "keep_prob %g", (double)keep_prob);
    /* Keep when the top 32 hash bits fall below keep_prob * 2^32; keep_prob = 1 keeps all. */
    const uint64_t thresh = (uint64_t)((double)keep_prob * 4294967296.0);
    const uint64_t key = drop_mix64(seed ^ 0x6a09e667f3bcc909ULL);
    const float scale = 1.0f / keep_prob;
#pragma omp parallel if (n >= DROP_PAR_MIN)
    {
        size_t lo, hi;
        drop_range(n, &lo, &hi);
        for (size_t i = lo; i < hi; i++) {
            const uint64_t h = drop_mix64(((uint64_t)i * 0x9e3779b97f4a7c15ULL) ^ key);
            const uint8_t keep = (uint8_t)((h >> 32) < thresh);
            mask[i] = keep;
            y[i] = keep ? x[i] * scale : 0.0f;
        }
    }
}

/* dx, dy: (n), dx may alias dy. dx = dy * mask / keep_prob. */
void dropout_backward(float *dx, const float *dy, const uint8_t *mask, size_t n, float keep_prob) {
    const float scale = 1.0f / keep_prob;
#pragma omp parallel if (n >= DROP_PAR_MIN)
    {
        size_t lo, hi;
        drop_range(n, &lo, &hi);
        for (size_t i = lo; i < hi; i++) dx[i] = mask[i] ? dy[i] * scale : 0.0f;
    }
}
