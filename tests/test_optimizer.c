/* tests/test_optimizer.c — train/optimizer.c and train/ema.c against two references:
 *  1. update sequences from tests/reference/gen_optimizers.py (TensorFlow's training-op formulas
 *     transcribed independently in Python, float64), 5 steps of 37 floats per case;
 *  2. one or two steps per optimizer worked out by hand below, on numbers chosen so the square
 *     roots are exact where possible.
 * Plus: slot initial values and names, config checks, opt_apply == opt_step, skipping of
 * non-trainable tensors, L2 weight decay, the EMA's num_updates rule, and bit-identical results
 * with 1, 2 and 3 OpenMP threads.
 *
 * Tolerance against the float64 references: 1e-6 relative, normwise per tensor:
 * |got - want| <= 1e-6 * max(|want|, largest |want| of the tensor). The C code runs the same
 * formulas in float32; each rule rounds about ten times per step (unit roundoff u = 2^-24 =
 * 6e-8) and five steps compound the slot errors, so float32 lands within a few u of the exact
 * answer measured against the tensor's magnitude (measured: 2.6e-7, printed by
 * test_reference_sequences). Elementwise relative error is no yardstick where values cancel:
 * a parameter crossing zero, or FTRL's "linear" slot, a running sum of O(1) terms that ends
 * near 0.2 with an absolute error of 2 ulp of those terms. 1e-6 still catches any wrong formula:
 * a wrong operation order, epsilon placement or slot initial value moves the first step by 1e-3
 * or more (e.g. RMSProp's ms starting at 0 instead of 1, see test_hand_computed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sb.h"
#include "tests/support/testutil.h"
#include "train/train.h"

#define RTOL 1e-6
#define ATOL 1e-7 /* hand-computed values are O(0.1..1): a floor for the relative test */

/* Fields of opt_<case>_hp.bin (see gen_optimizers.py). */
enum { HP_KIND, HP_LR, HP_WD, HP_ADADELTA_RHO, HP_ADAGRAD_IAV, HP_BETA1, HP_BETA2, HP_EPS,
       HP_FTRL_POWER, HP_FTRL_IAV, HP_FTRL_L1, HP_FTRL_L2, HP_MOMENTUM, HP_RMS_MOMENTUM,
       HP_RMS_DECAY, HP_COUNT };

static opt_config config_from_hp(const float *hp) {
    opt_config c;
    opt_config_default(&c);
    c.kind = (opt_kind)(int)hp[HP_KIND];
    c.adadelta_rho = hp[HP_ADADELTA_RHO];
    c.adagrad_initial_accumulator_value = hp[HP_ADAGRAD_IAV];
    c.adam_beta1 = hp[HP_BETA1];
    c.adam_beta2 = hp[HP_BETA2];
    c.opt_epsilon = hp[HP_EPS];
    c.ftrl_learning_rate_power = hp[HP_FTRL_POWER];
    c.ftrl_initial_accumulator_value = hp[HP_FTRL_IAV];
    c.ftrl_l1 = hp[HP_FTRL_L1];
    c.ftrl_l2 = hp[HP_FTRL_L2];
    c.momentum = hp[HP_MOMENTUM];
    c.rmsprop_momentum = hp[HP_RMS_MOMENTUM];
    c.rmsprop_decay = hp[HP_RMS_DECAY];
    return c;
}

static const char *const ref_cases[] = {
    "sgd",      "sgd_wd",   "momentum",  "momentum_wd", "adagrad",    "adadelta", "adadelta_eps",
    "adam",     "adam_eps", "ftrl",      "ftrl_l1l2",   "ftrl_power", "rmsprop",  "rmsprop_wd",
};

/* Normwise comparison: |got - want| <= RTOL * max(|want|, scale), scale = the largest |want| of
 * the tensor. Returns the worst |got - want| / scale; fails the test on a mismatch. */
static double check_scaled(const char *what, const float *got, const float *want, size_t n) {
    double scale = 1e-30, worst = 0.0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs((double)want[i]));
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)got[i] - want[i]) / scale);
    assert_int_equal(tu_allclose(what, got, want, n, RTOL * scale, RTOL), 0);
    return worst;
}

