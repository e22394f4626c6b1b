#!/usr/bin/env python3
"""Reference vectors for tests/test_kernels_*.c, written with PyTorch 1.13 (Debian python3-torch).

Every tensor is stored in slimbench's layouts (activations NHWC, conv weights HWIO, fc weights
(IC, OC)); inputs are float32, the maths runs in float64 on those float32 values and the results
are rounded to float32 once, so the files hold the exact answer to float32 precision.

File format (tests/support/testutil.h): magic b"SBREF1\\0\\0", u32 dtype (0 = f32, 1 = i32),
u32 ndim, u32 dims[ndim], then the data, all little-endian. Per case, "<case>_params.bin" (i32)
holds the sizes the C test needs, so the script is the only place they are written down.

Usage (from the repository root): /usr/bin/python3 tests/reference/gen_kernels.py [outdir]
"""
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(20261125)
torch.set_default_dtype(torch.float64)

PAD_SAME, PAD_VALID = 0, 1  # same numbering as kn_padding in kernels/kernels.h


def write(name, t):
    """Write tensor t (torch or numpy) as name.bin; float -> f32, integer -> i32."""
    a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    if np.issubdtype(a.dtype, np.integer):
        dtype, a = 1, a.astype("<i4")
    else:
        dtype, a = 0, a.astype("<f4")
    with open(os.path.join(OUT, name + ".bin"), "wb") as f:
        f.write(b"SBREF1\0\0")
        f.write(struct.pack("<II", dtype, a.ndim))
        f.write(struct.pack("<%dI" % a.ndim, *a.shape))
        f.write(np.ascontiguousarray(a).tobytes())


def rand(*shape, scale=1.0, shift=0.0):
    """float32-representable random values, returned in float64."""
    return (torch.randn(*shape, dtype=torch.float32) * scale + shift).double()


def tf_pad(size, k, s, mode):
    """TensorFlow SAME/VALID: (out, pad_lo, pad_hi); the odd extra pad goes to the end."""
    if mode == PAD_VALID:
        return (size - k) // s + 1, 0, 0
    out = (size + s - 1) // s
    total = max((out - 1) * s + k - size, 0)
    return out, total // 2, total - total // 2


def nchw(x):
    return x.permute(0, 3, 1, 2)


def nhwc(x):
    return x.permute(0, 2, 3, 1)


# ---------------------------------------------------------------------------------------------
# Convolution: explicit F.pad (asymmetric TF SAME padding) then a VALID conv.
# params: N IH IW IC OC KH KW SH SW pad has_bias
CONV_CASES = {
    "conv_s2_same_odd": (2, 7, 9, 3, 5, 3, 3, 2, 2, PAD_SAME, 1),
    "conv_1x1": (1, 5, 4, 4, 6, 1, 1, 1, 1, PAD_SAME, 0),
    "conv_1x1_s2": (2, 5, 5, 6, 4, 1, 1, 2, 2, PAD_SAME, 1),
    "conv_7x7_s2": (2, 9, 8, 3, 4, 7, 7, 2, 2, PAD_SAME, 1),
    "conv_1x7": (1, 6, 7, 5, 3, 1, 7, 1, 1, PAD_SAME, 1),
    "conv_7x1": (2, 7, 5, 3, 4, 7, 1, 1, 1, PAD_SAME, 0),
    "conv_valid_tail": (2, 6, 5, 17, 8, 3, 3, 1, 1, PAD_VALID, 0),
    "conv_s2_same_even": (1, 8, 6, 5, 7, 3, 3, 2, 2, PAD_SAME, 1),
}

# The stems' shapes (3 input channels, 64 output channels), which the fast forward runs as direct
# loops (kernels/conv2d_direct.c) and backward data as dot products (conv2d_dxdot.c). Generated
# after every other case, so that adding them left the earlier files' random draws unchanged.
CONV_STEM_CASES = {
    "conv_stem_3x3": (2, 9, 14, 3, 64, 3, 3, 1, 1, PAD_SAME, 1),
    "conv_stem_7x7_s2": (1, 11, 13, 3, 64, 7, 7, 2, 2, PAD_SAME, 0),
}


