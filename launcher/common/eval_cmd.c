/* launcher/common/eval_cmd.c — see eval_cmd.h. slim's eval_image_classifier.py: restore the
 * model variables (or their moving averages), run the split in inference mode, streaming top-1
 * accuracy and recall@5. */
#include "launcher/common/eval_cmd.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/datasets.h"
#include "datasets/pipeline.h"
#include "launcher/common/cmdline.h"
#include "models/slim/models.h"
#include "train/train_loop.h"

/* Load every variable of n from ck: its own name, or "<name>/ExponentialMovingAverage". */
static int load_vars(net *n, const ckpt *ck, bool ema, sb_err *err) {
    char name[1024];
    for (int i = 0; i < net_num_vars(n); i++) {
        const net_var *v = net_var_at(n, i);
        if (ema) snprintf(name, sizeof name, "%s/%s", v->name, EMA_SUFFIX);
        else snprintf(name, sizeof name, "%s", v->name);
        int rc = ckpt_read_float(ck, name, v->ndim, v->shape, net_params(n) + v->offset, err);
        if (rc == SB_E_NOTFOUND && ema)
            return sb_err_set(err, SB_E_NOTFOUND,
                              "checkpoint %s: no moving average %s (was it trained with "
                              "--moving_average_decay?)",
                              ckpt_path(ck), name);
        if (rc) return rc;
    }
    return 0;
}

/* Top-1 hits and top-5 recalls of one batch. logits: (N, K); labels: (N). */
static void score(const float *logits, const int32_t *labels, int N, int K, long long *top1,
                  long long *top5) {
    for (int i = 0; i < N; i++) {
        const float *z = logits + (size_t)i * K;
        int arg = 0, greater = 0;
        for (int k = 1; k < K; k++)
            if (z[k] > z[arg]) arg = k;
        for (int k = 0; k < K; k++) greater += z[k] > z[labels[i]];
        *top1 += arg == labels[i];
        *top5 += greater < 5; /* tf.nn.in_top_k: ties with the target count as in */
    }
}

static bool in_header(const char *header, const char *name) {
    size_t len = strlen(name);
    for (const char *p = header; (p = strstr(p, name)) != NULL; p += len)
        if ((p == header || p[-1] == ',') && (p[len] == ',' || p[len] == 0)) return true;
    return false;
}

static const char eval_header[] =
    "timestamp,git_sha,build,cpu_model,threads,model_name,checkpoint,global_step,data,"
    "batch_size,num_batches,num_examples,accuracy,recall_5,images_per_sec,moving_average";

static int append_row(const char *path, const eval_flags *ef, const sb_flags *sf,
                      const eval_result *r, int threads, bool ema, const char *data,
                      sb_err *err) {
    const char *slash = strrchr(path, '/');
    if (slash && slash != path) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
        int rc = sb_mkdirs(dir, err);
        if (rc) return rc;
    }
    char ts[32], cpu[256], v[4096];
    sb_utc_timestamp(ts, sizeof ts);
    sb_cpu_model(cpu, sizeof cpu);
    sb_csv_line h, l;
    sb_csv_line_init(&h);
    sb_csv_line_init(&l);
    sb_csv_add_str(&l, ts);
    sb_csv_add_str(&l, sb_build_git_sha());
    sb_csv_add_str(&l, sb_build_variant());
    sb_csv_add_str(&l, cpu);
    sb_csv_add_int(&l, threads);
    sb_csv_add_str(&l, ef->model_name);
    sb_csv_add_str(&l, r->checkpoint);
    sb_csv_add_int(&l, r->global_step);
    sb_csv_add_str(&l, data);
    sb_csv_add_int(&l, ef->batch_size);
    sb_csv_add_int(&l, r->num_batches);
    sb_csv_add_int(&l, r->num_examples);
    sb_csv_add_double(&l, r->accuracy, 6);
    sb_csv_add_double(&l, r->recall_5, 6);
    sb_csv_add_double(&l, r->images_per_sec, 3);
    sb_csv_add_str(&l, ema ? "true" : "false");
    const flags_table *tables[] = {&flags_eval_table, &flags_sb_table};
    const void *values[] = {ef, sf};
    for (int t = 0; t < 2; t++)
        for (size_t i = 0; i < tables[t]->count; i++) {
            const flags_def *d = &tables[t]->defs[i];
            if (!(d->traits & FLAGS_TRAIT_CSV) || in_header(eval_header, d->name)) continue;
            flags_format_value(d, values[t], v, sizeof v);
            sb_csv_add_str(&h, d->name);
            sb_csv_add_str(&l, v);
        }
    size_t hl = sizeof eval_header + h.len + 2;
    char *header = sb_xmalloc(hl);
    snprintf(header, hl, "%s,%s", eval_header, sb_csv_line_str(&h));
    int rc = sb_csv_append(path, header, sb_csv_line_str(&l), err);
    free(header);
    sb_csv_line_fini(&h);
    sb_csv_line_fini(&l);
    return rc;
}

