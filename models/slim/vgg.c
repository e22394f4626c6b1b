/* models/slim/vgg.c — slim's nets/vgg.py: vgg_a (11 layers), vgg_16, vgg_19 under
 * vgg_arg_scope. Fully connected layers are convolutions (fc6 7x7 VALID, fc7 and fc8 1x1), with
 * dropout after fc6 and fc7; every layer has biases; weights are L2-regularized. */
#include <stdio.h>
#include <string.h>

#include "models/slim/net_impl.h"

void build_vgg(net *n, const char *name) {
    static const int reps_a[5] = {1, 1, 2, 2, 2}, reps_16[5] = {2, 2, 3, 3, 3},
                     reps_19[5] = {2, 2, 4, 4, 4};
    static const int depth[5] = {64, 128, 256, 512, 512};
    const int *reps = !strcmp(name, "vgg_a") ? reps_a : !strcmp(name, "vgg_16") ? reps_16 : reps_19;

    /* vgg_arg_scope: relu, l2 on weights, zero biases, conv2d padding SAME; xavier weights and
     * VALID pools are slim's defaults */
    n->sc = nb_scope_default();
    n->sc.conv_w_reg = n->sc.fc_w_reg = 1;

    int x = nb_input(n, n->opt.image_size, n->opt.image_size, n->opt.image_channels);
    nb_push(n, name);
    for (int b = 0; b < 5; b++) {
        char blk[32], unit[32];
        snprintf(blk, sizeof blk, "conv%d", b + 1);
        nb_push(n, blk); /* slim.repeat(..., scope='convN') names units convN/convN_i */
        for (int r = 0; r < reps[b]; r++) {
            snprintf(unit, sizeof unit, "conv%d_%d", b + 1, r + 1);
            x = nb_conv(n, x, depth[b], 3, 3, 1, -1, unit);
        }
        nb_pop(n);
        snprintf(blk, sizeof blk, "pool%d", b + 1);
        x = nb_max_pool(n, x, 2, 2, 2, -1, blk);
    }
    float keep = n->opt.dropout_keep_prob;
    x = nb_conv(n, x, 4096, 7, 7, 1, KN_PADDING_VALID, "fc6"); /* fc_conv_padding='VALID' */
    x = nb_dropout(n, x, keep, "dropout6");
    x = nb_conv(n, x, 4096, 1, 1, 1, -1, "fc7");
    x = nb_dropout(n, x, keep, "dropout7");
    n->sc.relu = 0;
    x = nb_conv(n, x, n->opt.num_classes, 1, 1, 1, -1, "fc8");
    nb_loss(n, x, 1.0f, 0, "loss");
    nb_pop(n);
}