static void test_reference_sequences(void **state) {
    (void)state;
    double worst = 0.0;
    int kinds_seen[OPT_KIND_COUNT] = {0};
    for (size_t ci = 0; ci < SB_ARRAY_LEN(ref_cases); ci++) {
        const char *cs = ref_cases[ci];
        char name[128];
        tu_ref hp, w0, g, w, sl;
        snprintf(name, sizeof name, "opt_%s_hp.bin", cs);
        tu_ref_load(&hp, name);
        snprintf(name, sizeof name, "opt_%s_w0.bin", cs);
        tu_ref_load(&w0, name);
        snprintf(name, sizeof name, "opt_%s_g.bin", cs);
        tu_ref_load(&g, name);
        snprintf(name, sizeof name, "opt_%s_w.bin", cs);
        tu_ref_load(&w, name);
        assert_int_equal(hp.count, HP_COUNT);
        const float *h = hp.data;
        opt_config c = config_from_hp(h);
        assert_int_equal(opt_config_check(&c, NULL), 0);
        assert_true(!strncmp(cs, opt_kind_name(c.kind), strlen(opt_kind_name(c.kind))));
        kinds_seen[c.kind] = 1;
        size_t n = w0.count, steps = (size_t)g.dims[0];
        assert_int_equal(g.count, steps * n);
        assert_int_equal(w.count, steps * n);
        int ns = opt_slot_count(c.kind);

        /* opt_step on the whole range, and opt_apply over three descriptors covering it. */
        float *p1 = malloc(n * sizeof(float)), *p2 = malloc(n * sizeof(float));
        float *s1 = malloc((ns ? ns : 1) * n * sizeof(float));
        float *s2 = malloc((ns ? ns : 1) * n * sizeof(float));
        memcpy(p1, w0.data, n * sizeof(float));
        memcpy(p2, w0.data, n * sizeof(float));
        opt_slots_init(s1, n, n, &c);
        opt_slots_init(s2, n, n, &c);
        float sc1[OPT_MAX_SCALARS], sc2[OPT_MAX_SCALARS];
        opt_scalars_init(sc1, &c);
        opt_scalars_init(sc2, &c);
        unsigned fl = PARAM_FLAG_TRAINABLE | PARAM_FLAG_DECAY | PARAM_FLAG_MODEL;
        param_desc d[3] = {
            {"a/weights", 0, 5, 1, {5}, fl},
            {"b/weights", 5, 19, 1, {19}, fl},
            {"c/weights", 24, n - 24, 1, {(int)n - 24}, fl},
        };
        for (size_t t = 0; t < steps; t++) {
            const float *gt = (const float *)g.data + t * n;
            opt_step(p1, s1, n, gt, n, &c, h[HP_LR], h[HP_WD], sc1);
            opt_scalars_advance(sc1, &c);
            opt_apply(p2, s2, n, gt, n, d, 3, &c, h[HP_LR], h[HP_WD], sc2);
            const float *want = (const float *)w.data + t * n;
            char what[160];
            snprintf(what, sizeof what, "%s step %zu", cs, t + 1);
            worst = fmax(worst, check_scaled(what, p1, want, n));
            /* Same elements through the same code: bit-identical. */
            assert_memory_equal(p1, p2, n * sizeof(float));
        }
        if (ns) {
            assert_memory_equal(s1, s2, ns * n * sizeof(float));
            snprintf(name, sizeof name, "opt_%s_slots.bin", cs);
            tu_ref_load(&sl, name);
            assert_int_equal(sl.count, ns * n);
            char what[160];
            for (int j = 0; j < ns; j++) {
                snprintf(what, sizeof what, "%s slot %s", cs, opt_slot_name(c.kind, j));
                worst = fmax(worst, check_scaled(what, s1 + (size_t)j * n,
                                                 (const float *)sl.data + (size_t)j * n, n));
            }
            tu_ref_free(&sl);
        }
        free(p1), free(p2), free(s1), free(s2);
        tu_ref_free(&hp), tu_ref_free(&w0), tu_ref_free(&g), tu_ref_free(&w);
    }
    for (int k = 0; k < OPT_KIND_COUNT; k++) assert_true(kinds_seen[k]);
    printf("optimizers vs float64 references: worst error %.3g of the tensor's scale "
           "(tolerance %.0e)\n", worst, RTOL);
}

/* Runs `steps` steps of one float with the given gradients through opt_apply (so the scalars
 * advance), returning the parameter after each step in out[] and the slots after the last. */
