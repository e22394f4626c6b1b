/* kernels/eltwise.c — elementwise and channel-broadcast ops: ReLU, residual add, gradient
 * accumulation, bias add and its backward, channel concatenation. Memory-bound loops with unit
 * stride over the channel axis (NHWC), so the compiler vectorizes them; each op is one OpenMP
 * region that splits its rows or elements by (ith, nth). The bias gradient is a reduction over
 * rows: per-thread double partials added in thread order (deterministic for a thread count, no
 * float atomics), as in batchnorm.c. */
#include "kernels/kernels.h"

#include <omp.h>
#include <string.h>

#include "core/sb.h"
#include "kernels/kernels_impl.h"

/* Below this many elements one thread does the work: a parallel region costs microseconds. */
#define ELT_PAR_MIN 16384

/* This thread's [lo, hi) of n items, in multiples of `align` so vector loops start aligned. */
static void elt_range(size_t n, size_t align, size_t *lo, size_t *hi) {
    const size_t nth = (size_t)omp_get_num_threads(), ith = (size_t)omp_get_thread_num();
    size_t per = (n + nth - 1) / nth;
    per = (per + align - 1) / align * align;
    *lo = SB_MIN(ith * per, n);
    *hi = SB_MIN(*lo + per, n);
}

void relu_forward(float *y, const float *x, size_t n) {
#pragma omp parallel if (n >= ELT_PAR_MIN)
    {
        size_t lo, hi;
        elt_range(n, 16, &lo, &hi);
        for (size_t i = lo; i < hi; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
    }
}

/* Blocks of the ReLU backward passes (4 KB): dy, read through loads masked by y > 0, is fetched
 * a block ahead (kn_prefetch_floats). */
#define ELT_BLK 1024

void relu_backward(float *dx, const float *dy, const float *y, size_t n) {
#pragma omp parallel if (n >= ELT_PAR_MIN)
    {
        size_t lo, hi;
        elt_range(n, 16, &lo, &hi);
        for (size_t i0 = lo; i0 < hi; i0 += ELT_BLK) {
            const size_t i1 = SB_MIN(i0 + ELT_BLK, hi);
            if (i1 + ELT_BLK <= hi) kn_prefetch_floats(dy + i1, ELT_BLK);
            for (size_t i = i0; i < i1; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
        }
    }
}

void add_forward(float *y, const float *a, const float *b, size_t n) {
#pragma omp parallel if (n >= ELT_PAR_MIN)
    {
        size_t lo, hi;
        elt_range(n, 16, &lo, &hi);
        for (size_t i = lo; i < hi; i++) y[i] = a[i] + b[i];
    }
}

void add_accumulate(float *dst, const float *src, size_t n) {
#pragma omp parallel if (n >= ELT_PAR_MIN)
    {
        size_t lo, hi;
        elt_range(n, 16, &lo, &hi);
        for (size_t i = lo; i < hi; i++) dst[i] += src[i];
    }
}

void add_relu_forward(float *y, const float *a, const float *b, size_t n) {
#pragma omp parallel if (n >= ELT_PAR_MIN)
    {
        size_t lo, hi;
        elt_range(n, 16, &lo, &hi);
        for (size_t i = lo; i < hi; i++) {
            const float v = a[i] + b[i];
            y[i] = v > 0.0f ? v : 0.0f; /* relu_forward's expression */
        }
    }
}

/* One pass, both threads: the residual add's gradient goes to two tensors of up to 100 MB each
 * (resnet's block1 at batch 32), which a memcpy per input did on one core, reading dy twice.
 * With relu_y, dy is masked in blocks of ELT_BLK on the stack first (GCC vectorizes the mask
 * and the copies as separate loops), the next block fetched meanwhile: 103 MB, 9.1 -> 5.6 ms. */
void add_backward(float *da, int acc_a, float *db, int acc_b, const float *dy,
                  const float *relu_y, size_t n) {
#pragma omp parallel if (n >= ELT_PAR_MIN)
    {
        size_t lo, hi;
        elt_range(n, 16, &lo, &hi);
        float g[ELT_BLK];
        for (size_t i0 = lo; i0 < hi; i0 += ELT_BLK) {
            const size_t m = SB_MIN((size_t)ELT_BLK, hi - i0);
            const float *d = dy + i0;
            if (relu_y) {
                if (i0 + m + ELT_BLK <= hi) kn_prefetch_floats(d + m, ELT_BLK);
                for (size_t i = 0; i < m; i++) g[i] = relu_y[i0 + i] > 0.0f ? d[i] : 0.0f;
                d = g;
            }
            float *pa = da ? da + i0 : NULL, *pb = db ? db + i0 : NULL;
            if (pa && acc_a) for (size_t i = 0; i < m; i++) pa[i] += d[i];
            else if (pa) memcpy(pa, d, m * sizeof(float));
            if (pb && acc_b) for (size_t i = 0; i < m; i++) pb[i] += d[i];
            else if (pb) memcpy(pb, d, m * sizeof(float));
        }
    }
}

/* y: (M, C) += b: (C) per row. */
void bias_add_forward(float *y, const float *b, size_t M, int C) {
#pragma omp parallel if (M * (size_t)C >= ELT_PAR_MIN)
    {
        size_t lo, hi;
        elt_range(M, 1, &lo, &hi);
        for (size_t r = lo; r < hi; r++) {
            float *yr = y + r * (size_t)C;
            for (int c = 0; c < C; c++) yr[c] += b[c];
        }
    }
}

/* Channels per sweep of the bias-gradient reduction: each thread keeps BIAS_W double
 * accumulators (8 KiB) on its stack, so C <= BIAS_W reads whole rows contiguously. */
#define BIAS_W 1024

/* db: (C) = column sums of dy: (M, C). Each thread sums its contiguous share of rows in
 * double; the shares are added in thread order (ordered section), then rounded once. */
void bias_add_backward(float *db, const float *dy, size_t M, int C) {
    double tot[BIAS_W];
#pragma omp parallel if (M * (size_t)C >= ELT_PAR_MIN)
    {
        const int nth = omp_get_num_threads();
        for (int c0 = 0; c0 < C; c0 += BIAS_W) {
            const int w = SB_MIN(BIAS_W, C - c0);
#pragma omp for schedule(static)
            for (int j = 0; j < w; j++) tot[j] = 0.0;
#pragma omp for ordered schedule(static, 1)
            for (int t = 0; t < nth; t++) {
                const size_t r0 = M * (size_t)t / (size_t)nth;
                const size_t r1 = M * (size_t)(t + 1) / (size_t)nth;
                double acc[BIAS_W];
                for (int j = 0; j < w; j++) acc[j] = 0.0;
                for (size_t r = r0; r < r1; r++) {
                    const float *d = dy + r * (size_t)C + c0;
                    for (int j = 0; j < w; j++) acc[j] += d[j];
                }
#pragma omp ordered
                for (int j = 0; j < w; j++) tot[j] += acc[j];
            }
#pragma omp for schedule(static)
            for (int j = 0; j < w; j++) db[c0 + j] = (float)tot[j];
        }
    }
}

/* y: (M, sum cs) <- [xs[0] (M, cs[0]) | xs[1] (M, cs[1]) | ...]. */
void concat_forward(float *y, const float *const *xs, const int *cs, int k, size_t M) {
    size_t Ct = 0;
    for (int i = 0; i < k; i++) Ct += (size_t)cs[i];
#pragma omp parallel if (M * Ct >= ELT_PAR_MIN)
    {
        size_t lo, hi;
        elt_range(M, 1, &lo, &hi);
        for (size_t r = lo; r < hi; r++) {
            float *yr = y + r * Ct;
            for (int i = 0; i < k; i++) {
                memcpy(yr, xs[i] + r * (size_t)cs[i], (size_t)cs[i] * sizeof(float));
                yr += cs[i];
            }
        }
    }
}

/* dxs[i]: (M, cs[i]) <- the matching column slice of dy: (M, sum cs). */
void concat_backward(float *const *dxs, const float *dy, const int *cs, int k, size_t M) {
    size_t Ct = 0;
    for (int i = 0; i < k; i++) Ct += (size_t)cs[i];
#pragma omp parallel if (M * Ct >= ELT_PAR_MIN)
    {
        size_t lo, hi;
        elt_range(M, 1, &lo, &hi);
        for (size_t r = lo; r < hi; r++) {
            const float *dr = dy + r * Ct;
            for (int i = 0; i < k; i++) {
                memcpy(dxs[i] + r * (size_t)cs[i], dr, (size_t)cs[i] * sizeof(float));
                dr += cs[i];
            }
        }
    }
}
