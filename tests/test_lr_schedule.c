/* tests/test_lr_schedule.c — train/lr_schedule.c: slim's _configure_learning_rate, with values
 * worked out by hand at the steps where the rate changes (staircase edges, the polynomial's end),
 * slim's decay_steps arithmetic (int() truncation, the true division under --sync_replicas), and
 * the errors for undefined schedules.
 *
 * Tolerance: the schedule is a few float32 operations (a product and powf), so results are
 * within 1e-6 relative of the exact value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "core/sb.h"
#include "train/train.h"

static void near(float got, double want) {
    if (!(fabs((double)got - want) <= 1e-6 * fabs(want) + 1e-12))
        fail_msg("learning rate %.9g, want %.9g", (double)got, want);
}

static void test_defaults_and_decay_steps(void **state) {
    (void)state;
    lr_config c;
    lr_config_default(&c);
    assert_int_equal(c.decay_type, LR_DECAY_TYPE_EXPONENTIAL);
    assert_true(c.learning_rate == 0.01f && c.end_learning_rate == 0.0001f);
    assert_true(c.learning_rate_decay_factor == 0.94f && c.num_epochs_per_decay == 2.0);
    assert_int_equal(c.batch_size, 32);
    assert_int_equal(lr_config_check(&c, NULL), 0);
    /* int(1281167 * 2.0 / 32) = int(80072.9375) = 80072. */
    assert_true(lr_decay_steps(&c) == 80072.0);
    /* Fractional epochs: int(1000 * 0.5 / 10) = 50; int(1000 * 0.3 / 7) = int(42.857) = 42. */
    c.num_samples_per_epoch = 1000;
    c.num_epochs_per_decay = 0.5;
    c.batch_size = 10;
    assert_true(lr_decay_steps(&c) == 50.0);
    c.num_epochs_per_decay = 0.3;
    c.batch_size = 7;
    assert_true(lr_decay_steps(&c) == 42.0);
    /* --sync_replicas: int(1000 * 1 / 32) = 31, then 31 / 2 = 15.5 (Python true division). */
    c.num_epochs_per_decay = 1.0;
    c.batch_size = 32;
    c.sync_replicas = true;
    c.replicas_to_aggregate = 2;
    assert_true(lr_decay_steps(&c) == 15.5);
    /* replicas_to_aggregate matters only with --sync_replicas. */
    c.sync_replicas = false;
    assert_true(lr_decay_steps(&c) == 31.0);
}

static void test_exponential_staircase(void **state) {
    (void)state;
    lr_config c;
    lr_config_default(&c); /* lr 0.01, factor 0.94, decay_steps 80072 */
    near(lr_schedule_at(&c, 0), 0.01);
    near(lr_schedule_at(&c, 1), 0.01);
    near(lr_schedule_at(&c, 80071), 0.01);        /* last step of the first stair */
    near(lr_schedule_at(&c, 80072), 0.0094);      /* 0.01 * 0.94 */
    near(lr_schedule_at(&c, 160143), 0.0094);
    near(lr_schedule_at(&c, 160144), 0.008836);   /* 0.01 * 0.94^2 */
    near(lr_schedule_at(&c, 10 * 80072), 0.01 * pow(0.94, 10));

    /* Fractional decay_steps 15.5 under sync replicas: floor(15/15.5) = 0, floor(16/15.5) = 1,
     * floor(30/15.5) = 1, floor(31/15.5) = 2. Without sync (31): step 30 -> 0, 31 -> 1. */
    c.num_samples_per_epoch = 1000;
    c.num_epochs_per_decay = 1.0;
    c.learning_rate = 0.1f;
    c.learning_rate_decay_factor = 0.5f;
    c.sync_replicas = true;
    c.replicas_to_aggregate = 2;
    near(lr_schedule_at(&c, 15), 0.1);
    near(lr_schedule_at(&c, 16), 0.05);
    near(lr_schedule_at(&c, 30), 0.05);
    near(lr_schedule_at(&c, 31), 0.025);
    c.sync_replicas = false;
    near(lr_schedule_at(&c, 30), 0.1);
    near(lr_schedule_at(&c, 31), 0.05);
    near(lr_schedule_at(&c, 62), 0.025);
}

