/* kernels/ukernel_avx2.c — the AVX2+FMA GEMM micro-kernels: a 6 x 16 tile of C in 12 ymm
 * accumulators, per k step 2 loads of packed B, 6 broadcasts of A and 12 FMAs. The indirect
 * variant reads A through 6 row pointers per segment (implicit im2col, no packing); the packed
 * variant reads a [k][6] micro-panel. Compiles to nothing unless the build targets AVX2 with
 * FMA. */
#include "kernels/kernels_impl.h"

#if defined(KN_ISA_AVX2)
#include <immintrin.h>

#define NV (KN_NR / 8)
_Static_assert(KN_NR % 8 == 0, "NR must be a multiple of 8");

#define UK_INLINE static inline __attribute__((always_inline))

/* Start fetching the C tile now: it is read (beta != 0) or written only after the k loop,
 * and on large layers it is not in cache, so the misses overlap with the FMAs instead of
 * stalling the store phase. */
UK_INLINE void uk_prefetch_c(kn_uk_cdst d) {
#pragma GCC unroll 16
    for (int i = 0; i < d.mr; i++)
#pragma GCC unroll 8
        for (int v = 0; v < KN_NR; v += 16) __builtin_prefetch(kn_uk_crow(d, i) + v, 1, 3);
}

/* The store phase with its options as arguments (see KN_UK_STORE_DISPATCH). */
UK_INLINE void uk_store_as(__m256 acc[KN_MR][NV], kn_uk_cdst d, float alpha, float beta,
                           const float *bias, int scale, int add_bias, int accumulate,
                           int stream) {
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 16
    for (int i = 0; i < d.mr; i++) {
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) {
            __m256 r = acc[i][v];
            if (scale) r = _mm256_mul_ps(r, va);
            if (add_bias) r = _mm256_add_ps(r, _mm256_loadu_ps(bias + 8 * v));
            float *cp = kn_uk_crow(d, i) + 8 * v;
            if (accumulate) r = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cp), r);
            if (stream) _mm256_stream_ps(cp, r);
            else _mm256_storeu_ps(cp, r);
        }
    }
}

UK_INLINE void uk_store(__m256 acc[KN_MR][NV], kn_uk_cdst d, const kn_uk_epilogue *ep) {
    KN_UK_STORE_DISPATCH(uk_store_as, acc, d, ep);
}

/* The indirect kernel's k loop over the segments; prefetch_b as in ukernel_avx512.c (one line
 * of the B rows at bpf per k step into L2). */
UK_INLINE void uk_segments(__m256 acc[KN_MR][NV], int nseg, const kn_seg *seg, ptrdiff_t aoff,
                           int astep, const float *b, ptrdiff_t ldb, const float *bpf,
                           ptrdiff_t bpf_ld, const int prefetch_b, const int mr) {
    for (int s = 0; s < nseg; s++) {
        if (seg[s].len < 0) { /* all rows are zeros: skip its k rows of B */
            b += (ptrdiff_t)-seg[s].len * ldb;
            if (prefetch_b) bpf += (ptrdiff_t)-seg[s].len * bpf_ld;
            continue;
        }
        const float *a[KN_MR];
#pragma GCC unroll 16
        for (int i = 0; i < mr; i++) a[i] = seg[s].row[i] + aoff;
        const int len = seg[s].len;
        for (int k = 0, ko = 0; k < len; k++, ko += astep) {
            if (prefetch_b) { /* asm: see ukernel_avx512.c */
                __asm__ volatile("prefetcht1 %0" : : "m"(*bpf));
                bpf += bpf_ld;
            }
            __m256 bv[NV];
#pragma GCC unroll 8
            for (int v = 0; v < NV; v++) bv[v] = _mm256_loadu_ps(b + 8 * v);
#pragma GCC unroll 16
            for (int i = 0; i < mr; i++) {
                const __m256 ai = _mm256_set1_ps(a[i][ko]);
#pragma GCC unroll 8
                for (int v = 0; v < NV; v++) acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
            }
            b += ldb;
        }
    }
}

