/* kernels/gemm.c — the blocked GEMM engine every matrix-shaped op runs on, and sgemm on top of
 * it. BLIS's loops: columns in NC blocks, k in KC blocks (B packed once per block into NR-wide
 * micro-panels, the block in L2), rows in MC blocks (in L2), and inside a block every B
 * micro-panel (in L1) meets every MR-row A micro-panel. A is read through row pointers (no
 * packing: an im2col is pointer arithmetic) or packed when its rows are strided. The ISA lives
 * only in the micro-kernels (simd.h, ukernel_*.c); this file knows nothing about convolutions. */
#include <math.h>
#include <omp.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "core/sb.h"
#include "kernels/kernels.h"
#include "kernels/kernels_impl.h"

_Alignas(64) const float kn_zeros[KN_KC * KN_ASTEP_MAX];

int kn_block_rows_for_l2(long l2_bytes) {
    if (l2_bytes <= 0) return KN_MC;
    const double bytes_per_row = sizeof(float) * (double)(KN_KC + KN_NC);
    const double rows = KN_L2_SHARE * (double)l2_bytes / bytes_per_row;
    if (rows >= KN_MC) return KN_MC;
    return SB_MAX(2 * KN_MR, (int)rows / KN_MR * KN_MR);
}

int kn_block_rows(void) {
    static _Atomic int rows; /* 0 until read */
    int mc = atomic_load_explicit(&rows, memory_order_relaxed);
    if (mc == 0) {
        mc = kn_block_rows_for_l2(sysconf(_SC_LEVEL2_CACHE_SIZE));
        atomic_store_explicit(&rows, mc, memory_order_relaxed);
    }
    return mc;
}

/* Segments of one MC block of indirect A: at most KN_KC per micro-panel. */
#define KN_BLOCK_SEGS ((KN_MC / KN_MR) * KN_KC)

size_t kn_thread_ws_bytes(void) {
    return kn_align64(sizeof(float) * KN_ABLOCK_FLOATS) +
           kn_align64(sizeof(float) * KN_KB * KN_NC) + kn_align64(sizeof(float) * KN_MR * KN_NR) +
           kn_align64(sizeof(kn_seg) * KN_BLOCK_SEGS);
}

kn_thread_ws kn_thread_ws_get(void *ws, int ith) {
    SB_ASSERT(ws != NULL && ((uintptr_t)ws & 63) == 0);
    char *base = (char *)ws + (size_t)ith * kn_thread_ws_bytes();
    kn_thread_ws w;
    w.a = (float *)base;
    base += kn_align64(sizeof(float) * KN_ABLOCK_FLOATS);
    w.b = (float *)base;
    base += kn_align64(sizeof(float) * KN_KB * KN_NC);
    w.tile = (float *)base;
    base += kn_align64(sizeof(float) * KN_MR * KN_NR);
    w.segs = (kn_seg *)base;
    return w;
}

int kn_pick_kc(int K, int align) {
    SB_ASSERT(K > 0);
    if (K <= KN_KC) return K;
    int nb = (K + KN_KC - 1) / KN_KC;
    int kc = (K + nb - 1) / nb;
    if (align > 1 && align <= KN_KC) {
        kc = (kc + align - 1) / align * align;
        if (kc > KN_KC) kc = KN_KC / align * align;
    }
    return kc;
}

/* The slow path for a micro-tile: tails (short of MR rows or NR columns) and transposed C. The
 * kernel wrote alpha-free sums into t (ldc KN_NR). Rows are merged with whole-row loops the
 * compiler vectorizes (stride-2 backward data, whose full tiles also came this way until the
 * kernels stored to row pointers, ran 1.12-1.18x faster once this merge stopped going element
 * by element). Same order as the kernel's store: alpha * sum, + bias, + beta * C (which the
 * kernel fuses into one FMA). */
static void merge_row(float *restrict dst, const float *restrict t, int nr, float alpha,
                      float beta, const float *restrict bias) {
    if (beta == 0.0f) {
        if (bias) for (int j = 0; j < nr; j++) dst[j] = alpha * t[j] + bias[j];
        else for (int j = 0; j < nr; j++) dst[j] = alpha * t[j];
    } else {
        if (bias) for (int j = 0; j < nr; j++) dst[j] = (alpha * t[j] + bias[j]) + beta * dst[j];
        else for (int j = 0; j < nr; j++) dst[j] = alpha * t[j] + beta * dst[j];
    }
}

static void merge_tile(const kn_gemm_plan *p, float *const *crow, int i0, int j0, int mr, int nr,
                       const float *t, float beta, const float *bias) {
    if (!p->c_trans) {
        for (int i = 0; i < mr; i++)
            merge_row(crow[i] + j0, t + i * KN_NR, nr, p->alpha, beta, bias);
        return;
    }
    for (int i = 0; i < mr; i++) {
        for (int j = 0; j < nr; j++) {
            float v = p->alpha * t[i * KN_NR + j];
            if (bias) v += bias[j];
            float *dst = p->c + (ptrdiff_t)(j0 + j) * p->ldc + (i0 + i);
            if (beta != 0.0f) v += beta * *dst;
            *dst = v;
        }
    }
}

/* Below this many rows per thread, B panels are read in place when the plan allows it: packing
 * would cost about as much as the few micro-tiles that reuse each packed panel. */
#ifndef KN_DIRECT_B_ROWS
#define KN_DIRECT_B_ROWS (8 * KN_MR)
#endif

