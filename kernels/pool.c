/* kernels/pool.c — max, average and global-average pooling over NHWC, TensorFlow semantics:
 * SAME padding from kn_out_size (the odd pad row/column at the bottom/right), max pool treats the
 * padding as -inf (a padded tap never wins), average pool divides by the number of real inputs
 * in each window. The inner loops run over C with unit stride. The backward passes are written
 * as gathers (each input pixel sums the outputs whose window covers it, in a fixed order), so
 * overlapping windows need no atomics and results do not depend on the thread count. */
#include "kernels/kernels.h"

#include <math.h>
#include <omp.h>

#include "core/sb.h"

#define POOL_PAR_MIN 16384

/* This thread's [lo, hi) of n rows. */
static void pool_range(size_t n, size_t *lo, size_t *hi) {
    const size_t nth = (size_t)omp_get_num_threads(), ith = (size_t)omp_get_thread_num();
    const size_t per = (n + nth - 1) / nth;
    *lo = SB_MIN(ith * per, n);
    *hi = SB_MIN(*lo + per, n);
}

/* Input rows [*i0, *i1) covered by the window of output o along one axis. */
static inline void pool_window(int o, int stride, int pad, int k, int in, int *i0, int *i1) {
    const int a = o * stride - pad;
    *i0 = SB_MAX(a, 0);
    *i1 = SB_MIN(a + k, in);
}

/* Output positions [*o0, *o1) whose window covers input i along one axis. */
static inline void pool_covering(int i, int stride, int pad, int k, int out, int *o0, int *o1) {
    /* o*stride - pad <= i  and  i < o*stride - pad + k */
    const int lo_num = i + pad - k + 1;
    const int lo = lo_num <= 0 ? 0 : (lo_num + stride - 1) / stride;
    *o0 = lo;
    *o1 = SB_MIN((i + pad) / stride + 1, out);
}

/* y, argmax: (N, OH, OW, C); x: (N, IH, IW, C). argmax holds ih*IW + iw of the first maximum
 * in (kh, kw) scan order. */
void maxpool_forward(float *y, int32_t *argmax, const float *x, const pool_shape *s) {
    const int IH = s->IH, IW = s->IW, C = s->C, OH = s->OH, OW = s->OW;
    const size_t rows = (size_t)s->N * OH;
#pragma omp parallel if (rows * OW * C >= POOL_PAR_MIN)
    {
        size_t lo, hi;
        pool_range(rows, &lo, &hi);
        for (size_t row = lo; row < hi; row++) {
            const int n = (int)(row / OH), oh = (int)(row % OH);
            int h0, h1;
            pool_window(oh, s->SH, s->PT, s->KH, IH, &h0, &h1);
            for (int ow = 0; ow < OW; ow++) {
                int w0, w1;
                pool_window(ow, s->SW, s->PL, s->KW, IW, &w0, &w1);
                float *yo = y + (row * OW + ow) * C;
                int32_t *ao = argmax + (row * OW + ow) * C;
                for (int c = 0; c < C; c++) {
                    yo[c] = -INFINITY;
                    ao[c] = h0 * IW + w0;
                }
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) {
                        const float *xi = x + (((size_t)n * IH + ih) * IW + iw) * C;
                        const int32_t pos = ih * IW + iw;
                        for (int c = 0; c < C; c++) {
                            const int better = xi[c] > yo[c];
                            yo[c] = better ? xi[c] : yo[c];
                            ao[c] = better ? pos : ao[c];
                        }
                    }
            }
        }
    }
}

/* dx: (N, IH, IW, C) overwritten; dy, argmax: (N, OH, OW, C). */
void maxpool_backward(float *dx, const float *dy, const int32_t *argmax, const pool_shape *s) {
    const int IH = s->IH, IW = s->IW, C = s->C, OH = s->OH, OW = s->OW;
    const size_t rows = (size_t)s->N * IH;
#pragma omp parallel if (rows * IW * C >= POOL_PAR_MIN)
    {
        size_t lo, hi;
        pool_range(rows, &lo, &hi);
        for (size_t row = lo; row < hi; row++) {
            const int n = (int)(row / IH), ih = (int)(row % IH);
            int o_h0, o_h1;
            pool_covering(ih, s->SH, s->PT, s->KH, OH, &o_h0, &o_h1);
            for (int iw = 0; iw < IW; iw++) {
                int o_w0, o_w1;
                pool_covering(iw, s->SW, s->PL, s->KW, OW, &o_w0, &o_w1);
                float *dxi = dx + (row * IW + iw) * C;
                const int32_t pos = ih * IW + iw;
                for (int c = 0; c < C; c++) dxi[c] = 0.0f;
                for (int oh = o_h0; oh < o_h1; oh++)
                    for (int ow = o_w0; ow < o_w1; ow++) {
                        const size_t o = (((size_t)n * OH + oh) * OW + ow) * C;
                        const float *dyo = dy + o;
                        const int32_t *ao = argmax + o;
                        for (int c = 0; c < C; c++) dxi[c] += ao[c] == pos ? dyo[c] : 0.0f;
                    }
            }
        }
    }
}

