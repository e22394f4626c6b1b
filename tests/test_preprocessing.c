/* tests/test_preprocessing.c — slim's preprocessing (models/slim/preprocessing) and the JPEG
 * decoder (datasets/image_decode.c): every deterministic path against float32 references written
 * by tests/reference/gen_preprocessing.py (TF 1.x semantics by hand, JPEGs decoded by PIL), the
 * random choices' ranges and determinism, exact crop/flip/mean geometry, the factory, and DCT-
 * scaled decoding (chosen when allowed, close to full decode + resize).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "core/sb.h"
#include "datasets/pipeline.h"
#include "models/slim/preprocessing/preprocessing.h"
#include "tests/support/testutil.h"

/* ---------------------------------------------------------------------------------------------
 * Helpers.
 * ------------------------------------------------------------------------------------------- */

static uint8_t *read_whole(const char *name, size_t *n) {
    const char *dir = getenv("SB_REF_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/reference", name);
    char *data;
    sb_err e;
    if (sb_read_file(path, &data, n, &e))
        fail_msg("%s (run tests/reference/gen_preprocessing.py)", e.msg);
    return (uint8_t *)data;
}

/* Source image s of the references as uint8 HWC. */
static uint8_t *load_pixels(int s, int *h, int *w, int *c) {
    char name[64];
    snprintf(name, sizeof name, "prep_src%d_pixels.bin", s);
    tu_ref r;
    tu_ref_load(&r, name);
    assert_int_equal(r.ndim, 3);
    *h = r.dims[0];
    *w = r.dims[1];
    *c = r.dims[2];
    uint8_t *px = malloc(r.count);
    for (size_t i = 0; i < r.count; i++) px[i] = (uint8_t)((int32_t *)r.data)[i];
    tu_ref_free(&r);
    return px;
}

/* A natural-ish test image: smooth gradients and a blob, plus (texture) noise and a fine
 * pattern. (h, w, 3). */
static uint8_t *natural_image(int h, int w, uint32_t seed, int texture) {
    uint8_t *px = malloc((size_t)h * w * 3);
    uint32_t s = seed;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            s = s * 1664525u + 1013904223u;
            double noise = texture ? ((s >> 8) & 0xff) / 255.0 * 16 - 8 : 0;
            double v[3] = {128 + 100 * sin(x * 3.1 / w + y * 1.3 / h),
                           128 + 90 * cos(y * 4.2 / h - x * 0.7 / w),
                           60 + 150.0 * (x + y) / (w + h)};
            double b = 70 * exp(-((y - h * 0.4) * (y - h * 0.4) + (x - w * 0.6) * (x - w * 0.6)) /
                                (2.0 * h * h / 25));
            for (int c = 0; c < 3; c++) {
                double t = v[c] + (c == 1 ? -b : b) + noise +
                           (texture ? 20 * sin(x * 0.9 + c) * sin(y * 0.7) : 0);
                px[((size_t)y * w + x) * 3 + c] = (uint8_t)(t < 0 ? 0 : t > 255 ? 255 : t);
            }
        }
    return px;
}

static uint8_t *encode_jpeg(const uint8_t *px, int h, int w, int quality, size_t *n) {
    tjhandle tj = tjInitCompress();
    assert_non_null(tj);
    unsigned char *jpeg = NULL;
    unsigned long sz = 0;
    assert_int_equal(tjCompress2(tj, px, w, 0, h, TJPF_RGB, &jpeg, &sz, TJSAMP_420, quality, 0), 0);
    tjDestroy(tj);
    uint8_t *out = malloc(sz);
    memcpy(out, jpeg, sz);
    tjFree(jpeg);
    *n = sz;
    return out;
}

/* ---------------------------------------------------------------------------------------------
 * Factory.
 * ------------------------------------------------------------------------------------------- */

