/* tests/test_checkpoint.c — train/checkpoint.c and train/summary.c on their own: a checkpoint
 * round trip (names, shapes, float32 and int64 data), corruption detected with the file named
 * (flipped byte -> CRC, cut file -> truncated, foreign file -> bad magic), a shape mismatch
 * naming the variable and both shapes, TensorFlow's "checkpoint" index keeping the newest five
 * and deleting older files, --checkpoint_path resolution (file or directory), and a TensorBoard
 * event file read back with datasets/' TFRecord reader (every CRC verified) and decoded field by
 * field with the small protobuf reader below. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/sb.h"
#include "datasets/datasets.h"
#include "tests/support/testutil.h"
#include "train/train_loop.h"

static void assert_has(const char *hay, const char *needle) {
    if (!strstr(hay, needle)) fail_msg("'%s' not in '%s'", needle, hay);
}

/* A small checkpoint: a conv kernel, a vector, a scalar and global_step. */
static float g_w[2 * 3 * 4 * 5], g_b[5], g_s = 0.5f;
static int64_t g_gs = 1234;
static void write_small(const char *path) {
    for (size_t i = 0; i < SB_ARRAY_LEN(g_w); i++) g_w[i] = (float)i * 0.25f - 3;
    for (size_t i = 0; i < SB_ARRAY_LEN(g_b); i++) g_b[i] = -(float)i;
    ckpt_tensor t[] = {
        {"net/conv/weights", CKPT_DTYPE_FLOAT32, 4, {2, 3, 4, 5}, SB_ARRAY_LEN(g_w), g_w},
        {"net/conv/biases", CKPT_DTYPE_FLOAT32, 1, {5}, 5, g_b},
        {"beta1_power", CKPT_DTYPE_FLOAT32, 0, {0}, 1, &g_s},
        {"global_step", CKPT_DTYPE_INT64, 0, {0}, 1, &g_gs},
    };
    sb_err err;
    assert_int_equal(ckpt_write(path, t, SB_ARRAY_LEN(t), &err), 0);
}

static void test_round_trip(void **state) {
    (void)state;
    char dir[256], path[512];
    tu_make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.ckpt-7", dir);
    write_small(path);
    ckpt *c;
    sb_err err;
    assert_int_equal(ckpt_open(&c, path, &err), 0);
    assert_int_equal(ckpt_count(c), 4);
    const ckpt_tensor *t = ckpt_find(c, "net/conv/weights");
    assert_non_null(t);
    assert_int_equal(t->ndim, 4);
    assert_int_equal(t->shape[3], 5);
    assert_int_equal(t->count, SB_ARRAY_LEN(g_w));
    assert_memory_equal(t->data, g_w, sizeof g_w);
    float got[SB_ARRAY_LEN(g_w)];
    int shape[4] = {2, 3, 4, 5};
    assert_int_equal(ckpt_read_float(c, "net/conv/weights", 4, shape, got, &err), 0);
    assert_memory_equal(got, g_w, sizeof g_w);
    t = ckpt_find(c, "global_step");
    assert_int_equal(t->dtype, CKPT_DTYPE_INT64);
    int64_t g;
    memcpy(&g, t->data, 8);
    assert_int_equal(g, 1234);
    assert_null(ckpt_find(c, "net/conv"));
    assert_int_equal(ckpt_read_float(c, "nope", 1, shape, got, &err), SB_E_NOTFOUND);
    assert_has(err.msg, "no variable nope");
    /* shape mismatch names file, variable and both shapes */
    int wrong[4] = {2, 3, 4, 6};
    assert_int_equal(ckpt_read_float(c, "net/conv/weights", 4, wrong, got, &err), SB_E_FORMAT);
    assert_has(err.msg, path);
    assert_has(err.msg, "net/conv/weights has shape [2, 3, 4, 5]");
    assert_has(err.msg, "wants [2, 3, 4, 6]");
    ckpt_close(c);
    tu_remove_tree(dir);
}

static void corrupt_at(const char *path, long off) {
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    fseek(fp, off, off < 0 ? SEEK_END : SEEK_SET);
    int ch = fgetc(fp);
    fseek(fp, -1, SEEK_CUR);
    fputc(ch ^ 0x10, fp);
    fclose(fp);
}