/* One MR-row micro-panel of the current MC block: where its C rows are, and its A (a packed
 * micro-panel, or segments in the thread's segment buffer). */
typedef struct kn_panel {
    float *crow[KN_MR];
    ptrdiff_t ldc; /* row stride when uniform */
    int uniform;   /* MR full rows, equally spaced, C not transposed: the kernel stores C */
    int mr, nseg;
    const kn_seg *segs;
    ptrdiff_t aoff; /* added to the row pointers of segs (a list shared with an earlier panel) */
    const float *apanel;
} kn_panel;

static void panel_init(const kn_gemm_plan *p, kn_panel *pn, int i0, int mr) {
    pn->mr = mr;
    pn->nseg = 0;
    pn->segs = NULL;
    pn->apanel = NULL;
    pn->ldc = 0;
    pn->uniform = !p->c_trans && mr == KN_MR;
    if (p->c_trans) return;
    for (int i = 0; i < mr; i++)
        pn->crow[i] = p->c_row ? p->c_row(p->cctx, i0 + i) : p->c + (ptrdiff_t)(i0 + i) * p->ldc;
    if (pn->uniform) {
        pn->ldc = pn->crow[1] - pn->crow[0];
        for (int i = 2; i < KN_MR; i++)
            if (pn->crow[i] != pn->crow[0] + i * pn->ldc) pn->uniform = 0;
    }
}

/* For the first B panel of a block: the first segment of the next indirect panel, up to 8
 * lines (512 bytes) of each A row, into L1 while the tile before it runs. The kernel fetches
 * each next segment itself, but not the next panel's first one, which was read from memory on
 * demand when A does not stream in order:
 *  - a single segment (1x1 convolutions: a run of input channels per K block): resnet's
 *    block1/unit_2/conv1 forward (56x56, 256 -> 64) 1.21-1.29x;
 *  - a tap (3x3 with 64 channels at stride 2, whose pixels' rows are 512 bytes apart): resnet
 *    block1/unit_3/conv2 forward 1.19x, backward data 1.10x (Zen 5); neutral on the other 3x3
 *    passes.
 * For every panel and B panel it measured 0.90-0.97x on the block 3-4 and vgg conv3 forwards
 * (their A is in cache after the first B panel). (Inlined: as a function of its own, GCC
 * judged it free of side effects and deleted the call.) */
static inline __attribute__((always_inline)) void prefetch_panel_a(const kn_panel *pn) {
    if (!pn->segs || pn->segs[0].len <= 0) return;
    const kn_seg *g = &pn->segs[0];
    const int lines = pn->nseg == 1 ? 8 : SB_MIN(8, (g->len + 15) / 16);
    for (int i = 0; i < KN_MR; i++)
        for (int l = 0; l < lines; l++) __builtin_prefetch(g->row[i] + pn->aoff + 16 * l, 0, 3);
}

/* One micro-tile: panel pn against the B micro-panel bp (ldb apart), columns [j0, j0+nr). */
static void run_tile(const kn_gemm_plan *p, const kn_panel *pn, int i0, int kc, const float *bp,
                     ptrdiff_t ldb, int j0, int nr, const kn_uk_epilogue *ep, float *tile) {
    const int astep = p->a_step > 1 ? p->a_step : 1;
    if (pn->uniform && nr == KN_NR) {
        float *c = pn->crow[0] + j0;
        if (pn->apanel) kn_ukernel_packed(kc, pn->apanel, bp, ldb, c, pn->ldc, ep);
        else kn_ukernel_indirect(pn->nseg, pn->segs, pn->aoff, astep, bp, ldb, c, pn->ldc, ep);
        return;
    }
    if (!p->c_trans && nr == KN_NR) {
        /* A full-width tile whose rows are irregular (c_row) or fewer than MR: the kernel
         * stores to them itself, and computes only the rows there are. Through the tile buffer
         * and merge_tile it cost stride-2 backward data (7-pixel phase grid rows, so most
         * panels wrap a row) an extra pass over C; as a full tile, the fully connected layers'
         * last panel (M = 32: two rows) cost as much as each of the five before it. */
        SB_DASSERT(!ep->stream || pn->mr < KN_MR);
        kn_uk_epilogue ept = *ep;
        ept.c_rows = pn->crow;
        ept.c_col = j0;
        ept.rows = pn->mr;
        if (pn->apanel) kn_ukernel_packed(kc, pn->apanel, bp, ldb, NULL, 0, &ept);
        else kn_ukernel_indirect(pn->nseg, pn->segs, pn->aoff, astep, bp, ldb, NULL, 0, &ept);
        return;
    }
    const kn_uk_epilogue sums = {
        .alpha = 1.0f, .beta = 0.0f, .b_next = ep->b_next, .b_next_ld = ep->b_next_ld};
    if (pn->apanel) kn_ukernel_packed(kc, pn->apanel, bp, ldb, tile, KN_NR, &sums);
    else kn_ukernel_indirect(pn->nseg, pn->segs, pn->aoff, astep, bp, ldb, tile, KN_NR, &sums);
    merge_tile(p, pn->crow, i0, j0, pn->mr, nr, tile, ep->beta, ep->bias);
}

/* The A micro-panels of block (ic, pc): packed into the thread's buffer, or listed as segments
 * (a full panel whose list is an earlier one's shifted by a constant shares it: a_shift). */