static void test_factory_names(void **state) {
    (void)state;
    static const struct {
        const char *name;
        enum prep_kind kind;
    } cases[] = {{"vgg_16", PREP_KIND_VGG},          {"vgg_19", PREP_KIND_VGG},
                 {"vgg_a", PREP_KIND_VGG},           {"resnet_v1_50", PREP_KIND_VGG},
                 {"resnet_v2_152", PREP_KIND_VGG},   {"inception_v1", PREP_KIND_INCEPTION},
                 {"inception_v3", PREP_KIND_INCEPTION}, {"mobilenet_v1", PREP_KIND_INCEPTION},
                 {"nasnet_large", PREP_KIND_INCEPTION}, {"lenet", PREP_KIND_LENET},
                 {"cifarnet", PREP_KIND_CIFARNET}};
    for (size_t i = 0; i < SB_ARRAY_LEN(cases); i++) {
        enum prep_kind k;
        assert_int_equal(prep_kind_from_name(cases[i].name, &k, NULL), 0);
        assert_int_equal(k, cases[i].kind);
    }
    sb_err e;
    enum prep_kind k;
    assert_int_equal(prep_kind_from_name("alexnet_v2", &k, &e), SB_E_NOTFOUND);
    assert_non_null(strstr(e.msg, "[alexnet_v2]"));
    assert_string_equal(prep_kind_name(PREP_KIND_INCEPTION), "inception_preprocessing");
}

/* ---------------------------------------------------------------------------------------------
 * Decoder against PIL.
 * ------------------------------------------------------------------------------------------- */

static void test_decode_matches_pil(void **state) {
    (void)state;
    img_decoder *d;
    sb_err e;
    assert_int_equal(img_decoder_create(&d, &e), 0);
    for (int s = 0; s < 3; s++) {
        char name[64];
        snprintf(name, sizeof name, "prep_src%d.jpg", s);
        size_t n;
        uint8_t *jpeg = read_whole(name, &n);
        int h, w, c;
        uint8_t *ref = load_pixels(s, &h, &w, &c);
        int jh, jw;
        assert_int_equal(img_jpeg_size(d, jpeg, n, &jh, &jw, &e), 0);
        assert_int_equal(jh, h);
        assert_int_equal(jw, w);
        uint8_t *buf = NULL;
        size_t cap = 0;
        int dh, dw;
        assert_int_equal(img_decode_jpeg(d, jpeg, n, 1, 1, 3, &buf, &cap, &dh, &dw, &e), 0);
        assert_int_equal(dh, h);
        assert_int_equal(dw, w);
        size_t diff = 0;
        for (size_t i = 0; i < (size_t)h * w * 3; i++) diff += buf[i] != ref[i];
        if (diff) fail_msg("%s: %zu of %d decoded values differ from PIL's", name, diff, h * w * 3);
        /* the libjpeg window path on the whole image, and on an inner window, agrees too */
        img_window win;
        assert_int_equal(img_decode_jpeg_window(d, jpeg, n, 1, 1, 3, 0, 0, h, w, &buf, &cap, &win,
                                                &e), 0);
        assert_true(win.h == h && win.w == w);
        assert_memory_equal(buf, ref, (size_t)h * w * 3);
        assert_int_equal(img_decode_jpeg_window(d, jpeg, n, 1, 1, 3, 3, 5, h - 4, w - 7, &buf, &cap,
                                                &win, &e), 0);
        for (int y = 0; y < win.h; y++)
            assert_memory_equal(buf + (size_t)y * win.w * 3,
                                ref + ((size_t)(win.y0 + y) * w + win.x0) * 3, (size_t)win.w * 3);
        /* greyscale output of a colour JPEG: one channel */
        assert_int_equal(img_decode_jpeg(d, jpeg, n, 1, 1, 1, &buf, &cap, &dh, &dw, &e), 0);
        free(buf);
        free(ref);
        free(jpeg);
    }
    /* garbage and truncated data are errors with TurboJPEG's text */
    uint8_t junk[64] = {'G', 'I', 'F', '8', '9', 'a', 1, 2, 3};
    int h, w;
    assert_int_equal(img_jpeg_size(d, junk, sizeof junk, &h, &w, &e), SB_E_JPEG);
    assert_non_null(strstr(e.msg, "JPEG"));
    uint8_t *buf = NULL;
    size_t cap = 0;
    const uint8_t soi_only[64] = {0xff, 0xd8, 0xff, 0xe0, 1, 2, 3}; /* a header, then nothing */
    assert_int_equal(img_decode_jpeg(d, soi_only, sizeof soi_only, 1, 1, 3, &buf, &cap, &h, &w, &e),
                     SB_E_JPEG);
    size_t n;
    uint8_t *jpeg = read_whole("prep_src2.jpg", &n);
    assert_int_equal(img_decode_jpeg(d, jpeg, n / 2, 1, 1, 3, &buf, &cap, &h, &w, &e), SB_E_JPEG);
    free(buf);
    free(jpeg);
    img_decoder_destroy(d);
}

