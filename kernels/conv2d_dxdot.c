/* kernels/conv2d_dxdot.c — the backward-data pass of a convolution with very few input channels
 * (the first layer: IC = 3) as direct dot products over the output channels:
 *
 *     dx[n, ih, iw, c] = sum over the taps (kh, kw) reaching (ih, iw) of
 *                        dy[n, oh, ow, :] . w[kh, kw, c, :]
 *
 * As a GEMM this pass has N = IC = 3 columns, a sliver of the micro-kernel's 64-wide tile: the
 * col2im formulation it had before (dy . W^T, N = 27, then a scatter) ran at 20% of peak on vgg
 * conv1_1. Here the vector lanes run along the output channels (64 or more, contiguous in both dy
 * and w), each of a tile's P pixels x IC channels keeps one accumulator vector, and a horizontal
 * sum per dx element ends the tile. A tile is P dx pixels of one row and one stride phase
 * (iw0, iw0 + SW, ...), which read P neighbouring dy pixels for every tap; tiles whose taps all
 * stay inside dy horizontally (all but the row's ends) run without bounds checks. Rows of dx are
 * split over the threads; each dy row is reused from L2 by the KH / SH dx rows that read it. */
#include <omp.h>
#include <string.h>

#include "core/sb.h"
#include "kernels/kernels.h"
#include "kernels/kernels_impl.h"
#include "kernels/vec.h"

/* The horizontal sums of kn_vf vectors (AVX-512: 16 at once), and the accumulators a tile
 * keeps. */
#if defined(KN_ISA_AVX512)
#define DD_ACCS 24 /* accumulators: 32 zmm less the IC weight vectors, a dy vector, spares */
/* The 16 horizontal sums of a[0..16) as one vector, in order: each level adds the halves of two
 * vectors at once (46 shuffles and adds instead of 16 x 8 for one sum at a time; the separate
 * sums were a quarter of vgg conv1_1's pass). */
#define DD_SUM16 1
static inline __m512 dd_sum16(const __m512 *a) {
    __m512 t[8], u[4], v[2];
    for (int i = 0; i < 8; i++) /* [a_2i's 8 lanes, a_2i+1's 8 lanes] */
        t[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0x44),
                             _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0xEE));
    for (int i = 0; i < 4; i++) /* 128-bit quarter q: a_4i+q's 4 lanes */
        u[i] = _mm512_add_ps(_mm512_shuffle_f32x4(t[2 * i], t[2 * i + 1], 0x88),
                             _mm512_shuffle_f32x4(t[2 * i], t[2 * i + 1], 0xDD));
    for (int i = 0; i < 2; i++) /* quarter q: 2 lanes of a_8i+q, 2 of a_8i+4+q */
        v[i] = _mm512_add_ps(_mm512_shuffle_ps(u[2 * i], u[2 * i + 1], 0x44),
                             _mm512_shuffle_ps(u[2 * i], u[2 * i + 1], 0xEE));
    /* quarter q, lane l: the sum of a_q+4l */
    const __m512 r = _mm512_add_ps(_mm512_shuffle_ps(v[0], v[1], 0x88),
                                   _mm512_shuffle_ps(v[0], v[1], 0xDD));
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_ps(order, r);
}
#elif defined(KN_ISA_AVX2)
#define DD_ACCS 12
static inline float dd_hsum(kn_vf v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}
#else
#define DD_ACCS 12
static inline float dd_hsum(kn_vf v) {
    float s = 0.0f;
    for (int i = 0; i < KN_VLEN; i++) s += v[i];
    return s;
}
#endif

#define DD_IC_MAX 4

int conv2d_dxdot_applies(const conv2d_shape *s) {
    return s->IC <= DD_IC_MAX && s->OC % KN_VLEN == 0;
}

/* One tile of dx row ih: pixels iw0 + p * SW for p < np (np <= P), all CI channels. checked: some
 * tap of some pixel reads outside dy horizontally (the row's ends). CI, P and checked are
 * constants at every call, so the accumulators are registers and the fast tiles have no tests. */
