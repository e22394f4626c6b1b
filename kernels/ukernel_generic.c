/* kernels/ukernel_generic.c — portable GEMM micro-kernels for the generic (SSE2 baseline) build:
 * a 6 x 8 tile of C in 12 four-float vectors written with GCC vector extensions, multiply then
 * add (no FMA in x86-64 v1, and -std=c11 keeps GCC from contracting). Same contract as the SIMD
 * variants; compiles to nothing when a wider ISA is targeted. */
#include "kernels/kernels_impl.h"

#if defined(KN_ISA_GENERIC)
#include <string.h>

typedef float v4 __attribute__((vector_size(16)));
#define NV (KN_NR / 4)
_Static_assert(KN_NR % 4 == 0, "NR must be a multiple of 4");

#define UK_INLINE static inline __attribute__((always_inline))

UK_INLINE v4 v4_load(const float *p) {
    v4 r;
    memcpy(&r, p, sizeof r);
    return r;
}

UK_INLINE void v4_store(float *p, v4 v) { memcpy(p, &v, sizeof v); }

UK_INLINE v4 v4_splat(float a) { return (v4){a, a, a, a}; }

/* Start fetching the C tile now: it is read (beta != 0) or written only after the k loop,
 * and on large layers it is not in cache, so the misses overlap with the FMAs instead of
 * stalling the store phase. */
UK_INLINE void uk_prefetch_c(kn_uk_cdst d) {
#pragma GCC unroll 16
    for (int i = 0; i < d.mr; i++)
#pragma GCC unroll 8
        for (int v = 0; v < KN_NR; v += 16) __builtin_prefetch(kn_uk_crow(d, i) + v, 1, 3);
}

UK_INLINE void uk_store(v4 acc[KN_MR][NV], kn_uk_cdst d, float alpha, float beta,
                        const float *bias) {
    const v4 va = v4_splat(alpha), vb = v4_splat(beta);
#pragma GCC unroll 16
    for (int i = 0; i < d.mr; i++) {
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) {
            v4 r = acc[i][v];
            if (alpha != 1.0f) r = r * va;
            if (bias) r = r + v4_load(bias + 4 * v);
            float *cp = kn_uk_crow(d, i) + 4 * v;
            if (beta != 0.0f) r = r + vb * v4_load(cp);
            v4_store(cp, r);
        }
    }
}

/* A kernel's body for C tiles with regular rows (irregular = 0) or row pointers (1): see
 * kn_uk_cdst. */
UK_INLINE void uk_indirect(int nseg, const kn_seg *seg, ptrdiff_t aoff, int astep, const float *b,
                           ptrdiff_t ldb, float *c, ptrdiff_t ldc, const kn_uk_epilogue *ep,
                           const int irregular, const int mr) {
    const kn_uk_cdst d = {c, ldc, ep->c_rows, ep->c_col, irregular, mr};
    v4 acc[KN_MR][NV];
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) acc[i][v] = v4_splat(0.0f);
    uk_prefetch_c(d);
    for (int s = 0; s < nseg; s++) {
        if (seg[s].len < 0) { /* all rows are zeros: skip its k rows of B */
            b += (ptrdiff_t)-seg[s].len * ldb;
            continue;
        }
        const float *a[KN_MR];
#pragma GCC unroll 16
        for (int i = 0; i < mr; i++) a[i] = seg[s].row[i] + aoff;
        const int len = seg[s].len;
        for (int k = 0, ko = 0; k < len; k++, ko += astep) {
            v4 bv[NV];
#pragma GCC unroll 8
            for (int v = 0; v < NV; v++) bv[v] = v4_load(b + 4 * v);
#pragma GCC unroll 16
            for (int i = 0; i < mr; i++) {
                const v4 ai = v4_splat(a[i][ko]);
#pragma GCC unroll 8
                for (int v = 0; v < NV; v++) acc[i][v] += ai * bv[v];
            }
            b += ldb;
        }
    }
    uk_store(acc, d, ep->alpha, ep->beta, ep->bias);
}

UK_INLINE void uk_packed(int kc, const float *a, const float *b, ptrdiff_t ldb, float *c,
                         ptrdiff_t ldc, const kn_uk_epilogue *ep, const int irregular,
                         const int mr) {
    const kn_uk_cdst d = {c, ldc, ep->c_rows, ep->c_col, irregular, mr};
    v4 acc[KN_MR][NV];
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) acc[i][v] = v4_splat(0.0f);
    uk_prefetch_c(d);
    for (int k = 0; k < kc; k++) {
        v4 bv[NV];
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) bv[v] = v4_load(b + 4 * v);
#pragma GCC unroll 16
        for (int i = 0; i < mr; i++) {
            const v4 ai = v4_splat(a[i]);
#pragma GCC unroll 8
            for (int v = 0; v < NV; v++) acc[i][v] += ai * bv[v];
        }
        a += KN_MR;
        b += ldb;
    }
    uk_store(acc, d, ep->alpha, ep->beta, ep->bias);
}

void kn_ukernel_indirect(int nseg, const kn_seg *seg, ptrdiff_t aoff, int astep, const float *b,
                         ptrdiff_t ldb, float *c, ptrdiff_t ldc, const kn_uk_epilogue *ep) {
    KN_UK_ROWS_DISPATCH(uk_indirect, ep, nseg, seg, aoff, astep, b, ldb, c, ldc, ep);
}

void kn_ukernel_packed(int kc, const float *a, const float *b, ptrdiff_t ldb, float *c,
                       ptrdiff_t ldc, const kn_uk_epilogue *ep) {
    KN_UK_ROWS_DISPATCH(uk_packed, ep, kc, a, b, ldb, c, ldc, ep);
}

/* Plain stores only (KN_STREAM_STORES is 0): the engine never sets ep->stream here. */
void kn_stream_fence(void) {}

#endif