/* ---------------------------------------------------------------------------------------------
 * Every reference case.
 * ------------------------------------------------------------------------------------------- */

static void run_case(const char *name) {
    char fn[128];
    tu_ref pr, fr, out;
    snprintf(fn, sizeof fn, "prep_%s_params.bin", name);
    tu_ref_load(&pr, fn);
    snprintf(fn, sizeof fn, "prep_%s_fparams.bin", name);
    tu_ref_load(&fr, fn);
    snprintf(fn, sizeof fn, "prep_%s_out.bin", name);
    tu_ref_load(&out, fn);
    const int32_t *ip = pr.data;
    const float *fp = fr.data;
    int h, w, c;
    uint8_t *px = load_pixels(ip[0], &h, &w, &c);
    prep_spec s = {(enum prep_kind)ip[1], ip[2], ip[3], ip[4]};
    prep_params p = {.resize_side = ip[5], .crop_y = ip[6], .crop_x = ip[7], .crop_h = ip[8],
                     .crop_w = ip[9], .flip = ip[10], .brightness = fp[0], .saturation = fp[1],
                     .contrast = fp[2]};
    if (ip[11]) { /* eval choices: prep_sample must find the same ones */
        prep_params q;
        prep_rng r;
        prep_rng_seed(&r, 1, 2, 3, 4);
        prep_sample(&s, h, w, NULL, 0, &r, &q);
        if (s.kind == PREP_KIND_VGG) {
            assert_int_equal(q.resize_side, p.resize_side);
            assert_int_equal(q.crop_y, p.crop_y);
            assert_int_equal(q.crop_x, p.crop_x);
        }
        if (s.kind == PREP_KIND_INCEPTION) {
            assert_int_equal(q.crop_y, p.crop_y);
            assert_int_equal(q.crop_x, p.crop_x);
            assert_int_equal(q.crop_h, p.crop_h);
            assert_int_equal(q.crop_w, p.crop_w);
        }
        assert_int_equal(q.flip, 0);
        p = q;
    }
    assert_int_equal(out.count, (size_t)s.out_h * s.out_w * c);
    float *y = malloc(out.count * sizeof(float));
    void *work = malloc(prep_workspace_size(&s, c));
    prep_apply(y, px, h, w, c, h, w, 1, 1, &s, &p, work);
    /* exact maths in the same order: only the cifarnet reductions (float64 here, float32 in the
     * script's last step) leave room for rounding */
    double atol = s.kind == PREP_KIND_CIFARNET ? 2e-5 : 1e-6;
    size_t bad = tu_allclose(name, y, out.data, out.count, atol, 1e-6);
    assert_int_equal(bad, 0);
    free(work);
    free(y);
    free(px);
    tu_ref_free(&pr);
    tu_ref_free(&fr);
    tu_ref_free(&out);
}

static void test_vgg_against_reference(void **state) {
    (void)state;
    run_case("vgg_train_down");
    run_case("vgg_train_up");
    run_case("vgg_train_gray");
    run_case("vgg_eval");
}

static void test_inception_against_reference(void **state) {
    (void)state;
    run_case("inception_train");
    run_case("inception_train_desat");
    run_case("inception_eval");
    run_case("inception_eval_up");
}

static void test_lenet_cifarnet_against_reference(void **state) {
    (void)state;
    run_case("lenet_28");
    run_case("lenet_pad");
    run_case("lenet_crop");
    run_case("cifarnet_train");
    run_case("cifarnet_train_edge");
    run_case("cifarnet_eval");
}

