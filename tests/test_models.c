/* tests/test_models.c — models/slim: every net of the factory builds as slim builds it. Parameter
 * counts against slim's published numbers and against an independent PyTorch construction
 * (tests/reference/gen_param_counts.py), slim's variable names, shapes, initializers and
 * regularizers, FLOPs, the memory plan (alignment, no overlap of live gradient buffers), errors,
 * and the printers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sb.h"
#include "models/slim/models.h"
#include "models/slim/net_impl.h"
#include "tests/support/testutil.h"

static net *build(const char *name, int num_classes, int image_size, int batch) {
    net *n = NULL;
    sb_err e;
    net_options o = {.num_classes = num_classes, .image_size = image_size, .batch_size = batch};
    int rc = net_create(&n, name, &o, &e);
    if (rc != 0) fail_msg("net_create(%s): %s", name, e.msg);
    return n;
}

/* slim's published trainable counts with 1000 classes (issue 4). */
static void test_param_counts_slim(void **state) {
    (void)state;
    static const struct { const char *name; size_t count; } want[] = {
        {"vgg_16", 138357544}, {"vgg_19", 143667240}, {"vgg_a", 132863336},
        {"resnet_v1_50", 25557032}, {"resnet_v1_101", 44549160}, {"resnet_v1_152", 60192808},
    };
    for (size_t i = 0; i < SB_ARRAY_LEN(want); i++) {
        net *n = build(want[i].name, 1000, 0, 1);
        size_t got = net_param_count(n, NET_VAR_TRAINABLE);
        if (got != want[i].count) fail_msg("%s: %zu parameters, slim has %zu", want[i].name, got, want[i].count);
        net_destroy(n);
    }
}

/* Counts printed by an independent PyTorch construction of slim's definitions:
 *   /usr/bin/python3 tests/reference/gen_param_counts.py
 * (each net's default dataset: 1001 ImageNet classes at 3 channels, LeNet MNIST 10 classes at 1
 * channel, CifarNet 10 classes; trainable = without BN moving statistics). */
static const struct { const char *name; size_t trainable, all; } torch_counts[] = {
    {"vgg_a", 132867433, 132867433},
    {"vgg_16", 138361641, 138361641},
    {"vgg_19", 143671337, 143671337},
    {"resnet_v1_50", 25559081, 25612201},
    {"resnet_v1_101", 44551209, 44656553},
    {"resnet_v1_152", 60194857, 60346281},
    {"resnet_v1_200", 64675881, 64851881},
    {"resnet_v2_50", 25570409, 25615849},
    {"resnet_v2_101", 44579945, 44677609},
    {"resnet_v2_152", 60238953, 60382697},
    {"resnet_v2_200", 64728169, 64896489},
    {"lenet", 3274634, 3274634},
    {"cifarnet", 1756426, 1756426},
    {"inception_v1", 6618649, 6633209},
    {"inception_v3", 27145970, 27182194},
};

static void test_param_counts_pytorch(void **state) {
    (void)state;
    const char *const *names = net_model_names();
    int seen = 0;
    for (int i = 0; names[i]; i++) {
        int found = 0;
        for (size_t k = 0; k < SB_ARRAY_LEN(torch_counts); k++) {
            if (strcmp(torch_counts[k].name, names[i])) continue;
            found = 1;
            net *n = build(names[i], 0, 0, 1);
            size_t tr = net_param_count(n, NET_VAR_TRAINABLE), all = net_param_count(n, 0);
            if (tr != torch_counts[k].trainable || all != torch_counts[k].all)
                fail_msg("%s: %zu trainable / %zu all, PyTorch %zu / %zu", names[i], tr, all,
                         torch_counts[k].trainable, torch_counts[k].all);
            net_destroy(n);
        }
        if (!found) fail_msg("%s has no PyTorch count in torch_counts[]", names[i]);
        seen++;
    }
    assert_int_equal(seen, 15);
}

static void expect_var(const net *n, const char *name, int ndim, const int *shape, unsigned flags,
                       net_init_kind init, double value) {
    const net_var *v = net_var_find(n, name);
    if (!v) fail_msg("%s: no variable %s", net_name(n), name);
    assert_int_equal(v->ndim, ndim);
    for (int i = 0; i < ndim; i++) assert_int_equal(v->shape[i], shape[i]);
    if (v->flags != flags) fail_msg("%s: flags %u, want %u", name, v->flags, flags);
    if (v->init.kind != init)
        fail_msg("%s: init %s, want %s", name, net_init_kind_name(v->init.kind), net_init_kind_name(init));
    if (fabs(v->init.value - value) > 1e-6 * fabs(value) + 1e-9)
        fail_msg("%s: init value %g, want %g", name, v->init.value, value);
}

#define T NET_VAR_TRAINABLE
#define R NET_VAR_REGULARIZED
#define M NET_VAR_MOVING_STAT

