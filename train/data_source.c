/* train/data_source.c — the data_source over datasets/' input pipeline: the training loop asks
 * for a batch, the pipeline's worker threads have (usually) prepared it already; the time
 * pipe_next blocks is the step's data wait. Knows pipeline.h's API only. */
#include <string.h>

#include "datasets/pipeline.h"
#include "train/train_loop.h"

static int pipe_source_next(void *ctx, float *images, int32_t *labels, double *wait_ms,
                            sb_err *err) {
    return pipe_next(ctx, images, labels, wait_ms, err);
}

static void pipe_source_destroy(void *ctx) {
    struct pipe *p = ctx;
    if (!p) return;
    pipe_stats_t st;
    pipe_stats(p, &st);
    if (st.corrupt)
        sb_warn("input pipeline: %llu corrupt records skipped (of %llu read)",
                (unsigned long long)st.corrupt, (unsigned long long)st.records);
    pipe_destroy(p);
}

void data_source_from_pipe(data_source *src, struct pipe *p) {
    src->next = pipe_source_next;
    src->destroy = pipe_source_destroy;
    src->ctx = p;
}

void data_source_destroy(data_source *src) {
    if (src && src->destroy) src->destroy(src->ctx);
    if (src) memset(src, 0, sizeof *src);
}