static void a_block(const kn_gemm_plan *p, kn_panel *pn, int np, int ic, int mc, int pc, int kc,
                    const kn_thread_ws *w) {
    if (p->a_pack) {
        p->a_pack(p->actx, w->a, ic, mc, pc, kc);
        for (int q = 0; q < np; q++) pn[q].apanel = w->a + (size_t)q * kn_apanel_stride(kc);
        return;
    }
    kn_seg *segs = w->segs;
    int anchor = -1; /* the last full panel that built its own list */
    for (int q = 0; q < np; q++) {
        const int iq = ic + q * KN_MR;
        pn[q].aoff = 0;
        if (anchor >= 0 && pn[q].mr == KN_MR) {
            const ptrdiff_t off = p->a_shift(p->actx, ic + anchor * KN_MR, iq);
            if (off != KN_NO_SHIFT) {
                pn[q].segs = pn[anchor].segs;
                pn[q].nseg = pn[anchor].nseg;
                pn[q].aoff = off;
                continue;
            }
        }
        pn[q].segs = segs;
        pn[q].nseg = p->a_segs(p->actx, iq, pn[q].mr, pc, kc, segs);
        SB_DASSERT(pn[q].nseg >= 0 && pn[q].nseg <= KN_KC);
        segs += pn[q].nseg;
        anchor = p->a_shift && pn[q].mr == KN_MR ? q : -1;
    }
}

/* One MC block [m0, m1) against B stored by columns (kn_gemm_plan.b_cols), panel by panel, each
 * down the whole K (the panel's C tiles, M x NR, 8 KB at M = 32, stay in L1 through the K
 * blocks). While a K block's micro-tiles run, each fetches its share of the next block's source
 * (NR source rows, kc floats each) into L2. Packed on demand, that source came from memory one
 * 512-byte to 1 KB piece per row, each on another page, and with each W element meeting only
 * the batch's 32 rows the packing took a third of the fully connected layers' backward data;
 * fetched ahead, fc7's shape ran 1.10-1.11x with avx512, 1.07-1.09x with avx2. (The panel-deep
 * order alone, with its one sequential run per source row, measured no faster than K blocks
 * across the panels; it is what makes the next block's source two lines of arithmetic.) */
static void run_panels_deep(const kn_gemm_plan *p, int m0, int m1, int n0, int n1,
                            const kn_thread_ws *w) {
    kn_panel pn[KN_MC / KN_MR];
    const int mc = m1 - m0, np = (mc + KN_MR - 1) / KN_MR;
    for (int q = 0; q < np; q++)
        panel_init(p, &pn[q], m0 + q * KN_MR, SB_MIN(KN_MR, m1 - m0 - q * KN_MR));
    for (int jr = n0; jr < n1; jr += KN_NR) {
        const int nr = SB_MIN(KN_NR, n1 - jr);
        for (int pc = 0; pc < p->K; pc += p->kc) {
            const int kc = SB_MIN(p->kc, p->K - pc);
            p->b_pack(p->bctx, w->b, pc, kc, jr, nr);
            a_block(p, pn, np, m0, mc, pc, kc, w);
            const kn_uk_epilogue ep = {.alpha = p->alpha,
                                       .beta = pc == 0 ? p->beta : 1.0f,
                                       .bias = pc == 0 && p->bias ? p->bias + jr : NULL,
                                       .c_l1 = 1};
            /* the next K block of this panel, or the next panel's first */
            const int nk = pc + kc < p->K ? pc + kc : 0, nj = nk ? jr : jr + KN_NR;
            const int nkc = SB_MIN(p->kc, p->K - nk), nnr = nj < n1 ? SB_MIN(KN_NR, n1 - nj) : 0;
            for (int q = 0; q < np; q++) {
                for (int r = q * nnr / np; r < (q + 1) * nnr / np; r++) {
                    const float *src = p->b_cols + (ptrdiff_t)(nj + r) * p->b_cols_ld + nk;
                    for (int k = 0; k < nkc; k += 16) __builtin_prefetch(src + k, 0, 2);
                }
                run_tile(p, &pn[q], m0 + q * KN_MR, kc, w->b, KN_NR, jr, nr, &ep, w->tile);
            }
        }
    }
}

/* With B read in place (one MC block: few rows), the full B panel the engine runs after the
 * one at K block pc, columns jc + jr of the NC block [jc, jc + nc): the next panel of the block,
 * or the first one of the next K block; NULL when that is the ragged last panel (packed) or has
 * fewer than kc rows (the micro-tiles prefetch kc rows). */
static const float *next_b_panel(const kn_gemm_plan *p, int pc, int kc, int jc, int jr, int nc) {
    if (jr + 2 * KN_NR <= nc) return p->b_direct + (ptrdiff_t)pc * p->b_ld + jc + jr + KN_NR;
    if (pc + 2 * kc <= p->K && nc >= KN_NR)
        return p->b_direct + (ptrdiff_t)(pc + kc) * p->b_ld + jc;
    return NULL;
}

/* The A block packed after block (ic, pc) of the K chunk [kb, kend), in kn_gemm_run's loop
 * order: its first k, and its first row in *i; -1 after the last block of a column block. */
static int next_a_k(const kn_gemm_plan *p, int m0, int m1, int block_rows, int ic, int pc,
                    int kb, int kend, int *i) {
    int k = -1;
    if (pc + p->kc < kend) *i = ic, k = pc + p->kc;
    else if (ic + block_rows < m1) *i = ic + block_rows, k = kb;
    else if (kend < p->K) *i = m0, k = kend;
    return k;
}

