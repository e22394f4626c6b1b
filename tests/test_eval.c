/* tests/test_eval.c — eval_image_classifier on checkpoints launch wrote (lenet, synthetic data):
 * a trained checkpoint scores on the examples it was trained on, a train_dir means its newest
 * checkpoint, --max_num_batches and --batch_size set the examples counted, --moving_average_decay
 * reads the ExponentialMovingAverage tensors (and says so when they are missing),
 * --labels_offset changes the head (a shape mismatch naming the variable), a corrupt checkpoint
 * is named, every evaluation appends a row to the results CSV, and --eval_dir, --quantize,
 * --dry_run, --print_model do what their help says. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/sb.h"
#include "datasets/datasets.h"
#include "tests/support/testutil.h"

static void assert_has(const char *hay, const char *needle) {
    if (!strstr(hay, needle)) fail_msg("'%s' not in output:\n%s", needle, hay);
}

static char *run(int want, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *run(int want, const char *fmt, ...) {
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char *out;
    int rc = tu_run(&out, "%s", cmd);
    if (rc != want) fail_msg("%s: exit %d, want %d; output:\n%s", cmd, rc, want, out);
    return out;
}

static double metric(const char *out, const char *name) {
    const char *p = strstr(out, name);
    if (!p) fail_msg("no %s in:\n%s", name, out);
    return atof(p + strlen(name));
}

#define LAUNCH "{bin}/launch --model_name=lenet --batch_size=8 --threads_per_replica=1 --seed=5 "
#define EVAL "{bin}/eval_image_classifier --model_name=lenet --threads_per_replica=1 --seed=5 "

static void test_eval_trained_checkpoint(void **state) {
    (void)state;
    char dir[256];
    tu_make_tmpdir(dir, sizeof dir);
    /* sgd on one fixed batch of 8 learns it: the moving averages lag behind the weights */
    free(run(0, LAUNCH "--optimizer=sgd --learning_rate=0.1 --learning_rate_decay_type=fixed "
                       "--weight_decay=0 --max_number_of_steps=40 --num_warmup_steps=1 "
                       "--moving_average_decay=0.9 --train_dir=%s/run --results_csv=%s/runs.csv",
             dir, dir));
    char *out = run(0, EVAL "--checkpoint_path=%s/run --batch_size=8 --max_num_batches=2 "
                            "--results_csv=%s/evals.csv",
                    dir, dir);
    assert_has(out, "model.ckpt-40 (global step 40)");
    double acc = metric(out, "eval/Accuracy["), r5 = metric(out, "eval/Recall_5[");
    assert_true(acc >= 0.75); /* learnt its batch */
    assert_true(r5 >= acc);
    assert_has(out, "16 examples");
    free(out);
    /* the moving averages are another set of weights */
    out = run(0, EVAL "--checkpoint_path=%s/run/model.ckpt-40 --batch_size=8 --max_num_batches=1 "
                      "--moving_average_decay=0.9 --results_csv=%s/evals.csv",
              dir, dir);
    assert_has(out, "moving averages");
    assert_has(out, "8 examples");
    metric(out, "eval/Accuracy[");
    free(out);
    /* the CSV has a row per evaluation */
    char path[512], *text;
    size_t n;
    sb_err err;
    snprintf(path, sizeof path, "%s/evals.csv", dir);
    assert_int_equal(sb_read_file(path, &text, &n, &err), 0);
    assert_has(text, "timestamp,git_sha,build,cpu_model,threads,model_name,checkpoint,global_step");
    int lines = 0;
    for (char *p = text; *p; p++) lines += *p == '\n';
    assert_int_equal(lines, 3);
    assert_has(text, ",lenet,");
    assert_has(text, ",true,"); /* moving_average column */
    free(text);

    /* a checkpoint without moving averages, evaluated with them: named */
    free(run(0, LAUNCH "--max_number_of_steps=2 --num_warmup_steps=1 --train_dir=%s/plain "
                       "--results_csv=%s/runs.csv",
             dir, dir));
    out = run(1, EVAL "--checkpoint_path=%s/plain --moving_average_decay=0.9 --batch_size=8 "
                      "--max_num_batches=1 --results_csv=%s/evals.csv",
              dir, dir);
    assert_has(out, "no moving average LeNet/conv1/weights/ExponentialMovingAverage");
    free(out);
    /* --labels_offset=1: a 1000-class head, the checkpoint has 1001 */
    out = run(1, EVAL "--checkpoint_path=%s/plain --labels_offset=1 --batch_size=8 "
                      "--max_num_batches=1 --results_csv=%s/evals.csv",
              dir, dir);
    assert_has(out, "LeNet/fc4/weights has shape [1024, 1001] in the checkpoint, the model wants "
                    "[1024, 1000]");
    free(out);
    /* a corrupt checkpoint is named */
    snprintf(path, sizeof path, "%s/plain/model.ckpt-2", dir);
    FILE *fp = fopen(path, "r+b");
    fseek(fp, 4096, SEEK_SET);
    fputc(0x5a ^ fgetc(fp), fp);
    fclose(fp);
    out = run(1, EVAL "--checkpoint_path=%s --batch_size=8 --max_num_batches=1 "
                      "--results_csv=%s/evals.csv",
              path, dir);
    assert_has(out, path);
    assert_has(out, "CRC32C mismatch");
    free(out);
    /* no checkpoint at all */
    out = run(1, EVAL "--checkpoint_path=%s/none --results_csv=%s/evals.csv", dir, dir);
    assert_has(out, "/none");
    free(out);
    tu_remove_tree(dir);
}

