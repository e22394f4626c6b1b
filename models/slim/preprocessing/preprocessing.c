/* models/slim/preprocessing/preprocessing.c — slim's preprocessing_factory, the random choices
 * of each preprocessing (drawn in slim's order) and the per-kind pipelines built from the
 * resample and colour blocks in prep_ops.c. Knows nothing of records, JPEG or threads.
 */
#include "models/slim/preprocessing/preprocessing.h"

#include <math.h>
#include <string.h>

/* slim's preprocessing_factory.preprocessing_fn_map. */
static const struct {
    const char *name;
    enum prep_kind kind;
} k_factory[] = {
    {"cifarnet", PREP_KIND_CIFARNET},
    {"inception", PREP_KIND_INCEPTION},
    {"inception_v1", PREP_KIND_INCEPTION},
    {"inception_v2", PREP_KIND_INCEPTION},
    {"inception_v3", PREP_KIND_INCEPTION},
    {"inception_v4", PREP_KIND_INCEPTION},
    {"inception_resnet_v2", PREP_KIND_INCEPTION},
    {"lenet", PREP_KIND_LENET},
    {"mobilenet_v1", PREP_KIND_INCEPTION},
    {"mobilenet_v2", PREP_KIND_INCEPTION},
    {"mobilenet_v2_035", PREP_KIND_INCEPTION},
    {"mobilenet_v2_140", PREP_KIND_INCEPTION},
    {"mobilenet_v3_small", PREP_KIND_INCEPTION},
    {"mobilenet_v3_large", PREP_KIND_INCEPTION},
    {"mobilenet_v3_small_minimalistic", PREP_KIND_INCEPTION},
    {"mobilenet_v3_large_minimalistic", PREP_KIND_INCEPTION},
    {"mobilenet_edgetpu", PREP_KIND_INCEPTION},
    {"mobilenet_edgetpu_075", PREP_KIND_INCEPTION},
    {"nasnet_mobile", PREP_KIND_INCEPTION},
    {"nasnet_large", PREP_KIND_INCEPTION},
    {"pnasnet_mobile", PREP_KIND_INCEPTION},
    {"pnasnet_large", PREP_KIND_INCEPTION},
    {"resnet_v1_50", PREP_KIND_VGG},
    {"resnet_v1_101", PREP_KIND_VGG},
    {"resnet_v1_152", PREP_KIND_VGG},
    {"resnet_v1_200", PREP_KIND_VGG},
    {"resnet_v2_50", PREP_KIND_VGG},
    {"resnet_v2_101", PREP_KIND_VGG},
    {"resnet_v2_152", PREP_KIND_VGG},
    {"resnet_v2_200", PREP_KIND_VGG},
    {"vgg", PREP_KIND_VGG},
    {"vgg_a", PREP_KIND_VGG},
    {"vgg_16", PREP_KIND_VGG},
    {"vgg_19", PREP_KIND_VGG},
};

static const char *const k_kind_names[] = {"vgg_preprocessing", "inception_preprocessing",
                                           "lenet_preprocessing", "cifarnet_preprocessing"};
_Static_assert(SB_ARRAY_LEN(k_kind_names) == PREP_KIND_COUNT, "one name per prep_kind");

int prep_kind_from_name(const char *name, enum prep_kind *out, sb_err *err) {
    for (size_t i = 0; name && i < SB_ARRAY_LEN(k_factory); i++) {
        if (!strcmp(k_factory[i].name, name)) {
            *out = k_factory[i].kind;
            return 0;
        }
    }
    return sb_err_set(err, SB_E_NOTFOUND,
                      "Preprocessing name [%s] was not recognized (slim's preprocessing_factory "
                      "knows vgg*, resnet_v1_*, resnet_v2_*, inception*, mobilenet*, nasnet*, "
                      "pnasnet*, lenet, cifarnet)",
                      name ? name : "(none)");
}