/* ---------------------------------------------------------------------------------------------
 * Geometry: flip mirrors, means subtract exactly, resize of an integer ratio hits pixels.
 * ------------------------------------------------------------------------------------------- */

static void test_geometry_exact(void **state) {
    (void)state;
    int h, w, c;
    uint8_t *px = load_pixels(2, &h, &w, &c); /* 90 x 120 */
    prep_spec s = {PREP_KIND_VGG, 1, 40, 40};
    prep_params p = {.resize_side = 180, .crop_y = 21, .crop_x = 33};
    const size_t n = 40 * 40 * 3;
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    void *work = malloc(prep_workspace_size(&s, 3));
    prep_apply(a, px, h, w, 3, h, w, 1, 1, &s, &p, work);
    p.flip = 1;
    prep_apply(b, px, h, w, 3, h, w, 1, 1, &s, &p, work);
    const float mean[3] = {PREP_VGG_R_MEAN, PREP_VGG_G_MEAN, PREP_VGG_B_MEAN};
    for (int y = 0; y < 40; y++)
        for (int x = 0; x < 40; x++)
            for (int k = 0; k < 3; k++) {
                float va = a[(y * 40 + x) * 3 + k], vb = b[(y * 40 + 39 - x) * 3 + k];
                assert_true(va == vb); /* flip is an exact mirror */
            }
    /* side 180 from 90 x 120 is exactly 2x: even output rows/cols sit on source pixels, so the
     * value is the pixel minus the mean, exactly */
    for (int y = 1; y < 40; y += 2)
        for (int x = 1; x < 40; x += 2)
            for (int k = 0; k < 3; k++) {
                int sy = (21 + y) / 2, sx = (33 + x) / 2;
                if ((21 + y) % 2 || (33 + x) % 2) continue;
                assert_true(a[(y * 40 + x) * 3 + k] == (float)px[(sy * w + sx) * 3 + k] - mean[k]);
            }
    int nh, nw;
    prep_vgg_resized_size(90, 120, 180, &nh, &nw);
    assert_int_equal(nh, 180);
    assert_int_equal(nw, 240);
    prep_vgg_resized_size(375, 500, 256, &nh, &nw);
    assert_int_equal(nh, 256);
    assert_int_equal(nw, 341);
    prep_vgg_resized_size(500, 333, 256, &nh, &nw); /* 384.38 -> 384 */
    assert_int_equal(nh, 384);
    assert_int_equal(nw, 256);
    free(work);
    free(a);
    free(b);
    free(px);
}

/* The branch-free saturation kernel equals TF's scalar helpers bit for bit, including grey
 * pixels (range 0), hue wrap-around, channels out of [0, 1] after a brightness shift. */
static void test_saturation_fast_equals_ref(void **state) {
    (void)state;
    enum { N = 20000 };
    float *a = malloc(3 * N * sizeof(float)), *b = malloc(3 * N * sizeof(float));
    prep_rng r;
    prep_rng_seed(&r, 5, 0, 0, 0);
    for (int i = 0; i < 3 * N; i++) a[i] = prep_rng_uniform(&r) * 1.4f - 0.2f;
    for (int i = 0; i < 300; i++) a[3 * i] = a[3 * i + 1] = a[3 * i + 2]; /* grey */
    for (int i = 300; i < 600; i++) a[3 * i] = a[3 * i + 1];              /* r == g ties */
    a[3 * 600] = a[3 * 600 + 1] = a[3 * 600 + 2] = 0.0f;                   /* black */
    const float factors[] = {0.5f, 0.97f, 1.0f, 1.35f, 1.5f};
    for (size_t f = 0; f < SB_ARRAY_LEN(factors); f++) {
        memcpy(b, a, 3 * N * sizeof(float));
        float *c = malloc(3 * N * sizeof(float));
        memcpy(c, a, 3 * N * sizeof(float));
        prep_adjust_saturation(b, N, factors[f]);
        prep_adjust_saturation_ref(c, N, factors[f]);
        for (int i = 0; i < 3 * N; i++)
            if (memcmp(&b[i], &c[i], sizeof(float)))
                fail_msg("factor %g value %d: fast %.9g ref %.9g (input %.9g)", factors[f], i, b[i],
                         c[i], a[i]);
        free(c);
    }
    free(a);
    free(b);
}

