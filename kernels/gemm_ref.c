/* kernels/gemm_ref.c — the naive sgemm: the oracle for tests of the blocked engine. Obviously
 * right rather than fast: one dot product per C element, accumulated in double. */
#include <stddef.h>

#include "core/sb.h"
#include "kernels/kernels.h"

void sgemm_ref(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
               int lda, const float *B, int ldb, float beta, float *C, int ldc, void *ws) {
    (void)ws;
    SB_ASSERT(M >= 0 && N >= 0 && K >= 0);
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double acc = 0.0;
            for (int k = 0; k < K; k++) {
                float a = trans_a ? A[(ptrdiff_t)k * lda + i] : A[(ptrdiff_t)i * lda + k];
                float b = trans_b ? B[(ptrdiff_t)j * ldb + k] : B[(ptrdiff_t)k * ldb + j];
                acc += (double)a * b;
            }
            float *c = &C[(ptrdiff_t)i * ldc + j];
            float v = alpha * (float)acc;
            *c = beta == 0.0f ? v : v + beta * *c;
        }
    }
}
