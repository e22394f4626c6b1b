/* kernels/kernels_impl.h — internals shared by the GEMM-based ops of kernels/ (gemm.c, conv2d.c,
 * fc.c, threads.c and the micro-kernels), and a few helpers the memory-bound ops use too. Not
 * part of the public API.
 *
 * Everything here is one engine: C(M,N) = alpha * A(M,K) B(K,N) + beta * C (+ bias on columns),
 * where the ops describe A, B and C through small callbacks instead of materialized matrices:
 *  - A is either INDIRECT (each micro-panel of KN_MR rows is a list of segments, each segment
 *    KN_MR row pointers plus a length; an implicit im2col is just pointer arithmetic, and a
 *    padded pixel points at a block of zeros) or PACKED (a callback packs an MC x KC block in
 *    micro-panel order [k][KN_MR]; used when A's rows are not contiguous in memory).
 *  - B is always packed by a callback into NR-wide micro-panels [k][KN_NR], zero-padded.
 *  - C is row-major with ldc, or rows found by a callback (strided sub-grids of dx), or stored
 *    transposed (dW^T orientation of the backward-filter pass).
 */
#ifndef KERNELS_IMPL_H
#define KERNELS_IMPL_H

#include <stddef.h>
#include <string.h>
#include <stdint.h>

#include "kernels/simd.h"

/* One segment of an indirect A micro-panel: rows[i][0..len) are A(i, k0..k0+len). A negative
 * len marks -len k steps whose rows are all zeros (padding): the kernel skips them. */
typedef struct kn_seg {
    const float *row[KN_MR];
    int len;
} kn_seg;

/* kn_gemm_plan.a_shift: the panels do not share a segment list. */
#define KN_NO_SHIFT PTRDIFF_MIN

/* Strided indirect A rows (kn_gemm_plan.a_step) are at most this many floats per k. */
#define KN_ASTEP_MAX 8
/* Zeros for padded pixels: a zero row of KN_KC k steps at any a_step. */
extern const float kn_zeros[KN_KC * KN_ASTEP_MAX];

/* Micro-kernels (ukernel_<isa>.c). Both compute acc = A_panel . B_panel over the whole k range
 * and then store C[i][j] = alpha*acc + bias[j] + beta*C[i][j] for i < KN_MR (or the epilogue's
 * rows), j < KN_NR with row stride ldc (or at the epilogue's c_rows); beta == 0 never reads C;
 * bias may be NULL. b holds KN_NR floats per k, rows ldb apart: a packed micro-panel
 * (ldb = KN_NR) or B itself. */
/* What a micro-kernel does besides the FMAs: the store phase's scalars and options, and a
 * prefetch. The kernels take it by pointer and read it only where they use it. Passed as scalar
 * arguments, alpha and beta arrived in vector registers and GCC kept them there through the k
 * loop: with the AVX-512 tile's 24 accumulators, 4 B vectors and a broadcast (29 of 32 zmm) it
 * then spilled a B vector on every k step (5-20% of the kernels' GFLOP/s on Sapphire Rapids).
 * Copied whole into a local, the struct became one 32-byte load from the caller's narrower
 * stores, which the store buffer cannot forward: it waited for every older store to reach L1,
 * the previous tile's streamed C included (30% of vgg conv1_1's forward time).
 * stream: store C with non-temporal stores (beta == 0, c 64-byte aligned and ldc a multiple of
 * 16 floats; the engine sets it, see kn_gemm_run), and do not prefetch it. */
typedef struct kn_uk_epilogue {
    float alpha, beta;
    const float *bias;
    int stream;
    const float *b_next; /* one line per k step into L2 (the SIMD kernels), lines b_next_ld
                          * floats apart, or NULL */
    ptrdiff_t b_next_ld;
    /* NULL: C's row i is at c + i * ldc. Set: at c_rows[i] + c_col, and c and ldc are unused
     * (rows at irregular addresses: stride-2 backward data's phase grids, whose 6-row panels
     * mostly wrap an image row; or the rows of a tile of fewer rows, see rows) */
    float *const *c_rows;
    int c_col;
    /* the AVX-512 kernel: prefetch C into L1 rather than L2 (see ukernel_avx512.c) */
    int c_l1;
    /* 0: all KN_MR rows. 1 to KN_MR - 1 (with c_rows set): only the tile's first rows are
     * computed and stored, the A rows past them never read. The last micro-panel of a block
     * with M % MR rows: the fully connected layers' M = 32 (the batch) is five full panels and
     * two rows, which as a full tile cost as much as the other five. */
    int rows;
} kn_uk_epilogue;

