/* train/train_loop.h — the training run built on train.h's optimizers: slim's variable
 * initializers, checkpoints, TensorBoard event files, the data-source interface, the step loop
 * and the results row. (train.h holds the optimizers, schedules, EMA and L2; this header is kept
 * apart so the two can change independently.)
 *
 * A run, as train_image_classifier.py does it:
 *   build the net -> initialize variables (seeded) -> restore (resume from --train_dir, or
 *   fine-tune from --checkpoint_path) -> loop { next batch, forward, backward (writes every
 *   gradient: nothing to zero), allreduce, weight decay, optimizer step, EMA, log / summaries /
 *   checkpoint } -> final checkpoint -> report.
 */
#ifndef TRAIN_LOOP_H
#define TRAIN_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/sb.h"
#include "models/slim/models.h"
#include "train/train.h"

/* ---------------------------------------------------------------------------------------------
 * Initializers (train/init.c).
 * ------------------------------------------------------------------------------------------- */

/* Initialize every variable of n (after net_alloc) with slim's initializer for it (net_var.init):
 * zeros, ones, constant, truncated normal (TF redraws beyond 2 stddev), variance scaling
 * (truncated normal), glorot uniform. Values come from a counter-based generator keyed by
 * (seed, variable index, element index), so they do not depend on the thread count. */
void train_init_params(net *n, uint64_t seed);

/* Descriptors of n's variables for train.h (caller frees the array with free()). Names are
 * borrowed from n. TRAINABLE: NET_VAR_TRAINABLE and, when trainable_scopes is non-empty, the name
 * starts with one of its comma-separated scopes (slim's _get_variables_to_train); DECAY:
 * NET_VAR_REGULARIZED; MODEL: every variable. */
param_desc *train_param_descs(const net *n, const char *trainable_scopes, size_t *count);

/* True when name starts with one of the comma-separated scopes (spaces around them ignored). */
bool train_scope_match(const char *name, const char *scopes);

/* ---------------------------------------------------------------------------------------------
 * Checkpoints (train/checkpoint.c).
 *
 * One file per checkpoint, "<train_dir>/model.ckpt-<global_step>", written atomically:
 *   header  "SBCKPT\0\0" (8 bytes), u32 version (1), u32 ntensors, u64 index_bytes,
 *           u64 data_bytes                                        (little endian)
 *   index   per tensor: u16 name_len, name bytes, u8 dtype (0 float32, 1 int64), u8 ndim,
 *           i32 shape[ndim], u64 byte offset into data, u64 element count
 *   data    the tensors, each 8-byte aligned within data
 *   u32     crc32c of everything above
 * Tensor names are TensorFlow's: slim's variable names, "<var>/RMSProp" (optimizer slots),
 * "<var>/ExponentialMovingAverage", "beta1_power", "global_step".
 * "<train_dir>/checkpoint" is TensorFlow's text index (model_checkpoint_path: "...", then
 * all_model_checkpoint_paths: "..." oldest first) and names the newest.
 * ------------------------------------------------------------------------------------------- */

enum ckpt_dtype { CKPT_DTYPE_FLOAT32, CKPT_DTYPE_INT64, CKPT_DTYPE_COUNT };

typedef struct ckpt_tensor {
    const char *name;
    int dtype;          /* enum ckpt_dtype */
    int ndim;
    int shape[4];
    size_t count;       /* elements */
    const void *data;   /* writer: borrowed; reader: points into the loaded file */
} ckpt_tensor;

/* Write tensors to path atomically (temp name, fsync, rename, fsync dir). Returns 0 or an errno
 * with err naming the path. */
int ckpt_write(const char *path, const ckpt_tensor *tensors, size_t n, sb_err *err);

typedef struct ckpt ckpt; /* a loaded checkpoint, opaque */

/* Load and verify path (magic, version, sizes, CRC32C). Errors name the file: SB_E_FORMAT (not a
 * checkpoint or unsupported version), SB_E_TRUNCATED, SB_E_CRC (corrupt), errno. */
int ckpt_open(ckpt **out, const char *path, sb_err *err);
void ckpt_close(ckpt *c);
const char *ckpt_path(const ckpt *c);
/* Tensor by name, or NULL. The pointer and its data live until ckpt_close. */
const ckpt_tensor *ckpt_find(const ckpt *c, const char *name);
size_t ckpt_count(const ckpt *c);
const ckpt_tensor *ckpt_at(const ckpt *c, size_t i);

/* Copy tensor `name` (float32, shape ndim/shape) into dst. SB_E_NOTFOUND if absent; SB_E_FORMAT
 * naming the file, the variable and both shapes on a shape or dtype mismatch. */
int ckpt_read_float(const ckpt *c, const char *name, int ndim, const int *shape, float *dst,
                    sb_err *err);

/* The newest checkpoint named by "<dir>/checkpoint" into buf. Returns 0, SB_E_NOTFOUND when the
 * directory has none, SB_E_FORMAT when the index is malformed (names the file). */
