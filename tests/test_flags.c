/* tests/test_flags.c — flags/: the tables against TF-slim's flag lists (transcribed below from
 * research/slim/train_image_classifier.py and eval_image_classifier.py, the independent
 * reference), every absl syntax form, value validation, flagfiles (nesting, relative paths,
 * comments, cycles, unreadable files, file:line in messages), --undefok, "--", help requests,
 * did-you-mean, value formatting and the results CSV's config columns. In-process, through
 * flags_parse; tests/test_launch.c runs the launch binary for exit codes and output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/sb.h"
#include "flags/flags.h"
#include "tests/support/testutil.h"

/* slim's flags: name, Python default as written in slim's source (None = no default), type
 * (b bool, i int, f float, s string). Enum-valued flags are strings in slim. */
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

static const slim_flag slim_eval[] = {
    {"batch_size", "100", 'i'},
    {"max_num_batches", NULL, 'i'},
    {"master", "", 's'},
    {"checkpoint_path", "/tmp/tfmodel/", 's'},
    {"eval_dir", "/tmp/tfmodel/", 's'},
    {"num_preprocessing_threads", "4", 'i'},
    {"dataset_name", "imagenet", 's'},
    {"dataset_split_name", "test", 's'},
    {"dataset_dir", NULL, 's'},
    {"labels_offset", "0", 'i'},
    {"model_name", "inception_v3", 's'},
    {"preprocessing_name", NULL, 's'},
    {"moving_average_decay", NULL, 'f'},
    {"eval_image_size", NULL, 'i'},
    {"quantize", "False", 'b'},
    {"use_grayscale", "False", 'b'},
};

/* ---------------------------------------------------------------------------------------------
 * Fixture: launch's two tables, re-initialised for every parse.
 * ------------------------------------------------------------------------------------------- */
static train_flags T;
static sb_flags S;
static flags_result R;
static sb_err E;
static const flags_binding B[] = {{&flags_train_table, &T}, {&flags_sb_table, &S}};
static const flags_spec SPEC = {"launch", "test", B, 2};

static void reset(void) {
    flags_result_fini(&R);
    flags_values_fini(&flags_train_table, &T);
    flags_values_fini(&flags_sb_table, &S);
    flags_values_init(&flags_train_table, &T);
    flags_values_init(&flags_sb_table, &S);
    sb_err_clear(&E);
}

/* Parse the NULL-terminated arguments (argv[0] is supplied). */
static int parse_list(const char *const *args) {
    reset();
    const char *argv[64] = {"launch"};
    int argc = 1;
    while (args[argc - 1]) {
        argv[argc] = args[argc - 1];
        argc++;
    }
    return flags_parse(&SPEC, argc, (char *const *)argv, &R, &E);
}
#define PARSE(...) parse_list((const char *const[]){__VA_ARGS__, NULL})

static int setup(void **state) {
    (void)state;
    memset(&R, 0, sizeof R);
    flags_values_init(&flags_train_table, &T);
    flags_values_init(&flags_sb_table, &S);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    flags_result_fini(&R);
    flags_values_fini(&flags_train_table, &T);
    flags_values_fini(&flags_sb_table, &S);
    return 0;
}

/* The error message contains s. */
#define assert_err_has(s)                                                                \
    do {                                                                                 \
        if (!strstr(E.msg, (s))) fail_msg("message \"%s\" lacks \"%s\"", E.msg, (s));   \
    } while (0)

static void write_file(const char *dir, const char *name, const char *text) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    if (!fp) fail_msg("cannot write %s", path);
    fputs(text, fp);
    fclose(fp);
}

/* ---------------------------------------------------------------------------------------------
 * Tables against slim.
 * ------------------------------------------------------------------------------------------- */
static void check_against_slim(const flags_table *t, const slim_flag *ref, size_t nref) {
    void *values = malloc(t->struct_size);
    flags_values_init(t, values);
    size_t nslim = 0;
    for (size_t i = 0; i < t->count; i++) nslim += (t->defs[i].traits & FLAGS_TRAIT_SLIM) != 0;
    assert_int_equal(nslim, nref); /* no flag missing, none invented as "slim" */
    for (size_t i = 0; i < nref; i++) {
        const flags_def *d = flags_table_find(t, ref[i].name);
        if (!d) fail_msg("slim flag --%s missing from %s", ref[i].name, t->module);
        assert_true(d->traits & FLAGS_TRAIT_SLIM);
        char v[512];
        bool some = flags_format_value(d, values, v, sizeof v);
        if (!ref[i].def) {
            if (some) fail_msg("--%s: slim's default is None, ours '%s'", d->name, v);
            continue;
        }
        if (!some) fail_msg("--%s: ours is None, slim's default %s", d->name, ref[i].def);
        const char *want = ref[i].def;
        if (strcmp(ref[i].name, "log_every_n_steps") == 0) want = "5"; /* deliberate change */
        switch (ref[i].type) {
        case 'b':
            assert_int_equal(d->type, FLAGS_TYPE_BOOL);
            assert_string_equal(v, strcmp(want, "True") == 0 ? "true" : "false");
            break;
        case 'i':
            assert_int_equal(d->type, FLAGS_TYPE_INT);
            assert_int_equal(atoi(v), atoi(want));
            break;
        case 'f':
            assert_int_equal(d->type, FLAGS_TYPE_FLOAT);
            if (strtod(v, NULL) != strtod(want, NULL))
                fail_msg("--%s: default %s, slim's %s", d->name, v, want);
            break;
        case 's':
            assert_true(d->type == FLAGS_TYPE_STRING || d->type == FLAGS_TYPE_ENUM);
            assert_string_equal(v, want);
            break;
        }
    }
    flags_values_fini(t, values);
    free(values);
}

