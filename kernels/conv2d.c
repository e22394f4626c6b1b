/* kernels/conv2d.c — fast 2-D convolution, NHWC x HWIO, forward and both backward passes, on
 * the GEMM engine of gemm.c. No im2col matrix is ever built:
 *  - forward: y(P, OC) = X_col(P, KH*KW*IC) . W(KH*KW*IC, OC) with P = N*OH*OW. A rows are
 *    pointers into x (one segment per tap and channel run, KW taps merged into one run when IC
 *    is small and the window is inside the image); padded taps point at zeros. A 1x1 stride-1
 *    convolution is thus a plain GEMM on x. Up to 4 input channels (the stems, K = 27 or 147)
 *    run as direct register-blocked loops instead (conv2d_direct.c).
 *  - backward data: dx = dy (*) W^T as SH*SW "phase" convolutions — the dx pixels with
 *    ih % SH == ph, iw % SW == pw receive exactly the taps kh = ph + PT (mod SH); each phase is
 *    a stride-1 convolution of dy with those taps, so every dx element is written once (no
 *    col2im scatter, no atomics) and stride 1 is a single phase. With very few input channels
 *    (IC = 3) the phase GEMMs would be nearly empty: up to 4 channels run as direct dot products
 *    over OC (conv2d_dxdot.c), other small IC as dy . W^T per image with a col2im.
 *  - backward filter: dW(K', OC) = X_col^T . dy, a reduction over P. Small dW: each thread
 *    reduces its own pixel range into a private partial (dW^T layout when that costs the GEMM
 *    less; for 3-channel inputs X_col^T is read in place as a strided view of x), then the
 *    partials are summed in thread order. Large dW: threads split dW itself.
 *    db sums dy per thread and is reduced the same way. The small-dW layers
 *    are the first ones, with the longest reductions (N*224*224 pixels): their partials add
 *    float GEMMs over BWF_SUB pixels in double, so the error does not grow with the image.
 * This file knows shapes and layouts; the ISA and blocking live in gemm.c and ukernel_*.c. */
#include <omp.h>
#include <string.h>

#include "core/sb.h"
#include "kernels/kernels.h"
#include "kernels/kernels_impl.h"

/* Largest per-thread partial dW (floats) for the reduction-split backward filter. */
#ifndef CV_PARTIAL_MAX
#define CV_PARTIAL_MAX (1 << 16)
#endif
/* A 1x1 layer's dW up to CV_PARTIAL_BIG floats is a split reduction too when every thread gets
 * at least CV_PARTIAL_BIG_PIXELS pixels: the partials' zeroing, adding and summing then cost
 * under 2% of the thread's FMAs, while splitting dW had each thread pack all of x^T (or of dy),
 * where each packed value meets only OC (IC) columns. resnet block2/unit_1/shortcut (256 x 512,
 * 25088 pixels) 1.03-1.11x on Zen 4 (medians of 5 and 6 alternating runs, 8 of 11 paired
 * wins); the 3x3 layers of that size (vgg conv2_x, resnet block2 conv2) gained nothing or lost
 * up to 6%, and 1x1 layers with 6272 pixels or fewer lost 10-30%. */
#ifndef CV_PARTIAL_BIG
#define CV_PARTIAL_BIG (1 << 18)
#endif
#ifndef CV_PARTIAL_BIG_PIXELS
#define CV_PARTIAL_BIG_PIXELS 8192
#endif
/* Pixels ahead that the backward filter's X_col packer prefetches. */
#ifndef BWF_PREFETCH
#define BWF_PREFETCH 6
#endif
/* Pixels ahead that the backward filter's dy^T packer (orientation 2) prefetches: it deals a
 * K block's rows out in a burst, so the hardware prefetcher fell behind (1.25-1.28x on resnet's
 * block1/unit_1/conv1, whose pass reads dy and x from memory). */
#ifndef BWF2_PREFETCH
#define BWF2_PREFETCH 32
#endif
/* Pixels per float GEMM whose result a small-dW partial adds in double. */
#ifndef BWF_SUB
#define BWF_SUB 4096
#endif

typedef struct cv_ctx {
    const conv2d_shape *s;
    const float *x;   /* forward / backward-filter input */
    const float *w;   /* weights */
    const float *dy;  /* backward: output gradient */
    float *dx;        /* backward data: output */
    ptrdiff_t pbase;  /* backward filter: first pixel of this thread's reduction range */
    /* backward-data phase: dx pixels (ph + yq*SH, pw + xq*SW), taps kh0 + a*SH, kw0 + b*SW */
    int ph, pw, GH, GW, kh0, kw0, nkh, nkw;
} cv_ctx;

/* Output pixels in order, from pixel q (absolute, in [0, N*OH*OW)) on: the forward's segment
 * builder and the backward filter's packers visit every pixel of a range, so only the first one
 * is found by division. */
typedef struct pixel_walk {
    const conv2d_shape *s;
    const float *img; /* the pixel's image in x */
    int oh, ow;
    int ih0, iw0; /* its window's top-left corner in the image (may be in the padding) */
} pixel_walk;

/* The window starting at column iw0 lies inside the image horizontally. */
static inline int xcol_inner(const conv2d_shape *s, int iw0) {
    return iw0 >= 0 && iw0 + s->KW <= s->IW;
}

static inline void pixel_walk_corner(pixel_walk *w) {
    w->ih0 = w->oh * w->s->SH - w->s->PT;
    w->iw0 = w->ow * w->s->SW - w->s->PL;
}

static inline pixel_walk pixel_walk_start(const cv_ctx *c, ptrdiff_t q) {
    const conv2d_shape *s = c->s;
    const ptrdiff_t OHW = (ptrdiff_t)s->OH * s->OW, n = q / OHW;
    const int rem = (int)(q - n * OHW), oh = rem / s->OW;
    pixel_walk w = {.s = s, .img = c->x + n * s->IH * s->IW * s->IC, .oh = oh,
                    .ow = rem - oh * s->OW};
    pixel_walk_corner(&w);
    return w;
}