static void run_one(const opt_config *c, float lr, float w0, const float *g, int steps,
                    float *out, float *slots_out) {
    float w = w0, slots[OPT_MAX_SLOTS], sc[OPT_MAX_SCALARS];
    opt_slots_init(slots, 1, 1, c);
    opt_scalars_init(sc, c);
    param_desc d = {"x/weights", 0, 1, 0, {0}, PARAM_FLAG_TRAINABLE};
    for (int t = 0; t < steps; t++) {
        opt_apply(&w, slots, 1, &g[t], 1, &d, 1, c, lr, 0.0f, sc);
        out[t] = w;
    }
    if (slots_out) memcpy(slots_out, slots, sizeof slots);
}

static void expect(const char *what, const float *got, const double *want, int n) {
    float w[8];
    for (int i = 0; i < n; i++) w[i] = (float)want[i];
    assert_int_equal(tu_allclose(what, got, w, (size_t)n, ATOL, RTOL), 0);
}

static void test_hand_computed(void **state) {
    (void)state;
    opt_config c;
    float out[2], sl[OPT_MAX_SLOTS];

    /* sgd, lr 0.1, w 1: w1 = 1 - 0.1*0.5 = 0.95; w2 = 0.95 - 0.1*(-1) = 1.05. */
    opt_config_default(&c);
    c.kind = OPT_KIND_SGD;
    run_one(&c, 0.1f, 1.0f, (float[]){0.5f, -1.0f}, 2, out, NULL);
    expect("sgd", out, (double[]){0.95, 1.05}, 2);

    /* momentum 0.9, lr 0.1, w 1, g 0.5, 0.5: accum1 = 0.5, w1 = 1 - 0.05 = 0.95;
     * accum2 = 0.9*0.5 + 0.5 = 0.95, w2 = 0.95 - 0.1*0.95 = 0.855 (not Nesterov). */
    c.kind = OPT_KIND_MOMENTUM;
    c.momentum = 0.9f;
    run_one(&c, 0.1f, 1.0f, (float[]){0.5f, 0.5f}, 2, out, sl);
    expect("momentum", out, (double[]){0.95, 0.855}, 2);
    expect("momentum accum", sl, (double[]){0.95}, 1);

    /* adagrad, initial accumulator 0.4375, lr 0.1, w 1, g 0.75, 0.75:
     * accum1 = 0.4375 + 0.5625 = 1, w1 = 1 - 0.1*0.75/sqrt(1) = 0.925;
     * accum2 = 1 + 0.5625 = 1.5625 = 1.25^2, w2 = 0.925 - 0.075/1.25 = 0.865. */
    c.kind = OPT_KIND_ADAGRAD;
    c.adagrad_initial_accumulator_value = 0.4375f;
    run_one(&c, 0.1f, 1.0f, (float[]){0.75f, 0.75f}, 2, out, sl);
    expect("adagrad", out, (double[]){0.925, 0.865}, 2);
    expect("adagrad accum", sl, (double[]){1.5625}, 1);

    /* rmsprop, decay 0.75, momentum 0.5, eps 1, lr 0.1, w 1, g 3, 1; ms starts at ONE (TF1):
     * ms1 = 1 + (9 - 1)*0.25 = 3, mom1 = 0.1*3/sqrt(3 + 1) = 0.15, w1 = 0.85;
     * ms2 = 3 + (1 - 3)*0.25 = 2.5, mom2 = 0.5*0.15 + 0.1/sqrt(3.5) = 0.075 + 0.0534522484
     *     = 0.1284522484, w2 = 0.85 - 0.1284522484 = 0.7215477516.
     * (Starting ms at 0 would give w1 = 1 - 0.3/sqrt(2.25 + 1) = 0.8335861.) */
    c.kind = OPT_KIND_RMSPROP;
    c.rmsprop_decay = 0.75f;
    c.rmsprop_momentum = 0.5f;
    c.opt_epsilon = 1.0f;
    run_one(&c, 0.1f, 1.0f, (float[]){3.0f, 1.0f}, 2, out, sl);
    expect("rmsprop", out, (double[]){0.85, 0.7215477516}, 2);
    expect("rmsprop slots", sl, (double[]){2.5, 0.1284522484}, 2);

    /* adam, beta1 0.5, beta2 0.75, eps 1 (epsilon hat), lr 0.1, w 1, g 2, 2:
     * t=1: beta powers 0.5, 0.75; alpha = 0.1*sqrt(0.25)/0.5 = 0.1; m = (2-0)*0.5 = 1;
     *      v = (4-0)*0.25 = 1; w1 = 1 - 1*0.1/(1 + 1) = 0.95;
     * t=2: powers 0.25, 0.5625; alpha = 0.1*sqrt(0.4375)/0.75 = 0.1*sqrt(7)/3;
     *      m = 1 + (2-1)*0.5 = 1.5; v = 1 + (4-1)*0.25 = 1.75 = 7/4;
     *      w2 = 0.95 - 1.5*alpha/(sqrt(7)/2 + 1) = 0.95 - 0.1*sqrt(7)/(2 + sqrt(7))
     *         = 0.95 - 0.2645751311/4.6457513111 = 0.95 - 0.0569499126 = 0.8930500874. */
    c.kind = OPT_KIND_ADAM;
    c.adam_beta1 = 0.5f;
    c.adam_beta2 = 0.75f;
    c.opt_epsilon = 1.0f;
    run_one(&c, 0.1f, 1.0f, (float[]){2.0f, 2.0f}, 2, out, sl);
    expect("adam", out, (double[]){0.95, 0.8930500874}, 2);
    expect("adam slots", sl, (double[]){1.5, 1.75}, 2);

    /* adadelta, rho 0.75, eps 1, lr 1, w 1, g 2, 2:
     * accum1 = 4*0.25 = 1; u1 = sqrt(0 + 1)/sqrt(1 + 1)*2 = sqrt(2) = 1.4142135624;
     * w1 = 1 - 1.4142135624 = -0.4142135624; accum_update1 = 2*0.25 = 0.5;
     * accum2 = 0.75 + 1 = 1.75; u2 = sqrt(1.5)/sqrt(2.75)*2 = 2*sqrt(6/11) = 1.4770978917;
     * w2 = -1.8913114541; accum_update2 = 0.5*0.75 + (24/11)*0.25 = 0.375 + 0.5454545455. */
    c.kind = OPT_KIND_ADADELTA;
    c.adadelta_rho = 0.75f;
    c.opt_epsilon = 1.0f;
    run_one(&c, 1.0f, 1.0f, (float[]){2.0f, 2.0f}, 2, out, sl);
    expect("adadelta", out, (double[]){-0.4142135624, -1.8913114541}, 2);
    expect("adadelta slots", sl, (double[]){1.75, 0.9204545455}, 2);

    /* ftrl, power -0.5, initial accumulator 0.5625 = 0.75^2, l1 = l2 = 0, lr 0.5, w 0.5, g 1, 3:
     * n1 = 0.5625 + 1 = 1.5625 = 1.25^2; linear1 = 1 - (1.25 - 0.75)/0.5*0.5 = 0.5;
     * w1 = (0 - 0.5)/(1.25/0.5) = -0.2;
     * n2 = 1.5625 + 9 = 10.5625 = 3.25^2; linear2 = 0.5 + 3 - (3.25 - 1.25)/0.5*(-0.2) = 4.3;
     * w2 = -4.3/(3.25/0.5) = -0.6615384615. */
    c.kind = OPT_KIND_FTRL;
    c.ftrl_learning_rate_power = -0.5f;
    c.ftrl_initial_accumulator_value = 0.5625f;
    c.ftrl_l1 = 0.0f;
    c.ftrl_l2 = 0.0f;
    run_one(&c, 0.5f, 0.5f, (float[]){1.0f, 3.0f}, 2, out, sl);
    expect("ftrl", out, (double[]){-0.2, -0.6615384615}, 2);
    expect("ftrl slots", sl, (double[]){10.5625, 4.3}, 2);

    /* Same with l1 = 0.1, l2 = 0.25: y gains 2*l2 = 0.5.
     * w1 = (0.1*sign(0.5) - 0.5)/(2.5 + 0.5) = -0.4/3 = -0.1333333333;
     * linear2 = 3.5 - 4*(-0.1333333333) = 4.0333333333;
     * w2 = (0.1 - 4.0333333333)/(6.5 + 0.5) = -0.5619047619. */
    c.ftrl_l1 = 0.1f;
    c.ftrl_l2 = 0.25f;
    run_one(&c, 0.5f, 0.5f, (float[]){1.0f, 3.0f}, 2, out, NULL);
    expect("ftrl l1 l2", out, (double[]){-0.1333333333, -0.5619047619}, 2);

    /* l1 = 0.6 >= |linear1| = 0.5: the weight is shrunk to exactly 0. */
    c.ftrl_l1 = 0.6f;
    c.ftrl_l2 = 0.0f;
    run_one(&c, 0.5f, 0.5f, (float[]){1.0f}, 1, out, NULL);
    assert_true(out[0] == 0.0f);

    /* Weight decay 0.5 through opt_apply on a DECAY tensor, sgd lr 0.1, w 1, g 0.5:
     * g' = 0.5 + 0.5*1 = 1, w1 = 0.9; without the DECAY flag w1 = 0.95. */
    c.kind = OPT_KIND_SGD;
    float w2[2] = {1.0f, 1.0f}, gg[2] = {0.5f, 0.5f};
    param_desc d[2] = {{"a/weights", 0, 1, 0, {0}, PARAM_FLAG_TRAINABLE | PARAM_FLAG_DECAY},
                       {"a/biases", 1, 1, 0, {0}, PARAM_FLAG_TRAINABLE}};
    opt_apply(w2, NULL, 0, gg, 2, d, 2, &c, 0.1f, 0.5f, NULL);
    expect("sgd weight decay", w2, (double[]){0.9, 0.95}, 2);
}