/* With packed A read from a source (a_src): where that next block starts in the source, and
 * its rows (mc); NULL after the last block of a column block. */
static const float *next_a_block(const kn_gemm_plan *p, int m0, int m1, int block_rows, int ic,
                                 int pc, int kb, int kend, int *mc) {
    int i;
    const int k = next_a_k(p, m0, m1, block_rows, ic, pc, kb, kend, &i);
    if (k < 0) return NULL;
    *mc = SB_MIN(block_rows, m1 - i);
    return p->a_src(p->actx, k) + i;
}

/* Whether the micro-kernel stores this plan's full tiles non-temporally. Only when C is written
 * once, without being read (beta == 0, one K block), is far larger than the caches (the next
 * op reads it from memory either way), and its tile rows are whole 64-byte lines. An ordinary
 * store first reads the line it writes: on Sapphire Rapids two threads store 18.5 GB/s that way
 * and 40-44 GB/s non-temporally, and the first layers' forward (vgg conv1_1: 27 FMAs per output
 * float, 411 MB of output) ran at the store bandwidth. */
static int stream_c(const kn_gemm_plan *p) {
    return KN_STREAM_STORES && p->beta == 0.0f && p->K <= p->kc && !p->c_trans && !p->c_row &&
           ((uintptr_t)p->c & 63) == 0 && p->ldc % 16 == 0 &&
           (size_t)p->M * (size_t)p->ldc * sizeof(float) >= KN_STREAM_MIN_BYTES;
}

/* BLIS's loop order, with one more level: for each NC-column block, B is packed a K chunk (KB
 * rows, several KC blocks) at a time into NR-wide micro-panels; each MC-row block of A then runs
 * through the whole chunk while its C block (MC x NC) stays in L2, and inside a KC block every
 * B micro-panel (kc x NR, in L1) meets every A micro-panel of the block (packed, or listed as
 * segments once). On Sapphire Rapids (two 512-bit FMA ports per core, 48 KB L1) the AVX-512
 * micro-kernel reaches 92% of one core's peak with its B panel in L1 and 79% when it streams B
 * from L2 (the order this engine had before); the K chunk keeps C's traffic to memory at one
 * read and write per KB rows of K instead of per KC. */