static void test_variables_as_slim(void **state) {
    (void)state;
    net *n = build("vgg_16", 1000, 0, 1);
    expect_var(n, "vgg_16/conv1/conv1_1/weights", 4, (int[]){3, 3, 3, 64}, T | R,
               NET_INIT_GLOROT_UNIFORM, sqrt(6.0 / (27 + 576)));
    expect_var(n, "vgg_16/conv1/conv1_1/biases", 1, (int[]){64}, T, NET_INIT_ZEROS, 0);
    expect_var(n, "vgg_16/fc6/weights", 4, (int[]){7, 7, 512, 4096}, T | R, NET_INIT_GLOROT_UNIFORM,
               sqrt(6.0 / (49.0 * 512 + 49.0 * 4096)));
    expect_var(n, "vgg_16/fc8/weights", 4, (int[]){1, 1, 4096, 1000}, T | R, NET_INIT_GLOROT_UNIFORM,
               sqrt(6.0 / (4096.0 + 1000)));
    assert_null(net_var_find(n, "vgg_16/conv1/conv1_3/weights"));
    net_destroy(n);

    n = build("resnet_v1_50", 0, 0, 1);
    const char *u = "resnet_v1_50/block1/unit_1/bottleneck_v1";
    char name[256];
    snprintf(name, sizeof name, "%s/conv1/weights", u);
    expect_var(n, name, 4, (int[]){1, 1, 64, 64}, T | R, NET_INIT_VARIANCE_SCALING, sqrt(2.6 / 64));
    snprintf(name, sizeof name, "%s/conv1/BatchNorm/gamma", u);
    expect_var(n, name, 1, (int[]){64}, T, NET_INIT_ONES, 0);
    snprintf(name, sizeof name, "%s/conv1/BatchNorm/moving_mean", u);
    expect_var(n, name, 1, (int[]){64}, M, NET_INIT_ZEROS, 0);
    snprintf(name, sizeof name, "%s/conv1/BatchNorm/moving_variance", u);
    expect_var(n, name, 1, (int[]){64}, M, NET_INIT_ONES, 0);
    snprintf(name, sizeof name, "%s/shortcut/weights", u);
    expect_var(n, name, 4, (int[]){1, 1, 64, 256}, T | R, NET_INIT_VARIANCE_SCALING, sqrt(2.6 / 64));
    snprintf(name, sizeof name, "%s/conv1/biases", u);
    assert_null(net_var_find(n, name)); /* convs with a normalizer have no biases */
    expect_var(n, "resnet_v1_50/conv1/weights", 4, (int[]){7, 7, 3, 64}, T | R,
               NET_INIT_VARIANCE_SCALING, sqrt(2.6 / 147));
    expect_var(n, "resnet_v1_50/logits/biases", 1, (int[]){1001}, T, NET_INIT_ZEROS, 0);
    /* the identity shortcut of block1/unit_2 has no variables; unit_3 subsamples */
    assert_null(net_var_find(n, "resnet_v1_50/block1/unit_2/bottleneck_v1/shortcut/weights"));
    assert_non_null(net_var_find(n, "resnet_v1_50/block4/unit_3/bottleneck_v1/conv3/BatchNorm/beta"));
    assert_null(net_var_find(n, "resnet_v1_50/block4/unit_4/bottleneck_v1/conv3/BatchNorm/beta"));
    net_destroy(n);

    n = build("resnet_v2_50", 0, 0, 1);
    expect_var(n, "resnet_v2_50/conv1/biases", 1, (int[]){64}, T, NET_INIT_ZEROS, 0);
    expect_var(n, "resnet_v2_50/block1/unit_1/bottleneck_v2/preact/gamma", 1, (int[]){64}, T,
               NET_INIT_ONES, 0);
    expect_var(n, "resnet_v2_50/block1/unit_1/bottleneck_v2/shortcut/biases", 1, (int[]){256}, T,
               NET_INIT_ZEROS, 0);
    expect_var(n, "resnet_v2_50/block1/unit_1/bottleneck_v2/conv3/biases", 1, (int[]){256}, T,
               NET_INIT_ZEROS, 0);
    expect_var(n, "resnet_v2_50/postnorm/moving_variance", 1, (int[]){2048}, M, NET_INIT_ONES, 0);
    assert_null(net_var_find(n, "resnet_v2_50/block1/unit_1/bottleneck_v2/conv2/biases"));
    net_destroy(n);

    n = build("inception_v1", 0, 0, 1);
    expect_var(n, "InceptionV1/Conv2d_1a_7x7/weights", 4, (int[]){7, 7, 3, 64}, T | R,
               NET_INIT_TRUNCATED_NORMAL, 0.01);
    expect_var(n, "InceptionV1/Conv2d_1a_7x7/BatchNorm/beta", 1, (int[]){64}, T, NET_INIT_ZEROS, 0);
    assert_null(net_var_find(n, "InceptionV1/Conv2d_1a_7x7/BatchNorm/gamma")); /* scale=False */
    expect_var(n, "InceptionV1/Mixed_5b/Branch_2/Conv2d_0a_3x3/weights", 4, (int[]){3, 3, 32, 128},
               T | R, NET_INIT_TRUNCATED_NORMAL, 0.01);
    expect_var(n, "InceptionV1/Logits/Conv2d_0c_1x1/weights", 4, (int[]){1, 1, 1024, 1001}, T | R,
               NET_INIT_VARIANCE_SCALING, sqrt(2.6 / 1024));
    net_destroy(n);

    n = build("inception_v3", 0, 0, 1);
    expect_var(n, "InceptionV3/AuxLogits/Conv2d_2a_5x5/weights", 4, (int[]){5, 5, 128, 768}, T | R,
               NET_INIT_TRUNCATED_NORMAL, 0.01);
    expect_var(n, "InceptionV3/AuxLogits/Conv2d_2b_1x1/weights", 4, (int[]){1, 1, 768, 1001},
               T | R, NET_INIT_TRUNCATED_NORMAL, 0.001);
    expect_var(n, "InceptionV3/Mixed_5c/Branch_1/Conv_1_0c_5x5/weights", 4, (int[]){5, 5, 48, 64},
               T | R, NET_INIT_VARIANCE_SCALING, sqrt(2.6 / (25 * 48)));
    expect_var(n, "InceptionV3/Mixed_6a/Branch_0/Conv2d_1a_1x1/weights", 4,
               (int[]){3, 3, 288, 384}, T | R, NET_INIT_VARIANCE_SCALING, sqrt(2.6 / (9 * 288)));
    expect_var(n, "InceptionV3/Mixed_7b/Branch_1/Conv2d_0b_3x1/weights", 4,
               (int[]){3, 1, 384, 384}, T | R, NET_INIT_VARIANCE_SCALING, sqrt(2.6 / (3 * 384)));
    expect_var(n, "InceptionV3/Logits/Conv2d_1c_1x1/biases", 1, (int[]){1001}, T, NET_INIT_ZEROS, 0);
    net_destroy(n);

    n = build("cifarnet", 0, 0, 1);
    expect_var(n, "CifarNet/conv1/weights", 4, (int[]){5, 5, 3, 64}, T, NET_INIT_TRUNCATED_NORMAL, 0.05);
    expect_var(n, "CifarNet/fc3/weights", 2, (int[]){4096, 384}, T | R, NET_INIT_TRUNCATED_NORMAL, 0.04);
    expect_var(n, "CifarNet/fc3/biases", 1, (int[]){384}, T, NET_INIT_CONSTANT, 0.1);
    expect_var(n, "CifarNet/logits/weights", 2, (int[]){192, 10}, T, NET_INIT_TRUNCATED_NORMAL,
               1.0 / 192);
    expect_var(n, "CifarNet/logits/biases", 1, (int[]){10}, T, NET_INIT_ZEROS, 0);
    net_destroy(n);

    n = build("lenet", 0, 0, 1);
    expect_var(n, "LeNet/conv1/weights", 4, (int[]){5, 5, 1, 32}, T | R, NET_INIT_TRUNCATED_NORMAL, 0.1);
    expect_var(n, "LeNet/fc3/weights", 2, (int[]){3136, 1024}, T | R, NET_INIT_TRUNCATED_NORMAL, 0.1);
    expect_var(n, "LeNet/fc4/biases", 1, (int[]){10}, T, NET_INIT_ZEROS, 0);
    net_destroy(n);
}