static void test_names_slots_scalars(void **state) {
    (void)state;
    for (int k = 0; k < OPT_KIND_COUNT; k++) {
        opt_kind back;
        assert_int_equal(opt_kind_from_name(opt_kind_name((opt_kind)k), &back, NULL), 0);
        assert_int_equal(back, k);
        for (int j = 0; j < opt_slot_count((opt_kind)k); j++)
            assert_non_null(opt_slot_name((opt_kind)k, j));
    }
    sb_err e;
    opt_kind kk;
    assert_int_equal(opt_kind_from_name("adamw", &kk, &e), SB_E_USAGE);
    assert_non_null(strstr(e.msg, "Optimizer [adamw] was not recognized"));

    assert_int_equal(opt_slot_count(OPT_KIND_SGD), 0);
    assert_int_equal(opt_slot_count(OPT_KIND_MOMENTUM), 1);
    assert_int_equal(opt_slot_count(OPT_KIND_RMSPROP), 2);
    assert_string_equal(opt_slot_name(OPT_KIND_RMSPROP, 0), "RMSProp");
    assert_string_equal(opt_slot_name(OPT_KIND_RMSPROP, 1), "RMSProp_1");
    assert_string_equal(opt_slot_name(OPT_KIND_ADAM, 1), "Adam_1");
    assert_string_equal(opt_slot_name(OPT_KIND_MOMENTUM, 0), "Momentum");
    assert_int_equal(opt_scalar_count(OPT_KIND_ADAM), 2);
    assert_int_equal(opt_scalar_count(OPT_KIND_RMSPROP), 0);
    assert_string_equal(opt_scalar_name(OPT_KIND_ADAM, 0), "beta1_power");
    assert_string_equal(opt_scalar_name(OPT_KIND_ADAM, 1), "beta2_power");

    /* Initial slot values: TF1's RMSProp "rms" = 1, accumulators = initial_accumulator_value. */
    opt_config c;
    opt_config_default(&c);
    assert_int_equal(c.kind, OPT_KIND_RMSPROP);
    float s[2 * 5];
    opt_slots_init(s, 5, 5, &c);
    for (int i = 0; i < 5; i++) {
        assert_true(s[i] == 1.0f);
        assert_true(s[5 + i] == 0.0f);
    }
    c.kind = OPT_KIND_ADAGRAD;
    opt_slots_init(s, 5, 5, &c);
    for (int i = 0; i < 5; i++) assert_true(s[i] == 0.1f);
    c.kind = OPT_KIND_FTRL;
    c.ftrl_initial_accumulator_value = 0.25f;
    opt_slots_init(s, 5, 5, &c);
    for (int i = 0; i < 5; i++) assert_true(s[i] == 0.25f && s[5 + i] == 0.0f);

    /* Adam's beta powers: start at beta, multiplied in float32 after every step. */
    c.kind = OPT_KIND_ADAM;
    float sc[OPT_MAX_SCALARS];
    opt_scalars_init(sc, &c);
    assert_true(sc[0] == 0.9f && sc[1] == 0.999f);
    opt_scalars_advance(sc, &c);
    assert_true(sc[0] == 0.9f * 0.9f && sc[1] == 0.999f * 0.999f);
}