static void test_corruption_detected(void **state) {
    (void)state;
    char dir[256], path[512];
    tu_make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.ckpt-1", dir);
    ckpt *c = NULL;
    sb_err err;
    /* a flipped bit anywhere: data, index, the CRC itself */
    long offsets[] = {-10, 40, -1};
    for (size_t i = 0; i < SB_ARRAY_LEN(offsets); i++) {
        write_small(path);
        corrupt_at(path, offsets[i]);
        assert_int_equal(ckpt_open(&c, path, &err), SB_E_CRC);
        assert_null(c);
        assert_has(err.msg, path);
        assert_has(err.msg, "corrupt");
    }
    /* cut short */
    write_small(path);
    assert_int_equal(truncate(path, 100), 0);
    assert_int_equal(ckpt_open(&c, path, &err), SB_E_TRUNCATED);
    assert_has(err.msg, path);
    /* not a checkpoint */
    FILE *fp = fopen(path, "w");
    fputs("model_checkpoint_path: \"x\"\n", fp);
    fclose(fp);
    assert_int_equal(ckpt_open(&c, path, &err), SB_E_FORMAT);
    assert_has(err.msg, "not a slimbench checkpoint");
    /* missing */
    snprintf(path, sizeof path, "%s/none", dir);
    assert_int_not_equal(ckpt_open(&c, path, &err), 0);
    assert_has(err.msg, path);
    tu_remove_tree(dir);
}

