#!/usr/bin/env python3
"""Reference outputs for tests/test_preprocessing.c: slim's preprocessing (TF 1.x semantics) on
small JPEG files written here, for the deterministic paths (eval, and train with every random
choice pinned).

Run from the repository root:  /usr/bin/python3 tests/reference/gen_preprocessing.py
Needs Debian's python3-pil and python3-numpy (no TensorFlow). The images are made from a fixed
seed, encoded by PIL (libjpeg-turbo) at quality 90, and decoded by PIL with libjpeg's defaults
(islow IDCT, fancy upsampling), which is what tf.image.decode_jpeg and TurboJPEG's tjDecompress2
do; the decoded pixels are written too, so the test checks the decoder separately.

TF's ops are written out by hand in float32 numpy, in TF's arithmetic order:
  resize_bilinear(align_corners=False, half_pixel_centers=False)  (resize_bilinear_op.cc)
      scale = in / out (float32); in = out_index * scale; lo = floor(in); hi = min(ceil(in), in-1)
      lerp = in - floor(in); top = tl + (tr - tl) * xl; bottom likewise; top + (bottom - top) * yl
  vgg _smallest_size_at_least: float32 scale, tf.rint (half to even)
  tf.image.central_crop: offsets int((n - n * fraction) / 2) in float64
  convert_image_dtype(uint8 -> float32): x * float32(1/255)
  adjust_saturation: adjust_saturation_op.cc's rgb_to_hsv / hsv_to_rgb, s clipped to [0, 1]
  adjust_contrast, per_image_standardization: means in float64 (TF reduces in float32; the test's
      tolerance covers the difference)

Files (format in tests/reference/README.md), for each case <c>:
  prep_<c>_params.bin  i32 [source, kind, is_training, out_h, out_w, resize_side, crop_y, crop_x,
                            crop_h, crop_w, flip, sampled]  (kind: 0 vgg 1 inception 2 lenet
                            3 cifarnet; sampled = 1: the test lets prep_sample fill the eval
                            choices and checks them against the values here)
  prep_<c>_fparams.bin f32 [brightness, saturation, contrast]
  prep_<c>_out.bin     f32 (out_h, out_w, C)
and per source image s: prep_src<s>.jpg (JPEG sources) and prep_src<s>_pixels.bin (i32 (H, W, C):
the decoded pixels; for raw sources, the pixels themselves).
"""
import io
import os
import struct

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)))
F = np.float32
rng = np.random.RandomState(20261125)


def write(name, a):
    a = np.ascontiguousarray(a)
    dtype = {np.dtype(np.float32): 0, np.dtype(np.int32): 1}[a.dtype]
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(b"SBREF1\0\0")
        f.write(struct.pack("<II", dtype, a.ndim))
        f.write(struct.pack("<%dI" % a.ndim, *a.shape))
        f.write(a.tobytes())


