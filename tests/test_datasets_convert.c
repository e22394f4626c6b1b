/* tests/test_datasets_convert.c — the convert_tfrecord command: slim-style TFRecord shards to
 * LMDB and back reproduce the input files byte for byte (including an Example in a
 * non-canonical encoding); corrupt records are skipped, counted and named with their offset;
 * converting in place and rerunning are safe; usage errors exit 2. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/sb.h"
#include "datasets/datasets.h"
#include "tests/support/testutil.h"

#define SHARDS 3
#define PER_SHARD 40

/* Writes SHARDS TFRecord shards "train-0000i-of-00003" of PER_SHARD image Examples each, plus,
 * in shard 0, an Example encoded unlike our encoder (unpacked int64, unknown field). Returns the
 * byte offset of record 2 of shard 1 through *rec2_off. */
static void write_slim_shards(const char *dir, long *rec2_off) {
    ex_builder b;
    ex_buf out;
    ex_builder_init(&b);
    ex_buf_init(&out);
    sb_err e;
    for (int s = 0; s < SHARDS; s++) {
        char path[512];
        snprintf(path, sizeof path, "%s/train-%05d-of-%05d", dir, s, SHARDS);
        tfr_writer *w;
        assert_int_equal(tfr_writer_open(path, &w, &e), 0);
        long off = 0;
        for (int i = 0; i < PER_SHARD; i++) {
            uint8_t jpeg[700];
            size_t n = 300 + (size_t)((s * 97 + i * 13) % 400);
            for (size_t k = 0; k < n; k++) jpeg[k] = (uint8_t)(k * 5 + (size_t)i + (size_t)s);
            float box[1] = {0.25f};
            char fname[64];
            snprintf(fname, sizeof fname, "n0000%d_%d.JPEG", s, i);
            ex_image img = {jpeg, n, "JPEG", "RGB", 3, 100 + i, 200 + s, 1 + (i % 1000),
                            "n00000001", "thing", fname, box, box, box, box, (size_t)(i % 2)};
            ex_encode_image(&img, &b, &out);
            if (s == 1 && i == 2) *rec2_off = off;
            assert_int_equal(tfr_writer_write(w, out.data, out.len, &e), 0);
            off += 16 + (long)out.len;
        }
        if (s == 0) {
            static const uint8_t odd[] = {0x10, 0x01, 0x0a, 0x0b, 0x0a, 0x09, 0x0a, 0x01,
                                          'i',  0x12, 0x04, 0x1a, 0x02, 0x08, 0x05};
            assert_int_equal(tfr_writer_write(w, odd, sizeof odd, &e), 0);
        }
        assert_int_equal(tfr_writer_commit(w, &e), 0);
    }
    ex_buf_fini(&out);
    ex_builder_fini(&b);
}

static void assert_same_file(const char *a, const char *b) {
    char *da, *db;
    size_t na, nb;
    sb_err e;
    if (sb_read_file(a, &da, &na, &e)) fail_msg("%s", e.msg);
    if (sb_read_file(b, &db, &nb, &e)) fail_msg("%s", e.msg);
    if (na != nb || memcmp(da, db, na)) fail_msg("%s (%zu bytes) differs from %s (%zu bytes)", a, na, b, nb);
    free(da);
    free(db);
}

static uint64_t lmdb_count(const char *path) {
    rec_lmdb_reader *r;
    sb_err e;
    if (rec_lmdb_reader_open(path, &r, &e)) fail_msg("%s", e.msg);
    uint64_t n = rec_lmdb_reader_count(r);
    rec_lmdb_reader_close(r);
    return n;
}