/* Both kernels start alike: zero accumulators, and C on its way unless it is streamed. */
UK_INLINE void uk_begin(__m256 acc[KN_MR][NV], kn_uk_cdst d, const kn_uk_epilogue *ep) {
#pragma GCC unroll 16
    for (int i = 0; i < d.mr; i++)
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) acc[i][v] = _mm256_setzero_ps();
    if (!ep->stream) uk_prefetch_c(d);
}

/* A kernel's body for C tiles with regular rows (irregular = 0) or row pointers (1): see
 * kn_uk_cdst. */
UK_INLINE void uk_indirect(int nseg, const kn_seg *seg, ptrdiff_t aoff, int astep, const float *b,
                           ptrdiff_t ldb, float *c, ptrdiff_t ldc, const kn_uk_epilogue *ep,
                           const int irregular, const int mr) {
    const kn_uk_cdst d = {c, ldc, ep->c_rows, ep->c_col, irregular, mr};
    __m256 acc[KN_MR][NV];
    uk_begin(acc, d, ep);
    if (ep->b_next)
        uk_segments(acc, nseg, seg, aoff, astep, b, ldb, ep->b_next, ep->b_next_ld, 1, mr);
    else uk_segments(acc, nseg, seg, aoff, astep, b, ldb, NULL, 0, 0, mr);
    uk_store(acc, d, ep);
}

void kn_ukernel_indirect(int nseg, const kn_seg *seg, ptrdiff_t aoff, int astep, const float *b,
                         ptrdiff_t ldb, float *c, ptrdiff_t ldc, const kn_uk_epilogue *ep) {
    KN_UK_ROWS_DISPATCH(uk_indirect, ep, nseg, seg, aoff, astep, b, ldb, c, ldc, ep);
}

/* The packed kernel's k loop; prefetch_b as in uk_segments. */
UK_INLINE void uk_kloop_packed(__m256 acc[KN_MR][NV], int kc, const float *a, const float *b,
                               ptrdiff_t ldb, const float *bpf, ptrdiff_t bpf_ld,
                               const int prefetch_b, const int mr) {
    for (int k = 0; k < kc; k++) {
        if (prefetch_b) { /* asm: see ukernel_avx512.c */
            __asm__ volatile("prefetcht1 %0" : : "m"(*bpf));
            bpf += bpf_ld;
        }
        __m256 bv[NV];
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) bv[v] = _mm256_loadu_ps(b + 8 * v);
#pragma GCC unroll 16
        for (int i = 0; i < mr; i++) {
            const __m256 ai = _mm256_set1_ps(a[i]);
#pragma GCC unroll 8
            for (int v = 0; v < NV; v++) acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
        }
        a += KN_MR;
        b += ldb;
    }
}

UK_INLINE void uk_packed(int kc, const float *a, const float *b, ptrdiff_t ldb, float *c,
                         ptrdiff_t ldc, const kn_uk_epilogue *ep, const int irregular,
                         const int mr) {
    const kn_uk_cdst d = {c, ldc, ep->c_rows, ep->c_col, irregular, mr};
    __m256 acc[KN_MR][NV];
    uk_begin(acc, d, ep);
    if (ep->b_next) uk_kloop_packed(acc, kc, a, b, ldb, ep->b_next, ep->b_next_ld, 1, mr);
    else uk_kloop_packed(acc, kc, a, b, ldb, NULL, 0, 0, mr);
    uk_store(acc, d, ep);
}

void kn_ukernel_packed(int kc, const float *a, const float *b, ptrdiff_t ldb, float *c,
                       ptrdiff_t ldc, const kn_uk_epilogue *ep) {
    KN_UK_ROWS_DISPATCH(uk_packed, ep, kc, a, b, ldb, c, ldc, ep);
}

void kn_stream_fence(void) { _mm_sfence(); }

#endif
