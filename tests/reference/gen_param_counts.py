#!/usr/bin/env python3
"""Parameter counts of TF-slim's nets, from an independent PyTorch construction of slim's
definitions (slim_torch.py): each net runs once at its default image size (batch 1) so every
variable is created, then the trainable variables and all variables (with the batch-norm moving
statistics) are counted. Each net uses its default dataset: ImageNet's 1001 classes at 3
channels, LeNet MNIST's 10 classes at 1 channel, CifarNet CIFAR-10's 10 classes.

Prints the counts, then the same as rows of the C table in tests/test_models.c (pasted there).

Usage (from the repository root): /usr/bin/python3 tests/reference/gen_param_counts.py
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import slim_torch  # noqa: E402

def main():
    torch.manual_seed(0)
    rows = []
    for name, (fn, size, classes, channels) in slim_torch.NETS.items():
        b = slim_torch.Builder(training=False, dtype=torch.float32)
        with torch.no_grad():
            fn(b, torch.zeros(1, channels, size, size), classes)
        trainable = sum(v.numel() for k, v in b.vars.items() if b.trainable[k])
        total = sum(v.numel() for v in b.vars.values())
        print("%-14s classes %4d  trainable %11d  all %11d  variables %4d"
              % (name, classes, trainable, total, len(b.vars)))
        rows.append('    {"%s", %d, %d},\n' % (name, trainable, total))
    print("".join(rows), end="")


if __name__ == "__main__":
    main()