/* y: (N, OH, OW, C) = window sums of x: (N, IH, IW, C) / number of real inputs. */
void avgpool_forward(float *y, const float *x, const pool_shape *s) {
    const int IH = s->IH, IW = s->IW, C = s->C, OH = s->OH, OW = s->OW;
    const size_t rows = (size_t)s->N * OH;
#pragma omp parallel if (rows * OW * C >= POOL_PAR_MIN)
    {
        size_t lo, hi;
        pool_range(rows, &lo, &hi);
        for (size_t row = lo; row < hi; row++) {
            const int n = (int)(row / OH), oh = (int)(row % OH);
            int h0, h1;
            pool_window(oh, s->SH, s->PT, s->KH, IH, &h0, &h1);
            for (int ow = 0; ow < OW; ow++) {
                int w0, w1;
                pool_window(ow, s->SW, s->PL, s->KW, IW, &w0, &w1);
                float *yo = y + (row * OW + ow) * C;
                for (int c = 0; c < C; c++) yo[c] = 0.0f;
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) {
                        const float *xi = x + (((size_t)n * IH + ih) * IW + iw) * C;
                        for (int c = 0; c < C; c++) yo[c] += xi[c];
                    }
                const float inv = 1.0f / (float)((h1 - h0) * (w1 - w0));
                for (int c = 0; c < C; c++) yo[c] *= inv;
            }
        }
    }
}

/* dx: (N, IH, IW, C) overwritten; dy: (N, OH, OW, C). */
void avgpool_backward(float *dx, const float *dy, const pool_shape *s) {
    const int IH = s->IH, IW = s->IW, C = s->C, OH = s->OH, OW = s->OW;
    const size_t rows = (size_t)s->N * IH;
#pragma omp parallel if (rows * IW * C >= POOL_PAR_MIN)
    {
        size_t lo, hi;
        pool_range(rows, &lo, &hi);
        for (size_t row = lo; row < hi; row++) {
            const int n = (int)(row / IH), ih = (int)(row % IH);
            int o_h0, o_h1;
            pool_covering(ih, s->SH, s->PT, s->KH, OH, &o_h0, &o_h1);
            for (int iw = 0; iw < IW; iw++) {
                int o_w0, o_w1;
                pool_covering(iw, s->SW, s->PL, s->KW, OW, &o_w0, &o_w1);
                float *dxi = dx + (row * IW + iw) * C;
                for (int c = 0; c < C; c++) dxi[c] = 0.0f;
                for (int oh = o_h0; oh < o_h1; oh++) {
                    int h0, h1;
                    pool_window(oh, s->SH, s->PT, s->KH, IH, &h0, &h1);
                    for (int ow = o_w0; ow < o_w1; ow++) {
                        int w0, w1;
                        pool_window(ow, s->SW, s->PL, s->KW, IW, &w0, &w1);
                        const float inv = 1.0f / (float)((h1 - h0) * (w1 - w0));
                        const float *dyo = dy + (((size_t)n * OH + oh) * OW + ow) * C;
                        for (int c = 0; c < C; c++) dxi[c] += dyo[c] * inv;
                    }
                }
            }
        }
    }
}

/* Widest channel run of one global-pool work item (its float accumulators, 4 KiB, are on the
 * thread's stack). */
#define GAP_W 1024

/* y: (N, C) = mean over HW of x: (N, HW, C). Work items are (n, channel run); runs are as wide
 * as the thread count allows (whole rows when N >= threads), since short runs strided by the row
 * length stream poorly. Each y element sums its HW inputs in order: thread-count independent. */
void global_avgpool_forward(float *y, const float *x, int N, int HW, int C) {
#pragma omp parallel if ((size_t)N * HW * C >= POOL_PAR_MIN)
    {
        const int nth = omp_get_num_threads();
        int runs = SB_MAX((nth + N - 1) / N, (C + GAP_W - 1) / GAP_W);
        int cw = (C + runs - 1) / runs;
        cw = SB_MIN((cw + 15) / 16 * 16, GAP_W);
        runs = (C + cw - 1) / cw;
        size_t lo, hi;
        pool_range((size_t)N * runs, &lo, &hi);
        for (size_t it = lo; it < hi; it++) {
            const int n = (int)(it / runs), c0 = (int)(it % runs) * cw;
            const int w = SB_MIN(cw, C - c0);
            float acc[GAP_W];
            for (int j = 0; j < w; j++) acc[j] = 0.0f;
            for (int p = 0; p < HW; p++) {
                const float *xp = x + ((size_t)n * HW + p) * C + c0;
                for (int j = 0; j < w; j++) acc[j] += xp[j];
            }
            const float inv = 1.0f / (float)HW;
            for (int j = 0; j < w; j++) y[(size_t)n * C + c0 + j] = acc[j] * inv;
        }
    }
}

/* dx: (N, HW, C) overwritten with dy: (N, C) / HW broadcast over HW. */
void global_avgpool_backward(float *dx, const float *dy, int N, int HW, int C) {
    const size_t rows = (size_t)N * HW;
    const float inv = 1.0f / (float)HW;
#pragma omp parallel if (rows * C >= POOL_PAR_MIN)
    {
        size_t lo, hi;
        pool_range(rows, &lo, &hi);
        for (size_t r = lo; r < hi; r++) {
            const float *d = dy + (r / HW) * C;
            float *o = dx + r * C;
            for (int c = 0; c < C; c++) o[c] = d[c] * inv;
        }
    }
}