/* Where a micro-kernel's C tile goes: row i at c + i * ldc, or, for a tile whose rows are
 * irregular (kn_uk_epilogue.c_rows), at rows[i] + col. irregular is a constant in each copy of
 * a kernel's body: the kernels run a separate copy for such tiles, so that the pointers of one
 * take no registers in the other (computed in one body, GCC kept them in vector registers
 * through the k loop and spilled B vectors instead: resnet logits and vgg fc8 forward
 * 0.74-0.76x). */
typedef struct kn_uk_cdst {
    float *c;
    ptrdiff_t ldc;
    float *const *rows;
    int col, irregular;
    int mr; /* the rows computed and stored (kn_uk_epilogue.rows), a constant like irregular */
} kn_uk_cdst;

static inline __attribute__((always_inline)) float *kn_uk_crow(kn_uk_cdst d, int i) {
    return d.irregular ? d.rows[i] + d.col : d.c + i * d.ldc;
}

/* The SIMD kernels' store phase: STORE_AS(acc, dst, alpha, beta, bias, scale, add_bias,
 * accumulate, stream) with constant options in each common case, so that each compiles to a
 * straight run of stores. With the tests inside its unrolled loop GCC kept four compares and
 * branches per stored vector (about 100 instructions per tile), a third of the kernel's time
 * outside the k loop when K is small (vgg conv1_1, K = 27). */
#define KN_UK_STORE_DISPATCH(STORE_AS, acc, dst, ep)                                            \
    do {                                                                                        \
        const float alpha_ = (ep)->alpha, beta_ = (ep)->beta;                                   \
        const float *bias_ = (ep)->bias;                                                        \
        const int stream_ = (ep)->stream;                                                       \
        if (alpha_ != 1.0f) {                                                                   \
            STORE_AS(acc, dst, alpha_, beta_, bias_, 1, bias_ != NULL, beta_ != 0.0f, stream_); \
            break;                                                                              \
        }                                                                                       \
        switch ((bias_ != NULL) | (beta_ != 0.0f) << 1 | (stream_ != 0) << 2) {                 \
        case 0: STORE_AS(acc, dst, 1.0f, 0.0f, NULL, 0, 0, 0, 0); break;                        \
        case 1: STORE_AS(acc, dst, 1.0f, 0.0f, bias_, 0, 1, 0, 0); break;                       \
        case 2: STORE_AS(acc, dst, 1.0f, beta_, NULL, 0, 0, 1, 0); break;                       \
        case 3: STORE_AS(acc, dst, 1.0f, beta_, bias_, 0, 1, 1, 0); break;                      \
        case 4: STORE_AS(acc, dst, 1.0f, 0.0f, NULL, 0, 0, 0, 1); break;                        \
        case 5: STORE_AS(acc, dst, 1.0f, 0.0f, bias_, 0, 1, 0, 1); break;                       \
        default: STORE_AS(acc, dst, 1.0f, beta_, bias_, 0, bias_ != NULL, 1, stream_); break;   \
        }                                                                                       \
    } while (0)

/* A kernel's entry: BODY(args..., irregular, mr) with both constant, so that each kind of tile
 * has its own copy of the body (see kn_uk_cdst; a tile of fewer rows keeps fewer accumulators
 * and row pointers). */
_Static_assert(KN_MR == 6, "KN_UK_ROWS_DISPATCH lists the partial tiles of 6 rows");
#define KN_UK_ROWS_DISPATCH(BODY, ep, ...)                 \
    do {                                                   \
        switch ((ep)->rows) {                              \
        case 1: BODY(__VA_ARGS__, 1, 1); break;            \
        case 2: BODY(__VA_ARGS__, 1, 2); break;            \
        case 3: BODY(__VA_ARGS__, 1, 3); break;            \
        case 4: BODY(__VA_ARGS__, 1, 4); break;            \
        case 5: BODY(__VA_ARGS__, 1, 5); break;            \
        default:                                           \
            if ((ep)->c_rows) BODY(__VA_ARGS__, 1, KN_MR); \
            else BODY(__VA_ARGS__, 0, KN_MR);              \
        }                                                  \
    } while (0)

/* aoff: floats added to every row pointer of the non-zero segments (a panel that reuses another
 * panel's segment list, see kn_gemm_plan.a_shift). astep: floats between consecutive k of a
 * row (1: contiguous rows). */
void kn_ukernel_indirect(int nseg, const kn_seg *seg, ptrdiff_t aoff, int astep, const float *b,
                         ptrdiff_t ldb, float *c, ptrdiff_t ldc, const kn_uk_epilogue *ep);
