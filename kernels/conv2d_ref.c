/* kernels/conv2d_ref.c — naive 2-D convolution, forward and both backward passes, written to be
 * obviously right: direct sums over the window with TF padding read from the shape (PT/PL; the
 * bottom/right padding only shows up as OH/OW). Sums run in double, so these are the oracle for
 * the fast conv and the fallback for shapes it rejects. Each output element is produced by
 * exactly one thread with a fixed summation order, so results do not depend on the thread
 * count. The workspace is not used (may be NULL). */
#include "kernels/kernels.h"

#include "core/sb.h"

/* y: (N, OH, OW, OC) overwritten. x: (N, IH, IW, IC). w: (KH, KW, IC, OC). b: (OC) or NULL. */
void conv2d_forward_ref(float *y, const float *x, const float *w, const float *b,
                        const conv2d_shape *s, void *ws) {
    (void)ws;
    const int N = s->N, IH = s->IH, IW = s->IW, IC = s->IC, OC = s->OC;
    const int KH = s->KH, KW = s->KW, OH = s->OH, OW = s->OW;
#pragma omp parallel for schedule(static)
    for (long row = 0; row < (long)N * OH; row++) {
        const int n = (int)(row / OH), oh = (int)(row % OH);
        for (int ow = 0; ow < OW; ow++) {
            float *yo = y + (((size_t)n * OH + oh) * OW + ow) * OC;
            for (int oc = 0; oc < OC; oc++) {
                double acc = b ? b[oc] : 0.0;
                for (int kh = 0; kh < KH; kh++) {
                    const int ih = oh * s->SH - s->PT + kh;
                    if (ih < 0 || ih >= IH) continue;
                    for (int kw = 0; kw < KW; kw++) {
                        const int iw = ow * s->SW - s->PL + kw;
                        if (iw < 0 || iw >= IW) continue;
                        const float *xi = x + (((size_t)n * IH + ih) * IW + iw) * IC;
                        const float *wk = w + ((size_t)kh * KW + kw) * IC * OC + oc;
                        for (int ic = 0; ic < IC; ic++) acc += (double)xi[ic] * wk[(size_t)ic * OC];
                    }
                }
                yo[oc] = (float)acc;
            }
        }
    }
}

/* dx: (N, IH, IW, IC) overwritten. dy: (N, OH, OW, OC). w: (KH, KW, IC, OC).
 * Gather form: each input pixel sums over the (kh, kw) taps whose output position exists. */
void conv2d_backward_data_ref(float *dx, const float *dy, const float *w, const conv2d_shape *s,
                              void *ws) {
    (void)ws;
    const int N = s->N, IH = s->IH, IW = s->IW, IC = s->IC, OC = s->OC;
    const int KH = s->KH, KW = s->KW, OH = s->OH, OW = s->OW;
#pragma omp parallel for schedule(static)
    for (long row = 0; row < (long)N * IH; row++) {
        const int n = (int)(row / IH), ih = (int)(row % IH);
        for (int iw = 0; iw < IW; iw++) {
            float *dxi = dx + (((size_t)n * IH + ih) * IW + iw) * IC;
            for (int ic = 0; ic < IC; ic++) {
                double acc = 0.0;
                for (int kh = 0; kh < KH; kh++) {
                    const int th = ih + s->PT - kh; /* = oh * SH */
                    if (th < 0 || th % s->SH != 0 || th / s->SH >= OH) continue;
                    const int oh = th / s->SH;
                    for (int kw = 0; kw < KW; kw++) {
                        const int tw = iw + s->PL - kw;
                        if (tw < 0 || tw % s->SW != 0 || tw / s->SW >= OW) continue;
                        const int ow = tw / s->SW;
                        const float *dyo = dy + (((size_t)n * OH + oh) * OW + ow) * OC;
                        const float *wk = w + (((size_t)kh * KW + kw) * IC + ic) * OC;
                        for (int oc = 0; oc < OC; oc++) acc += (double)dyo[oc] * wk[oc];
                    }
                }
                dxi[ic] = (float)acc;
            }
        }
    }
}

/* dw: (KH, KW, IC, OC) overwritten. db: (OC) overwritten or NULL. dy: (N, OH, OW, OC).
 * x: (N, IH, IW, IC). */
void conv2d_backward_filter_ref(float *dw, float *db, const float *dy, const float *x,
                                const conv2d_shape *s, void *ws) {
    (void)ws;
    const int N = s->N, IH = s->IH, IW = s->IW, IC = s->IC, OC = s->OC;
    const int KH = s->KH, KW = s->KW, OH = s->OH, OW = s->OW;
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (long r = 0; r < (long)KH * KW * IC; r++) {
            const int kh = (int)(r / ((long)KW * IC)), kw = (int)(r / IC % KW);
            const int ic = (int)(r % IC);
            for (int oc = 0; oc < OC; oc++) {
                double acc = 0.0;
                for (int n = 0; n < N; n++)
                    for (int oh = 0; oh < OH; oh++) {
                        const int ih = oh * s->SH - s->PT + kh;
                        if (ih < 0 || ih >= IH) continue;
                        for (int ow = 0; ow < OW; ow++) {
                            const int iw = ow * s->SW - s->PL + kw;
                            if (iw < 0 || iw >= IW) continue;
                            acc += (double)x[(((size_t)n * IH + ih) * IW + iw) * IC + ic] *
                                   dy[(((size_t)n * OH + oh) * OW + ow) * OC + oc];
                        }
                    }
                dw[(size_t)r * OC + oc] = (float)acc;
            }
        }
        if (db) {
#pragma omp for schedule(static)
            for (int oc = 0; oc < OC; oc++) {
                double acc = 0.0;
                for (size_t i = 0; i < (size_t)N * OH * OW; i++) acc += dy[i * OC + oc];
                db[oc] = (float)acc;
            }
        }
    }
}
