/* models/slim/resnet_v2.c — slim's nets/resnet_v2.py: pre-activation ResNet v2 50/101/152/200.
 * bottleneck_v2: preact = BN+ReLU of the input; the projection shortcut (when the depth changes)
 * and conv1 read preact, an identity shortcut reads the raw input (1x1 max pool when strided);
 * conv3 and the shortcut have biases and no BN. Root conv1 has biases and no BN/ReLU; after the
 * blocks comes "postnorm" (BN+ReLU). Subsampling in the last unit of blocks 1-3, as v1. */
#include <stdio.h>

#include "models/slim/net_impl.h"

static int bottleneck_v2(net *n, int x, int depth, int depth_bottleneck, int stride) {
    nb_push(n, "bottleneck_v2");
    int depth_in = n->tensors[x].C, shortcut;
    int preact = nb_batch_norm(n, x, 1, "preact");
    nb_scope save = n->sc;
    if (depth == depth_in) {
        shortcut = resnet_subsample(n, x, stride, "shortcut");
    } else {
        n->sc.bn = 0;
        n->sc.relu = 0;
        shortcut = nb_conv(n, preact, depth, 1, 1, stride, -1, "shortcut");
        n->sc = save;
    }
    int r = nb_conv(n, preact, depth_bottleneck, 1, 1, 1, -1, "conv1");
    r = resnet_conv2d_same(n, r, depth_bottleneck, 3, stride, "conv2");
    n->sc.bn = 0;
    n->sc.relu = 0;
    r = nb_conv(n, r, depth, 1, 1, 1, -1, "conv3");
    n->sc = save;
    int y = nb_add(n, shortcut, r, "add");
    nb_pop(n);
    return y;
}

void build_resnet_v2(net *n, const char *name) {
    int units[4];
    resnet_units(name, units);
    n->sc = resnet_arg_scope();
    int x = nb_input(n, n->opt.image_size, n->opt.image_size, n->opt.image_channels);
    nb_push(n, name);
    nb_scope save = n->sc;
    n->sc.bn = 0; /* conv1 without BN and activation: the first unit's preact does them */
    n->sc.relu = 0;
    x = resnet_conv2d_same(n, x, 64, 7, 2, "conv1");
    n->sc = save;
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
            x = bottleneck_v2(n, x, base * 4, base, stride);
            nb_pop(n);
        }
        nb_pop(n);
    }
    x = nb_batch_norm(n, x, 1, "postnorm");
    x = nb_global_avg_pool(n, x, "pool5");
    n->sc.bn = 0;
    n->sc.relu = 0;
    x = nb_conv(n, x, n->opt.num_classes, 1, 1, 1, -1, "logits");
    nb_loss(n, x, 1.0f, 0, "loss");
    nb_pop(n);
}
