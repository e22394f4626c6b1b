/* tests/test_datasets_imagenet.c — datasets/imagenet/: Python's random.seed/shuffle and numpy's
 * linspace reproduced exactly (expected values printed by CPython 3.11), slim's shard boundaries
 * for 1024 shards over 8 threads, the labels / metadata / validation-labels files and the
 * bounding-box CSV, with their error messages; the PNG decoder (every filter type, colour types,
 * CRC and truncation errors) and image preparation (JPEG kept, PNG and CMYK re-encoded, empty /
 * truncated / non-image files refused). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <zlib.h>

#include "core/sb.h"
#include "datasets/imagenet/imagenet.h"
#include "tests/support/testutil.h"

static void test_python_random(void **state) {
    (void)state;
    imagenet_pyrandom r;
    /* random.seed(12345); x = list(range(10)); random.shuffle(x) */
    imagenet_pyrandom_seed(&r, 12345);
    size_t x[10];
    for (size_t i = 0; i < 10; i++) x[i] = i;
    imagenet_pyrandom_shuffle(&r, x, 10);
    static const size_t want10[10] = {8, 7, 3, 5, 1, 2, 9, 4, 0, 6};
    for (int i = 0; i < 10; i++) assert_int_equal(x[i], want10[i]);
    /* build_imagenet_data's own call: 1,281,167 training files */
    size_t n = 1281167;
    size_t *big = malloc(n * sizeof *big);
    for (size_t i = 0; i < n; i++) big[i] = i;
    imagenet_pyrandom_seed(&r, 12345);
    imagenet_pyrandom_shuffle(&r, big, n);
    assert_int_equal(big[0], 504188);
    assert_int_equal(big[1], 123635);
    assert_int_equal(big[4], 1072876);
    assert_int_equal(big[n - 3], 626293);
    assert_int_equal(big[n - 1], 873715);
    free(big);
    /* seeds above 2^32 use two key words; getrandbits(k) */
    imagenet_pyrandom_seed(&r, (1ull << 40) + 7);
    assert_int_equal(imagenet_pyrandom_bits(&r, 32), 2635837658u);
    assert_int_equal(imagenet_pyrandom_bits(&r, 32), 3209733218u);
    assert_int_equal(imagenet_pyrandom_bits(&r, 5), 26);
}

static void test_shard_bounds(void **state) {
    (void)state;
    int64_t v[9];
    imagenet_linspace_int(0, 1000, 4, v);
    assert_int_equal(v[1], 333);
    assert_int_equal(v[2], 666);
    assert_int_equal(v[3], 1000);
    int64_t *b = malloc(1025 * sizeof *b);
    sb_err e;
    assert_int_equal(imagenet_shard_bounds(1281167, 1024, 8, b, &e), 0);
    assert_int_equal(b[0], 0);
    assert_int_equal(b[1], 1251);
    assert_int_equal(b[3], 3753);
    assert_int_equal(b[127], 158893);
    assert_int_equal(b[128], 160145);
    assert_int_equal(b[129], 161396);
    assert_int_equal(b[1022], 1278664);
    assert_int_equal(b[1024], 1281167);
    for (int s = 0; s < 1024; s++) assert_true(b[s + 1] - b[s] >= 1251 && b[s + 1] - b[s] <= 1252);
    assert_int_equal(imagenet_shard_bounds(50000, 128, 8, b, &e), 0);
    assert_int_equal(b[16], 6250);
    assert_int_equal(b[128], 50000);
    assert_int_equal(imagenet_shard_bounds(10, 128, 3, b, &e), SB_E_USAGE);
    assert_non_null(strstr(e.msg, "--num_threads (3)"));
    free(b);
}

static void write_text(const char *dir, const char *name, const char *text, char *path, size_t cap) {
    snprintf(path, cap, "%s/%s", dir, name);
    sb_err e;
    assert_int_equal(sb_atomic_write(path, text, strlen(text), &e), 0);
}