def gen_conv(name, p):
    N, IH, IW, IC, OC, KH, KW, SH, SW, pad, has_bias = p
    OH, PT, PB = tf_pad(IH, KH, SH, pad)
    OW, PL, PR = tf_pad(IW, KW, SW, pad)
    x = rand(N, IH, IW, IC).requires_grad_()
    w = rand(KH, KW, IC, OC, scale=(1.0 / (KH * KW * IC)) ** 0.5).requires_grad_()
    b = rand(OC).requires_grad_() if has_bias else None
    xp = F.pad(nchw(x), (PL, PR, PT, PB))
    y = nhwc(F.conv2d(xp, w.permute(3, 2, 0, 1), b, stride=(SH, SW)))
    assert y.shape == (N, OH, OW, OC), (name, y.shape)
    dy = rand(N, OH, OW, OC)
    y.backward(dy)
    write(name + "_params", np.array(p))
    write(name + "_x", x)
    write(name + "_w", w)
    write(name + "_y", y)
    write(name + "_dy", dy)
    write(name + "_dx", x.grad)
    write(name + "_dw", w.grad)
    if has_bias:
        write(name + "_b", b)
        write(name + "_db", b.grad)


# ---------------------------------------------------------------------------------------------
# Batch norm, training and inference. params: M C eps*1e6 decay*1e6.
# PyTorch's momentum is 1 - decay; its running_var update uses the unbiased batch variance.
BN_CASES = {
    "bn_small": (2 * 3 * 4, 5, 1e-3, 0.9, 1.0, 0.0),
    "bn_tail": (2 * 5 * 5, 33, 1e-5, 0.997, 2.0, 5.0),  # offset mean: checks the variance pass
}


def gen_bn(name, p):
    M, C, eps, decay, scale, shift = p
    x = rand(M, C, scale=scale, shift=shift).requires_grad_()
    gamma = rand(C, scale=0.5, shift=1.0).requires_grad_()
    beta = rand(C, scale=0.5).requires_grad_()
    rm0 = rand(C, scale=0.1)
    rv0 = rand(C, scale=0.1).abs() + 0.5
    rm, rv = rm0.clone(), rv0.clone()
    y = F.batch_norm(x, rm, rv, gamma, beta, training=True, momentum=1.0 - decay, eps=eps)
    dy = rand(M, C)
    y.backward(dy)
    mean = x.detach().mean(0)
    var = x.detach().var(0, unbiased=False)
    y_inf = F.batch_norm(x.detach(), rm0, rv0, gamma.detach(), beta.detach(), training=False,
                         eps=eps)
    write(name + "_params", np.array([M, C, round(eps * 1e6), round(decay * 1e6)]))
    for k, v in [("x", x), ("gamma", gamma), ("beta", beta), ("rm0", rm0), ("rv0", rv0),
                 ("y", y), ("mean", mean), ("rstd", 1.0 / torch.sqrt(var + eps)), ("rm", rm),
                 ("rv", rv), ("dy", dy), ("dx", x.grad), ("dgamma", gamma.grad),
                 ("dbeta", beta.grad), ("y_infer", y_inf)]:
        write(name + "_" + k, v)


# ---------------------------------------------------------------------------------------------
# Pooling with TF SAME/VALID semantics. params: N IH IW C KH KW SH SW pad is_max.
# Max: pad with -inf. Avg: window sum over zero padding divided by the count of real inputs
# (sum-pool the data and a ones tensor with divisor_override=1).
POOL_CASES = {
    "maxpool_3x3_s2_same": (2, 7, 7, 5, 3, 3, 2, 2, PAD_SAME, 1),
    "maxpool_3x3_s2_same_even": (1, 8, 6, 3, 3, 3, 2, 2, PAD_SAME, 1),
    "maxpool_2x2_s2_valid": (2, 5, 6, 4, 2, 2, 2, 2, PAD_VALID, 1),
    "avgpool_3x3_s1_same": (2, 5, 6, 4, 3, 3, 1, 1, PAD_SAME, 0),
    "avgpool_3x3_s2_same_even": (1, 6, 8, 3, 3, 3, 2, 2, PAD_SAME, 0),
    "avgpool_5x5_s3_valid": (2, 11, 8, 17, 5, 5, 3, 3, PAD_VALID, 0),
}