void kn_gemm_run(const kn_gemm_plan *p, int m0, int m1, int n0, int n1, const kn_thread_ws *w) {
    if (m0 >= m1 || n0 >= n1) return;
    SB_ASSERT(p->K > 0 && p->kc > 0 && p->kc <= KN_KC);
    SB_ASSERT((p->a_segs != NULL) != (p->a_pack != NULL));
    SB_ASSERT(p->a_step <= KN_ASTEP_MAX);
    kn_panel pn[KN_MC / KN_MR];
    const int block_rows = kn_block_rows();
    /* B read in place: with few rows (packing would cost about as much as the tiles that reuse
     * each panel), or when B is a single micro-panel already (N <= NR, rows NR floats apart:
     * 64-channel 1x1 layers' x or dy in the backward filter, which was packed as a copy of
     * itself) */
    const int direct = p->b_direct &&
                       (m1 - m0 <= KN_DIRECT_B_ROWS || (p->b_ld == KN_NR && n1 - n0 == KN_NR));
    const int stream = stream_c(p);
    /* B read in place comes from memory on big layers, a few micro-tiles per panel: the
     * micro-tiles of a B panel fetch the next panel into L2 while they compute (next_b_panel).
     * vgg conv1_1's backward filter (dy: 411 MB, one panel wide) 1.18-1.24x, fc8 and logits
     * forward (4 KB rows) 1.09-1.28x. fc6 / fc7 forward (16 KB rows, 2 MB of W per thread and
     * K block) 1.27-1.30x with avx512 since KC = 256 (0.80-0.86x at KC = 128, 1 MB a block,
     * when it was left out for them), no change with avx2. */
    const int prefetch_b = direct && !p->a_pack;
    for (int jc = n0, nc; jc < n1; jc += nc) {
        /* a remainder of at most NC/4 columns joins this block: as a block of its own it would
         * pay for packing (and reading) all of A again for a sliver of the work (the backward
         * filter of a 64-channel 3x3 conv as dW^T: N = 576, whose last 64 columns were a second
         * pass over A) */
        nc = n1 - jc <= KN_NC + KN_NC / 4 ? n1 - jc : KN_NC;
        const int npanel = (nc + KN_NR - 1) / KN_NR, tail = nc % KN_NR;
        /* B packed from contiguous rows (b_src) with one MC block: pack one K block at a time
         * (C stays in L2 anyway) and prefetch the next block's rows while this one runs. The
         * backward filter's packed B (dy, or x for 1x1 layers) came from memory in bursts, the
         * hardware prefetchers idle during the FMAs in between: resnet block1/unit_2/conv1
         * 1.21x, block1/unit_1/shortcut 1.15x, block2/unit_1/conv3 1.10x. */
        const int src_pf = p->b_src && !direct && nc == p->N && m1 - m0 <= block_rows;
        /* Otherwise, with one MC block, each B panel is packed just before its micro-tiles, into
         * L1. Packed a chunk at a time (up to 1 MB), it went out to L2 or beyond and came back:
         * on Zen 5 (1 MB L2) the 64-channel 3x3 backward filters (dW^T = dy^T X_col, M = 64) ran
         * at 50% of peak, and 1.31-1.45x faster this way (with bwf2_bpack's one-tap copy). */
        const int jit_b = !direct && !src_pf && m1 - m0 <= block_rows;
        if (jit_b && p->b_cols && p->K > p->kc) {
            run_panels_deep(p, m0, m1, jc, jc + nc, w);
            continue;
        }
        /* Otherwise K rows per packed chunk, whole KC blocks: as many as the KB x NC buffer
         * holds at this block's width, so a narrow B (N = 64: vgg's conv1_2, resnet's 64-channel
         * layers) is packed whole and each C block is finished in one visit instead of one per
         * 512 rows */
        const int chunk = src_pf || jit_b
                              ? p->kc
                              : SB_MAX(KN_KB * KN_NC / (npanel * KN_NR) / p->kc, 1) * p->kc;
        SB_DASSERT((size_t)chunk * npanel * KN_NR <= (size_t)KN_KB * KN_NC);
        for (int kb = 0; kb < p->K; kb += chunk) {
            const int kend = SB_MIN(kb + chunk, p->K);
            /* the chunk in one call: ceil(nc/NR) panels of (kend - kb) x NR, one after the
             * other (direct: only the ragged last panel; jit_b: none, each panel is packed in
             * the jr loop), so a packer reads B's rows or columns in runs of the whole chunk;
             * the micro-panel of KC block pc is rows pc - kb to pc - kb + kc of its panel */
            const int krows = kend - kb;
            if (!direct && !jit_b) p->b_pack(p->bctx, w->b, kb, krows, jc, nc);
            else if (direct && tail)
                p->b_pack(p->bctx, w->b, kb, krows, jc + nc - tail, tail);
            /* B packed a chunk at a time from a source (b_src), over several MC blocks: the
             * last MC block's micro-tiles prefetch the next chunk's source, a 64-byte column
             * strip of kc rows each. The packer read it from memory in one burst, too fast for
             * the hardware prefetchers. (The lines then wait in L2, or in the L3 it spills to.) */
            int bc_unit = 0, bc_units = 0;
            const int bc_strips = (nc + 15) / 16;
            if (p->b_src && !direct && !jit_b && !src_pf && kend < p->K)
                bc_units = (SB_MIN(chunk, p->K - kend) + p->kc - 1) / p->kc * bc_strips;
            for (int ic = m0; ic < m1; ic += block_rows) {
                const int mc = SB_MIN(block_rows, m1 - ic), np = (mc + KN_MR - 1) / KN_MR;
                bc_unit = ic + block_rows < m1 ? bc_units : 0; /* only the last block's tiles */
                for (int q = 0; q < np; q++)
                    panel_init(p, &pn[q], ic + q * KN_MR, SB_MIN(KN_MR, m1 - ic - q * KN_MR));
                for (int pc = kb; pc < kend; pc += p->kc) {
                    const int kc = SB_MIN(p->kc, kend - pc);
                    /* C into L1 ahead of the tiles where B is read in place (few rows, so C
                     * is much of the traffic); elsewhere the AVX-512 kernel brings it into L2
                     * only (ukernel_avx512.c) */
                    const kn_uk_epilogue ep = {.alpha = p->alpha,
                                               .beta = pc == 0 ? p->beta : 1.0f,
                                               .bias = pc == 0 ? p->bias : NULL,
                                               .stream = stream,
                                               .c_l1 = direct};
                    const float *bblk = w->b + (size_t)(pc - kb) * KN_NR;
                    /* the next K block's source rows (b_src), kc lines per micro-tile: the
                     * packer then reads them from L2 instead of waiting on memory */
                    const float *src_next =
                        src_pf && pc + 2 * kc <= p->K ? p->b_src(p->bctx, pc + kc) : NULL;
                    ptrdiff_t src_line = 0;
                    const ptrdiff_t src_end = (ptrdiff_t)kc * p->b_src_ld;
                    /* the next K block's span of B's source (b_span, B packed just in time),
                     * kc lines per micro-tile */
                    const float *span = NULL;
                    ptrdiff_t span_floats = 0;
                    if (jit_b && p->b_span && pc + kc < p->K) {
                        const float *hi;
                        p->b_span(p->bctx, pc + kc, SB_MIN(pc + 2 * kc, p->K), &span, &hi);
                        span_floats = hi - span;
                    }
                    /* the next A block's source, a 64-byte column strip (kc lines, one per k) per
                     * micro-tile until its rows are covered: its rows lie a row of the source
                     * apart (4 KB for a 1024-channel x), too far for the hardware prefetchers,
                     * and the packer otherwise waited on memory for every line */
                    const float *a_next = NULL;
                    int a_strips = 0;
                    /* or the next A block's span (a_span: orientation 1's X_col^T, x's rows
                     * under the pixels' windows), a line per k step as with b_span: the
                     * packer's gathers otherwise waited on L3 at each pixel, a 3x3 layer's
                     * pixels a row of x apart (backward filters, best of 4 alternating
                     * runs, three times: avx512 28x28 128-channel 3x3/2 1.04-1.14x, 56x56
                     * 128 -> 256 1.02-1.06x; avx2 1.00-1.03x, with single sets at 0.95) */
                    const float *aspan = NULL;
                    ptrdiff_t aspan_floats = 0;
                    if (p->a_pack && p->a_span && !p->a_src) {
                        int ni;
                        const int nk = next_a_k(p, m0, m1, block_rows, ic, pc, kb, kend, &ni);
                        if (nk >= 0) {
                            const float *hi;
                            p->a_span(p->actx, nk, SB_MIN(nk + p->kc, p->K), &aspan, &hi);
                            aspan = (const float *)((uintptr_t)aspan & ~(uintptr_t)63);
                            aspan_floats = hi - aspan;
                        }
                    }
                    if (p->a_pack && p->a_src) {
                        int nmc = 0;
                        a_next = next_a_block(p, m0, m1, block_rows, ic, pc, kb, kend, &nmc);
                        if (a_next) {
                            const uintptr_t lo = (uintptr_t)a_next & ~(uintptr_t)63;
                            a_strips = (int)(((uintptr_t)(a_next + nmc) - lo + 63) / 64);
                            a_next = (const float *)lo;
                        }
                    }
                    a_block(p, pn, np, ic, mc, pc, kc, w);
                    for (int jr = 0; jr < nc; jr += KN_NR) {
                        const int nr = SB_MIN(KN_NR, nc - jr);
                        const float *bp = bblk + (size_t)(jr / KN_NR) * krows * KN_NR;
                        ptrdiff_t ldb = KN_NR;
                        if (direct && nr == KN_NR) {
                            bp = p->b_direct + (ptrdiff_t)pc * p->b_ld + jc + jr;
                            ldb = p->b_ld;
                        } else if (direct) {
                            bp = bblk; /* the ragged last panel, packed at the start */
                        } else if (jit_b) {
                            p->b_pack(p->bctx, w->b, pc, kc, jc + jr, nr);
                            bp = w->b;
                        }
                        kn_uk_epilogue ept = ep;
                        if (ep.bias) ept.bias = ep.bias + jc + jr;
                        const float *bnext =
                            prefetch_b && nr == KN_NR ? next_b_panel(p, pc, kc, jc, jr, nc) : NULL;
                        for (int q = 0; q < np; q++) {
                            if (jr == 0 && q + 1 < np) prefetch_panel_a(&pn[q + 1]);
                            /* the next panel over the first NR/16 micro-tiles: when it is
                             * contiguous (rows NR floats apart) a quarter of its lines each,
                             * in order, a sequence the hardware prefetcher follows on (vgg
                             * conv1_1's backward filter, dy 411 MB: 1.06-1.08x on Zen 5);
                             * otherwise a 64-byte column strip each */
                            ept.b_next = NULL;
                            if (bnext && q < KN_NR / 16) {
                                if (p->b_ld == KN_NR)
                                    ept.b_next = bnext + (ptrdiff_t)q * kc * 16, ept.b_next_ld = 16;
                                else
                                    ept.b_next = bnext + 16 * q, ept.b_next_ld = ldb;
                            }
                            if (src_next && src_line + (ptrdiff_t)kc * 16 <= src_end) {
                                ept.b_next = src_next + src_line, ept.b_next_ld = 16;
                                src_line += (ptrdiff_t)kc * 16;
                            } else if (span_floats > 0) {
                                ept.b_next = span, ept.b_next_ld = 16;
                                span += (ptrdiff_t)kc * 16, span_floats -= (ptrdiff_t)kc * 16;
                            } else if (!ept.b_next && a_strips > 0) {
                                ept.b_next = a_next, ept.b_next_ld = p->a_src_ld;
                                a_next += 16, a_strips--;
                            } else if (!ept.b_next && aspan_floats > 0) {
                                ept.b_next = aspan, ept.b_next_ld = 16;
                                aspan += (ptrdiff_t)kc * 16, aspan_floats -= (ptrdiff_t)kc * 16;
                            } else if (!ept.b_next && bc_unit < bc_units) {
                                const int rb = bc_unit / bc_strips, st = bc_unit % bc_strips;
                                ept.b_next = p->b_src(p->bctx, kend + rb * p->kc) + jc + 16 * st;
                                ept.b_next_ld = p->b_src_ld;
                                bc_unit++;
                            }
                            run_tile(p, &pn[q], ic + q * KN_MR, kc, bp, ldb, jc + jr, nr, &ept,
                                     w->tile);
                        }
                    }
                }
            }
        }
    }
    if (stream) kn_stream_fence();
}