static void test_synsets_and_metadata(void **state) {
    (void)state;
    char dir[256], path[512];
    tu_make_tmpdir(dir, sizeof dir);
    sb_err e;
    imagenet_synsets s;
    write_text(dir, "labels.txt", "n01440764\nn01443537\r\n\nn01484850\n", path, sizeof path);
    assert_int_equal(imagenet_synsets_read(path, &s, &e), 0);
    assert_int_equal(s.count, 3);
    assert_int_equal(imagenet_synsets_label(&s, "n01440764"), 1);
    assert_int_equal(imagenet_synsets_label(&s, "n01484850"), 3);
    assert_int_equal(imagenet_synsets_label(&s, "n99999999"), 0);
    imagenet_synsets_free(&s);
    write_text(dir, "dup.txt", "n01440764\nn01443537\nn01440764\n", path, sizeof path);
    assert_int_equal(imagenet_synsets_read(path, &s, &e), SB_E_FORMAT);
    assert_non_null(strstr(e.msg, "dup.txt:3: n01440764 listed twice"));
    write_text(dir, "bad.txt", "n01440764 tench\n", path, sizeof path);
    assert_int_equal(imagenet_synsets_read(path, &s, &e), SB_E_FORMAT);
    assert_non_null(strstr(e.msg, "bad.txt:1"));
    write_text(dir, "val.txt", "n01751748\nn09193705\nn01751748\n", path, sizeof path);
    assert_int_equal(imagenet_validation_labels_read(path, &s, &e), 0);
    assert_int_equal(s.count, 3);
    assert_string_equal(s.ids[2], "n01751748");
    imagenet_synsets_free(&s);

    imagenet_metadata m;
    write_text(dir, "meta.txt",
               "n01443537\tgoldfish, Carassius auratus\nn01440764\ttench, Tinca tinca\n"
               "n00001740\tentity\nn01440764\ttench again\n",
               path, sizeof path);
    assert_int_equal(imagenet_metadata_read(path, &m, &e), 0);
    assert_string_equal(imagenet_metadata_text(&m, "n01443537"), "goldfish, Carassius auratus");
    assert_string_equal(imagenet_metadata_text(&m, "n00001740"), "entity");
    assert_string_equal(imagenet_metadata_text(&m, "n01440764"), "tench again"); /* last wins */
    assert_null(imagenet_metadata_text(&m, "n02000000"));
    imagenet_metadata_free(&m);
    write_text(dir, "meta_bad.txt", "n01443537 goldfish\n", path, sizeof path);
    assert_int_equal(imagenet_metadata_read(path, &m, &e), SB_E_FORMAT);
    assert_non_null(strstr(e.msg, "meta_bad.txt:1"));
    assert_int_equal(imagenet_synsets_read("/nonexistent/labels", &s, &e), 2 /* ENOENT */);
    assert_non_null(strstr(e.msg, "/nonexistent/labels"));
    tu_remove_tree(dir);
}

static void test_bboxes(void **state) {
    (void)state;
    char dir[256], path[512];
    tu_make_tmpdir(dir, sizeof dir);
    sb_err e;
    imagenet_bboxes b;
    write_text(dir, "boxes.csv",
               "n00007846_64193.JPEG,0.0060,0.2620,0.7545,0.9940\n"
               "n01440764_10026.JPEG,0.1,0.2,0.3,0.4\n"
               "n00007846_64193.JPEG,0.5,0.5,1.0,1.0\r\n"
               "n00007846_64193.JPEG,0,0,0.25,0.25\n",
               path, sizeof path);
    assert_int_equal(imagenet_bboxes_read(path, &b, &e), 0);
    assert_int_equal(b.count, 4);
    size_t n;
    const imagenet_box *x = imagenet_bboxes_find(&b, "n00007846_64193.JPEG", &n);
    assert_int_equal(n, 3);
    assert_true(x[0].xmin == 0.0060f && x[0].ymax == 0.9940f); /* file order kept */
    assert_true(x[1].xmin == 0.5f && x[2].xmax == 0.25f);
    x = imagenet_bboxes_find(&b, "n01440764_10026.JPEG", &n);
    assert_int_equal(n, 1);
    assert_true(x[0].ymin == 0.2f);
    assert_null(imagenet_bboxes_find(&b, "n01440764_1.JPEG", &n));
    assert_int_equal(n, 0);
    imagenet_bboxes_free(&b);
    write_text(dir, "short.csv", "a.JPEG,0.1,0.2,0.3,0.4\nb.JPEG,0.1,0.2\n", path, sizeof path);
    assert_int_equal(imagenet_bboxes_read(path, &b, &e), SB_E_FORMAT);
    assert_non_null(strstr(e.msg, "short.csv:2"));
    write_text(dir, "long.csv", "a.JPEG,0.1,0.2,0.3,0.4,0.5\n", path, sizeof path);
    assert_int_equal(imagenet_bboxes_read(path, &b, &e), SB_E_FORMAT);
    write_text(dir, "range.csv", "a.JPEG,0.5,0.2,0.3,0.4\n", path, sizeof path);
    assert_int_equal(imagenet_bboxes_read(path, &b, &e), SB_E_FORMAT);
    assert_non_null(strstr(e.msg, "range.csv:1"));
    assert_non_null(strstr(e.msg, "a.JPEG"));
    write_text(dir, "nan.csv", "a.JPEG,x,0.2,0.3,0.4\n", path, sizeof path);
    assert_int_equal(imagenet_bboxes_read(path, &b, &e), SB_E_FORMAT);
    tu_remove_tree(dir);
}