int ckpt_latest(const char *dir, char *buf, size_t cap, sb_err *err);
/* Resolve --checkpoint_path: a directory gives its newest checkpoint, a file itself. */
int ckpt_resolve(const char *path, char *buf, size_t cap, sb_err *err);
/* Record `path` (a file in dir) as the newest in "<dir>/checkpoint" and delete the checkpoints
 * beyond the newest max_to_keep (TF Saver's default is 5). */
int ckpt_update_index(const char *dir, const char *path, int max_to_keep, sb_err *err);

/* ---------------------------------------------------------------------------------------------
 * TensorBoard event files (train/summary.c): "<dir>/events.out.tfevents.<secs>.<host>", TFRecord
 * framing of Event protos, the first carrying file_version "brain.Event:2".
 * ------------------------------------------------------------------------------------------- */

typedef struct tb_writer tb_writer;

int tb_writer_open(tb_writer **out, const char *dir, sb_err *err);
/* Path of the event file; valid until tb_writer_close. */
const char *tb_writer_path(const tb_writer *w);
/* One Event with a Summary of simple_value scalars. */
int tb_write_scalars(tb_writer *w, int64_t step, const char *const *tags, const float *values,
                     int n, sb_err *err);
/* One Event with a histogram (HistogramProto with TensorFlow's default buckets) per tensor.
 * data[i]: (counts[i]) floats. */
int tb_write_histograms(tb_writer *w, int64_t step, const char *const *tags,
                        const float *const *data, const size_t *counts, int n, sb_err *err);
/* fflush + fsync. */
int tb_writer_flush(tb_writer *w, sb_err *err);
void tb_writer_close(tb_writer *w);

/* The protobuf encoder the writer uses, exposed for tests: encode an Event with scalars into
 * buf (cap bytes); returns the length, or 0 when it does not fit. */
size_t tb_encode_scalars_event(uint8_t *buf, size_t cap, double wall_time, int64_t step,
                               const char *const *tags, const float *values, int n);

/* ---------------------------------------------------------------------------------------------
 * Data sources: where batches come from. Synthetic (train/synthetic.c) is a fixed pool of
 * random images in [-1, 1] (the range slim's preprocessing produces) and random labels,
 * generated once from the seed, as tf_cnn_benchmarks does; the same seed and shape give the
 * same examples in any process.
 * ------------------------------------------------------------------------------------------- */

typedef struct data_source {
    /* Fill images (N, H, W, C) and labels (N), labels already minus labels_offset; *wait_ms:
     * time spent waiting for the batch. Returns 0 or an error code with err set. */
    int (*next)(void *ctx, float *images, int32_t *labels, double *wait_ms, sb_err *err);
    void (*destroy)(void *ctx);
    void *ctx;
} data_source;

/* A synthetic source of batches of N x H x W x C images with labels in [0, num_classes). */
void synthetic_source_create(data_source *src, int N, int H, int W, int C, int num_classes,
                             uint64_t seed);
/* The same with examples [first, first + N) of that seed's example sequence (replica r of a
 * data-parallel job at batch N reads first = r * N; dist/shard.c). */
void synthetic_source_create_at(data_source *src, int N, int H, int W, int C, int num_classes,
                                uint64_t seed, uint64_t first);
/* A source over datasets/' input pipeline (train/data_source.c); it owns p: destroying the
 * source destroys the pipeline (and warns with the count of corrupt records skipped). */
struct pipe;
void data_source_from_pipe(data_source *src, struct pipe *p);
/* Release the source; safe on a zeroed struct. */
void data_source_destroy(data_source *src);

/* ---------------------------------------------------------------------------------------------
 * The run (train/train.c).
 * ------------------------------------------------------------------------------------------- */

typedef struct train_config {
    const char *model_name;
    int batch_size;                 /* per replica */
    int image_size;                 /* <= 0: the net's default */
    int image_channels;             /* <= 0: the net's default (the data's channels) */
    int num_classes;                /* logits width (dataset classes - labels_offset) */
    float label_smoothing;
    float weight_decay;
    opt_config opt;
    lr_config lr;
    const char *trainable_scopes;   /* NULL or "": every trainable variable */
    const char *train_dir;          /* NULL or "": no checkpoints, no summaries, no resume */
    const char *checkpoint_path;    /* fine-tune source (file or directory); NULL: none */
    const char *checkpoint_exclude_scopes;
    bool ignore_missing_vars;
    bool use_ema;                   /* --moving_average_decay given and non-zero */
    float moving_average_decay;
    int64_t max_steps;              /* train until global_step reaches this */
    int warmup_steps;               /* steps excluded from timing */
    int log_every_n_steps;
    int save_interval_secs;         /* 0: only at the end */
    int save_summaries_secs;        /* 0: no event files */
    int max_to_keep;                /* checkpoints kept (5) */
    uint64_t seed;
    const char *step_csv;           /* NULL or "": none */
    /* Average the gradients of all replicas in place (grads: (n) floats, the trainable prefix
     * of the parameters arena); NULL for one replica. dist/ sets it. */
    void (*allreduce)(float *grads, size_t n, void *ctx);
    void *allreduce_ctx;
    /* Called once after the variables are initialized or restored, before the first step, with
     * the run's state (slots: slot_floats floats, scalars: nscalars, ema: NULL without moving
     * averages); dist/ broadcasts rank 0's copy and hooks into n's backward. NULL: one replica.
     * Gets allreduce_ctx. */
    void (*replicas_sync)(net *n, float *slots, size_t slot_floats, float *scalars, int nscalars,
                          float *ema, int64_t *global_step, void *ctx);
    float dropout_keep_prob;        /* <= 0: the model's default; 1: dropout off */
    bool profile;                   /* launch --profile: fill train_report.profile */
} train_config;

