#!/usr/bin/env python3
"""Whole-net reference for tests/test_models_torch.c: slim's nets built in PyTorch 1.13
(slim_torch.py, independent of slimbench's C code), one training step's forward and backward in
float64 on float32 weights and images, dumped for comparison with slimbench's float32 nets.

Weights and images are not stored: both sides compute them from a counter-based hash, so the
files stay small even for vgg_16. Element i of a tensor named NAME is
    u = uniform[-1, 1) from SplitMix64(FNV-1a-64(NAME) xor i * 0x9e3779b97f4a7c15) (top 53 bits)
rounded to float32 after scaling: weights (rank >= 2) u * sqrt(6 / fan_in) with fan_in the
product of all but the last dimension, biases and beta 0.1 u, gamma 1 + 0.1 u, moving statistics
at their initial values (0, 1); images ("images", NHWC order) u; label of example b (7b + 3) % K.
Dropout runs with keep_prob 1 (the C side passes dropout_keep_prob=1), label smoothing 0.

Per model M, written to tests/reference/:
  net_M_logits.bin   (N, K) float32 logits (NET_MODE_TRAIN: batch-norm on batch statistics)
  net_M.txt          first line: "image_size batch classes loss aux_loss loss_noise aux_noise";
                     then one line per variable in slim's creation order:
                     "name count dot sumabs dot_noise sumabs_noise" where for a
                     trainable variable dot = sum_i g_i * p_i with p_i = u(NAME + "#probe", i) and
                     sumabs = sum_i |g_i| of its gradient dL/dvar, and for a moving statistic the
                     same over its value after the step's moving-average update (decay from the arg
                     scope, unbiased batch variance); lines "full NAME FILE" name variables whose
                     whole gradient is stored in FILE (float32, TF layout).
Noise: untrained deep nets with batch norm amplify rounding (gradient explosion at
initialization), so PyTorch's own float32 result can be percents away from float64 in early
layers. The step is therefore also run NOISE_RUNS times in float32 (once as is, then with the
images moved by about one float32 rounding error), and each "noise" value (the "_noise" files,
elementwise) is the largest deviation of those runs from float64. The C test accepts
|ours - float64| <= 1e-3 x scale + 6 x noise (elementwise: all but 0.4% of the elements, the
tail that chaotic amplification produces).

Usage (from the repository root): /usr/bin/python3 tests/reference/gen_nets.py [model ...]
"""
import math
import os
import struct
import sys
from collections import OrderedDict

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import slim_torch  # noqa: E402

OUT = os.path.dirname(os.path.abspath(__file__))
NOISE_RUNS = 16  # float32 runs that measure how much rounding moves each result
M64 = np.uint64(0xFFFFFFFFFFFFFFFF)

# model -> (image size, batch, classes, bn decay, variables whose whole gradient is stored)
CASES = {
    "lenet": (28, 3, 10, None, ["LeNet/conv1/weights", "LeNet/fc4/weights", "LeNet/fc4/biases"]),
    "cifarnet": (32, 2, 10, None, ["CifarNet/conv1/weights", "CifarNet/conv2/biases",
                                   "CifarNet/logits/weights"]),
    "vgg_16": (224, 1, 10, None, ["vgg_16/conv1/conv1_1/weights", "vgg_16/conv5/conv5_3/biases",
                                  "vgg_16/fc8/biases"]),
    "resnet_v1_50": (64, 4, 10, 0.997, [
        "resnet_v1_50/conv1/weights",
        "resnet_v1_50/block1/unit_3/bottleneck_v1/conv2/BatchNorm/gamma",
        "resnet_v1_50/block2/unit_1/bottleneck_v1/shortcut/BatchNorm/beta",
        "resnet_v1_50/logits/biases"]),
    "resnet_v2_50": (64, 4, 10, 0.997, [
        "resnet_v2_50/conv1/weights",
        "resnet_v2_50/block1/unit_1/bottleneck_v2/preact/gamma",
        "resnet_v2_50/block4/unit_1/bottleneck_v2/shortcut/biases",
        "resnet_v2_50/postnorm/gamma", "resnet_v2_50/logits/biases"]),
    "inception_v3": (107, 2, 10, 0.9997, [
        "InceptionV3/Conv2d_1a_3x3/weights",
        "InceptionV3/Mixed_6e/Branch_1/Conv2d_0c_7x1/BatchNorm/beta",
        "InceptionV3/AuxLogits/Conv2d_2b_1x1/biases",
        "InceptionV3/Logits/Conv2d_1c_1x1/biases"]),
}


