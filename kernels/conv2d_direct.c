/* kernels/conv2d_direct.c — the forward pass of a convolution with very few input channels (the
 * first layer: IC = 3) as direct register-blocked loops, without the GEMM engine:
 *
 *     y[n, oh, ow, :] = b + sum over kh, (kw, c) of x[n, ih, iw, c] * w[kh, kw, c, :]
 *
 * A tile is KN_MR neighbouring output pixels of one row x KN_NR output channels, the GEMM
 * micro-kernel's register block. For kernel row kh the tile's inputs are one input row read at
 * a constant stride: pixel r's KW*IC values (kw, c) are contiguous in NHWC and start SW*IC floats
 * after pixel r-1's. So the tile's pixel pointers follow from one pointer per kernel row, where
 * the engine lists KN_MR row pointers per kernel row for every micro-panel (built, or shifted
 * from the panel before), and runs the list through its generic segment loop. With
 * K = KH*KW*IC = 27 (vgg conv1_1) that bookkeeping was a sixth of the pass on Zen 5 (perf); this
 * file ran vgg conv1_1's forward 1.35x and resnet conv1's 1.22x faster than the engine (median of
 * paired runs), and 1.5x and 1.37x with the rows handed out dynamically (below).
 *
 * Each output row first copies the KH input rows it reads into a thread's buffer, zero-padded
 * on the left (PL) and on the right (up to the last tile's last window), a few KB: every tile
 * then runs the same code, and kernel rows in the vertical padding are skipped. A large y is
 * stored non-temporally, as the engine does. */
#include <omp.h>
#include <string.h>

#include "core/sb.h"
#include "kernels/kernels.h"
#include "kernels/kernels_impl.h"
#include "kernels/vec.h"

#define FD_NV (KN_NR / KN_VLEN)
/* Kernel rows a tile can list (the 7x7 stem needs 7). */
#define FD_KH_MAX 16
/* Output rows a thread takes at a time. */
#define FD_CHUNK 8

#define FD_INLINE static inline __attribute__((always_inline))

/* The kernel rows that reach one output row: the padded input row and the weights of each
 * (rows in the vertical padding are left out). */
typedef struct fd_rows {
    const float *x[FD_KH_MAX]; /* padded input row; column iw at (iw + PL) * IC */
    const float *w[FD_KH_MAX]; /* w[kh, 0, 0, oc0]: KW*IC rows of OC floats */
    int n;
} fd_rows;

/* One tile: y[r][j] for r < KN_MR pixels (ldy floats apart), j < KN_NR channels. The window of
 * pixel r starts rs = SW * IC floats after pixel r-1's, at off in the padded rows; a window
 * row is kwic = KW * IC floats. */
FD_INLINE void fd_tile(float *y, ptrdiff_t ldy, const fd_rows *rw, ptrdiff_t off, int rs, int kwic,
                       ptrdiff_t ldw, const float *bias, const int stream) {
    kn_vf acc[KN_MR][FD_NV];
#pragma GCC unroll 8
    for (int v = 0; v < FD_NV; v++) {
        const kn_vf b0 = bias ? kn_vload(bias + v * KN_VLEN) : kn_vset1(0.0f);
#pragma GCC unroll 16
        for (int r = 0; r < KN_MR; r++) acc[r][v] = b0;
    }
    for (int g = 0; g < rw->n; g++) {
        /* kwic stays a run-time value: with vgg conv1_1's 9 as a constant GCC unrolled this
         * loop, interleaved its steps and ran out of registers (B read from memory by every
         * FMA, spills); written so, the loop compiles like the engine's micro-kernel */
        const float *ap[KN_MR];
#pragma GCC unroll 16
        for (int r = 0; r < KN_MR; r++) ap[r] = rw->x[g] + off + r * rs;
        const float *b = rw->w[g];
        for (int j = 0; j < kwic; j++, b += ldw) {
            kn_vf bv[FD_NV];
#pragma GCC unroll 8
            for (int v = 0; v < FD_NV; v++) bv[v] = kn_vload(b + v * KN_VLEN);
#pragma GCC unroll 16
            for (int r = 0; r < KN_MR; r++) {
                const kn_vf ar = kn_vset1(ap[r][j]);
#pragma GCC unroll 8
                for (int v = 0; v < FD_NV; v++) acc[r][v] = kn_vfma(ar, bv[v], acc[r][v]);
            }
        }
    }
#pragma GCC unroll 16
    for (int r = 0; r < KN_MR; r++)
#pragma GCC unroll 8
        for (int v = 0; v < FD_NV; v++) {
            if (stream) kn_vstream(y + r * ldy + v * KN_VLEN, acc[r][v]);
            else kn_vstore(y + r * ldy + v * KN_VLEN, acc[r][v]);
        }
}

