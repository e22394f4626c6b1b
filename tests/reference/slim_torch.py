"""TF-slim's nets rebuilt in PyTorch 1.13 from slim's own definitions (research/slim/nets/*.py),
independently of slimbench's C code: the reference for parameter counts (gen_param_counts.py)
and for logits and gradients (gen_nets.py).

The builder is functional, like slim: running a net function on an input creates each variable
(by its full slim name, in TensorFlow's layout: conv weights HWIO, fc weights (IC, OC)) the first
time it is used and computes the forward pass with TensorFlow's semantics (SAME padding with the
odd pixel at the bottom/right, max pool padding never wins, average pool dividing by the
non-padded count, tf.nn.lrn, slim.flatten over NHWC). Tensors are NCHW inside.
"""
import math
from collections import OrderedDict

import torch
import torch.nn.functional as F


def same_pad(size, k, s):
    out = (size + s - 1) // s
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


class Builder:
    """Variable store + ops. `values` (name -> tensor in TF layout) fixes variable values; others
    are drawn from `gen` (normal * 0.1, BN gamma 1 + noise) so tests see non-trivial numbers."""

    def __init__(self, training=True, values=None, gen=None, dtype=torch.float64):
        self.vars = OrderedDict()     # name -> tensor (leaf, requires_grad if trainable)
        self.trainable = {}
        self.scope = []
        self.training = training
        self.values = values if values is not None else {}
        self.gen = gen
        self.dtype = dtype
        self.arg = {}
        self.aux_logits = None
        self.keep_prob = None         # overrides every dropout's keep probability when set

    # -- scopes and variables --------------------------------------------------------------
    def push(self, s):
        self.scope.append(s)

    def pop(self):
        self.scope.pop()

    def var(self, name, shape, trainable=True, kind="normal"):
        full = "/".join(self.scope + [name])
        if full in self.vars:
            raise ValueError("variable created twice: " + full)
        if full in self.values:
            t = self.values[full].clone().to(self.dtype)
            assert tuple(t.shape) == tuple(shape), (full, t.shape, shape)
        elif kind == "ones":
            t = torch.ones(shape, dtype=self.dtype)
        elif kind == "zeros":
            t = torch.zeros(shape, dtype=self.dtype)
        else:
            t = torch.randn(shape, generator=self.gen, dtype=self.dtype)
            fan_in = 1
            for d in shape[:-1]:
                fan_in *= d
            t = t * (1.0 / math.sqrt(max(fan_in, 1)) if len(shape) > 1 else 0.1)
        t.requires_grad_(trainable)
        self.vars[full] = t
        self.trainable[full] = trainable
        return t

    # -- layers ----------------------------------------------------------------------------
    def batch_norm(self, x, scope="BatchNorm", relu=False, scale=None, eps=None):
        scale = self.arg["bn_scale"] if scale is None else scale
        eps = self.arg["bn_eps"] if eps is None else eps
        C = x.shape[1]
        self.push(scope)
        beta = self.var("beta", (C,), kind="zeros" if self.gen is None else "normal")
        gamma = None
        if scale:
            gamma = self.var("gamma", (C,), kind="ones")
            if self.gen is not None and "/".join(self.scope + ["gamma"]) not in self.values:
                with torch.no_grad():
                    gamma.add_(0.1 * torch.randn((C,), generator=self.gen, dtype=self.dtype))
        mm = self.var("moving_mean", (C,), trainable=False, kind="zeros")
        mv = self.var("moving_variance", (C,), trainable=False, kind="ones")
        if self.training:
            mean = x.mean(dim=(0, 2, 3))
            var = x.var(dim=(0, 2, 3), unbiased=False)
        else:
            mean, var = mm, mv
        y = (x - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + eps)
        if gamma is not None:
            y = y * gamma[None, :, None, None]
        y = y + beta[None, :, None, None]
        if relu:
            y = F.relu(y)
        self.pop()
        return y

    def conv(self, x, oc, k, stride=1, padding=None, scope=None, bn=None, relu=None,
             explicit=None):
        kh, kw = (k, k) if isinstance(k, int) else k
        padding = padding or self.arg.get("conv_pad", "SAME")
        bn = self.arg.get("bn", False) if bn is None else bn
        relu = self.arg.get("relu", True) if relu is None else relu
        ic = x.shape[1]
        self.push(scope)
        w = self.var("weights", (kh, kw, ic, oc))
        b = None if bn else self.var("biases", (oc,))
        if explicit is not None:
            x = F.pad(x, (explicit[0], explicit[1], explicit[0], explicit[1]))
        elif padding == "SAME":
            pt, pb = same_pad(x.shape[2], kh, stride)
            pl, pr = same_pad(x.shape[3], kw, stride)
            x = F.pad(x, (pl, pr, pt, pb))
        y = F.conv2d(x, w.permute(3, 2, 0, 1), b, stride=stride)
        if bn:
            y = self.batch_norm(y)
        if relu:
            y = F.relu(y)
        self.pop()
        return y

    def fc(self, x, oc, scope, relu=None):
        relu = self.arg.get("relu", True) if relu is None else relu
        self.push(scope)
        w = self.var("weights", (x.shape[1], oc))
        b = self.var("biases", (oc,))
        y = x @ w + b
        if relu:
            y = F.relu(y)
        self.pop()
        return y

    def max_pool(self, x, k, stride=2, padding=None):
        kh, kw = (k, k) if isinstance(k, int) else k
        padding = padding or self.arg.get("pool_pad", "VALID")
        if padding == "SAME":
            pt, pb = same_pad(x.shape[2], kh, stride)
            pl, pr = same_pad(x.shape[3], kw, stride)
            x = F.pad(x, (pl, pr, pt, pb), value=-math.inf)
        return F.max_pool2d(x, (kh, kw), stride)

    def avg_pool(self, x, k, stride=2, padding=None):
        kh, kw = (k, k) if isinstance(k, int) else k
        padding = padding or self.arg.get("pool_pad", "VALID")
        if padding == "SAME":
            pt, pb = same_pad(x.shape[2], kh, stride)
            pl, pr = same_pad(x.shape[3], kw, stride)
            ones = torch.ones_like(x[:1, :1])
            s = F.avg_pool2d(F.pad(x, (pl, pr, pt, pb)), (kh, kw), stride, divisor_override=1)
            c = F.avg_pool2d(F.pad(ones, (pl, pr, pt, pb)), (kh, kw), stride, divisor_override=1)
            return s / c
        return F.avg_pool2d(x, (kh, kw), stride)

    def dropout(self, x, keep_prob):
        if self.keep_prob is not None:
            keep_prob = self.keep_prob
        if not self.training or keep_prob >= 1.0:
            return x
        raise ValueError("reference nets run with dropout_keep_prob=1 (deterministic)")

    @staticmethod
    def lrn(x, depth_radius, bias, alpha, beta):
        sq = F.pad((x * x).unsqueeze(1), (0, 0, 0, 0, depth_radius, depth_radius)).squeeze(1)
        C = x.shape[1]
        s = sum(sq[:, i:i + C] for i in range(2 * depth_radius + 1))
        return x / (bias + alpha * s) ** beta

    @staticmethod
    def flatten(x):
        return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)