/* Flags of ours.def that only mean something to launch: set explicitly here, they are
 * reported, not silently dropped (a flagfile shared with launch may hold them). */
static void warn_train_only(const sb_flags *sf) {
    const struct { const char *name; bool set; } f[] = {
        {"num_warmup_steps", sf->set.num_warmup_steps},
        {"step_csv", sf->set.step_csv},
        {"profile", sf->set.profile},
        {"hosts", sf->set.hosts},
        {"hostfile", sf->set.hostfile},
        {"default_max_number_of_steps", sf->set.default_max_number_of_steps},
    };
    for (size_t i = 0; i < SB_ARRAY_LEN(f); i++)
        if (f[i].set) sb_warn("--%s is a launch (training) flag; eval_image_classifier ignores it",
                              f[i].name);
}

/* eval_dir: the two scalars slim's evaluation loop summarizes, at the checkpoint's step. */
static int write_eval_events(const char *dir, const eval_result *r, sb_err *err) {
    int rc = sb_mkdirs(dir, err);
    if (rc) return rc;
    tb_writer *tb = NULL;
    rc = tb_writer_open(&tb, dir, err);
    if (rc) return rc;
    const char *tags[] = {"eval/Accuracy", "eval/Recall_5"};
    const float values[] = {(float)r->accuracy, (float)r->recall_5};
    rc = tb_write_scalars(tb, r->global_step, tags, values, 2, err);
    if (rc == 0) rc = tb_writer_flush(tb, err);
    if (rc == 0) printf("summaries written to %s\n", tb_writer_path(tb));
    tb_writer_close(tb);
    return rc;
}

