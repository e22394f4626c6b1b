/* tests/test_dist.c — data-parallel replicas over Open MPI (dist/, launch --worker_replicas).
 *
 *   correctness  N ranks at batch B reach the weights of 1 process at batch N*B after K SGD steps
 *                (lenet, dropout off: no batch norm, no random masks), N = 1, 2, 3, to 1e-5
 *                relative. This program is its own worker: run with "--worker ..." it trains
 *                through dist/ and train_run (under mpirun, or alone for the reference).
 *   launch       launch --worker_replicas=2 re-executes itself under mpirun, rank 0 writes one
 *                results row (replicas 2, global batch) and the checkpoints; a contradicting
 *                --worker_replicas under mpirun is a usage error.
 *   faults       a rank killed with SIGKILL ends the job within 60 s with a message naming the
 *                lost rank; launch again with the same --train_dir resumes from its checkpoint.
 *
 * Open MPI as root needs OMPI_ALLOW_RUN_AS_ROOT(_CONFIRM), set here for the children. Under
 * AddressSanitizer, LeakSanitizer reports Open MPI's own allocations that live until exit, so the
 * children run with ASAN_OPTIONS=detect_leaks=0 (the test process itself starts no MPI job).
 */
#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "dist/dist.h"
#include "tests/support/testutil.h"
#include "train/train_loop.h"

static char g_self[PATH_MAX];

/* ---------------------------------------------------------------------------------------------
 * Worker mode: train lenet K steps at batch B into dir (rank 0 checkpoints), under MPI when
 * started by mpirun.
 * ------------------------------------------------------------------------------------------- */
static int worker(int B, int K, const char *dir) {
    sb_err err;
    sb_err_clear(&err);
    dist *d = NULL;
    int rank = 0;
    if (dist_under_mpirun()) {
        if (dist_create(&d, &err)) {
            fprintf(stderr, "worker: %s\n", err.msg);
            return 1;
        }
        rank = dist_rank(d);
    }
    train_config c = {0};
    c.model_name = "lenet";
    c.batch_size = B;
    c.num_classes = 10;
    c.weight_decay = 0.00004f;
    c.dropout_keep_prob = 1.0f;
    opt_config_default(&c.opt);
    c.opt.kind = OPT_KIND_SGD;
    lr_config_default(&c.lr);
    c.lr.learning_rate = 0.01f;
    c.lr.decay_type = LR_DECAY_TYPE_FIXED;
    c.lr.batch_size = B;
    c.train_dir = rank == 0 ? dir : NULL;
    c.max_steps = K;
    c.log_every_n_steps = 1000;
    c.max_to_keep = 5;
    c.seed = 7;
    if (d) dist_train_attach(d, &c, 64 << 10); /* small buckets: several per step */
    data_source src;
    dist_shard_synthetic(&src, rank, B, 28, 28, 1, 10, c.seed);
    train_report rep;
    int rc = train_run(&c, &src, &rep, &err);
    data_source_destroy(&src);
    if (rc) fprintf(stderr, "worker: %s\n", err.msg);
    if (d) {
        dist_stats st;
        dist_train_stats(d, &st);
        if (rank == 0 && dist_size(d) > 1)
            printf("worker: %lld exchanges, overlapped %d\n", (long long)st.steps, st.overlapped);
    }
    dist_destroy(d, rc ? 1 : 0);
    return rc ? 1 : 0;
}

/* ---------------------------------------------------------------------------------------------
 * The grads-ready hook of net_backward (what the buckets start from).
 * ------------------------------------------------------------------------------------------- */

typedef struct ready_log {
    net *n;
    size_t calls, last, bad_order;
    float *snap; /* grads as they were when each offset was first reported final */
} ready_log;

static void on_ready(void *ctx, size_t ready) {
    ready_log *r = ctx;
    if (ready > r->last) r->bad_order++;
    /* the newly finished part must not change any more: keep a copy to compare at the end */
    for (size_t i = ready; i < r->last; i++) r->snap[i] = net_grads(r->n)[i];
    if (ready < r->last) r->last = ready;
    r->calls++;
}