static inline void pixel_walk_next(pixel_walk *w) {
    const conv2d_shape *s = w->s;
    if (++w->ow == s->OW) {
        w->ow = 0;
        if (++w->oh == s->OH) w->oh = 0, w->img += (ptrdiff_t)s->IH * s->IW * s->IC;
    }
    pixel_walk_corner(w);
}

/* ------------------------------------------------------------------------------------------ */
/* Forward                                                                                     */
/* ------------------------------------------------------------------------------------------ */
static int fwd_segs(const void *ctx, int i0, int mr, int k0, int kc, kn_seg *segs) {
    const cv_ctx *c = ctx;
    const conv2d_shape *s = c->s;
    const int IC = s->IC, KW = s->KW;
    int ih0[KN_MR], iw0[KN_MR];
    const float *img[KN_MR];
    int inner = 1; /* every row's KW window lies inside the image horizontally */
    /* stepped, not divided: this runs once per micro-panel and K block, and the divisions were
     * a few percent of a 64-channel layer */
    pixel_walk px = pixel_walk_start(c, i0);
    for (int r = 0; r < mr; r++, pixel_walk_next(&px)) {
        ih0[r] = px.ih0;
        iw0[r] = px.iw0;
        img[r] = px.img;
        if (!xcol_inner(s, px.iw0)) inner = 0;
    }
    const int merge_ok = inner && KW > 1 && IC < 64;
    int ns = 0;
    /* the block's first tap by division, the next ones by stepping (perf: this function was
     * 10-12% of a 64-channel 3x3 forward when each segment list served a single tile) */
    const int tap0 = k0 / IC;
    int ci = k0 - tap0 * IC, kh = tap0 / KW, kw = tap0 - kh * KW;
    for (int k = k0, kend = k0 + kc; k < kend;) {
        int len = SB_MIN(IC - ci, kend - k);
        if (merge_ok && kw == 0 && ci == 0 && kend - k >= KW * IC) len = KW * IC;
        kn_seg *g = &segs[ns++];
        g->len = len;
        int nz = 0;
        for (int r = 0; r < KN_MR; r++) {
            const float *p = kn_zeros;
            if (r < mr) {
                const int ih = ih0[r] + kh, iw = iw0[r] + kw;
                if (ih >= 0 && ih < s->IH && iw >= 0 && iw < s->IW)
                    p = img[r] + ((ptrdiff_t)ih * s->IW + iw) * IC + ci;
            }
            g->row[r] = p;
            nz |= p != kn_zeros;
        }
        if (!nz) g->len = -len;
        k += len;
        for (ci += len; ci >= IC; ci -= IC) /* a merged segment steps KW taps */
            if (++kw == KW) kw = 0, kh++;
    }
    return ns;
}

/* Panel i_to is panel i_from moved along one output row when all the pixels of both lie in
 * that row with their windows inside the image horizontally: a segment's rows then share its
 * tap's row of x (all inside the image or all zeros, len < 0), and every pointer moves by the
 * pixels between the panels. (Building the lists per panel was a quarter of vgg conv1_1's
 * forward, K = 27: three segments a tile.) */
static ptrdiff_t fwd_shift(const void *ctx, int i_from, int i_to) {
    const conv2d_shape *s = ((const cv_ctx *)ctx)->s;
    const int ow = i_from % (s->OH * s->OW) % s->OW, last = ow + i_to - i_from + KN_MR - 1;
    if (last >= s->OW || !xcol_inner(s, ow * s->SW - s->PL) ||
        !xcol_inner(s, last * s->SW - s->PL))
        return KN_NO_SHIFT;
    return (ptrdiff_t)(i_to - i_from) * s->SW * s->IC;
}

static void fwd_bpack(const void *ctx, float *dst, int k0, int kc, int j0, int nc) {
    const cv_ctx *c = ctx;
    kn_pack_b_rows(dst, c->w, c->s->OC, k0, kc, j0, nc);
}

static void cv_check(const conv2d_shape *s) {
    SB_ASSERT(s->N > 0 && s->IC > 0 && s->OC > 0 && s->KH > 0 && s->KW > 0);
    SB_ASSERT(s->SH > 0 && s->SW > 0 && s->OH > 0 && s->OW > 0);
    SB_ASSERT(s->OH == (s->IH + s->PT + s->PB - s->KH) / s->SH + 1);
    SB_ASSERT(s->OW == (s->IW + s->PL + s->PR - s->KW) / s->SW + 1);
}

/* A window that covers the whole unpadded input once (vgg's fc6 as a 7x7 VALID conv on 7x7, or
 * any 1x1 conv on a 1x1 map) is a fully connected layer: x is (N, KH*KW*IC) as it lies. */
static int cv_is_fc(const conv2d_shape *s) {
    return s->OH == 1 && s->OW == 1 && s->KH == s->IH && s->KW == s->IW && s->PT == 0 &&
           s->PL == 0 && s->PB == 0 && s->PR == 0;
}

