/* models/slim/inception_v1.c — slim's nets/inception_v1.py (GoogLeNet with batch norm) under
 * inception_arg_scope. The base (Conv2d_1a_7x7 .. Mixed_5c) uses truncated-normal 0.01 weights,
 * stride 1 and SAME padding for convs and max pools; the head is AvgPool_0a_7x7 (VALID),
 * Dropout_0b (keep 0.8) and the 1x1 logits conv Conv2d_0c_1x1 with biases. Slim's one odd name
 * is kept: Mixed_5b/Branch_2's 3x3 conv is "Conv2d_0a_3x3". */
#include <string.h>

#include "models/slim/net_impl.h"

/* one Inception module: depths {b0, b1a, b1b, b2a, b2b, b3} */
static int mixed(net *n, int x, const char *scope, const int d[6]) {
    nb_push(n, scope);
    int br[4];
    nb_push(n, "Branch_0");
    br[0] = nb_conv(n, x, d[0], 1, 1, 1, -1, "Conv2d_0a_1x1");
    nb_pop(n);
    nb_push(n, "Branch_1");
    br[1] = nb_conv(n, x, d[1], 1, 1, 1, -1, "Conv2d_0a_1x1");
    br[1] = nb_conv(n, br[1], d[2], 3, 3, 1, -1, "Conv2d_0b_3x3");
    nb_pop(n);
    nb_push(n, "Branch_2");
    br[2] = nb_conv(n, x, d[3], 1, 1, 1, -1, "Conv2d_0a_1x1");
    br[2] = nb_conv(n, br[2], d[4], 3, 3, 1, -1,
                    strcmp(scope, "Mixed_5b") ? "Conv2d_0b_3x3" : "Conv2d_0a_3x3");
    nb_pop(n);
    nb_push(n, "Branch_3");
    br[3] = nb_max_pool(n, x, 3, 3, 1, -1, "MaxPool_0a_3x3");
    br[3] = nb_conv(n, br[3], d[5], 1, 1, 1, -1, "Conv2d_0b_1x1");
    nb_pop(n);
    int y = nb_concat(n, br, 4, "concat");
    nb_pop(n);
    return y;
}

void build_inception_v1(net *n) {
    static const int m3b[6] = {64, 96, 128, 16, 32, 32}, m3c[6] = {128, 128, 192, 32, 96, 64},
                     m4b[6] = {192, 96, 208, 16, 48, 64}, m4c[6] = {160, 112, 224, 24, 64, 64},
                     m4d[6] = {128, 128, 256, 24, 64, 64}, m4e[6] = {112, 144, 288, 32, 64, 64},
                     m4f[6] = {256, 160, 320, 32, 128, 128},
                     m5b[6] = {256, 160, 320, 32, 128, 128},
                     m5c[6] = {384, 192, 384, 48, 128, 128};
    n->sc = inception_arg_scope();
    int x = nb_input(n, n->opt.image_size, n->opt.image_size, n->opt.image_channels);
    nb_push(n, "InceptionV1");
    nb_scope outer = n->sc;
    n->sc.conv_w_init = n->sc.fc_w_init = nb_init_trunc_normal(0.01f);
    n->sc.conv_pad = n->sc.pool_pad = KN_PADDING_SAME;
    x = nb_conv(n, x, 64, 7, 7, 2, -1, "Conv2d_1a_7x7");
    x = nb_max_pool(n, x, 3, 3, 2, -1, "MaxPool_2a_3x3");
    x = nb_conv(n, x, 64, 1, 1, 1, -1, "Conv2d_2b_1x1");
    x = nb_conv(n, x, 192, 3, 3, 1, -1, "Conv2d_2c_3x3");
    x = nb_max_pool(n, x, 3, 3, 2, -1, "MaxPool_3a_3x3");
    x = mixed(n, x, "Mixed_3b", m3b);
    x = mixed(n, x, "Mixed_3c", m3c);
    x = nb_max_pool(n, x, 3, 3, 2, -1, "MaxPool_4a_3x3");
    x = mixed(n, x, "Mixed_4b", m4b);
    x = mixed(n, x, "Mixed_4c", m4c);
    x = mixed(n, x, "Mixed_4d", m4d);
    x = mixed(n, x, "Mixed_4e", m4e);
    x = mixed(n, x, "Mixed_4f", m4f);
    x = nb_max_pool(n, x, 2, 2, 2, -1, "MaxPool_5a_2x2");
    x = mixed(n, x, "Mixed_5b", m5b);
    x = mixed(n, x, "Mixed_5c", m5c);
    n->sc = outer;
    nb_push(n, "Logits");
    x = nb_avg_pool(n, x, 7, 7, 1, KN_PADDING_VALID, "AvgPool_0a_7x7");
    x = nb_dropout(n, x, n->opt.dropout_keep_prob, "Dropout_0b");
    n->sc.bn = 0;
    n->sc.relu = 0;
    x = nb_conv(n, x, n->opt.num_classes, 1, 1, 1, -1, "Conv2d_0c_1x1");
    nb_loss(n, x, 1.0f, 0, "loss");
    nb_pop(n);
    nb_pop(n);
}