static void test_grads_ready_hook(void **state) {
    (void)state;
    /* every model accepts the hook (its trainable variables are in layer order) */
    for (const char *const *m = net_model_names(); *m; m++) {
        net *n = NULL;
        sb_err err;
        net_options o = {.batch_size = 1};
        assert_int_equal(net_create(&n, *m, &o, &err), 0);
        if (net_set_grads_ready_hook(n, on_ready, NULL) != 0) fail_msg("%s refuses the hook", *m);
        net_destroy(n);
    }
    /* lenet: reports never go back, end at 0, and what they declare final stays so */
    net *n = NULL;
    sb_err err;
    net_options o = {.batch_size = 2, .num_classes = 10, .dropout_keep_prob = 1};
    assert_int_equal(net_create(&n, "lenet", &o, &err), 0);
    net_alloc(n);
    train_init_params(n, 3);
    for (size_t i = 0; i < (size_t)2 * 28 * 28; i++) net_input(n)[i] = (float)(i % 7) * 0.1f;
    net_labels(n)[0] = 1;
    net_labels(n)[1] = 4;
    ready_log r = {n, 0, net_grads_len(n), 0, calloc(net_grads_len(n), sizeof(float))};
    assert_int_equal(net_set_grads_ready_hook(n, on_ready, &r), 0);
    net_forward(n, NET_MODE_TRAIN, 1);
    net_backward(n);
    assert_true(r.calls > 4);
    assert_int_equal(r.bad_order, 0);
    assert_int_equal(r.last, 0);
    assert_memory_equal(r.snap, net_grads(n), net_grads_len(n) * sizeof(float));
    free(r.snap);
    net_destroy(n);
}

/* ---------------------------------------------------------------------------------------------
 * Helpers.
 * ------------------------------------------------------------------------------------------- */

static void assert_has(const char *hay, const char *needle) {
    if (!strstr(hay, needle)) fail_msg("expected \"%s\" in output:\n%s", needle, hay);
}

static int have_mpirun(void) { return system("command -v mpirun >/dev/null 2>&1") == 0; }

/* Every float tensor of checkpoint a equals b's within |a-b| <= 1e-7 + 1e-5|b|. */
static void compare_checkpoints(const char *a_path, const char *b_path) {
    ckpt *a = NULL, *b = NULL;
    sb_err err;
    if (ckpt_open(&a, a_path, &err) || ckpt_open(&b, b_path, &err)) fail_msg("%s", err.msg);
    assert_int_equal(ckpt_count(a), ckpt_count(b));
    size_t bad = 0, floats = 0;
    for (size_t i = 0; i < ckpt_count(a); i++) {
        const ckpt_tensor *ta = ckpt_at(a, i), *tb = ckpt_find(b, ta->name);
        if (!tb) fail_msg("%s not in %s", ta->name, b_path);
        assert_int_equal(ta->count, tb->count);
        if (ta->dtype == CKPT_DTYPE_INT64) {
            assert_memory_equal(ta->data, tb->data, 8);
            continue;
        }
        /* relative to the tensor's scale: summation order differs (one GEMM over N*B rows
         * against N GEMMs over B rows and a sum), so elements near 0 differ by rounding of the
         * tensor's magnitude, not their own */
        /* the reader's data may sit at any byte offset of the file: copy before reading */
        float *x = malloc(ta->count * sizeof(float)), *y = malloc(ta->count * sizeof(float));
        memcpy(x, ta->data, ta->count * sizeof(float));
        memcpy(y, tb->data, ta->count * sizeof(float));
        double scale = 0, diff = 0;
        for (size_t k = 0; k < ta->count; k++) {
            scale = fmax(scale, fabs(y[k]));
            diff = fmax(diff, fabs((double)x[k] - y[k]));
        }
        if (diff > 1e-5 * scale) {
            printf("%s: max |diff| %.3g > 1e-5 x max |w| %.3g\n", ta->name, diff, scale);
            bad++;
        }
        free(x);
        free(y);
        floats += ta->count;
    }
    assert_true(floats > 400000); /* lenet's weights, all of them compared */
    ckpt_close(a);
    ckpt_close(b);
    assert_int_equal(bad, 0);
}