static void test_train_table_is_slims(void **state) {
    (void)state;
    check_against_slim(&flags_train_table, slim_train, SB_ARRAY_LEN(slim_train));
    const flags_def *d = flags_table_find(&flags_train_table, "log_every_n_steps");
    assert_non_null(strstr(d->help, "default 5"));
}

static void test_eval_table_is_slims(void **state) {
    (void)state;
    check_against_slim(&flags_eval_table, slim_eval, SB_ARRAY_LEN(slim_eval));
}

static void test_tables_consistent(void **state) {
    (void)state;
    const flags_table *tables[] = {&flags_train_table, &flags_eval_table, &flags_sb_table};
    for (size_t k = 0; k < SB_ARRAY_LEN(tables); k++) {
        const flags_table *t = tables[k];
        for (size_t i = 0; i < t->count; i++) {
            const flags_def *d = &t->defs[i];
            assert_true(strlen(d->help) > 0);
            assert_true((d->traits & (FLAGS_TRAIT_SLIM | FLAGS_TRAIT_OURS)) != 0);
            assert_ptr_equal(flags_table_find(t, d->name), d); /* unique names */
            if (d->type == FLAGS_TYPE_INT && d->has_default)
                assert_true(d->int_default >= d->int_min && d->int_default <= d->int_max);
            if (d->type == FLAGS_TYPE_FLOAT && d->has_default)
                assert_true(d->float_default >= d->float_min && d->float_default <= d->float_max);
            if (d->type == FLAGS_TYPE_ENUM) {
                assert_true(flags_enum_index(d, d->str_default) >= 0);
                if (d->bare) assert_true(flags_enum_index(d, d->bare) >= 0);
            }
        }
        /* ours never shadow slim's */
        if (t != &flags_sb_table)
            for (size_t i = 0; i < flags_sb_table.count; i++)
                assert_null(flags_table_find(t, flags_sb_table.defs[i].name));
    }
    const char *ours[] = {"num_warmup_steps", "results_csv", "step_csv", "threads_per_replica",
                          "seed", "synthetic_data", "print_model", "profile", "hosts", "hostfile",
                          "version"};
    for (size_t i = 0; i < SB_ARRAY_LEN(ours); i++)
        assert_non_null(flags_table_find(&flags_sb_table, ours[i]));
    assert_string_equal(flags_sb_table.module, "slimbench");
}

static void test_enum_choices(void **state) {
    (void)state;
    const char *opt[] = {"adadelta", "adagrad", "adam", "ftrl", "momentum", "sgd", "rmsprop"};
    for (size_t i = 0; i < SB_ARRAY_LEN(opt); i++) {
        char arg[64];
        snprintf(arg, sizeof arg, "--optimizer=%s", opt[i]);
        assert_int_equal(PARSE(arg), 0);
        assert_string_equal(T.optimizer, opt[i]);
    }
    const char *models[] = {"vgg_a", "vgg_16", "vgg_19", "resnet_v1_50", "resnet_v1_101",
                            "resnet_v1_152", "resnet_v1_200", "resnet_v2_50", "resnet_v2_101",
                            "resnet_v2_152", "resnet_v2_200", "lenet", "cifarnet",
                            "inception_v1", "inception_v3"};
    for (size_t i = 0; i < SB_ARRAY_LEN(models); i++) {
        char arg[64];
        snprintf(arg, sizeof arg, "--model_name=%s", models[i]);
        assert_int_equal(PARSE(arg), 0);
        assert_string_equal(T.model_name, models[i]);
    }
    const char *ds[] = {"imagenet", "mnist", "fashion_mnist", "cifar10", "flowers", "synthetic"};
    for (size_t i = 0; i < SB_ARRAY_LEN(ds); i++) {
        char arg[64];
        snprintf(arg, sizeof arg, "--dataset_name=%s", ds[i]);
        assert_int_equal(PARSE(arg), 0);
    }
    const char *decay[] = {"fixed", "exponential", "polynomial"};
    for (size_t i = 0; i < SB_ARRAY_LEN(decay); i++) {
        char arg[64];
        snprintf(arg, sizeof arg, "--learning_rate_decay_type=%s", decay[i]);
        assert_int_equal(PARSE(arg), 0);
    }
    assert_int_equal(PARSE("--optimizer=adamw"), SB_E_USAGE);
    assert_err_has("--optimizer=adamw");
    assert_err_has("<adadelta|adagrad|adam|ftrl|momentum|sgd|rmsprop>");
    assert_int_equal(PARSE("--optimizer=Adam"), SB_E_USAGE); /* case-sensitive, as absl */
    assert_int_equal(PARSE("--model_name=resnet_50"), SB_E_USAGE);
    assert_err_has("resnet_v1_50");
    assert_int_equal(PARSE("--learning_rate_decay_type=cosine"), SB_E_USAGE);
    assert_err_has("<fixed|exponential|polynomial>");
}