def gen_pool(name, p):
    N, IH, IW, C, KH, KW, SH, SW, pad, is_max = p
    OH, PT, PB = tf_pad(IH, KH, SH, pad)
    OW, PL, PR = tf_pad(IW, KW, SW, pad)
    x = rand(N, IH, IW, C).requires_grad_()
    if is_max:
        xp = F.pad(nchw(x), (PL, PR, PT, PB), value=float("-inf"))
        y = nhwc(F.max_pool2d(xp, (KH, KW), (SH, SW)))
    else:
        xp = F.pad(nchw(x), (PL, PR, PT, PB))
        ones = F.pad(torch.ones(1, 1, IH, IW), (PL, PR, PT, PB))
        s = F.avg_pool2d(xp, (KH, KW), (SH, SW), divisor_override=1)
        cnt = F.avg_pool2d(ones, (KH, KW), (SH, SW), divisor_override=1)
        y = nhwc(s / cnt)
    assert y.shape == (N, OH, OW, C), (name, y.shape)
    dy = rand(N, OH, OW, C)
    y.backward(dy)
    write(name + "_params", np.array(p))
    write(name + "_x", x)
    write(name + "_y", y)
    write(name + "_dy", dy)
    write(name + "_dx", x.grad)


def gen_global_avgpool():
    x = rand(3, 5, 7, 6).requires_grad_()  # N=3, HW=35, C=6
    y = x.mean(dim=(1, 2))
    dy = rand(3, 6)
    y.backward(dy)
    for k, v in [("x", x), ("y", y), ("dy", dy), ("dx", x.grad)]:
        write("gap_" + k, v)


def gen_relu():
    x = rand(4, 3, 5, 7).requires_grad_()
    y = F.relu(x)
    dy = rand(*y.shape)
    y.backward(dy)
    for k, v in [("x", x), ("y", y), ("dy", dy), ("dx", x.grad)]:
        write("relu_" + k, v)


# ---------------------------------------------------------------------------------------------
# Softmax cross-entropy with label smoothing as tf.losses.softmax_cross_entropy:
# target = onehot*(1-ls) + ls/K, loss = mean_n -sum_k target*log_softmax. params: N K ls*1e6.
XENT_CASES = {
    "xent_ls": (4, 10, 0.1, 3.0),
    "xent_nols": (5, 7, 0.0, 1.0),
    "xent_large": (3, 1001, 0.1, 30.0),  # large logits: needs the max-shifted log-softmax
}


def gen_xent(name, p):
    N, K, ls, scale = p
    logits = rand(N, K, scale=scale).requires_grad_()
    labels = torch.randint(0, K, (N,))
    target = F.one_hot(labels, K).double() * (1.0 - ls) + ls / K
    loss = -(target * F.log_softmax(logits, dim=1)).sum(1).mean()
    loss.backward()
    write(name + "_params", np.array([N, K, round(ls * 1e6)]))
    write(name + "_logits", logits)
    write(name + "_labels", labels)
    write(name + "_probs", F.softmax(logits.detach(), dim=1))
    write(name + "_loss", loss.reshape(1))
    write(name + "_dlogits", logits.grad)


def gen_fc():
    N, IC, OC = 3, 19, 5
    x = rand(N, IC).requires_grad_()
    w = rand(IC, OC, scale=IC ** -0.5).requires_grad_()
    b = rand(OC).requires_grad_()
    y = x @ w + b
    dy = rand(N, OC)
    y.backward(dy)
    write("fc_params", np.array([N, IC, OC]))
    for k, v in [("x", x), ("w", w), ("b", b), ("y", y), ("dy", dy), ("dx", x.grad),
                 ("dw", w.grad), ("db", b.grad)]:
        write("fc_" + k, v)


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, p in CONV_CASES.items():
        gen_conv(name, p)
    for name, p in BN_CASES.items():
        gen_bn(name, p)
    for name, p in POOL_CASES.items():
        gen_pool(name, p)
    gen_global_avgpool()
    gen_relu()
    for name, p in XENT_CASES.items():
        gen_xent(name, p)
    gen_fc()
    for name, p in CONV_STEM_CASES.items():
        gen_conv(name, p)


if __name__ == "__main__":
    main()