/* ---------------------------------------------------------------------------------------------
 * Random choices: ranges, determinism, TF's sampler constraints.
 * ------------------------------------------------------------------------------------------- */

static void test_sampling(void **state) {
    (void)state;
    prep_spec vs = {PREP_KIND_VGG, 1, 224, 224};
    int flips = 0, side_min = 1000, side_max = 0;
    for (int i = 0; i < 2000; i++) {
        prep_rng r, r2;
        prep_rng_seed(&r, 7, 0, 3, (uint64_t)i);
        prep_rng_seed(&r2, 7, 0, 3, (uint64_t)i);
        prep_params p, q;
        prep_sample(&vs, 375, 500, NULL, 0, &r, &p);
        prep_sample(&vs, 375, 500, NULL, 0, &r2, &q);
        assert_memory_equal(&p, &q, sizeof p);
        assert_true(p.resize_side >= 256 && p.resize_side <= 512);
        int nh, nw;
        prep_vgg_resized_size(375, 500, p.resize_side, &nh, &nw);
        assert_true(p.crop_y >= 0 && p.crop_y + 224 <= nh);
        assert_true(p.crop_x >= 0 && p.crop_x + 224 <= nw);
        flips += p.flip;
        side_min = SB_MIN(side_min, p.resize_side);
        side_max = SB_MAX(side_max, p.resize_side);
    }
    assert_true(flips > 850 && flips < 1150);
    assert_true(side_min <= 260 && side_max >= 508);

    /* inception: area in [0.05, 1], aspect in [0.75, 1.33] up to rounding, inside the image,
     * and covering >= 10 % of the one box given */
    prep_spec is = {PREP_KIND_INCEPTION, 1, 299, 299};
    const float box[4] = {0.6f, 0.1f, 0.9f, 0.3f}; /* ymin xmin ymax xmax */
    for (int i = 0; i < 500; i++) {
        prep_rng r;
        prep_rng_seed(&r, 9, 1, 0, (uint64_t)i);
        prep_params p;
        prep_sample(&is, 375, 500, box, 1, &r, &p);
        assert_true(p.crop_y >= 0 && p.crop_x >= 0 && p.crop_y + p.crop_h <= 375 &&
                    p.crop_x + p.crop_w <= 500);
        double area = (double)p.crop_h * p.crop_w / (375.0 * 500.0);
        assert_true(area >= 0.05 - 1e-9 && area <= 1.0);
        double ar = (double)p.crop_w / p.crop_h;
        if (!(p.crop_h == 375 && p.crop_w == 500)) assert_true(ar > 0.70 && ar < 1.40);
        int bx0 = (int)(0.1f * 500), by0 = (int)(0.6f * 375), bx1 = (int)(0.3f * 500),
            by1 = (int)(0.9f * 375);
        int ix = SB_MAX(0, SB_MIN(bx1, p.crop_x + p.crop_w) - SB_MAX(bx0, p.crop_x));
        int iy = SB_MAX(0, SB_MIN(by1, p.crop_y + p.crop_h) - SB_MAX(by0, p.crop_y));
        assert_true((double)ix * iy >= 0.1 * (bx1 - bx0) * (by1 - by0) - 1e-6);
        assert_true(p.brightness >= -32.0f / 255 && p.brightness < 32.0f / 255);
        assert_true(p.saturation >= 0.5f && p.saturation < 1.5f);
    }
    /* cifarnet train ranges */
    prep_spec cs = {PREP_KIND_CIFARNET, 1, 32, 32};
    for (int i = 0; i < 300; i++) {
        prep_rng r;
        prep_rng_seed(&r, 3, 0, 0, (uint64_t)i);
        prep_params p;
        prep_sample(&cs, 32, 32, NULL, 0, &r, &p);
        assert_true(p.crop_y >= 0 && p.crop_y <= 8 && p.crop_x >= 0 && p.crop_x <= 8);
        assert_true(p.brightness >= -63 && p.brightness < 63);
        assert_true(p.contrast >= 0.2f && p.contrast < 1.8f);
    }
}