/* Rough per-thread cost of a tm x tn grid, in cycles-ish units: the FMAs, the packing each
 * thread repeats (B once per thread, packed A once per NC block), and the A stream: every
 * thread reads all of its rows' A once per NC block, from memory for big layers, so splitting
 * the columns makes each thread read all of A while each A sliver meets fewer B panels. */
static double grid_cost(const kn_gemm_plan *p, int tm, int tn) {
    double mt = ceil((double)p->M / tm / KN_MR) * KN_MR;
    double nt = ceil((double)p->N / tn / KN_NR) * KN_NR;
    double k = p->K;
    double cost = mt * nt * k / 32.0 + nt * k + mt * k * ceil(nt / KN_NC);
    if (p->a_pack) cost += 0.5 * mt * k * ceil(nt / KN_NC);
    return cost;
}

void kn_gemm_run_split(const kn_gemm_plan *p, int ith, int nth, const kn_thread_ws *w) {
    int best_tm = nth;
    double best = INFINITY;
    for (int tm = 1; tm <= nth; tm++) {
        if (nth % tm) continue;
        double c = grid_cost(p, tm, nth / tm);
        if (c < best) best = c, best_tm = tm;
    }
    const int tm = best_tm, tn = nth / best_tm;
    int m0, m1, n0, n1;
    kn_split(p->M, ith % tm, tm, KN_MR, &m0, &m1);
    kn_split(p->N, ith / tm, tn, KN_NR, &n0, &n1);
    kn_gemm_run(p, m0, m1, n0, n1, w);
}