/* a: packed micro-panel, KN_MR floats per k, kc steps. */
void kn_ukernel_packed(int kc, const float *a, const float *b, ptrdiff_t ldb, float *c,
                       ptrdiff_t ldc, const kn_uk_epilogue *ep);
/* Order a thread's non-temporal C stores before whatever it does next (sfence); the engine calls
 * it at the end of a run that streamed, before the threads' barrier. */
void kn_stream_fence(void);

/* A GEMM described by callbacks. Exactly one of a_segs / a_pack is set. */
typedef struct kn_gemm_plan {
    int M, N, K;
    int kc;  /* K-block size, <= KN_KC (callers align it with tap boundaries) */
    /* Indirect A: fill segs for rows [i0, i0+mr) (mr <= KN_MR; rows >= mr must point at
     * kn_zeros) and k in [k0, k0+kc); return the number of segments (<= KN_KC). */
    int (*a_segs)(const void *ctx, int i0, int mr, int k0, int kc, kn_seg *segs);
    /* Optional, with a_segs: when the full micro-panel at row i_to has the segments of the one
     * at i_from (built by a_segs) with every row pointer moved by the same number of floats,
     * return that number, else KN_NO_SHIFT. Such a segment list must have no zero rows except
     * in segments whose rows are all zeros (len < 0). The engine then builds one list per run
     * of such panels (an output row of a convolution) instead of one per panel. */
    ptrdiff_t (*a_shift)(const void *ctx, int i_from, int i_to);
    /* With a_segs: A(i, k0 + t) = row[i][t * a_step] in a segment (0 means 1, contiguous rows;
     * at most KN_ASTEP_MAX). A strided view reads an operand in place that would otherwise be
     * packed: the backward filter's X_col^T rows for 3-channel inputs are x itself, IC * SW
     * floats per pixel. */
    int a_step;
    /* Packed A: write rows [i0, i0+mc) x k [k0, k0+kc) as ceil(mc/MR) micro-panels of kc*MR
     * floats, kn_apanel_stride(kc) apart: element (i, k) at
     * dst[(i/MR)*kn_apanel_stride(kc) + k*MR + i%MR], rows >= mc zero. */
    void (*a_pack)(const void *ctx, float *dst, int i0, int mc, int k0, int kc);
    const void *actx;
    /* Optional, with packed A: the values A packs from are the columns of a row-major matrix,
     * A(i, k) = a_src(actx, k0)[(k - k0) * a_src_ld + i] (the backward filter's x^T for a 1x1
     * convolution, or dy^T). The micro-tiles then prefetch the next A block while one runs. */
    const float *(*a_src)(const void *ctx, int k0);
    int a_src_ld;
    /* Optional, with packed A (and no a_src): the memory A's columns [k0, k1) pack from lies in
     * [*lo, *hi) (the backward filter's X_col^T: x's rows under the pixels' windows). The
     * micro-tiles then prefetch the next A block's span while one runs, as with b_span. */
    void (*a_span)(const void *ctx, int k0, int k1, const float **lo, const float **hi);
    /* Packed B: k [k0, k0+kc) x columns [j0, j0+nc) as ceil(nc/NR) micro-panels of kc*NR
     * floats, element (k, j) at dst[(j/NR)*kc*NR + k*NR + j%NR], columns >= nc zero. The engine
     * asks for a chunk of K blocks at a block's width, or, with one MC block, for one micro-panel
     * (nc <= NR) of one K block just before its micro-tiles. */
    void (*b_pack)(const void *ctx, float *dst, int k0, int kc, int j0, int nc);
    const void *bctx;
    /* Optional: B is also plain row-major, B(k, j) = b_direct[k*b_ld + j]. When a thread has few
     * rows, or B is a single micro-panel already (N = KN_NR = b_ld), the engine then reads full
     * B panels in place instead of packing them. */
    const float *b_direct;
    ptrdiff_t b_ld;
    /* Optional: B is stored by columns, B(k, j) = b_cols[j*b_cols_ld + k] (a transposed
     * operand: W in the fully connected layers' dx = dy . W^T). With one MC block the engine
     * then takes each B panel down the whole K and fetches the next block's source ahead
     * (run_panels_deep in gemm.c). */
    const float *b_cols;
    ptrdiff_t b_cols_ld;
    /* Optional, with packed B: the rows B packs from are contiguous in memory, b_src_ld floats
     * each, row k0's first at b_src(bctx, k0) (the backward filter's dy, or a 1x1
     * convolution's x). With one MC block the engine then packs one K block at a time and has
     * the micro-tiles prefetch the next block's rows. */
    const float *(*b_src)(const void *ctx, int k0);
    int b_src_ld;
    /* Optional, with packed B: the memory that B's rows [k0, k1) are packed from lies within
     * [*lo, *hi) (the backward filter's X_col: the rows of x under the pixels' windows). With
     * one MC block and B packed a micro-panel at a time, the micro-tiles of a K block then
     * prefetch the next block's span. */
    void (*b_span)(const void *ctx, int k0, int k1, const float **lo, const float **hi);
    /* C: element (i, j) at c_row(cctx, i)[j] when c_row is set, else c[i*ldc + j], or
     * c[j*ldc + i] when c_trans. */
    float *(*c_row)(const void *ctx, int i);
    const void *cctx;
    float *c;
    ptrdiff_t ldc;
    int c_trans;
    float alpha, beta;
    const float *bias;  /* (N) added once, or NULL */
} kn_gemm_plan;