/* Every variable name is unique, parameters are 64-byte aligned and do not overlap, trainable
 * ones come first so the gradients arena is contiguous. */
static void test_variable_layout(void **state) {
    (void)state;
    const char *const *names = net_model_names();
    for (int m = 0; names[m]; m++) {
        net *n = build(names[m], 0, 0, 2);
        int nv = net_num_vars(n);
        size_t end_trainable = 0;
        for (int i = 0; i < nv; i++) {
            const net_var *v = net_var_at(n, i);
            assert_int_equal(v->offset % (SB_ALIGN / sizeof(float)), 0);
            assert_true(v->offset + v->count <= net_params_len(n));
            if (v->flags & NET_VAR_TRAINABLE) {
                assert_true(v->offset + v->count <= net_grads_len(n));
                if (v->offset + v->count > end_trainable) end_trainable = v->offset + v->count;
            } else {
                assert_true(v->offset >= net_grads_len(n));
            }
            for (int j = i + 1; j < nv; j++) {
                const net_var *w = net_var_at(n, j);
                if (!strcmp(v->name, w->name)) fail_msg("%s: duplicate variable %s", names[m], v->name);
                assert_true(v->offset + v->count <= w->offset || w->offset + w->count <= v->offset);
            }
        }
        assert_true(net_grads_len(n) - end_trainable < SB_ALIGN / sizeof(float));
        net_destroy(n);
    }
}