/* ---------------------------------------------------------------------------------------------
 * PNG and image preparation
 * ------------------------------------------------------------------------------------------- */

typedef struct bytes {
    uint8_t *d;
    size_t n;
} bytes;

static void put(bytes *b, const void *p, size_t n) {
    b->d = realloc(b->d, b->n + n + 1);
    if (n) memcpy(b->d + b->n, p, n);
    b->n += n;
}

static void put32(bytes *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(b, x, 4);
}

static void chunk(bytes *b, const char *type, const uint8_t *data, uint32_t n) {
    put32(b, n);
    size_t at = b->n;
    put(b, type, 4);
    put(b, data, n);
    put32(b, (uint32_t)crc32(crc32(0, NULL, 0), b->d + at, n + 4));
}

static int paeth_ref(int a, int b, int c) {
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/* A PNG of raw samples (bpp bytes per pixel), row y filtered with filter y % 5. */
static bytes make_png(int w, int h, int ctype, int depth, const uint8_t *raw, int bpp,
                      const uint8_t *plte, int n_plte) {
    bytes b = {0};
    put(&b, "\x89PNG\r\n\x1a\n", 8);
    uint8_t ihdr[13] = {0};
    for (int i = 0; i < 4; i++) {
        ihdr[i] = (uint8_t)((uint32_t)w >> (24 - 8 * i));
        ihdr[4 + i] = (uint8_t)((uint32_t)h >> (24 - 8 * i));
    }
    ihdr[8] = (uint8_t)depth;
    ihdr[9] = (uint8_t)ctype;
    chunk(&b, "IHDR", ihdr, 13);
    if (plte) chunk(&b, "PLTE", plte, (uint32_t)n_plte * 3);
    size_t stride = (size_t)w * (size_t)bpp;
    uint8_t *f = malloc((stride + 1) * (size_t)h);
    for (int y = 0; y < h; y++) {
        const uint8_t *row = raw + (size_t)y * stride, *prev = y ? row - stride : NULL;
        uint8_t *o = f + (size_t)y * (stride + 1);
        o[0] = (uint8_t)(y % 5);
        for (size_t i = 0; i < stride; i++) {
            int a = i >= (size_t)bpp ? row[i - (size_t)bpp] : 0, up = prev ? prev[i] : 0,
                c = prev && i >= (size_t)bpp ? prev[i - (size_t)bpp] : 0;
            int pred = y % 5 == 0 ? 0 : y % 5 == 1 ? a : y % 5 == 2 ? up : y % 5 == 3 ? (a + up) >> 1 : paeth_ref(a, up, c);
            o[1 + i] = (uint8_t)(row[i] - pred);
        }
    }
    uLongf zn = compressBound((uLong)((stride + 1) * (size_t)h));
    uint8_t *z = malloc(zn);
    assert_int_equal(compress(z, &zn, f, (uLong)((stride + 1) * (size_t)h)), Z_OK);
    chunk(&b, "IDAT", z, (uint32_t)(zn / 2)); /* split over two IDAT chunks */
    chunk(&b, "IDAT", z + zn / 2, (uint32_t)(zn - zn / 2));
    chunk(&b, "IEND", NULL, 0);
    free(z);
    free(f);
    return b;
}

static void test_png_decoder(void **state) {
    (void)state;
    const int w = 13, h = 11;
    uint8_t rgba[13 * 11 * 4], rgb16[13 * 11 * 6], idx[13 * 11], plte[4 * 3];
    for (int i = 0; i < w * h; i++) {
        for (int c = 0; c < 4; c++) rgba[4 * i + c] = (uint8_t)(i * (c + 3) + c * 50);
        for (int c = 0; c < 3; c++) {
            rgb16[6 * i + 2 * c] = rgba[4 * i + c];
            rgb16[6 * i + 2 * c + 1] = 0x5a;
        }
        idx[i] = (uint8_t)(i % 4);
    }
    for (int i = 0; i < 12; i++) plte[i] = (uint8_t)(i * 20);
    sb_err e;
    uint8_t *out;
    int oh, ow;
    bytes p = make_png(w, h, 6, 8, rgba, 4, NULL, 0); /* RGBA: alpha dropped */
    assert_true(imagenet_is_png(p.d, p.n));
    if (imagenet_png_decode("a.png", p.d, p.n, &out, &oh, &ow, &e)) fail_msg("%s", e.msg);
    assert_int_equal(oh, h);
    assert_int_equal(ow, w);
    for (int i = 0; i < w * h; i++) assert_memory_equal(out + 3 * i, rgba + 4 * i, 3);
    free(out);
    /* a flipped byte fails the chunk CRC; a cut file is truncated */
    p.d[p.n / 2] ^= 1;
    assert_int_equal(imagenet_png_decode("a.png", p.d, p.n, &out, &oh, &ow, &e), SB_E_CRC);
    assert_non_null(strstr(e.msg, "a.png: PNG chunk IDAT"));
    p.d[p.n / 2] ^= 1;
    assert_int_equal(imagenet_png_decode("a.png", p.d, p.n - 20, &out, &oh, &ow, &e), SB_E_TRUNCATED);
    free(p.d);
    p = make_png(w, h, 2, 16, rgb16, 6, NULL, 0); /* 16-bit RGB: high bytes */
    assert_int_equal(imagenet_png_decode("b.png", p.d, p.n, &out, &oh, &ow, &e), 0);
    for (int i = 0; i < w * h; i++) assert_memory_equal(out + 3 * i, rgba + 4 * i, 3);
    free(out);
    free(p.d);
    p = make_png(w, h, 3, 8, idx, 1, plte, 4); /* palette */
    assert_int_equal(imagenet_png_decode("c.png", p.d, p.n, &out, &oh, &ow, &e), 0);
    for (int i = 0; i < w * h; i++) assert_memory_equal(out + 3 * i, plte + 3 * (i % 4), 3);
    free(out);
    free(p.d);
    p = make_png(w, h, 0, 8, idx, 1, NULL, 0); /* grey */
    assert_int_equal(imagenet_png_decode("d.png", p.d, p.n, &out, &oh, &ow, &e), 0);
    assert_int_equal(out[3 * 5 + 2], idx[5]);
    free(out);
    free(p.d);
    p = make_png(w, h, 0, 4, idx, 1, NULL, 0); /* 4-bit grey: refused, not misread */
    assert_int_equal(imagenet_png_decode("e.png", p.d, p.n, &out, &oh, &ow, &e), SB_E_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "e.png"));
    free(p.d);
}