static void test_config_check(void **state) {
    (void)state;
    opt_config c;
    sb_err e;
    opt_config_default(&c);
    for (int k = 0; k < OPT_KIND_COUNT; k++) {
        c.kind = (opt_kind)k;
        assert_int_equal(opt_config_check(&c, &e), 0);
    }
    c.kind = OPT_KIND_ADAGRAD;
    c.adagrad_initial_accumulator_value = 0.0f;
    assert_int_equal(opt_config_check(&c, &e), SB_E_RANGE);
    assert_non_null(strstr(e.msg, "--adagrad_initial_accumulator_value"));
    opt_config_default(&c);
    c.kind = OPT_KIND_FTRL;
    c.ftrl_learning_rate_power = 0.5f;
    assert_int_equal(opt_config_check(&c, &e), SB_E_RANGE);
    assert_non_null(strstr(e.msg, "--ftrl_learning_rate_power"));
    c.ftrl_learning_rate_power = -0.5f;
    c.ftrl_l2 = -1.0f;
    assert_int_equal(opt_config_check(&c, &e), SB_E_RANGE);
    assert_non_null(strstr(e.msg, "--ftrl_l2"));
    opt_config_default(&c);
    c.opt_epsilon = NAN;
    assert_int_equal(opt_config_check(&c, &e), SB_E_RANGE);
    assert_non_null(strstr(e.msg, "--opt_epsilon"));
}

