/* train/ema.c — tf.train.ExponentialMovingAverage(moving_average_decay, num_updates=global_step)
 * as train_image_classifier.py applies it to slim.get_model_variables().
 *
 * TensorFlow (python/training/moving_averages.py): the shadow of a variable starts as the
 * variable's initial value; each apply computes, in float32,
 *     decay  = min(decay, (1 + num_updates) / (10 + num_updates))
 *     shadow -= (shadow - variable) * (1 - decay)
 * (assign_moving_average; zero_debias only concerns averages of tensors, not of variables).
 * The set is the model variables: weights, biases, batch norm's beta/gamma and its
 * moving_mean/moving_variance (slim creates those with variables.model_variable), whether or not
 * --trainable_scopes selects them; here, descriptors with PARAM_FLAG_MODEL.
 *
 * Knows descriptors and arenas only.
 */
#include "train/train.h"

#include <omp.h>
#include <string.h>

float ema_decay_at(float decay, int64_t num_updates) {
    SB_ASSERTF(num_updates >= 0, "num_updates %lld", (long long)num_updates);
    float n = (float)num_updates; /* math_ops.cast(num_updates, float32) */
    float warm = (1.0f + n) / (10.0f + n);
    return decay < warm ? decay : warm; /* math_ops.minimum */
}

typedef struct ema_ctx {
    float *shadow;
    const float *params;
    float one_minus_decay;
} ema_ctx;

static void ema_copy_chunk(void *ctx, const param_desc *d, size_t off, size_t n) {
    (void)d;
    ema_ctx *c = ctx;
    memcpy(c->shadow + off, c->params + off, n * sizeof(float));
}

static void ema_update_chunk(void *ctx, const param_desc *d, size_t off, size_t n) {
    (void)d;
    ema_ctx *c = ctx;
    float *s = c->shadow + off;
    const float *w = c->params + off;
    const float k = c->one_minus_decay;
    /* Elementwise and contraction-free (-std=c11), so vector and scalar iterations round alike
     * and the result does not depend on where a thread's share starts. */
    for (size_t i = 0; i < n; i++) s[i] = s[i] - (s[i] - w[i]) * k;
}

void ema_init(float *shadow, const float *params, const param_desc *descs, size_t ndesc) {
    ema_ctx c = {shadow, params, 0.0f};
    #pragma omp parallel
    param_share_for_each(descs, ndesc, PARAM_FLAG_MODEL, omp_get_thread_num(),
                         omp_get_num_threads(), ema_copy_chunk, &c);
}

void ema_apply(float *shadow, const float *params, const param_desc *descs, size_t ndesc,
               float decay, int64_t num_updates) {
    /* assign_moving_average: decay = convert_to_tensor(1.0 - decay), a float32 subtraction. */
    ema_ctx c = {shadow, params, 1.0f - ema_decay_at(decay, num_updates)};
    #pragma omp parallel
    param_share_for_each(descs, ndesc, PARAM_FLAG_MODEL, omp_get_thread_num(),
                         omp_get_num_threads(), ema_update_chunk, &c);
}
