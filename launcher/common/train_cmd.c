/* launcher/common/train_cmd.c — see train_cmd.h. Knows what launch's flags mean together; the
 * parser (flags/) only knows each flag on its own. */
#include "launcher/common/train_cmd.h"

#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "datasets/datasets.h"
#include "datasets/pipeline.h"
#include "launcher/common/cmdline.h"
#include "launcher/common/mpi_launch.h"
#include "models/slim/models.h"
#include "train/train_loop.h"

int train_cmd_opt_config(const train_flags *tf, opt_config *oc, sb_err *err) {
    opt_config_default(oc);
    int rc = opt_kind_from_name(tf->optimizer, &oc->kind, err);
    if (rc) return sb_err_set(err, SB_E_USAGE, "flag --optimizer=%s: %s", tf->optimizer, err->msg);
    oc->adadelta_rho = (float)tf->adadelta_rho;
    oc->adagrad_initial_accumulator_value = (float)tf->adagrad_initial_accumulator_value;
    oc->adam_beta1 = (float)tf->adam_beta1;
    oc->adam_beta2 = (float)tf->adam_beta2;
    oc->opt_epsilon = (float)tf->opt_epsilon;
    oc->ftrl_learning_rate_power = (float)tf->ftrl_learning_rate_power;
    oc->ftrl_initial_accumulator_value = (float)tf->ftrl_initial_accumulator_value;
    oc->ftrl_l1 = (float)tf->ftrl_l1;
    oc->ftrl_l2 = (float)tf->ftrl_l2;
    oc->momentum = (float)tf->momentum;
    oc->rmsprop_momentum = (float)tf->rmsprop_momentum;
    oc->rmsprop_decay = (float)tf->rmsprop_decay;
    return 0;
}

int train_cmd_lr_config(const train_flags *tf, int64_t num_samples_per_epoch, lr_config *lc,
                        sb_err *err) {
    lr_config_default(lc);
    int rc = lr_decay_type_from_name(tf->learning_rate_decay_type, &lc->decay_type, err);
    if (rc)
        return sb_err_set(err, SB_E_USAGE, "flag --learning_rate_decay_type=%s: %s",
                          tf->learning_rate_decay_type, err->msg);
    lc->learning_rate = (float)tf->learning_rate;
    lc->end_learning_rate = (float)tf->end_learning_rate;
    lc->learning_rate_decay_factor = (float)tf->learning_rate_decay_factor;
    lc->num_epochs_per_decay = tf->num_epochs_per_decay;
    lc->num_samples_per_epoch = num_samples_per_epoch;
    lc->batch_size = tf->batch_size;
    lc->sync_replicas = tf->sync_replicas;
    lc->replicas_to_aggregate = tf->replicas_to_aggregate;
    return 0;
}

/* train/'s range checks are about flag values here: report them as usage errors. */
static int as_usage(int rc, sb_err *err) {
    if (rc == 0) return 0;
    err->code = SB_E_USAGE;
    return SB_E_USAGE;
}