/* ---------------------------------------------------------------------------------------------
 * Syntax.
 * ------------------------------------------------------------------------------------------- */
static void test_value_forms(void **state) {
    (void)state;
    assert_int_equal(PARSE("--batch_size=64"), 0);
    assert_int_equal(T.batch_size, 64);
    assert_true(T.set.batch_size);
    assert_false(T.set.learning_rate);
    assert_int_equal(PARSE("--batch_size", "48"), 0);
    assert_int_equal(T.batch_size, 48);
    assert_int_equal(PARSE("-batch_size=16"), 0);
    assert_int_equal(T.batch_size, 16);
    assert_int_equal(PARSE("-batch_size", "8"), 0);
    assert_int_equal(T.batch_size, 8);
    /* the next argument is the value even when it looks like a flag (absl) */
    assert_int_equal(PARSE("--ftrl_learning_rate_power", "-0.25"), 0);
    assert_true(T.ftrl_learning_rate_power == -0.25);
    assert_int_equal(PARSE("--train_dir", "--x"), 0);
    assert_string_equal(T.train_dir, "--x");
    /* values may contain '=' */
    assert_int_equal(PARSE("--checkpoint_exclude_scopes=a=b,c"), 0);
    assert_string_equal(T.checkpoint_exclude_scopes, "a=b,c");
    /* the last occurrence wins */
    assert_int_equal(
        PARSE("--batch_size=1", "--batch_size=2", "--optimizer=sgd", "--optimizer=adam"), 0);
    assert_int_equal(T.batch_size, 2);
    assert_string_equal(T.optimizer, "adam");
    /* an empty string is a value, distinct from None */
    assert_null(T.dataset_dir);
    assert_int_equal(PARSE("--dataset_dir="), 0);
    assert_non_null(T.dataset_dir);
    assert_string_equal(T.dataset_dir, "");
    assert_true(T.set.dataset_dir);
}

static void test_bool_forms(void **state) {
    (void)state;
    assert_int_equal(PARSE("--sync_replicas"), 0);
    assert_true(T.sync_replicas);
    assert_true(T.set.sync_replicas);
    assert_int_equal(PARSE("--sync_replicas", "--nosync_replicas"), 0);
    assert_false(T.sync_replicas);
    assert_true(T.set.sync_replicas);
    assert_int_equal(PARSE("-sync_replicas"), 0);
    assert_true(T.sync_replicas);
    assert_int_equal(PARSE("-nouse_grayscale"), 0);
    assert_false(T.use_grayscale);
    const char *yes[] = {"true", "True", "TRUE", "t", "T", "1"};
    const char *no[] = {"false", "False", "f", "F", "0"};
    for (size_t i = 0; i < SB_ARRAY_LEN(yes); i++) {
        char arg[64];
        snprintf(arg, sizeof arg, "--profile=%s", yes[i]);
        assert_int_equal(PARSE(arg), 0);
        assert_true(S.profile);
    }
    for (size_t i = 0; i < SB_ARRAY_LEN(no); i++) {
        char arg[64];
        snprintf(arg, sizeof arg, "--profile=%s", no[i]);
        assert_int_equal(PARSE("--profile", arg), 0);
        assert_false(S.profile);
    }
    /* absl takes neither yes/no nor other numbers */
    const char *bad[] = {"yes", "no", "2", "", "on"};
    for (size_t i = 0; i < SB_ARRAY_LEN(bad); i++) {
        char arg[64];
        snprintf(arg, sizeof arg, "--sync_replicas=%s", bad[i]);
        assert_int_equal(PARSE(arg), SB_E_USAGE);
        assert_err_has("--sync_replicas=");
        assert_err_has("not a boolean");
    }
    assert_int_equal(PARSE("--nosync_replicas=true"), SB_E_USAGE);
    assert_err_has("--nosync_replicas does not take an argument");
    /* a bool does not take the next argument: "false" stays positional */
    assert_int_equal(PARSE("--sync_replicas", "false"), 0);
    assert_true(T.sync_replicas);
    assert_int_equal(R.npositional, 1);
    assert_string_equal(R.positional[0], "false");
    /* --no prefix only for booleans */
    assert_int_equal(PARSE("--nobatch_size"), SB_E_USAGE);
    assert_err_has("unknown command line flag --nobatch_size");
}

