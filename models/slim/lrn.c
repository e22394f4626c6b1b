/* models/slim/lrn.c — local response normalization with tf.nn.lrn's semantics, for CifarNet
 * (the only slim net here that uses it, so it lives with the models rather than in kernels/):
 *   scale[c] = bias + alpha * sum_{|c'-c| <= depth_radius} x[c']^2,  y[c] = x[c] * scale[c]^-beta
 * over the channel axis of NHWC rows. Note TF's alpha is not divided by the window size
 * (PyTorch's LocalResponseNorm does divide). Rows are split over OpenMP threads. */
#include <math.h>

#include "models/slim/net_impl.h"

void net_lrn_forward(float *y, float *scale, const float *x, const lrn_param *p) {
    const int C = p->C, r = p->depth_radius;
#pragma omp parallel for schedule(static)
    for (int m = 0; m < p->M; m++) {
        const float *xr = x + (size_t)m * C;
        float *yr = y + (size_t)m * C, *sr = scale + (size_t)m * C;
        for (int c = 0; c < C; c++) {
            double s = 0;
            for (int k = SB_MAX(c - r, 0); k <= SB_MIN(c + r, C - 1); k++) s += (double)xr[k] * xr[k];
            double sc = p->bias + p->alpha * s;
            sr[c] = (float)sc;
            yr[c] = (float)(xr[c] * pow(sc, -p->beta));
        }
    }
}

/* dx[c] = dy[c] * scale[c]^-beta
 *         - 2 alpha beta x[c] * sum_{|c'-c| <= r} dy[c'] * y[c'] / scale[c'] */
void net_lrn_backward(float *dx, const float *dy, const float *x, const float *y,
                      const float *scale, const lrn_param *p) {
    const int C = p->C, r = p->depth_radius;
#pragma omp parallel for schedule(static)
    for (int m = 0; m < p->M; m++) {
        size_t o = (size_t)m * C;
        for (int c = 0; c < C; c++) {
            double s = 0;
            for (int k = SB_MAX(c - r, 0); k <= SB_MIN(c + r, C - 1); k++)
                s += (double)dy[o + k] * y[o + k] / scale[o + k];
            dx[o + c] = (float)(dy[o + c] * pow(scale[o + c], -p->beta) -
                                2.0 * p->alpha * p->beta * x[o + c] * s);
        }
    }
}