static void test_apply_skips_non_trainable(void **state) {
    (void)state;
    /* vgg-like: weights (trainable, decay), biases (trainable), a moving mean (not trainable);
     * the slot planes cover only the trainable prefix (models/slim's layout). */
    enum { NW = 40, NB = 7, NM = 9, NT = NW + NB, N = NT + NM };
    param_desc d[3] = {
        {"net/conv1/weights", 0, NW, 1, {NW}, PARAM_FLAG_TRAINABLE | PARAM_FLAG_DECAY},
        {"net/conv1/biases", NW, NB, 1, {NB}, PARAM_FLAG_TRAINABLE},
        {"net/bn/moving_mean", NT, NM, 1, {NM}, PARAM_FLAG_MODEL},
    };
    float p[N], g[NT], s[2 * NT], ref[N], rs[2 * NT];
    for (int i = 0; i < N; i++) p[i] = ref[i] = 0.01f * (float)(i - 20);
    for (int i = 0; i < NT; i++) g[i] = 0.03f * (float)((i * 7) % 11 - 5);
    opt_config c;
    opt_config_default(&c);
    opt_slots_init(s, NT, NT, &c);
    opt_slots_init(rs, NT, NT, &c);
    float sc[OPT_MAX_SCALARS];
    opt_scalars_init(sc, &c);
    opt_apply(p, s, NT, g, N, d, 3, &c, 0.01f, 0.1f, sc);
    /* Reference: the two trainable ranges through opt_step, decay only on the weights. */
    opt_step(ref, rs, NT, g, NW, &c, 0.01f, 0.1f, NULL);
    opt_step(ref + NW, rs + NW, NT, g + NW, NB, &c, 0.01f, 0.0f, NULL);
    assert_memory_equal(p, ref, sizeof p);
    assert_memory_equal(s, rs, sizeof s);
    for (int i = NT; i < N; i++) assert_true(p[i] == 0.01f * (float)(i - 20));

    /* Adam's scalars advance once per opt_apply, however many tensors it updates. */
    c.kind = OPT_KIND_ADAM;
    opt_scalars_init(sc, &c);
    opt_slots_init(s, NT, NT, &c);
    opt_apply(p, s, NT, g, N, d, 3, &c, 0.01f, 0.0f, sc);
    assert_true(sc[0] == 0.9f * 0.9f);
}