static void test_int_validation(void **state) {
    (void)state;
    assert_int_equal(PARSE("--batch_size=0x20"), 0);
    assert_int_equal(T.batch_size, 32);
    assert_int_equal(PARSE("--batch_size=0o17"), 0);
    assert_int_equal(T.batch_size, 15);
    assert_int_equal(PARSE("--batch_size=+7"), 0);
    assert_int_equal(T.batch_size, 7);
    assert_int_equal(PARSE("--batch_size=2147483647"), 0);
    assert_int_equal(T.batch_size, 2147483647);
    assert_int_equal(PARSE("--quantize_delay=-1"), 0);
    assert_int_equal(PARSE("--labels_offset=-2147483648"), 0);
    assert_int_equal(T.labels_offset, -2147483648LL);

    struct { const char *arg, *msg; } bad[] = {
        {"--batch_size=12abc", "not an integer"},
        {"--batch_size=1.5", "not an integer"},
        {"--batch_size=", "not an integer"},
        {"--batch_size= 5", "not an integer"},
        {"--batch_size=5 ", "not an integer"},
        {"--batch_size=0x", "not an integer"},
        {"--batch_size=--3", "not an integer"},
        {"--batch_size=0", "out of range"},
        {"--batch_size=-4", "out of range"},
        {"--batch_size=2147483648", "out of range"},
        {"--batch_size=99999999999999999999999", "out of range"},
        {"--labels_offset=-2147483649", "out of range"},
        {"--quantize_delay=-2", "out of range"},
        {"--train_image_size=0", "out of range"},
        {"--max_number_of_steps=-1", "out of range"},
    };
    for (size_t i = 0; i < SB_ARRAY_LEN(bad); i++) {
        assert_int_equal(PARSE(bad[i].arg), SB_E_USAGE);
        assert_err_has(bad[i].arg);
        assert_err_has(bad[i].msg);
    }
    assert_int_equal(PARSE("--batch_size=0"), SB_E_USAGE);
    assert_err_has("a positive integer");
    assert_int_equal(PARSE("--quantize_delay=-2"), SB_E_USAGE);
    assert_err_has("an integer >= -1");
}

static void test_float_validation(void **state) {
    (void)state;
    assert_int_equal(PARSE("--learning_rate=1e-3"), 0);
    assert_true(T.learning_rate == 1e-3);
    assert_int_equal(PARSE("--learning_rate=.5"), 0);
    assert_true(T.learning_rate == 0.5);
    assert_int_equal(PARSE("--learning_rate=3"), 0);
    assert_true(T.learning_rate == 3.0);
    assert_false(T.set.moving_average_decay);
    assert_int_equal(PARSE("--moving_average_decay=0.9999"), 0);
    assert_true(T.set.moving_average_decay);
    assert_true(T.moving_average_decay == 0.9999);
    const char *bad[] = {"--learning_rate=abc", "--learning_rate=0.1x", "--learning_rate=",
                         "--learning_rate=nan", "--learning_rate= 1", "--adam_beta1=1e999x"};
    for (size_t i = 0; i < SB_ARRAY_LEN(bad); i++) {
        assert_int_equal(PARSE(bad[i]), SB_E_USAGE);
        assert_err_has(bad[i]);
        assert_err_has("not a number");
    }
    assert_int_equal(PARSE("--label_smoothing=1.5"), SB_E_USAGE);
    assert_err_has("out of range");
    assert_err_has("[0.0, 1.0]");
    assert_int_equal(PARSE("--learning_rate=-0.1"), SB_E_USAGE);
    assert_err_has("a non-negative number");
    assert_int_equal(PARSE("--adam_beta1=1e999"), SB_E_USAGE);
    assert_err_has("out of range");
}

static void test_missing_value(void **state) {
    (void)state;
    assert_int_equal(PARSE("--batch_size"), SB_E_USAGE);
    assert_string_equal(E.msg, "flag --batch_size: missing value");
    assert_int_equal(PARSE("--optimizer=sgd", "--train_dir"), SB_E_USAGE);
    assert_err_has("--train_dir: missing value");
    assert_int_equal(PARSE("--undefok"), SB_E_USAGE);
    assert_err_has("--undefok: missing value");
    assert_int_equal(PARSE("--flagfile"), SB_E_USAGE);
    assert_err_has("--flagfile: missing value");
}