/* slim's flags that change what eval does besides scoring: --eval_dir gets an event file with
 * the two metrics at the checkpoint's step (the accuracy's float bytes as printed), --quantize
 * is refused, --dry_run evaluates nothing, --print_model needs no checkpoint, launch-only flags
 * are reported. */
static void test_eval_flags(void **state) {
    (void)state;
    char dir[256], path[512];
    tu_make_tmpdir(dir, sizeof dir);
    free(run(0, LAUNCH "--max_number_of_steps=3 --num_warmup_steps=1 --train_dir=%s/run "
                       "--results_csv=%s/runs.csv",
             dir, dir));
    char *out = run(0, EVAL "--checkpoint_path=%s/run --batch_size=8 --max_num_batches=2 "
                            "--eval_dir=%s/ev --results_csv=%s/evals.csv",
                    dir, dir, dir);
    const float acc = (float)metric(out, "eval/Accuracy[");
    assert_has(out, "summaries written to");
    free(out);
    snprintf(path, sizeof path, "%s/ev", dir);
    DIR *d = opendir(path);
    assert_non_null(d);
    char ev[1024] = "";
    for (struct dirent *e; (e = readdir(d));)
        if (strncmp(e->d_name, "events.out.tfevents.", 20) == 0)
            snprintf(ev, sizeof ev, "%s/%s", path, e->d_name);
    closedir(d);
    assert_true(ev[0] != 0);
    tfr_reader *r;
    sb_err err;
    assert_int_equal(tfr_reader_open(ev, &r, &err), 0);
    const uint8_t *data;
    size_t n;
    int tags = 0, value = 0;
    while (tfr_reader_next(r, &data, &n, &err) == 0) {
        tags += memmem(data, n, "eval/Accuracy", 13) != NULL;
        tags += memmem(data, n, "eval/Recall_5", 13) != NULL;
        value += memmem(data, n, &acc, sizeof acc) != NULL;
    }
    tfr_reader_close(r);
    assert_int_equal(tags, 2);
    assert_true(value >= 1);

    out = run(2, EVAL "--checkpoint_path=%s/run --quantize", dir);
    assert_has(out, "--quantize");
    free(out);
    out = run(0, EVAL "--checkpoint_path=%s/run --dry_run --profile --results_csv=%s/dry.csv", dir,
              dir);
    assert_has(out, "nothing evaluated");
    assert_has(out, "--profile is a launch (training) flag");
    free(out);
    snprintf(path, sizeof path, "%s/dry.csv", dir);
    assert_int_not_equal(access(path, F_OK), 0);
    out = run(0, EVAL "--checkpoint_path=%s/none --print_model", dir);
    assert_has(out, "LeNet/conv2");
    free(out);
    tu_remove_tree(dir);
}

/* Real data: Debian's dataset-fashion-mnist converted, lenet trained briefly, evaluated on the
 * test split through the input pipeline. The full bar (>= 89%) takes a longer schedule; this one
 * proves learning (chance is 10%). */
static void test_fashion_mnist_learns(void **state) {
    (void)state;
    const char *bin = getenv("SB_BIN_DIR");
    if (bin && strstr(bin, "/asan/")) { /* minutes under the sanitizers; learning is the same */
        print_message("asan build: skipped (run in the optimized builds)\n");
        skip();
    }
    const char *src = "/usr/share/datasets/fashion-mnist";
    char probe[256];
    snprintf(probe, sizeof probe, "%s/train-images-idx3-ubyte.gz", src);
    FILE *fp = fopen(probe, "rb");
    if (!fp) {
        print_message("no %s (Debian package dataset-fashion-mnist): skipped\n", probe);
        skip();
    }
    fclose(fp);
    char dir[256];
    tu_make_tmpdir(dir, sizeof dir);
    free(run(0, "{bin}/download_and_convert_data --dataset_name=fashion_mnist --dataset_dir=%s/data "
                "--source_url=file://%s", dir, src));
    char *out = run(0, "{bin}/launch --model_name=lenet --dataset_name=fashion_mnist "
                       "--dataset_dir=%s/data --batch_size=50 --max_number_of_steps=120 "
                       "--optimizer=sgd --learning_rate=0.05 --learning_rate_decay_type=fixed "
                       "--num_preprocessing_threads=1 --train_dir=%s/run --results_csv=%s/runs.csv",
                    dir, dir, dir);
    assert_has(out, "global step 120: loss");
    free(out);
    out = run(0, "{bin}/eval_image_classifier --model_name=lenet --dataset_name=fashion_mnist "
                 "--dataset_dir=%s/data --checkpoint_path=%s/run --max_num_batches=20 "
                 "--num_preprocessing_threads=1 --results_csv=%s/evals.csv",
              dir, dir, dir);
    double acc = metric(out, "eval/Accuracy[");
    print_message("fashion_mnist top-1 after 120 steps: %.3f\n", acc);
    assert_true(acc >= 0.5);
    assert_has(out, "2000 examples");
    free(out);
    tu_remove_tree(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eval_trained_checkpoint),
        cmocka_unit_test(test_eval_flags),
        cmocka_unit_test(test_fashion_mnist_learns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
