/* tests/test_datasets_build_imagenet.c — the build_imagenet_data command on a generated
 * mini-ImageNet: synset folders of JPEGs of assorted sizes and subsamplings (one progressive, one
 * CMYK, one PNG named .JPEG, one greyscale, one truncated, one zero-byte), a flat validation
 * folder with its labels file, metadata and bounding boxes. Checks that every shard holds
 * exactly slim's files in slim's order (Python shuffle, numpy shard bounds), bytes kept or
 * re-encoded as specified, bad files skipped and listed, labels.txt, and that a rerun keeps good
 * shards and redoes missing or broken ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <unistd.h>
#include <zlib.h>

#include "core/sb.h"
#include "datasets/datasets.h"
#include "datasets/imagenet/imagenet.h"
#include "tests/support/testutil.h"

static const char *const k_synsets[] = {"n01440764", "n01443537", "n01484850"};
#define PER_SYNSET 7

static void write_bytes(const char *path, const void *d, size_t n) {
    sb_err e;
    if (sb_atomic_write(path, d, n, &e)) fail_msg("%s", e.msg);
}

/* cut: bytes dropped from the end (0: a complete file) */
static void write_jpeg(const char *path, int w, int h, int pf, int samp, int flags, int seed,
                       size_t cut) {
    tjhandle tj = tjInitCompress();
    int ch = tjPixelSize[pf];
    uint8_t *px = malloc((size_t)(w * h * ch));
    for (int i = 0; i < w * h * ch; i++) px[i] = (uint8_t)(i * 3 + seed * 29);
    unsigned char *j = NULL;
    unsigned long n = 0;
    assert_int_equal(tjCompress2(tj, px, w, 0, h, pf, &j, &n, samp, 90, flags), 0);
    write_bytes(path, j, n - cut);
    tjFree(j);
    free(px);
    tjDestroy(tj);
}

static void put32be(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* An 8-bit RGB PNG, no filtering. */
static void write_png(const char *path, int w, int h) {
    size_t raw_n = (size_t)(w * 3 + 1) * (size_t)h;
    uint8_t *raw = calloc(raw_n, 1);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w * 3; x++) raw[(size_t)y * (size_t)(w * 3 + 1) + 1 + (size_t)x] = (uint8_t)(x + y);
    uLongf zn = compressBound((uLong)raw_n);
    uint8_t *out = malloc(zn + 128), *p = out;
    assert_int_equal(compress(out + 8 + 25 + 8, &zn, raw, (uLong)raw_n), Z_OK);
    memcpy(p, "\x89PNG\r\n\x1a\n", 8);
    p += 8;
    uint8_t ihdr[13] = {0};
    put32be(ihdr, (uint32_t)w);
    put32be(ihdr + 4, (uint32_t)h);
    ihdr[8] = 8;
    ihdr[9] = 2;
    put32be(p, 13);
    memcpy(p + 4, "IHDR", 4);
    memcpy(p + 8, ihdr, 13);
    put32be(p + 21, (uint32_t)crc32(0, p + 4, 17));
    p += 25;
    put32be(p, (uint32_t)zn);
    memcpy(p + 4, "IDAT", 4);
    p += 8 + zn;
    put32be(p, (uint32_t)crc32(0, p - zn - 4, (uInt)zn + 4));
    p += 4;
    put32be(p, 0);
    memcpy(p + 4, "IEND", 4);
    put32be(p + 8, (uint32_t)crc32(0, p + 4, 4));
    p += 12;
    write_bytes(path, out, (size_t)(p - out));
    free(out);
    free(raw);
}