const char *prep_kind_name(enum prep_kind kind) {
    SB_ASSERT(kind >= 0 && kind < PREP_KIND_COUNT);
    return k_kind_names[kind];
}

/* ---------------------------------------------------------------------------------------------
 * Random streams.
 * ------------------------------------------------------------------------------------------- */

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void prep_rng_seed(prep_rng *r, uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
    uint64_t h = mix64(seed + 0x9E3779B97F4A7C15ull);
    h = mix64(h ^ (a + 0x632BE59BD9B4E019ull));
    h = mix64(h ^ (b + 0x8CB92BA72F3D8DD7ull));
    h = mix64(h ^ (c + 0xD6E8FEB86659FD93ull));
    r->state = h;
}

uint64_t prep_rng_u64(prep_rng *r) {
    r->state += 0x9E3779B97F4A7C15ull;
    return mix64(r->state);
}

float prep_rng_uniform(prep_rng *r) { return (float)(prep_rng_u64(r) >> 40) * 0x1p-24f; }

uint32_t prep_rng_below(prep_rng *r, uint32_t n) {
    SB_ASSERT(n >= 1);
    return (uint32_t)(((prep_rng_u64(r) >> 32) * (uint64_t)n) >> 32);
}

/* ---------------------------------------------------------------------------------------------
 * Geometry.
 * ------------------------------------------------------------------------------------------- */

void prep_vgg_resized_size(int src_h, int src_w, int side, int *new_h, int *new_w) {
    /* float32 throughout, as tf.to_float; tf.rint rounds half to even like rintf */
    float h = (float)src_h, w = (float)src_w, s = (float)side;
    float scale = h > w ? s / w : s / h;
    *new_h = (int)rintf(h * scale);
    *new_w = (int)rintf(w * scale);
}

typedef struct rect {
    int x0, y0, x1, y1;
} rect;

static float rect_area(rect r) { return (float)((r.x1 - r.x0) * (r.y1 - r.y0)); }

static rect rect_intersect(rect a, rect b) {
    rect r = {SB_MAX(a.x0, b.x0), SB_MAX(a.y0, b.y0), SB_MIN(a.x1, b.x1), SB_MIN(a.y1, b.y1)};
    if (r.x0 > r.x1 || r.y0 > r.y1) return (rect){0, 0, 0, 0};
    return r;
}

/* TF's GenerateRandomCrop (sample_distorted_bounding_box_op.cc), float maths kept. */
static int random_crop_rect(int ow, int oh, float min_rel, float max_rel, float aspect,
                            prep_rng *rng, rect *out) {
    const float min_area = min_rel * (float)ow * (float)oh;
    const float max_area = max_rel * (float)ow * (float)oh;
    int height = (int)lrintf(sqrtf(min_area / aspect));
    int max_height = (int)lrintf(sqrtf(max_area / aspect));
    if (lrintf((float)max_height * aspect) > ow) {
        const float eps = 0.0000001f;
        max_height = (int)((ow + 0.5 - eps) / aspect);
        if (lrintf((float)max_height * aspect) > ow) max_height -= 1;
    }
    if (max_height > oh) max_height = oh;
    if (height >= max_height) height = max_height;
    if (height < max_height)
        height += (int)prep_rng_below(rng, (uint32_t)(max_height - height + 1));
    int width = (int)lrintf((float)height * aspect);
    float area = (float)(width * height);
    if (area < min_area) {
        height += 1;
        width = (int)lrintf((float)height * aspect);
        area = (float)(width * height);
    }
    if (area > max_area) {
        height -= 1;
        width = (int)lrintf((float)height * aspect);
        area = (float)(width * height);
    }
    if (area < min_area || area > max_area || width > ow || height > oh || width <= 0 ||
        height <= 0)
        return 0;
    int y = height < oh ? (int)prep_rng_below(rng, (uint32_t)(oh - height)) : 0;
    int x = width < ow ? (int)prep_rng_below(rng, (uint32_t)(ow - width)) : 0;
    *out = (rect){x, y, x + width, y + height};
    return 1;
}

