#!/usr/bin/env python3
"""Reference update sequences for train/optimizer.c (read by tests/test_optimizer.c).

    /usr/bin/python3 tests/reference/gen_optimizers.py      # from the repository root

Plain Python, no NumPy, no TensorFlow, no PyTorch (torch's optimizers are not TF's: its RMSprop
starts the mean square at 0 and puts epsilon outside the sqrt, its Adam uses epsilon, not
epsilon hat, ...). The update rules below are transcribed independently from TensorFlow's CPU
functors in tensorflow/core/kernels/training_ops.cc and the slot set-up of
tensorflow/python/training/{adadelta,adagrad,adam,ftrl,momentum,rmsprop}.py, and evaluated in
float64 on float32 inputs: initial parameters, gradients and hyperparameters are rounded to
float32 first (TF casts the hyperparameters to the variable's dtype), so the files hold the
exact answer to those float32 inputs and the C code's only deviation is its float32 rounding.

Files per case <c> (SBREF1 format, see README.md in this directory), n = 37 floats so that every
vector width (4, 8, 16) leaves a tail, 5 steps:
    opt_<c>_hp.bin     f32 (15): kind lr weight_decay adadelta_rho adagrad_iav adam_beta1
                       adam_beta2 opt_epsilon ftrl_lr_power ftrl_iav ftrl_l1 ftrl_l2 momentum
                       rmsprop_momentum rmsprop_decay       (kind: index in KINDS below)
    opt_<c>_w0.bin     f32 (n)          initial parameters
    opt_<c>_g.bin      f32 (steps, n)   gradient of each step (before weight decay)
    opt_<c>_w.bin      f32 (steps, n)   parameters after each step
    opt_<c>_slots.bin  f32 (slots, n)   slot values after the last step (absent for sgd)
"""
import math
import os
import random
import struct

OUT = os.path.dirname(os.path.abspath(__file__))
N, STEPS = 37, 5
# Same order as enum opt_kind in train/train.h.
KINDS = ["adadelta", "adagrad", "adam", "ftrl", "momentum", "sgd", "rmsprop"]


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def write(name, dims, data):
    assert len(data) == math.prod(dims)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(b"SBREF1\0\0" + struct.pack("<II", 0, len(dims)))
        f.write(struct.pack("<%dI" % len(dims), *dims))
        f.write(struct.pack("<%df" % len(data), *data))


def sign(x):
    return 0.0 if x == 0.0 else (-1.0 if x < 0.0 else 1.0)


# ---- TensorFlow's rules, one float at a time. s: list of slot values, updated in place. ----

def adadelta(w, g, s, hp, t):
    # accum = accum*rho + g^2*(1-rho); update = sqrt(accum_update+eps)*rsqrt(accum+eps)*g
    # var -= update*lr; accum_update = accum_update*rho + update^2*(1-rho)
    rho, eps, lr = hp["adadelta_rho"], hp["opt_epsilon"], hp["lr"]
    s[0] = s[0] * rho + g * g * (1 - rho)
    upd = math.sqrt(s[1] + eps) / math.sqrt(s[0] + eps) * g
    s[1] = s[1] * rho + upd * upd * (1 - rho)
    return w - upd * lr


def adagrad(w, g, s, hp, t):
    # accum += g^2; var -= lr*g*rsqrt(accum)
    s[0] += g * g
    return w - hp["lr"] * g / math.sqrt(s[0])


def adam(w, g, s, hp, t):
    # t = 1, 2, ...: beta powers beta^t; lr_t = lr*sqrt(1-beta2^t)/(1-beta1^t)
    # m = beta1*m + (1-beta1)*g; v = beta2*v + (1-beta2)*g^2; var -= lr_t*m/(sqrt(v)+eps_hat)
    b1, b2 = hp["adam_beta1"], hp["adam_beta2"]
    lr_t = hp["lr"] * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    s[0] = b1 * s[0] + (1 - b1) * g
    s[1] = b2 * s[1] + (1 - b2) * g * g
    return w - lr_t * s[0] / (math.sqrt(s[1]) + hp["opt_epsilon"])


def ftrl(w, g, s, hp, t):
    # ApplyFtrl: new_accum = accum + g^2
    # linear += g - (new_accum^(-p) - accum^(-p)) / lr * var
    # var = |linear| > l1 ? (l1*sign(linear) - linear) / (new_accum^(-p)/lr + 2*l2) : 0
    p, lr, l1, l2 = hp["ftrl_lr_power"], hp["lr"], hp["ftrl_l1"], hp["ftrl_l2"]
    accum, new_accum = s[0], s[0] + g * g
    s[1] += g - (new_accum ** -p - accum ** -p) / lr * w
    s[0] = new_accum
    lin = s[1]
    if abs(lin) > l1:
        return (l1 * sign(lin) - lin) / (new_accum ** -p / lr + 2 * l2)
    return 0.0


