/* models/slim/inception_v3.c — slim's nets/inception_v3.py under inception_arg_scope, with the
 * auxiliary head. Stem (Conv2d_1a_3x3 .. MaxPool_5a_3x3) is VALID unless slim says SAME; the
 * Inception blocks Mixed_5b .. Mixed_7c are SAME with stride 1 except the grid reductions
 * (Mixed_6a, Mixed_7a). AuxLogits reads Mixed_6e: AvgPool_1a_5x5 (5x5/3 VALID), Conv2d_1b_1x1,
 * Conv2d_2a_KxK (K = min(map, 5), VALID, truncated normal 0.01), Conv2d_2b_1x1 (logits, truncated
 * normal 0.001); its loss has weight 0.4 as in train_image_classifier.py. Logits: AvgPool_1a_KxK
 * (K = min(map, 8), VALID, stride 2), Dropout_1b (keep 0.8), Conv2d_1c_1x1. Slim's names are kept
 * as they are, including Mixed_5c/Branch_1's "Conv2d_0b_1x1"/"Conv_1_0c_5x5" and Mixed_6a's 3x3
 * convs named "Conv2d_1a_1x1". depth_multiplier is 1, so depth(d) = d. */
#include <stdio.h>

#include "models/slim/net_impl.h"

static int conv(net *n, int x, int OC, int KH, int KW, const char *scope) {
    return nb_conv(n, x, OC, KH, KW, 1, -1, scope);
}

static int conv_s2_valid(net *n, int x, int OC, int K, const char *scope) {
    return nb_conv(n, x, OC, K, K, 2, KN_PADDING_VALID, scope);
}

/* Mixed_5b/5c/5d: 35x35. pool_depth 32 for 5b, 64 otherwise; 5c's odd Branch_1 names. */
static int mixed_5(net *n, int x, const char *scope, int pool_depth, int odd_names) {
    int br[4];
    nb_push(n, scope);
    nb_push(n, "Branch_0");
    br[0] = conv(n, x, 64, 1, 1, "Conv2d_0a_1x1");
    nb_pop(n);
    nb_push(n, "Branch_1");
    br[1] = conv(n, x, 48, 1, 1, odd_names ? "Conv2d_0b_1x1" : "Conv2d_0a_1x1");
    br[1] = conv(n, br[1], 64, 5, 5, odd_names ? "Conv_1_0c_5x5" : "Conv2d_0b_5x5");
    nb_pop(n);
    nb_push(n, "Branch_2");
    br[2] = conv(n, x, 64, 1, 1, "Conv2d_0a_1x1");
    br[2] = conv(n, br[2], 96, 3, 3, "Conv2d_0b_3x3");
    br[2] = conv(n, br[2], 96, 3, 3, "Conv2d_0c_3x3");
    nb_pop(n);
    nb_push(n, "Branch_3");
    br[3] = nb_avg_pool(n, x, 3, 3, 1, -1, "AvgPool_0a_3x3");
    br[3] = conv(n, br[3], pool_depth, 1, 1, "Conv2d_0b_1x1");
    nb_pop(n);
    int y = nb_concat(n, br, 4, "concat");
    nb_pop(n);
    return y;
}

/* Mixed_6b..6e: 17x17 with factorized 7x7 convs; c = 128, 160, 160, 192. */
static int mixed_6(net *n, int x, const char *scope, int c) {
    int br[4];
    nb_push(n, scope);
    nb_push(n, "Branch_0");
    br[0] = conv(n, x, 192, 1, 1, "Conv2d_0a_1x1");
    nb_pop(n);
    nb_push(n, "Branch_1");
    br[1] = conv(n, x, c, 1, 1, "Conv2d_0a_1x1");
    br[1] = conv(n, br[1], c, 1, 7, "Conv2d_0b_1x7");
    br[1] = conv(n, br[1], 192, 7, 1, "Conv2d_0c_7x1");
    nb_pop(n);
    nb_push(n, "Branch_2");
    br[2] = conv(n, x, c, 1, 1, "Conv2d_0a_1x1");
    br[2] = conv(n, br[2], c, 7, 1, "Conv2d_0b_7x1");
    br[2] = conv(n, br[2], c, 1, 7, "Conv2d_0c_1x7");
    br[2] = conv(n, br[2], c, 7, 1, "Conv2d_0d_7x1");
    br[2] = conv(n, br[2], 192, 1, 7, "Conv2d_0e_1x7");
    nb_pop(n);
    nb_push(n, "Branch_3");
    br[3] = nb_avg_pool(n, x, 3, 3, 1, -1, "AvgPool_0a_3x3");
    br[3] = conv(n, br[3], 192, 1, 1, "Conv2d_0b_1x1");
    nb_pop(n);
    int y = nb_concat(n, br, 4, "concat");
    nb_pop(n);
    return y;
}