/* launch --profile: where the timed steps' time went, per layer and per part of the step. */
typedef struct train_profile_layer {
    char *scope;                    /* owned */
    const char *kind;               /* static */
    double fwd_ms, bwd_ms;          /* per step */
    double fwd_flops, bwd_flops;    /* per step, whole batch */
} train_profile_layer;

typedef struct train_profile {
    int steps;                      /* timed steps profiled (0: no profile) */
    int n_layers;
    train_profile_layer *layers;    /* owned, layer order */
    /* means per timed step; other = step - the rest (batch copy, zeroing, L2, optimizer, EMA,
     * logging and checkpoints) */
    double fwd_ms, bwd_ms, wait_ms, reduce_ms, other_ms, step_ms;
} train_profile;

typedef struct train_report {
    int64_t start_step, final_step; /* global steps at start (after restore) and end */
    int timed_steps, warmup_steps;
    int image_size;
    double images_per_sec, images_per_sec_stdev; /* median and stdev over timed steps */
    double step_ms_median, data_wait_ms, allreduce_ms;
    double gflop_per_image;
    double final_loss;              /* total loss (with regularization) of the last step */
    double peak_rss_mb;
    char last_checkpoint[1024];     /* "" when none was written */
    train_profile profile;          /* with cfg->profile; release with train_report_free */
} train_report;

/* Train as configured, on batches from src. Returns 0; SB_E_DIVERGED naming the step when the
 * loss is NaN/Inf; checkpoint and file errors naming the file. rep is filled on success and on
 * divergence (steps done so far); release it with train_report_free. */
int train_run(const train_config *cfg, data_source *src, train_report *rep, sb_err *err);
void train_report_free(train_report *rep);

/* The total loss slim minimizes for the batch in net_input/net_labels: net_forward (cross
 * entropy with label smoothing, + 0.4 x aux) + weight_decay * sum(w^2)/2 over regularized
 * variables. */
double train_total_loss(net *n, net_mode mode, uint64_t seed, const param_desc *descs,
                        size_t ndesc, float weight_decay);

/* ---------------------------------------------------------------------------------------------
 * Results (train/results.c).
 * ------------------------------------------------------------------------------------------- */

typedef struct results_run_info {
    const char *model_name, *optimizer, *data;
    int batch_size, replicas, threads_per_replica;
    const char *hosts;  /* the job's hosts, comma-separated; NULL or "": this host's name */
} results_run_info;

/* The FMA peak (GFLOP/s) bench/peak measured for this build and thread count: the last matching
 * row of peak_csv (timestamp,build,isa,threads,gflops); 0 when none. */
double results_peak_gflops(const char *peak_csv, const char *build, int threads);

/* Append DESIGN.md's columns then the config columns (config_header / config_values, already
 * CSV-formatted, may be empty) as one row to path. pct_of_peak is computed against the peak.csv
 * next to path. */
int results_append_run(const char *path, const results_run_info *info, const train_report *rep,
                       const char *config_header, const char *config_values, sb_err *err);

/* The header DESIGN.md fixes (without config columns); static string. */
const char *results_run_header(void);

/* path's directory + "/" + name into buf (just name when path has no directory): the files
 * that live next to the results CSV (peak.csv, profile.csv). */
void results_sibling_path(char *buf, size_t cap, const char *path, const char *name);

/* The peak for this build and thread count from the peak.csv next to results_csv (0: none). */
double results_peak_near(const char *results_csv, int threads);

/* launch --profile's report: the step's parts, time by layer kind, and every layer (forward and
 * backward ms per step, GFLOP/s, % of peak_gflops when it is > 0). */
void results_print_profile(FILE *out, const char *model, const train_profile *p,
                           double peak_gflops);
/* The same, one CSV row per layer then one per step part (kind "step"), appended to path
 * (timestamp,git_sha,build,model_name,batch_size,threads,steps,layer,kind,fwd_ms,bwd_ms,
 * total_ms,fwd_gflops,bwd_gflops,fwd_pct_of_peak,bwd_pct_of_peak). */
int results_append_profile(const char *path, const results_run_info *info,
                           const train_profile *p, double peak_gflops, sb_err *err);

#endif /* TRAIN_LOOP_H */