static void test_round_trip_byte_exact(void **state) {
    (void)state;
    char dir[256], src[300], lm[300], back[300];
    tu_make_tmpdir(dir, sizeof dir);
    snprintf(src, sizeof src, "%s/src", dir);
    snprintf(lm, sizeof lm, "%s/lmdb", dir);
    snprintf(back, sizeof back, "%s/back", dir);
    sb_err e;
    assert_int_equal(sb_mkdirs(src, &e), 0);
    long off;
    write_slim_shards(src, &off);
    char *out;
    int rc = tu_run(&out, "{bin}/convert_tfrecord --input='%s/train-*' --output_directory=%s "
                          "--lmdb_map_size_mb=1 --lmdb_commit_mb=1", src, lm);
    if (rc) fail_msg("exit %d: %s", rc, out);
    assert_non_null(strstr(out, "121 records"));
    assert_non_null(strstr(out, "in 3 files to LMDB"));
    assert_non_null(strstr(out, "0 corrupt records skipped"));
    free(out);
    char a[600], b[600];
    for (int s = 0; s < SHARDS; s++) {
        snprintf(a, sizeof a, "%s/train-%05d-of-%05d", lm, s, SHARDS);
        assert_int_equal(lmdb_count(a), PER_SHARD + (s == 0));
    }
    rc = tu_run(&out, "{bin}/convert_tfrecord --to=tfrecord --input='%s/train-*' "
                      "--output_directory=%s --num_threads=1", lm, back);
    if (rc) fail_msg("exit %d: %s", rc, out);
    assert_non_null(strstr(out, "to TFRecord"));
    free(out);
    for (int s = 0; s < SHARDS; s++) {
        snprintf(a, sizeof a, "%s/train-%05d-of-%05d", src, s, SHARDS);
        snprintf(b, sizeof b, "%s/train-%05d-of-%05d", back, s, SHARDS);
        assert_same_file(a, b);
    }
    /* LMDB values are the Examples themselves: record 5 of shard 2 decodes */
    snprintf(a, sizeof a, "%s/train-00002-of-00003", lm);
    rec_lmdb_reader *r;
    assert_int_equal(rec_lmdb_reader_open(a, &r, &e), 0);
    const uint8_t *d;
    size_t n;
    assert_int_equal(rec_lmdb_reader_get(r, 5, &d, &n, &e), 0);
    ex_example ex;
    ex_init(&ex);
    assert_int_equal(ex_decode(&ex, d, n, &e), 0);
    int64_t v;
    size_t cnt;
    assert_int_equal(ex_get_int64(&ex, "image/height", &v, 1, &cnt), 0);
    assert_int_equal(v, 105);
    const uint8_t *p;
    assert_int_equal(ex_get_bytes(&ex, "image/filename", 0, &p, &n), 0);
    assert_memory_equal(p, "n00002_5.JPEG", n);
    ex_fini(&ex);
    rec_lmdb_reader_close(r);
    tu_remove_tree(dir);
}

static void flip_byte(const char *path, long at) {
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    fseek(fp, at, SEEK_SET);
    int c = fgetc(fp);
    fseek(fp, at, SEEK_SET);
    fputc(c ^ 0x01, fp);
    fclose(fp);
}