/* The engine's MC block height: the most rows whose A block (MC x KC) and C block (MC x NC)
 * take at most KN_L2_SHARE of one core's L2 (simd.h), a multiple of KN_MR in [2 KN_MR, KN_MC];
 * KN_MC where the L2 size is unknown. The size is read once (sysconf). */
int kn_block_rows(void);
/* The same for an L2 of l2_bytes (<= 0: unknown). */
int kn_block_rows_for_l2(long l2_bytes);

/* Per-thread scratch of the engine. */
typedef struct kn_thread_ws {
    float *a;     /* a packed A block (KN_ABLOCK_FLOATS) */
    float *b;     /* KN_KB * KN_NC: one packed K chunk of an NC block */
    float *tile;  /* KN_MR * KN_NR */
    kn_seg *segs; /* (KN_MC / KN_MR) * KN_KC: the segments of one MC block of indirect A */
} kn_thread_ws;

/* Bytes of engine scratch per thread (64-byte multiple). */
size_t kn_thread_ws_bytes(void);
/* Carve thread ith's scratch out of ws (nth slices of kn_thread_ws_bytes() from ws). */
kn_thread_ws kn_thread_ws_get(void *ws, int ith);

/* Run the rows [m0, m1) x columns [n0, n1) part of the plan on the calling thread. */
void kn_gemm_run(const kn_gemm_plan *p, int m0, int m1, int n0, int n1, const kn_thread_ws *w);

/* Split the plan's M x N over nth threads (a tm x tn grid chosen by a cost model) and run thread
 * ith's part. Call from every thread of a parallel region. */
void kn_gemm_run_split(const kn_gemm_plan *p, int ith, int nth, const kn_thread_ws *w);

/* sgemm as a plan (so ops can run several GEMMs inside one parallel region); g must outlive
 * the plan. Arguments as sgemm's; K > 0. */
typedef struct kn_sgemm_ctx {
    const float *A, *B;
    int lda, ldb;
} kn_sgemm_ctx;
void kn_sgemm_plan(kn_gemm_plan *p, kn_sgemm_ctx *g, int trans_a, int trans_b, int M, int N,
                   int K, float alpha, const float *A, int lda, const float *B, int ldb,
                   float beta, float *C, int ldc);

/* Pack B(k, j) = B[k*ldb + j] (row-major, unit column stride) for a kn_gemm_plan b_pack. */
void kn_pack_b_rows(float *dst, const float *B, ptrdiff_t ldb, int k0, int kc, int j0, int nc);

/* One micro-panel (kc rows of KN_NR floats, columns >= nr zero) from a B stored by columns:
 * B(k, j) = src[j*ld + k] (a transpose, in 16 x 16 register tiles). */
void kn_pack_b_cols(float *dst, const float *src, ptrdiff_t ld, int kc, int nr);

/* C rows [i0, i1) of width N: *= beta (beta == 0 writes zeros, NaNs included). */
void kn_scale_rows(float *C, int ldc, int i0, int i1, int N, float beta);

/* K-block size: <= KN_KC, a multiple of align when align <= KN_KC, balanced over the blocks. */
int kn_pick_kc(int K, int align);

/* conv2d_dxdot.c: the backward-data pass of a convolution with at most 4 input channels (and OC
 * a multiple of KN_VLEN) as direct dot products over the output channels; dx overwritten. */
struct conv2d_shape;
int conv2d_dxdot_applies(const struct conv2d_shape *s);
void conv2d_dxdot(float *dx, const float *dy, const float *w, const struct conv2d_shape *s);