static void test_flops(void **state) {
    (void)state;
    static const struct { const char *name; double gflops; } want[] = {
        /* 2 * multiply-adds: VGG-16's 15.47 G multiply-adds, ResNet-50 with slim's subsampling in
         * the last unit of blocks 1-3 (cheaper than torchvision's 4.1 G), Inception v3 with the
         * auxiliary head, GoogLeNet's 1.5 G. */
        {"vgg_16", 30.94}, {"resnet_v1_50", 6.965}, {"resnet_v2_50", 6.965},
        {"inception_v3", 11.44}, {"inception_v1", 3.00},
    };
    for (size_t i = 0; i < SB_ARRAY_LEN(want); i++) {
        net *n = build(want[i].name, 1000, 0, 4);
        double g = net_flops_per_image(n) / 1e9;
        if (fabs(g - want[i].gflops) > 0.01 * want[i].gflops)
            fail_msg("%s: %.3f GFLOPs per image, expected about %.3f", want[i].name, g, want[i].gflops);
        net_destroy(n);
    }
    /* FLOPs per image do not depend on the batch */
    net *a = build("lenet", 0, 0, 1), *b = build("lenet", 0, 0, 7);
    assert_true(fabs(net_flops_per_image(a) - net_flops_per_image(b)) < 1e-6 * net_flops_per_image(a));
    /* conv1 5x5x1x32 at 28x28, conv2 5x5x32x64 at 14x14, fc3 3136x1024, fc4 1024x10 */
    double lenet = 2.0 * (28 * 28 * 32 * 25 + 14 * 14 * 64 * 25 * 32 + 3136 * 1024 + 1024 * 10);
    assert_true(fabs(net_flops_per_image(a) - lenet) < 1.0);
    net_destroy(a);
    net_destroy(b);
}

static char *print_to_string(const net *n, int dot) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    if (dot) net_write_dot(f, n);
    else net_print(f, n);
    fclose(f);
    return buf;
}

/* Layer shapes as slim gets them, read from the printed table. */
static void expect_line(const char *table, const char *scope, const char *kind, const char *shape) {
    char pat[512];
    const char *p = table;
    size_t sl = strlen(scope);
    while ((p = strstr(p, scope)) != NULL) {
        if ((p == table || p[-1] == '\n') && p[sl] == ' ') break;
        p += sl;
    }
    if (!p) fail_msg("no layer %s in the table", scope);
    const char *eol = strchr(p, '\n');
    snprintf(pat, sizeof pat, "%.*s", (int)(eol - p), p);
    if (!strstr(pat, kind) || !strstr(pat, shape))
        fail_msg("layer line \"%s\": want kind %s shape %s", pat, kind, shape);
}

static void test_shapes_and_print(void **state) {
    (void)state;
    net *n = build("resnet_v1_50", 1000, 0, 2);
    char *t = print_to_string(n, 0);
    expect_line(t, "resnet_v1_50/conv1", "conv2d", "112x112x64");
    expect_line(t, "resnet_v1_50/pool1", "max_pool", "56x56x64");
    /* stride in the LAST unit of block1: unit_3's conv2 halves 56 -> 28, its shortcut subsamples */
    expect_line(t, "resnet_v1_50/block1/unit_2/bottleneck_v1/conv2", "conv2d", "56x56x64");
    expect_line(t, "resnet_v1_50/block1/unit_3/bottleneck_v1/conv2", "conv2d", "28x28x64");
    expect_line(t, "resnet_v1_50/block1/unit_3/bottleneck_v1/shortcut", "max_pool", "28x28x256");
    expect_line(t, "resnet_v1_50/block2/unit_1/bottleneck_v1/shortcut", "conv2d", "28x28x512");
    expect_line(t, "resnet_v1_50/block4/unit_3/bottleneck_v1/Relu", "relu", "7x7x2048");
    expect_line(t, "resnet_v1_50/pool5", "reduce_mean", "1x1x2048");
    expect_line(t, "resnet_v1_50/logits", "conv2d", "1x1x1000");
    assert_non_null(strstr(t, "25,557,032 trainable parameters"));
    free(t);
    t = print_to_string(n, 1);
    assert_true(!strncmp(t, "digraph \"resnet_v1_50\" {", 24));
    assert_non_null(strstr(t, "images -> L0;"));
    assert_non_null(strstr(t, "}\n"));
    free(t);
    net_destroy(n);

    n = build("inception_v3", 0, 0, 1);
    t = print_to_string(n, 0);
    expect_line(t, "InceptionV3/Conv2d_1a_3x3", "conv2d", "149x149x32");
    expect_line(t, "InceptionV3/MaxPool_5a_3x3", "max_pool", "35x35x192");
    expect_line(t, "InceptionV3/Mixed_5b/concat", "concat", "35x35x256");
    expect_line(t, "InceptionV3/Mixed_6a/concat", "concat", "17x17x768");
    expect_line(t, "InceptionV3/Mixed_7a/concat", "concat", "8x8x1280");
    expect_line(t, "InceptionV3/Mixed_7c/concat", "concat", "8x8x2048");
    expect_line(t, "InceptionV3/AuxLogits/AvgPool_1a_5x5", "avg_pool", "5x5x768");
    expect_line(t, "InceptionV3/AuxLogits/Conv2d_2b_1x1", "conv2d", "1x1x1001");
    expect_line(t, "InceptionV3/Logits/AvgPool_1a_8x8", "avg_pool", "1x1x2048");
    free(t);
    net_destroy(n);

    n = build("inception_v1", 0, 0, 1);
    t = print_to_string(n, 0);
    expect_line(t, "InceptionV1/MaxPool_3a_3x3", "max_pool", "28x28x192");
    expect_line(t, "InceptionV1/Mixed_4f/concat", "concat", "14x14x832");
    expect_line(t, "InceptionV1/Mixed_5c/concat", "concat", "7x7x1024");
    free(t);
    net_destroy(n);

    n = build("vgg_16", 0, 0, 1);
    t = print_to_string(n, 0);
    expect_line(t, "vgg_16/pool5", "max_pool", "7x7x512");
    expect_line(t, "vgg_16/fc6", "conv2d", "1x1x4096");
    expect_line(t, "vgg_16/dropout7", "dropout", "1x1x4096");
    free(t);
    net_destroy(n);

    n = build("cifarnet", 0, 0, 1);
    t = print_to_string(n, 0);
    expect_line(t, "CifarNet/norm1", "lrn", "16x16x64");
    expect_line(t, "CifarNet/Flatten", "flatten", "1x1x4096");
    free(t);
    net_destroy(n);

    /* every net prints and writes dot */
    const char *const *names = net_model_names();
    for (int i = 0; names[i]; i++) {
        n = build(names[i], 0, 0, 1);
        t = print_to_string(n, 0);
        assert_non_null(strstr(t, "total: "));
        free(t);
        t = print_to_string(n, 1);
        assert_non_null(strstr(t, "digraph"));
        free(t);
        net_destroy(n);
    }
}