int train_cmd_check(const train_flags *tf, const sb_flags *sf, sb_err *err) {
    if (tf->num_ps_tasks > 0)
        return sb_err_set(err, SB_E_UNSUPPORTED,
                          "flag --num_ps_tasks=%d: slimbench has no parameter servers; replicas "
                          "allreduce gradients over MPI. Leave --num_ps_tasks at 0",
                          tf->num_ps_tasks);
    if (tf->num_clones != 1)
        return sb_err_set(err, SB_E_UNSUPPORTED,
                          "flag --num_clones=%d: model clones are not supported; use "
                          "--worker_replicas=%d (or mpirun -np %d) for data parallelism",
                          tf->num_clones, tf->num_clones, tf->num_clones);
    if (tf->quantize_delay >= 0)
        return sb_err_set(err, SB_E_UNSUPPORTED,
                          "flag --quantize_delay=%d: quantized training is not built in "
                          "slimbench; leave --quantize_delay at -1",
                          tf->quantize_delay);
    if (tf->sync_replicas && tf->replicas_to_aggregate < 1)
        return sb_err_set(err, SB_E_USAGE,
                          "flag --replicas_to_aggregate=%d: --sync_replicas needs "
                          "--replicas_to_aggregate >= 1",
                          tf->replicas_to_aggregate);
    if (sf->hosts[0] && sf->hostfile[0])
        return sb_err_set(err, SB_E_USAGE,
                          "flags --hosts=%s and --hostfile=%s: give one or the other", sf->hosts,
                          sf->hostfile);
    if (!tf->set.max_number_of_steps && sf->default_max_number_of_steps <= sf->num_warmup_steps)
        return sb_err_set(err, SB_E_USAGE,
                          "flag --default_max_number_of_steps=%d leaves no timed steps after "
                          "--num_warmup_steps=%d; raise the first or lower the second",
                          sf->default_max_number_of_steps, sf->num_warmup_steps);
    if (tf->set.max_number_of_steps && tf->max_number_of_steps <= sf->num_warmup_steps)
        return sb_err_set(err, SB_E_USAGE,
                          "flag --max_number_of_steps=%d leaves no timed steps after "
                          "--num_warmup_steps=%d; raise the first or lower the second",
                          tf->max_number_of_steps, sf->num_warmup_steps);
    opt_config oc;
    int rc = train_cmd_opt_config(tf, &oc, err);
    if (rc == 0) rc = as_usage(opt_config_check(&oc, err), err);
    if (rc) return rc;
    bool imagenet_sized = !tf->dataset_dir || !tf->dataset_dir[0] || sf->synthetic_data ||
                          strcmp(tf->dataset_name, "imagenet") == 0 ||
                          strcmp(tf->dataset_name, "synthetic") == 0;
    if (imagenet_sized) {
        lr_config lc;
        lr_config_default(&lc); /* its num_samples_per_epoch is ImageNet's training split */
        rc = train_cmd_lr_config(tf, lc.num_samples_per_epoch, &lc, err);
        if (rc == 0) rc = as_usage(lr_config_check(&lc, err), err);
        if (rc) return rc;
    }
    cmd_warn_inert(&flags_train_table, tf);
    cmd_warn_inert(&flags_sb_table, sf);
    if ((sf->hosts[0] || sf->hostfile[0]) && tf->worker_replicas == 1)
        sb_warn("--hosts/--hostfile only matter with --worker_replicas > 1; ignored");
    return 0;
}

/* Training data per the flags: synthetic unless --dataset_dir names real data. */
static bool use_synthetic(const train_flags *tf, const sb_flags *sf) {
    return !tf->dataset_dir || !tf->dataset_dir[0] || sf->synthetic_data ||
           strcmp(tf->dataset_name, "synthetic") == 0;
}

/* True when column `name` is one of the header's comma-separated names. */
static bool in_header(const char *header, const char *name) {
    size_t len = strlen(name);
    for (const char *p = header; (p = strstr(p, name)) != NULL; p += len)
        if ((p == header || p[-1] == ',') && (p[len] == ',' || p[len] == 0)) return true;
    return false;
}

/* The config columns of the results CSV from the flag tables (train.def, then ours.def): every
 * CSV row except those DESIGN.md's columns already hold (model_name, batch_size, optimizer). */
static void config_columns(const flags_table *t, const void *values, sb_csv_line *hdr,
                           sb_csv_line *val) {
    char v[4096];
    for (size_t i = 0; i < t->count; i++) {
        const flags_def *d = &t->defs[i];
        if (!(d->traits & FLAGS_TRAIT_CSV) || in_header(results_run_header(), d->name)) continue;
        flags_format_value(d, values, v, sizeof v);
        sb_csv_add_str(hdr, d->name);
        sb_csv_add_str(val, v);
    }
}

static int append_results(const train_flags *tf, const sb_flags *sf, const train_report *rep,
                          const mpi_replicas *ri, int threads, const char *data, sb_err *err) {
    const char *slash = strrchr(sf->results_csv, '/');
    if (slash && slash != sf->results_csv) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - sf->results_csv), sf->results_csv);
        int rc = sb_mkdirs(dir, err);
        if (rc) return rc;
    }
    sb_csv_line hdr, val;
    sb_csv_line_init(&hdr);
    sb_csv_line_init(&val);
    config_columns(&flags_train_table, tf, &hdr, &val);
    config_columns(&flags_sb_table, sf, &hdr, &val);
    results_run_info info = {tf->model_name, tf->optimizer, data, tf->batch_size, ri->size,
                             threads, ri->hosts};
    int rc = results_append_run(sf->results_csv, &info, rep, sb_csv_line_str(&hdr),
                                sb_csv_line_str(&val), err);
    sb_csv_line_fini(&hdr);
    sb_csv_line_fini(&val);
    return rc;
}

