/* tests/test_launch.c — the launch command as a user meets it: `make run`'s line exits 0 and
 * prints the resolved configuration, --version names the build variant, --help/--helpfull list
 * every TF-slim train flag with slim's default (the list below is transcribed from
 * research/slim/train_image_classifier.py, independently of flags/train.def), and every usage
 * error exits 2 with a message naming the flag (did-you-mean, file:line for flagfiles, enum
 * choices, combinations slimbench refuses). Runs $SB_BIN_DIR/launch through tu_run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/sb.h"
#include "tests/support/testutil.h"

typedef struct slim_flag {
    const char *name, *def;
    char type;
} slim_flag;

static const slim_flag slim_train[] = {
    {"master", "", 's'},
    {"train_dir", "/tmp/tfmodel/", 's'},
    {"num_clones", "1", 'i'},
    {"clone_on_cpu", "False", 'b'},
    {"worker_replicas", "1", 'i'},
    {"num_ps_tasks", "0", 'i'},
    {"num_readers", "4", 'i'},
    {"num_preprocessing_threads", "4", 'i'},
    {"log_every_n_steps", "10", 'i'}, /* slimbench: 5, deliberately */
    {"save_summaries_secs", "600", 'i'},
    {"save_interval_secs", "600", 'i'},
    {"task", "0", 'i'},
    {"weight_decay", "0.00004", 'f'},
    {"optimizer", "rmsprop", 's'},
    {"adadelta_rho", "0.95", 'f'},
    {"adagrad_initial_accumulator_value", "0.1", 'f'},
    {"adam_beta1", "0.9", 'f'},
    {"adam_beta2", "0.999", 'f'},
    {"opt_epsilon", "1.0", 'f'},
    {"ftrl_learning_rate_power", "-0.5", 'f'},
    {"ftrl_initial_accumulator_value", "0.1", 'f'},
    {"ftrl_l1", "0.0", 'f'},
    {"ftrl_l2", "0.0", 'f'},
    {"momentum", "0.9", 'f'},
    {"rmsprop_momentum", "0.9", 'f'},
    {"rmsprop_decay", "0.9", 'f'},
    {"quantize_delay", "-1", 'i'},
    {"learning_rate_decay_type", "exponential", 's'},
    {"learning_rate", "0.01", 'f'},
    {"end_learning_rate", "0.0001", 'f'},
    {"label_smoothing", "0.0", 'f'},
    {"learning_rate_decay_factor", "0.94", 'f'},
    {"num_epochs_per_decay", "2.0", 'f'},
    {"sync_replicas", "False", 'b'},
    {"replicas_to_aggregate", "1", 'i'},
    {"moving_average_decay", NULL, 'f'},
    {"dataset_name", "imagenet", 's'},
    {"dataset_split_name", "train", 's'},
    {"dataset_dir", NULL, 's'},
    {"labels_offset", "0", 'i'},
    {"model_name", "inception_v3", 's'},
    {"preprocessing_name", NULL, 's'},
    {"batch_size", "32", 'i'},
    {"train_image_size", NULL, 'i'},
    {"max_number_of_steps", NULL, 'i'},
    {"use_grayscale", "False", 'b'},
    {"checkpoint_path", NULL, 's'},
    {"checkpoint_exclude_scopes", NULL, 's'},
    {"trainable_scopes", NULL, 's'},
    {"ignore_missing_vars", "False", 'b'},
};


static const char *const ours[] = {"num_warmup_steps", "results_csv", "step_csv",
                                   "threads_per_replica", "seed", "synthetic_data", "print_model",
                                   "profile", "hosts", "hostfile", "version",
                                   "default_max_number_of_steps", "dry_run"};

/* Run launch; fail unless it exits with want. The output (stdout+stderr) goes to *out. */
static void run_expect(char **out, int want, const char *args) {
    int rc = tu_run(out, "{bin}/launch %s", args);
    if (rc != want) fail_msg("launch %s: exit %d, want %d; output:\n%s", args, rc, want, *out);
}

#define assert_has(out, s)                                                                   \
    do {                                                                                     \
        if (!strstr((out), (s))) fail_msg("output lacks \"%s\":\n%s", (s), (out));         \
    } while (0)

static void expect(int want, const char *args, const char *needle) {
    char *out;
    run_expect(&out, want, args);
    assert_has(out, needle);
    free(out);
}