def fnv1a(s):
    h = 0xcbf29ce484222325
    for c in s.encode():
        h = ((h ^ c) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def det_uniform(name, n):
    """u(name, i) for i in [0, n) as float64 (see the module docstring)."""
    with np.errstate(over="ignore"):
        z = np.uint64(fnv1a(name)) ^ (np.arange(n, dtype=np.uint64) * np.uint64(0x9e3779b97f4a7c15))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xbf58476d1ce4e5b9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94d049bb133111eb)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0) * 2.0 - 1.0


class DetValues(dict):
    """Variable name -> deterministic value, computed on first lookup from the name and shape the
    builder asks for (the builder checks membership with `in`, then indexes)."""

    def __init__(self, shapes):
        super().__init__()
        self.shapes = shapes

    def __contains__(self, name):
        return name in self.shapes and not name.endswith(("moving_mean", "moving_variance"))

    def __getitem__(self, name):
        shape = self.shapes[name]
        n = int(np.prod(shape))
        u = det_uniform(name, n)
        leaf = name.rsplit("/", 1)[1]
        if len(shape) >= 2:
            v = u * math.sqrt(6.0 / int(np.prod(shape[:-1])))
        elif leaf == "gamma":
            v = 1.0 + 0.1 * u
        else:
            v = 0.1 * u
        return torch.from_numpy(v.astype(np.float32).astype(np.float64).reshape(shape))


def write_bin(path, arr):
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    with open(path, "wb") as f:
        f.write(b"SBREF1\0\0")
        f.write(struct.pack("<II", 0, arr.ndim))
        f.write(struct.pack("<%dI" % arr.ndim, *arr.shape))
        f.write(arr.tobytes())