void conv2d_forward(float *y, const float *x, const float *w, const float *b,
                    const conv2d_shape *s, void *ws) {
    cv_check(s);
    if (conv2d_direct_applies(s)) {
        conv2d_direct(y, x, w, b, s, ws);
        return;
    }
    const int K = s->KH * s->KW * s->IC;
    cv_ctx c = {.s = s, .x = x, .w = w};
    kn_gemm_plan p = {.M = s->N * s->OH * s->OW, .N = s->OC, .K = K,
                      .kc = kn_pick_kc(K, s->IC), .a_segs = fwd_segs, .a_shift = fwd_shift,
                      .actx = &c, .b_pack = fwd_bpack, .bctx = &c, .b_direct = w, .b_ld = s->OC,
                      .c = y, .ldc = s->OC, .alpha = 1.0f, .beta = 0.0f, .bias = b};
    kn_sgemm_ctx g;
    if (cv_is_fc(s)) { /* y(N, OC) = x(N, K) . w(K, OC) */
        kn_sgemm_plan(&p, &g, 0, 0, s->N, s->OC, K, 1.0f, x, K, w, s->OC, 0.0f, y, s->OC);
        p.bias = b;
    }
#pragma omp parallel
    {
        const int ith = omp_get_thread_num();
        kn_thread_ws tw = kn_thread_ws_get(ws, ith);
        kn_gemm_run_split(&p, ith, omp_get_num_threads(), &tw);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Backward data                                                                               */
/* ------------------------------------------------------------------------------------------ */
/* Phase (ph, pw) of the dx grid: its size, and the taps that reach it. */
static void bwd_phase(cv_ctx *c, int ph, int pw) {
    const conv2d_shape *s = c->s;
    c->ph = ph;
    c->pw = pw;
    c->GH = ph < s->IH ? (s->IH - ph + s->SH - 1) / s->SH : 0;
    c->GW = pw < s->IW ? (s->IW - pw + s->SW - 1) / s->SW : 0;
    c->kh0 = (ph + s->PT) % s->SH;
    c->kw0 = (pw + s->PL) % s->SW;
    c->nkh = c->kh0 < s->KH ? (s->KH - c->kh0 + s->SH - 1) / s->SH : 0;
    c->nkw = c->kw0 < s->KW ? (s->KW - c->kw0 + s->SW - 1) / s->SW : 0;
}

static int bwd_segs(const void *ctx, int i0, int mr, int k0, int kc, kn_seg *segs) {
    const cv_ctx *c = ctx;
    const conv2d_shape *s = c->s;
    const int OC = s->OC, GHW = c->GH * c->GW;
    /* per row: the dy pixel that tap (kh0, kw0) reads, (oh0, ow0); tap (kh0 + a*SH, kw0 + b*SW)
     * then reads (oh0 - a, ow0 - b). Exact divisions: kh0 = (ph + PT) % SH. The first row by
     * division, the next ones by stepping through the phase grid. */
    int oh0[KN_MR], ow0[KN_MR];
    const float *img[KN_MR];
    int n = i0 / GHW, yq = (i0 - n * GHW) / c->GW, xq = i0 - n * GHW - yq * c->GW;
    for (int r = 0; r < mr; r++) {
        oh0[r] = (c->ph + yq * s->SH + s->PT - c->kh0) / s->SH;
        ow0[r] = (c->pw + xq * s->SW + s->PL - c->kw0) / s->SW;
        img[r] = c->dy + (ptrdiff_t)n * s->OH * s->OW * OC;
        if (++xq == c->GW) {
            xq = 0;
            if (++yq == c->GH) yq = 0, n++;
        }
    }
    int ns = 0;
    for (int k = k0, kend = k0 + kc; k < kend;) {
        const int t = k / OC, oc = k - t * OC, a = t / c->nkw, b = t - a * c->nkw;
        const int len = SB_MIN(OC - oc, kend - k);
        kn_seg *g = &segs[ns++];
        g->len = len;
        int nz = 0;
        for (int r = 0; r < KN_MR; r++) {
            const float *p = kn_zeros;
            if (r < mr) {
                const int oh = oh0[r] - a, ow = ow0[r] - b;
                if (oh >= 0 && oh < s->OH && ow >= 0 && ow < s->OW)
                    p = img[r] + ((ptrdiff_t)oh * s->OW + ow) * OC + oc;
            }
            g->row[r] = p;
            nz |= p != kn_zeros;
        }
        if (!nz) g->len = -len;
        k += len;
    }
    return ns;
}

/* Panel i_to is panel i_from moved along one row of the phase grid when every tap of all their
 * pixels reads a dy pixel inside dy horizontally: grid neighbours read neighbouring dy pixels. */
static ptrdiff_t bwd_shift(const void *ctx, int i_from, int i_to) {
    const cv_ctx *c = ctx;
    const conv2d_shape *s = c->s;
    const int xq = i_from % (c->GH * c->GW) % c->GW, last = xq + i_to - i_from + KN_MR - 1;
    if (last >= c->GW) return KN_NO_SHIFT;
    const int ow_first = (c->pw + xq * s->SW + s->PL - c->kw0) / s->SW;
    const int ow_last = (c->pw + last * s->SW + s->PL - c->kw0) / s->SW;
    if (ow_first - (c->nkw - 1) < 0 || ow_last >= s->OW) return KN_NO_SHIFT;
    return (ptrdiff_t)(i_to - i_from) * s->OC;
}

/* B(k = (t, oc), j = ic) = w[kh_t, kw_t, ic, oc]: for each column ic the k run of one tap is
 * contiguous in w, so read along oc and write the panel column (stride NR, inside L2). */
static void bwd_bpack(const void *ctx, float *dst, int k0, int kc, int j0, int nc) {
    const cv_ctx *c = ctx;
    const conv2d_shape *s = c->s;
    const int OC = s->OC, IC = s->IC;
    for (int jp = 0; jp < nc; jp += KN_NR) {
        const int nr = SB_MIN(KN_NR, nc - jp);
        for (int k = k0, kend = k0 + kc; k < kend;) {
            const int t = k / OC, oc = k - t * OC, a = t / c->nkw;
            const int kh = c->kh0 + a * s->SH, kw = c->kw0 + (t - a * c->nkw) * s->SW;
            const int run = SB_MIN(OC - oc, kend - k);
            const float *src = c->w + ((ptrdiff_t)(kh * s->KW + kw) * IC + j0 + jp) * OC + oc;
            kn_pack_b_cols(dst + (size_t)(k - k0) * KN_NR, src, OC, run, nr);
            k += run;
        }
        dst += (size_t)kc * KN_NR;
    }
}

static float *bwd_crow(const void *ctx, int i) {
    const cv_ctx *c = ctx;
    const conv2d_shape *s = c->s;
    const int GHW = c->GH * c->GW, n = i / GHW, rem = i - n * GHW, yq = rem / c->GW;
    const int ih = c->ph + yq * s->SH, iw = c->pw + (rem - yq * c->GW) * s->SW;
    return c->dx + (((ptrdiff_t)n * s->IH + ih) * s->IW + iw) * s->IC;
}

/* Few input channels (the first layer: IC = 3) leave the phase GEMMs' output columns (IC)
 * mostly empty. There, dx is built per image instead: blocks of dy rows times W^T give
 * X_col-shaped rows (KH*KW*IC columns, a full micro-tile width), scattered into the image by
 * col2im. Threads own whole images, so the scatter needs no atomics and stays deterministic.
 * Returns the dy rows per block (0: use the phase method). */
static int bwd_col_rows(const conv2d_shape *s) {
    if (2 * s->IC > KN_NR || cv_is_fc(s)) return 0;
    const int Kp = s->KH * s->KW * s->IC, OHW = s->OH * s->OW;
    int R = (64 << 10) / Kp; /* 256 KB of X_col rows per thread */
    if (R < KN_MR) R = KN_MR;
    return R < OHW ? R : OHW;
}

static size_t bwd_col_stride(const conv2d_shape *s) {
    return kn_align64(sizeof(float) * bwd_col_rows(s) * s->KH * s->KW * s->IC);
}

static void bwd_data_col2im(float *dx, const float *dy, const float *w, const conv2d_shape *s,
                            void *ws) {
    const int R = bwd_col_rows(s), Kp = s->KH * s->KW * s->IC, OHW = s->OH * s->OW;
    const int IC = s->IC, OC = s->OC;
    char *bufs = (char *)ws + (size_t)kn_max_threads() * kn_thread_ws_bytes();
#pragma omp parallel
    {
        const int ith = omp_get_thread_num(), nth = omp_get_num_threads();
        kn_thread_ws tw = kn_thread_ws_get(ws, ith);
        float *cbuf = (float *)(bufs + (size_t)ith * bwd_col_stride(s));
        int n0, n1;
        kn_split(s->N, ith, nth, 1, &n0, &n1);
        for (int n = n0; n < n1; n++) {
            float *img = dx + (ptrdiff_t)n * s->IH * s->IW * IC;
            memset(img, 0, sizeof(float) * s->IH * s->IW * IC);
            for (int q0 = 0; q0 < OHW; q0 += R) {
                const int r = SB_MIN(R, OHW - q0);
                kn_gemm_plan p;
                kn_sgemm_ctx g;
                kn_sgemm_plan(&p, &g, 0, 1, r, Kp, OC, 1.0f,
                              dy + ((ptrdiff_t)n * OHW + q0) * OC, OC, w, OC, 0.0f, cbuf, Kp);
                kn_gemm_run(&p, 0, r, 0, Kp, &tw);
                for (int i = 0; i < r; i++) {
                    const int q = q0 + i, oh = q / s->OW, ow = q - oh * s->OW;
                    const float *src = cbuf + (size_t)i * Kp;
                    for (int kh = 0; kh < s->KH; kh++) {
                        const int ih = oh * s->SH - s->PT + kh;
                        if (ih < 0 || ih >= s->IH) continue;
                        for (int kw = 0; kw < s->KW; kw++) {
                            const int iw = ow * s->SW - s->PL + kw;
                            if (iw < 0 || iw >= s->IW) continue;
                            float *d = img + ((ptrdiff_t)ih * s->IW + iw) * IC;
                            const float *v = src + (kh * s->KW + kw) * IC;
                            for (int c = 0; c < IC; c++) d[c] += v[c];
                        }
                    }
                }
            }
        }
    }
}

void conv2d_backward_data(float *dx, const float *dy, const float *w, const conv2d_shape *s,
                          void *ws) {
    cv_check(s);
    if (conv2d_dxdot_applies(s)) {
        conv2d_dxdot(dx, dy, w, s);
        return;
    }
    if (bwd_col_rows(s)) {
        bwd_data_col2im(dx, dy, w, s, ws);
        return;
    }
    if (cv_is_fc(s)) { /* dx(N, K) = dy(N, OC) . w(K, OC)^T */
        const int K = s->KH * s->KW * s->IC;
        kn_gemm_plan p;
        kn_sgemm_ctx g;
        kn_sgemm_plan(&p, &g, 0, 1, s->N, K, s->OC, 1.0f, dy, s->OC, w, s->OC, 0.0f, dx, K);
#pragma omp parallel
        {
            const int ith = omp_get_thread_num();
            kn_thread_ws tw = kn_thread_ws_get(ws, ith);
            kn_gemm_run_split(&p, ith, omp_get_num_threads(), &tw);
        }
        return;
    }
#pragma omp parallel
    {
        const int ith = omp_get_thread_num(), nth = omp_get_num_threads();
        kn_thread_ws tw = kn_thread_ws_get(ws, ith);
        for (int ph = 0; ph < s->SH; ph++) {
            for (int pw = 0; pw < s->SW; pw++) {
                cv_ctx c = {.s = s, .w = w, .dy = dy, .dx = dx};
                bwd_phase(&c, ph, pw);
                const int M = s->N * c.GH * c.GW;
                if (M == 0) continue;
                const int K = c.nkh * c.nkw * s->OC;
                if (K == 0) { /* no tap reaches these pixels (kernel smaller than stride) */
                    int i0, i1;
                    kn_split(M, ith, nth, 1, &i0, &i1);
                    for (int i = i0; i < i1; i++)
                        memset(bwd_crow(&c, i), 0, sizeof(float) * s->IC);
                    continue;
                }
                kn_gemm_plan p = {.M = M, .N = s->IC, .K = K, .kc = kn_pick_kc(K, s->OC),
                                  .a_segs = bwd_segs, .a_shift = bwd_shift, .actx = &c,
                                  .b_pack = bwd_bpack, .bctx = &c, .alpha = 1.0f,
                                  .beta = 0.0f};
                if (s->SH == 1 && s->SW == 1) {
                    p.c = dx;
                    p.ldc = s->IC;
                } else {
                    p.c_row = bwd_crow;
                    p.cctx = &c;
                }
                kn_gemm_run_split(&p, ith, nth, &tw);
            }
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Backward filter                                                                             */
/* ------------------------------------------------------------------------------------------ */
/* ceil(n / d) for d > 0 and any n (C's division truncates toward zero: the ceiling for n < 0) */
static inline int cv_ceil_div(int n, int d) { return n >= 0 ? (n + d - 1) / d : n / d; }

/* The run of X_col[pixel] starting at tap (kh, kw), channel ci: where it is in x (NULL: padding,
 * zeros) and its length — the rest of the tap's channels, or the rest of the window row's taps
 * when that row lies inside the image (its KW taps are then one contiguous piece of x).
 * xcol_run: the same from column j, cut at jend. */
static inline int xcol_run_at(const conv2d_shape *s, const float *img, int ih0, int iw0,
                              int inner, int kh, int kw, int ci, const float **src) {
    const int IC = s->IC, ih = ih0 + kh, iw = iw0 + kw, row_in = ih >= 0 && ih < s->IH;
    *src = row_in && iw >= 0 && iw < s->IW ? img + ((ptrdiff_t)ih * s->IW + iw) * IC + ci : NULL;
    return row_in && inner ? (s->KW - kw) * IC - ci : IC - ci;
}

static inline int xcol_run(const conv2d_shape *s, const float *img, int ih0, int iw0, int inner,
                           int j, int jend, const float **src) {
    const int tap = j / s->IC, ci = j - tap * s->IC, kh = tap / s->KW, kw = tap - kh * s->KW;
    return SB_MIN(xcol_run_at(s, img, ih0, iw0, inner, kh, kw, ci, src), jend - j);
}

/* X_col[pixel][j0 .. j0+len) into d; each piece of x is prefetched ahead floats further on too
 * (the same piece of a later pixel). */
static void xcol_copy(const cv_ctx *c, const float *img, int ih0, int iw0, int j0, int len,
                      float *d, ptrdiff_t ahead) {
    const int inner = xcol_inner(c->s, iw0);
    for (int j = j0, jend = j0 + len; j < jend;) {
        const float *src;
        const int run = xcol_run(c->s, img, ih0, iw0, inner, j, jend, &src);
        if (src) {
            for (int e = 0; e < run; e += 16) __builtin_prefetch(src + ahead + e, 0, 3);
            kn_copy_floats(d, src, run);
        } else {
            kn_zero_floats(d, run);
        }
        d += run;
        j += run;
    }
}

/* Orientation 1, A' = X_col^T: rows i = k' (tap, c), k = pixels. Pixel by pixel (the window
 * origin stepped, not divided), its X_col columns [i0, i0+mc) are dealt out MR floats per panel
 * straight from x when they are one run of it — always for a 1x1 conv, and for a wider window
 * when the block stays inside one window row that lies in the image — and otherwise gathered
 * into a row buffer first. The block's first tap and channel are the same for every pixel, so
 * their arithmetic is done once. (Gathering every pixel and dealing element by element was a
 * third of the pass on resnet's 1x1 layers, where each A element meets only OC columns.) */
static void bwf1_apack(const void *ctx, float *dst, int i0, int mc, int k0, int kc) {
    const cv_ctx *c = ctx;
    const conv2d_shape *s = c->s;
    const int IC = s->IC, KW = s->KW;
    const size_t panel = kn_apanel_stride(kc);
    const int tap = i0 / IC, ci = i0 - tap * IC, kh = tap / KW, kw = tap - kh * KW;
    float row[KN_MC + KN_MR];
    pixel_walk px = pixel_walk_start(c, c->pbase + k0);
    for (int k = 0; k < kc; k++, pixel_walk_next(&px)) {
        const float *src;
        const int run = xcol_run_at(s, px.img, px.ih0, px.iw0, xcol_inner(s, px.iw0), kh, kw, ci,
                                    &src);
        /* the pixels' pieces lie a row of x apart, 4 KB and more: too far for the hardware
         * prefetchers, so fetch a few pixels ahead (the next pixels of the same output row; past
         * its end the guess is wrong and costs nothing). Gathered blocks too: without it the
         * gather was a third of the stride-2 128-channel layers' pass on Zen 5. */
        const ptrdiff_t ahead = (ptrdiff_t)BWF_PREFETCH * s->SW * IC;
        if (src && run >= mc) {
            for (int e = 0; e < mc; e += 16) __builtin_prefetch(src + ahead + e, 0, 3);
        } else {
            xcol_copy(c, px.img, px.ih0, px.iw0, i0, mc, row, ahead);
            src = row;
        }
        kn_deal_row(dst + (size_t)k * KN_MR, src, mc, panel);
    }
}

/* Orientation 1 with X_col^T read in place (inputs of at most KN_ASTEP_MAX / SW channels: the
 * first layers). Along one output row, X_col^T's row i = (kh, kw, c) is x's image row ih0 + kh
 * from column iw0 + kw, channel c: IC * SW floats a pixel, a strided view the indirect kernel
 * reads directly. A segment is a run of pixels in one output row over which no row's tap
 * enters or leaves the image; a row outside it points at zeros. (Packing these 27 or 147
 * values a pixel into micro-panels cost as much as the FMAs: vgg conv1_1's backward filter ran
 * at 35% of peak.) */
static int bwfs_segs(const void *ctx, int i0, int mr, int k0, int kc, kn_seg *segs) {
    const cv_ctx *c = ctx;
    const conv2d_shape *s = c->s;
    const int IC = s->IC, KW = s->KW, SW = s->SW;
    /* per row: its tap, the output columns [lo, hi) where that tap's input column is inside the
     * image, and where its value lies from a pixel's window corner; all found once per call,
     * so a segment costs a few compares per row (found per row and segment, with divisions,
     * this function was 12% of resnet conv1's backward filter; now 7%) */
    int kh[KN_MR], kw[KN_MR], ch[KN_MR], lo[KN_MR], hi[KN_MR];
    const int tap0 = i0 / IC;
    ch[0] = i0 - tap0 * IC, kh[0] = tap0 / KW, kw[0] = tap0 - kh[0] * KW;
    for (int r = 1; r < mr; r++) {
        ch[r] = ch[r - 1] + 1, kh[r] = kh[r - 1], kw[r] = kw[r - 1];
        if (ch[r] == IC) ch[r] = 0, kw[r]++;
        if (kw[r] == KW) kw[r] = 0, kh[r]++;
    }
    ptrdiff_t off[KN_MR]; /* row r's value for a pixel: at its window's corner + off[r] */
    for (int r = 0; r < mr; r++) { /* iw = ow * SW - PL + kw: first ow with iw >= 0, >= IW */
        lo[r] = SB_MAX(cv_ceil_div(s->PL - kw[r], SW), 0);
        hi[r] = cv_ceil_div(s->IW + s->PL - kw[r], SW);
        off[r] = ((ptrdiff_t)kh[r] * s->IW + kw[r]) * IC + ch[r];
    }
    pixel_walk px = pixel_walk_start(c, c->pbase + k0);
    int ns = 0;
    for (int k = 0; k < kc;) {
        int len = SB_MIN(kc - k, s->OW - px.ow);
        for (int r = 0; r < mr; r++) /* pixels until row r's column crosses an image edge */
            len = SB_MIN(len, px.ow < lo[r] ? lo[r] - px.ow : px.ow < hi[r] ? hi[r] - px.ow : len);
        kn_seg *g = &segs[ns++];
        const ptrdiff_t corner = ((ptrdiff_t)px.ih0 * s->IW + px.iw0) * IC; /* may be < 0 */
        int nz = 0;
        for (int r = 0; r < KN_MR; r++) {
            const int in = r < mr && (unsigned)(px.ih0 + kh[r]) < (unsigned)s->IH &&
                           px.ow >= lo[r] && px.ow < hi[r];
            g->row[r] = in ? px.img + (corner + off[r]) : kn_zeros;
            nz |= in;
        }
        g->len = nz ? len : -len;
        k += len;
        px.ow += len - 1; /* the run ends at the row's end at the latest */
        pixel_walk_next(&px);
    }
    return ns;
}

/* Orientation 1, B' = dy: k = pixels, j = oc. */
static void bwf1_bpack(const void *ctx, float *dst, int k0, int kc, int j0, int nc) {
    const cv_ctx *c = ctx;
    kn_pack_b_rows(dst, c->dy + c->pbase * c->s->OC, c->s->OC, k0, kc, j0, nc);
}

/* Orientation 2, A' = dy^T: rows i = oc, k = pixels. Pixel by pixel: each dy row is read once,
 * in order, and dealt out MR floats per panel (rows past the block's end are prefetched for the
 * next block; a prefetch past dy's end is dropped, not a fault). */
static void bwf2_apack(const void *ctx, float *dst, int i0, int mc, int k0, int kc) {
    const cv_ctx *c = ctx;
    const int OC = c->s->OC;
    const size_t panel = kn_apanel_stride(kc);
    const float *dy = c->dy + (c->pbase + k0) * OC + i0;
    for (int k = 0; k < kc; k++) {
        const float *ahead = dy + (ptrdiff_t)(k + BWF2_PREFETCH) * OC;
        for (int e = 0; e < mc; e += 16) __builtin_prefetch(ahead + e, 0, 3);
        kn_deal_row(dst + (size_t)k * KN_MR, dy + (ptrdiff_t)k * OC, mc, panel);
    }
}

/* Orientation 2, B' = X_col: k = pixels, j = k'. Each pixel's X_col columns [j0, j0+nc) go
 * straight from x into the panels: xcol_copy's runs, cut where the panels end (the tap
 * arithmetic is done once per run, not once per panel). */
static void bwf2_bpack(const void *ctx, float *dst, int k0, int kc, int j0, int nc) {
    const cv_ctx *c = ctx;
    const conv2d_shape *s = c->s;
    const int npanel = (nc + KN_NR - 1) / KN_NR;
    const size_t panel = (size_t)kc * KN_NR;
    pixel_walk px = pixel_walk_start(c, c->pbase + k0);
    const int tap = j0 / s->IC, ci = j0 - tap * s->IC;
    if (nc <= KN_NR && ci + nc <= s->IC) {
        /* one panel inside one tap's channels (64-channel and wider layers, packed panel by
         * panel): a piece of one pixel of x, or zeros, per k. Along an output row the piece
         * moves by SW pixels of x, and it is inside the image for the columns [lo, hi) (found
         * once), so a row is three runs without per-pixel tap arithmetic. (Found pixel by
         * pixel, this packing was a fifth of the avx2 build's 64-channel 3x3 backward filter,
         * whose 16-wide panels pack each pixel 36 times.) */
        const int kh = tap / s->KW, kw = tap - kh * s->KW, SW = s->SW;
        const int lo = SB_MAX(cv_ceil_div(s->PL - kw, SW), 0);
        const int hi = SB_MIN(cv_ceil_div(s->IW + s->PL - kw, SW), s->OW);
        const ptrdiff_t step = (ptrdiff_t)SW * s->IC;
        for (int k = 0; k < kc;) {
            const int ow0 = px.ow, len = SB_MIN(kc - k, s->OW - ow0), ih = px.ih0 + kh;
            float *d = dst + (size_t)k * KN_NR;
            int a = len, b = len; /* [a, b): the run's pixels whose piece is in x */
            if ((unsigned)ih < (unsigned)s->IH) {
                a = SB_MIN(SB_MAX(lo - ow0, 0), len);
                b = SB_MAX(SB_MIN(hi - ow0, len), a);
            }
            for (int t = 0; t < a; t++) kn_zero_floats(d + (size_t)t * KN_NR, KN_NR);
            if (a < b) {
                const float *src =
                    px.img + ((ptrdiff_t)ih * s->IW + px.iw0 + (ptrdiff_t)a * SW + kw) * s->IC + ci;
                for (int t = a; t < b; t++, src += step) {
                    kn_copy_floats(d + (size_t)t * KN_NR, src, nc);
                    if (nc < KN_NR) kn_zero_floats(d + (size_t)t * KN_NR + nc, KN_NR - nc);
                }
            }
            for (int t = b; t < len; t++) kn_zero_floats(d + (size_t)t * KN_NR, KN_NR);
            k += len;
            px.ow += len - 1; /* the run ends at the row's end at the latest */
            pixel_walk_next(&px);
        }
        return;
    }
    for (int k = 0; k < kc; k++, pixel_walk_next(&px)) {
        const int inner = xcol_inner(s, px.iw0);
        float *drow = dst + (size_t)k * KN_NR;
        for (int j = j0, jend = j0 + nc; j < jend;) {
            const float *src;
            const int run = xcol_run(s, px.img, px.ih0, px.iw0, inner, j, jend, &src);
            for (int e = 0; e < run;) {
                const int jj = j + e - j0, off = jj % KN_NR;
                const int piece = SB_MIN(run - e, KN_NR - off);
                float *d = drow + (size_t)(jj / KN_NR) * panel + off;
                if (src) kn_copy_floats(d, src + e, piece);
                else kn_zero_floats(d, piece);
                e += piece;
            }
            j += run;
        }
        if (nc < npanel * KN_NR) /* the last panel's columns past nc */
            kn_zero_floats(drow + (size_t)(npanel - 1) * panel + nc % KN_NR, KN_NR - nc % KN_NR);
    }
}

/* The pixels' rows of dy, and of x when X_col is x: B's source in the two orientations
 * (kn_gemm_plan.b_src), and A's in the other one (a_src). */
static const float *bwf_dy_rows(const void *ctx, int k0) {
    const cv_ctx *c = ctx;
    return c->dy + (c->pbase + k0) * c->s->OC;
}

static const float *bwf_x_rows(const void *ctx, int k0) {
    const cv_ctx *c = ctx;
    return c->x + (c->pbase + k0) * c->s->IC;
}

/* kn_gemm_plan.b_span of X_col: the image rows of x under the windows of pixels [k0, k1)
 * (from pbase), from the first pixel's top window row to the last one's bottom row. */
static void xcol_span(const void *ctx, int k0, int k1, const float **lo, const float **hi) {
    const cv_ctx *c = ctx;
    const conv2d_shape *s = c->s;
    const pixel_walk a = pixel_walk_start(c, c->pbase + k0),
                     b = pixel_walk_start(c, c->pbase + k1 - 1);
    const ptrdiff_t row = (ptrdiff_t)s->IW * s->IC;
    *lo = a.img + SB_MAX(a.ih0, 0) * row;
    *hi = b.img + SB_MIN(b.ih0 + s->KH, s->IH) * row;
}

/* X_col is x itself: a 1x1 convolution, stride 1, no padding. */
static int xcol_is_x(const conv2d_shape *s) {
    return s->KH == 1 && s->KW == 1 && s->SH == 1 && s->SW == 1 && s->PT == 0 && s->PL == 0 &&
           s->OH == s->IH && s->OW == s->IW;
}

/* How the backward-filter pass splits work over nth threads. */
typedef struct bwf_mode {
    int split_reduction; /* 1: per-thread partials over pixel ranges; 0: threads split dW */
    int orient2;         /* partials hold dW^T (OC, K') and X_col is the packed B */
    int x_strided;       /* orientation 1 with X_col^T read in place (bwfs_segs) */
    size_t partial_floats;
} bwf_mode;

static inline size_t cv_round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

static bwf_mode bwf_choose(const conv2d_shape *s) {
    const size_t Kp = (size_t)s->KH * s->KW * s->IC, out = Kp * s->OC;
    const size_t P = (size_t)s->N * s->OH * s->OW, nth = (size_t)kn_max_threads();
    bwf_mode m = {0};
    const int small = out <= CV_PARTIAL_MAX,
              big = nth > 1 && s->KH * s->KW == 1 && out <= CV_PARTIAL_BIG &&
                    P >= CV_PARTIAL_BIG_PIXELS * nth;
    if ((small || big) && !cv_is_fc(s)) {
        m.split_reduction = 1;
        /* The cheaper orientation per pixel, in rough cycles: the FMAs on the padded tile grid
         * (M rounded up to MR rows, N to NR columns; 2 x 16-lane FMAs a cycle), dealing the
         * pixel's M values of A out MR at a time (~2 cycles per deal), and copying its N values
         * of B in whole vectors. Padding decides resnet's conv1 (K' = 147 x OC = 64: 150 x 64 as
         * dW, 66 x 192 as dW^T); the deals decide the 1x1 layers with OC = 4 IC (block1's
         * 64 -> 256: dW, 11 deals a pixel instead of 43) and the 64-channel 3x3 layers (dW^T). */
        const size_t OC = (size_t)s->OC;
        const double cost1 = (double)cv_round_up(Kp, KN_MR) * cv_round_up(OC, KN_NR) / 32.0 +
                             (double)Kp / 3.0 + (double)OC / 16.0;
        const double cost2 = (double)cv_round_up(OC, KN_MR) * cv_round_up(Kp, KN_NR) / 32.0 +
                             (double)OC / 3.0 + (double)Kp / 16.0;
        m.orient2 = cost2 <= cost1;
        m.x_strided = !m.orient2 && s->IC * s->SW <= KN_ASTEP_MAX;
        m.partial_floats = out;
    }
    return m;
}

/* Workspace: [engine scratch x nth][partial dW (double) + its float GEMM output x nth]
 * [partial db x nth]. */
static size_t bwf_partial_stride(const bwf_mode *m) {
    return kn_align64(sizeof(double) * m->partial_floats) +
           kn_align64(sizeof(float) * m->partial_floats);
}

void conv2d_backward_filter(float *dw, float *db, const float *dy, const float *x,
                            const conv2d_shape *s, void *ws) {
    cv_check(s);
    const bwf_mode mode = bwf_choose(s);
    const int Kp = s->KH * s->KW * s->IC, OC = s->OC;
    const ptrdiff_t P = (ptrdiff_t)s->N * s->OH * s->OW;
    SB_ASSERT(P <= 0x7fffffff);
    const int nth_max = kn_max_threads();
    char *partials = (char *)ws + (size_t)nth_max * kn_thread_ws_bytes();
    const size_t pstride = bwf_partial_stride(&mode);
    char *dbparts = partials + (size_t)nth_max * pstride;
    const size_t dbstride = kn_align64(sizeof(float) * OC);
#pragma omp parallel
    {
        const int ith = omp_get_thread_num(), nth = omp_get_num_threads();
        SB_ASSERT(nth <= nth_max);
        kn_thread_ws tw = kn_thread_ws_get(ws, ith);
        int q0, q1;
        kn_split((int)P, ith, nth, 1, &q0, &q1);
        cv_ctx c = {.s = s, .x = x, .dy = dy};
        if (mode.split_reduction) {
            double *part = (double *)(partials + (size_t)ith * pstride);
            float *sub = (float *)((char *)part + kn_align64(sizeof(double) * mode.partial_floats));
            memset(part, 0, sizeof(double) * mode.partial_floats);
            for (int s0 = q0; s0 < q1; s0 += BWF_SUB) {
                c.pbase = s0;
                const int Kt = SB_MIN(BWF_SUB, q1 - s0);
                kn_gemm_plan p = {.K = Kt, .kc = kn_pick_kc(Kt, 1), .actx = &c, .bctx = &c,
                                  .c = sub, .alpha = 1.0f, .beta = 0.0f};
                if (mode.orient2) {
                    p.M = OC, p.N = Kp, p.a_pack = bwf2_apack, p.b_pack = bwf2_bpack;
                    p.a_src = bwf_dy_rows, p.a_src_ld = OC;
                    p.b_span = xcol_span;
                    p.ldc = Kp;
                    if (xcol_is_x(s)) {
                        p.b_direct = x + c.pbase * s->IC, p.b_ld = s->IC;
                        p.b_src = bwf_x_rows, p.b_src_ld = s->IC;
                    }
                } else {
                    p.M = Kp, p.N = OC, p.b_pack = bwf1_bpack;
                    if (mode.x_strided) p.a_segs = bwfs_segs, p.a_step = s->IC * s->SW;
                    else p.a_pack = bwf1_apack;
                    if (p.a_pack && xcol_is_x(s)) p.a_src = bwf_x_rows, p.a_src_ld = s->IC;
                    p.b_direct = dy + c.pbase * OC, p.b_ld = OC;
                    p.b_src = bwf_dy_rows, p.b_src_ld = OC;
                    p.ldc = OC;
                }
                kn_gemm_run(&p, 0, p.M, 0, p.N, &tw);
                for (size_t e = 0; e < mode.partial_floats; e++) part[e] += sub[e];
            }
        } else if (cv_is_fc(s)) { /* dw(K, OC) = x(N, K)^T . dy(N, OC) */
            kn_gemm_plan p;
            kn_sgemm_ctx g;
            kn_sgemm_plan(&p, &g, 1, 0, Kp, OC, s->N, 1.0f, x, Kp, dy, OC, 0.0f, dw, OC);
            kn_gemm_run_split(&p, ith, nth, &tw);
        } else {
            kn_gemm_plan p = {.M = Kp, .N = OC, .K = (int)P, .kc = kn_pick_kc((int)P, 1),
                              .a_pack = bwf1_apack, .actx = &c, .b_pack = bwf1_bpack,
                              .bctx = &c, .b_direct = dy, .b_ld = OC, .b_src = bwf_dy_rows,
                              .b_src_ld = OC, .c = dw, .ldc = OC, .alpha = 1.0f, .beta = 0.0f};
            if (xcol_is_x(s)) p.a_src = bwf_x_rows, p.a_src_ld = s->IC;
            else p.a_span = xcol_span;
            kn_gemm_run_split(&p, ith, nth, &tw);
        }
        if (db) {
            float *dbp = (float *)(dbparts + (size_t)ith * dbstride);
            memset(dbp, 0, sizeof(float) * OC);
            for (int q = q0; q < q1; q++) {
                const float *row = dy + (ptrdiff_t)q * OC;
                for (int j = 0; j < OC; j++) dbp[j] += row[j];
            }
        }
#pragma omp barrier
        if (mode.split_reduction) {
            /* dW = sum of the partials in thread order; rows of dW split over threads, 16x16
             * tiles so the transposed (dW^T) partials are read a cache line at a time */
            int r0, r1;
            kn_split(Kp, ith, nth, 16, &r0, &r1);
            for (int rb = r0; rb < r1; rb += 16) {
                const int re = SB_MIN(rb + 16, r1);
                for (int jb = 0; jb < OC; jb += 16) {
                    const int je = SB_MIN(jb + 16, OC);
                    for (int r = rb; r < re; r++) {
                        float *out = dw + (ptrdiff_t)r * OC;
                        for (int j = jb; j < je; j++) {
                            double acc = 0.0;
                            for (int t = 0; t < nth; t++) {
                                const double *pt = (const double *)(partials + (size_t)t * pstride);
                                acc += mode.orient2 ? pt[(ptrdiff_t)j * Kp + r]
                                                    : pt[(ptrdiff_t)r * OC + j];
                            }
                            out[j] = (float)acc;
                        }
                    }
                }
            }
        }
        if (db && ith == 0) {
            for (int j = 0; j < OC; j++) {
                float acc = 0.0f;
                for (int t = 0; t < nth; t++) acc += ((const float *)(dbparts + t * dbstride))[j];
                db[j] = acc;
            }
        }
    }
}

size_t conv2d_workspace_size(const conv2d_shape *s) {
    const size_t nth = (size_t)kn_max_threads();
    const bwf_mode mode = bwf_choose(s);
    const size_t extra = SB_MAX(bwf_partial_stride(&mode), bwd_col_stride(s));
    return nth * (kn_thread_ws_bytes() + extra + kn_align64(sizeof(float) * s->OC));
}