static void test_make_run_line(void **state) {
    (void)state;
    char *out;
    run_expect(&out, 0, "--model_name=vgg_16 --batch_size=32 --optimizer=rmsprop "
                              "--max_number_of_steps=8 --num_warmup_steps=2 --dry_run");
    assert_has(out, "* --model_name=vgg_16\n");
    assert_has(out, "* --batch_size=32\n");
    assert_has(out, "* --num_warmup_steps=2\n");
    assert_has(out, "  --learning_rate=0.01\n"); /* defaults are listed, unmarked */
    assert_has(out, "  --dataset_dir=<None>\n");
    assert_has(out, "  --log_every_n_steps=5\n");
    assert_has(out, "--dry_run: flags parsed and checked; nothing trained");
    /* every flag of both tables is in the configuration */
    for (size_t i = 0; i < SB_ARRAY_LEN(slim_train); i++) {
        char needle[128];
        snprintf(needle, sizeof needle, " --%s=", slim_train[i].name);
        assert_has(out, needle);
    }
    for (size_t i = 0; i < SB_ARRAY_LEN(ours); i++) {
        char needle[128];
        snprintf(needle, sizeof needle, " --%s=", ours[i]);
        assert_has(out, needle);
    }
    free(out);
}

static void test_version(void **state) {
    (void)state;
    char *out;
    run_expect(&out, 0, "--version");
    char want[128];
    snprintf(want, sizeof want, "build:  %s", sb_build_variant());
    assert_has(out, want);
    assert_has(out, "slimbench ");
    assert_has(out, "cflags:");
    assert_null(strstr(out, "configuration")); /* --version does not go on */
    free(out);
}

/* The "(default: ...)" text of --name in help output, or NULL if --name is not listed. */
static char *help_default(const char *help, const char *name) {
    char key[128];
    const char *p = NULL;
    snprintf(key, sizeof key, "\n  --%s:", name);
    if (!(p = strstr(help, key))) {
        snprintf(key, sizeof key, "\n  --[no]%s:", name);
        p = strstr(help, key);
    }
    if (!p) return NULL;
    const char *d = strstr(p, "(default: ");
    if (!d) return NULL;
    d += strlen("(default: ");
    const char *e = strstr(d, ")\n");
    if (!e) return NULL;
    char *r = malloc((size_t)(e - d) + 1);
    memcpy(r, d, (size_t)(e - d));
    r[e - d] = '\0';
    return r;
}

static void check_help_lists_slim(const char *help) {
    const char *train = strstr(help, "\ntrain_image_classifier.py:\n");
    assert_non_null(train);
    for (size_t i = 0; i < SB_ARRAY_LEN(slim_train); i++) {
        const slim_flag *f = &slim_train[i];
        char *d = help_default(train, f->name);
        if (!d) fail_msg("help lacks --%s with its default", f->name);
        const char *want = f->def;
        if (strcmp(f->name, "log_every_n_steps") == 0) want = "5"; /* the deliberate change */
        if (!want) {
            if (strcmp(d, "None") != 0) fail_msg("--%s: default %s, slim's None", f->name, d);
        } else {
            size_t l = strlen(d);
            if (l < 2 || d[0] != '\'' || d[l - 1] != '\'')
                fail_msg("--%s: default %s not quoted", f->name, d);
            d[l - 1] = '\0';
            const char *v = d + 1;
            switch (f->type) {
            case 'b':
                assert_string_equal(v, strcmp(want, "True") == 0 ? "true" : "false");
                break;
            case 'i': assert_string_equal(v, want); break;
            case 'f':
                if (strtod(v, NULL) != strtod(want, NULL))
                    fail_msg("--%s: default %s, slim's %s", f->name, v, want);
                break;
            default: assert_string_equal(v, want);
            }
        }
        free(d);
    }
}

static void test_help(void **state) {
    (void)state;
    char *out;
    run_expect(&out, 0, "--help");
    assert_has(out, "USAGE: launch [flags]");
    check_help_lists_slim(out);
    assert_has(out, "Try --helpfull");
    assert_null(strstr(out, "\nslimbench:\n"));
    assert_null(strstr(out, "configuration"));
    free(out);
    run_expect(&out, 0, "--batch_size=3 --helpshort");
    assert_has(out, "USAGE: launch [flags]");
    free(out);
}