static void test_bare_enum(void **state) {
    (void)state;
    assert_string_equal(S.print_model, "");
    assert_int_equal(PARSE("--print_model"), 0);
    assert_string_equal(S.print_model, "text");
    /* a bare --print_model never takes the next argument */
    assert_int_equal(PARSE("--print_model", "dot"), 0);
    assert_string_equal(S.print_model, "text");
    assert_int_equal(R.npositional, 1);
    assert_int_equal(PARSE("--print_model", "--batch_size=3"), 0);
    assert_string_equal(S.print_model, "text");
    assert_int_equal(T.batch_size, 3);
    assert_int_equal(PARSE("--print_model=dot"), 0);
    assert_string_equal(S.print_model, "dot");
    assert_int_equal(PARSE("--print_model=dot", "--print_model="), 0);
    assert_string_equal(S.print_model, "");
    assert_int_equal(PARSE("--print_model=svg"), SB_E_USAGE);
    assert_err_has("<''|text|dot>");
}

static void test_dashdash_and_positionals(void **state) {
    (void)state;
    assert_int_equal(PARSE("--batch_size=4", "--", "--batch_size=5", "--nosuchflag", "x"), 0);
    assert_int_equal(T.batch_size, 4);
    assert_int_equal(R.npositional, 3);
    assert_string_equal(R.positional[0], "--batch_size=5");
    assert_string_equal(R.positional[1], "--nosuchflag");
    assert_string_equal(R.positional[2], "x");
    /* GNU mode: a positional does not stop flag parsing; "-" is positional */
    assert_int_equal(PARSE("a", "--batch_size=6", "-", "b"), 0);
    assert_int_equal(T.batch_size, 6);
    assert_int_equal(R.npositional, 3);
    assert_string_equal(R.positional[1], "-");
    /* "--" after a flagfile directive keeps a later --flagfile literal */
    assert_int_equal(PARSE("--", "--flagfile=/nonexistent"), 0);
    assert_string_equal(R.positional[0], "--flagfile=/nonexistent");
}

static void test_unknown_and_suggestions(void **state) {
    (void)state;
    assert_int_equal(PARSE("--optimzer=adam"), SB_E_USAGE);
    assert_string_equal(E.msg, "unknown command line flag --optimzer (did you mean --optimizer?)");
    assert_int_equal(PARSE("--batch_sise", "64"), SB_E_USAGE);
    assert_err_has("did you mean --batch_size?");
    assert_int_equal(PARSE("--learnig_rate=0.1"), SB_E_USAGE);
    assert_err_has("did you mean --learning_rate?");
    assert_int_equal(PARSE("-modelname=vgg_16"), SB_E_USAGE);
    assert_err_has("did you mean --model_name?");
    assert_int_equal(PARSE("--helpful"), SB_E_USAGE);
    assert_err_has("did you mean --helpfull?");
    /* nothing close: no suggestion; short names: none (absl) */
    assert_int_equal(PARSE("--zzzzzzzzzz"), SB_E_USAGE);
    assert_string_equal(E.msg, "unknown command line flag --zzzzzzzzzz");
    assert_int_equal(PARSE("--zq"), SB_E_USAGE);
    assert_null(strstr(E.msg, "did you mean"));
    /* all unknown flags are counted; valid flags after them still parse */
    assert_int_equal(PARSE("--aaa=1", "--batch_size=9", "--bbb"), SB_E_USAGE);
    assert_err_has("--aaa");
    assert_err_has("and 1 more unknown flag");
    /* an unknown flag does not swallow the next argument */
    assert_int_equal(PARSE("--undefok=foo", "--foo", "--batch_size=3"), 0);
    assert_int_equal(T.batch_size, 3);
    assert_int_equal(PARSE("--=3"), SB_E_USAGE);
    assert_err_has("malformed flag");
}

static void test_undefok(void **state) {
    (void)state;
    assert_int_equal(PARSE("--undefok=foo,bar", "--foo=1", "--bar", "--batch_size=5"), 0);
    assert_int_equal(T.batch_size, 5);
    /* order does not matter; spaces after commas; the --nofoo form */
    assert_int_equal(PARSE("--foo=1", "--nobar", "--undefok", "foo, bar"), 0);
    /* several --undefok accumulate */
    assert_int_equal(PARSE("--undefok=foo", "--undefok=bar", "--bar", "--foo"), 0);
    /* not listed: still an error, naming the unlisted one */
    assert_int_equal(PARSE("--undefok=foo", "--foo", "--baz=2"), SB_E_USAGE);
    assert_err_has("--baz");
    assert_null(strstr(E.msg, "--foo"));
    /* undefok does not relax bad values of known flags */
    assert_int_equal(PARSE("--undefok=batch_size", "--batch_size=x"), SB_E_USAGE);
}