/* Smaller inputs: inception_v3 reduces its head kernels as slim's
 * _reduced_kernel_size_for_small_input; resnet works at 64 px; vgg needs a 1x1 fc8 map. */
static void test_image_sizes_and_errors(void **state) {
    (void)state;
    net *n = build("inception_v3", 10, 139, 1);
    assert_non_null(net_var_find(n, "InceptionV3/AuxLogits/Conv2d_2a_1x1/weights"));
    char *t = print_to_string(n, 0);
    expect_line(t, "InceptionV3/Logits/AvgPool_1a_3x3", "avg_pool", "1x1x2048");
    free(t);
    net_destroy(n);

    n = build("resnet_v2_50", 10, 64, 2);
    t = print_to_string(n, 0);
    expect_line(t, "resnet_v2_50/postnorm/Relu", "relu", "2x2x2048");
    free(t);
    net_destroy(n);

    sb_err e;
    net_options o = {.image_size = 64};
    n = (net *)1;
    assert_int_equal(net_create(&n, "vgg_16", &o, &e), SB_E_RANGE);
    assert_null(n);
    assert_non_null(strstr(e.msg, "vgg_16"));
    o.image_size = 40;
    assert_int_equal(net_create(&n, "inception_v3", &o, &e), SB_E_RANGE);
    assert_non_null(strstr(e.msg, "InceptionV3/"));
    assert_int_equal(net_create(&n, "resnet_v3_50", NULL, &e), SB_E_NOTFOUND);
    assert_non_null(strstr(e.msg, "resnet_v3_50"));
    assert_non_null(strstr(e.msg, "inception_v3"));
    assert_int_equal(net_default_image_size("inception_v3"), 299);
    assert_int_equal(net_default_image_size("lenet"), 28);
    assert_int_equal(net_default_image_size("nope"), 0);
    net_destroy(NULL);
}

/* Activation gradients: buffers of tensors whose live ranges (producer .. last consumer) overlap
 * never share bytes, and sharing saves memory. */
static int live_hi(const net *n, int owner) {
    int hi = SB_MAX(n->tensors[owner].last_consumer, n->tensors[owner].producer);
    for (int k = owner + 1; k < n->n_tensors; k++) /* views extend the live range */
        if (n->tensors[k].storage == owner && n->tensors[k].last_consumer > hi)
            hi = n->tensors[k].last_consumer;
    return hi;
}

