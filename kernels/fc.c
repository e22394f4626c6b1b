/* kernels/fc.c — fully connected layers, y(N, OC) = x(N, IC) . w(IC, OC) + b, as GEMMs on the
 * engine of gemm.c. The batch is small (M = N), so the engine's cost model splits the output
 * columns over threads rather than the rows. The backward pass runs its GEMMs (dx = dy . w^T,
 * dw = x^T . dy) and the bias sum in one parallel region. */
#include <omp.h>
#include <string.h>

#include "core/sb.h"
#include "kernels/kernels.h"
#include "kernels/kernels_impl.h"

size_t fc_workspace_size(int N, int IC, int OC) {
    (void)N, (void)IC;
    return (size_t)kn_max_threads() * (kn_thread_ws_bytes() + kn_align64(sizeof(float) * OC));
}

void fc_forward(float *y, const float *x, const float *w, const float *b, int N, int IC, int OC,
                void *ws) {
    SB_ASSERT(N > 0 && IC > 0 && OC > 0);
    kn_gemm_plan p;
    kn_sgemm_ctx g;
    kn_sgemm_plan(&p, &g, 0, 0, N, OC, IC, 1.0f, x, IC, w, OC, 0.0f, y, OC);
    p.bias = b;
#pragma omp parallel
    {
        const int ith = omp_get_thread_num();
        kn_thread_ws tw = kn_thread_ws_get(ws, ith);
        kn_gemm_run_split(&p, ith, omp_get_num_threads(), &tw);
    }
}

void fc_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                 const float *w, int N, int IC, int OC, void *ws) {
    SB_ASSERT(N > 0 && IC > 0 && OC > 0);
    kn_gemm_plan pdx, pdw;
    kn_sgemm_ctx gdx, gdw;
    if (dx) kn_sgemm_plan(&pdx, &gdx, 0, 1, N, IC, OC, 1.0f, dy, OC, w, OC, 0.0f, dx, IC);
    kn_sgemm_plan(&pdw, &gdw, 1, 0, IC, OC, N, 1.0f, x, IC, dy, OC, 0.0f, dw, OC);
    const int nth_max = kn_max_threads();
    char *dbparts = (char *)ws + (size_t)nth_max * kn_thread_ws_bytes();
    const size_t dbstride = kn_align64(sizeof(float) * OC);
#pragma omp parallel
    {
        const int ith = omp_get_thread_num(), nth = omp_get_num_threads();
        SB_ASSERT(nth <= nth_max);
        kn_thread_ws tw = kn_thread_ws_get(ws, ith);
        if (dx) kn_gemm_run_split(&pdx, ith, nth, &tw);
        kn_gemm_run_split(&pdw, ith, nth, &tw);
        if (db) {
            /* columns split over threads: each db[j] is summed by one thread, rows in order */
            int j0, j1;
            kn_split(OC, ith, nth, 16, &j0, &j1);
            float *acc = (float *)(dbparts + (size_t)ith * dbstride);
            memset(acc, 0, sizeof(float) * OC);
            for (int n = 0; n < N; n++) {
                const float *row = dy + (ptrdiff_t)n * OC;
                for (int j = j0; j < j1; j++) acc[j] += row[j];
            }
            memcpy(db + j0, acc + j0, sizeof(float) * (size_t)(j1 - j0));
        }
    }
}
