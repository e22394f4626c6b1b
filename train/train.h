/* train/train.h — public API of train/: parameter descriptors, optimizers, learning-rate
 * schedules, exponential moving averages and slim's L2 weight decay.
 *
 * Everything here reproduces TF-slim's train_image_classifier.py on top of TensorFlow 1.x:
 * the optimizer update rules are TensorFlow's training ops (core/kernels/training_ops.cc) with
 * the hyperparameters slim's flags pass (_configure_optimizer), evaluated in float32 in the same
 * operation order; the learning rate is slim's _configure_learning_rate; the moving averages are
 * tf.train.ExponentialMovingAverage over slim.get_model_variables(). Flag names are kept as
 * field names so the flags -> config mapping is one line per flag.
 *
 * Memory (STYLE.md §4): parameters live in one flat, 64-byte aligned arena of floats; the
 * gradients arena uses the same offsets; optimizer slots are `opt_slot_count(kind)` planes laid
 * out like the parameters arena (plane j starts at slots + j * slot_stride), so slot j of the
 * float at params[i] is slots[j * slot_stride + i]. Every tensor is a param_desc.
 *
 * Threads: the functions that loop over data open one OpenMP parallel region with (ith, nth)
 * splitting; call them from outside any parallel region. Every element goes through the same
 * vector code whatever the split, so results are bit-identical for any thread count (the L2 loss,
 * a reduction, is bit-identical for a given thread count).
 */
#ifndef TRAIN_H
#define TRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/sb.h"

/* ---------------------------------------------------------------------------------------------
 * Parameter descriptors (DESIGN.md §Layout, STYLE.md §4).
 * ------------------------------------------------------------------------------------------- */

/* Bits of param_desc.flags (a bit set, so no _COUNT). */
enum param_flag {
    /* The optimizer updates this tensor: it is in tf.trainable_variables() and, when slim's
     * --trainable_scopes is given, under one of those scopes. BN moving statistics never are. */
    PARAM_FLAG_TRAINABLE = 1u << 0,
    /* slim regularizes it (weights_regularizer = l2_regularizer(weight_decay)): conv and fully
     * connected weights, not biases, not batch-norm parameters. */
    PARAM_FLAG_DECAY = 1u << 1,
    /* In slim.get_model_variables(): every variable a slim layer creates, including batch norm's
     * moving_mean and moving_variance; not global_step. --moving_average_decay averages these. */
    PARAM_FLAG_MODEL = 1u << 2,
};

#define PARAM_MAX_DIMS 4

/* One tensor of the parameters arena. models/slim's net_var has the same fields; the trainer
 * maps its flags: TRAINABLE = NET_VAR_TRAINABLE and under --trainable_scopes, DECAY =
 * NET_VAR_REGULARIZED, MODEL = every net variable (slim layers create only model variables). */
typedef struct param_desc {
    const char *name;           /* slim scope name, e.g. "vgg_16/conv1/conv1_1/weights"; borrowed */
    size_t offset;              /* index of its first float in the arena (params, grads, slots) */
    size_t count;               /* number of floats = product of shape */
    int ndim;                   /* 0..PARAM_MAX_DIMS */
    int shape[PARAM_MAX_DIMS];  /* TF layout: conv HWIO, fc (IC, OC), vectors (C) */
    unsigned flags;             /* PARAM_FLAG_* */
} param_desc;

/* Work splitting over descriptors, for (ith, nth) loops inside one parallel region: the floats
 * of the descriptors whose flags include every bit of `need` (0 = all) are laid end to end, cut
 * into nth shares at multiples of PARAM_SHARE_ALIGN floats, and fn(ctx, d, offset, count) is
 * called for each piece of share ith, in descriptor order (offset indexes the arena). So a
 * 100M-float fc6 and a 64-float bias are split alike, and each float is visited by exactly one
 * thread. Call with ith = omp_get_thread_num(), nth = omp_get_num_threads(). */
#define PARAM_SHARE_ALIGN 16
typedef void (*param_piece_fn)(void *ctx, const param_desc *d, size_t offset, size_t count);
void param_share_for_each(const param_desc *descs, size_t ndesc, unsigned need, int ith, int nth,
                          param_piece_fn fn, void *ctx);