/* Floats of one padded input row: every tile reads KN_MR windows, the last one past OW. */
static size_t fd_row_floats(const conv2d_shape *s) {
    const size_t tiles = (size_t)(s->OW + KN_MR - 1) / KN_MR;
    return ((tiles * KN_MR - 1) * s->SW + s->KW) * s->IC;
}

int conv2d_direct_applies(const conv2d_shape *s) {
    return s->IC <= 4 && s->KH <= FD_KH_MAX && s->OC % KN_NR == 0 &&
           (size_t)s->KH * fd_row_floats(s) <= KN_ABLOCK_FLOATS;
}

/* All tiles of one output row, channel block [oc0, oc0 + KN_NR). */
FD_INLINE void fd_row_tiles(float *yrow, const fd_rows *rw, const conv2d_shape *s, int oc0,
                            const float *bias, float *spill, const int stream) {
    const int OW = s->OW, OC = s->OC, rs = s->SW * s->IC, kwic = s->KW * s->IC;
    int ow0 = 0;
    for (; ow0 + KN_MR <= OW; ow0 += KN_MR)
        fd_tile(yrow + (ptrdiff_t)ow0 * OC + oc0, OC, rw, (ptrdiff_t)ow0 * rs, rs, kwic, OC, bias,
                stream);
    if (ow0 < OW) { /* the last, partial tile: whole into spill, then its rows */
        fd_tile(spill, KN_NR, rw, (ptrdiff_t)ow0 * rs, rs, kwic, OC, bias, 0);
        for (int r = 0; r < OW - ow0; r++)
            memcpy(yrow + (ptrdiff_t)(ow0 + r) * OC + oc0, spill + r * KN_NR,
                   sizeof(float) * KN_NR);
    }
}

/* Output row q = (n, oh): its input rows into pad (KH rows of fd_row_floats, padding columns
 * zero), then its tiles. */
static void fd_row(float *y, const float *x, const float *w, const float *b, const conv2d_shape *s,
                   int q, float *pad, int stream) {
    const int IC = s->IC, OC = s->OC, kwic = s->KW * IC;
    const size_t padw = fd_row_floats(s), xrow = (size_t)s->IW * IC;
    /* the columns the tiles read, past the right edge too (VALID may not reach it) */
    const size_t xcopy = SB_MIN(xrow, padw - (size_t)s->PL * IC);
    const int n = q / s->OH, oh = q - n * s->OH;
    fd_rows rw = {.n = 0};
    for (int kh = 0; kh < s->KH; kh++) {
        const int ih = oh * s->SH - s->PT + kh;
        if (ih < 0 || ih >= s->IH) continue;
        float *dst = pad + (size_t)rw.n * padw;
        memcpy(dst + (size_t)s->PL * IC, x + ((size_t)n * s->IH + ih) * xrow,
               sizeof(float) * xcopy);
        rw.x[rw.n] = dst;
        rw.w[rw.n++] = w + (size_t)kh * kwic * OC;
    }
    float *yrow = y + (size_t)q * s->OW * OC, spill[KN_MR * KN_NR];
    for (int oc0 = 0; oc0 < OC; oc0 += KN_NR) {
        fd_rows rb = rw;
        for (int g = 0; g < rb.n; g++) rb.w[g] += oc0;
        const float *bias = b ? b + oc0 : NULL;
        if (stream) fd_row_tiles(yrow, &rb, s, oc0, bias, spill, 1);
        else fd_row_tiles(yrow, &rb, s, oc0, bias, spill, 0);
    }
}

void conv2d_direct(float *y, const float *x, const float *w, const float *b, const conv2d_shape *s,
                   void *ws) {
    SB_ASSERT(conv2d_direct_applies(s));
    const size_t ybytes = sizeof(float) * (size_t)s->N * s->OH * s->OW * s->OC;
    const int stream = KN_STREAM_STORES && ((uintptr_t)y & 63) == 0 && s->OC % 16 == 0 &&
                       ybytes >= KN_STREAM_MIN_BYTES;
    const int rows = s->N * s->OH;
#pragma omp parallel
    {
        float *pad = kn_thread_ws_get(ws, omp_get_thread_num()).a;
        /* the padding columns stay zero: a row copy writes only the image's columns */
        memset(pad, 0, sizeof(float) * fd_row_floats(s) * s->KH);
        /* rows handed out FD_CHUNK at a time: with a static split the thread on the slower of
         * two vCPUs decided the time (the stems' passes are memory-heavy) */
#pragma omp for schedule(dynamic, FD_CHUNK) nowait
        for (int q = 0; q < rows; q++) fd_row(y, x, w, b, s, q, pad, stream);
        if (stream) kn_stream_fence();
    }
}