void prep_distorted_box(int src_h, int src_w, const float *boxes, size_t n_boxes, prep_rng *rng,
                        int *y, int *x, int *h, int *w) {
    const float min_covered = 0.1f, ar_lo = 0.75f, ar_hi = 1.33f, area_lo = 0.05f, area_hi = 1.0f;
    const int max_attempts = 100;
    const rect image = {0, 0, src_w, src_h};
    rect crop = image;
    for (int i = 0; i < max_attempts; i++) {
        float aspect = prep_rng_uniform(rng) * (ar_hi - ar_lo) + ar_lo;
        rect c;
        if (!random_crop_rect(src_w, src_h, area_lo, area_hi, aspect, rng, &c)) continue;
        if (rect_area(c) < 1.0f) continue;
        int covered = 0;
        for (size_t b = 0; b < (n_boxes ? n_boxes : 1) && !covered; b++) {
            rect o = image;
            if (n_boxes) {
                const float *bb = boxes + 4 * b; /* ymin, xmin, ymax, xmax */
                o = (rect){(int)(bb[1] * (float)src_w), (int)(bb[0] * (float)src_h),
                           (int)(bb[3] * (float)src_w), (int)(bb[2] * (float)src_h)};
            }
            float oa = rect_area(o);
            if (oa < 1.0f) continue;
            if (rect_area(rect_intersect(c, o)) / oa >= min_covered) covered = 1;
        }
        if (covered) {
            crop = c;
            break;
        }
    }
    *y = crop.y0;
    *x = crop.x0;
    *h = crop.y1 - crop.y0;
    *w = crop.x1 - crop.x0;
}

/* tf.image.central_crop's offsets (float64 maths, truncation). */
static int central_start(int n, double fraction) { return (int)((n - n * fraction) / 2); }

void prep_sample(const prep_spec *s, int src_h, int src_w, const float *boxes, size_t n_boxes,
                 prep_rng *rng, prep_params *p) {
    memset(p, 0, sizeof *p);
    p->saturation = 1.0f;
    p->contrast = 1.0f;
    switch (s->kind) {
    case PREP_KIND_VGG: {
        int nh, nw;
        if (s->is_training) {
            p->resize_side = PREP_VGG_RESIZE_SIDE_MIN +
                             (int)prep_rng_below(rng, PREP_VGG_RESIZE_SIDE_MAX -
                                                          PREP_VGG_RESIZE_SIDE_MIN + 1);
            prep_vgg_resized_size(src_h, src_w, p->resize_side, &nh, &nw);
            SB_ASSERTF(nh >= s->out_h && nw >= s->out_w, "vgg crop %dx%d of %dx%d", s->out_h,
                       s->out_w, nh, nw);
            p->crop_y = (int)prep_rng_below(rng, (uint32_t)(nh - s->out_h + 1));
            p->crop_x = (int)prep_rng_below(rng, (uint32_t)(nw - s->out_w + 1));
            p->flip = prep_rng_uniform(rng) < 0.5f;
        } else {
            p->resize_side = PREP_VGG_RESIZE_SIDE_MIN;
            prep_vgg_resized_size(src_h, src_w, p->resize_side, &nh, &nw);
            p->crop_y = (nh - s->out_h) / 2;
            p->crop_x = (nw - s->out_w) / 2;
        }
        break;
    }
    case PREP_KIND_INCEPTION:
        if (s->is_training) {
            prep_distorted_box(src_h, src_w, boxes, n_boxes, rng, &p->crop_y, &p->crop_x,
                               &p->crop_h, &p->crop_w);
            p->flip = prep_rng_uniform(rng) < 0.5f;
            const float bd = 32.0f / 255.0f;
            p->brightness = prep_rng_uniform(rng) * (bd - -bd) + -bd;
            p->saturation = prep_rng_uniform(rng) * (1.5f - 0.5f) + 0.5f;
        } else {
            p->crop_y = central_start(src_h, PREP_INCEPTION_CENTRAL_FRACTION);
            p->crop_x = central_start(src_w, PREP_INCEPTION_CENTRAL_FRACTION);
            p->crop_h = src_h - 2 * p->crop_y;
            p->crop_w = src_w - 2 * p->crop_x;
        }
        break;
    case PREP_KIND_LENET:
        break;
    case PREP_KIND_CIFARNET:
        if (s->is_training) {
            int ph = src_h + 2 * PREP_CIFARNET_PADDING, pw = src_w + 2 * PREP_CIFARNET_PADDING;
            const int ly = ph - s->out_h + 1, lx = pw - s->out_w + 1;
            p->crop_y = ly > 0 ? (int)prep_rng_below(rng, (uint32_t)ly) : 0;
            p->crop_x = lx > 0 ? (int)prep_rng_below(rng, (uint32_t)lx) : 0;
            p->flip = prep_rng_uniform(rng) < 0.5f;
            p->brightness = prep_rng_uniform(rng) * (63.0f - -63.0f) + -63.0f;
            p->contrast = prep_rng_uniform(rng) * (1.8f - 0.2f) + 0.2f;
        }
        break;
    default:
        SB_ASSERTF(0, "prep_kind %d", (int)s->kind);
    }
}