static void test_corrupt_records_skipped_and_counted(void **state) {
    (void)state;
    char dir[256], src[300], lm[300], path[600];
    tu_make_tmpdir(dir, sizeof dir);
    snprintf(src, sizeof src, "%s/src", dir);
    snprintf(lm, sizeof lm, "%s/lmdb", dir);
    sb_err e;
    assert_int_equal(sb_mkdirs(src, &e), 0);
    long off;
    write_slim_shards(src, &off);
    snprintf(path, sizeof path, "%s/train-00001-of-00003", src);
    flip_byte(path, off + 12 + 40); /* inside record 2's data */
    /* a record that passes its CRCs but is not an Example, appended to shard 2 */
    snprintf(path, sizeof path, "%s/train-00002-of-00003", src);
    {
        tfr_reader *r;
        tfr_writer *w;
        char tmp[700];
        snprintf(tmp, sizeof tmp, "%s/shard2", dir);
        assert_int_equal(tfr_reader_open(path, &r, &e), 0);
        assert_int_equal(tfr_writer_open(tmp, &w, &e), 0);
        const uint8_t *d;
        size_t n;
        while (tfr_reader_next(r, &d, &n, &e) == 0) assert_int_equal(tfr_writer_write(w, d, n, &e), 0);
        static const uint8_t junk[] = {0x0a, 0x05, 0x01};
        assert_int_equal(tfr_writer_write(w, junk, sizeof junk, &e), 0);
        assert_int_equal(tfr_writer_commit(w, &e), 0);
        tfr_reader_close(r);
        assert_int_equal(rename(tmp, path), 0);
    }
    char *out;
    int rc = tu_run(&out, "{bin}/convert_tfrecord --input='%s/train-*' --output_directory=%s",
                    src, lm);
    if (rc) fail_msg("exit %d: %s", rc, out);
    assert_non_null(strstr(out, "2 corrupt records skipped"));
    char want[700];
    snprintf(want, sizeof want, "train-00001-of-00003: corrupt data CRC of the record at byte %ld", off);
    if (!strstr(out, want)) fail_msg("output lacks \"%s\":\n%s", want, out);
    assert_non_null(strstr(out, "is not a tf.train.Example"));
    free(out);
    snprintf(path, sizeof path, "%s/train-00001-of-00003", lm);
    assert_int_equal(lmdb_count(path), PER_SHARD - 1);
    snprintf(path, sizeof path, "%s/train-00002-of-00003", lm);
    assert_int_equal(lmdb_count(path), PER_SHARD);

    /* without the Example check the junk record is kept (the CRC failure still is not) */
    rc = tu_run(&out, "{bin}/convert_tfrecord --input='%s/train-*' --output_directory=%s/nocheck "
                      "--nocheck_examples", src, dir);
    if (rc) fail_msg("exit %d: %s", rc, out);
    assert_non_null(strstr(out, "1 corrupt records skipped"));
    free(out);
    snprintf(path, sizeof path, "%s/nocheck/train-00002-of-00003", dir);
    assert_int_equal(lmdb_count(path), PER_SHARD + 1);

    /* a truncated shard: the records before the break are kept and the break is reported */
    snprintf(path, sizeof path, "%s/train-00000-of-00003", src);
    assert_int_equal(truncate(path, 1000), 0);
    rc = tu_run(&out, "{bin}/convert_tfrecord --input=%s --output_directory=%s/trunc", path, dir);
    if (rc) fail_msg("exit %d: %s", rc, out);
    assert_non_null(strstr(out, "truncated"));
    assert_non_null(strstr(out, "1 files unreadable after a broken record"));
    free(out);
    tu_remove_tree(dir);
}

static void test_in_place_and_rerun(void **state) {
    (void)state;
    char dir[256];
    tu_make_tmpdir(dir, sizeof dir);
    long off;
    write_slim_shards(dir, &off);
    char *out;
    int rc = tu_run(&out, "{bin}/convert_tfrecord --input='%s/train-*' --output_directory=%s",
                    dir, dir);
    if (rc) fail_msg("exit %d: %s", rc, out);
    free(out);
    char path[600];
    snprintf(path, sizeof path, "%s/train-00001-of-00003", dir);
    assert_int_equal(lmdb_count(path), PER_SHARD); /* replaced by the LMDB shard */
    rc = tu_run(&out, "{bin}/convert_tfrecord --input='%s/train-*' --output_directory=%s",
                dir, dir);
    if (rc) fail_msg("exit %d: %s", rc, out);
    assert_non_null(strstr(out, "3 files skipped"));
    assert_non_null(strstr(out, "already LMDB"));
    free(out);
    tu_remove_tree(dir);
}

static void test_usage_errors(void **state) {
    (void)state;
    char *out;
    assert_int_equal(tu_run(&out, "{bin}/convert_tfrecord --output_directory=/tmp"), 2);
    assert_non_null(strstr(out, "--input"));
    free(out);
    assert_int_equal(tu_run(&out, "{bin}/convert_tfrecord --inptu=x --output_directory=/tmp"), 2);
    assert_non_null(strstr(out, "did you mean"));
    free(out);
    assert_int_equal(tu_run(&out, "{bin}/convert_tfrecord --to=csv --input=x --output_directory=/tmp"), 2);
    free(out);
    assert_int_equal(
        tu_run(&out, "{bin}/convert_tfrecord --input='/nonexistent/train-*' --output_directory=/tmp"),
        1);
    assert_non_null(strstr(out, "/nonexistent/train-*"));
    free(out);
    assert_int_equal(tu_run(&out, "{bin}/convert_tfrecord --help"), 0);
    assert_non_null(strstr(out, "--output_directory"));
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_byte_exact),
        cmocka_unit_test(test_corrupt_records_skipped_and_counted),
        cmocka_unit_test(test_in_place_and_rerun),
        cmocka_unit_test(test_usage_errors),
    };
    return cmocka_run_group_tests_name("datasets_convert", tests, NULL, NULL);
}