/* Mixed_7b/7c: 8x8 with split 1x3/3x1 branches; 7b names its second Branch_1 conv
 * "Conv2d_0b_3x1", 7c "Conv2d_0c_3x1". */
static int mixed_7(net *n, int x, const char *scope, const char *b1_3x1) {
    int br[4], pair[2];
    nb_push(n, scope);
    nb_push(n, "Branch_0");
    br[0] = conv(n, x, 320, 1, 1, "Conv2d_0a_1x1");
    nb_pop(n);
    nb_push(n, "Branch_1");
    br[1] = conv(n, x, 384, 1, 1, "Conv2d_0a_1x1");
    pair[0] = conv(n, br[1], 384, 1, 3, "Conv2d_0b_1x3");
    pair[1] = conv(n, br[1], 384, 3, 1, b1_3x1);
    br[1] = nb_concat(n, pair, 2, "concat");
    nb_pop(n);
    nb_push(n, "Branch_2");
    br[2] = conv(n, x, 448, 1, 1, "Conv2d_0a_1x1");
    br[2] = conv(n, br[2], 384, 3, 3, "Conv2d_0b_3x3");
    pair[0] = conv(n, br[2], 384, 1, 3, "Conv2d_0c_1x3");
    pair[1] = conv(n, br[2], 384, 3, 1, "Conv2d_0d_3x1");
    br[2] = nb_concat(n, pair, 2, "concat");
    nb_pop(n);
    nb_push(n, "Branch_3");
    br[3] = nb_avg_pool(n, x, 3, 3, 1, -1, "AvgPool_0a_3x3");
    br[3] = conv(n, br[3], 192, 1, 1, "Conv2d_0b_1x1");
    nb_pop(n);
    int y = nb_concat(n, br, 4, "concat");
    nb_pop(n);
    return y;
}