static int count_files(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

static void test_index_keeps_five(void **state) {
    (void)state;
    char dir[256], path[512], got[4096];
    tu_make_tmpdir(dir, sizeof dir);
    sb_err err;
    assert_int_equal(ckpt_latest(dir, got, sizeof got, &err), SB_E_NOTFOUND);
    for (int step = 10; step <= 70; step += 10) {
        snprintf(path, sizeof path, "%s/model.ckpt-%d", dir, step);
        write_small(path);
        assert_int_equal(ckpt_update_index(dir, path, 5, &err), 0);
        assert_int_equal(ckpt_latest(dir, got, sizeof got, &err), 0);
        assert_string_equal(got, path);
    }
    assert_int_equal(count_files(dir, "model.ckpt-"), 5);
    snprintf(path, sizeof path, "%s/model.ckpt-20", dir);
    assert_int_not_equal(access(path, F_OK), 0); /* oldest deleted */
    snprintf(path, sizeof path, "%s/model.ckpt-30", dir);
    assert_int_equal(access(path, F_OK), 0);
    char ipath[512], *text;
    size_t n;
    snprintf(ipath, sizeof ipath, "%s/checkpoint", dir);
    assert_int_equal(sb_read_file(ipath, &text, &n, &err), 0);
    assert_has(text, "model_checkpoint_path: \"model.ckpt-70\"\n");
    assert_has(text, "all_model_checkpoint_paths: \"model.ckpt-30\"\n");
    assert_null(strstr(text, "model.ckpt-20\""));
    free(text);
    /* --checkpoint_path: a directory means its newest, a file itself */
    assert_int_equal(ckpt_resolve(dir, got, sizeof got, &err), 0);
    snprintf(path, sizeof path, "%s/model.ckpt-70", dir);
    assert_string_equal(got, path);
    snprintf(path, sizeof path, "%s/model.ckpt-40", dir);
    assert_int_equal(ckpt_resolve(path, got, sizeof got, &err), 0);
    assert_string_equal(got, path);
    snprintf(path, sizeof path, "%s/missing", dir);
    assert_int_not_equal(ckpt_resolve(path, got, sizeof got, &err), 0);
    assert_has(err.msg, path);
    /* a malformed index is an error naming it */
    FILE *fp = fopen(ipath, "w");
    fputs("garbage\n", fp);
    fclose(fp);
    assert_int_equal(ckpt_latest(dir, got, sizeof got, &err), SB_E_FORMAT);
    assert_has(err.msg, ipath);
    tu_remove_tree(dir);
}

/* ---- a protobuf reader for the test ---- */
typedef struct pbr {
    const uint8_t *p, *end;
} pbr;
static uint64_t rd_varint(pbr *r) {
    uint64_t v = 0;
    for (int sh = 0; r->p < r->end; sh += 7) {
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << sh;
        if (!(b & 0x80)) break;
    }
    return v;
}
/* Next field: returns the field number (0 at the end), the wire type, and the payload. */
static int rd_field(pbr *r, int *wire, uint64_t *iv, double *dv, float *fv, pbr *sub) {
    if (r->p >= r->end) return 0;
    uint64_t key = rd_varint(r);
    *wire = (int)(key & 7);
    switch (*wire) {
    case 0: *iv = rd_varint(r); break;
    case 1: memcpy(dv, r->p, 8); r->p += 8; break;
    case 5: memcpy(fv, r->p, 4); r->p += 4; break;
    case 2: {
        uint64_t n = rd_varint(r);
        assert_true(n <= (uint64_t)(r->end - r->p));
        sub->p = r->p;
        sub->end = r->p + n;
        r->p += n;
        break;
    }
    default: fail_msg("wire type %d", *wire);
    }
    return (int)(key >> 3);
}

typedef struct seen {
    int file_version, scalars, histos;
    float loss;
    double hnum, hmin, hmax, hsum, bucket_total;
    char histo_tag[64];
    int64_t step;
} seen;

static void parse_histo(pbr h, seen *s) {
    int wire;
    uint64_t iv;
    double dv;
    float fv;
    pbr sub;
    int nlim = 0, nb = 0;
    for (int f; (f = rd_field(&h, &wire, &iv, &dv, &fv, &sub));) {
        if (f == 1) s->hmin = dv;
        if (f == 2) s->hmax = dv;
        if (f == 3) s->hnum = dv;
        if (f == 4) s->hsum = dv;
        if (f == 6) nlim = (int)((sub.end - sub.p) / 8);
        if (f == 7) {
            nb = (int)((sub.end - sub.p) / 8);
            for (int i = 0; i < nb; i++) {
                double c;
                memcpy(&c, sub.p + 8 * i, 8);
                s->bucket_total += c;
            }
        }
    }
    assert_int_equal(nlim, nb);
    assert_true(nb >= 1);
}

static void parse_event(const uint8_t *data, size_t n, seen *s) {
    pbr r = {data, data + n}, sub, sub2, sub3;
    int wire;
    uint64_t iv;
    double dv;
    float fv;
    for (int f; (f = rd_field(&r, &wire, &iv, &dv, &fv, &sub));) {
        if (f == 1) assert_true(wire == 1 && dv > 1.7e9);
        if (f == 2) s->step = (int64_t)iv;
        if (f == 3) {
            assert_int_equal(sub.end - sub.p, 13);
            assert_memory_equal(sub.p, "brain.Event:2", 13);
            s->file_version++;
        }
        if (f != 5) continue;
        for (int g; (g = rd_field(&sub, &wire, &iv, &dv, &fv, &sub2));) { /* Summary.value */
            assert_int_equal(g, 1);
            char tag[128] = "";
            for (int h; (h = rd_field(&sub2, &wire, &iv, &dv, &fv, &sub3));) {
                if (h == 1) snprintf(tag, sizeof tag, "%.*s", (int)(sub3.end - sub3.p), sub3.p);
                if (h == 2) {
                    s->scalars++;
                    if (strcmp(tag, "total_loss") == 0) s->loss = fv;
                }
                if (h == 5) {
                    s->histos++;
                    snprintf(s->histo_tag, sizeof s->histo_tag, "%s", tag);
                    parse_histo(sub3, s);
                }
            }
        }
    }
}

static void test_event_file_parses(void **state) {
    (void)state;
    char dir[256];
    tu_make_tmpdir(dir, sizeof dir);
    tb_writer *w;
    sb_err err;
    assert_int_equal(tb_writer_open(&w, dir, &err), 0);
    assert_has(tb_writer_path(w), "/events.out.tfevents.");
    const char *tags[] = {"total_loss", "learning_rate"};
    const float vals[] = {2.5f, 0.01f};
    assert_int_equal(tb_write_scalars(w, 7, tags, vals, 2, &err), 0);
    float x[1000];
    double sum = 0;
    for (int i = 0; i < 1000; i++) sum += x[i] = (float)(i - 500) * 0.01f;
    const char *ht[] = {"net/w"};
    const float *hd[] = {x};
    size_t hc[] = {1000};
    assert_int_equal(tb_write_histograms(w, 7, ht, hd, hc, 1, &err), 0);
    assert_int_equal(tb_writer_flush(w, &err), 0);
    char path[4096];
    snprintf(path, sizeof path, "%s", tb_writer_path(w));
    tb_writer_close(w);

    tfr_reader *r;
    assert_int_equal(tfr_reader_open(path, &r, &err), 0);
    const uint8_t *data;
    size_t n;
    seen s = {0};
    int records = 0, rc;
    while ((rc = tfr_reader_next(r, &data, &n, &err)) == 0) {
        parse_event(data, n, &s);
        records++;
    }
    assert_int_equal(rc, SB_E_NOTFOUND); /* clean end: every CRC held */
    tfr_reader_close(r);
    assert_int_equal(records, 3);
    assert_int_equal(s.file_version, 1);
    assert_int_equal(s.scalars, 2);
    assert_true(s.loss == 2.5f);
    assert_int_equal(s.step, 7);
    assert_int_equal(s.histos, 1);
    assert_string_equal(s.histo_tag, "net/w");
    assert_true(s.hnum == 1000 && s.bucket_total == 1000);
    assert_true(s.hmin == (double)x[0] && s.hmax == (double)x[999]);
    assert_true(fabs(s.hsum - sum) < 1e-6);

    /* the encoder refuses a buffer too small rather than overflowing it */
    uint8_t small[8];
    assert_int_equal(tb_encode_scalars_event(small, sizeof small, 1.8e9, 1, tags, vals, 2), 0);
    tu_remove_tree(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_corruption_detected),
        cmocka_unit_test(test_index_keeps_five),
        cmocka_unit_test(test_event_file_parses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