/* ---------------------------------------------------------------------------------------------
 * DCT-scaled decoding.
 * ------------------------------------------------------------------------------------------- */

static void compare_scaled(img_decoder *d, const uint8_t *jpeg, size_t n, const prep_spec *s,
                           const prep_params *p, int src_h, int src_w, int want_num, int want_den,
                           double max_mean, double max_abs) {
    int rh, rw, th, tw, num, den;
    prep_needed(s, src_h, src_w, p, &rh, &rw, &th, &tw);
    img_pick_scale(rh, rw, th, tw, &num, &den);
    if (num * want_den != want_num * den)
        fail_msg("scale %d/%d chosen for region %dx%d -> %dx%d, expected %d/%d", num, den, rh, rw,
                 th, tw, want_num, want_den);
    const size_t cnt = (size_t)s->out_h * s->out_w * 3;
    float *full = malloc(cnt * sizeof(float)), *scaled = malloc(cnt * sizeof(float));
    void *work = malloc(prep_workspace_size(s, 3));
    uint8_t *buf = NULL;
    size_t cap = 0;
    int h, w;
    sb_err e;
    assert_int_equal(img_decode_jpeg(d, jpeg, n, 1, 1, 3, &buf, &cap, &h, &w, &e), 0);
    prep_apply(full, buf, h, w, 3, src_h, src_w, 1, 1, s, p, work);
    assert_int_equal(img_decode_jpeg(d, jpeg, n, num, den, 3, &buf, &cap, &h, &w, &e), 0);
    assert_int_equal(h, (src_h * num + den - 1) / den);
    prep_apply(scaled, buf, h, w, 3, src_h, src_w, num, den, s, p, work);
    double sum = 0, mx = 0;
    const double unit = s->kind == PREP_KIND_INCEPTION ? 127.5 : 1.0; /* back to 0..255 steps */
    for (size_t i = 0; i < cnt; i++) {
        double dlt = fabs((double)full[i] - scaled[i]) * unit;
        sum += dlt;
        mx = fmax(mx, dlt);
    }
    print_message("scale %d/%d: mean |diff| %.3f, max %.2f (of 255)\n", num, den, sum / cnt, mx);
    assert_true(sum / cnt <= max_mean);
    assert_true(mx <= max_abs);
    free(buf);
    free(work);
    free(full);
    free(scaled);
}

static void test_dct_scale_choice(void **state) {
    (void)state;
    /* the rule: the smallest of 1/2, 1/4, 1/8 whose region still has the target's pixels */
    int num, den;
    img_pick_scale(375, 500, 256, 341, &num, &den);
    assert_true(num == 1 && den == 1);                   /* 1/2 gives 187 < 256 */
    img_pick_scale(750, 1000, 256, 341, &num, &den);
    assert_true(num == 1 && den == 2);                   /* 375 >= 256 */
    img_pick_scale(375, 500, 512, 683, &num, &den);
    assert_true(num == 1 && den == 1);                   /* upsampling: full size */
    img_pick_scale(2000, 2000, 224, 224, &num, &den);
    assert_true(num == 1 && den == 8);                   /* 250 >= 224 */
    img_pick_scale(1000, 1000, 224, 224, &num, &den);
    assert_true(num == 1 && den == 4);
    img_pick_scale(500, 1000, 250, 224, &num, &den);     /* both dimensions count */
    assert_true(num == 1 && den == 2);
    img_pick_scale(1000, 1000, 600, 600, &num, &den);    /* 7/8 and 3/4 are never used */
    assert_true(num == 1 && den == 1);
}

/* Scaled decode + preprocessing against full decode + preprocessing, for each kind that
 * resizes. On a smooth image the two agree closely (this checks the geometry: a misplaced half
 * pixel would show); on a textured one the full-size bilinear path aliases (it samples 4 of
 * every 9+ pixels when it shrinks) and the DCT-scaled one does not, so they differ more. */