void prep_needed(const prep_spec *s, int src_h, int src_w, const prep_params *p, int *region_h,
                 int *region_w, int *target_h, int *target_w) {
    *region_h = *target_h = src_h;
    *region_w = *target_w = src_w;
    switch (s->kind) {
    case PREP_KIND_VGG:
        prep_vgg_resized_size(src_h, src_w, p->resize_side, target_h, target_w);
        break;
    case PREP_KIND_INCEPTION:
        *region_h = p->crop_h;
        *region_w = p->crop_w;
        *target_h = s->out_h;
        *target_w = s->out_w;
        break;
    default:
        break;
    }
}

/* ---------------------------------------------------------------------------------------------
 * The pipelines.
 * ------------------------------------------------------------------------------------------- */

typedef struct workspace {
    prep_tap *ty, *tx;
    float *rows;
} workspace;

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

size_t prep_workspace_size(const prep_spec *s, int C) {
    return align64((size_t)s->out_h * sizeof(prep_tap)) +
           align64((size_t)s->out_w * sizeof(prep_tap)) +
           align64(2 * (size_t)s->out_w * (size_t)C * sizeof(float));
}

static workspace carve(const prep_spec *s, int C, void *work) {
    char *w = work;
    workspace ws;
    ws.ty = (prep_tap *)w;
    w += align64((size_t)s->out_h * sizeof(prep_tap));
    ws.tx = (prep_tap *)w;
    w += align64((size_t)s->out_w * sizeof(prep_tap));
    ws.rows = (float *)w;
    (void)C;
    return ws;
}

/* tf.image.resize_image_with_crop_or_pad's offsets for one axis. */
static void crop_or_pad(int n, int target, int *crop, int *pad) {
    int diff = target - n;
    *crop = diff < 0 ? -diff / 2 : 0;
    *pad = diff > 0 ? diff / 2 : 0;
}

/* out[y][x] = v(src[y + oy][x' + ox]) with zeros outside the image, x' = flip ? W-1-x : x;
 * v = (value - sub) / div. */
static void copy_window(float *out, int H, int W, int C, const uint8_t *img, int img_h, int img_w,
                        int oy, int ox, int flip, float sub, float div) {
    for (int y = 0; y < H; y++) {
        int sy = y + oy;
        for (int x = 0; x < W; x++) {
            int sx = (flip ? W - 1 - x : x) + ox;
            float *o = out + ((size_t)y * W + x) * C;
            int inside = sy >= 0 && sy < img_h && sx >= 0 && sx < img_w;
            const uint8_t *q = img + ((size_t)sy * img_w + sx) * C;
            for (int c = 0; c < C; c++) o[c] = ((inside ? (float)q[c] : 0.0f) - sub) / div;
        }
    }
}