/* The tree; returns the train file names (synset-major, sorted) through names/labels. */
static void make_tree(const char *root) {
    char p[1024];
    sb_err e;
    for (int s = 0; s < 3; s++) {
        snprintf(p, sizeof p, "%s/train/%s", root, k_synsets[s]);
        assert_int_equal(sb_mkdirs(p, &e), 0);
        for (int i = 0; i < PER_SYNSET; i++) {
            snprintf(p, sizeof p, "%s/train/%s/%s_%d.JPEG", root, k_synsets[s], k_synsets[s], i);
            int samp = i % 3 == 0 ? TJSAMP_444 : i % 3 == 1 ? TJSAMP_422 : TJSAMP_420;
            if (s == 0 && i == 5) write_jpeg(p, 40, 30, TJPF_CMYK, TJSAMP_444, 0, i, 0);
            else if (s == 0 && i == 6) write_jpeg(p, 40, 30, TJPF_RGB, TJSAMP_420, 0, i, 100);
            else if (s == 1 && i == 5) write_png(p, 33, 21);
            else if (s == 1 && i == 6) write_bytes(p, "", 0);
            else if (s == 2 && i == 5) write_jpeg(p, 24, 24, TJPF_GRAY, TJSAMP_GRAY, 0, i, 0);
            else if (s == 2 && i == 6) write_jpeg(p, 64, 48, TJPF_RGB, TJSAMP_420, TJFLAG_PROGRESSIVE, i, 0);
            else write_jpeg(p, 20 + 7 * i + s, 16 + 5 * i, TJPF_RGB, samp, 0, i + 10 * s, 0);
        }
    }
    snprintf(p, sizeof p, "%s/train/%s/readme.txt", root, k_synsets[0]);
    write_bytes(p, "ignored", 7);
    snprintf(p, sizeof p, "%s/val", root);
    assert_int_equal(sb_mkdirs(p, &e), 0);
    for (int i = 1; i <= 4; i++) {
        snprintf(p, sizeof p, "%s/val/ILSVRC2012_val_%08d.JPEG", root, i);
        write_jpeg(p, 30 + i, 20, TJPF_RGB, TJSAMP_420, 0, 100 + i, 0);
    }
    snprintf(p, sizeof p, "%s/val_labels.txt", root);
    const char *vl = "n01484850\nn01440764\nn01440764\nn01443537\n";
    write_bytes(p, vl, strlen(vl));
    snprintf(p, sizeof p, "%s/synsets.txt", root);
    const char *sy = "n01440764\nn01443537\nn01484850\n";
    write_bytes(p, sy, strlen(sy));
    snprintf(p, sizeof p, "%s/meta.txt", root);
    const char *me = "n01440764\ttench, Tinca tinca\nn01443537\tgoldfish, Carassius auratus\n"
                     "n01484850\tgreat white shark\nn00000001\tunused\n";
    write_bytes(p, me, strlen(me));
    snprintf(p, sizeof p, "%s/boxes.csv", root);
    const char *bb = "n01443537_2.JPEG,0.1,0.2,0.5,0.6\nn01443537_2.JPEG,0.3,0.3,0.9,1.0\n"
                     "ILSVRC2012_val_00000003.JPEG,0,0,1,1\n";
    write_bytes(p, bb, strlen(bb));
}

#define FLAGS_FMT                                                                             \
    "{bin}/build_imagenet_data --train_directory=%s/train --validation_directory=%s/val "   \
    "--validation_labels_file=%s/val_labels.txt --labels_file=%s/synsets.txt "             \
    "--imagenet_metadata_file=%s/meta.txt --bounding_box_file=%s/boxes.csv "               \
    "--output_directory=%s/out --train_shards=4 --validation_shards=2 --num_threads=2 --noprogress"
#define FLAGS_ARGS(r) r, r, r, r, r, r, r

/* Expected file order of each train shard: slim's listing, shuffle and bounds. */
static void expected_train(char names[3 * PER_SYNSET][64], int64_t bounds[5]) {
    size_t order[3 * PER_SYNSET];
    char listed[3 * PER_SYNSET][64];
    for (int s = 0, k = 0; s < 3; s++)
        for (int i = 0; i < PER_SYNSET; i++, k++) {
            snprintf(listed[k], 64, "%s_%d.JPEG", k_synsets[s], i);
            order[k] = (size_t)k;
        }
    imagenet_pyrandom r;
    imagenet_pyrandom_seed(&r, 12345);
    imagenet_pyrandom_shuffle(&r, order, 3 * PER_SYNSET);
    for (int k = 0; k < 3 * PER_SYNSET; k++) memcpy(names[k], listed[order[k]], 64);
    sb_err e;
    assert_int_equal(imagenet_shard_bounds(3 * PER_SYNSET, 4, 2, bounds, &e), 0);
}

static int is_bad(const char *name) {
    return !strcmp(name, "n01440764_6.JPEG") || !strcmp(name, "n01443537_6.JPEG");
}