/* ---------------------------------------------------------------------------------------------
 * Optimizers: slim's --optimizer choices with TensorFlow's exact update rules.
 *
 *   kind      slots (TF slot name -> checkpoint suffix)          per-step scalars
 *   adadelta  accum=0 "Adadelta", accum_update=0 "Adadelta_1"     -
 *   adagrad   accumulator=initial_accumulator_value "Adagrad"     -
 *   adam      m=0 "Adam", v=0 "Adam_1"                             beta1_power, beta2_power
 *   ftrl      accum=initial_accumulator_value "Ftrl", linear=0 "Ftrl_1"   -
 *   momentum  momentum=0 "Momentum"                                -
 *   sgd       -                                                    -
 *   rmsprop   rms=1 (TF1 initializes it to ONES) "RMSProp", momentum=0 "RMSProp_1"   -
 *
 * A slot's checkpoint name is "<variable>/<suffix>" as in a TF checkpoint written by slim.
 * ------------------------------------------------------------------------------------------- */

typedef enum opt_kind {
    OPT_KIND_ADADELTA,
    OPT_KIND_ADAGRAD,
    OPT_KIND_ADAM,
    OPT_KIND_FTRL,
    OPT_KIND_MOMENTUM,
    OPT_KIND_SGD,
    OPT_KIND_RMSPROP,
    OPT_KIND_COUNT
} opt_kind;

#define OPT_MAX_SLOTS 2
#define OPT_MAX_SCALARS 2

/* slim's flag name for the kind ("rmsprop", ...). Asserts kind is valid. Static string. */
const char *opt_kind_name(opt_kind kind);

/* Parse slim's --optimizer value. Returns 0, or SB_E_USAGE with err naming the value and the
 * valid names (slim: "Optimizer [x] was not recognized"). */
int opt_kind_from_name(const char *name, opt_kind *kind, sb_err *err);

/* The optimizer hyperparameters, named after slim's flags. TensorFlow casts them to the
 * variable's dtype, so they are float32 here too. */
typedef struct opt_config {
    opt_kind kind;                        /* --optimizer (rmsprop) */
    float adadelta_rho;                   /* --adadelta_rho (0.95) */
    float adagrad_initial_accumulator_value; /* --adagrad_initial_accumulator_value (0.1) */
    float adam_beta1;                     /* --adam_beta1 (0.9) */
    float adam_beta2;                     /* --adam_beta2 (0.999) */
    float opt_epsilon;                    /* --opt_epsilon (1.0): adadelta, adam, rmsprop */
    float ftrl_learning_rate_power;       /* --ftrl_learning_rate_power (-0.5) */
    float ftrl_initial_accumulator_value; /* --ftrl_initial_accumulator_value (0.1) */
    float ftrl_l1;                        /* --ftrl_l1 (0.0) */
    float ftrl_l2;                        /* --ftrl_l2 (0.0) */
    float momentum;                       /* --momentum (0.9): MomentumOptimizer */
    float rmsprop_momentum;               /* --rmsprop_momentum (0.9) */
    float rmsprop_decay;                  /* --rmsprop_decay (0.9) */
} opt_config;

/* slim's defaults (values in the comments above). */
void opt_config_default(opt_config *c);

/* The checks TensorFlow's optimizer constructors make (adagrad's and ftrl's accumulator > 0,
 * ftrl_learning_rate_power <= 0, ftrl_l1/l2 >= 0) plus finiteness. Returns 0 or SB_E_RANGE with
 * err naming the flag and its value. */
int opt_config_check(const opt_config *c, sb_err *err);

/* Slot planes per parameter (0..OPT_MAX_SLOTS): the slots arena holds this many arenas. */
int opt_slot_count(opt_kind kind);
/* Checkpoint suffix of slot j ("RMSProp_1"), see the table above. Static string. */
const char *opt_slot_name(opt_kind kind, int j);
/* The value TensorFlow initializes slot j with. */
float opt_slot_init_value(const opt_config *c, int j);

/* Fill every slot plane with its initial value.
 * slots: (opt_slot_count, slot_stride) — plane j at slots + j*slot_stride, first n floats set. */
void opt_slots_init(float *slots, size_t slot_stride, size_t n, const opt_config *c);