static void test_helpfull(void **state) {
    (void)state;
    char *out;
    run_expect(&out, 0, "--helpfull");
    check_help_lists_slim(out);
    /* sections in absl's order: the main module, ours, absl.app, absl.flags */
    const char *train = strstr(out, "\ntrain_image_classifier.py:\n");
    const char *sb = strstr(out, "\nslimbench:\n");
    const char *app = strstr(out, "\nabsl.app:\n");
    const char *fl = strstr(out, "\nabsl.flags:\n");
    assert_true(train && sb && app && fl);
    assert_true(train < sb && sb < app && app < fl);
    for (size_t i = 0; i < SB_ARRAY_LEN(ours); i++) {
        char *d = help_default(sb, ours[i]);
        if (!d) fail_msg("--helpfull lacks --%s in the slimbench section", ours[i]);
        free(d);
    }
    char *d = help_default(sb, "num_warmup_steps");
    assert_string_equal(d, "'2'");
    free(d);
    d = help_default(sb, "results_csv");
    assert_string_equal(d, "'results/runs.csv'");
    free(d);
    assert_has(out, "  --[no]sync_replicas:");
    assert_has(out, "(a positive integer)");
    assert_has(out, "(one of <adadelta|adagrad|adam|ftrl|momentum|sgd|rmsprop>)");
    assert_has(out, "  --flagfile:");
    assert_has(out, "  --undefok:");
    free(out);
}

static void test_usage_errors_exit_2(void **state) {
    (void)state;
    char *out;
    run_expect(&out, 2, "--optimzer=adam");
    assert_has(out, "launch: unknown command line flag --optimzer (did you mean --optimizer?)");
    assert_has(out, "Pass --help or --helpfull");
    free(out);
    expect(2, "--batch_size=32x", "flag --batch_size=32x: not an integer");
    expect(2, "--batch_size=4294967296", "flag --batch_size=4294967296: out of range");
    expect(2, "--batch_size", "flag --batch_size: missing value");
    expect(2, "--optimizer=adamw",
           "value should be one of <adadelta|adagrad|adam|ftrl|momentum|sgd|rmsprop>");
    expect(2, "--model_name=vgg16",
           "<vgg_a|vgg_16|vgg_19|resnet_v1_50|resnet_v1_101|resnet_v1_152|resnet_v1_200|"
           "resnet_v2_50|resnet_v2_101|resnet_v2_152|resnet_v2_200|lenet|cifarnet|inception_v1|"
           "inception_v3>");
    expect(2, "--dataset_name=coco", "<imagenet|mnist|fashion_mnist|cifar10|flowers|synthetic>");
    expect(2, "--sync_replicas=yes", "flag --sync_replicas=yes: not a boolean");
    expect(2, "--nosync_replicas=false", "--nosync_replicas does not take an argument");
    expect(2, "--learning_rate=fast", "flag --learning_rate=fast: not a number");
    expect(2, "--train_image_size=0", "flag --train_image_size=0: out of range");
    /* a boolean's value as the next argument is a stray positional */
    expect(2, "--sync_replicas false", "unexpected argument 'false'");
    expect(2, "-- --batch_size=3", "unexpected argument '--batch_size=3'");
    expect(2, "--flagfile=/nonexistent/x.flags", "flagfile /nonexistent/x.flags: No such file");
}

static void test_refused_combinations(void **state) {
    (void)state;
    expect(2, "--num_ps_tasks=1", "flag --num_ps_tasks=1: slimbench has no parameter servers");
    expect(2, "--quantize_delay=0", "flag --quantize_delay=0: quantized training is not built");
    expect(2, "--num_clones=2", "flag --num_clones=2: model clones are not supported");
    expect(2, "--sync_replicas --replicas_to_aggregate=0",
           "--sync_replicas needs --replicas_to_aggregate >= 1");
    expect(0, "--replicas_to_aggregate=0 --dry_run", "nothing trained");
    expect(2, "--hosts=a,b --hostfile=h", "give one or the other");
    expect(2, "--max_number_of_steps=2 --num_warmup_steps=2", "leaves no timed steps");
    /* train/'s optimizer and schedule checks, as usage errors naming the flag */
    expect(2, "--optimizer=ftrl --ftrl_learning_rate_power=0.5",
           "--ftrl_learning_rate_power=0.5: needs to be negative or zero");
    expect(0, "--optimizer=sgd --ftrl_learning_rate_power=0.5 --dry_run", "nothing trained");
    expect(2, "--optimizer=adagrad --adagrad_initial_accumulator_value=0",
           "--adagrad_initial_accumulator_value=0");
    expect(2, "--batch_size=100000000 --num_epochs_per_decay=0.001", "decay_steps");
    expect(0, "--batch_size=100000000 --num_epochs_per_decay=0.001 "
              "--learning_rate_decay_type=fixed --dry_run", "nothing trained");
    /* accepted-and-ignored flags run, with a warning */
    expect(0, "--master=grpc://x:2222 --clone_on_cpu --dry_run",
           "--master has no effect in slimbench");
}

