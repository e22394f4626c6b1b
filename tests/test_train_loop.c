/* tests/test_train_loop.c — training end to end with lenet on synthetic data (tiny batches, a
 * few steps): the loss slim minimizes computed by hand (label smoothing, weight decay), the
 * results row (every DESIGN.md column, sane values, pct_of_peak against a peak.csv), --step_csv,
 * the learning-rate schedule as logged, --log_every_n_steps, --default_max_number_of_steps,
 * bit-identical checkpoints for the same seed, resume after kill -9, a NaN stop naming the step,
 * --trainable_scopes (frozen variables bit-identical), fine-tuning with
 * --checkpoint_exclude_scopes / --ignore_missing_vars / a shape mismatch, moving averages in the
 * checkpoint, and --save_summaries_secs event files. Runs $SB_BIN_DIR/launch through tu_run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/sb.h"
#include "datasets/datasets.h"
#include "tests/support/testutil.h"
#include "train/train_loop.h"

/* Every run: lenet, batch 4, one thread, fixed seed, results into the temp dir. */
#define BASE "{bin}/launch --model_name=lenet --batch_size=4 --threads_per_replica=1 --seed=3 "

static void assert_has(const char *hay, const char *needle) {
    if (!strstr(hay, needle)) fail_msg("'%s' not in output:\n%s", needle, hay);
}