def natural(h, w, c):
    """Smooth gradients plus a few blobs and noise: enough detail for every code path."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    img[..., 0] = 128 + 100 * np.sin(x / w * 3.1 + y / h * 1.3)
    img[..., 1] = 128 + 90 * np.cos(y / h * 4.2 - x / w * 0.7)
    img[..., 2] = 60 + 150 * (x + y) / (w + h)
    for _ in range(4):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(3, max(4, h / 3))
        img += (rng.uniform(-80, 80, 3) * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r))[..., None])
    img += rng.normal(0, 6, img.shape)
    img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return img if c == 3 else img[..., :1]


def jpeg_source(idx, h, w, gray=False, subsampling=2):
    pix = natural(h, w, 3)
    im = Image.fromarray(pix[..., 0] if gray else pix, "L" if gray else "RGB")
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90, subsampling=subsampling)
    data = buf.getvalue()
    with open(os.path.join(OUT, "prep_src%d.jpg" % idx), "wb") as f:
        f.write(data)
    dec = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))  # grey expands like TJPF_RGB
    write("prep_src%d_pixels.bin" % idx, dec.astype(np.int32))
    return dec


def raw_source(idx, h, w, c):
    pix = natural(h, w, c)
    write("prep_src%d_pixels.bin" % idx, pix.astype(np.int32))
    return pix


# ---------------------------------------------------------------------------------------------
# TF ops in float32.
# ---------------------------------------------------------------------------------------------

def taps(first, n, flip, region_n, resized_n):
    scale = F(region_n) / F(resized_n)
    ks = np.arange(n) + first
    if flip:
        ks = ks[::-1]
    inn = ks.astype(F) * scale
    fl = np.floor(inn)
    lo = np.maximum(fl.astype(np.int64), 0)
    hi = np.minimum(np.ceil(inn).astype(np.int64), region_n - 1)
    return lo, hi, (inn - fl).astype(F)


def resize_window(img, oy, ox, ny, nx, flip, region, resized):
    """Rows/cols [oy, oy+ny) x [ox, ox+nx) of resize_bilinear(img (region), resized)."""
    ylo, yhi, yl = taps(oy, ny, False, region[0], resized[0])
    xlo, xhi, xl = taps(ox, nx, flip, region[1], resized[1])
    im = img.astype(F)
    tl = im[ylo][:, xlo]
    tr = im[ylo][:, xhi]
    bl = im[yhi][:, xlo]
    br = im[yhi][:, xhi]
    xl = xl[None, :, None]
    yl = yl[:, None, None]
    top = tl + (tr - tl) * xl
    bot = bl + (br - bl) * xl
    return (top + (bot - top) * yl).astype(F)


def smallest_size_at_least(h, w, side):
    h32, w32, s32 = F(h), F(w), F(side)
    scale = s32 / w32 if h32 > w32 else s32 / h32
    return int(np.rint(h32 * scale)), int(np.rint(w32 * scale))


MEANS = np.array([123.68, 116.78, 103.94], dtype=F)


def vgg(img, out, side, cy, cx, flip):
    h, w = img.shape[:2]
    nh, nw = smallest_size_at_least(h, w, side)
    r = resize_window(img, cy, cx, out, out, flip, (h, w), (nh, nw))
    return (r - MEANS).astype(F)


def rgb_to_hsv(r, g, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        vv = np.maximum(r, np.maximum(g, b))
        rng_ = vv - np.minimum(r, np.minimum(g, b))
        s = np.where(vv > 0, rng_ / vv, F(0)).astype(F)
        norm = F(1.0) / (F(6.0) * rng_)
        h = np.where(r == vv, norm * (g - b),
                     np.where(g == vv, norm * (b - r) + F(2.0 / 6.0), norm * (r - g) + F(4.0 / 6.0)))
        h = np.where(rng_ <= 0, F(0), h)
        h = np.where(h < 0, h + F(1), h)
    return h.astype(F), s, vv


def hsv_to_rgb(h, s, v):
    c = s * v
    m = v - c
    dh = h * F(6)
    cat = dh.astype(np.int32)  # truncation, as static_cast<int>
    fm = dh.copy()
    while np.any(fm <= 0):
        fm = np.where(fm <= 0, fm + F(2), fm)
    while np.any(fm >= 2):
        fm = np.where(fm >= 2, fm - F(2), fm)
    x = c * (F(1) - np.abs(fm - F(1)))
    z = np.zeros_like(c)
    table = {0: (c, x, z), 1: (x, c, z), 2: (z, c, x), 3: (z, x, c), 4: (x, z, c), 5: (c, z, x)}
    rr, gg, bb = z.copy(), z.copy(), z.copy()
    for k, (a, b_, d) in table.items():
        sel = cat == k
        rr = np.where(sel, a, rr)
        gg = np.where(sel, b_, gg)
        bb = np.where(sel, d, bb)
    return (rr + m).astype(F), (gg + m).astype(F), (bb + m).astype(F)


def inception_train(img, out, by, bx, bh, bw, flip, brightness, saturation):
    x = (img.astype(F) * F(1.0 / 255.0)).astype(F)
    crop = x[by:by + bh, bx:bx + bw]
    r = resize_window(crop, 0, 0, out, out, flip, (bh, bw), (out, out))
    r = (r + F(brightness)).astype(F)
    h, s, v = rgb_to_hsv(r[..., 0], r[..., 1], r[..., 2])
    s = np.minimum(F(1), np.maximum(F(0), s * F(saturation)))
    r = np.stack(hsv_to_rgb(h, s, v), axis=-1)
    r = np.clip(r, F(0), F(1))
    return ((r - F(0.5)) * F(2.0)).astype(F)


def central(n, fraction=0.875):
    return int((n - n * fraction) / 2)


def inception_eval(img, out):
    h, w = img.shape[:2]
    cy, cx = central(h), central(w)
    ch, cw = h - 2 * cy, w - 2 * cx
    x = (img.astype(F) * F(1.0 / 255.0)).astype(F)
    r = resize_window(x[cy:cy + ch, cx:cx + cw], 0, 0, out, out, False, (ch, cw), (out, out))
    return ((r - F(0.5)) * F(2.0)).astype(F), (cy, cx, ch, cw)


def crop_or_pad(img, th, tw):
    h, w, c = img.shape
    out = np.zeros((th, tw, c), dtype=F)
    cy, py = max((h - th) // 2, 0), max((th - h) // 2, 0)
    cx, px = max((w - tw) // 2, 0), max((tw - w) // 2, 0)
    hh, ww = min(th, h), min(tw, w)
    out[py:py + hh, px:px + ww] = img[cy:cy + hh, cx:cx + ww]
    return out


def lenet(img, out):
    return ((crop_or_pad(img.astype(F), out, out) - F(128.0)) / F(128.0)).astype(F)


def standardize(x):
    x = x.astype(F)
    mean = x.astype(np.float64).mean()
    var = max((x.astype(np.float64) ** 2).mean() - mean * mean, 0.0)
    sd = max(np.sqrt(var), 1.0 / np.sqrt(x.size))
    return ((x - F(mean)) / F(sd)).astype(F)


def cifarnet_train(img, out, cy, cx, flip, brightness, contrast):
    p = 4
    padded = np.zeros((img.shape[0] + 2 * p, img.shape[1] + 2 * p, img.shape[2]), dtype=F)
    padded[p:-p, p:-p] = img
    crop = padded[cy:cy + out, cx:cx + out]
    if flip:
        crop = crop[:, ::-1]
    x = (crop + F(brightness)).astype(F)
    mean = x.astype(np.float64).mean(axis=(0, 1)).astype(F)
    x = ((x - mean) * F(contrast) + mean).astype(F)
    return standardize(x)


def cifarnet_eval(img, out):
    return standardize(crop_or_pad(img.astype(F), out, out))


# ---------------------------------------------------------------------------------------------
# Cases.
# ---------------------------------------------------------------------------------------------

src = {
    0: jpeg_source(0, 45, 60),                          # 4:2:0 colour, landscape
    1: jpeg_source(1, 64, 40, gray=True),               # greyscale, portrait
    2: jpeg_source(2, 90, 120, subsampling=0),          # 4:4:4
    3: raw_source(3, 28, 28, 1),                        # mnist-like raw
    4: raw_source(4, 32, 32, 3),                        # cifar-like raw
}

VGG, INC, LENET, CIFAR = 0, 1, 2, 3


def case(name, s, kind, train, out, arr, side=0, cy=0, cx=0, ch=0, cw=0, flip=0, sampled=0,
         bright=0.0, sat=1.0, contrast=1.0):
    write("prep_%s_params.bin" % name, np.array(
        [s, kind, train, out, out, side, cy, cx, ch, cw, flip, sampled], dtype=np.int32))
    write("prep_%s_fparams.bin" % name, np.array([bright, sat, contrast], dtype=F))
    write("prep_%s_out.bin" % name, arr)


# vgg train, pinned: downsampling resize, flipped crop
case("vgg_train_down", 0, VGG, 1, 24, vgg(src[0], 24, 38, 5, 20, True), side=38, cy=5, cx=20, flip=1)
# vgg train, pinned: upsampling resize (side 90 from 45), no flip
case("vgg_train_up", 0, VGG, 1, 32, vgg(src[0], 32, 90, 10, 41, False), side=90, cy=10, cx=41)
# vgg train on the greyscale source expanded to RGB
case("vgg_train_gray", 1, VGG, 1, 16, vgg(src[1], 16, 33, 7, 3, True), side=33, cy=7, cx=3, flip=1)
# vgg eval: side 256, central crop
h, w = src[2].shape[:2]
nh, nw = smallest_size_at_least(h, w, 256)
case("vgg_eval", 2, VGG, 0, 16, vgg(src[2], 16, 256, (nh - 16) // 2, (nw - 16) // 2, False),
     side=256, cy=(nh - 16) // 2, cx=(nw - 16) // 2, sampled=1)
# inception train, pinned box, flip, brightness, saturation
case("inception_train", 2, INC, 1, 24,
     inception_train(src[2], 24, 11, 17, 61, 80, True, 0.07, 1.35),
     cy=11, cx=17, ch=61, cw=80, flip=1, bright=0.07, sat=1.35)
case("inception_train_desat", 0, INC, 1, 20,
     inception_train(src[0], 20, 3, 7, 30, 41, False, -0.1, 0.6),
     cy=3, cx=7, ch=30, cw=41, bright=-0.1, sat=0.6)
# inception eval: central 87.5 %, resize
r, (cy, cx, ch, cw) = inception_eval(src[2], 32)
case("inception_eval", 2, INC, 0, 32, r, cy=cy, cx=cx, ch=ch, cw=cw, sampled=1)
r, (cy, cx, ch, cw) = inception_eval(src[0], 56)
case("inception_eval_up", 0, INC, 0, 56, r, cy=cy, cx=cx, ch=ch, cw=cw, sampled=1)
# lenet: same size, pad, crop
case("lenet_28", 3, LENET, 1, 28, lenet(src[3], 28), sampled=1)
case("lenet_pad", 3, LENET, 0, 33, lenet(src[3], 33), sampled=1)
case("lenet_crop", 3, LENET, 0, 21, lenet(src[3], 21), sampled=1)
# cifarnet
case("cifarnet_train", 4, CIFAR, 1, 32, cifarnet_train(src[4], 32, 2, 7, True, 10.5, 1.4),
     cy=2, cx=7, flip=1, bright=10.5, contrast=1.4)
case("cifarnet_train_edge", 4, CIFAR, 1, 32, cifarnet_train(src[4], 32, 8, 0, False, -40.0, 0.3),
     cy=8, cx=0, bright=-40.0, contrast=0.3)
case("cifarnet_eval", 4, CIFAR, 0, 28, cifarnet_eval(src[4], 28), sampled=1)
print("wrote preprocessing references to", OUT)