static void test_flagfiles_and_undefok(void **state) {
    (void)state;
    char dir[256], args[1024];
    tu_make_tmpdir(dir, sizeof dir);
    char path[512];
    snprintf(path, sizeof path, "%s/run.flags", dir);
    FILE *fp = fopen(path, "w");
    fputs("# vgg run\n--model_name=vgg_16\n--flagfile=more.flags\n", fp);
    fclose(fp);
    snprintf(path, sizeof path, "%s/more.flags", dir);
    fp = fopen(path, "w");
    fputs("--batch_size=16\n--flagfile=run.flags\n", fp);
    fclose(fp);
    snprintf(args, sizeof args, "--flagfile=%s/run.flags --dry_run", dir);
    char *out;
    run_expect(&out, 2, args);
    char want[700];
    snprintf(want, sizeof want, "%s/more.flags:2: cyclic flagfile", dir);
    assert_has(out, want);
    free(out);
    fp = fopen(path, "w");
    fputs("--batch_size=16\n--optimizer=sgd\n", fp);
    fclose(fp);
    run_expect(&out, 0, args);
    assert_has(out, "* --model_name=vgg_16\n");
    assert_has(out, "* --batch_size=16\n");
    assert_has(out, "* --optimizer=sgd\n");
    free(out);
    expect(0, "--undefok=variable_update,nodistortions --variable_update=parameter_server "
              "--nodistortions --dry_run", "nothing trained");
    expect(2, "--variable_update=replicated", "unknown command line flag --variable_update");
    tu_remove_tree(dir);
}

/* --print_model describes every net in the factory and trains nothing; through the command line
 * the published slim counts (1000 classes = --labels_offset=1) come out, and =dot is pure
 * Graphviz on stdout. */
static void test_print_model_every_net(void **state) {
    (void)state;
    static const char *const models[] = {
        "vgg_a", "vgg_16", "vgg_19", "resnet_v1_50", "resnet_v1_101", "resnet_v1_152",
        "resnet_v1_200", "resnet_v2_50", "resnet_v2_101", "resnet_v2_152", "resnet_v2_200",
        "lenet", "cifarnet", "inception_v1", "inception_v3"};
    char args[256], want[64], *out;
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        snprintf(args, sizeof args, "--model_name=%s --print_model --results_csv=/nonexistent/x.csv",
                 models[i]);
        run_expect(&out, 0, args);
        snprintf(want, sizeof want, "%s: batch 32", models[i]);
        assert_has(out, want);
        assert_has(out, "trainable parameters");
        assert_has(out, "GFLOPs per image forward");
        if (strstr(out, "images/sec")) fail_msg("--print_model trained %s:\n%s", models[i], out);
        free(out);
    }
    run_expect(&out, 0, "--model_name=vgg_16 --labels_offset=1 --print_model");
    assert_has(out, "138,357,544 trainable parameters");
    free(out);
    run_expect(&out, 0, "--model_name=resnet_v1_50 --labels_offset=1 --print_model");
    assert_has(out, "25,557,032 trainable parameters");
    free(out);
    assert_int_equal(tu_run(&out, "{bin}/launch --model_name=lenet --print_model=dot"), 0);
    if (strncmp(out, "digraph", 7) != 0) fail_msg("dot output does not start with digraph:\n%.300s", out);
    assert_has(out, "}");
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_make_run_line),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_helpfull),
        cmocka_unit_test(test_usage_errors_exit_2),
        cmocka_unit_test(test_refused_combinations),
        cmocka_unit_test(test_flagfiles_and_undefok),
        cmocka_unit_test(test_print_model_every_net),
    };
    return cmocka_run_group_tests_name("launch", tests, NULL, NULL);
}
