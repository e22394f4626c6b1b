/* models/slim/lenet.c — slim's nets/lenet.py under lenet_arg_scope: conv1 32 5x5, pool1,
 * conv2 64 5x5, pool2 (2x2/2 VALID), Flatten, fc3 1024, dropout3, fc4 logits. Weights truncated
 * normal 0.1 and L2-regularized, biases zero, ReLU. */
#include "models/slim/net_impl.h"

void build_lenet(net *n) {
    n->sc = nb_scope_default();
    n->sc.conv_w_init = n->sc.fc_w_init = nb_init_trunc_normal(0.1f);
    n->sc.conv_w_reg = n->sc.fc_w_reg = 1;
    int x = nb_input(n, n->opt.image_size, n->opt.image_size, n->opt.image_channels);
    nb_push(n, "LeNet");
    x = nb_conv(n, x, 32, 5, 5, 1, -1, "conv1");
    x = nb_max_pool(n, x, 2, 2, 2, -1, "pool1");
    x = nb_conv(n, x, 64, 5, 5, 1, -1, "conv2");
    x = nb_max_pool(n, x, 2, 2, 2, -1, "pool2");
    x = nb_flatten(n, x, "Flatten");
    x = nb_fc(n, x, 1024, "fc3");
    x = nb_dropout(n, x, n->opt.dropout_keep_prob, "dropout3");
    n->sc.relu = 0;
    x = nb_fc(n, x, n->opt.num_classes, "fc4");
    nb_loss(n, x, 1.0f, 0, "loss");
    nb_pop(n);
}
