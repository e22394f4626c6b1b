/* train/train.c — the training run: train_image_classifier.py's loop over slim's net, TF's
 * optimizers and a data source, with checkpoints, summaries, logging and throughput figures.
 *
 * The step (train_run's loop) reads like the algorithm:
 *   next batch -> forward (loss) -> backward -> allreduce -> weight decay ->
 *   optimizer step -> global_step += 1 -> moving averages -> log / summaries / checkpoint.
 * Backward overwrites every gradient (kernels.h), so there is no zeroing step (vgg_16's 528 MiB
 * of gradients were written once more per step). Everything is allocated before the first step;
 * the loop allocates only when it records a step time beyond its buffer. Knows nets, optimizers
 * and checkpoints; not flags, not MPI.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train/train_loop.h"

/* The run's state, sized once. */
typedef struct trainer {
    const train_config *cfg;
    net *n;
    param_desc *descs;
    size_t ndesc;
    float *params, *grads; /* the net's arenas */
    size_t P, G;           /* their lengths (floats) */
    float *slots;          /* opt_slot_count planes of G floats */
    int nslots;
    float scalars[OPT_MAX_SCALARS];
    float *ema;            /* P floats, NULL without --moving_average_decay */
    int64_t step;          /* global_step */
} trainer;

/* The dropout seed of a step: a function of the run's seed and the global step, so a resumed
 * run draws the same masks as an uninterrupted one. */
static uint64_t step_seed(uint64_t seed, int64_t step) {
    return seed * 0x9e3779b97f4a7c15ULL + (uint64_t)step * 0xc2b2ae3d27d4eb4fULL + 1;
}

double train_total_loss(net *n, net_mode mode, uint64_t seed, const param_desc *descs,
                        size_t ndesc, float weight_decay) {
    double loss = net_forward(n, mode, seed);
    if (weight_decay > 0) loss += opt_l2_loss(net_params(n), descs, ndesc, weight_decay);
    return loss;
}

/* ---------------------------------------------------------------------------------------------
 * Checkpoint save and restore.
 * ------------------------------------------------------------------------------------------- */

typedef struct name_list {
    char **v;
    size_t n;
} name_list;

static const char *name_add(name_list *l, const char *a, const char *b) {
    size_t len = strlen(a) + (b ? strlen(b) + 1 : 0) + 1;
    char *s = sb_xmalloc(len);
    if (b) snprintf(s, len, "%s/%s", a, b);
    else snprintf(s, len, "%s", a);
    l->v[l->n++] = s;
    return s;
}

static void name_list_free(name_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
}

static ckpt_tensor tensor_of(const char *name, const param_desc *d, const float *data) {
    ckpt_tensor t = {name, CKPT_DTYPE_FLOAT32, d->ndim, {0}, d->count, data};
    memcpy(t.shape, d->shape, sizeof t.shape);
    return t;
}