static void test_same_weights_as_one_big_batch(void **state) {
    (void)state;
    if (!have_mpirun()) skip();
    char dir[512];
    tu_make_tmpdir(dir, sizeof dir);
    const int B = 4, K = 3;
    for (int n = 1; n <= 3; n++) {
        char *out = NULL;
        int rc = tu_run(&out, "%s --worker %d %d %s/ref%d", g_self, n * B, K, dir, n);
        if (rc) fail_msg("reference run failed:\n%s", out);
        free(out);
        rc = tu_run(&out, "mpirun -np %d --oversubscribe --bind-to none %s --worker %d %d %s/dist%d",
                    n, g_self, B, K, dir, n);
        if (rc) fail_msg("mpirun -np %d failed:\n%s", n, out);
        if (n > 1) assert_has(out, "overlapped 1");
        free(out);
        char a[700], b[700];
        snprintf(a, sizeof a, "%s/dist%d/model.ckpt-%d", dir, n, K);
        snprintf(b, sizeof b, "%s/ref%d/model.ckpt-%d", dir, n, K);
        printf("%d ranks x batch %d against 1 x batch %d:\n", n, B, n * B);
        compare_checkpoints(a, b);
    }
    tu_remove_tree(dir);
}

/* The value of column `col` in the last row of a CSV file (into buf). */
static void csv_last(const char *path, const char *col, char *buf, size_t n) {
    char *text = NULL;
    size_t len;
    sb_err err;
    if (sb_read_file(path, &text, &len, &err)) fail_msg("%s", err.msg);
    char *hdr = text, *nl = strchr(text, '\n');
    assert_non_null(nl);
    *nl = 0;
    char *last = nl + 1, *p = last;
    while ((p = strchr(p, '\n')) && p[1]) last = ++p;
    int idx = -1, k = 0;
    for (char *s = NULL, *t = strtok_r(hdr, ",", &s); t; t = strtok_r(NULL, ",", &s), k++)
        if (strcmp(t, col) == 0) idx = k;
    if (idx < 0) fail_msg("no column %s in %s", col, path);
    /* field idx of the row, RFC 4180 quotes honoured (cflags holds commas under asan) */
    size_t o = 0;
    int q = 0;
    k = 0;
    for (const char *c = last; *c && *c != '\n' && k <= idx; c++) {
        if (q && *c == '"' && c[1] == '"') {
            if (k == idx && o + 1 < n) buf[o++] = '"';
            c++;
        } else if (*c == '"') {
            q = !q;
        } else if (!q && *c == ',') {
            k++;
        } else if (k == idx && o + 1 < n) {
            buf[o++] = *c;
        }
    }
    buf[o] = 0;
    free(text);
}

static void test_launch_worker_replicas(void **state) {
    (void)state;
    if (!have_mpirun()) skip();
    char dir[512], v[64];
    tu_make_tmpdir(dir, sizeof dir);
    char *out = NULL;
    int rc = tu_run(&out,
                    "{bin}/launch --model_name=lenet --batch_size=4 --optimizer=sgd "
                    "--worker_replicas=2 --max_number_of_steps=4 --num_warmup_steps=1 "
                    "--train_dir=%s/run --results_csv=%s/runs.csv",
                    dir, dir);
    if (rc) fail_msg("launch --worker_replicas=2 failed (%d):\n%s", rc, out);
    assert_has(out, "2 replicas (MPI ranks) on 1 host");
    assert_has(out, "total images/sec");
    free(out);
    csv_last(strcat(strcpy((char[600]){0}, dir), "/runs.csv"), "replicas", v, sizeof v);
    assert_string_equal(v, "2");
    csv_last(strcat(strcpy((char[600]){0}, dir), "/runs.csv"), "global_batch_size", v, sizeof v);
    assert_string_equal(v, "8");
    char *csv = NULL;
    size_t len;
    sb_read_file(strcat(strcpy((char[600]){0}, dir), "/runs.csv"), &csv, &len, NULL);
    int rows = 0;
    for (char *p = csv; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) rows++;
    free(csv);
    assert_int_equal(rows, 2); /* header + rank 0's row: the other rank writes nothing */
    struct stat st;
    assert_int_equal(stat(strcat(strcpy((char[600]){0}, dir), "/run/model.ckpt-4"), &st), 0);

    rc = tu_run(&out,
                "mpirun -np 2 --oversubscribe {bin}/launch --model_name=lenet --batch_size=4 "
                "--worker_replicas=3 --max_number_of_steps=4 --results_csv=%s/runs.csv",
                dir);
    assert_int_not_equal(rc, 0);
    assert_has(out, "flag --worker_replicas=3, but mpirun started 2 ranks");
    free(out);
    tu_remove_tree(dir);
}

/* ---------------------------------------------------------------------------------------------
 * Faults.
 * ------------------------------------------------------------------------------------------- */