/* The taps of the kinds that resample (vgg, inception) into ws; 0 for the others. */
static int make_taps(const prep_spec *s, int img_h, int img_w, int src_h, int src_w, int num,
                     int den, const prep_params *p, workspace *ws) {
    const int H = s->out_h, W = s->out_w;
    switch (s->kind) {
    case PREP_KIND_VGG: {
        int nh, nw;
        prep_vgg_resized_size(src_h, src_w, p->resize_side, &nh, &nw);
        SB_ASSERTF(p->crop_y >= 0 && p->crop_x >= 0 && p->crop_y + H <= nh && p->crop_x + W <= nw,
                   "vgg crop (%d,%d)+%dx%d outside %dx%d", p->crop_y, p->crop_x, H, W, nh, nw);
        prep_taps(ws->ty, H, p->crop_y, 0, 0, src_h, nh, img_h, num, den);
        prep_taps(ws->tx, W, p->crop_x, p->flip, 0, src_w, nw, img_w, num, den);
        return 1;
    }
    case PREP_KIND_INCEPTION: {
        SB_ASSERTF(p->crop_y >= 0 && p->crop_x >= 0 && p->crop_h > 0 && p->crop_w > 0 &&
                       p->crop_y + p->crop_h <= src_h && p->crop_x + p->crop_w <= src_w,
                   "inception box (%d,%d)+%dx%d outside %dx%d", p->crop_y, p->crop_x, p->crop_h,
                   p->crop_w, src_h, src_w);
        const int flip = s->is_training && p->flip;
        prep_taps(ws->ty, H, 0, 0, p->crop_y, p->crop_h, H, img_h, num, den);
        prep_taps(ws->tx, W, 0, flip, p->crop_x, p->crop_w, W, img_w, num, den);
        return 1;
    }
    default:
        return 0;
    }
}

static void tap_bounds(const prep_tap *t, int n, int *lo, int *hi) {
    int a = t[0].lo, b = t[0].hi;
    for (int i = 0; i < n; i++) {
        a = SB_MIN(a, SB_MIN(t[i].lo, t[i].hi));
        b = SB_MAX(b, SB_MAX(t[i].lo, t[i].hi));
    }
    *lo = a;
    *hi = b + 1;
}

void prep_window(const prep_spec *s, int img_h, int img_w, int src_h, int src_w, int num,
                 int den, const prep_params *p, void *work, int *y0, int *x0, int *y1, int *x1) {
    workspace ws = carve(s, 0, work);
    if (!make_taps(s, img_h, img_w, src_h, src_w, num, den, p, &ws)) {
        *y0 = *x0 = 0;
        *y1 = img_h;
        *x1 = img_w;
        return;
    }
    tap_bounds(ws.ty, s->out_h, y0, y1);
    tap_bounds(ws.tx, s->out_w, x0, x1);
}

void prep_apply(float *out, const uint8_t *img, int img_h, int img_w, int C, int src_h, int src_w,
                int scale_num, int scale_den, const prep_spec *s, const prep_params *p,
                void *work) {
    prep_apply_window(out, img, 0, 0, img_h, img_w, C, img_h, img_w, src_h, src_w, scale_num,
                      scale_den, s, p, work);
}

static void shift_taps(prep_tap *t, int n, int origin, int len) {
    for (int i = 0; i < n; i++) {
        t[i].lo -= origin;
        t[i].hi -= origin;
        SB_ASSERTF(t[i].lo >= 0 && t[i].hi < len && t[i].lo < len && t[i].hi >= 0,
                   "tap %d..%d outside the decoded window of %d", t[i].lo, t[i].hi, len);
    }
}