static int save_checkpoint(trainer *t, char *out_path, size_t cap, sb_err *err) {
    const train_config *c = t->cfg;
    size_t max = t->ndesc * (2 + (size_t)t->nslots) + OPT_MAX_SCALARS + 1;
    ckpt_tensor *ts = sb_xcalloc(max, sizeof *ts);
    name_list names = {sb_xcalloc(max, sizeof(char *)), 0};
    size_t k = 0;
    for (size_t i = 0; i < t->ndesc; i++) {
        const param_desc *d = &t->descs[i];
        ts[k++] = tensor_of(d->name, d, t->params + d->offset);
    }
    for (size_t i = 0; i < t->ndesc; i++) {
        const param_desc *d = &t->descs[i];
        if (!(d->flags & PARAM_FLAG_TRAINABLE)) continue;
        for (int j = 0; j < t->nslots; j++)
            ts[k++] = tensor_of(name_add(&names, d->name, opt_slot_name(c->opt.kind, j)), d,
                                t->slots + (size_t)j * t->G + d->offset);
    }
    if (t->ema)
        for (size_t i = 0; i < t->ndesc; i++) {
            const param_desc *d = &t->descs[i];
            ts[k++] = tensor_of(name_add(&names, d->name, EMA_SUFFIX), d, t->ema + d->offset);
        }
    for (int j = 0; j < opt_scalar_count(c->opt.kind); j++)
        ts[k++] = (ckpt_tensor){opt_scalar_name(c->opt.kind, j), CKPT_DTYPE_FLOAT32, 0, {0}, 1,
                                &t->scalars[j]};
    int64_t gs = t->step;
    ts[k++] = (ckpt_tensor){"global_step", CKPT_DTYPE_INT64, 0, {0}, 1, &gs};
    snprintf(out_path, cap, "%s/model.ckpt-%lld", c->train_dir, (long long)t->step);
    int rc = ckpt_write(out_path, ts, k, err);
    if (rc == 0) rc = ckpt_update_index(c->train_dir, out_path, c->max_to_keep, err);
    if (rc == 0) sb_info("saved checkpoint %s", out_path);
    name_list_free(&names);
    free(ts);
    return rc;
}

static int read_desc(const ckpt *ck, const char *name, const param_desc *d, float *dst,
                     sb_err *err) {
    return ckpt_read_float(ck, name, d->ndim, d->shape, dst, err);
}

/* Resume: every tensor the run saves must be in the checkpoint, with the same shape. */
static int restore_full(trainer *t, const char *path, sb_err *err) {
    const train_config *c = t->cfg;
    ckpt *ck = NULL;
    int rc = ckpt_open(&ck, path, err);
    if (rc) return rc;
    char name[1024];
    for (size_t i = 0; i < t->ndesc && rc == 0; i++) {
        const param_desc *d = &t->descs[i];
        rc = read_desc(ck, d->name, d, t->params + d->offset, err);
        for (int j = 0; j < t->nslots && rc == 0 && (d->flags & PARAM_FLAG_TRAINABLE); j++) {
            snprintf(name, sizeof name, "%s/%s", d->name, opt_slot_name(c->opt.kind, j));
            rc = read_desc(ck, name, d, t->slots + (size_t)j * t->G + d->offset, err);
            if (rc == SB_E_NOTFOUND)
                sb_err_wrap(err, "(was it written with another --optimizer than %s?) ",
                            opt_kind_name(c->opt.kind));
        }
        if (t->ema && rc == 0) {
            snprintf(name, sizeof name, "%s/%s", d->name, EMA_SUFFIX);
            rc = read_desc(ck, name, d, t->ema + d->offset, err);
            if (rc == SB_E_NOTFOUND)
                sb_err_wrap(err, "(written without --moving_average_decay?) ");
        }
    }
    for (int j = 0; j < opt_scalar_count(c->opt.kind) && rc == 0; j++) {
        int shape0[1] = {0};
        rc = ckpt_read_float(ck, opt_scalar_name(c->opt.kind, j), 0, shape0, &t->scalars[j], err);
    }
    if (rc == 0) {
        const ckpt_tensor *gs = ckpt_find(ck, "global_step");
        if (!gs || gs->dtype != CKPT_DTYPE_INT64 || gs->count != 1)
            rc = sb_err_set(err, SB_E_FORMAT, "checkpoint %s: no int64 global_step", path);
        else memcpy(&t->step, gs->data, sizeof t->step);
    }
    ckpt_close(ck);
    return rc;
}

/* Fine-tuning, as slim's _get_init_fn: the model variables not under --checkpoint_exclude_scopes
 * are restored; a variable missing from the checkpoint is an error unless
 * --ignore_missing_vars. Optimizer slots and global_step start fresh. */