static void test_help_requests(void **state) {
    (void)state;
    assert_int_equal(PARSE("--help"), 0);
    assert_int_equal(R.help, FLAGS_HELP_SHORT);
    assert_int_equal(PARSE("--helpshort"), 0);
    assert_int_equal(R.help, FLAGS_HELP_SHORT);
    assert_int_equal(PARSE("-helpfull"), 0);
    assert_int_equal(R.help, FLAGS_HELP_FULL);
    /* help acts when parsed: what follows is not looked at; unknown flags before it are fine */
    assert_int_equal(PARSE("--nosuch", "--help", "--batch_size=x"), 0);
    assert_int_equal(R.help, FLAGS_HELP_SHORT);
    /* a bad value before it is still an error */
    assert_int_equal(PARSE("--batch_size=x", "--help"), SB_E_USAGE);
    assert_int_equal(PARSE("--nohelp", "--help=false"), 0);
    assert_int_equal(R.help, FLAGS_HELP_NONE);
    assert_int_equal(PARSE("--help=maybe"), SB_E_USAGE);
}

/* ---------------------------------------------------------------------------------------------
 * Flagfiles.
 * ------------------------------------------------------------------------------------------- */
static void test_flagfile_basic_and_comments(void **state) {
    (void)state;
    char dir[256], arg[600];
    tu_make_tmpdir(dir, sizeof dir);
    write_file(dir, "a.flags",
               "# a comment\n"
               "// another comment\n"
               "\n"
               "   \t\n"
               "--batch_size=12\n"
               "   --optimizer=adam   \n"
               "  # indented comment\n"
               "--sync_replicas\r\n"
               "--train_dir\n"
               "/tmp/run 1\n"
               "--learning_rate=0.5");
    snprintf(arg, sizeof arg, "--flagfile=%s/a.flags", dir);
    assert_int_equal(PARSE(arg), 0);
    assert_int_equal(T.batch_size, 12);
    assert_string_equal(T.optimizer, "adam");
    assert_true(T.sync_replicas);
    assert_string_equal(T.train_dir, "/tmp/run 1"); /* one argument per line, spaces kept */
    assert_true(T.learning_rate == 0.5);           /* last line without newline */
    assert_true(T.set.batch_size);
    /* flags after the flagfile override it; before it are overridden */
    snprintf(arg, sizeof arg, "%s/a.flags", dir);
    assert_int_equal(PARSE("--batch_size=1", "--flagfile", arg, "--optimizer=sgd"), 0);
    assert_int_equal(T.batch_size, 12);
    assert_string_equal(T.optimizer, "sgd");
    assert_int_equal(PARSE("-flagfile", arg), 0);
    assert_int_equal(T.batch_size, 12);
    /* an empty --flagfile= is ignored, as in absl */
    assert_int_equal(PARSE("--flagfile="), 0);
    tu_remove_tree(dir);
}

