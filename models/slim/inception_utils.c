/* models/slim/inception_utils.c — slim's nets/inception_utils.py inception_arg_scope: conv2d with
 * batch norm (decay 0.9997, epsilon 0.001, no gamma: slim.batch_norm's scale=False default),
 * ReLU, variance-scaling weights; L2 on conv and fc weights. */
#include "models/slim/net_impl.h"

nb_scope inception_arg_scope(void) {
    nb_scope s = nb_scope_default();
    s.bn = 1;
    s.relu = 1;
    s.bn_decay = 0.9997f;
    s.bn_eps = 0.001f;
    s.bn_scale = 0;
    s.conv_w_init = nb_init_variance_scaling();
    s.conv_w_reg = s.fc_w_reg = 1;
    return s;
}