/* conv2d_direct.c: the forward pass of a convolution with at most 4 input channels (and OC a
 * multiple of KN_NR) as direct register-blocked loops; y overwritten. Its scratch is the
 * engine's per-thread A block (ws as for conv2d_forward). */
int conv2d_direct_applies(const struct conv2d_shape *s);
void conv2d_direct(float *y, const float *x, const float *w, const float *b,
                   const struct conv2d_shape *s, void *ws);

/* Bytes of output from which an op that writes it once, without reading it, stores it
 * non-temporally (the GEMM engine, conv2d_direct.c). */
#ifndef KN_STREAM_MIN_BYTES
#define KN_STREAM_MIN_BYTES (16 << 20)
#endif

/* threads.c: OpenMP thread count for workspace sizing, and static range splitting. */
int kn_max_threads(void);
/* [*lo, *hi) = part ith of [0, n) split into nth nearly equal parts that are multiples of
 * align (except the last). */
void kn_split(int n, int ith, int nth, int align, int *lo, int *hi);

/* Round bytes up to a 64-byte multiple. */
static inline size_t kn_align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Copy / zero n floats for the packing routines. Their runs are short (one tap's channels, one
 * panel row: 3 to 512 floats) and of unknown length, where GCC 12 expands memcpy and memset
 * into `rep movsq` / `rep stosq`, whose start-up cost exceeded the copy itself (the backward-
 * filter packing took a third of the pass). So: 64-byte vector pieces (one zmm move, or two to
 * four narrower ones) and a scalar tail, each loop with an empty asm statement, which emits
 * nothing but stops GCC from turning the loop back into a memcpy or memset call. */
typedef float kn_v16f __attribute__((vector_size(64), aligned(4), may_alias));

static inline void kn_copy_floats(float *restrict d, const float *restrict s, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        *(kn_v16f *)(d + i) = *(const kn_v16f *)(s + i);
        __asm__("");
    }
    for (; i < n; i++) {
        d[i] = s[i];
        __asm__("");
    }
}

static inline void kn_zero_floats(float *d, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        *(kn_v16f *)(d + i) = (kn_v16f){0};
        __asm__("");
    }
    for (; i < n; i++) {
        d[i] = 0.0f;
        __asm__("");
    }
}

/* Floats from one packed A micro-panel to the next: kc * MR and a cache line. A packer deals
 * each k row out to all the block's panels; kc * MR floats apart (6 KB with AVX2's KC = 256,
 * 3 KB with AVX-512's 128), its stores to the 24 panels fell into two or four L1 sets and
 * evicted each other's lines. */
#define KN_APANEL_PAD 16
static inline size_t kn_apanel_stride(int kc) { return (size_t)kc * KN_MR + KN_APANEL_PAD; }
/* A packed A block: MC / MR micro-panels of up to KC k rows (the thread workspace's a). */
#define KN_ABLOCK_FLOATS ((size_t)(KN_MC / KN_MR) * kn_apanel_stride(KN_KC))

/* One k row of an A block: src[0 .. mc) dealt out MR floats per micro-panel (panel floats
 * apart, starting at d), the last panel's rows past mc zero. A fixed-size copy per full panel:
 * element by element this transpose cost a quarter of the pass on 64-channel layers (the
 * backward filter's A = X^T or dY^T, and sgemm's transposed A). */
static inline void kn_deal_row(float *d, const float *src, int mc, size_t panel) {
    const int full = mc / KN_MR * KN_MR, rest = mc - full;
    for (int ip = 0; ip < full; ip += KN_MR, d += panel) memcpy(d, src + ip, sizeof(float) * KN_MR);
    if (rest) {
        int r = 0;
        for (; r < rest; r++) d[r] = src[full + r];
        for (; r < KN_MR; r++) d[r] = 0.0f;
    }
}

/* Fetch n floats from p into L1, a line at a time. For a stream read only through masked loads:
 * GCC folds a select such as `y > 0 ? dy : 0` (a ReLU's backward) into a load of dy masked by
 * the compare, and on Zen 5 the hardware prefetchers did not follow those loads, so dy came
 * from memory on demand. Fetched a block ahead, resnet's ReLU backward passes ran 1.25-2x
 * faster (kernels/batchnorm.c, kernels/eltwise.c). */
static inline void kn_prefetch_floats(const float *p, size_t n) {
    for (size_t i = 0; i < n; i += 16) __builtin_prefetch(p + i, 0, 3);
}

#endif /* KERNELS_IMPL_H */