/* pid of the child of `parent` whose environment has OMPI_COMM_WORLD_RANK=rank, or 0. */
static pid_t rank_pid(pid_t parent, int rank) {
    char path[128], want[64], buf[8192];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)parent, (int)parent);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    snprintf(want, sizeof want, "OMPI_COMM_WORLD_RANK=%d", rank);
    pid_t found = 0;
    int child;
    while (!found && fscanf(f, "%d", &child) == 1) {
        snprintf(path, sizeof path, "/proc/%d/environ", child);
        FILE *e = fopen(path, "r");
        if (!e) continue;
        size_t n = fread(buf, 1, sizeof buf - 1, e);
        fclose(e);
        for (size_t i = 0; i < n; i += strlen(buf + i) + 1) {
            buf[n] = 0;
            if (strcmp(buf + i, want) == 0) found = child;
        }
    }
    fclose(f);
    return found;
}

static void test_killed_rank_ends_job_and_resume(void **state) {
    (void)state;
    if (!have_mpirun()) skip();
    char dir[512], log[600], cmd[2048];
    tu_make_tmpdir(dir, sizeof dir);
    snprintf(log, sizeof log, "%s/log.txt", dir);
    const char *bin = getenv("SB_BIN_DIR") ? getenv("SB_BIN_DIR") : "bin";
    snprintf(cmd, sizeof cmd,
             "exec %s/launch --model_name=lenet --batch_size=4 --optimizer=sgd "
             "--worker_replicas=2 --max_number_of_steps=1000000 --save_interval_secs=1 "
             "--log_every_n_steps=1000 --train_dir=%s/run --results_csv=%s/runs.csv >%s 2>&1",
             bin, dir, dir, log);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    /* wait for a checkpoint (rank 0 saves every second) */
    char idx[600];
    snprintf(idx, sizeof idx, "%s/run/checkpoint", dir);
    struct stat st;
    for (int i = 0; i < 600 && stat(idx, &st) != 0; i++) usleep(100000);
    assert_int_equal(stat(idx, &st), 0);
    pid_t victim = 0;
    for (int i = 0; i < 50 && !(victim = rank_pid(pid, 1)); i++) usleep(100000);
    if (!victim) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("no rank 1 among mpirun's (pid %d) children", (int)pid);
    }
    time_t t0 = time(NULL);
    assert_int_equal(kill(victim, SIGKILL), 0);
    int status = 0;
    pid_t w = 0;
    while ((w = waitpid(pid, &status, WNOHANG)) == 0 && time(NULL) - t0 < 60) usleep(100000);
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("the job was still running 60 s after rank 1 was killed");
    }
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
    char *text = NULL;
    size_t len;
    assert_int_equal(sb_read_file(log, &text, &len, NULL), 0);
    assert_has(text, "rank 1");
    assert_has(text, "signal 9");
    free(text);

    /* the same train_dir again: resumes from the last checkpoint and trains 2 more steps */
    char latest[1024];
    sb_err err;
    assert_int_equal(ckpt_latest(strcat(strcpy((char[600]){0}, dir), "/run"), latest,
                                 sizeof latest, &err),
                     0);
    long long step = atoll(strrchr(latest, '-') + 1);
    assert_true(step > 0);
    char *out = NULL;
    int rc = tu_run(&out,
                    "{bin}/launch --model_name=lenet --batch_size=4 --optimizer=sgd "
                    "--worker_replicas=2 --max_number_of_steps=%lld --num_warmup_steps=1 "
                    "--train_dir=%s/run --results_csv=%s/runs.csv",
                    step + 2, dir, dir);
    if (rc) fail_msg("resume failed:\n%s", out);
    char want[1200];
    snprintf(want, sizeof want, "resuming from %s at global step %lld", latest, step);
    assert_has(out, want);
    free(out);
    tu_remove_tree(dir);
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "--worker") == 0)
        return worker(atoi(argv[2]), atoi(argv[3]), argv[4]);
    ssize_t n = readlink("/proc/self/exe", g_self, sizeof g_self - 1);
    if (n <= 0) snprintf(g_self, sizeof g_self, "%s", argv[0]);
    else g_self[n] = 0;
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 0);
    setenv("ASAN_OPTIONS", "detect_leaks=0", 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grads_ready_hook),
        cmocka_unit_test(test_same_weights_as_one_big_batch),
        cmocka_unit_test(test_launch_worker_replicas),
        cmocka_unit_test(test_killed_rank_ends_job_and_resume),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
