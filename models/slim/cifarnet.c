/* models/slim/cifarnet.c — slim's nets/cifarnet.py under cifarnet_arg_scope: conv1 64 5x5,
 * pool1, norm1 (LRN), conv2 64 5x5, norm2, pool2, Flatten, fc3 384, dropout3, fc4 192, logits.
 * Conv weights truncated normal 0.05 and NOT regularized; fc weights truncated normal 0.04,
 * L2-regularized, biases 0.1; logits weights truncated normal 1/192, biases zero, no
 * regularizer. */
#include "models/slim/net_impl.h"

void build_cifarnet(net *n) {
    n->sc = nb_scope_default();
    n->sc.conv_w_init = nb_init_trunc_normal(5e-2f);
    n->sc.fc_w_init = nb_init_trunc_normal(0.04f);
    n->sc.fc_b_init = nb_init_constant(0.1f);
    n->sc.fc_w_reg = 1;
    int x = nb_input(n, n->opt.image_size, n->opt.image_size, n->opt.image_channels);
    nb_push(n, "CifarNet");
    x = nb_conv(n, x, 64, 5, 5, 1, -1, "conv1");
    x = nb_max_pool(n, x, 2, 2, 2, -1, "pool1");
    x = nb_lrn(n, x, 4, 1.0f, 0.001f / 9.0f, 0.75f, "norm1");
    x = nb_conv(n, x, 64, 5, 5, 1, -1, "conv2");
    x = nb_lrn(n, x, 4, 1.0f, 0.001f / 9.0f, 0.75f, "norm2");
    x = nb_max_pool(n, x, 2, 2, 2, -1, "pool2");
    x = nb_flatten(n, x, "Flatten");
    x = nb_fc(n, x, 384, "fc3");
    x = nb_dropout(n, x, n->opt.dropout_keep_prob, "dropout3");
    x = nb_fc(n, x, 192, "fc4");
    n->sc.relu = 0;
    n->sc.fc_b_init = nb_init_zeros();
    n->sc.fc_w_init = nb_init_trunc_normal(1.0f / 192.0f);
    n->sc.fc_w_reg = 0;
    x = nb_fc(n, x, n->opt.num_classes, "logits");
    nb_loss(n, x, 1.0f, 0, "loss");
    nb_pop(n);
}