static void dct_cases(int texture, double mean_tol, double max_tol) {
    const int H = 750, W = 1000;
    uint8_t *px = natural_image(H, W, 11, texture);
    size_t n;
    uint8_t *jpeg = encode_jpeg(px, H, W, 90, &n);
    img_decoder *d;
    sb_err e;
    assert_int_equal(img_decoder_create(&d, &e), 0);
    prep_spec ve = {PREP_KIND_VGG, 0, 224, 224};
    prep_params p;
    prep_rng r;
    prep_rng_seed(&r, 0, 0, 0, 0);
    prep_sample(&ve, H, W, NULL, 0, &r, &p);
    compare_scaled(d, jpeg, n, &ve, &p, H, W, 1, 2, mean_tol, max_tol);
    /* vgg train, side 300 -> 1/2 (375 >= 300) */
    prep_spec vt = {PREP_KIND_VGG, 1, 224, 224};
    p = (prep_params){.resize_side = 300, .crop_y = 40, .crop_x = 90, .flip = 1};
    compare_scaled(d, jpeg, n, &vt, &p, H, W, 1, 2, mean_tol, max_tol);
    /* inception train, a large box shrunk to 96: scale 1/4 (150 >= 96) */
    prep_spec it = {PREP_KIND_INCEPTION, 1, 96, 96};
    p = (prep_params){.crop_y = 40, .crop_x = 100, .crop_h = 600, .crop_w = 800, .flip = 0,
                      .brightness = 0.02f, .saturation = 1.1f};
    compare_scaled(d, jpeg, n, &it, &p, H, W, 1, 4, mean_tol * 2.5, max_tol * 1.5);
    /* inception eval at 1/8: central 657 x 876 region -> 64 */
    prep_spec ie = {PREP_KIND_INCEPTION, 0, 64, 64};
    prep_sample(&ie, H, W, NULL, 0, &r, &p);
    compare_scaled(d, jpeg, n, &ie, &p, H, W, 1, 8, mean_tol * 2.5, max_tol * 1.5);
    img_decoder_destroy(d);
    free(jpeg);
    free(px);
}

/* A window decode returns exactly the whole decode's pixels, at every scale, at odd offsets, at
 * the image's edges, in RGB and grey; and windowed preprocessing equals whole-image
 * preprocessing bit for bit. */