static int restore_finetune(trainer *t, const char *path, sb_err *err) {
    const train_config *c = t->cfg;
    ckpt *ck = NULL;
    int rc = ckpt_open(&ck, path, err);
    if (rc) return rc;
    int restored = 0, missing = 0, excluded = 0;
    for (size_t i = 0; i < t->ndesc && rc == 0; i++) {
        const param_desc *d = &t->descs[i];
        if (train_scope_match(d->name, c->checkpoint_exclude_scopes)) {
            excluded++;
            continue;
        }
        rc = read_desc(ck, d->name, d, t->params + d->offset, err);
        if (rc == SB_E_NOTFOUND && c->ignore_missing_vars) {
            sb_warn("variable %s missing in checkpoint %s (ignored: --ignore_missing_vars)",
                    d->name, path);
            missing++;
            rc = 0;
        } else if (rc == SB_E_NOTFOUND) {
            rc = sb_err_set(err, SB_E_NOTFOUND,
                            "fine-tuning from %s: variable %s is not in the checkpoint (exclude "
                            "it with --checkpoint_exclude_scopes or pass --ignore_missing_vars)",
                            path, d->name);
        } else if (rc == 0) {
            restored++;
        }
    }
    ckpt_close(ck);
    if (rc == 0)
        sb_info("fine-tuning from %s: %d variables restored, %d excluded, %d missing", path,
                restored, excluded, missing);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Statistics.
 * ------------------------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n) {
    if (n <= 0) return 0;
    double *s = sb_xmalloc((size_t)n * sizeof *s);
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double m = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(s);
    return m;
}

static double stdev(const double *v, int n) {
    if (n < 2) return 0;
    double mean = 0, ss = 0;
    for (int i = 0; i < n; i++) mean += v[i];
    mean /= n;
    for (int i = 0; i < n; i++) ss += (v[i] - mean) * (v[i] - mean);
    return sqrt(ss / (n - 1));
}

typedef struct step_times {
    double *step_ms, *wait_ms, *reduce_ms, *ips;
    int n, cap;
} step_times;

static void times_add(step_times *s, double step_ms, double wait_ms, double reduce_ms,
                      double ips) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->step_ms = sb_xrealloc(s->step_ms, (size_t)s->cap * sizeof(double));
        s->wait_ms = sb_xrealloc(s->wait_ms, (size_t)s->cap * sizeof(double));
        s->reduce_ms = sb_xrealloc(s->reduce_ms, (size_t)s->cap * sizeof(double));
        s->ips = sb_xrealloc(s->ips, (size_t)s->cap * sizeof(double));
    }
    s->step_ms[s->n] = step_ms;
    s->wait_ms[s->n] = wait_ms;
    s->reduce_ms[s->n] = reduce_ms;
    s->ips[s->n++] = ips;
}

static void times_free(step_times *s) {
    free(s->step_ms);
    free(s->wait_ms);
    free(s->reduce_ms);
    free(s->ips);
}

/* ---------------------------------------------------------------------------------------------
 * Summaries.
 * ------------------------------------------------------------------------------------------- */

static int write_summaries(trainer *t, tb_writer *tb, double loss, float lr, double ips,
                           sb_err *err) {
    const char *tags[] = {"total_loss", "learning_rate", "images_per_sec"};
    const float vals[] = {(float)loss, lr, (float)ips};
    int rc = tb_write_scalars(tb, t->step, tags, vals, 3, err);
    if (rc) return rc;
    const char **htags = sb_xmalloc(t->ndesc * sizeof *htags);
    const float **hdata = sb_xmalloc(t->ndesc * sizeof *hdata);
    size_t *hcount = sb_xmalloc(t->ndesc * sizeof *hcount);
    int nh = 0;
    for (size_t i = 0; i < t->ndesc; i++) { /* slim: a histogram per model variable */
        htags[nh] = t->descs[i].name;
        hdata[nh] = t->params + t->descs[i].offset;
        hcount[nh++] = t->descs[i].count;
    }
    rc = tb_write_histograms(tb, t->step, htags, hdata, hcount, nh, err);
    free(htags);
    free(hdata);
    free(hcount);
    return rc ? rc : tb_writer_flush(tb, err);
}