int eval_cmd_run(const eval_flags *ef, const sb_flags *sf, eval_result *res, sb_err *err) {
    eval_result r;
    memset(&r, 0, sizeof r);
    if (ef->quantize)
        return sb_err_set(err, SB_E_UNSUPPORTED,
                          "flag --quantize: quantized graphs are not built in slimbench; leave "
                          "--quantize false");
    cmd_warn_inert(&flags_eval_table, ef);
    cmd_warn_inert(&flags_sb_table, sf);
    warn_train_only(sf);
    if (sf->dry_run) {
        printf("eval_image_classifier: --dry_run: flags parsed and checked; nothing evaluated, "
               "no results row.\n");
        return 0;
    }
    const bool synthetic = !ef->dataset_dir || !ef->dataset_dir[0] || sf->synthetic_data ||
                           strcmp(ef->dataset_name, "synthetic") == 0;
    const dsf_dataset *ds = dsf_find(synthetic ? "imagenet" : ef->dataset_name);
    SB_ASSERTF(ds, "dataset %s", ef->dataset_name);
    const dsf_split *split = dsf_find_split(ds, synthetic ? "validation" : ef->dataset_split_name);
    if (!split)
        return sb_err_set(err, SB_E_USAGE, "flag --dataset_split_name=%s: %s has no such split",
                          ef->dataset_split_name, ds->name);
    const int num_classes = ds->num_classes - ef->labels_offset;
    if (num_classes < 1)
        return sb_err_set(err, SB_E_USAGE, "flag --labels_offset=%d leaves no classes of %s's %d",
                          ef->labels_offset, ds->name, ds->num_classes);
    const bool ema = ef->set.moving_average_decay && ef->moving_average_decay != 0;
    int rc = sf->print_model[0] ? 0 : ckpt_resolve(ef->checkpoint_path, r.checkpoint,
                                                   sizeof r.checkpoint, err);
    if (rc) return rc;

    int threads = sf->threads_per_replica > 0 ? sf->threads_per_replica : omp_get_num_procs();
    omp_set_num_threads(threads);
    net *n = NULL;
    ckpt *ck = NULL;
    data_source src = {0};
    net_options no = {.num_classes = num_classes,
                      .image_size = ef->set.eval_image_size ? ef->eval_image_size : 0,
                      .image_channels = synthetic       ? 0
                                        : ef->use_grayscale ? 1
                                        : ds->channels     ? ds->channels
                                                           : 3,
                      .batch_size = ef->batch_size};
    rc = net_create(&n, ef->model_name, &no, err);
    if (rc) goto done;
    if (sf->print_model[0]) { /* describe the net, evaluate nothing */
        if (strcmp(sf->print_model, "dot") == 0) net_write_dot(stdout, n);
        else net_print(stdout, n);
        fflush(stdout);
        goto done;
    }
    net_alloc(n);
    rc = ckpt_open(&ck, r.checkpoint, err);
    if (rc) goto done;
    rc = load_vars(n, ck, ema, err);
    if (rc) goto done;
    const ckpt_tensor *gs = ckpt_find(ck, "global_step");
    if (gs && gs->dtype == CKPT_DTYPE_INT64 && gs->count == 1) {
        int64_t g;
        memcpy(&g, gs->data, sizeof g);
        r.global_step = g;
    }
    ckpt_close(ck);
    ck = NULL;

    const int N = ef->batch_size, H = net_image_size(n), C = net_image_channels(n);
    r.num_batches = ef->set.max_num_batches ? ef->max_num_batches
                                            : (int)((split->size + (uint64_t)N - 1) / (uint64_t)N);
    if (synthetic) {
        synthetic_source_create(&src, N, H, H, C, num_classes, (uint64_t)sf->seed);
    } else { /* one pass over the split, in order, as slim's eval */
        pipe_config pc = {
            .dataset_dir = ef->dataset_dir,
            .dataset_name = ef->dataset_name,
            .split_name = ef->dataset_split_name,
            .batch_size = N,
            .image_size = H,
            .preprocessing_name = ef->preprocessing_name,
            .model_name = ef->model_name,
            .num_preprocessing_threads = ef->num_preprocessing_threads,
            .seed = (uint64_t)sf->seed,
            .labels_offset = ef->labels_offset,
            .num_epochs = 1,
            .channels = C,
        };
        struct pipe *p = NULL;
        rc = pipe_create(&p, &pc, err);
        if (rc) goto done;
        data_source_from_pipe(&src, p);
    }
    sb_info("evaluating %s (global step %lld%s) on %s: up to %d batches of %d", r.checkpoint,
            r.global_step, ema ? ", moving averages" : "", synthetic ? "synthetic data" : ef->dataset_dir,
            r.num_batches, N);
    long long top1 = 0, top5 = 0;
    double t0 = sb_now();
    int done_batches = 0;
    for (int b = 0; b < r.num_batches; b++) {
        double wait_ms;
        rc = src.next(src.ctx, net_input(n), net_labels(n), &wait_ms, err);
        if (rc == PIPE_END && !synthetic) { /* the split is exhausted */
            rc = 0;
            break;
        }
        if (rc) goto done;
        done_batches++;
        net_forward(n, NET_MODE_INFER, 0);
        score(net_logits(n), net_labels(n), N, num_classes, &top1, &top5);
        r.num_examples += N;
    }
    double secs = sb_now() - t0;
    r.num_batches = done_batches;
    r.accuracy = r.num_examples ? (double)top1 / (double)r.num_examples : 0;
    r.recall_5 = r.num_examples ? (double)top5 / (double)r.num_examples : 0;
    r.images_per_sec = secs > 0 ? (double)r.num_examples / secs : 0;
    printf("eval/Accuracy[%g]\n", r.accuracy);
    printf("eval/Recall_5[%g]\n", r.recall_5);
    fflush(stdout);
    const char *csv = sf->set.results_csv ? sf->results_csv : "results/evals.csv";
    rc = append_row(csv, ef, sf, &r, threads, ema, synthetic ? "synthetic" : ef->dataset_dir,
                    err);
    if (rc == 0) printf("%lld examples, %.1f images/sec; row appended to %s\n", r.num_examples,
                        r.images_per_sec, csv);
    /* like launch's --train_dir: only when given, so an evaluation leaves no files behind */
    if (rc == 0 && ef->set.eval_dir && ef->eval_dir[0]) rc = write_eval_events(ef->eval_dir, &r, err);
    if (res) *res = r;
done:
    data_source_destroy(&src);
    ckpt_close(ck);
    net_destroy(n);
    return rc;
}