/* Optimizer-wide scalars (TF's non-slot variables: adam's beta1_power and beta2_power), kept by
 * the caller next to the slots and checkpointed with them under opt_scalar_name(). */
int opt_scalar_count(opt_kind kind);
const char *opt_scalar_name(opt_kind kind, int i);
/* scalars: (OPT_MAX_SCALARS) out. Adam: {beta1, beta2}, as TF initializes them. */
void opt_scalars_init(float *scalars, const opt_config *c);
/* After every update of a step, as TF's Adam._finish: beta1_power *= beta1, beta2_power *=
 * beta2 (float32). No-op for other kinds. opt_apply calls it; opt_step does not. */
void opt_scalars_advance(float *scalars, const opt_config *c);

/* One update of a flat range, TensorFlow's training op for c->kind:
 *   adadelta  accum = accum*rho + g*g*(1-rho); u = sqrt(accum_update+eps) * rsqrt(accum+eps) * g;
 *             w -= u*lr; accum_update = accum_update*rho + u*u*(1-rho)
 *   adagrad   accum += g*g; w -= g*lr*rsqrt(accum)
 *   adam      alpha = lr*sqrt(1-beta2_power)/(1-beta1_power); m += (g-m)*(1-beta1);
 *             v += (g*g-v)*(1-beta2); w -= m*alpha / (sqrt(v)+eps)      (eps is "epsilon hat")
 *   ftrl      ApplyFtrl (learning_rate_power, l1, l2; no l2 shrinkage)
 *   momentum  accum = accum*momentum + g; w -= accum*lr                 (not Nesterov)
 *   sgd       w -= g*lr
 *   rmsprop   ms += (g*g-ms)*(1-decay); mom = mom*momentum + g*lr/sqrt(ms+eps); w -= mom
 * where g = grads[i] + weight_decay*params[i] (slim's l2_regularizer gradient; pass 0 for none).
 *
 * params: (n) in/out. slots: plane j at slots + j*slot_stride, (n) each, in/out; NULL when the
 * kind has no slots. grads: (n). lr: this step's learning rate (lr_schedule_at). scalars:
 * (opt_scalar_count) in, from opt_scalars_init/advance; may be NULL for kinds without scalars.
 * The ranges must not overlap. */
void opt_step(float *params, float *slots, size_t slot_stride, const float *grads, size_t n,
              const opt_config *c, float lr, float weight_decay, const float *scalars);

/* One training step over a descriptor list, as slim's optimizer.apply_gradients: updates every
 * tensor with PARAM_FLAG_TRAINABLE (others are left alone, slots included), adds
 * weight_decay*w to the gradient of tensors with PARAM_FLAG_DECAY, then advances the scalars.
 * params: (arena_count). grads: same offsets as params; only trainable tensors' floats are read.
 * slots: (opt_slot_count, slot_stride), plane j at slots + j*slot_stride; slot_stride may be
 * smaller than arena_count when trainable tensors come first (models/slim's layout), it must
 * cover every trainable tensor. scalars: (opt_scalar_count) in/out.
 * Descriptors must lie inside the arena (asserted) and not overlap. */
void opt_apply(float *params, float *slots, size_t slot_stride, const float *grads,
               size_t arena_count, const param_desc *descs, size_t ndesc, const opt_config *c,
               float lr, float weight_decay, float *scalars);

/* ---------------------------------------------------------------------------------------------
 * slim's L2 weight decay: the loss term is weight_decay * tf.nn.l2_loss(w) = weight_decay *
 * sum(w^2)/2 per regularized tensor; its gradient weight_decay*w is added inside opt_step /
 * opt_apply, or by opt_l2_grad_add for callers that need the total gradient itself.
 * ------------------------------------------------------------------------------------------- */

/* Sum over descriptors with PARAM_FLAG_DECAY (trainable or not: slim's total loss includes
 * every regularization loss) of weight_decay * sum(w^2) / 2, accumulated in double.
 * params: (arena). */
double opt_l2_loss(const float *params, const param_desc *descs, size_t ndesc, float weight_decay);

/* grads += weight_decay * params over descriptors with PARAM_FLAG_DECAY and
 * PARAM_FLAG_TRAINABLE. grads, params: (arena). */
void opt_l2_grad_add(float *grads, const float *params, const param_desc *descs, size_t ndesc,
                     float weight_decay);