static void test_flagfile_nesting_relative(void **state) {
    (void)state;
    char dir[256], sub[400], arg[600];
    tu_make_tmpdir(dir, sizeof dir);
    snprintf(sub, sizeof sub, "%s/sub", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    snprintf(sub, sizeof sub, "%s/sub/deeper", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    /* top.flags -> sub/mid.flags -> (relative to sub/) deeper/leaf.flags and ../side.flags */
    write_file(dir, "top.flags", "--batch_size=1\n--flagfile=sub/mid.flags\n--optimizer=ftrl\n");
    write_file(dir, "sub/mid.flags",
               "--batch_size=2\n-flagfile=deeper/leaf.flags\n--flagfile=../side.flags\n");
    write_file(dir, "sub/deeper/leaf.flags", "--model_name=vgg_19\n--batch_size=3\n");
    write_file(dir, "side.flags", "--num_readers=7\n");
    snprintf(arg, sizeof arg, "--flagfile=%s/top.flags", dir);
    assert_int_equal(PARSE(arg), 0);
    assert_int_equal(T.batch_size, 3);
    assert_string_equal(T.model_name, "vgg_19");
    assert_int_equal(T.num_readers, 7);
    assert_string_equal(T.optimizer, "ftrl");
    /* the same file twice side by side is not a cycle */
    write_file(dir, "twice.flags", "--flagfile=side.flags\n--flagfile=side.flags\n");
    snprintf(arg, sizeof arg, "--flagfile=%s/twice.flags", dir);
    assert_int_equal(PARSE(arg), 0);
    tu_remove_tree(dir);
}

static void test_flagfile_errors(void **state) {
    (void)state;
    char dir[256], arg[600], want[700];
    tu_make_tmpdir(dir, sizeof dir);
    /* cycle a -> b -> a, reported at b's line 3 with the chain */
    write_file(dir, "a.flags", "--batch_size=2\n--flagfile=b.flags\n");
    write_file(dir, "b.flags", "# b\n--num_readers=2\n--flagfile=a.flags\n");
    snprintf(arg, sizeof arg, "--flagfile=%s/a.flags", dir);
    assert_int_equal(PARSE(arg), SB_E_USAGE);
    snprintf(want, sizeof want, "%s/b.flags:3: cyclic flagfile", dir);
    assert_err_has(want);
    assert_err_has("a.flags -> ");
    /* a file that includes itself */
    write_file(dir, "self.flags", "--flagfile=self.flags\n");
    snprintf(arg, sizeof arg, "--flagfile=%s/self.flags", dir);
    assert_int_equal(PARSE(arg), SB_E_USAGE);
    snprintf(want, sizeof want, "%s/self.flags:1: cyclic flagfile", dir);
    assert_err_has(want);
    /* unreadable: on the command line, and nested (with the includer's file:line) */
    snprintf(arg, sizeof arg, "--flagfile=%s/missing.flags", dir);
    assert_int_equal(PARSE(arg), SB_E_USAGE);
    snprintf(want, sizeof want, "flagfile %s/missing.flags: No such file or directory", dir);
    assert_string_equal(E.msg, want);
    write_file(dir, "inc.flags", "\n--flagfile=nope.flags\n");
    snprintf(arg, sizeof arg, "--flagfile=%s/inc.flags", dir);
    assert_int_equal(PARSE(arg), SB_E_USAGE);
    snprintf(want, sizeof want, "%s/inc.flags:2: flagfile %s/nope.flags: No such file", dir, dir);
    assert_err_has(want);
    /* a directory is not a flagfile */
    snprintf(arg, sizeof arg, "--flagfile=%s", dir);
    assert_int_equal(PARSE(arg), SB_E_USAGE);
    assert_err_has("Is a directory");
    /* errors inside a flagfile carry file:line */
    write_file(dir, "bad.flags", "--batch_size=4\n\n--batch_size=four\n");
    snprintf(arg, sizeof arg, "--flagfile=%s/bad.flags", dir);
    assert_int_equal(PARSE(arg), SB_E_USAGE);
    snprintf(want, sizeof want, "%s/bad.flags:3: flag --batch_size=four: not an integer", dir);
    assert_err_has(want);
    write_file(dir, "unk.flags", "# x\n--optimzer=adam\n");
    snprintf(arg, sizeof arg, "--flagfile=%s/unk.flags", dir);
    assert_int_equal(PARSE(arg), SB_E_USAGE);
    snprintf(want, sizeof want,
             "%s/unk.flags:2: unknown command line flag --optimzer (did you mean --optimizer?)",
             dir);
    assert_string_equal(E.msg, want);
    write_file(dir, "miss.flags", "--batch_size\n");
    snprintf(arg, sizeof arg, "--flagfile=%s/miss.flags", dir);
    assert_int_equal(PARSE(arg), SB_E_USAGE);
    snprintf(want, sizeof want, "%s/miss.flags:1: flag --batch_size: missing value", dir);
    assert_string_equal(E.msg, want);
    write_file(dir, "bare.flags", "--flagfile\nx.flags\n");
    snprintf(arg, sizeof arg, "--flagfile=%s/bare.flags", dir);
    assert_int_equal(PARSE(arg), SB_E_USAGE);
    assert_err_has("bare.flags:1: --flagfile in a flagfile needs its file on the same line");
    /* --undefok inside a flagfile covers flags on the command line */
    write_file(dir, "ok.flags", "--undefok=legacy_flag\n");
    snprintf(arg, sizeof arg, "--flagfile=%s/ok.flags", dir);
    assert_int_equal(PARSE("--legacy_flag=3", arg), 0);
    tu_remove_tree(dir);
}

/* ---------------------------------------------------------------------------------------------
 * Formatting and CSV columns.
 * ------------------------------------------------------------------------------------------- */
static void test_format_values(void **state) {
    (void)state;
    assert_int_equal(PARSE("--moving_average_decay=0.9999"), 0);
    char v[64];
    const flags_def *d = flags_table_find(&flags_train_table, "weight_decay");
    assert_true(flags_format_value(d, &T, v, sizeof v));
    assert_string_equal(v, "4e-05"); /* Python's str(0.00004) */
    d = flags_table_find(&flags_train_table, "opt_epsilon");
    flags_format_value(d, &T, v, sizeof v);
    assert_string_equal(v, "1.0");
    d = flags_table_find(&flags_train_table, "moving_average_decay");
    flags_format_value(d, &T, v, sizeof v);
    assert_string_equal(v, "0.9999");
    d = flags_table_find(&flags_train_table, "max_number_of_steps");
    assert_false(flags_format_value(d, &T, v, sizeof v));
    assert_string_equal(v, "");
    d = flags_table_find(&flags_train_table, "clone_on_cpu");
    flags_format_value(d, &T, v, sizeof v);
    assert_string_equal(v, "false");
    d = flags_table_find(&flags_train_table, "dataset_dir");
    assert_false(flags_format_value(d, &T, v, sizeof v));
}

static size_t count_fields(const char *s) {
    size_t n = 1;
    bool q = false;
    for (; *s; s++) {
        if (*s == '"') q = !q;
        else if (*s == ',' && !q) n++;
    }
    return n;
}

static void test_csv_columns(void **state) {
    (void)state;
    assert_int_equal(PARSE("--model_name=vgg_16", "--batch_size=32", "--optimizer=rmsprop",
                           "--dataset_dir=/data/a,b", "--max_number_of_steps=8"),
                     0);
    sb_csv_line h, v;
    sb_csv_line_init(&h);
    sb_csv_line_init(&v);
    flags_csv_add_header(&flags_train_table, &h);
    flags_csv_add_header(&flags_sb_table, &h);
    flags_csv_add_values(&flags_train_table, &T, &v);
    flags_csv_add_values(&flags_sb_table, &S, &v);
    const char *hs = sb_csv_line_str(&h), *vs = sb_csv_line_str(&v);
    assert_int_equal(count_fields(hs), count_fields(vs));
    assert_non_null(strstr(hs, "model_name"));
    assert_non_null(strstr(hs, "batch_size"));
    assert_non_null(strstr(hs, "optimizer"));
    assert_non_null(strstr(hs, "num_warmup_steps"));
    assert_null(strstr(hs, "master")); /* inert flags are not config columns */
    assert_non_null(strstr(vs, "vgg_16"));
    assert_non_null(strstr(vs, "\"/data/a,b\""));
    /* column i of the header names the value in column i */
    char *hc = sb_xstrdup(hs), *vc = sb_xstrdup(vs);
    size_t col = 0, want = SIZE_MAX;
    for (char *t = strtok(hc, ","); t; t = strtok(NULL, ","), col++)
        if (strcmp(t, "batch_size") == 0) want = col;
    assert_true(want != SIZE_MAX);
    col = 0;
    const char *p = vc;
    while (col < want) {
        bool q = false;
        while (*p && (q || *p != ',')) q ^= *p++ == '"';
        p++;
        col++;
    }
    assert_int_equal(strncmp(p, "32,", 3), 0);
    free(hc);
    free(vc);
    sb_csv_line_fini(&h);
    sb_csv_line_fini(&v);
}

static void test_eval_spec(void **state) {
    (void)state;
    /* the same parser over eval's tables: eval's defaults, its own flags */
    eval_flags ev;
    sb_flags sb;
    flags_values_init(&flags_eval_table, &ev);
    flags_values_init(&flags_sb_table, &sb);
    const flags_binding b[] = {{&flags_eval_table, &ev}, {&flags_sb_table, &sb}};
    const flags_spec spec = {"eval_image_classifier", NULL, b, 2};
    const char *argv[] = {"eval", "--eval_image_size=299", "--quantize", "--seed=3", NULL};
    flags_result res;
    sb_err err;
    assert_int_equal(flags_parse(&spec, 4, (char *const *)argv, &res, &err), 0);
    assert_int_equal(ev.batch_size, 100);
    assert_int_equal(ev.eval_image_size, 299);
    assert_true(ev.set.eval_image_size);
    assert_true(ev.quantize);
    assert_int_equal(sb.seed, 3);
    assert_string_equal(ev.dataset_split_name, "test");
    flags_result_fini(&res);
    const char *argv2[] = {"eval", "--max_number_of_steps=3", NULL};
    assert_int_equal(flags_parse(&spec, 2, (char *const *)argv2, &res, &err), SB_E_USAGE);
    assert_non_null(strstr(err.msg, "--max_number_of_steps"));
    flags_result_fini(&res);
    flags_values_fini(&flags_eval_table, &ev);
    flags_values_fini(&flags_sb_table, &sb);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_train_table_is_slims),
        cmocka_unit_test(test_eval_table_is_slims),
        cmocka_unit_test(test_tables_consistent),
        cmocka_unit_test(test_enum_choices),
        cmocka_unit_test(test_value_forms),
        cmocka_unit_test(test_bool_forms),
        cmocka_unit_test(test_int_validation),
        cmocka_unit_test(test_float_validation),
        cmocka_unit_test(test_missing_value),
        cmocka_unit_test(test_bare_enum),
        cmocka_unit_test(test_dashdash_and_positionals),
        cmocka_unit_test(test_unknown_and_suggestions),
        cmocka_unit_test(test_undefok),
        cmocka_unit_test(test_help_requests),
        cmocka_unit_test(test_flagfile_basic_and_comments),
        cmocka_unit_test(test_flagfile_nesting_relative),
        cmocka_unit_test(test_flagfile_errors),
        cmocka_unit_test(test_format_values),
        cmocka_unit_test(test_csv_columns),
        cmocka_unit_test(test_eval_spec),
    };
    return cmocka_run_group_tests_name("flags", tests, setup, teardown);
}