static void test_grad_liveness(void **state) {
    (void)state;
    const char *models[] = {"resnet_v1_50", "inception_v3", "vgg_a", "cifarnet"};
    for (size_t m = 0; m < SB_ARRAY_LEN(models); m++) {
        net *n = build(models[m], 0, 0, 2);
        size_t sum = 0;
        for (int i = 0; i < n->n_tensors; i++) {
            const net_tensor *a = &n->tensors[i];
            if (a->storage != i || a->producer < 0) continue;
            size_t ab = (size_t)a->N * a->H * a->W * a->C * 4;
            sum += ab;
            assert_int_equal(a->goff % SB_ALIGN, 0);
            assert_true(a->goff + ab <= n->scratch_off);
            int alo = a->producer, ahi = live_hi(n, i);
            for (int j = i + 1; j < n->n_tensors; j++) {
                const net_tensor *b = &n->tensors[j];
                if (b->storage != j || b->producer < 0) continue;
                size_t bb = (size_t)b->N * b->H * b->W * b->C * 4;
                int blo = b->producer, bhi = live_hi(n, j);
                if (alo <= bhi && blo <= ahi && !(a->goff + ab <= b->goff || b->goff + bb <= a->goff))
                    fail_msg("%s: gradients of %s and %s overlap while both live", models[m],
                             a->name, b->name);
            }
        }
        net_memory mem;
        net_memory_plan(n, &mem);
        assert_true(mem.act_grads < sum);
        net_destroy(n);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Execution: deterministic values shared with tests/reference/gen_nets.py. Element i of a tensor
 * named `name` is u = uniform[-1, 1) from SplitMix64(FNV-1a(name) ^ i * golden); weights get
 * u * sqrt(6 / fan_in), biases and beta 0.1 u, gamma 1 + 0.1 u, images u, label b = (7 b + 3) % K.
 * ------------------------------------------------------------------------------------------- */
static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

static double det_uniform(uint64_t key, uint64_t i) {
    uint64_t z = key ^ (i * 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0;
}

static void det_fill(net *n) {
    net_alloc(n);
    float *p = net_params(n);
    for (int i = 0; i < net_num_vars(n); i++) {
        const net_var *v = net_var_at(n, i);
        if (!(v->flags & NET_VAR_TRAINABLE)) continue;
        uint64_t key = fnv1a(v->name);
        const char *leaf = strrchr(v->name, '/') + 1;
        for (size_t k = 0; k < v->count; k++) {
            double u = det_uniform(key, k), val;
            if (v->ndim >= 2) val = u * sqrt(6.0 / v->init.fan_in);
            else if (!strcmp(leaf, "gamma")) val = 1.0 + 0.1 * u;
            else val = 0.1 * u;
            p[v->offset + k] = (float)val;
        }
    }
    float *x = net_input(n);
    size_t nx = (size_t)net_batch_size(n) * net_image_size(n) * net_image_size(n) * net_image_channels(n);
    uint64_t key = fnv1a("images");
    for (size_t k = 0; k < nx; k++) x[k] = (float)det_uniform(key, k);
    for (int b = 0; b < net_batch_size(n); b++) net_labels(n)[b] = (7 * b + 3) % net_num_classes(n);
}

/* Forward + backward, then central differences on the largest gradients of a few variables. */
static void check_fd(const char *model, int image_size, int batch, int classes, const char *const *vars,
                     int per_var) {
    net *n = NULL;
    sb_err e;
    net_options o = {.num_classes = classes, .image_size = image_size, .batch_size = batch};
    if (net_create(&n, model, &o, &e)) fail_msg("%s: %s", model, e.msg);
    det_fill(n);
    const uint64_t seed = 1234;
    float loss = net_forward(n, NET_MODE_TRAIN, seed);
    assert_true(isfinite(loss) && loss > 0);
    memset(net_grads(n), 0, net_grads_len(n) * sizeof(float));
    net_backward(n);
    /* backward writes every variable's gradient (the training step does not zero them): a
     * second pass with NaNs in them gives the same gradients, bit for bit */
    float *g1 = malloc(net_grads_len(n) * sizeof(float));
    memcpy(g1, net_grads(n), net_grads_len(n) * sizeof(float));
    for (int i = 0; i < net_num_vars(n); i++) {
        const net_var *v = net_var_at(n, i);
        if (v->flags & NET_VAR_TRAINABLE)
            for (size_t k = 0; k < v->count; k++) net_grads(n)[v->offset + k] = NAN;
    }
    net_forward(n, NET_MODE_TRAIN, seed);
    net_backward(n);
    for (size_t k = 0; k < net_grads_len(n); k++)
        if (memcmp(&net_grads(n)[k], &g1[k], sizeof(float)))
            fail_msg("%s: gradient %zu not overwritten: %g then %g", model, k, g1[k],
                     net_grads(n)[k]);
    float *p = net_params(n);
    for (int vi = 0; vars[vi]; vi++) {
        const net_var *v = net_var_find(n, vars[vi]);
        if (!v) fail_msg("%s: no variable %s", model, vars[vi]);
        size_t chosen[8];
        SB_ASSERT(per_var <= 8);
        for (int r = 0; r < per_var; r++) {
            /* the r-th largest |gradient| of the variable */
            size_t idx = v->offset;
            float bg = -1;
            for (size_t k = v->offset; k < v->offset + v->count; k++) {
                int taken = 0;
                for (int q = 0; q < r; q++) taken |= chosen[q] == k;
                if (!taken && fabsf(g1[k]) > bg) {
                    bg = fabsf(g1[k]);
                    idx = k;
                }
            }
            chosen[r] = idx;
            float w0 = p[idx], h = 2e-3f * fmaxf(fabsf(w0), 0.1f);
            p[idx] = w0 + h;
            double lp = net_forward(n, NET_MODE_TRAIN, seed);
            p[idx] = w0 - h;
            double lm = net_forward(n, NET_MODE_TRAIN, seed);
            p[idx] = w0;
            double fd = (lp - lm) / (2.0 * h), an = g1[idx];
            if (fabs(fd - an) > 0.06 * fabs(an) + 1e-3)
                fail_msg("%s: %s[%zu]: backward %.6g, finite difference %.6g", model, v->name,
                         idx - v->offset, an, fd);
        }
    }
    free(g1);
    net_destroy(n);
}

static void test_exec_finite_differences(void **state) {
    (void)state;
    static const char *const lenet_vars[] = {"LeNet/conv1/weights", "LeNet/conv2/biases",
                                             "LeNet/fc3/weights", "LeNet/fc4/weights",
                                             "LeNet/fc4/biases", NULL};
    check_fd("lenet", 28, 3, 10, lenet_vars, 2);
    static const char *const cifar_vars[] = {"CifarNet/conv1/weights", "CifarNet/conv2/weights",
                                             "CifarNet/fc3/biases", "CifarNet/logits/weights", NULL};
    check_fd("cifarnet", 32, 2, 10, cifar_vars, 2);
}

/* Batch norm, residual adds with strided identity shortcuts, concat, average pools and
 * inception_v3's two losses, at reduced image sizes. The variables are ones where float32
 * central differences are meaningful: with batch-2 batch norm the loss is far from smooth in the
 * first convolution's weights, and biases in front of a batch norm have a true gradient of 0. */
static void test_exec_finite_differences_deep(void **state) {
    (void)state;
    static const char *const v1_vars[] = {
        "resnet_v1_50/block3/unit_2/bottleneck_v1/conv1/weights",
        "resnet_v1_50/block2/unit_1/bottleneck_v1/shortcut/weights",
        "resnet_v1_50/block4/unit_3/bottleneck_v1/conv3/BatchNorm/beta",
        "resnet_v1_50/logits/weights", NULL};
    check_fd("resnet_v1_50", 64, 2, 10, v1_vars, 1);
    static const char *const v2_vars[] = {
        "resnet_v2_50/block1/unit_1/bottleneck_v2/preact/gamma",
        "resnet_v2_50/block2/unit_4/bottleneck_v2/conv2/weights",
        "resnet_v2_50/block4/unit_3/bottleneck_v2/conv2/BatchNorm/gamma",
        "resnet_v2_50/postnorm/beta", "resnet_v2_50/logits/biases", NULL};
    check_fd("resnet_v2_50", 64, 2, 10, v2_vars, 1);
    static const char *const v3_vars[] = {
        "InceptionV3/Mixed_5b/Branch_3/Conv2d_0b_1x1/BatchNorm/beta",
        "InceptionV3/Mixed_6e/Branch_2/Conv2d_0e_1x7/weights",
        "InceptionV3/AuxLogits/Conv2d_2b_1x1/weights",
        "InceptionV3/Mixed_7c/Branch_1/Conv2d_0c_3x1/BatchNorm/beta",
        "InceptionV3/Logits/Conv2d_1c_1x1/biases", NULL};
    check_fd("inception_v3", 107, 2, 10, v3_vars, 1);
}

/* ---------------------------------------------------------------------------------------------
 * Agreement with PyTorch (tests/reference/gen_nets.py): the same deterministic weights and
 * images, one training step; logits, losses, every variable's gradient (a random projection and
 * the L1 norm), the moving statistics after the update, and some gradients element by element.
 * ------------------------------------------------------------------------------------------- */
/* |ours - ref64| within 1e-3 of `scale` plus 6x the float32 rounding noise PyTorch measured
 * (gen_nets.py: untrained batch-norm nets amplify rounding, so float32 results, PyTorch's own
 * included, scatter around float64 by far more than 1e-3 in the early layers). */
static int close_to(double ours, double r64, double noise, double scale) {
    return fabs(ours - r64) <= 1e-3 * scale + 6.0 * noise + 1e-7;
}

static int compare_array(const char *model, const char *what, const float *ours, const char *f64,
                         const char *fnoise, size_t count) {
    tu_ref r, q;
    tu_ref_load(&r, f64);
    tu_ref_load(&q, fnoise);
    assert_int_equal(r.count, count);
    assert_int_equal(q.count, count);
    const float *a = r.data, *b = q.data;
    float m = 0;
    for (size_t i = 0; i < count; i++) m = fmaxf(m, fabsf(a[i]));
    size_t bad = 0, worst = 0;
    double wd = 0;
    for (size_t i = 0; i < count; i++) {
        if (close_to(ours[i], a[i], b[i], m)) continue;
        if (bad < 3)
            printf("%s: %s[%zu]: ours %.7g, PyTorch float64 %.7g, float32 noise %.3g\n", model, what, i,
                   ours[i], a[i], b[i]);
        if (fabs(ours[i] - a[i]) > wd) {
            wd = fabs(ours[i] - a[i]);
            worst = i;
        }
        bad++;
    }
    /* a few tail elements beyond the noise bound are the amplification's outliers; more than
     * 0.4% is a disagreement */
    size_t allowed = count / 250;
    if (bad)
        printf("%s: %s: %zu of %zu beyond the bound (%zu allowed), max diff %.3g at %zu (max |ref| "
               "%.3g)\n", model, what, bad, count, allowed, wd, worst, m);
    tu_ref_free(&r);
    tu_ref_free(&q);
    return bad > allowed;
}

static void check_against_torch(const char *model) {
    char path[512];
    const char *dir = getenv("SB_REF_DIR");
    snprintf(path, sizeof path, "%s/net_%s.txt", dir ? dir : "tests/reference", model);
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("%s: cannot open (run from the repository root; regenerate with "
                     "/usr/bin/python3 tests/reference/gen_nets.py %s)", path, model);
    int size, batch, classes;
    double loss64, aux64, loss_noise, aux_noise;
    char line[1024];
    if (!fgets(line, sizeof line, f) ||
        sscanf(line, "%d %d %d %lf %lf %lf %lf", &size, &batch, &classes, &loss64, &aux64,
               &loss_noise, &aux_noise) != 7)
        fail_msg("%s: bad header; regenerate with /usr/bin/python3 tests/reference/gen_nets.py", path);
    net *n = NULL;
    sb_err e;
    net_options o = {.num_classes = classes, .image_size = size, .batch_size = batch,
                     .dropout_keep_prob = 1.0f};
    if (net_create(&n, model, &o, &e)) fail_msg("%s: %s", model, e.msg);
    det_fill(n);
    net_forward(n, NET_MODE_TRAIN, 1);
    memset(net_grads(n), 0, net_grads_len(n) * sizeof(float));
    net_backward(n);

    int bad = 0;
    if (!close_to(net_loss(n, 0), loss64, loss_noise, loss64)) {
        printf("%s: loss %.7g, PyTorch %.7g\n", model, net_loss(n, 0), loss64);
        bad++;
    }
    if (!close_to(net_loss(n, 1), aux64, aux_noise, aux64)) {
        printf("%s: aux loss %.7g, PyTorch %.7g\n", model, net_loss(n, 1), aux64);
        bad++;
    }
    char f64[128], f32[128];
    snprintf(f64, sizeof f64, "net_%s_logits.bin", model);
    snprintf(f32, sizeof f32, "net_%s_logits_noise.bin", model);
    bad += compare_array(model, "logits", net_logits(n), f64, f32, (size_t)batch * classes);

    char vname[512], file[256];
    size_t cnt;
    double dot64, abs64, dot_noise, abs_noise;
    int checked = 0, full = 0;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "full %511s %255s", vname, file) == 2) {
            const net_var *v = net_var_find(n, vname);
            if (!v) fail_msg("%s: no variable %s", model, vname);
            snprintf(f32, sizeof f32, "%.*s_noise.bin", (int)(strlen(file) - 4), file);
            bad += compare_array(model, vname, net_grads(n) + v->offset, file, f32, v->count);
            full++;
            continue;
        }
        if (sscanf(line, "%511s %zu %lf %lf %lf %lf", vname, &cnt, &dot64, &abs64, &dot_noise,
                   &abs_noise) != 6)
            fail_msg("%s: bad line %s", path, line);
        const net_var *v = net_var_find(n, vname);
        if (!v) fail_msg("%s: PyTorch has variable %s, we do not", model, vname);
        assert_int_equal(v->count, cnt);
        const float *g = (v->flags & NET_VAR_TRAINABLE) ? net_grads(n) + v->offset
                                                        : net_params(n) + v->offset;
        char probe[600];
        snprintf(probe, sizeof probe, "%s#probe", vname);
        uint64_t key = fnv1a(probe);
        double dot = 0, sabs = 0;
        for (size_t k = 0; k < cnt; k++) {
            dot += (double)g[k] * det_uniform(key, k);
            sabs += fabs((double)g[k]);
        }
        if (!close_to(dot, dot64, dot_noise, abs64) || !close_to(sabs, abs64, abs_noise, abs64)) {
            if (bad < 12)
                printf("%s: %s: projection %.7g vs %.7g (noise %.3g), L1 %.7g vs %.7g (noise "
                       "%.3g)\n", model, vname, dot, dot64, dot_noise, sabs, abs64, abs_noise);
            bad++;
        }
        checked++;
    }
    fclose(f);
    if (checked != net_num_vars(n))
        fail_msg("%s: PyTorch lists %d variables, we have %d", model, checked, net_num_vars(n));
    assert_true(full > 0);
    net_destroy(n);
    if (bad) fail_msg("%s: %d mismatches against PyTorch", model, bad);
}