static void test_l2_weight_decay(void **state) {
    (void)state;
    /* loss = wd * sum(w^2)/2 over DECAY tensors, trainable or not (slim's total loss has every
     * regularization loss): 0.5 * (1 + 4 + 9 + 16)/2 = 7.5 from {1,2} and {3,4}; the bias
     * {5} does not count. The gradient is added only where the tensor is also trainable. */
    float w[5] = {1, 2, 3, 4, 5}, g[5] = {1, 1, 1, 1, 1};
    param_desc d[3] = {
        {"a/weights", 0, 2, 1, {2}, PARAM_FLAG_DECAY | PARAM_FLAG_TRAINABLE},
        {"frozen/weights", 2, 2, 1, {2}, PARAM_FLAG_DECAY},
        {"a/biases", 4, 1, 1, {1}, PARAM_FLAG_TRAINABLE},
    };
    assert_true(fabs(opt_l2_loss(w, d, 3, 0.5f) - 7.5) < 1e-12);
    opt_l2_grad_add(g, w, d, 3, 0.5f);
    expect("l2 grad", g, (double[]){1.5, 2.0, 1.0, 1.0, 1.0}, 5);

    /* A big arena: same loss with 1 and 2 threads to 1e-12 (double accumulation), identical
     * gradients. */
    size_t n = 300007;
    float *big = malloc(n * sizeof(float)), *g1 = calloc(n, sizeof(float)),
          *g2 = calloc(n, sizeof(float));
    double exact = 0.0;
    for (size_t i = 0; i < n; i++) {
        big[i] = (float)((double)((i * 2654435761u) % 1000) / 1000.0 - 0.5);
        exact += (double)big[i] * big[i];
    }
    unsigned fl = PARAM_FLAG_DECAY | PARAM_FLAG_TRAINABLE;
    param_desc bd[2] = {{"x/weights", 0, n / 3, 1, {(int)(n / 3)}, fl},
                        {"y/weights", n / 3, n - n / 3, 1, {(int)(n - n / 3)}, fl}};
    omp_set_num_threads(1);
    double l1 = opt_l2_loss(big, bd, 2, 4e-5f);
    opt_l2_grad_add(g1, big, bd, 2, 4e-5f);
    omp_set_num_threads(2);
    double l2 = opt_l2_loss(big, bd, 2, 4e-5f);
    opt_l2_grad_add(g2, big, bd, 2, 4e-5f);
    assert_true(fabs(l1 - l2) <= 1e-12 * fabs(l1));
    assert_true(fabs(l1 - (double)4e-5f * exact / 2) <= 1e-12 * fabs(l1));
    assert_memory_equal(g1, g2, n * sizeof(float));
    free(big), free(g1), free(g2);
}

static void test_bit_identical_across_threads(void **state) {
    (void)state;
    /* Odd sizes so thread shares start at different vector positions. */
    size_t n = 100003;
    param_desc d[3] = {
        {"a/weights", 0, 33333, 1, {33333}, PARAM_FLAG_TRAINABLE | PARAM_FLAG_DECAY},
        {"a/biases", 33333, 7, 1, {7}, PARAM_FLAG_TRAINABLE},
        {"b/weights", 33340, n - 33340, 1, {(int)(n - 33340)},
         PARAM_FLAG_TRAINABLE | PARAM_FLAG_DECAY},
    };
    float *g = malloc(n * sizeof(float)), *w0 = malloc(n * sizeof(float));
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        w0[i] = (float)(x >> 8) / 16777216.0f - 0.5f;
        x = x * 1664525u + 1013904223u;
        g[i] = (float)(x >> 8) / 16777216.0f - 0.5f;
    }
    for (int k = 0; k < OPT_KIND_COUNT; k++) {
        opt_config c;
        opt_config_default(&c);
        c.kind = (opt_kind)k;
        c.ftrl_l1 = 0.001f;
        int ns = opt_slot_count(c.kind);
        float *res_p[3], *res_s[3];
        for (int th = 1; th <= 3; th++) {
            omp_set_num_threads(th);
            float *p = malloc(n * sizeof(float)), *s = malloc(2 * n * sizeof(float));
            memcpy(p, w0, n * sizeof(float));
            opt_slots_init(s, n, n, &c);
            float sc[OPT_MAX_SCALARS];
            opt_scalars_init(sc, &c);
            for (int step = 0; step < 3; step++) {
                opt_apply(p, s, n, g, n, d, 3, &c, 0.01f, 4e-5f, sc);
                opt_step(p, s, n, g, n, &c, 0.01f, 0.0f, sc);
            }
            res_p[th - 1] = p;
            res_s[th - 1] = s;
        }
        for (int th = 1; th < 3; th++) {
            if (memcmp(res_p[0], res_p[th], n * sizeof(float)) ||
                memcmp(res_s[0], res_s[th], (size_t)ns * n * sizeof(float)))
                fail_msg("%s: %d threads differ from 1 thread", opt_kind_name(c.kind), th + 1);
        }
        for (int th = 0; th < 3; th++) free(res_p[th]), free(res_s[th]);
    }
    omp_set_num_threads(2);
    free(g), free(w0);
}

static void count_piece(void *ctx, const param_desc *d, size_t off, size_t n) {
    unsigned char *seen = ctx;
    assert_true(off >= d->offset && off + n <= d->offset + d->count);
    for (size_t i = off; i < off + n; i++) seen[i]++;
}