static bytes make_jpeg(int w, int h, int pf, int samp, int flags) {
    tjhandle tj = tjInitCompress();
    int ch = tjPixelSize[pf];
    uint8_t *px = malloc((size_t)(w * h * ch));
    for (int i = 0; i < w * h; i++)
        for (int c = 0; c < ch; c++) px[i * ch + c] = (uint8_t)(pf == TJPF_CMYK && c == 3 ? 255 : 40 + 60 * c + (i % w) / 4);
    unsigned char *j = NULL;
    unsigned long n = 0;
    assert_int_equal(tjCompress2(tj, px, w, 0, h, pf, &j, &n, samp, 95, flags), 0);
    bytes b = {0};
    put(&b, j, n);
    tjFree(j);
    free(px);
    tjDestroy(tj);
    return b;
}

/* Decode a prepared JPEG to RGB and compare its mean colour with (r, g, b). */
static void expect_rgb_jpeg(const uint8_t *d, size_t n, int h, int w, int r, int g, int b) {
    tjhandle tj = tjInitDecompress();
    int jw, jh, ss, cs;
    assert_int_equal(tjDecompressHeader3(tj, d, (unsigned long)n, &jw, &jh, &ss, &cs), 0);
    assert_int_equal(jw, w);
    assert_int_equal(jh, h);
    assert_int_equal(cs, TJCS_YCbCr);
    uint8_t *px = malloc((size_t)(w * h * 3));
    assert_int_equal(tjDecompress2(tj, d, (unsigned long)n, px, w, 0, h, TJPF_RGB, 0), 0);
    double m[3] = {0};
    for (int i = 0; i < w * h; i++)
        for (int c = 0; c < 3; c++) m[c] += px[3 * i + c];
    for (int c = 0; c < 3; c++) m[c] /= w * h;
    if (fabs(m[0] - r) > 6 || fabs(m[1] - g) > 6 || fabs(m[2] - b) > 6)
        fail_msg("mean colour %.1f %.1f %.1f, want about %d %d %d", m[0], m[1], m[2], r, g, b);
    free(px);
    tjDestroy(tj);
}