void build_inception_v3(net *n) {
    n->sc = inception_arg_scope();
    int x = nb_input(n, n->opt.image_size, n->opt.image_size, n->opt.image_channels);
    nb_push(n, "InceptionV3");
    nb_scope outer = n->sc;

    /* stem: stride 1, VALID */
    n->sc.conv_pad = n->sc.pool_pad = KN_PADDING_VALID;
    x = nb_conv(n, x, 32, 3, 3, 2, -1, "Conv2d_1a_3x3");
    x = conv(n, x, 32, 3, 3, "Conv2d_2a_3x3");
    x = nb_conv(n, x, 64, 3, 3, 1, KN_PADDING_SAME, "Conv2d_2b_3x3");
    x = nb_max_pool(n, x, 3, 3, 2, -1, "MaxPool_3a_3x3");
    x = conv(n, x, 80, 1, 1, "Conv2d_3b_1x1");
    x = conv(n, x, 192, 3, 3, "Conv2d_4a_3x3");
    x = nb_max_pool(n, x, 3, 3, 2, -1, "MaxPool_5a_3x3");

    /* Inception blocks: stride 1, SAME */
    n->sc.conv_pad = n->sc.pool_pad = KN_PADDING_SAME;
    x = mixed_5(n, x, "Mixed_5b", 32, 0);
    x = mixed_5(n, x, "Mixed_5c", 64, 1);
    x = mixed_5(n, x, "Mixed_5d", 64, 0);

    int br[4];
    nb_push(n, "Mixed_6a");
    nb_push(n, "Branch_0");
    br[0] = conv_s2_valid(n, x, 384, 3, "Conv2d_1a_1x1");
    nb_pop(n);
    nb_push(n, "Branch_1");
    br[1] = conv(n, x, 64, 1, 1, "Conv2d_0a_1x1");
    br[1] = conv(n, br[1], 96, 3, 3, "Conv2d_0b_3x3");
    br[1] = conv_s2_valid(n, br[1], 96, 3, "Conv2d_1a_1x1");
    nb_pop(n);
    nb_push(n, "Branch_2");
    br[2] = nb_max_pool(n, x, 3, 3, 2, KN_PADDING_VALID, "MaxPool_1a_3x3");
    nb_pop(n);
    x = nb_concat(n, br, 3, "concat");
    nb_pop(n);

    x = mixed_6(n, x, "Mixed_6b", 128);
    x = mixed_6(n, x, "Mixed_6c", 160);
    x = mixed_6(n, x, "Mixed_6d", 160);
    x = mixed_6(n, x, "Mixed_6e", 192);
    int mixed_6e = x;

    nb_push(n, "Mixed_7a");
    nb_push(n, "Branch_0");
    br[0] = conv(n, x, 192, 1, 1, "Conv2d_0a_1x1");
    br[0] = conv_s2_valid(n, br[0], 320, 3, "Conv2d_1a_3x3");
    nb_pop(n);
    nb_push(n, "Branch_1");
    br[1] = conv(n, x, 192, 1, 1, "Conv2d_0a_1x1");
    br[1] = conv(n, br[1], 192, 1, 7, "Conv2d_0b_1x7");
    br[1] = conv(n, br[1], 192, 7, 1, "Conv2d_0c_7x1");
    br[1] = conv_s2_valid(n, br[1], 192, 3, "Conv2d_1a_3x3");
    nb_pop(n);
    nb_push(n, "Branch_2");
    br[2] = nb_max_pool(n, x, 3, 3, 2, KN_PADDING_VALID, "MaxPool_1a_3x3");
    nb_pop(n);
    x = nb_concat(n, br, 3, "concat");
    nb_pop(n);

    x = mixed_7(n, x, "Mixed_7b", "Conv2d_0b_3x1");
    x = mixed_7(n, x, "Mixed_7c", "Conv2d_0c_3x1");
    if (n->error) {
        nb_pop(n);
        return;
    }

    /* auxiliary head: stride 1, SAME */
    nb_push(n, "AuxLogits");
    int a = nb_avg_pool(n, mixed_6e, 5, 5, 3, KN_PADDING_VALID, "AvgPool_1a_5x5");
    a = conv(n, a, 128, 1, 1, "Conv2d_1b_1x1");
    if (!n->error) {
        int kh = SB_MIN(n->tensors[a].H, 5), kw = SB_MIN(n->tensors[a].W, 5);
        char name[48];
        snprintf(name, sizeof name, "Conv2d_2a_%dx%d", kh, kw);
        nb_scope save = n->sc;
        n->sc.conv_w_init = nb_init_trunc_normal(0.01f);
        a = nb_conv(n, a, 768, kh, kw, 1, KN_PADDING_VALID, name);
        n->sc.conv_w_init = nb_init_trunc_normal(0.001f);
        n->sc.bn = 0;
        n->sc.relu = 0;
        a = conv(n, a, n->opt.num_classes, 1, 1, "Conv2d_2b_1x1");
        n->sc = save;
        nb_loss(n, a, 0.4f, 1, "aux_loss");
    }
    nb_pop(n);

    /* final pooling and prediction: outside the stride-1 arg scope, avg_pool2d's stride is 2 */
    n->sc = outer;
    nb_push(n, "Logits");
    int kh = SB_MIN(n->tensors[x].H, 8), kw = SB_MIN(n->tensors[x].W, 8);
    char name[48];
    snprintf(name, sizeof name, "AvgPool_1a_%dx%d", kh, kw);
    x = nb_avg_pool(n, x, kh, kw, 2, KN_PADDING_VALID, name);
    x = nb_dropout(n, x, n->opt.dropout_keep_prob, "Dropout_1b");
    n->sc.bn = 0;
    n->sc.relu = 0;
    x = conv(n, x, n->opt.num_classes, 1, 1, "Conv2d_1c_1x1");
    nb_loss(n, x, 1.0f, 0, "loss");
    nb_pop(n);
    nb_pop(n);
}