static void test_param_share_partition(void **state) {
    (void)state;
    /* Every float of the selected descriptors is visited once, whatever nth; others never. */
    param_desc d[4] = {
        {"a", 0, 1000, 1, {1000}, PARAM_FLAG_TRAINABLE},
        {"b", 1000, 3, 1, {3}, PARAM_FLAG_MODEL},
        {"c", 1003, 17, 1, {17}, PARAM_FLAG_TRAINABLE | PARAM_FLAG_DECAY},
        {"d", 1020, 0, 1, {0}, PARAM_FLAG_TRAINABLE},
    };
    unsigned char seen[1020];
    for (int nth = 1; nth <= 7; nth++) {
        memset(seen, 0, sizeof seen);
        for (int ith = 0; ith < nth; ith++)
            param_share_for_each(d, 4, PARAM_FLAG_TRAINABLE, ith, nth, count_piece, seen);
        for (int i = 0; i < 1020; i++) assert_int_equal(seen[i], (i >= 1000 && i < 1003) ? 0 : 1);
    }
    memset(seen, 0, sizeof seen);
    param_share_for_each(d, 4, 0, 0, 1, count_piece, seen);
    for (int i = 0; i < 1020; i++) assert_int_equal(seen[i], 1);
}

static void test_ema(void **state) {
    (void)state;
    /* decay = min(decay, (1 + n)/(10 + n)) in float32. */
    assert_true(ema_decay_at(0.9999f, 0) == 0.1f);
    assert_true(ema_decay_at(0.9999f, 1) == 2.0f / 11.0f);
    assert_true(ema_decay_at(0.9999f, 90) == 91.0f / 100.0f);
    assert_true(ema_decay_at(0.9f, 1000) == 0.9f);          /* 1001/1010 = 0.991 > 0.9 */
    assert_true(ema_decay_at(0.9999f, 99990) == 0.9999f);   /* 99991/100000 > 0.9999 */
    assert_true(ema_decay_at(0.9999f, 89990) == 89991.0f / 90000.0f);

    /* Shadows start as copies of the model variables (weights AND a BN moving mean); a tensor
     * without PARAM_FLAG_MODEL is neither copied nor averaged. */
    param_desc d[3] = {
        {"n/weights", 0, 2, 1, {2}, PARAM_FLAG_MODEL | PARAM_FLAG_TRAINABLE},
        {"n/BatchNorm/moving_mean", 2, 1, 1, {1}, PARAM_FLAG_MODEL},
        {"not_a_model_variable", 3, 1, 1, {1}, 0},
    };
    float p[4] = {1.0f, 2.0f, 4.0f, 8.0f}, sh[4] = {-1, -1, -1, -1};
    ema_init(sh, p, d, 3);
    assert_true(sh[0] == 1.0f && sh[1] == 2.0f && sh[2] == 4.0f && sh[3] == -1.0f);

    /* Hand computed: variables move to {0, 0, 0}; step 0: decay 0.1, shadow -= (shadow - 0)*0.9
     * -> {0.1, 0.2, 0.4}; step 1: decay 2/11, shadow *= 2/11 -> {0.0181818, 0.0363636, 0.0727273}.
     * With decay 0.5 at step 100 (101/110 > 0.5): shadow toward 1: s = s - (s - 1)*0.5. */
    p[0] = p[1] = p[2] = 0.0f;
    ema_apply(sh, p, d, 3, 0.9999f, 0);
    expect("ema step 0", sh, (double[]){0.1, 0.2, 0.4}, 3);
    ema_apply(sh, p, d, 3, 0.9999f, 1);
    expect("ema step 1", sh, (double[]){0.2 / 11, 0.4 / 11, 0.8 / 11}, 3);
    assert_true(sh[3] == -1.0f);
    p[0] = p[1] = p[2] = 1.0f;
    ema_apply(sh, p, d, 3, 0.5f, 100);
    expect("ema decay 0.5", sh,
           (double[]){(0.2 / 11 + 1) / 2, (0.4 / 11 + 1) / 2, (0.8 / 11 + 1) / 2}, 3);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_sequences),
        cmocka_unit_test(test_hand_computed),
        cmocka_unit_test(test_names_slots_scalars),
        cmocka_unit_test(test_config_check),
        cmocka_unit_test(test_apply_skips_non_trainable),
        cmocka_unit_test(test_l2_weight_decay),
        cmocka_unit_test(test_bit_identical_across_threads),
        cmocka_unit_test(test_param_share_partition),
        cmocka_unit_test(test_ema),
    };
    return cmocka_run_group_tests_name("optimizer", tests, NULL, NULL);
}