static void test_polynomial(void **state) {
    (void)state;
    lr_config c;
    lr_config_default(&c);
    c.decay_type = LR_DECAY_TYPE_POLYNOMIAL;
    c.learning_rate = 0.1f;
    c.end_learning_rate = 0.0001f;
    c.num_samples_per_epoch = 3200;
    c.num_epochs_per_decay = 1.0; /* decay_steps = 3200 / 32 = 100 */
    /* (0.1 - 0.0001) * (1 - step/100) + 0.0001, power 1, clamped at decay_steps (cycle=False). */
    near(lr_schedule_at(&c, 0), 0.1);
    near(lr_schedule_at(&c, 50), 0.0999 * 0.5 + 0.0001);   /* 0.05005 */
    near(lr_schedule_at(&c, 99), 0.0999 * 0.01 + 0.0001);  /* 0.001099 */
    near(lr_schedule_at(&c, 100), 0.0001);
    near(lr_schedule_at(&c, 101), 0.0001);
    near(lr_schedule_at(&c, 1000000), 0.0001);
    /* An end rate above the start rate ramps up, as TF's formula does. */
    c.end_learning_rate = 0.3f;
    near(lr_schedule_at(&c, 25), (0.1 - 0.3) * 0.75 + 0.3);  /* 0.15 */
}

static void test_fixed(void **state) {
    (void)state;
    lr_config c;
    lr_config_default(&c);
    c.decay_type = LR_DECAY_TYPE_FIXED;
    c.learning_rate = 0.0375f;
    c.num_samples_per_epoch = 0; /* decay_steps 0 is fine when nothing decays */
    assert_int_equal(lr_config_check(&c, NULL), 0);
    assert_true(lr_schedule_at(&c, 0) == 0.0375f);
    assert_true(lr_schedule_at(&c, 123456789) == 0.0375f);
}

static void test_names_and_errors(void **state) {
    (void)state;
    for (int t = 0; t < LR_DECAY_TYPE_COUNT; t++) {
        lr_decay_type back;
        assert_int_equal(lr_decay_type_from_name(lr_decay_type_name((lr_decay_type)t), &back, NULL),
                         0);
        assert_int_equal(back, t);
    }
    assert_string_equal(lr_decay_type_name(LR_DECAY_TYPE_POLYNOMIAL), "polynomial");
    sb_err e;
    lr_decay_type t;
    assert_int_equal(lr_decay_type_from_name("cosine", &t, &e), SB_E_USAGE);
    assert_non_null(strstr(e.msg, "cosine"));

    lr_config c;
    lr_config_default(&c);
    /* int(100 * 0.1 / 32) = 0: TF would divide by zero; refused, naming the flags. */
    c.num_samples_per_epoch = 100;
    c.num_epochs_per_decay = 0.1;
    assert_int_equal(lr_config_check(&c, &e), SB_E_RANGE);
    assert_non_null(strstr(e.msg, "--num_epochs_per_decay"));
    assert_non_null(strstr(e.msg, "--batch_size=32"));
    lr_config_default(&c);
    c.batch_size = 0;
    assert_int_equal(lr_config_check(&c, &e), SB_E_RANGE);
    assert_non_null(strstr(e.msg, "--batch_size"));
    lr_config_default(&c);
    c.sync_replicas = true;
    c.replicas_to_aggregate = 0;
    assert_int_equal(lr_config_check(&c, &e), SB_E_RANGE);
    assert_non_null(strstr(e.msg, "--replicas_to_aggregate"));
    lr_config_default(&c);
    c.learning_rate = -1.0f;
    assert_int_equal(lr_config_check(&c, &e), SB_E_RANGE);
    assert_non_null(strstr(e.msg, "--learning_rate"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_decay_steps),
        cmocka_unit_test(test_exponential_staircase),
        cmocka_unit_test(test_polynomial),
        cmocka_unit_test(test_fixed),
        cmocka_unit_test(test_names_and_errors),
    };
    return cmocka_run_group_tests_name("lr_schedule", tests, NULL, NULL);
}