# ---------------------------------------------------------------------------------------------
# Arg scopes (the nets_factory pairing).
# ---------------------------------------------------------------------------------------------
VGG_ARG = dict(bn=False, relu=True, conv_pad="SAME", pool_pad="VALID")
RESNET_ARG = dict(bn=True, relu=True, bn_scale=True, bn_eps=1e-5, conv_pad="SAME", pool_pad="SAME")
INCEPTION_ARG = dict(bn=True, relu=True, bn_scale=False, bn_eps=0.001, conv_pad="SAME",
                     pool_pad="VALID")
PLAIN_ARG = dict(bn=False, relu=True, conv_pad="SAME", pool_pad="VALID")


def vgg(b, x, name, num_classes, keep=0.5):
    reps = {"vgg_a": [1, 1, 2, 2, 2], "vgg_16": [2, 2, 3, 3, 3], "vgg_19": [2, 2, 4, 4, 4]}[name]
    b.arg = dict(VGG_ARG)
    b.push(name)
    for i, (r, d) in enumerate(zip(reps, [64, 128, 256, 512, 512])):
        b.push("conv%d" % (i + 1))
        for j in range(r):
            x = b.conv(x, d, 3, scope="conv%d_%d" % (i + 1, j + 1))
        b.pop()
        x = b.max_pool(x, 2)
    x = b.conv(x, 4096, 7, padding="VALID", scope="fc6")
    x = b.dropout(x, keep)
    x = b.conv(x, 4096, 1, scope="fc7")
    x = b.dropout(x, keep)
    x = b.conv(x, num_classes, 1, scope="fc8", relu=False)
    b.pop()
    return x.flatten(1)


