/* train/lr_schedule.c — slim's _configure_learning_rate: fixed, exponential (staircase) and
 * polynomial (power 1, no cycle) decay of --learning_rate over global_step.
 *
 * decay_steps is computed in double as Python does (int() truncation, then a true division by
 * replicas_to_aggregate under --sync_replicas, which can leave a fraction), and the schedule in
 * float32 as TensorFlow's exponential_decay / polynomial_decay ops do: every input is cast to the
 * learning rate's dtype (float32) first. So the steps where the rate changes are TensorFlow's,
 * including the rounding of global_step / decay_steps in float32.
 *
 * Knows nothing of flags parsing, datasets or the optimizer.
 */
#include "train/train.h"

#include <assert.h>
#include <math.h>
#include <string.h>

static const char *const lr_decay_type_names[] = {
    [LR_DECAY_TYPE_FIXED] = "fixed",
    [LR_DECAY_TYPE_EXPONENTIAL] = "exponential",
    [LR_DECAY_TYPE_POLYNOMIAL] = "polynomial",
};
static_assert(SB_ARRAY_LEN(lr_decay_type_names) == LR_DECAY_TYPE_COUNT,
              "one name per lr_decay_type");

const char *lr_decay_type_name(lr_decay_type t) {
    SB_ASSERTF(t >= 0 && t < LR_DECAY_TYPE_COUNT, "lr_decay_type %d", (int)t);
    return lr_decay_type_names[t];
}

int lr_decay_type_from_name(const char *name, lr_decay_type *t, sb_err *err) {
    for (int k = 0; k < LR_DECAY_TYPE_COUNT; k++) {
        if (name && !strcmp(name, lr_decay_type_names[k])) {
            *t = (lr_decay_type)k;
            return 0;
        }
    }
    return sb_err_set(err, SB_E_USAGE,
                      "--learning_rate_decay_type=%s: learning_rate_decay_type [%s] was not "
                      "recognized; one of fixed, exponential, polynomial",
                      name ? name : "", name ? name : "");
}

void lr_config_default(lr_config *c) {
    *c = (lr_config){
        .decay_type = LR_DECAY_TYPE_EXPONENTIAL,
        .learning_rate = 0.01f,
        .end_learning_rate = 0.0001f,
        .learning_rate_decay_factor = 0.94f,
        .num_epochs_per_decay = 2.0,
        .num_samples_per_epoch = 1281167,
        .batch_size = 32,
        .sync_replicas = false,
        .replicas_to_aggregate = 1,
    };
}

double lr_decay_steps(const lr_config *c) {
    SB_ASSERT(c->batch_size > 0);
    /* Python: int(num_samples_per_epoch * FLAGS.num_epochs_per_decay / FLAGS.batch_size). */
    double steps = trunc((double)c->num_samples_per_epoch * c->num_epochs_per_decay /
                         (double)c->batch_size);
    if (c->sync_replicas) {
        SB_ASSERT(c->replicas_to_aggregate > 0);
        steps /= (double)c->replicas_to_aggregate; /* `decay_steps /= ...`: true division */
    }
    return steps;
}

int lr_config_check(const lr_config *c, sb_err *err) {
    if (c->decay_type < 0 || c->decay_type >= LR_DECAY_TYPE_COUNT)
        return sb_err_set(err, SB_E_RANGE, "--learning_rate_decay_type: invalid value %d",
                          (int)c->decay_type);
    if (c->batch_size < 1)
        return sb_err_set(err, SB_E_RANGE, "--batch_size=%d: must be at least 1", c->batch_size);
    if (c->sync_replicas && c->replicas_to_aggregate < 1)
        return sb_err_set(err, SB_E_RANGE, "--replicas_to_aggregate=%d: must be at least 1",
                          c->replicas_to_aggregate);
    if (!isfinite(c->learning_rate) || c->learning_rate < 0.0f)
        return sb_err_set(err, SB_E_RANGE, "--learning_rate=%g: must be a finite number >= 0",
                          (double)c->learning_rate);
    if (c->decay_type == LR_DECAY_TYPE_FIXED) return 0;
    if (!isfinite(c->learning_rate_decay_factor))
        return sb_err_set(err, SB_E_RANGE, "--learning_rate_decay_factor=%g: must be finite",
                          (double)c->learning_rate_decay_factor);
    if (!isfinite(c->end_learning_rate))
        return sb_err_set(err, SB_E_RANGE, "--end_learning_rate=%g: must be finite",
                          (double)c->end_learning_rate);
    if (!isfinite(c->num_epochs_per_decay) || c->num_epochs_per_decay < 0.0)
        return sb_err_set(err, SB_E_RANGE,
                          "--num_epochs_per_decay=%g: must be a finite number >= 0",
                          c->num_epochs_per_decay);
    if (c->num_samples_per_epoch < 0)
        return sb_err_set(err, SB_E_RANGE, "dataset size %lld: must not be negative",
                          (long long)c->num_samples_per_epoch);
    if (lr_decay_steps(c) <= 0.0)
        return sb_err_set(err, SB_E_RANGE,
                          "--learning_rate_decay_type=%s: decay_steps = int(%lld samples * "
                          "--num_epochs_per_decay=%g / --batch_size=%d)%s is 0; the schedule "
                          "would divide by zero (raise --num_epochs_per_decay or use "
                          "--learning_rate_decay_type=fixed)",
                          lr_decay_type_name(c->decay_type), (long long)c->num_samples_per_epoch,
                          c->num_epochs_per_decay, c->batch_size,
                          c->sync_replicas ? " / --replicas_to_aggregate" : "");
    return 0;
}

float lr_schedule_at(const lr_config *c, int64_t global_step) {
    SB_ASSERTF(global_step >= 0, "global_step %lld", (long long)global_step);
    float lr = c->learning_rate;
    /* math_ops.cast(x, dtype) of every input, then float32 arithmetic. */
    float step = (float)global_step;
    float decay_steps = (float)lr_decay_steps(c);
    switch (c->decay_type) {
    case LR_DECAY_TYPE_FIXED: return lr;
    case LR_DECAY_TYPE_EXPONENTIAL: {
        float p = floorf(step / decay_steps);
        return lr * powf(c->learning_rate_decay_factor, p);
    }
    case LR_DECAY_TYPE_POLYNOMIAL: {
        float end = c->end_learning_rate;
        float s = fminf(step, decay_steps);
        float p = s / decay_steps;
        return (lr - end) * powf(1.0f - p, 1.0f) + end;
    }
    case LR_DECAY_TYPE_COUNT: break;
    }
    sb_assert_fail(__FILE__, __LINE__, "decay_type < LR_DECAY_TYPE_COUNT", "lr_decay_type %d",
                   (int)c->decay_type);
}
