/* models/slim/resnet_v1.c — slim's nets/resnet_v1.py: ResNet v1 50/101/152/200 with the
 * bottleneck_v1 unit (BN after every convolution, ReLU after the residual add). Each block
 * subsamples in its LAST unit (stride 2 in blocks 1-3, on conv2 through conv2d_same), and an
 * identity shortcut with stride is a 1x1 max pool. Root: conv1 7x7/2 (conv2d_same) and pool1
 * 3x3/2 SAME; head: global mean, a 1x1 "logits" conv with biases. */
#include <stdio.h>
#include <string.h>

#include "models/slim/net_impl.h"

/* units per block for 50, 101, 152, 200 */
void resnet_units(const char *name, int units[4]) {
    static const int u50[4] = {3, 4, 6, 3}, u101[4] = {3, 4, 23, 3}, u152[4] = {3, 8, 36, 3},
                     u200[4] = {3, 24, 36, 3};
    const char *d = strrchr(name, '_') + 1;
    const int *u = !strcmp(d, "50") ? u50 : !strcmp(d, "101") ? u101 : !strcmp(d, "152") ? u152 : u200;
    for (int i = 0; i < 4; i++) units[i] = u[i];
}

static int bottleneck_v1(net *n, int x, int depth, int depth_bottleneck, int stride) {
    nb_push(n, "bottleneck_v1");
    int depth_in = n->tensors[x].C, shortcut;
    nb_scope save = n->sc;
    if (depth == depth_in) {
        shortcut = resnet_subsample(n, x, stride, "shortcut");
    } else {
        n->sc.relu = 0;
        shortcut = nb_conv(n, x, depth, 1, 1, stride, -1, "shortcut");
        n->sc = save;
    }
    int r = nb_conv(n, x, depth_bottleneck, 1, 1, 1, -1, "conv1");
    r = resnet_conv2d_same(n, r, depth_bottleneck, 3, stride, "conv2");
    n->sc.relu = 0;
    r = nb_conv(n, r, depth, 1, 1, 1, -1, "conv3");
    n->sc = save;
    int y = nb_relu(n, nb_add(n, shortcut, r, "add"), "Relu");
    nb_pop(n);
    return y;
}

void build_resnet_v1(net *n, const char *name) {
    int units[4];
    resnet_units(name, units);
    n->sc = resnet_arg_scope();
    int x = nb_input(n, n->opt.image_size, n->opt.image_size, n->opt.image_channels);
    nb_push(n, name);
    x = resnet_conv2d_same(n, x, 64, 7, 2, "conv1");
    x = nb_max_pool(n, x, 3, 3, 2, -1, "pool1");
    for (int b = 0; b < 4; b++) {
        char blk[32], unit[32];
        snprintf(blk, sizeof blk, "block%d", b + 1);
        nb_push(n, blk);
        int base = 64 << b;
        for (int u = 0; u < units[b]; u++) {
            snprintf(unit, sizeof unit, "unit_%d", u + 1);
            nb_push(n, unit);
            int stride = (u == units[b] - 1 && b < 3) ? 2 : 1;
            x = bottleneck_v1(n, x, base * 4, base, stride);
            nb_pop(n);
        }
        nb_pop(n);
    }
    x = nb_global_avg_pool(n, x, "pool5");
    n->sc.bn = 0;
    n->sc.relu = 0;
    x = nb_conv(n, x, n->opt.num_classes, 1, 1, 1, -1, "logits");
    nb_loss(n, x, 1.0f, 0, "loss");
    nb_pop(n);
}