static void check_train_shards(const char *root) {
    char names[3 * PER_SYNSET][64];
    int64_t bounds[5];
    expected_train(names, bounds);
    ex_example ex;
    ex_init(&ex);
    sb_err e;
    tjhandle tj = tjInitDecompress();
    for (int s = 0; s < 4; s++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/out/train-%05d-of-00004", root, s);
        rec_lmdb_reader *rd;
        if (rec_lmdb_reader_open(path, &rd, &e)) fail_msg("%s", e.msg);
        for (int64_t k = bounds[s]; k < bounds[s + 1]; k++) {
            if (is_bad(names[k])) continue;
            const uint8_t *d, *p;
            size_t n, pn, cnt;
            uint64_t idx;
            assert_int_equal(rec_lmdb_reader_next(rd, &d, &n, &idx, &e), 0);
            assert_int_equal(ex_decode(&ex, d, n, &e), 0);
            assert_int_equal(ex_get_bytes(&ex, "image/filename", 0, &p, &pn), 0);
            if (pn != strlen(names[k]) || memcmp(p, names[k], pn))
                fail_msg("shard %d record %llu: %.*s, slim's order has %s", s,
                         (unsigned long long)idx, (int)pn, (const char *)p, names[k]);
            int syn = names[k][5] == '0' ? 0 : names[k][5] == '3' ? 1 : 2;
            int i = names[k][10] - '0';
            int64_t label, hw[2];
            assert_int_equal(ex_get_int64(&ex, "image/class/label", &label, 1, &cnt), 0);
            assert_int_equal(label, syn + 1);
            assert_int_equal(ex_get_bytes(&ex, "image/class/synset", 0, &p, &pn), 0);
            assert_memory_equal(p, k_synsets[syn], pn);
            assert_int_equal(ex_get_bytes(&ex, "image/class/text", 0, &p, &pn), 0);
            assert_true(pn > 5);
            const uint8_t *img;
            size_t img_n;
            assert_int_equal(ex_get_bytes(&ex, "image/encoded", 0, &img, &img_n), 0);
            assert_int_equal(ex_get_int64(&ex, "image/height", &hw[0], 1, &cnt), 0);
            assert_int_equal(ex_get_int64(&ex, "image/width", &hw[1], 1, &cnt), 0);
            char fpath[1200];
            snprintf(fpath, sizeof fpath, "%s/train/%s/%s", root, k_synsets[syn], names[k]);
            char *file;
            size_t fn;
            assert_int_equal(sb_read_file(fpath, &file, &fn, &e), 0);
            int reenc = (syn == 0 && i == 5) || (syn == 1 && i == 5);
            if (reenc) {
                int w, h, ss, cs;
                assert_int_equal(tjDecompressHeader3(tj, img, (unsigned long)img_n, &w, &h, &ss, &cs), 0);
                assert_int_equal(cs, TJCS_YCbCr);
                assert_int_equal(h, hw[0]);
                assert_int_equal(w, hw[1]);
                assert_int_equal(h, syn == 0 ? 30 : 21);
            } else {
                assert_int_equal(img_n, fn);
                assert_memory_equal(img, file, fn);
            }
            free(file);
            float box[4];
            assert_int_equal(ex_get_float(&ex, "image/object/bbox/xmin", box, 4, &cnt), 0);
            assert_int_equal(cnt, !strcmp(names[k], "n01443537_2.JPEG") ? 2 : 0);
            if (cnt) assert_true(box[0] == 0.1f && box[1] == 0.3f);
        }
        const uint8_t *d;
        size_t n;
        assert_int_equal(rec_lmdb_reader_next(rd, &d, &n, NULL, &e), SB_E_NOTFOUND);
        rec_lmdb_reader_close(rd);
    }
    tjDestroy(tj);
    ex_fini(&ex);
}