/* ---------------------------------------------------------------------------------------------
 * Learning rate: slim's _configure_learning_rate.
 *   decay_steps = int(num_samples_per_epoch * num_epochs_per_decay / batch_size), then divided
 *   (true division, so possibly fractional) by replicas_to_aggregate when sync_replicas;
 *   fixed        lr
 *   exponential  lr * decay_factor ^ floor(step / decay_steps)                (staircase=True)
 *   polynomial   (lr - end_lr) * (1 - min(step, decay_steps)/decay_steps) + end_lr
 *                                                               (power=1.0, cycle=False)
 * evaluated in float32 like TensorFlow's schedule ops.
 * ------------------------------------------------------------------------------------------- */

typedef enum lr_decay_type {
    LR_DECAY_TYPE_FIXED,
    LR_DECAY_TYPE_EXPONENTIAL,
    LR_DECAY_TYPE_POLYNOMIAL,
    LR_DECAY_TYPE_COUNT
} lr_decay_type;

/* slim's name ("fixed", "exponential", "polynomial"). Static string. */
const char *lr_decay_type_name(lr_decay_type t);
/* Parse --learning_rate_decay_type. Returns 0 or SB_E_USAGE naming the value. */
int lr_decay_type_from_name(const char *name, lr_decay_type *t, sb_err *err);

typedef struct lr_config {
    lr_decay_type decay_type;          /* --learning_rate_decay_type (exponential) */
    float learning_rate;               /* --learning_rate (0.01) */
    float end_learning_rate;           /* --end_learning_rate (0.0001) */
    float learning_rate_decay_factor;  /* --learning_rate_decay_factor (0.94) */
    double num_epochs_per_decay;       /* --num_epochs_per_decay (2.0) */
    int64_t num_samples_per_epoch;     /* the training split's size (dataset.num_samples) */
    int batch_size;                    /* --batch_size (32) */
    bool sync_replicas;                /* --sync_replicas (false) */
    int replicas_to_aggregate;         /* --replicas_to_aggregate (1) */
} lr_config;

/* slim's defaults; num_samples_per_epoch = 1281167 (ImageNet train). */
void lr_config_default(lr_config *c);

/* Returns 0, or SB_E_RANGE naming the flags when the schedule is undefined: batch_size or
 * replicas_to_aggregate < 1, a negative or non-finite rate, or decay_steps == 0 for a decaying
 * schedule (TensorFlow would divide by zero and train with NaN). */
int lr_config_check(const lr_config *c, sb_err *err);

/* slim's decay_steps (see above). */
double lr_decay_steps(const lr_config *c);

/* The learning rate for the update made at global_step (0 for the first update; slim evaluates
 * the schedule before apply_gradients increments global_step). Pure function. */
float lr_schedule_at(const lr_config *c, int64_t global_step);

/* ---------------------------------------------------------------------------------------------
 * Moving averages: tf.train.ExponentialMovingAverage(moving_average_decay, global_step) applied
 * to slim.get_model_variables() (descriptors with PARAM_FLAG_MODEL: weights, biases, batch-norm
 * beta/gamma AND moving_mean/moving_variance). slim uses them when --moving_average_decay is set
 * and non-zero. Shadows are checkpointed as "<variable>/" EMA_SUFFIX.
 * ------------------------------------------------------------------------------------------- */

#define EMA_SUFFIX "ExponentialMovingAverage"

/* The decay used at num_updates: min(decay, (1 + n) / (10 + n)), in float32. */
float ema_decay_at(float decay, int64_t num_updates);

/* Shadow variables start as copies of their variables (TF: initialized_value()).
 * shadow, params: (arena); only the floats of PARAM_FLAG_MODEL tensors are written/read. */
void ema_init(float *shadow, const float *params, const param_desc *descs, size_t ndesc);

/* shadow -= (shadow - param) * (1 - ema_decay_at(decay, num_updates)) for every float of
 * PARAM_FLAG_MODEL tensors. Call after opt_apply (and after the batch-norm statistics update)
 * with num_updates = the global_step that update was made at. */
void ema_apply(float *shadow, const float *params, const param_desc *descs, size_t ndesc,
               float decay, int64_t num_updates);

#endif /* TRAIN_H */