RESNET_UNITS = {"50": [3, 4, 6, 3], "101": [3, 4, 23, 3], "152": [3, 8, 36, 3],
                "200": [3, 24, 36, 3]}


def conv2d_same(b, x, oc, k, stride, scope):
    if stride == 1:
        return b.conv(x, oc, k, 1, "SAME", scope)
    pad_total = k - 1
    beg = pad_total // 2
    return b.conv(x, oc, k, stride, "VALID", scope, explicit=(beg, pad_total - beg))


def subsample(b, x, factor):
    return x if factor == 1 else b.max_pool(x, 1, factor, "SAME")


def resnet(b, x, name, num_classes):
    v2 = name.startswith("resnet_v2")
    units = RESNET_UNITS[name.split("_")[-1]]
    b.arg = dict(RESNET_ARG)
    b.push(name)
    if v2:
        x = conv2d_same_plain(b, x, 64, 7, 2, "conv1")
    else:
        x = conv2d_same(b, x, 64, 7, 2, "conv1")
    x = b.max_pool(x, 3, 2, "SAME")
    for bi, n in enumerate(units):
        b.push("block%d" % (bi + 1))
        base = 64 * 2 ** bi
        for u in range(n):
            stride = 2 if (u == n - 1 and bi < 3) else 1
            b.push("unit_%d" % (u + 1))
            x = (bottleneck_v2 if v2 else bottleneck_v1)(b, x, base * 4, base, stride)
            b.pop()
        b.pop()
    if v2:
        x = b.batch_norm(x, "postnorm", relu=True)
    x = x.mean(dim=(2, 3), keepdim=True)
    x = b.conv(x, num_classes, 1, scope="logits", bn=False, relu=False)
    b.pop()
    return x.flatten(1)


def conv2d_same_plain(b, x, oc, k, stride, scope):
    save = dict(b.arg)
    b.arg.update(bn=False, relu=False)
    y = conv2d_same(b, x, oc, k, stride, scope)
    b.arg = save
    return y


def bottleneck_v1(b, x, depth, depth_b, stride):
    b.push("bottleneck_v1")
    if depth == x.shape[1]:
        shortcut = subsample(b, x, stride)
    else:
        shortcut = b.conv(x, depth, 1, stride, scope="shortcut", relu=False)
    r = b.conv(x, depth_b, 1, 1, scope="conv1")
    r = conv2d_same(b, r, depth_b, 3, stride, "conv2")
    r = b.conv(r, depth, 1, 1, scope="conv3", relu=False)
    b.pop()
    return F.relu(shortcut + r)


def bottleneck_v2(b, x, depth, depth_b, stride):
    b.push("bottleneck_v2")
    preact = b.batch_norm(x, "preact", relu=True)
    if depth == x.shape[1]:
        shortcut = subsample(b, x, stride)
    else:
        shortcut = b.conv(preact, depth, 1, stride, scope="shortcut", bn=False, relu=False)
    r = b.conv(preact, depth_b, 1, 1, scope="conv1")
    r = conv2d_same(b, r, depth_b, 3, stride, "conv2")
    r = b.conv(r, depth, 1, 1, scope="conv3", bn=False, relu=False)
    b.pop()
    return shortcut + r