static void test_image_prepare(void **state) {
    (void)state;
    imagenet_codec *c;
    sb_err e;
    assert_int_equal(imagenet_codec_create(&c, &e), 0);
    const uint8_t *out;
    size_t n;
    int h, w;
    enum imagenet_fix fix;
    /* baseline, progressive and greyscale JPEGs are kept byte for byte */
    int flags[2] = {0, TJFLAG_PROGRESSIVE};
    for (int k = 0; k < 2; k++) {
        bytes j = make_jpeg(50, 37, TJPF_RGB, TJSAMP_422, flags[k]);
        assert_int_equal(imagenet_image_prepare(c, "x.JPEG", j.d, j.n, &out, &n, &h, &w, &fix, &e), 0);
        assert_ptr_equal(out, j.d);
        assert_int_equal(n, j.n);
        assert_int_equal(h, 37);
        assert_int_equal(w, 50);
        assert_int_equal(fix, IMAGENET_FIX_NONE);
        /* truncated: cut in the middle of the scan */
        assert_int_equal(imagenet_image_prepare(c, "cut.JPEG", j.d, j.n / 2, &out, &n, &h, &w, &fix, &e),
                         SB_E_TRUNCATED);
        assert_non_null(strstr(e.msg, "cut.JPEG"));
        free(j.d);
    }
    bytes g = make_jpeg(20, 10, TJPF_GRAY, TJSAMP_GRAY, 0);
    assert_int_equal(imagenet_image_prepare(c, "g.JPEG", g.d, g.n, &out, &n, &h, &w, &fix, &e), 0);
    assert_ptr_equal(out, g.d);
    free(g.d);
    /* CMYK (Adobe, inverted; K = 255 means no black): re-encoded to RGB with the same colours */
    bytes k = make_jpeg(64, 48, TJPF_CMYK, TJSAMP_444, 0);
    if (imagenet_image_prepare(c, "cmyk.JPEG", k.d, k.n, &out, &n, &h, &w, &fix, &e)) fail_msg("%s", e.msg);
    assert_int_equal(fix, IMAGENET_FIX_CMYK);
    expect_rgb_jpeg(out, n, 48, 64, 40 + 8, 100 + 8, 160 + 8);
    free(k.d);
    /* PNG named .JPEG */
    uint8_t rgb[30 * 20 * 3];
    for (int i = 0; i < 600; i++) {
        rgb[3 * i] = 200;
        rgb[3 * i + 1] = 30;
        rgb[3 * i + 2] = 90;
    }
    bytes p = make_png(30, 20, 2, 8, rgb, 3, NULL, 0);
    assert_int_equal(imagenet_image_prepare(c, "n02105855_2933.JPEG", p.d, p.n, &out, &n, &h, &w, &fix, &e), 0);
    assert_int_equal(fix, IMAGENET_FIX_PNG);
    expect_rgb_jpeg(out, n, 20, 30, 200, 30, 90);
    free(p.d);
    /* empty and non-image files */
    assert_int_equal(imagenet_image_prepare(c, "zero.JPEG", (const uint8_t *)"", 0, &out, &n, &h, &w, &fix, &e),
                     SB_E_TRUNCATED);
    assert_non_null(strstr(e.msg, "zero.JPEG: empty file"));
    assert_int_equal(imagenet_image_prepare(c, "t.JPEG", (const uint8_t *)"hello world", 11, &out, &n, &h, &w, &fix, &e),
                     SB_E_JPEG);
    assert_non_null(strstr(e.msg, "t.JPEG: neither JPEG nor PNG"));
    imagenet_codec_destroy(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_python_random),
        cmocka_unit_test(test_shard_bounds),
        cmocka_unit_test(test_synsets_and_metadata),
        cmocka_unit_test(test_bboxes),
        cmocka_unit_test(test_png_decoder),
        cmocka_unit_test(test_image_prepare),
    };
    return cmocka_run_group_tests_name("datasets_imagenet", tests, NULL, NULL);
}
