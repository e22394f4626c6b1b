/* dist/allreduce.c — the gradient exchange: the contiguous gradient arena cut into buckets from
 * its end (backward finishes the last layers first), one MPI_Iallreduce per bucket started as
 * soon as backward reports the bucket final, MPI_Testall on every report so Open MPI's
 * non-blocking collectives progress between layers, MPI_Waitall and the division by the rank
 * count before the optimizer. Summation order inside a bucket is Open MPI's, the same on every
 * rank, so the replicas keep identical weights. Knows MPI and float arrays, nothing of nets.
 */
#include <limits.h>
#include <mpi.h>
#include <stdlib.h>

#include "dist/dist.h"

struct dist_grads {
    float *grads;
    size_t n;
    int size;
    int nbuckets, started; /* buckets [0, started) are in flight or done this step */
    size_t *lo, *hi;       /* bucket b: grads[lo[b], hi[b]); bucket 0 is the arena's end */
    MPI_Request *req;
};

void dist_grads_create(dist_grads **out, dist *d, float *grads, size_t n, size_t bucket_bytes) {
    SB_ASSERT(bucket_bytes >= sizeof(float));
    dist_grads *g = sb_xcalloc(1, sizeof *g);
    size_t per = bucket_bytes / sizeof(float);
    if (per > (size_t)INT_MAX) per = (size_t)INT_MAX;
    g->grads = grads;
    g->n = n;
    g->size = dist_size(d);
    g->nbuckets = (int)((n + per - 1) / per);
    g->lo = sb_xmalloc((size_t)SB_MAX(g->nbuckets, 1) * sizeof(size_t));
    g->hi = sb_xmalloc((size_t)SB_MAX(g->nbuckets, 1) * sizeof(size_t));
    g->req = sb_xmalloc((size_t)SB_MAX(g->nbuckets, 1) * sizeof(MPI_Request));
    for (int b = 0; b < g->nbuckets; b++) {
        g->hi[b] = n - (size_t)b * per;
        g->lo[b] = g->hi[b] > per ? g->hi[b] - per : 0;
        g->req[b] = MPI_REQUEST_NULL;
    }
    *out = g;
}

void dist_grads_destroy(dist_grads *g) {
    if (!g) return;
    if (g->started) MPI_Waitall(g->started, g->req, MPI_STATUSES_IGNORE);
    free(g->lo);
    free(g->hi);
    free(g->req);
    free(g);
}

static void start(dist_grads *g, int b) {
    MPI_Iallreduce(MPI_IN_PLACE, g->grads + g->lo[b], (int)(g->hi[b] - g->lo[b]), MPI_FLOAT,
                   MPI_SUM, MPI_COMM_WORLD, &g->req[b]);
}

void dist_grads_ready(dist_grads *g, size_t ready) {
    while (g->started < g->nbuckets && g->lo[g->started] >= ready) start(g, g->started++);
    if (g->started) {
        int done = 0;
        MPI_Testall(g->started, g->req, &done, MPI_STATUSES_IGNORE);
    }
}

void dist_grads_finish(dist_grads *g) {
    while (g->started < g->nbuckets) start(g, g->started++);
    MPI_Waitall(g->nbuckets, g->req, MPI_STATUSES_IGNORE);
    g->started = 0;
    const float scale = 1.0f / (float)g->size;
    float *x = g->grads;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < g->n; i++) x[i] *= scale;
}

void dist_grads_allreduce(dist_grads *g) {
    dist_grads_ready(g, 0);
    dist_grads_finish(g);
}