static void test_window_decode_exact(void **state) {
    (void)state;
    const int H = 375, W = 500;
    uint8_t *px = natural_image(H, W, 5, 1);
    size_t n;
    uint8_t *jpeg = encode_jpeg(px, H, W, 90, &n);
    img_decoder *d;
    sb_err e;
    assert_int_equal(img_decoder_create(&d, &e), 0);
    static const int wins[][4] = {{0, 0, 375, 500}, {37, 61, 300, 285}, {0, 3, 17, 9},
                                  {360, 480, 375, 500}, {100, 0, 101, 500}, {5, 250, 370, 251}};
    static const int scales[] = {1, 2, 4, 8};
    uint8_t *full = NULL, *part = NULL;
    size_t fcap = 0, pcap = 0;
    for (int ch = 1; ch <= 3; ch += 2)
        for (size_t si = 0; si < SB_ARRAY_LEN(scales); si++) {
            const int den = scales[si];
            int fh, fw;
            assert_int_equal(
                img_decode_jpeg(d, jpeg, n, 1, den, ch, &full, &fcap, &fh, &fw, &e), 0);
            for (size_t wi = 0; wi < SB_ARRAY_LEN(wins); wi++) {
                int y0 = wins[wi][0] / den, x0 = wins[wi][1] / den;
                int y1 = SB_MAX(y0 + 1, wins[wi][2] / den), x1 = SB_MAX(x0 + 1, wins[wi][3] / den);
                img_window win;
                assert_int_equal(img_decode_jpeg_window(d, jpeg, n, 1, den, ch, y0, x0, y1, x1,
                                                        &part, &pcap, &win, &e), 0);
                assert_int_equal(win.img_h, fh);
                assert_int_equal(win.img_w, fw);
                assert_true(win.y0 == y0 && win.h == y1 - y0);
                assert_true(win.x0 <= x0 && win.x0 + win.w >= x1 && win.x0 + win.w <= fw);
                for (int y = 0; y < win.h; y++)
                    if (memcmp(part + (size_t)y * win.w * ch,
                               full + ((size_t)(win.y0 + y) * fw + win.x0) * ch,
                               (size_t)win.w * ch)) {
                        fail_msg("window [%d,%d)x[%d,%d) scale 1/%d C=%d: row %d differs", y0, y1,
                                 x0, x1, den, ch, y);
                    }
            }
        }
    /* windowed vgg train preprocessing == whole-image preprocessing, exactly */
    prep_spec s = {PREP_KIND_VGG, 1, 224, 224};
    void *work = malloc(prep_workspace_size(&s, 3));
    float *a = malloc(224 * 224 * 3 * sizeof(float)), *b = malloc(224 * 224 * 3 * sizeof(float));
    int fh, fw;
    assert_int_equal(img_decode_jpeg(d, jpeg, n, 1, 1, 3, &full, &fcap, &fh, &fw, &e), 0);
    for (int i = 0; i < 20; i++) {
        prep_rng r;
        prep_rng_seed(&r, 3, 0, 0, (uint64_t)i);
        prep_params p;
        prep_sample(&s, H, W, NULL, 0, &r, &p);
        int y0, x0, y1, x1;
        prep_window(&s, H, W, H, W, 1, 1, &p, work, &y0, &x0, &y1, &x1);
        assert_true(y0 >= 0 && x0 >= 0 && y1 <= H && x1 <= W && y0 < y1 && x0 < x1);
        img_window win;
        assert_int_equal(img_decode_jpeg_window(d, jpeg, n, 1, 1, 3, y0, x0, y1, x1, &part, &pcap,
                                                &win, &e), 0);
        prep_apply_window(a, part, win.y0, win.x0, win.h, win.w, 3, win.img_h, win.img_w, H, W, 1,
                          1, &s, &p, work);
        prep_apply(b, full, fh, fw, 3, H, W, 1, 1, &s, &p, work);
        assert_memory_equal(a, b, 224 * 224 * 3 * sizeof(float));
    }
    /* data that ends inside the window is an error; below the window it is never read */
    img_window win;
    assert_int_equal(img_decode_jpeg_window(d, jpeg, n / 2, 1, 1, 3, 300, 0, 375, 500, &part,
                                            &pcap, &win, &e), SB_E_JPEG);
    assert_non_null(strstr(e.msg, "Premature end"));
    assert_int_equal(img_decode_jpeg_window(d, jpeg, n, 1, 1, 3, 0, 0, 20, 20, &part, &pcap, &win,
                                            &e), 0); /* the decoder recovers */
    const uint8_t junk[32] = {'n', 'o', 't'};
    assert_int_equal(img_decode_jpeg_window(d, junk, sizeof junk, 1, 1, 3, 0, 0, 1, 1, &part,
                                            &pcap, &win, &e), SB_E_JPEG);
    free(a);
    free(b);
    free(work);
    free(full);
    free(part);
    img_decoder_destroy(d);
    free(jpeg);
    free(px);
}

static void test_dct_scaled_decode_smooth(void **state) {
    (void)state;
    dct_cases(0, 0.6, 4.0);
}

static void test_dct_scaled_decode_textured(void **state) {
    (void)state;
    dct_cases(1, 4.0, 30.0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_factory_names),
        cmocka_unit_test(test_decode_matches_pil),
        cmocka_unit_test(test_vgg_against_reference),
        cmocka_unit_test(test_inception_against_reference),
        cmocka_unit_test(test_lenet_cifarnet_against_reference),
        cmocka_unit_test(test_geometry_exact),
        cmocka_unit_test(test_saturation_fast_equals_ref),
        cmocka_unit_test(test_sampling),
        cmocka_unit_test(test_dct_scale_choice),
        cmocka_unit_test(test_window_decode_exact),
        cmocka_unit_test(test_dct_scaled_decode_smooth),
        cmocka_unit_test(test_dct_scaled_decode_textured),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