static const char step_csv_header[] =
    "global_step,loss,learning_rate,step_ms,data_wait_ms,allreduce_ms,images_per_sec";

static int step_csv_row(const char *path, int64_t step, double loss, float lr, double step_ms,
                        double wait_ms, double reduce_ms, double ips, sb_err *err) {
    sb_csv_line l;
    sb_csv_line_init(&l);
    sb_csv_add_int(&l, step);
    sb_csv_add_double(&l, loss, 6);
    sb_csv_add_double(&l, lr, 8);
    sb_csv_add_double(&l, step_ms, 3);
    sb_csv_add_double(&l, wait_ms, 3);
    sb_csv_add_double(&l, reduce_ms, 3);
    sb_csv_add_double(&l, ips, 2);
    int rc = sb_csv_append(path, step_csv_header, sb_csv_line_str(&l), err);
    sb_csv_line_fini(&l);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * The run.
 * ------------------------------------------------------------------------------------------- */

static int setup(trainer *t, const train_config *c, sb_err *err) {
    net_options no = {.num_classes = c->num_classes,
                      .image_size = c->image_size,
                      .image_channels = c->image_channels,
                      .batch_size = c->batch_size,
                      .label_smoothing = c->label_smoothing,
                      .dropout_keep_prob = c->dropout_keep_prob};
    int rc = net_create(&t->n, c->model_name, &no, err);
    if (rc) return rc;
    net_alloc(t->n);
    t->params = net_params(t->n);
    t->grads = net_grads(t->n);
    t->P = net_params_len(t->n);
    t->G = net_grads_len(t->n);
    t->descs = train_param_descs(t->n, c->trainable_scopes, &t->ndesc);
    train_init_params(t->n, c->seed);
    t->nslots = opt_slot_count(c->opt.kind);
    if (t->nslots) {
        t->slots = sb_aligned_alloc((size_t)t->nslots * t->G * sizeof(float));
        opt_slots_init(t->slots, t->G, t->G, &c->opt);
    }
    opt_scalars_init(t->scalars, &c->opt);
    if (c->use_ema) { /* shadows start as the initial values, as TF's initialized_value() */
        t->ema = sb_aligned_alloc(t->P * sizeof(float));
        ema_init(t->ema, t->params, t->descs, t->ndesc);
    }
    int ntrain = 0;
    for (size_t i = 0; i < t->ndesc; i++) ntrain += !!(t->descs[i].flags & PARAM_FLAG_TRAINABLE);
    if (ntrain == 0)
        return sb_err_set(err, SB_E_USAGE,
                          "flag --trainable_scopes=%s selects no trainable variable of %s",
                          c->trainable_scopes ? c->trainable_scopes : "", c->model_name);

    /* slim: resume from train_dir when it has a checkpoint; otherwise fine-tune from
     * --checkpoint_path (init_fn runs only without a checkpoint in train_dir). */
    char path[4096];
    int have = 0;
    if (c->train_dir && c->train_dir[0]) {
        rc = ckpt_latest(c->train_dir, path, sizeof path, err);
        if (rc == 0) have = 1;
        else if (rc != SB_E_NOTFOUND) return rc;
    }
    if (have) {
        rc = restore_full(t, path, err);
        if (rc) return rc;
        sb_info("resuming from %s at global step %lld", path, (long long)t->step);
    } else if (c->checkpoint_path && c->checkpoint_path[0]) {
        rc = ckpt_resolve(c->checkpoint_path, path, sizeof path, err);
        if (rc == 0) rc = restore_finetune(t, path, err);
        if (rc) return rc;
    }
    return 0;
}

/* A run killed while saving leaves "<checkpoint>.tmp.<pid>" (core's atomic writer): the last
 * good checkpoint is intact, the temporary is garbage. One trainer owns a train_dir, so the
 * temporaries found at start are removed. */
static void remove_stale_temporaries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    char path[4096];
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, "model.ckpt-", 11) != 0 || !strstr(e->d_name, ".tmp.")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) == 0) sb_info("removed %s, left by an interrupted save", path);
        else sb_warn("could not remove %s: %s", path, sb_strerror(errno));
    }
    closedir(d);
}