static inline __attribute__((always_inline)) void dd_tile(float *dx, const float *dy,
                                                          const float *w, const conv2d_shape *s,
                                                          int ih, int iw0, const int CI,
                                                          const int P, int np, const int checked) {
    const int OC = s->OC, KW = s->KW, SH = s->SH, SW = s->SW;
    /* fixed bounds (not [P][CI], a variable-length array GCC keeps on the stack): every index
     * is a constant once the loops below are unrolled, and the used part lives in registers */
    kn_vf acc[DD_ACCS][DD_IC_MAX];
#pragma GCC unroll 24
    for (int p = 0; p < P; p++)
#pragma GCC unroll 4
        for (int c = 0; c < CI; c++) acc[p][c] = kn_vzero();
    const float *pf_next = NULL, *pf_end = NULL;
    { /* this tile's pixels in the dy row after the newest one it reads, which the next dx rows
       * read first: a row ahead, that row arrives from memory in time (fetched when first read,
       * it kept vgg conv1_1 at 45% of peak). One line per step of the OC loop below: issued
       * all at once here, the 32 prefetches stalled the core once the line fill buffers were
       * full (a quarter of the pass's time on Sapphire Rapids; spread, 1.25-1.33x) */
        const int ow = (iw0 + s->PL - (iw0 + s->PL) % SW) / SW, oh = (ih + s->PT) / SH + 1;
        if (oh < s->OH) {
            pf_next = dy + ((ptrdiff_t)oh * s->OW + ow) * OC;
            pf_end = pf_next + P * OC;
        }
        /* and its dx in the next row, for writing: the sums' stores missed in every cache */
        const float *dnext = dx + (ptrdiff_t)s->IW * CI;
        for (int e = 0; e < P * SW * CI; e += 16) __builtin_prefetch(dnext + e, 1, 3);
    }
    for (int kh = (ih + s->PT) % SH; kh < s->KH; kh += SH) {
        const int oh = (ih + s->PT - kh) / SH; /* exact: kh = ih + PT (mod SH) */
        if (oh < 0 || oh >= s->OH) continue;
        for (int kw = (iw0 + s->PL) % SW; kw < KW; kw += SW) {
            const int ow0 = (iw0 + s->PL - kw) / SW; /* dy column of pixel p: ow0 + p */
            const float *dyp = dy + ((ptrdiff_t)oh * s->OW + ow0) * OC;
            const float *wp = w + (ptrdiff_t)(kh * KW + kw) * CI * OC;
            for (int v = 0; v < OC; v += KN_VLEN) {
                if (pf_next < pf_end) {
                    __builtin_prefetch(pf_next, 0, 1);
                    pf_next += 16;
                }
                kn_vf wv[DD_IC_MAX];
#pragma GCC unroll 4
                for (int c = 0; c < CI; c++) wv[c] = kn_vload(wp + c * OC + v);
#pragma GCC unroll 24
                for (int p = 0; p < P; p++) {
                    if (p >= np || (checked && (ow0 + p < 0 || ow0 + p >= s->OW))) continue;
                    kn_vf d = kn_vload(dyp + (ptrdiff_t)p * OC + v);
                    /* in a register, used CI times: GCC otherwise folds the load into each FMA,
                     * and the pass ran at 0.7x (three loads of every dy vector) */
                    __asm__("" : "+v"(d));
#pragma GCC unroll 4
                    for (int c = 0; c < CI; c++) acc[p][c] = kn_vfma(d, wv[c], acc[p][c]);
                }
            }
        }
    }
#if defined(DD_SUM16)
    /* the P x CI sums, pixel-major like dx: 16 at a time (the last group padded with zeros) */
    enum { NSUM = (DD_ACCS + 15) / 16 * 16 };
    __m512 flat[NSUM];
    float sums[NSUM];
#pragma GCC unroll 32
    for (int i = 0; i < NSUM; i++) flat[i] = i < P * CI ? acc[i / CI][i % CI] : kn_vzero();
#pragma GCC unroll 2
    for (int g = 0; g < P * CI; g += 16) _mm512_storeu_ps(sums + g, dd_sum16(flat + g));
#pragma GCC unroll 24
    for (int p = 0; p < P; p++)
#pragma GCC unroll 4
        for (int c = 0; c < CI; c++)
            if (p < np) dx[(ptrdiff_t)p * SW * CI + c] = sums[p * CI + c];
#else
#pragma GCC unroll 24
    for (int p = 0; p < P; p++)
#pragma GCC unroll 4
        for (int c = 0; c < CI; c++)
            if (p < np) dx[(ptrdiff_t)p * SW * CI + c] = dd_hsum(acc[p][c]);
#endif
}

/* dx row ih of one image (dx, dy at the image), phase by phase, tile by tile. Within a phase,
 * the taps of pixel j read dy columns (pw + j*SW + PL - kw) / SW = j + base(kw): the tile
 * starting at j is unchecked when j + min base >= 0 and j + P - 1 + max base < OW. */
static inline __attribute__((always_inline)) void dd_row(float *dx, const float *dy,
                                                         const float *w, const conv2d_shape *s,
                                                         int ih, const int CI) {
    const int P = DD_ACCS / CI;
    for (int pw = 0; pw < s->SW && pw < s->IW; pw++) {
        const int nj = (s->IW - pw + s->SW - 1) / s->SW; /* pixels of this phase in the row */
        const int kw0 = (pw + s->PL) % s->SW;
        if (kw0 >= s->KW) { /* no tap reaches this phase */
            for (int j = 0; j < nj; j++)
                for (int c = 0; c < CI; c++) dx[((ptrdiff_t)pw + j * s->SW) * CI + c] = 0.0f;
            continue;
        }
        int kwl = kw0; /* the phase's last tap */
        while (kwl + s->SW < s->KW) kwl += s->SW;
        const int bmin = (pw + s->PL - kwl) / s->SW, bmax = (pw + s->PL - kw0) / s->SW;
        for (int j = 0; j < nj; j += P) {
            float *d = dx + ((ptrdiff_t)pw + j * s->SW) * CI;
            const int np = SB_MIN(P, nj - j), iw0 = pw + j * s->SW;
            if (np == P && j + bmin >= 0 && j + P - 1 + bmax < s->OW)
                dd_tile(d, dy, w, s, ih, iw0, CI, P, P, 0);
            else dd_tile(d, dy, w, s, ih, iw0, CI, P, np, 1);
        }
    }
}

void conv2d_dxdot(float *dx, const float *dy, const float *w, const conv2d_shape *s) {
    SB_ASSERT(conv2d_dxdot_applies(s));
    const int rows = s->N * s->IH;
#pragma omp parallel
    {
        int r0, r1;
        kn_split(rows, omp_get_thread_num(), omp_get_num_threads(), 1, &r0, &r1);
        for (int r = r0; r < r1; r++) {
            const int n = r / s->IH, ih = r - n * s->IH;
            float *dxr = dx + (ptrdiff_t)r * s->IW * s->IC;
            const float *dyn = dy + (ptrdiff_t)n * s->OH * s->OW * s->OC;
            switch (s->IC) {
            case 1: dd_row(dxr, dyn, w, s, ih, 1); break;
            case 2: dd_row(dxr, dyn, w, s, ih, 2); break;
            case 3: dd_row(dxr, dyn, w, s, ih, 3); break;
            default: dd_row(dxr, dyn, w, s, ih, 4); break;
            }
        }
    }
}