def lenet(b, x, num_classes, keep=0.5):
    b.arg = dict(PLAIN_ARG)
    b.push("LeNet")
    x = b.conv(x, 32, 5, scope="conv1")
    x = b.max_pool(x, 2, 2)
    x = b.conv(x, 64, 5, scope="conv2")
    x = b.max_pool(x, 2, 2)
    x = b.flatten(x)
    x = b.fc(x, 1024, "fc3")
    x = b.dropout(x, keep)
    x = b.fc(x, num_classes, "fc4", relu=False)
    b.pop()
    return x


def cifarnet(b, x, num_classes, keep=0.5):
    b.arg = dict(PLAIN_ARG)
    b.push("CifarNet")
    x = b.conv(x, 64, 5, scope="conv1")
    x = b.max_pool(x, 2, 2)
    x = b.lrn(x, 4, 1.0, 0.001 / 9.0, 0.75)
    x = b.conv(x, 64, 5, scope="conv2")
    x = b.lrn(x, 4, 1.0, 0.001 / 9.0, 0.75)
    x = b.max_pool(x, 2, 2)
    x = b.flatten(x)
    x = b.fc(x, 384, "fc3")
    x = b.dropout(x, keep)
    x = b.fc(x, 192, "fc4")
    x = b.fc(x, num_classes, "logits", relu=False)
    b.pop()
    return x


def _branch(b, name, fn):
    b.push(name)
    y = fn()
    b.pop()
    return y


def inception_v1(b, x, num_classes, keep=0.8):
    b.arg = dict(INCEPTION_ARG)
    b.arg.update(conv_pad="SAME", pool_pad="SAME")
    b.push("InceptionV1")
    x = b.conv(x, 64, 7, 2, scope="Conv2d_1a_7x7")
    x = b.max_pool(x, 3, 2)
    x = b.conv(x, 64, 1, scope="Conv2d_2b_1x1")
    x = b.conv(x, 192, 3, scope="Conv2d_2c_3x3")
    x = b.max_pool(x, 3, 2)

    def mixed(x, name, d):
        b.push(name)
        b0 = _branch(b, "Branch_0", lambda: b.conv(x, d[0], 1, scope="Conv2d_0a_1x1"))
        b1 = _branch(b, "Branch_1", lambda: b.conv(b.conv(x, d[1], 1, scope="Conv2d_0a_1x1"),
                                                   d[2], 3, scope="Conv2d_0b_3x3"))
        n2 = "Conv2d_0a_3x3" if name == "Mixed_5b" else "Conv2d_0b_3x3"
        b2 = _branch(b, "Branch_2", lambda: b.conv(b.conv(x, d[3], 1, scope="Conv2d_0a_1x1"),
                                                   d[4], 3, scope=n2))
        b3 = _branch(b, "Branch_3", lambda: b.conv(b.max_pool(x, 3, 1), d[5], 1,
                                                   scope="Conv2d_0b_1x1"))
        b.pop()
        return torch.cat([b0, b1, b2, b3], 1)

    x = mixed(x, "Mixed_3b", [64, 96, 128, 16, 32, 32])
    x = mixed(x, "Mixed_3c", [128, 128, 192, 32, 96, 64])
    x = b.max_pool(x, 3, 2)
    x = mixed(x, "Mixed_4b", [192, 96, 208, 16, 48, 64])
    x = mixed(x, "Mixed_4c", [160, 112, 224, 24, 64, 64])
    x = mixed(x, "Mixed_4d", [128, 128, 256, 24, 64, 64])
    x = mixed(x, "Mixed_4e", [112, 144, 288, 32, 64, 64])
    x = mixed(x, "Mixed_4f", [256, 160, 320, 32, 128, 128])
    x = b.max_pool(x, 2, 2)
    x = mixed(x, "Mixed_5b", [256, 160, 320, 32, 128, 128])
    x = mixed(x, "Mixed_5c", [384, 192, 384, 48, 128, 128])
    b.push("Logits")
    x = b.avg_pool(x, 7, 1, "VALID")
    x = b.dropout(x, keep)
    x = b.conv(x, num_classes, 1, scope="Conv2d_0c_1x1", bn=False, relu=False)
    b.pop()
    b.pop()
    return x.flatten(1)