static void teardown(trainer *t) {
    sb_aligned_free(t->slots);
    sb_aligned_free(t->ema);
    free(t->descs);
    net_destroy(t->n);
}

int train_run(const train_config *c, data_source *src, train_report *rep, sb_err *err) {
    memset(rep, 0, sizeof *rep);
    trainer t = {.cfg = c};
    tb_writer *tb = NULL;
    step_times st = {0};
    int rc = setup(&t, c, err);
    if (rc) goto done;
    if (c->replicas_sync) /* replicas start from rank 0's state */
        c->replicas_sync(t.n, t.slots, (size_t)t.nslots * t.G, t.scalars, OPT_MAX_SCALARS, t.ema,
                         &t.step, c->allreduce_ctx);
    const bool ckpts = c->train_dir && c->train_dir[0];
    if (ckpts) {
        rc = sb_mkdirs(c->train_dir, err);
        if (rc) goto done;
        remove_stale_temporaries(c->train_dir);
    }
    if (ckpts && c->save_summaries_secs > 0) {
        rc = tb_writer_open(&tb, c->train_dir, err);
        if (rc) goto done;
    }
    const int N = c->batch_size;
    rep->start_step = t.step;
    rep->image_size = net_image_size(t.n);
    rep->warmup_steps = c->warmup_steps;
    rep->gflop_per_image = net_flops_per_image(t.n) * 1e-9;
    double last_save = sb_now(), last_summary = -1e300, loss = NAN, ips = 0;
    int64_t summary_step = -1;
    float lr = 0;
    const int64_t first = t.step;
    if (t.step >= c->max_steps)
        sb_info("global step %lld already reaches --max_number_of_steps=%lld; nothing to train",
                (long long)t.step, (long long)c->max_steps);

    double prof_fwd = 0, prof_bwd = 0, prof_wait = 0, prof_reduce = 0, prof_step = 0;
    while (t.step < c->max_steps) {
        const bool timed = t.step - first >= c->warmup_steps;
        if (c->profile && t.step - first == c->warmup_steps) net_profile_start(t.n);
        double t0 = sb_now(), wait_ms = 0, reduce_ms = 0;
        rc = src->next(src->ctx, net_input(t.n), net_labels(t.n), &wait_ms, err);  /* batch */
        if (rc) goto done;
        const double f0 = sb_now();
        loss = train_total_loss(t.n, NET_MODE_TRAIN, step_seed(c->seed, t.step),    /* fwd */
                                t.descs, t.ndesc, c->weight_decay);
        const double f1 = sb_now();
        if (!isfinite(loss)) {
            rc = sb_err_set(err, SB_E_DIVERGED,
                            "global step %lld: loss is %s; training stopped (lower "
                            "--learning_rate?)",
                            (long long)t.step + 1, isnan(loss) ? "NaN" : "Inf");
            goto done;
        }
        net_backward(t.n);                                                           /* bwd */
        const double b1 = sb_now();
        if (c->allreduce) {                                                          /* dist */
            double r0 = sb_now();
            c->allreduce(t.grads, t.G, c->allreduce_ctx);
            reduce_ms = (sb_now() - r0) * 1e3;
        }
        opt_l2_grad_add(t.grads, t.params, t.descs, t.ndesc, c->weight_decay);       /* L2 */
        lr = lr_schedule_at(&c->lr, t.step);
        opt_apply(t.params, t.slots, t.G, t.grads, t.P, t.descs, t.ndesc, &c->opt,   /* step */
                  lr, 0.0f, t.scalars);
        if (t.ema)                                                                   /* EMA */
            ema_apply(t.ema, t.params, t.descs, t.ndesc, c->moving_average_decay, t.step);
        t.step++;

        double now = sb_now(), step_ms = (now - t0) * 1e3;
        ips = N / (now - t0);
        if (timed) {
            times_add(&st, step_ms, wait_ms, reduce_ms, ips);
            prof_fwd += (f1 - f0) * 1e3, prof_bwd += (b1 - f1) * 1e3, prof_wait += wait_ms;
            prof_reduce += reduce_ms, prof_step += step_ms;
        }
        rep->final_step = t.step;
        rep->final_loss = loss;
        if (t.step % c->log_every_n_steps == 0 || t.step == c->max_steps)
            sb_info("global step %lld: loss = %.4f (%.3f sec/step, %.1f images/sec, "
                    "learning_rate = %.6g)",
                    (long long)t.step, loss, step_ms * 1e-3, ips, (double)lr);
        if (c->step_csv && c->step_csv[0]) {
            rc = step_csv_row(c->step_csv, t.step, loss, lr, step_ms, wait_ms, reduce_ms, ips,
                              err);
            if (rc) goto done;
        }
        if (tb && now - last_summary >= c->save_summaries_secs) {
            rc = write_summaries(&t, tb, loss, lr, ips, err);
            if (rc) goto done;
            last_summary = now;
            summary_step = t.step;
        }
        if (ckpts && c->save_interval_secs > 0 && now - last_save >= c->save_interval_secs &&
            t.step < c->max_steps) {
            rc = save_checkpoint(&t, rep->last_checkpoint, sizeof rep->last_checkpoint, err);
            if (rc) goto done;
            last_save = sb_now();
        }
    }
    if (tb && summary_step >= 0 && summary_step != t.step) {
        rc = write_summaries(&t, tb, loss, lr, ips, err);
        if (rc) goto done;
    }
    if (ckpts) rc = save_checkpoint(&t, rep->last_checkpoint, sizeof rep->last_checkpoint, err);

    if (c->profile && st.n > 0) {
        train_profile *pr = &rep->profile;
        int nl, nf, nb;
        const net_layer_profile *lp = net_profile(t.n, &nl, &nf, &nb);
        SB_ASSERT(lp && nf == st.n && nb == st.n);
        pr->steps = st.n;
        pr->n_layers = nl;
        pr->layers = sb_xcalloc((size_t)nl, sizeof *pr->layers);
        for (int i = 0; i < nl; i++)
            pr->layers[i] = (train_profile_layer){
                .scope = sb_xstrdup(lp[i].scope), .kind = lp[i].kind,
                .fwd_ms = lp[i].fwd_s * 1e3 / nf, .bwd_ms = lp[i].bwd_s * 1e3 / nb,
                .fwd_flops = lp[i].fwd_flops, .bwd_flops = lp[i].bwd_flops};
        pr->fwd_ms = prof_fwd / st.n, pr->bwd_ms = prof_bwd / st.n;
        pr->wait_ms = prof_wait / st.n, pr->reduce_ms = prof_reduce / st.n;
        pr->step_ms = prof_step / st.n;
        pr->other_ms = pr->step_ms - pr->fwd_ms - pr->bwd_ms - pr->wait_ms - pr->reduce_ms;
    }

done:
    rep->timed_steps = st.n;
    rep->images_per_sec = median(st.ips, st.n);
    rep->images_per_sec_stdev = stdev(st.ips, st.n);
    rep->step_ms_median = median(st.step_ms, st.n);
    rep->data_wait_ms = median(st.wait_ms, st.n);
    rep->allreduce_ms = median(st.reduce_ms, st.n);
    if (!rep->final_step) rep->final_step = t.step;
    rep->peak_rss_mb = sb_peak_rss_mb();
    times_free(&st);
    tb_writer_close(tb);
    teardown(&t);
    return rc;
}

void train_report_free(train_report *rep) {
    for (int i = 0; i < rep->profile.n_layers; i++) free(rep->profile.layers[i].scope);
    free(rep->profile.layers);
    memset(&rep->profile, 0, sizeof rep->profile);
}