def run(model):
    size, batch, classes, decay, full = CASES[model]
    fn, _, _, channels = slim_torch.NETS[model]
    # pass 1: variable shapes (cheap: batch 1, no grad)
    probe = slim_torch.Builder(training=False, dtype=torch.float32)
    with torch.no_grad():
        fn(probe, torch.zeros(1, channels, size, size), classes)
    shapes = {k: tuple(v.shape) for k, v in probe.vars.items()}

    def value(r, name):
        return r["grads"][name] if r["trainable"][name] else moving(r, name, decay)

    probes = {}

    def summary(r):  # every number the C test compares, so a float32 run need not be kept
        out = {"logits": r["logits"], "loss": np.array(r["loss"]), "aux": np.array(r["aux"])}
        for name in r["grads"]:
            v = value(r, name)
            if name not in probes:
                probes[name] = det_uniform(name + "#probe", v.size)
            out["dot " + name] = np.array(np.dot(v, probes[name]))
            out["abs " + name] = np.array(np.abs(v).sum())
        for name in full:
            out["full " + name] = r["grads"][name]
        return out

    r64 = step(model, fn, shapes, size, batch, classes, channels, torch.float64, 0)
    s64 = summary(r64)
    noise = {}  # largest float32 deviation from float64 over the float32 runs
    for k in range(NOISE_RUNS):
        s32 = summary(step(model, fn, shapes, size, batch, classes, channels, torch.float32, k))
        for key, ref in s64.items():
            d = np.abs(s32[key] - ref)
            noise[key] = d if key not in noise else np.maximum(noise[key], d)

    write_bin(os.path.join(OUT, "net_%s_logits.bin" % model), r64["logits"])
    write_bin(os.path.join(OUT, "net_%s_logits_noise.bin" % model), noise["logits"])
    lines = ["%d %d %d %.9e %.9e %.9e %.9e" % (
        size, batch, classes, r64["loss"], r64["aux"], noise["loss"], noise["aux"])]
    for name in r64["grads"]:
        g64 = value(r64, name)
        lines.append("%s %d %.9e %.9e %.9e %.9e" % (
            name, g64.size, s64["dot " + name], s64["abs " + name], noise["dot " + name],
            noise["abs " + name]))
    for i, name in enumerate(full):
        fname = "net_%s_grad%d.bin" % (model, i)
        write_bin(os.path.join(OUT, fname), r64["grads"][name])
        write_bin(os.path.join(OUT, "net_%s_grad%d_noise.bin" % (model, i)), noise["full " + name])
        lines.append("full %s %s" % (name, fname))
    with open(os.path.join(OUT, "net_%s.txt" % model), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("%-14s image %3d batch %d classes %d loss %.6f aux %.6f" % (
        model, size, batch, classes, r64["loss"], r64["aux"]))


def moving(r, name, decay):
    scope, leaf = name.rsplit("/", 1)
    mean, var = r["bn_in"][scope]
    init = 0.0 if leaf == "moving_mean" else 1.0
    return (decay * init + (1 - decay) * (mean if leaf == "moving_mean" else var)).astype(np.float64)


def step(model, fn, shapes, size, batch, classes, channels, dtype, perturb):
    """One training step in `dtype`; returns logits, losses, gradients and BN batch statistics.
    perturb > 0 multiplies the images by (1 + 2^-24 v), v uniform in [-1, 1) from a key of its
    own: a float32 run with inputs moved by about one rounding error."""
    b = slim_torch.Builder(training=True, values=DetValues(shapes), dtype=dtype)
    b.keep_prob = 1.0
    img = det_uniform("images", batch * size * size * channels).astype(np.float32)
    if perturb:
        v = det_uniform("perturb%d" % perturb, img.size)
        img = (img.astype(np.float64) * (1.0 + v * 2.0 ** -24)).astype(np.float32)
    x = torch.from_numpy(img.reshape(batch, size, size, channels)).to(dtype).permute(0, 3, 1, 2)
    bn_in = {}
    orig_bn = b.batch_norm

    def bn_spy(t, scope="BatchNorm", **kw):  # batch statistics for the moving averages
        full_scope = "/".join(b.scope + [scope])
        bn_in[full_scope] = (t.detach().mean(dim=(0, 2, 3)).double().numpy(),
                             t.detach().var(dim=(0, 2, 3), unbiased=True).double().numpy())
        return orig_bn(t, scope, **kw)
    b.batch_norm = bn_spy
    logits = fn(b, x, classes)
    labels = torch.tensor([(7 * i + 3) % classes for i in range(batch)])
    loss = torch.nn.functional.cross_entropy(logits, labels)
    aux = torch.nn.functional.cross_entropy(b.aux_logits, labels) if b.aux_logits is not None else None
    total = loss + (0.4 * aux if aux is not None else 0)
    total.backward()
    grads = OrderedDict()
    for name, v in b.vars.items():
        grads[name] = (v.grad.detach().double().numpy().reshape(-1) if b.trainable[name] else None)
    return {"logits": logits.detach().double().numpy(), "loss": loss.item(),
            "aux": aux.item() if aux is not None else 0.0, "grads": grads,
            "trainable": b.trainable, "bn_in": bn_in}


def main():
    torch.set_num_threads(2)
    for m in (sys.argv[1:] or list(CASES)):
        run(m)


if __name__ == "__main__":
    main()
