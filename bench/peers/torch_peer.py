#!/usr/bin/python3
"""bench/peers/torch_peer.py -- the PyTorch peer of a slimbench training run.

Trains the same model, batch size, optimizer and thread count as `launch` on synthetic
ImageNet-shaped data (channels_last, fp32, CPU) and prints one CSV line:

    impl,torch_version,model_name,batch_size,threads,warmup_steps,steps,images_per_sec,
    images_per_sec_stdev,step_ms_median,final_loss

images_per_sec is the median over the timed steps (after the warm-up), as slimbench and
tf_cnn_benchmarks report it. A step is what slimbench's step is: zero grads, forward, softmax
cross-entropy, backward, optimizer update.

The optimizer is TF-slim's RMSProp with slim's defaults (decay 0.9, momentum 0.9, epsilon 1.0,
learning rate 0.01) as torch.optim.RMSprop(alpha=0.9, momentum=0.9, eps=1.0); torch adds eps
outside the square root and starts the mean square at 0 rather than 1, which changes the values,
not the work. slim's L2 weight decay (4e-5) goes on conv and fully-connected weights only, as
slim's arg scopes put it. Models are torchvision's resnet50 and vgg16 with slim's 1001 classes;
when torchvision is not installed the standard torchvision architectures defined below are used.

Needs only torch (Debian's python3-torch): run it with /usr/bin/python3.
"""
import argparse
import statistics
import sys
import time

import torch
import torch.nn as nn


def _conv_bn(cin, cout, k, stride=1, pad=0):
    return [nn.Conv2d(cin, cout, k, stride, pad, bias=False), nn.BatchNorm2d(cout)]


class _Bottleneck(nn.Module):
    """torchvision's Bottleneck (ResNet v1.5: stride in the 3x3)."""

    def __init__(self, cin, width, stride):
        super().__init__()
        cout = width * 4
        self.body = nn.Sequential(*_conv_bn(cin, width, 1), nn.ReLU(inplace=True),
                                  *_conv_bn(width, width, 3, stride, 1), nn.ReLU(inplace=True),
                                  *_conv_bn(width, cout, 1))
        self.short = (nn.Sequential(*_conv_bn(cin, cout, 1, stride))
                      if stride != 1 or cin != cout else nn.Identity())
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.body(x) + self.short(x))


def _resnet50(num_classes):
    layers = [*_conv_bn(3, 64, 7, 2, 3), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for b in range(blocks):
            layers.append(_Bottleneck(cin, width, stride if b == 0 else 1))
            cin = width * 4
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2048, num_classes)]
    return nn.Sequential(*layers)


def _vgg16(num_classes):
    layers, cin = [], 3
    for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"):
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=True)]
            cin = v
    layers += [nn.Flatten(), nn.Linear(512 * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
               nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
               nn.Linear(4096, num_classes)]
    return nn.Sequential(*layers)


# slim model name -> (torchvision constructor name, own definition, image size)
MODELS = {
    "resnet_v1_50": ("resnet50", _resnet50, 224),
    "vgg_16": ("vgg16", _vgg16, 224),
}


def build_model(name, num_classes):
    tv_name, own, size = MODELS[name]
    try:
        import torchvision.models as tvm
        return getattr(tvm, tv_name)(num_classes=num_classes), size, "torchvision"
    except ImportError:
        return own(num_classes), size, "own-definition"


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model_name", required=True, choices=sorted(MODELS))
    ap.add_argument("--batch_size", type=int, default=32)
    ap.add_argument("--optimizer", default="rmsprop", choices=["rmsprop", "sgd"])
    ap.add_argument("--threads", type=int, default=0, help="0: torch's default")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--num_classes", type=int, default=1001)
    ap.add_argument("--learning_rate", type=float, default=0.01)
    ap.add_argument("--weight_decay", type=float, default=4e-5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--header", action="store_true", help="print the CSV header first")
    a = ap.parse_args(argv)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    model, size, source = build_model(a.model_name, a.num_classes)
    model = model.to(memory_format=torch.channels_last).train()
    decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    other = [p for n, p in model.named_parameters() if p.dim() <= 1]
    groups = [{"params": decay, "weight_decay": a.weight_decay},
              {"params": other, "weight_decay": 0.0}]
    if a.optimizer == "rmsprop":
        opt = torch.optim.RMSprop(groups, lr=a.learning_rate, alpha=0.9, eps=1.0, momentum=0.9)
    else:
        opt = torch.optim.SGD(groups, lr=a.learning_rate)
    loss_fn = nn.CrossEntropyLoss()
    # Synthetic data in [-1, 1], like slimbench's synthetic source, fixed for the run.
    x = (torch.rand(a.batch_size, 3, size, size) * 2 - 1).contiguous(
        memory_format=torch.channels_last)
    y = torch.randint(0, a.num_classes, (a.batch_size,))

    times, loss = [], float("nan")
    for step in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        out = model(x)
        l = loss_fn(out, y)
        l.backward()
        opt.step()
        loss = l.item()
        dt = time.perf_counter() - t0
        if step >= a.warmup:
            times.append(dt)
        print(f"torch_peer: step {step + 1}: {dt:.3f} s, {a.batch_size / dt:.2f} images/sec, "
              f"loss {loss:.4f}", file=sys.stderr, flush=True)
    ips = [a.batch_size / t for t in times]
    if a.header:
        print("impl,torch_version,model_name,batch_size,threads,warmup_steps,steps,"
              "images_per_sec,images_per_sec_stdev,step_ms_median,final_loss")
    print(f"pytorch-{source},{torch.__version__},{a.model_name},{a.batch_size},"
          f"{torch.get_num_threads()},{a.warmup},{a.steps},{statistics.median(ips):.3f},"
          f"{statistics.stdev(ips) if len(ips) > 1 else 0.0:.3f},"
          f"{1e3 * statistics.median(times):.3f},{loss:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