/* ------------------------------------------------------------------------------------------ */
/* sgemm                                                                                       */
/* ------------------------------------------------------------------------------------------ */
typedef kn_sgemm_ctx sg_ctx;

static int sg_a_segs(const void *ctx, int i0, int mr, int k0, int kc, kn_seg *segs) {
    const sg_ctx *g = ctx;
    for (int r = 0; r < KN_MR; r++)
        segs[0].row[r] = r < mr ? g->A + (ptrdiff_t)(i0 + r) * g->lda + k0 : kn_zeros;
    segs[0].len = kc;
    return 1;
}

/* Full panels of a row-major A are each other's segment lists moved by whole rows. */
static ptrdiff_t sg_a_shift(const void *ctx, int i_from, int i_to) {
    const sg_ctx *g = ctx;
    return (ptrdiff_t)(i_to - i_from) * g->lda;
}

/* A stored (K, M): A(i, k) = A[k*lda + i]; each k gives MR contiguous floats of a panel. Row
 * by row of the stored A, dealt out to the block's panels. Panel by panel, one panel's k rows
 * were lda floats apart (8 KB for resnet's logits, whose backward filter packs x^T): all in one
 * L1 set, each line read from L2 for three panels. That packer was 4% of the logits backward
 * filter on one thread; this one is 1%. */
static void sg_a_pack_t(const void *ctx, float *dst, int i0, int mc, int k0, int kc) {
    const sg_ctx *g = ctx;
    const size_t panel = kn_apanel_stride(kc);
    for (int k = 0; k < kc; k++)
        kn_deal_row(dst + (size_t)k * KN_MR, g->A + (ptrdiff_t)(k0 + k) * g->lda + i0, mc, panel);
}

/* Row by row, each row dealt out to the panels: B is read sequentially (for a full-width block,
 * one contiguous stream the hardware prefetcher follows, which matters when B comes from
 * memory, as dy does in the backward-filter pass). */
void kn_pack_b_rows(float *dst, const float *B, ptrdiff_t ldb, int k0, int kc, int j0, int nc) {
    const size_t panel = (size_t)kc * KN_NR;
    for (int k = 0; k < kc; k++) {
        const float *src = B + (ptrdiff_t)(k0 + k) * ldb + j0;
        float *d = dst + (size_t)k * KN_NR;
        for (int jp = 0; jp < nc; jp += KN_NR, d += panel) {
            const int nr = SB_MIN(KN_NR, nc - jp);
            kn_copy_floats(d, src + jp, nr);
            if (nr < KN_NR) kn_zero_floats(d + nr, KN_NR - nr);
        }
    }
}

static void sg_b_pack_n(const void *ctx, float *dst, int k0, int kc, int j0, int nc) {
    const sg_ctx *g = ctx;
    kn_pack_b_rows(dst, g->B, g->ldb, k0, kc, j0, nc);
}

/* A TW x TW transpose in registers, TW = the vector width (16, 8 or 4 floats): rounds that
 * swap the off-diagonal blocks of TW/2, ..., 2, 1 rows, each TW two-source shuffles (one
 * vpermt2ps each with AVX-512; vperm2f128, vshufps, or vpermilps and vblendps with AVX2). A
 * 16-wide transpose in the AVX2 build went through the stack float by float: the fully
 * connected layers' backward data spent half its time in kn_pack_b_cols. */
#define TW KN_VLEN
typedef float vtw __attribute__((vector_size(4 * TW)));
typedef int vtwi __attribute__((vector_size(4 * TW)));
/* for loads and stores at any float's alignment (through memcpy, GCC moved each row through the
 * stack in two halves and read it back whole: a store-forwarding stall per row with AVX2) */
typedef float vtw_u __attribute__((vector_size(4 * TW), aligned(4), may_alias));
/* row i (first of a pair b apart) keeps its even b-blocks and takes row i+b's even ones;
 * row i+b takes row i's odd b-blocks and keeps its own odd ones */
#define TR_I(c, b) (((c) / (b)) % 2 == 0 ? (c) : TW + (c) - (b))
#define TR_J(c, b) (((c) / (b)) % 2 == 0 ? (c) + (b) : TW + (c))
#define TR_IDX4(F, b, o) F(o + 0, b), F(o + 1, b), F(o + 2, b), F(o + 3, b)
#if TW == 16
#define TR_IDX(F, b) \
    (vtwi) { TR_IDX4(F, b, 0), TR_IDX4(F, b, 4), TR_IDX4(F, b, 8), TR_IDX4(F, b, 12) }
#elif TW == 8
#define TR_IDX(F, b) \
    (vtwi) { TR_IDX4(F, b, 0), TR_IDX4(F, b, 4) }
#else
#define TR_IDX(F, b) \
    (vtwi) { TR_IDX4(F, b, 0) }
#endif
_Static_assert(TW == 16 || TW == 8 || TW == 4, "a transpose of 4, 8 or 16 floats");
_Static_assert(KN_NR % TW == 0, "B micro-panels hold whole transposed tiles");