/* launch --profile: the table on stdout, the rows into profile.csv next to --results_csv. */
static int write_profile(const train_flags *tf, const sb_flags *sf, const train_report *rep,
                         const mpi_replicas *ri, int threads, sb_err *err) {
    const double peak = results_peak_near(sf->results_csv, threads);
    results_print_profile(stdout, tf->model_name, &rep->profile, peak);
    char path[4096];
    results_sibling_path(path, sizeof path, sf->results_csv, "profile.csv");
    results_run_info info = {tf->model_name, tf->optimizer, "", tf->batch_size, ri->size,
                             threads, ri->hosts};
    int rc = results_append_profile(path, &info, &rep->profile, peak, err);
    if (rc == 0) printf("profile rows appended to %s\n", path);
    return rc;
}

int train_cmd_run(const train_flags *tf, const sb_flags *sf, sb_err *err) {
    if (sf->dry_run) {
        printf("launch: --dry_run: flags parsed and checked; nothing trained, no results row.\n");
        return 0;
    }
    mpi_replicas ri; /* this replica of the MPI job (rank 0 of 1 outside mpirun) */
    int rc = mpi_launch_begin(tf, &ri, err);
    if (rc) return rc;
    const bool synthetic = use_synthetic(tf, sf);
    const dsf_dataset *ds = dsf_find(synthetic ? "imagenet" : tf->dataset_name);
    SB_ASSERTF(ds, "dataset %s", tf->dataset_name);
    const dsf_split *split = dsf_find_split(ds, synthetic ? "train" : tf->dataset_split_name);
    if (!split)
        return sb_err_set(err, SB_E_USAGE, "flag --dataset_split_name=%s: %s has no such split",
                          tf->dataset_split_name, ds->name);
    const int num_classes = ds->num_classes - tf->labels_offset;
    if (num_classes < 1)
        return sb_err_set(err, SB_E_USAGE,
                          "flag --labels_offset=%d leaves no classes of %s's %d", tf->labels_offset,
                          ds->name, ds->num_classes);

    int threads = sf->threads_per_replica > 0 ? sf->threads_per_replica
                                              : SB_MAX(1, omp_get_num_procs() / ri.local_size);
    omp_set_num_threads(threads);

    train_config c = {0};
    c.model_name = tf->model_name;
    c.batch_size = tf->batch_size;
    c.image_size = tf->set.train_image_size ? tf->train_image_size : 0;
    c.num_classes = num_classes;
    c.label_smoothing = (float)tf->label_smoothing;
    c.weight_decay = (float)tf->weight_decay;
    rc = train_cmd_opt_config(tf, &c.opt, err);
    if (rc == 0) rc = train_cmd_lr_config(tf, (int64_t)split->size, &c.lr, err);
    if (rc == 0) rc = as_usage(lr_config_check(&c.lr, err), err);
    if (rc) return rc;
    c.trainable_scopes = tf->trainable_scopes;
    c.train_dir = tf->set.train_dir ? tf->train_dir : NULL;
    c.checkpoint_path = tf->checkpoint_path;
    c.checkpoint_exclude_scopes = tf->checkpoint_exclude_scopes;
    c.ignore_missing_vars = tf->ignore_missing_vars;
    c.use_ema = tf->set.moving_average_decay && tf->moving_average_decay != 0;
    c.moving_average_decay = (float)tf->moving_average_decay;
    c.max_steps = tf->set.max_number_of_steps ? tf->max_number_of_steps
                                              : sf->default_max_number_of_steps;
    c.warmup_steps = sf->num_warmup_steps;
    c.log_every_n_steps = tf->log_every_n_steps;
    c.save_interval_secs = tf->save_interval_secs;
    c.save_summaries_secs = tf->save_summaries_secs;
    c.max_to_keep = 5; /* tf.train.Saver's default */
    c.seed = (uint64_t)sf->seed;
    c.step_csv = sf->step_csv;
    c.profile = sf->profile;
    rc = mpi_launch_train_config(tf, &ri, &c, err); /* hooks, schedule, rank 0 writes */
    if (rc) return rc;

    /* The batch shape: the net's image size (or --train_image_size), the data's channels. */
    const int H = c.image_size > 0 ? c.image_size : net_default_image_size(tf->model_name);
    data_source src = {0};
    int C = 0;
    if (synthetic) {
        net *probe = NULL;
        net_options no = {.num_classes = num_classes, .image_size = H, .batch_size = 1};
        rc = net_create(&probe, tf->model_name, &no, err);
        if (rc) return rc;
        C = net_image_channels(probe);
        net_destroy(probe);
        dist_shard_synthetic(&src, ri.rank, tf->batch_size, H, H, C, num_classes, c.seed);
    } else {
        pipe_config pc = {
            .dataset_dir = tf->dataset_dir,
            .dataset_name = tf->dataset_name,
            .split_name = tf->dataset_split_name,
            .batch_size = tf->batch_size,
            .image_size = H,
            .preprocessing_name = tf->preprocessing_name,
            .model_name = tf->model_name,
            .is_training = 1,
            .num_readers = tf->num_readers,
            .num_preprocessing_threads = tf->num_preprocessing_threads,
            .shuffle = 1,
            .seed = c.seed,
            .labels_offset = tf->labels_offset,
            .channels = tf->use_grayscale ? 1 : 0,
            .replica_rank = ri.rank,
            .replica_count = ri.size,
        };
        struct pipe *p = NULL;
        rc = pipe_create(&p, &pc, err);
        if (rc) return rc;
        C = pipe_channels(p);
        data_source_from_pipe(&src, p);
    }
    c.image_channels = C;
    if (sf->print_model[0] && ri.rank == 0) {
        net *probe = NULL;
        net_options no = {.num_classes = num_classes, .image_size = H, .image_channels = C,
                          .batch_size = tf->batch_size};
        rc = net_create(&probe, tf->model_name, &no, err);
        if (rc) {
            data_source_destroy(&src);
            return rc;
        }
        if (strcmp(sf->print_model, "dot") == 0) net_write_dot(stdout, probe);
        else net_print(stdout, probe);
        fflush(stdout);
        net_destroy(probe);
    }
    if (sf->print_model[0]) { /* an inspection command: describe the net, train nothing */
        data_source_destroy(&src);
        return 0;
    }
    sb_info("training %s on %s: batch %d, %dx%dx%d images, %d classes, %d threads, "
            "up to global step %lld",
            tf->model_name, synthetic ? "synthetic data" : tf->dataset_dir, tf->batch_size, H, H,
            C, num_classes, threads, (long long)c.max_steps);

    train_report rep;
    rc = train_run(&c, &src, &rep, err);
    data_source_destroy(&src);
    if (rc || ri.rank != 0) { /* rank 0 reports for the job */
        train_report_free(&rep);
        return rc;
    }
    rep.images_per_sec *= ri.size; /* every replica trains a batch per step */
    rep.images_per_sec_stdev *= ri.size;
    rc = append_results(tf, sf, &rep, &ri, threads, synthetic ? "synthetic" : tf->dataset_dir, err);
    if (rc) {
        train_report_free(&rep);
        return rc;
    }
    if (sf->profile) {
        rc = write_profile(tf, sf, &rep, &ri, threads, err);
        printf("\n");
    }
    train_report_free(&rep);
    if (rc) return rc;
    printf("----------------------------------------------------------------\n");
    printf("total images/sec: %.2f\n", rep.images_per_sec);
    printf("----------------------------------------------------------------\n");
    printf("model %s, batch %d, %d timed steps (%d warm-up excluded), median step %.1f ms, "
           "%.3f GFLOP/image, final loss %.4f, peak RSS %.0f MiB; row appended to %s\n",
           tf->model_name, tf->batch_size, rep.timed_steps, rep.warmup_steps, rep.step_ms_median,
           rep.gflop_per_image, rep.final_loss, rep.peak_rss_mb, sf->results_csv);
    fflush(stdout);
    return 0;
}
