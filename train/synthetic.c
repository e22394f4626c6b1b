/* train/synthetic.c — synthetic batches, as tf_cnn_benchmarks' synthetic input: one batch of
 * random images (uniform in [-1, 1], the range slim's preprocessing produces) and random labels,
 * generated once from the seed and handed out at every step, so the run measures compute alone.
 * Example i depends only on (seed, i, shape), so training and evaluation with the same seed and
 * batch size see the same examples.
 */
#include <stdlib.h>
#include <string.h>

#include "train/train_loop.h"

typedef struct synth {
    float *images;   /* (N, H, W, C) */
    int32_t *labels; /* (N) */
    size_t image_floats;
    int N;
} synth;

static inline uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int synth_next(void *ctx, float *images, int32_t *labels, double *wait_ms, sb_err *err) {
    synth *s = ctx;
    double t0 = sb_now();
    memcpy(images, s->images, s->image_floats * (size_t)s->N * sizeof(float));
    memcpy(labels, s->labels, (size_t)s->N * sizeof(int32_t));
    *wait_ms = (sb_now() - t0) * 1e3;
    return 0;
}

static void synth_destroy(void *ctx) {
    synth *s = ctx;
    if (!s) return;
    sb_aligned_free(s->images);
    free(s->labels);
    free(s);
}

void synthetic_source_create(data_source *src, int N, int H, int W, int C, int num_classes,
                             uint64_t seed) {
    synthetic_source_create_at(src, N, H, W, C, num_classes, seed, 0);
}

void synthetic_source_create_at(data_source *src, int N, int H, int W, int C, int num_classes,
                                uint64_t seed, uint64_t first) {
    SB_ASSERT(N > 0 && H > 0 && W > 0 && C > 0 && num_classes > 0);
    synth *s = sb_xcalloc(1, sizeof *s);
    s->N = N;
    s->image_floats = (size_t)H * W * C;
    s->images = sb_aligned_alloc(s->image_floats * (size_t)N * sizeof(float));
    s->labels = sb_xmalloc((size_t)N * sizeof(int32_t));
    uint64_t base = mix64(seed ^ 0x73796e7468ULL);
    for (int i = 0; i < N; i++) {
        uint64_t ex = mix64(base + first + (uint64_t)i);
        s->labels[i] = (int32_t)(mix64(ex) % (uint64_t)num_classes);
        float *img = s->images + (size_t)i * s->image_floats;
        for (size_t k = 0; k < s->image_floats; k++) {
            uint64_t h = mix64(ex ^ (k * 0xd1b54a32d192ed03ULL));
            img[k] = (float)((double)(h >> 40) * (2.0 / 16777216.0) - 1.0);
        }
    }
    src->next = synth_next;
    src->destroy = synth_destroy;
    src->ctx = s;
}