void prep_apply_window(float *out, const uint8_t *win, int win_y0, int win_x0, int win_h,
                       int win_w, int C, int img_h, int img_w, int src_h, int src_w,
                       int scale_num, int scale_den, const prep_spec *s, const prep_params *p,
                       void *work) {
    const int H = s->out_h, W = s->out_w;
    const size_t n = (size_t)H * W;
    workspace ws = carve(s, C, work);
    SB_ASSERT(C == 1 || C == 3);
    if (make_taps(s, img_h, img_w, src_h, src_w, scale_num, scale_den, p, &ws)) {
        shift_taps(ws.ty, H, win_y0, win_h);
        shift_taps(ws.tx, W, win_x0, win_w);
    } else {
        SB_ASSERTF(win_y0 == 0 && win_x0 == 0 && win_h == img_h && win_w == img_w,
                   "%s reads the whole image", prep_kind_name(s->kind));
    }
    const uint8_t *img = win;
    switch (s->kind) {
    case PREP_KIND_VGG: {
        SB_ASSERTF(C == 3, "vgg_preprocessing subtracts 3 channel means, image has %d", C);
        const float mul[3] = {1.0f, 1.0f, 1.0f};
        const float add[3] = {-PREP_VGG_R_MEAN, -PREP_VGG_G_MEAN, -PREP_VGG_B_MEAN};
        prep_resample(out, img, win_w, C, ws.ty, H, ws.tx, W, 1.0f, mul, add, ws.rows);
        break;
    }
    case PREP_KIND_INCEPTION: {
        const float pre = (float)(1.0 / 255.0); /* convert_image_dtype: x * (1/255) */
        const float one[3] = {1.0f, 1.0f, 1.0f}, zero[3] = {0.0f, 0.0f, 0.0f};
        const float two[3] = {2.0f, 2.0f, 2.0f}, m1[3] = {-1.0f, -1.0f, -1.0f};
        if (!s->is_training) {
            /* (x - 0.5) * 2 == x * 2 - 1 exactly in binary floating point */
            prep_resample(out, img, win_w, C, ws.ty, H, ws.tx, W, pre, two, m1, ws.rows);
            break;
        }
        prep_resample(out, img, win_w, C, ws.ty, H, ws.tx, W, pre, one, zero, ws.rows);
        /* distort_color(fast_mode=True, ordering 0): brightness, then saturation; clip */
        for (size_t i = 0; i < n * C; i++) out[i] += p->brightness;
        if (C == 3) prep_adjust_saturation(out, n, p->saturation);
        for (size_t i = 0; i < n * C; i++) {
            float v = SB_MIN(SB_MAX(out[i], 0.0f), 1.0f);
            out[i] = (v - 0.5f) * 2.0f;
        }
        break;
    }
    case PREP_KIND_LENET: {
        int cy, py, cx, px;
        crop_or_pad(img_h, H, &cy, &py);
        crop_or_pad(img_w, W, &cx, &px);
        copy_window(out, H, W, C, img, img_h, img_w, cy - py, cx - px, 0, 128.0f, 128.0f);
        break;
    }
    case PREP_KIND_CIFARNET: {
        if (s->is_training) {
            copy_window(out, H, W, C, img, img_h, img_w, p->crop_y - PREP_CIFARNET_PADDING,
                        p->crop_x - PREP_CIFARNET_PADDING, p->flip, 0.0f, 1.0f);
            for (size_t i = 0; i < n * C; i++) out[i] += p->brightness;
            prep_adjust_contrast(out, n, C, p->contrast);
        } else {
            int cy, py, cx, px;
            crop_or_pad(img_h, H, &cy, &py);
            crop_or_pad(img_w, W, &cx, &px);
            copy_window(out, H, W, C, img, img_h, img_w, cy - py, cx - px, 0, 0.0f, 1.0f);
        }
        prep_per_image_standardization(out, n * C);
        break;
    }
    default:
        SB_ASSERTF(0, "prep_kind %d", (int)s->kind);
    }
}
