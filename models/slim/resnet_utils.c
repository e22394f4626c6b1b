/* models/slim/resnet_utils.c — slim's nets/resnet_utils.py: the ResNet arg scope, conv2d_same
 * (explicit symmetric-as-possible padding, then VALID, for stride > 1) and subsample (a 1x1 max
 * pool with the block stride). */
#include "models/slim/net_impl.h"

nb_scope resnet_arg_scope(void) {
    nb_scope s = nb_scope_default();
    s.bn = 1;                 /* normalizer_fn=slim.batch_norm */
    s.relu = 1;
    s.bn_decay = 0.997f;      /* batch_norm_decay */
    s.bn_eps = 1e-5f;         /* batch_norm_epsilon */
    s.bn_scale = 1;           /* batch_norm_scale=True */
    s.conv_w_init = nb_init_variance_scaling();
    s.conv_w_reg = 1;
    s.pool_pad = KN_PADDING_SAME; /* slim.arg_scope([slim.max_pool2d], padding='SAME') */
    return s;
}

int resnet_conv2d_same(net *n, int x, int OC, int K, int stride, const char *scope) {
    if (stride == 1) return nb_conv(n, x, OC, K, K, 1, KN_PADDING_SAME, scope);
    int pad_total = K - 1, pad_beg = pad_total / 2, pad_end = pad_total - pad_beg;
    return nb_conv_explicit(n, x, OC, K, K, stride, pad_beg, pad_beg, pad_end, pad_end, scope);
}

int resnet_subsample(net *n, int x, int factor, const char *scope) {
    if (factor == 1) return x;
    return nb_max_pool(n, x, 1, 1, factor, -1, scope);
}