def momentum(w, g, s, hp, t):
    # accum = momentum*accum + g; var -= lr*accum
    s[0] = hp["momentum"] * s[0] + g
    return w - hp["lr"] * s[0]


def sgd(w, g, s, hp, t):
    return w - hp["lr"] * g


def rmsprop(w, g, s, hp, t):
    # ms = decay*ms + (1-decay)*g^2 (ms starts at 1); mom = momentum*mom + lr*g/sqrt(ms+eps)
    # var -= mom
    d = hp["rmsprop_decay"]
    s[0] = d * s[0] + (1 - d) * g * g
    s[1] = hp["rmsprop_momentum"] * s[1] + hp["lr"] * g / math.sqrt(s[0] + hp["opt_epsilon"])
    return w - s[1]


RULES = {"adadelta": adadelta, "adagrad": adagrad, "adam": adam, "ftrl": ftrl,
         "momentum": momentum, "sgd": sgd, "rmsprop": rmsprop}


def slot_init(kind, hp):
    return {"adadelta": [0.0, 0.0], "adagrad": [hp["adagrad_iav"]], "adam": [0.0, 0.0],
            "ftrl": [hp["ftrl_iav"], 0.0], "momentum": [0.0], "sgd": [],
            "rmsprop": [1.0, 0.0]}[kind]


# slim's defaults (train_image_classifier.py flags), overridden per case.
SLIM = dict(lr=0.01, weight_decay=0.0, adadelta_rho=0.95, adagrad_iav=0.1, adam_beta1=0.9,
            adam_beta2=0.999, opt_epsilon=1.0, ftrl_lr_power=-0.5, ftrl_iav=0.1, ftrl_l1=0.0,
            ftrl_l2=0.0, momentum=0.9, rmsprop_momentum=0.9, rmsprop_decay=0.9)
HP_ORDER = ["lr", "weight_decay", "adadelta_rho", "adagrad_iav", "adam_beta1", "adam_beta2",
            "opt_epsilon", "ftrl_lr_power", "ftrl_iav", "ftrl_l1", "ftrl_l2", "momentum",
            "rmsprop_momentum", "rmsprop_decay"]

CASES = [
    ("sgd", "sgd", dict(lr=0.1)),
    ("sgd_wd", "sgd", dict(lr=0.1, weight_decay=0.05)),
    ("momentum", "momentum", dict(lr=0.1)),
    ("momentum_wd", "momentum", dict(lr=0.05, momentum=0.5, weight_decay=0.01)),
    ("adagrad", "adagrad", dict(lr=0.1)),
    ("adadelta", "adadelta", dict(lr=1.0)),
    ("adadelta_eps", "adadelta", dict(lr=0.5, opt_epsilon=1e-3, adadelta_rho=0.9)),
    ("adam", "adam", dict(lr=0.1)),
    ("adam_eps", "adam", dict(lr=0.01, opt_epsilon=1e-8, adam_beta1=0.8, adam_beta2=0.99)),
    ("ftrl", "ftrl", dict(lr=0.1)),
    ("ftrl_l1l2", "ftrl", dict(lr=0.2, ftrl_l1=0.01, ftrl_l2=0.1, ftrl_iav=0.5)),
    ("ftrl_power", "ftrl", dict(lr=0.1, ftrl_lr_power=-0.25, ftrl_l1=0.001)),
    ("rmsprop", "rmsprop", dict(lr=0.1)),
    ("rmsprop_wd", "rmsprop", dict(lr=0.01, opt_epsilon=1e-10, rmsprop_decay=0.95,
                                   rmsprop_momentum=0.5, weight_decay=0.004)),
]


def main():
    rng = random.Random(20261125)
    for name, kind, over in CASES:
        hp = {k: f32(v) for k, v in dict(SLIM, **over).items()}
        w = [f32(rng.uniform(-1.0, 1.0)) for _ in range(N)]
        gs = [[f32(rng.uniform(-1.0, 1.0)) for _ in range(N)] for _ in range(STEPS)]
        slots = [slot_init(kind, hp) for _ in range(N)]
        w0, cur, traj = list(w), list(w), []
        for t in range(1, STEPS + 1):
            for i in range(N):
                g = gs[t - 1][i] + hp["weight_decay"] * cur[i]  # slim's l2_regularizer gradient
                cur[i] = RULES[kind](cur[i], g, slots[i], hp, t)
            traj += cur
        write("opt_%s_hp.bin" % name, [15],
              [float(KINDS.index(kind))] + [hp[k] for k in HP_ORDER])
        write("opt_%s_w0.bin" % name, [N], w0)
        write("opt_%s_g.bin" % name, [STEPS, N], [x for row in gs for x in row])
        write("opt_%s_w.bin" % name, [STEPS, N], traj)
        ns = len(slots[0])
        if ns:
            write("opt_%s_slots.bin" % name, [ns, N], [slots[i][j] for j in range(ns)
                                                       for i in range(N)])


if __name__ == "__main__":
    main()