static char *launch(int want, const char *dir, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static char *launch(int want, const char *dir, const char *fmt, ...) {
    char args[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    char *out;
    int rc = tu_run(&out, BASE "--results_csv=%s/runs.csv %s", dir, args);
    if (rc != want) fail_msg("launch %s: exit %d, want %d; output:\n%s", args, rc, want, out);
    return out;
}

/* Lines of a CSV file, split into fields (no quoted commas in the columns tested). */
typedef struct csv {
    int rows, cols;
    char *cell[64][96];
    char *text;
} csv;

static void csv_read(csv *c, const char *path) {
    memset(c, 0, sizeof *c);
    size_t n;
    sb_err err;
    if (sb_read_file(path, &c->text, &n, &err)) fail_msg("%s", err.msg);
    char *save = NULL;
    for (char *line = strtok_r(c->text, "\n", &save); line && c->rows < 64;
         line = strtok_r(NULL, "\n", &save)) {
        int k = 0;
        char *p = line;
        while (p && k < 96) {
            if (*p == '"') { /* a quoted field: up to the closing quote */
                char *q = strchr(p + 1, '"');
                c->cell[c->rows][k++] = p;
                p = q ? strchr(q, ',') : NULL;
            } else {
                c->cell[c->rows][k++] = p;
                p = strchr(p, ',');
            }
            if (p) *p++ = 0;
        }
        if (c->rows == 0) c->cols = k;
        c->rows++;
    }
}

static const char *csv_get(const csv *c, int row, const char *col) {
    for (int k = 0; k < c->cols; k++)
        if (strcmp(c->cell[0][k], col) == 0) return c->cell[row][k] ? c->cell[row][k] : "";
    fail_msg("no column %s", col);
    return NULL;
}

static void test_loss_by_hand(void **state) {
    (void)state;
    /* slim's total loss = softmax xent with label smoothing + weight_decay * sum(w^2)/2. */
    const int N = 3, K = 7;
    const float ls = 0.2f, wd = 0.01f;
    net_options no = {.num_classes = K, .batch_size = N, .label_smoothing = ls};
    net *n;
    sb_err err;
    assert_int_equal(net_create(&n, "lenet", &no, &err), 0);
    net_alloc(n);
    train_init_params(n, 11);
    size_t nd;
    param_desc *d = train_param_descs(n, NULL, &nd);
    data_source src;
    synthetic_source_create(&src, N, 28, 28, 1, K, 5);
    double wait;
    assert_int_equal(src.next(src.ctx, net_input(n), net_labels(n), &wait, &err), 0);
    double got = train_total_loss(n, NET_MODE_INFER, 0, d, nd, wd);
    const float *z = net_logits(n);
    const int32_t *y = net_labels(n);
    double xent = 0, l2 = 0;
    for (int i = 0; i < N; i++) {
        double m = -INFINITY, se = 0;
        for (int k = 0; k < K; k++) m = fmax(m, z[i * K + k]);
        for (int k = 0; k < K; k++) se += exp(z[i * K + k] - m);
        for (int k = 0; k < K; k++) {
            double t = (k == y[i] ? 1.0 - ls : 0.0) + ls / K;
            xent -= t * (z[i * K + k] - m - log(se));
        }
    }
    xent /= N;
    for (size_t i = 0; i < nd; i++)
        if (d[i].flags & PARAM_FLAG_DECAY)
            for (size_t j = 0; j < d[i].count; j++) {
                double v = net_params(n)[d[i].offset + j];
                l2 += v * v;
            }
    double want = xent + wd * l2 / 2;
    if (fabs(got - want) > 1e-5 * fabs(want)) fail_msg("loss %.9g, by hand %.9g", got, want);
    /* each term has an effect */
    double no_wd = train_total_loss(n, NET_MODE_INFER, 0, d, nd, 0);
    assert_true(fabs((got - no_wd) - wd * l2 / 2) < 1e-5 * want);
    assert_true(l2 > 0 && xent > 0);
    data_source_destroy(&src);
    free(d);
    net_destroy(n);
}

/* The build variant under test: SB_BIN_DIR is build/<variant>/bin. */
static const char *variant(void) {
    static char v[64];
    const char *bin = getenv("SB_BIN_DIR");
    const char *b = bin ? strstr(bin, "build/") : NULL;
    if (!b) return "native";
    snprintf(v, sizeof v, "%s", b + 6);
    char *slash = strchr(v, '/');
    if (slash) *slash = 0;
    return v;
}

/* The first step's loss from a run's --step_csv. */
static double first_loss(const char *dir, const char *flags) {
    char path[512];
    snprintf(path, sizeof path, "%s/first.csv", dir);
    unlink(path);
    free(launch(0, dir, "--max_number_of_steps=2 --num_warmup_steps=1 --step_csv=%s %s", path,
                flags));
    csv c;
    csv_read(&c, path);
    double l = atof(csv_get(&c, 1, "loss"));
    free(c.text);
    return l;
}

static void test_loss_flags_through_launch(void **state) {
    (void)state;
    char dir[256];
    tu_make_tmpdir(dir, sizeof dir);
    /* same seed, same dropout masks: --weight_decay adds exactly wd * sum(w^2) / 2 of the
     * initial weights to the first step's loss */
    double l0 = first_loss(dir, "--weight_decay=0");
    double l1 = first_loss(dir, "--weight_decay=0.5");
    net_options no = {.num_classes = 1001, .batch_size = 1};
    net *n;
    sb_err err;
    assert_int_equal(net_create(&n, "lenet", &no, &err), 0);
    net_alloc(n);
    train_init_params(n, 3);
    double l2 = 0;
    for (int i = 0; i < net_num_vars(n); i++) {
        const net_var *v = net_var_at(n, i);
        if (!(v->flags & NET_VAR_REGULARIZED)) continue;
        for (size_t j = 0; j < v->count; j++) l2 += (double)net_params(n)[v->offset + j] *
                                                    net_params(n)[v->offset + j];
    }
    net_destroy(n);
    if (fabs((l1 - l0) - 0.5 * l2 / 2) > 1e-4 * l1)
        fail_msg("weight decay added %.6f to the loss, by hand %.6f", l1 - l0, 0.5 * l2 / 2);
    /* label smoothing changes the cross entropy */
    double ls = first_loss(dir, "--weight_decay=0 --label_smoothing=0.5");
    assert_true(fabs(ls - l0) > 1e-3);
    tu_remove_tree(dir);
}

/* A peak measurement of 50 GFLOP/s for this build and one thread in dir/peak.csv, as
 * bench/peak writes it (launch looks next to --results_csv). */
static void write_peak_csv(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/peak.csv", dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fprintf(fp, "timestamp,build,isa,threads,gflops\n2026-01-01T00:00:00Z,%s,x,1,50.0\n",
            variant());
    fclose(fp);
}

static void test_results_row_and_step_csv(void **state) {
    (void)state;
    char dir[256], path[512];
    tu_make_tmpdir(dir, sizeof dir);
    write_peak_csv(dir);
    char *out = launch(0, dir,
                       "--max_number_of_steps=5 --num_warmup_steps=1 --step_csv=%s/steps.csv "
                       "--log_every_n_steps=2 --label_smoothing=0.1",
                       dir);
    assert_has(out, "total images/sec: ");
    assert_has(out, "global step 2: loss = ");
    assert_has(out, "global step 4: loss = ");
    assert_has(out, "global step 5: loss = "); /* the last step is always logged */
    assert_null(strstr(out, "global step 3: loss"));
    free(out);
    csv c;
    snprintf(path, sizeof path, "%s/runs.csv", dir);
    csv_read(&c, path);
    assert_int_equal(c.rows, 2);
    const char *design[] = {
        "timestamp", "git_sha", "build", "cc", "cflags", "cpu_model", "hosts", "replicas",
        "threads_per_replica", "model_name", "batch_size", "global_batch_size", "optimizer",
        "data", "image_size", "steps", "warmup_steps", "images_per_sec", "images_per_sec_stdev",
        "step_ms_median", "data_wait_ms", "allreduce_ms", "gflop_per_image", "gflops",
        "pct_of_peak", "peak_rss_mb", "final_loss"};
    for (size_t i = 0; i < SB_ARRAY_LEN(design); i++) {
        assert_string_equal(c.cell[0][i], design[i]); /* DESIGN.md's order, first */
        if (strcmp(design[i], "pct_of_peak") && strcmp(design[i], "allreduce_ms"))
            assert_true(csv_get(&c, 1, design[i])[0] != 0);
    }
    assert_string_equal(csv_get(&c, 1, "model_name"), "lenet");
    assert_string_equal(csv_get(&c, 1, "data"), "synthetic");
    assert_int_equal(atoi(csv_get(&c, 1, "steps")), 4);
    assert_int_equal(atoi(csv_get(&c, 1, "warmup_steps")), 1);
    assert_int_equal(atoi(csv_get(&c, 1, "image_size")), 28);
    assert_int_equal(atoi(csv_get(&c, 1, "threads_per_replica")), 1);
    assert_int_equal(atoi(csv_get(&c, 1, "global_batch_size")), 4);
    double ips = atof(csv_get(&c, 1, "images_per_sec"));
    double gfi = atof(csv_get(&c, 1, "gflop_per_image"));
    double gflops = atof(csv_get(&c, 1, "gflops"));
    assert_true(ips > 0 && gfi > 0.001 && gfi < 1);
    assert_true(fabs(gflops - 3 * gfi * ips) <= 0.01 * gflops + 0.002);
    double pct = atof(csv_get(&c, 1, "pct_of_peak"));
    assert_true(fabs(pct - 100 * gflops / 50.0) <= 0.02 * pct + 0.01);
    assert_true(atof(csv_get(&c, 1, "peak_rss_mb")) > 1);
    assert_true(isfinite(atof(csv_get(&c, 1, "final_loss"))));
    assert_string_equal(csv_get(&c, 1, "label_smoothing"), "0.1"); /* config columns follow */
    assert_string_equal(csv_get(&c, 1, "seed"), "3");
    free(c.text);
    snprintf(path, sizeof path, "%s/steps.csv", dir);
    csv_read(&c, path);
    assert_int_equal(c.rows, 6);
    assert_string_equal(csv_get(&c, 5, "global_step"), "5");
    assert_true(atof(csv_get(&c, 3, "images_per_sec")) > 0);
    free(c.text);
    tu_remove_tree(dir);
}

/* launch --profile: profile.csv next to --results_csv with a row per lenet layer and the step's
 * parts; each conv / fc layer's FLOPs (rate x time) are those of slim's lenet at batch 4,
 * computed here from nets/lenet.py's shapes (synthetic data has ImageNet's 1001 classes); the
 * parts add up to the step. */
static void test_profile(void **state) {
    (void)state;
    char dir[256], path[512];
    tu_make_tmpdir(dir, sizeof dir);
    write_peak_csv(dir);
    char *out = launch(0, dir, "--max_number_of_steps=4 --num_warmup_steps=1 --profile");
    assert_has(out, "profile of lenet: mean over 3 timed steps");
    assert_has(out, "optimizer and other");
    assert_has(out, "the 10 slowest layers");
    assert_has(out, "LeNet/conv2");
    free(out);
    csv c;
    snprintf(path, sizeof path, "%s/profile.csv", dir);
    csv_read(&c, path);
    /* lenet: conv1 relu pool1 conv2 relu pool2 flatten fc3 relu dropout3 fc4 loss, 6 parts */
    assert_int_equal(c.rows, 1 + 12 + 6);
    const double B = 4;
    const struct { const char *layer; double fwd, bwd; } flops[] = {
        {"LeNet/conv1", 2 * B * 28 * 28 * 5 * 5 * 1 * 32, 2 * B * 28 * 28 * 5 * 5 * 1 * 32},
        {"LeNet/conv2", 2 * B * 14 * 14 * 5 * 5 * 32 * 64, 4 * B * 14 * 14 * 5 * 5 * 32 * 64},
        {"LeNet/fc3", 2 * B * 7 * 7 * 64 * 1024, 4 * B * 7 * 7 * 64 * 1024},
        {"LeNet/fc4", 2 * B * 1024 * 1001, 4 * B * 1024 * 1001}, /* synthetic: ImageNet's 1001 */
    };
    int found = 0;
    double layers_ms = 0, parts_ms = 0, step_ms = 0;
    for (int r = 1; r < c.rows; r++) {
        assert_string_equal(csv_get(&c, r, "model_name"), "lenet");
        assert_int_equal(atoi(csv_get(&c, r, "steps")), 3);
        const char *layer = csv_get(&c, r, "layer");
        const double total = atof(csv_get(&c, r, "total_ms"));
        assert_true(total >= 0);
        if (strcmp(csv_get(&c, r, "kind"), "step") == 0) {
            if (strcmp(layer, "(step)") == 0) step_ms = total;
            else parts_ms += total;
            continue;
        }
        layers_ms += total;
        for (size_t k = 0; k < SB_ARRAY_LEN(flops); k++) {
            if (strcmp(layer, flops[k].layer) != 0) continue;
            found++;
            const double fms = atof(csv_get(&c, r, "fwd_ms")), bms = atof(csv_get(&c, r, "bwd_ms"));
            const double fg = atof(csv_get(&c, r, "fwd_gflops")), bg = atof(csv_get(&c, r, "bwd_gflops"));
            /* the CSV rounds ms to 3 decimals and GFLOP/s to 2: compare loosely */
            if (fms > 0.05) assert_true(fabs(fg * fms * 1e6 - flops[k].fwd) <= 0.02 * flops[k].fwd);
            if (bms > 0.05) assert_true(fabs(bg * bms * 1e6 - flops[k].bwd) <= 0.02 * flops[k].bwd);
            assert_true(fabs(atof(csv_get(&c, r, "fwd_pct_of_peak")) - 2 * fg) <= 0.02 * fg + 0.01);
        }
    }
    assert_int_equal(found, 4);
    assert_true(step_ms > 0);
    assert_true(fabs(parts_ms - step_ms) <= 0.01 * step_ms + 0.005);
    assert_true(layers_ms <= step_ms * 1.01 + 0.01); /* layers are inside forward + backward */
    free(c.text);
    tu_remove_tree(dir);
}

static void test_lr_schedule_logged(void **state) {
    (void)state;
    char dir[256], path[512];
    tu_make_tmpdir(dir, sizeof dir);
    /* decay_steps = int(1281167 * e / 4) = 2 for e = 2.5 * 4 / 1281167 */
    char *out = launch(0, dir,
                       "--max_number_of_steps=5 --num_warmup_steps=1 --log_every_n_steps=1 "
                       "--learning_rate=0.1 --num_epochs_per_decay=%.10g "
                       "--learning_rate_decay_factor=0.5 --step_csv=%s/steps.csv",
                       2.5 * 4 / 1281167.0, dir);
    assert_has(out, "global step 1: loss");
    assert_has(out, "learning_rate = 0.1)");
    assert_has(out, "learning_rate = 0.05)");
    assert_has(out, "global step 5: loss");
    assert_has(out, "learning_rate = 0.025)");
    free(out);
    csv c;
    snprintf(path, sizeof path, "%s/steps.csv", dir);
    csv_read(&c, path);
    const double want[] = {0.1, 0.1, 0.05, 0.05, 0.025};
    for (int i = 0; i < 5; i++)
        assert_true(fabs(atof(csv_get(&c, i + 1, "learning_rate")) - want[i]) < 1e-7);
    free(c.text);
    /* without --max_number_of_steps: --default_max_number_of_steps */
    out = launch(0, dir, "--default_max_number_of_steps=3 --num_warmup_steps=1");
    assert_has(out, "up to global step 3");
    assert_has(out, "global step 3: loss");
    free(out);
    tu_remove_tree(dir);
}

static int files_equal(const char *a, const char *b) {
    char *x, *y;
    size_t nx, ny;
    sb_err err;
    if (sb_read_file(a, &x, &nx, &err) || sb_read_file(b, &y, &ny, &err)) fail_msg("%s", err.msg);
    int eq = nx == ny && memcmp(x, y, nx) == 0;
    free(x);
    free(y);
    return eq;
}

static void test_deterministic(void **state) {
    (void)state;
    char dir[256], a[512], b[512];
    tu_make_tmpdir(dir, sizeof dir);
    const char *flags = "--max_number_of_steps=3 --num_warmup_steps=1 --moving_average_decay=0.9 "
                        "--optimizer=adam";
    free(launch(0, dir, "%s --train_dir=%s/a", flags, dir));
    free(launch(0, dir, "%s --train_dir=%s/b", flags, dir));
    snprintf(a, sizeof a, "%s/a/model.ckpt-3", dir);
    snprintf(b, sizeof b, "%s/b/model.ckpt-3", dir);
    assert_true(files_equal(a, b));
    /* another seed gives other weights */
    free(launch(0, dir, "%s --train_dir=%s/c --seed=4", flags, dir));
    snprintf(b, sizeof b, "%s/c/model.ckpt-3", dir);
    assert_false(files_equal(a, b));
    /* batch norm (moving statistics and their averages) on two threads, small images */
    const char *bn = "--model_name=resnet_v1_50 --train_image_size=64 --batch_size=2 "
                     "--threads_per_replica=2 --optimizer=sgd --max_number_of_steps=2 "
                     "--num_warmup_steps=1 --moving_average_decay=0.9 --save_summaries_secs=0";
    free(launch(0, dir, "%s --train_dir=%s/d", bn, dir));
    free(launch(0, dir, "%s --train_dir=%s/e", bn, dir));
    snprintf(a, sizeof a, "%s/d/model.ckpt-2", dir);
    snprintf(b, sizeof b, "%s/e/model.ckpt-2", dir);
    assert_true(files_equal(a, b));
    tu_remove_tree(dir);
}

static void test_nan_stops(void **state) {
    (void)state;
    char dir[256];
    tu_make_tmpdir(dir, sizeof dir);
    char *out = launch(1, dir,
                       "--max_number_of_steps=20 --optimizer=sgd --learning_rate=1e30 "
                       "--learning_rate_decay_type=fixed --train_dir=%s/run",
                       dir);
    assert_has(out, "launch: global step ");
    assert_true(strstr(out, ": loss is NaN") || strstr(out, ": loss is Inf"));
    assert_null(strstr(out, "total images/sec"));
    free(out);
    char path[512];
    snprintf(path, sizeof path, "%s/runs.csv", dir);
    assert_int_not_equal(access(path, F_OK), 0); /* no results row for a diverged run */
    tu_remove_tree(dir);
}

static int64_t ckpt_step(const char *file) {
    ckpt *c;
    sb_err err;
    if (ckpt_open(&c, file, &err)) fail_msg("%s", err.msg);
    int64_t g;
    memcpy(&g, ckpt_find(c, "global_step")->data, 8);
    ckpt_close(c);
    return g;
}

static void test_resume_after_kill(void **state) {
    (void)state;
    char dir[256], cmd[2048], latest[4096];
    tu_make_tmpdir(dir, sizeof dir);
    snprintf(cmd, sizeof cmd,
             "exec %s/launch --model_name=lenet --batch_size=4 --threads_per_replica=1 "
             "--seed=3 --results_csv=%s/runs.csv --max_number_of_steps=1000000 "
             "--save_interval_secs=1 --train_dir=%s/run > %s/log 2>&1",
             getenv("SB_BIN_DIR"), dir, dir, dir);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    char rundir[512];
    snprintf(rundir, sizeof rundir, "%s/run", dir);
    sb_err err;
    int found = 0;
    for (int i = 0; i < 600 && !found; i++) { /* up to 60 s for the first checkpoint */
        usleep(100000);
        found = ckpt_latest(rundir, latest, sizeof latest, &err) == 0;
    }
    assert_true(found);
    usleep(300000);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    /* the newest checkpoint the index names is whole (written atomically) */
    assert_int_equal(ckpt_latest(rundir, latest, sizeof latest, &err), 0);
    int64_t s = ckpt_step(latest);
    assert_true(s >= 1);
    /* as if killed while saving: a temporary next to the checkpoints, removed at restart */
    char stale[4200];
    snprintf(stale, sizeof stale, "%s/model.ckpt-999.tmp.12345", rundir);
    FILE *fp = fopen(stale, "w");
    fputs("half a checkpoint", fp);
    fclose(fp);
    char *out = launch(0, dir, "--max_number_of_steps=%lld --num_warmup_steps=0 --train_dir=%s",
                       (long long)s + 2, rundir);
    char want[4200];
    snprintf(want, sizeof want, "at global step %lld", (long long)s);
    assert_has(out, want);
    snprintf(want, sizeof want, "global step %lld: loss", (long long)s + 2);
    assert_has(out, want);
    assert_has(out, "left by an interrupted save");
    assert_int_not_equal(access(stale, F_OK), 0);
    free(out);
    assert_int_equal(ckpt_latest(rundir, latest, sizeof latest, &err), 0);
    assert_int_equal(ckpt_step(latest), s + 2);
    /* at max steps already: nothing to train, still a row and exit 0 */
    out = launch(0, dir, "--max_number_of_steps=%lld --num_warmup_steps=0 --train_dir=%s",
                 (long long)s + 2, rundir);
    assert_has(out, "nothing to train");
    free(out);
    tu_remove_tree(dir);
}

/* A fresh lenet (1001 classes) initialized with seed: its parameters arena. */
static net *fresh(uint64_t seed) {
    net_options no = {.num_classes = 1001, .batch_size = 1};
    net *n;
    sb_err err;
    assert_int_equal(net_create(&n, "lenet", &no, &err), 0);
    net_alloc(n);
    train_init_params(n, seed);
    return n;
}

static int var_equal(const ckpt *c, const char *ckname, const float *want, size_t count) {
    const ckpt_tensor *t = ckpt_find(c, ckname);
    if (!t) fail_msg("no %s in %s", ckname, ckpt_path(c));
    return t->count == count && memcmp(t->data, want, count * sizeof(float)) == 0;
}

static void test_trainable_scopes_and_ema(void **state) {
    (void)state;
    char dir[256], path[512];
    tu_make_tmpdir(dir, sizeof dir);
    free(launch(0, dir,
                "--max_number_of_steps=3 --num_warmup_steps=1 --trainable_scopes=LeNet/fc4,"
                "LeNet/conv1/biases --moving_average_decay=0.5 --train_dir=%s/run",
                dir));
    snprintf(path, sizeof path, "%s/run/model.ckpt-3", dir);
    ckpt *c;
    sb_err err;
    assert_int_equal(ckpt_open(&c, path, &err), 0);
    net *n = fresh(3);
    int trained = 0, frozen = 0;
    for (int i = 0; i < net_num_vars(n); i++) {
        const net_var *v = net_var_at(n, i);
        const float *init = net_params(n) + v->offset;
        int train = strncmp(v->name, "LeNet/fc4", 9) == 0 ||
                    strcmp(v->name, "LeNet/conv1/biases") == 0;
        if (train) { /* trained, has slots */
            assert_false(var_equal(c, v->name, init, v->count));
            char slot[256];
            snprintf(slot, sizeof slot, "%s/RMSProp_1", v->name);
            assert_non_null(ckpt_find(c, slot));
            trained++;
        } else { /* bit-identical to the initial values, no slots */
            assert_true(var_equal(c, v->name, init, v->count));
            char slot[256];
            snprintf(slot, sizeof slot, "%s/RMSProp", v->name);
            assert_null(ckpt_find(c, slot));
            frozen++;
        }
        /* a moving average for every model variable; different from the trained value */
        char ema[256];
        snprintf(ema, sizeof ema, "%s/ExponentialMovingAverage", v->name);
        const ckpt_tensor *e = ckpt_find(c, ema);
        assert_non_null(e);
        const ckpt_tensor *raw = ckpt_find(c, v->name);
        if (train) assert_memory_not_equal(e->data, raw->data, v->count * sizeof(float));
    }
    assert_int_equal(trained, 3);
    assert_int_equal(frozen, 5);
    assert_non_null(ckpt_find(c, "global_step"));
    ckpt_close(c);
    net_destroy(n);
    /* a scope matching nothing trainable is a usage error */
    char *out = launch(2, dir, "--max_number_of_steps=3 --trainable_scopes=Nope");
    assert_has(out, "--trainable_scopes=Nope selects no trainable variable");
    free(out);
    tu_remove_tree(dir);
}

static void test_fine_tuning(void **state) {
    (void)state;
    char dir[256], path[512], src[512];
    tu_make_tmpdir(dir, sizeof dir);
    free(launch(0, dir, "--max_number_of_steps=2 --num_warmup_steps=1 --train_dir=%s/a", dir));
    snprintf(src, sizeof src, "%s/a/model.ckpt-2", dir);
    /* learning rate 0: the fine-tuned checkpoint holds what was restored or initialized */
    const char *still = "--max_number_of_steps=2 --num_warmup_steps=1 --learning_rate=0 "
                        "--learning_rate_decay_type=fixed --seed=9";
    char *out = launch(0, dir, "%s --checkpoint_path=%s/a --checkpoint_exclude_scopes=LeNet/fc4 "
                       "--train_dir=%s/b", still, dir, dir);
    assert_has(out, "6 variables restored, 2 excluded, 0 missing");
    free(out);
    ckpt *a, *b;
    sb_err err;
    assert_int_equal(ckpt_open(&a, src, &err), 0);
    snprintf(path, sizeof path, "%s/b/model.ckpt-2", dir);
    assert_int_equal(ckpt_open(&b, path, &err), 0);
    int64_t g;
    memcpy(&g, ckpt_find(b, "global_step")->data, 8);
    assert_int_equal(g, 2); /* global_step starts at 0 when fine-tuning */
    net *n = fresh(9);
    for (int i = 0; i < net_num_vars(n); i++) {
        const net_var *v = net_var_at(n, i);
        const ckpt_tensor *ta = ckpt_find(a, v->name);
        if (strncmp(v->name, "LeNet/fc4", 9) == 0)
            assert_true(var_equal(b, v->name, net_params(n) + v->offset, v->count));
        else
            assert_true(var_equal(b, v->name, ta->data, v->count));
    }
    net_destroy(n);
    /* a checkpoint without fc4: an error naming it, or skipped with --ignore_missing_vars */
    ckpt_tensor t[16];
    size_t k = 0;
    for (size_t i = 0; i < ckpt_count(a); i++) {
        const ckpt_tensor *x = ckpt_at(a, i);
        int slashes = 0; /* model variables are LeNet/<layer>/<name>; slots have one more */
        for (const char *q = x->name; *q; q++) slashes += *q == '/';
        if (strncmp(x->name, "LeNet/", 6) == 0 && slashes == 2 &&
            strncmp(x->name, "LeNet/fc4", 9) != 0)
            t[k++] = *x;
    }
    assert_int_equal(k, 6);
    snprintf(path, sizeof path, "%s/partial.ckpt", dir);
    assert_int_equal(ckpt_write(path, t, k, &err), 0);
    out = launch(1, dir, "%s --checkpoint_path=%s --train_dir=%s/c", still, path, dir);
    assert_has(out, "variable LeNet/fc4/weights is not in the checkpoint");
    assert_has(out, path);
    free(out);
    out = launch(0, dir, "%s --checkpoint_path=%s --ignore_missing_vars --train_dir=%s/d", still,
                 path, dir);
    assert_has(out, "6 variables restored, 0 excluded, 2 missing");
    free(out);
    ckpt_close(a);
    ckpt_close(b);
    /* a checkpoint of another head (1000 classes): the shape mismatch names file and variable */
    free(launch(0, dir, "--max_number_of_steps=2 --num_warmup_steps=1 --labels_offset=1 "
                "--train_dir=%s/e", dir));
    out = launch(1, dir, "%s --checkpoint_path=%s/e --train_dir=%s/f", still, dir, dir);
    assert_has(out, "variable LeNet/fc4/weights has shape [1024, 1000] in the checkpoint, the "
                    "model wants [1024, 1001]");
    assert_has(out, "/e/model.ckpt-2");
    free(out);
    /* resuming a run whose checkpoint is corrupt names the file */
    snprintf(path, sizeof path, "%s/e/model.ckpt-2", dir);
    FILE *fp = fopen(path, "r+b");
    fseek(fp, 5000, SEEK_SET);
    fputc(0x55 ^ fgetc(fp), fp);
    fclose(fp);
    out = launch(1, dir, "--max_number_of_steps=3 --labels_offset=1 --train_dir=%s/e", dir);
    assert_has(out, "CRC32C mismatch");
    assert_has(out, path);
    free(out);
    tu_remove_tree(dir);
}

static void test_summaries(void **state) {
    (void)state;
    char dir[256], rundir[512];
    tu_make_tmpdir(dir, sizeof dir);
    free(launch(0, dir, "--max_number_of_steps=3 --num_warmup_steps=1 --save_summaries_secs=1 "
                "--train_dir=%s/run", dir));
    snprintf(rundir, sizeof rundir, "%s/run", dir);
    DIR *d = opendir(rundir);
    char path[1024] = "";
    for (struct dirent *e; (e = readdir(d));)
        if (strncmp(e->d_name, "events.out.tfevents.", 20) == 0)
            snprintf(path, sizeof path, "%s/%s", rundir, e->d_name);
    closedir(d);
    assert_true(path[0]);
    tfr_reader *r;
    sb_err err;
    assert_int_equal(tfr_reader_open(path, &r, &err), 0);
    const uint8_t *data;
    size_t n;
    int records = 0, rc;
    int loss = 0, lr = 0, histo_w = 0, version = 0;
    while ((rc = tfr_reader_next(r, &data, &n, &err)) == 0) {
        records++;
        version += memmem(data, n, "brain.Event:2", 13) != NULL;
        loss += memmem(data, n, "total_loss", 10) != NULL;
        lr += memmem(data, n, "learning_rate", 13) != NULL;
        histo_w += memmem(data, n, "LeNet/fc3/weights", 17) != NULL;
    }
    assert_int_equal(rc, SB_E_NOTFOUND);
    tfr_reader_close(r);
    /* file_version, then scalars and histograms at step 1 and at the end */
    assert_int_equal(version, 1);
    assert_true(records >= 5);
    assert_true(loss >= 2 && lr >= 2 && histo_w >= 2);
    /* --save_summaries_secs=0: no event file */
    free(launch(0, dir, "--max_number_of_steps=2 --num_warmup_steps=1 --save_summaries_secs=0 "
                "--train_dir=%s/quiet", dir));
    snprintf(rundir, sizeof rundir, "%s/quiet", dir);
    d = opendir(rundir);
    for (struct dirent *e; (e = readdir(d));)
        assert_int_not_equal(strncmp(e->d_name, "events.", 7), 0);
    closedir(d);
    tu_remove_tree(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loss_by_hand),
        cmocka_unit_test(test_loss_flags_through_launch),
        cmocka_unit_test(test_results_row_and_step_csv),
        cmocka_unit_test(test_profile),
        cmocka_unit_test(test_lr_schedule_logged),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_nan_stops),
        cmocka_unit_test(test_resume_after_kill),
        cmocka_unit_test(test_trainable_scopes_and_ema),
        cmocka_unit_test(test_fine_tuning),
        cmocka_unit_test(test_summaries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