static inline void transpose_tile(vtw r[TW]) {
#define TR_ROUND(b)                                                                              \
    for (int i = 0; i < TW; i++)                                                                 \
        if ((i / (b)) % 2 == 0) {                                                                \
            const vtw lo = __builtin_shuffle(r[i], r[i + (b)], TR_IDX(TR_I, b));                 \
            const vtw hi = __builtin_shuffle(r[i], r[i + (b)], TR_IDX(TR_J, b));                 \
            r[i] = lo, r[i + (b)] = hi;                                                          \
        }
#if TW == 16
    TR_ROUND(8)
#endif
#if TW >= 8
    TR_ROUND(4)
#endif
    TR_ROUND(2)
    TR_ROUND(1)
#undef TR_ROUND
}

/* One micro-panel from a B stored by columns, B(k, j) = src[j*ld + k]: a transpose in TW x TW
 * tiles through registers. TW source rows are read TW k at a time (TW streams, each row in
 * order) and written as TW panel rows of TW floats. (Element by element this packing took three
 * quarters of the fully connected layers' backward-data pass, where each packed element meets
 * only 32 rows of A, and a sixth of resnet's 1x1 backward-data passes.) */
void kn_pack_b_cols(float *dst, const float *src, ptrdiff_t ld, int kc, int nr) {
    int j = 0;
    for (; j + TW <= nr; j += TW) {
        int k = 0;
        for (; k + TW <= kc; k += TW) {
            vtw r[TW];
            for (int t = 0; t < TW; t++) r[t] = *(const vtw_u *)(src + (ptrdiff_t)(j + t) * ld + k);
            transpose_tile(r);
            for (int t = 0; t < TW; t++) *(vtw_u *)(dst + (size_t)(k + t) * KN_NR + j) = r[t];
        }
        for (; k < kc; k++)
            for (int t = 0; t < TW; t++)
                dst[(size_t)k * KN_NR + j + t] = src[(ptrdiff_t)(j + t) * ld + k];
    }
    for (; j < nr; j++) {
        const float *sj = src + (ptrdiff_t)j * ld;
        for (int k = 0; k < kc; k++) dst[(size_t)k * KN_NR + j] = sj[k];
    }
    if (nr < KN_NR)
        for (int k = 0; k < kc; k++) kn_zero_floats(dst + (size_t)k * KN_NR + nr, KN_NR - nr);
}

/* B stored (N, K): B(k, j) = B[j*ldb + k]. */
static void sg_b_pack_t(const void *ctx, float *dst, int k0, int kc, int j0, int nc) {
    const sg_ctx *g = ctx;
    for (int jp = 0; jp < nc; jp += KN_NR) {
        const int nr = SB_MIN(KN_NR, nc - jp);
        kn_pack_b_cols(dst, g->B + (ptrdiff_t)(j0 + jp) * g->ldb + k0, g->ldb, kc, nr);
        dst += (size_t)kc * KN_NR;
    }
}

void kn_sgemm_plan(kn_gemm_plan *p, kn_sgemm_ctx *g, int trans_a, int trans_b, int M, int N,
                   int K, float alpha, const float *A, int lda, const float *B, int ldb,
                   float beta, float *C, int ldc) {
    *g = (sg_ctx){.A = A, .B = B, .lda = lda, .ldb = ldb};
    *p = (kn_gemm_plan){.M = M, .N = N, .K = K, .kc = kn_pick_kc(K, 1), .actx = g, .bctx = g,
                        .c = C, .ldc = ldc, .alpha = alpha, .beta = beta};
    if (trans_a) p->a_pack = sg_a_pack_t;
    else p->a_segs = sg_a_segs, p->a_shift = sg_a_shift;
    p->b_pack = trans_b ? sg_b_pack_t : sg_b_pack_n;
    if (!trans_b) p->b_direct = B, p->b_ld = ldb;
    else p->b_cols = B, p->b_cols_ld = ldb;
}

void kn_scale_rows(float *C, int ldc, int i0, int i1, int N, float beta) {
    for (int i = i0; i < i1; i++) {
        float *c = C + (ptrdiff_t)i * ldc;
        if (beta == 0.0f) memset(c, 0, sizeof(float) * N);
        else for (int j = 0; j < N; j++) c[j] *= beta;
    }
}

size_t sgemm_workspace_size(int M, int N, int K) {
    (void)M, (void)N, (void)K;
    return (size_t)kn_max_threads() * kn_thread_ws_bytes();
}

void sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
           const float *B, int ldb, float beta, float *C, int ldc, void *ws) {
    SB_ASSERT(M >= 0 && N >= 0 && K >= 0);
    if (M == 0 || N == 0) return;
    SB_ASSERT(ldc >= N && lda >= (trans_a ? M : K) && ldb >= (trans_b ? K : N));
    if (K == 0 || alpha == 0.0f) {
        if (beta == 1.0f) return;
#pragma omp parallel
        {
            int i0, i1;
            kn_split(M, omp_get_thread_num(), omp_get_num_threads(), 1, &i0, &i1);
            kn_scale_rows(C, ldc, i0, i1, N, beta);
        }
        return;
    }
    kn_gemm_plan p;
    kn_sgemm_ctx g;
    kn_sgemm_plan(&p, &g, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#pragma omp parallel
    {
        const int ith = omp_get_thread_num();
        kn_thread_ws w = kn_thread_ws_get(ws, ith);
        kn_gemm_run_split(&p, ith, omp_get_num_threads(), &w);
    }
}