def inception_v3(b, x, num_classes, keep=0.8):
    b.arg = dict(INCEPTION_ARG)
    b.push("InceptionV3")
    b.arg.update(conv_pad="VALID", pool_pad="VALID")
    x = b.conv(x, 32, 3, 2, scope="Conv2d_1a_3x3")
    x = b.conv(x, 32, 3, scope="Conv2d_2a_3x3")
    x = b.conv(x, 64, 3, padding="SAME", scope="Conv2d_2b_3x3")
    x = b.max_pool(x, 3, 2)
    x = b.conv(x, 80, 1, scope="Conv2d_3b_1x1")
    x = b.conv(x, 192, 3, scope="Conv2d_4a_3x3")
    x = b.max_pool(x, 3, 2)
    b.arg.update(conv_pad="SAME", pool_pad="SAME")
    c = lambda x, d, k, s: b.conv(x, d, k, scope=s)

    def m5(x, name, pool_d):
        b.push(name)
        odd = name == "Mixed_5c"
        b0 = _branch(b, "Branch_0", lambda: c(x, 64, 1, "Conv2d_0a_1x1"))
        b1 = _branch(b, "Branch_1", lambda: c(c(x, 48, 1, "Conv2d_0b_1x1" if odd else "Conv2d_0a_1x1"),
                                              64, 5, "Conv_1_0c_5x5" if odd else "Conv2d_0b_5x5"))
        b2 = _branch(b, "Branch_2", lambda: c(c(c(x, 64, 1, "Conv2d_0a_1x1"), 96, 3, "Conv2d_0b_3x3"),
                                              96, 3, "Conv2d_0c_3x3"))
        b3 = _branch(b, "Branch_3", lambda: c(b.avg_pool(x, 3, 1), pool_d, 1, "Conv2d_0b_1x1"))
        b.pop()
        return torch.cat([b0, b1, b2, b3], 1)

    x = m5(x, "Mixed_5b", 32)
    x = m5(x, "Mixed_5c", 64)
    x = m5(x, "Mixed_5d", 64)
    b.push("Mixed_6a")
    b0 = _branch(b, "Branch_0", lambda: b.conv(x, 384, 3, 2, "VALID", "Conv2d_1a_1x1"))
    b1 = _branch(b, "Branch_1", lambda: b.conv(c(c(x, 64, 1, "Conv2d_0a_1x1"), 96, 3, "Conv2d_0b_3x3"),
                                               96, 3, 2, "VALID", "Conv2d_1a_1x1"))
    b2 = b.max_pool(x, 3, 2, "VALID")
    b.pop()
    x = torch.cat([b0, b1, b2], 1)

    def m6(x, name, d):
        b.push(name)
        b0 = _branch(b, "Branch_0", lambda: c(x, 192, 1, "Conv2d_0a_1x1"))
        b1 = _branch(b, "Branch_1", lambda: c(c(c(x, d, 1, "Conv2d_0a_1x1"), d, (1, 7), "Conv2d_0b_1x7"),
                                              192, (7, 1), "Conv2d_0c_7x1"))

        def br2():
            y = c(x, d, 1, "Conv2d_0a_1x1")
            y = c(y, d, (7, 1), "Conv2d_0b_7x1")
            y = c(y, d, (1, 7), "Conv2d_0c_1x7")
            y = c(y, d, (7, 1), "Conv2d_0d_7x1")
            return c(y, 192, (1, 7), "Conv2d_0e_1x7")
        b2 = _branch(b, "Branch_2", br2)
        b3 = _branch(b, "Branch_3", lambda: c(b.avg_pool(x, 3, 1), 192, 1, "Conv2d_0b_1x1"))
        b.pop()
        return torch.cat([b0, b1, b2, b3], 1)

    x = m6(x, "Mixed_6b", 128)
    x = m6(x, "Mixed_6c", 160)
    x = m6(x, "Mixed_6d", 160)
    x = m6(x, "Mixed_6e", 192)
    aux_in = x
    b.push("Mixed_7a")
    b0 = _branch(b, "Branch_0", lambda: b.conv(c(x, 192, 1, "Conv2d_0a_1x1"), 320, 3, 2, "VALID",
                                               "Conv2d_1a_3x3"))

    def br71():
        y = c(x, 192, 1, "Conv2d_0a_1x1")
        y = c(y, 192, (1, 7), "Conv2d_0b_1x7")
        y = c(y, 192, (7, 1), "Conv2d_0c_7x1")
        return b.conv(y, 192, 3, 2, "VALID", "Conv2d_1a_3x3")
    b1 = _branch(b, "Branch_1", br71)
    b2 = b.max_pool(x, 3, 2, "VALID")
    b.pop()
    x = torch.cat([b0, b1, b2], 1)

    def m7(x, name, n31):
        b.push(name)
        b0 = _branch(b, "Branch_0", lambda: c(x, 320, 1, "Conv2d_0a_1x1"))

        def br1():
            y = c(x, 384, 1, "Conv2d_0a_1x1")
            return torch.cat([c(y, 384, (1, 3), "Conv2d_0b_1x3"), c(y, 384, (3, 1), n31)], 1)

        def br2():
            y = c(x, 448, 1, "Conv2d_0a_1x1")
            y = c(y, 384, 3, "Conv2d_0b_3x3")
            return torch.cat([c(y, 384, (1, 3), "Conv2d_0c_1x3"), c(y, 384, (3, 1), "Conv2d_0d_3x1")], 1)
        b1 = _branch(b, "Branch_1", br1)
        b2 = _branch(b, "Branch_2", br2)
        b3 = _branch(b, "Branch_3", lambda: c(b.avg_pool(x, 3, 1), 192, 1, "Conv2d_0b_1x1"))
        b.pop()
        return torch.cat([b0, b1, b2, b3], 1)

    x = m7(x, "Mixed_7b", "Conv2d_0b_3x1")
    x = m7(x, "Mixed_7c", "Conv2d_0c_3x1")

    b.push("AuxLogits")
    a = b.avg_pool(aux_in, 5, 3, "VALID")
    a = c(a, 128, 1, "Conv2d_1b_1x1")
    k = (min(a.shape[2], 5), min(a.shape[3], 5))
    a = b.conv(a, 768, k, 1, "VALID", "Conv2d_2a_%dx%d" % k)
    a = b.conv(a, num_classes, 1, scope="Conv2d_2b_1x1", bn=False, relu=False)
    b.aux_logits = a.flatten(1)
    b.pop()

    b.push("Logits")
    k = (min(x.shape[2], 8), min(x.shape[3], 8))
    x = b.avg_pool(x, k, 2, "VALID")
    x = b.dropout(x, keep)
    x = b.conv(x, num_classes, 1, scope="Conv2d_1c_1x1", bn=False, relu=False)
    b.pop()
    b.pop()
    return x.flatten(1)


# name -> (function(builder, images NCHW, num_classes), default image size, classes, channels)
NETS = OrderedDict()
for _n in ("vgg_a", "vgg_16", "vgg_19"):
    NETS[_n] = (lambda b, x, k, _n=_n: vgg(b, x, _n, k), 224, 1001, 3)
for _v in ("v1", "v2"):
    for _d in ("50", "101", "152", "200"):
        _n = "resnet_%s_%s" % (_v, _d)
        NETS[_n] = (lambda b, x, k, _n=_n: resnet(b, x, _n, k), 224, 1001, 3)
NETS["lenet"] = (lenet, 28, 10, 1)
NETS["cifarnet"] = (cifarnet, 32, 10, 3)
NETS["inception_v1"] = (inception_v1, 224, 1001, 3)
NETS["inception_v3"] = (inception_v3, 299, 1001, 3)