static void test_torch_lenet(void **state) { (void)state; check_against_torch("lenet"); }
static void test_torch_cifarnet(void **state) { (void)state; check_against_torch("cifarnet"); }
static void test_torch_resnet_v1_50(void **state) { (void)state; check_against_torch("resnet_v1_50"); }
static void test_torch_resnet_v2_50(void **state) { (void)state; check_against_torch("resnet_v2_50"); }
static void test_torch_inception_v3(void **state) { (void)state; check_against_torch("inception_v3"); }
/* slim's vgg_16 only squeezes a 1x1 fc8 map, so 224 px (batch 1) */
static void test_torch_vgg_16(void **state) { (void)state; check_against_torch("vgg_16"); }

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_param_counts_slim),
        cmocka_unit_test(test_param_counts_pytorch),
        cmocka_unit_test(test_variables_as_slim),
        cmocka_unit_test(test_variable_layout),
        cmocka_unit_test(test_flops),
        cmocka_unit_test(test_shapes_and_print),
        cmocka_unit_test(test_image_sizes_and_errors),
        cmocka_unit_test(test_grad_liveness),
        cmocka_unit_test(test_exec_finite_differences),
        cmocka_unit_test(test_exec_finite_differences_deep),
        cmocka_unit_test(test_torch_lenet),
        cmocka_unit_test(test_torch_cifarnet),
        cmocka_unit_test(test_torch_resnet_v1_50),
        cmocka_unit_test(test_torch_resnet_v2_50),
        cmocka_unit_test(test_torch_inception_v3),
        cmocka_unit_test(test_torch_vgg_16),
    };
    return cmocka_run_group_tests_name("models", tests, NULL, NULL);
}