static void test_build_mini_imagenet(void **state) {
    (void)state;
    char root[256], p[1024];
    tu_make_tmpdir(root, sizeof root);
    make_tree(root);
    char *out;
    int rc = tu_run(&out, FLAGS_FMT, FLAGS_ARGS(root));
    if (rc) fail_msg("exit %d: %s", rc, out);
    assert_non_null(strstr(out, "19 images written"));
    assert_non_null(strstr(out, "2 skipped"));
    assert_non_null(strstr(out, "1 PNG and 1 CMYK re-encoded"));
    free(out);
    check_train_shards(root);
    /* the report names both bad files and why */
    char *text;
    size_t n;
    sb_err e;
    snprintf(p, sizeof p, "%s/out/train_skipped.txt", root);
    assert_int_equal(sb_read_file(p, &text, &n, &e), 0);
    assert_non_null(strstr(text, "n01440764_6.JPEG: JPEG data ends before its end-of-image marker"));
    assert_non_null(strstr(text, "n01443537_6.JPEG: empty file"));
    free(text);
    snprintf(p, sizeof p, "%s/out/labels.txt", root);
    assert_int_equal(sb_read_file(p, &text, &n, &e), 0);
    assert_string_equal(text, "0:background\n1:n01440764\n2:n01443537\n3:n01484850\n");
    free(text);
    /* validation: flat folder, labels from the file, box of file 3 */
    uint64_t total = 0;
    ex_example ex;
    ex_init(&ex);
    for (int s = 0; s < 2; s++) {
        snprintf(p, sizeof p, "%s/out/validation-%05d-of-00002", root, s);
        rec_lmdb_reader *r;
        assert_int_equal(rec_lmdb_reader_open(p, &r, &e), 0);
        const uint8_t *d, *q;
        size_t dn, qn, cnt;
        while (rec_lmdb_reader_next(r, &d, &dn, NULL, &e) == 0) {
            total++;
            assert_int_equal(ex_decode(&ex, d, dn, &e), 0);
            assert_int_equal(ex_get_bytes(&ex, "image/filename", 0, &q, &qn), 0);
            int i = q[qn - 6] - '0';
            int64_t label;
            assert_int_equal(ex_get_int64(&ex, "image/class/label", &label, 1, &cnt), 0);
            static const int want[5] = {0, 3, 1, 1, 2};
            assert_int_equal(label, want[i]);
            float box[4];
            assert_int_equal(ex_get_float(&ex, "image/object/bbox/ymax", box, 4, &cnt), 0);
            assert_int_equal(cnt, i == 3);
        }
        rec_lmdb_reader_close(r);
    }
    ex_fini(&ex);
    assert_int_equal(total, 4);

    /* resume: shard 2 missing, shard 3 broken, a stale temporary: those are redone */
    snprintf(p, sizeof p, "%s/out/train-00002-of-00004", root);
    assert_int_equal(unlink(p), 0);
    snprintf(p, sizeof p, "%s/out/train-00003-of-00004", root);
    assert_int_equal(truncate(p, 100), 0);
    snprintf(p, sizeof p, "%s/out/train-00001-of-00004.tmp", root);
    write_bytes(p, "junk", 4);
    rc = tu_run(&out, FLAGS_FMT, FLAGS_ARGS(root));
    if (rc) fail_msg("exit %d: %s", rc, out);
    /* shards 0 and 1 start and end with good files, so they are kept */
    assert_non_null(strstr(out, "2 of 4 shards kept from an earlier run"));
    free(out);
    check_train_shards(root);
    assert_int_not_equal(access(p, F_OK), 0); /* no temporary left behind */
    tu_remove_tree(root);
}

/* slim's validation layout (synset folders, as preprocess_imagenet_validation_data.py leaves
 * it), no metadata or boxes, the train split left out. */
static void test_validation_synset_folders(void **state) {
    (void)state;
    char root[256], p[1024];
    tu_make_tmpdir(root, sizeof root);
    make_tree(root);
    char *out;
    int rc = tu_run(&out, "{bin}/build_imagenet_data --train_directory= --validation_directory=%s/train "
                          "--labels_file=%s/synsets.txt --imagenet_metadata_file= --bounding_box_file= "
                          "--output_directory=%s/out --validation_shards=2 --num_threads=2", root, root, root);
    if (rc) fail_msg("exit %d: %s", rc, out);
    assert_non_null(strstr(out, "validation: 19 images written"));
    free(out);
    uint64_t total = 0;
    sb_err e;
    for (int s = 0; s < 2; s++) {
        snprintf(p, sizeof p, "%s/out/validation-%05d-of-00002", root, s);
        rec_lmdb_reader *r;
        assert_int_equal(rec_lmdb_reader_open(p, &r, &e), 0);
        total += rec_lmdb_reader_count(r);
        rec_lmdb_reader_close(r);
    }
    assert_int_equal(total, 19);
    snprintf(p, sizeof p, "%s/out/train-00000-of-01024", root);
    assert_int_not_equal(access(p, F_OK), 0);
    snprintf(p, sizeof p, "%s/out/validation_skipped.txt", root);
    assert_int_equal(access(p, F_OK), 0);
    tu_remove_tree(root);
}

static void test_usage_errors(void **state) {
    (void)state;
    char *out;
    assert_int_equal(tu_run(&out, "{bin}/build_imagenet_data --train_shards=4 --num_threads=3"), 2);
    assert_non_null(strstr(out, "commensurate"));
    free(out);
    assert_int_equal(tu_run(&out, "{bin}/build_imagenet_data --labels_file=/nonexistent/synsets.txt "
                                  "--output_directory=/tmp/sbtest_none --num_threads=8"), 1);
    assert_non_null(strstr(out, "/nonexistent/synsets.txt"));
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_mini_imagenet),
        cmocka_unit_test(test_validation_synset_folders),
        cmocka_unit_test(test_usage_errors),
    };
    return cmocka_run_group_tests_name("datasets_build_imagenet", tests, NULL, NULL);
}
