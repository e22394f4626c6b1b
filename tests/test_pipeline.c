/* tests/test_pipeline.c — datasets/pipeline.c on tiny LMDB data sets written here with the
 * rec_lmdb_ writer: every record exactly once per epoch under 1..8 preprocessing threads (and
 * the same batches whatever the thread count), shuffling, replicas' disjoint shard subsets,
 * labels_offset, the end of data, corrupt records skipped + counted + named, raw (mnist-like)
 * records, and configuration errors.
 *
 * Each record's label is its global id + 1, so a batch's labels (with labels_offset = 1) name
 * the records it holds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "core/sb.h"
#include "datasets/datasets.h"
#include "datasets/pipeline.h"
#include "models/slim/preprocessing/preprocessing.h"
#include "tests/support/testutil.h"

enum rec_kind { REC_JPEG, REC_RAW_GRAY, REC_NOT_EXAMPLE, REC_TRUNCATED_JPEG, REC_NO_LABEL,
                REC_BAD_RAW, REC_KIND_COUNT };

static uint8_t *make_jpeg(int h, int w, int id, size_t *n) {
    uint8_t *px = malloc((size_t)h * w * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                px[((size_t)y * w + x) * 3 + c] =
                    (uint8_t)(40 + (x * 5 + y * 3 + id * 17 + c * 60) % 180);
    tjhandle tj = tjInitCompress();
    unsigned char *jpeg = NULL;
    unsigned long sz = 0;
    assert_int_equal(tjCompress2(tj, px, w, 0, h, TJPF_RGB, &jpeg, &sz, TJSAMP_420, 90, 0), 0);
    tjDestroy(tj);
    uint8_t *out = malloc(sz);
    memcpy(out, jpeg, sz);
    tjFree(jpeg);
    free(px);
    *n = sz;
    return out;
}

/* Append one record of the given kind with label id + 1. */
static void put_record(rec_lmdb_writer *w, enum rec_kind kind, int id) {
    ex_builder b;
    ex_buf out;
    ex_builder_init(&b);
    ex_buf_init(&out);
    sb_err e;
    uint8_t *enc = NULL;
    size_t enc_n = 0;
    ex_image img = {0};
    img.label = id + 1;
    img.colorspace = "RGB";
    switch (kind) {
    case REC_JPEG:
    case REC_TRUNCATED_JPEG:
        img.height = 30 + id % 7;
        img.width = 40 + id % 5;
        img.channels = 3;
        enc = make_jpeg(img.height, img.width, id, &enc_n);
        if (kind == REC_TRUNCATED_JPEG) enc_n /= 2;
        img.format = "JPEG";
        if (id % 2 == 0) { /* one object box on even records */
            static const float y0 = 0.2f, x0 = 0.1f, y1 = 0.7f, x1 = 0.5f;
            img.ymin = &y0;
            img.xmin = &x0;
            img.ymax = &y1;
            img.xmax = &x1;
            img.n_boxes = 1;
        }
        break;
    case REC_RAW_GRAY:
    case REC_BAD_RAW:
        img.height = img.width = 28;
        img.channels = 1;
        img.colorspace = "Grayscale";
        enc_n = 28 * 28 - (kind == REC_BAD_RAW ? 5 : 0);
        enc = malloc(28 * 28);
        for (int i = 0; i < 28 * 28; i++) enc[i] = (uint8_t)((i + id * 3) & 0xff);
        img.format = "raw";
        break;
    case REC_NOT_EXAMPLE: {
        uint8_t junk[40];
        for (int i = 0; i < 40; i++) junk[i] = (uint8_t)(0xff - i);
        assert_int_equal(rec_lmdb_writer_put(w, junk, sizeof junk, &e), 0);
        ex_builder_fini(&b);
        ex_buf_fini(&out);
        return;
    }
    case REC_NO_LABEL: {
        enc = make_jpeg(20, 20, id, &enc_n);
        const uint8_t *pe = enc;
        ex_builder_add_bytes(&b, "image/encoded", &pe, &enc_n, 1);
        ex_builder_add_string(&b, "image/format", "JPEG");
        ex_builder_encode(&b, &out);
        assert_int_equal(rec_lmdb_writer_put(w, out.data, out.len, &e), 0);
        free(enc);
        ex_builder_fini(&b);
        ex_buf_fini(&out);
        return;
    }
    default:
        fail();
    }
    img.encoded = enc;
    img.encoded_len = enc_n;
    ex_encode_image(&img, &b, &out);
    assert_int_equal(rec_lmdb_writer_put(w, out.data, out.len, &e), 0);
    free(enc);
    ex_builder_fini(&b);
    ex_buf_fini(&out);
}

/* n_shards shards of per_shard records each; record j of shard s has id s * per_shard + j.
 * kind_of(id) picks its kind (NULL: all JPEG). */
static void write_dataset(const char *dir, const char *split, int n_shards, int per_shard,
                          enum rec_kind (*kind_of)(int id)) {
    for (int s = 0; s < n_shards; s++) {
        char path[512];
        dsf_shard_path(path, sizeof path, dir, split, s, n_shards);
        rec_lmdb_writer *w;
        sb_err e;
        assert_int_equal(rec_lmdb_writer_open(path, NULL, &w, &e), 0);
        for (int j = 0; j < per_shard; j++) {
            int id = s * per_shard + j;
            put_record(w, kind_of ? kind_of(id) : REC_JPEG, id);
        }
        assert_int_equal(rec_lmdb_writer_commit(w, &e), 0);
    }
}

static pipe_config base_config(const char *dir, int batch, int threads) {
    pipe_config c = {0};
    c.dataset_dir = dir;
    c.dataset_name = "imagenet";
    c.split_name = "train";
    c.batch_size = batch;
    c.image_size = 24;
    c.model_name = "vgg_16";
    c.is_training = 1;
    c.num_readers = 3;
    c.num_preprocessing_threads = threads;
    c.shuffle = 1;
    c.seed = 42;
    c.labels_offset = 1;
    c.num_epochs = 2;
    return c;
}

/* Run to PIPE_END; labels[] gets every delivered label in order, images are hashed. */
static size_t drain(const pipe_config *c, int32_t *labels, size_t cap, uint64_t *hash,
                    pipe_stats_t *st) {
    pipe_t *p;
    sb_err e;
    int rc = pipe_create(&p, c, &e);
    if (rc) fail_msg("pipe_create: %s", e.msg);
    const size_t elems = (size_t)c->batch_size * c->image_size * c->image_size * pipe_channels(p);
    float *img = malloc(elems * sizeof(float));
    int32_t *lab = malloc((size_t)c->batch_size * sizeof(int32_t));
    size_t n = 0;
    uint64_t h = 1469598103934665603ull;
    for (;;) {
        double wait = -1;
        rc = pipe_next(p, img, lab, &wait, &e);
        if (rc == PIPE_END) break;
        if (rc) fail_msg("pipe_next: %s", e.msg);
        assert_true(wait >= 0);
        for (int i = 0; i < c->batch_size; i++) {
            assert_true(n < cap);
            labels[n++] = lab[i];
        }
        const uint8_t *b = (const uint8_t *)img;
        for (size_t i = 0; i < elems * sizeof(float); i++) h = (h ^ b[i]) * 1099511628211ull;
    }
    /* PIPE_END again: the pipeline stays ended */
    assert_int_equal(pipe_next(p, img, lab, NULL, &e), PIPE_END);
    if (hash) *hash = h;
    if (st) pipe_stats(p, st);
    pipe_destroy(p);
    free(img);
    free(lab);
    return n;
}

/* Every id in [0, total) exactly once among labels[from, from + total - missing), ids not
 * delivered counted in *missing. */
static void check_epoch(const int32_t *labels, size_t n, int total, int *missing) {
    int *seen = calloc((size_t)total, sizeof(int));
    for (size_t i = 0; i < n; i++) {
        assert_true(labels[i] >= 0 && labels[i] < total);
        seen[labels[i]]++;
        if (seen[labels[i]] > 1) fail_msg("record %d delivered twice in one epoch", labels[i]);
    }
    int m = 0;
    for (int i = 0; i < total; i++) m += !seen[i];
    *missing = m;
    free(seen);
}

static void test_every_record_once_per_epoch(void **state) {
    (void)state;
    char dir[256];
    tu_make_tmpdir(dir, sizeof dir);
    const int shards = 4, per = 13, total = shards * per;
    write_dataset(dir, "train", shards, per, NULL);
    uint64_t hash1 = 0;
    int32_t first_epoch_1[52];
    for (int threads = 1; threads <= 8; threads++) {
        pipe_config c = base_config(dir, 5, threads);
        int32_t labels[200];
        uint64_t hash;
        pipe_stats_t st;
        size_t n = drain(&c, labels, 200, &hash, &st);
        /* 2 epochs of 52 = 104 records: 20 batches of 5, 4 dropped */
        assert_int_equal(n, 100);
        assert_int_equal(st.dropped, 4);
        assert_int_equal(st.delivered, 104 - 4);
        assert_int_equal(st.corrupt, 0);
        assert_int_equal(st.epochs, 2);
        assert_int_equal(st.batches, 20);
        int missing;
        check_epoch(labels, total, total, &missing);
        assert_int_equal(missing, 0);
        check_epoch(labels + total, n - total, total, &missing);
        assert_int_equal(missing, 4);
        if (threads == 1) {
            hash1 = hash;
            memcpy(first_epoch_1, labels, sizeof first_epoch_1);
            /* shuffled: not the writing order, and epoch 2 differs from epoch 1 */
            int in_order = 0, same = 0;
            for (int i = 0; i < total; i++) {
                in_order += labels[i] == i;
                same += labels[i] == labels[total + i];
            }
            assert_true(in_order < total / 2);
            assert_true(same < total / 2);
        } else {
            /* the same batches, pixel for pixel, whatever the thread count */
            assert_memory_equal(labels, first_epoch_1, sizeof first_epoch_1);
            assert_true(hash == hash1);
        }
    }
    /* another seed, another order */
    pipe_config c = base_config(dir, 4, 2);
    c.seed = 43;
    int32_t labels[200];
    size_t n = drain(&c, labels, 200, NULL, NULL);
    assert_int_equal(n, 104);
    assert_true(memcmp(labels, first_epoch_1, sizeof first_epoch_1) != 0);
    tu_remove_tree(dir);
}

static void test_unshuffled_order_and_eval(void **state) {
    (void)state;
    char dir[256];
    tu_make_tmpdir(dir, sizeof dir);
    write_dataset(dir, "validation", 3, 5, NULL);
    /* no shuffle, one reader: shard by shard, key order */
    pipe_config c = base_config(dir, 3, 4);
    c.split_name = "validation";
    c.shuffle = 0;
    c.num_readers = 1;
    c.is_training = 0;
    c.num_epochs = 1;
    int32_t labels[64];
    size_t n = drain(&c, labels, 64, NULL, NULL);
    assert_int_equal(n, 15);
    for (int i = 0; i < 15; i++) assert_int_equal(labels[i], i);
    /* two readers interleave two shards round robin, then the third */
    c.num_readers = 2;
    n = drain(&c, labels, 64, NULL, NULL);
    const int32_t want[15] = {0, 5, 1, 6, 2, 7, 3, 8, 4, 9, 10, 11, 12, 13, 14};
    assert_int_equal(n, 15);
    assert_memory_equal(labels, want, sizeof want);
    /* labels_offset 0 gives the stored label */
    c.labels_offset = 0;
    c.num_readers = 1;
    n = drain(&c, labels, 64, NULL, NULL);
    for (int i = 0; i < 15; i++) assert_int_equal(labels[i], i + 1);

    /* the eval image is vgg's eval preprocessing of the record, computed directly */
    c.batch_size = 1;
    c.num_epochs = 0;
    pipe_t *p;
    sb_err e;
    assert_int_equal(pipe_create(&p, &c, &e), 0);
    assert_int_equal(pipe_epoch_size(p), 15);
    float got[24 * 24 * 3], ref[24 * 24 * 3];
    int32_t lab;
    assert_int_equal(pipe_next(p, got, &lab, NULL, &e), 0);
    pipe_destroy(p);
    size_t jn;
    uint8_t *jpeg = make_jpeg(30, 40, 0, &jn);
    img_decoder *d;
    assert_int_equal(img_decoder_create(&d, &e), 0);
    uint8_t *buf = NULL;
    size_t cap = 0;
    int h, w;
    prep_spec s = {PREP_KIND_VGG, 0, 24, 24};
    prep_params pp;
    prep_rng r;
    prep_rng_seed(&r, 0, 0, 0, 0);
    prep_sample(&s, 30, 40, NULL, 0, &r, &pp);
    int rh, rw, th, tw, num, den;
    prep_needed(&s, 30, 40, &pp, &rh, &rw, &th, &tw);
    img_pick_scale(rh, rw, th, tw, &num, &den);
    assert_int_equal(num, den); /* 30 x 40 upsampled to 256: full-size decode */
    assert_int_equal(img_decode_jpeg(d, jpeg, jn, 1, 1, 3, &buf, &cap, &h, &w, &e), 0);
    void *work = malloc(prep_workspace_size(&s, 3));
    prep_apply(ref, buf, h, w, 3, 30, 40, 1, 1, &s, &pp, work);
    assert_memory_equal(got, ref, sizeof ref);
    free(work);
    free(buf);
    free(jpeg);
    img_decoder_destroy(d);
    tu_remove_tree(dir);
}

static void test_replicas_disjoint(void **state) {
    (void)state;
    char dir[256];
    tu_make_tmpdir(dir, sizeof dir);
    const int shards = 5, per = 4, total = shards * per;
    write_dataset(dir, "train", shards, per, NULL);
    int *seen = calloc(total, sizeof(int));
    for (int rank = 0; rank < 3; rank++) {
        pipe_config c = base_config(dir, 2, 2);
        c.replica_rank = rank;
        c.replica_count = 3;
        c.num_epochs = 1;
        int32_t labels[64];
        pipe_stats_t st;
        size_t n = drain(&c, labels, 64, NULL, &st);
        /* shards rank, rank + 3: 8, 8, 4 records */
        size_t want = rank < 2 ? 8 : 4;
        assert_int_equal(n, want);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(labels[i] / per % 3, rank);
            seen[labels[i]]++;
        }
    }
    for (int i = 0; i < total; i++) assert_int_equal(seen[i], 1);
    free(seen);
    /* more replicas than shards: a replica without shards is a usage error */
    pipe_config c = base_config(dir, 2, 1);
    c.replica_rank = 6;
    c.replica_count = 7;
    pipe_t *p;
    sb_err e;
    assert_int_equal(pipe_create(&p, &c, &e), SB_E_USAGE);
    assert_null(p);
    assert_non_null(strstr(e.msg, "replica 6 of 7"));
    tu_remove_tree(dir);
}

static enum rec_kind corrupt_kind(int id) {
    switch (id) {
    case 3: return REC_NOT_EXAMPLE;
    case 8: return REC_TRUNCATED_JPEG;
    case 12: return REC_NO_LABEL;
    case 17: return REC_BAD_RAW;
    default: return REC_JPEG;
    }
}

static void test_corrupt_records_skipped(void **state) {
    (void)state;
    char dir[256];
    tu_make_tmpdir(dir, sizeof dir);
    write_dataset(dir, "train", 2, 10, corrupt_kind);
    /* capture the warnings */
    char log[512];
    snprintf(log, sizeof log, "%s/stderr.txt", dir);
    fflush(stderr);
    int saved = dup(2);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    dup2(fd, 2);
    close(fd);
    for (int threads = 1; threads <= 4; threads += 3) {
        pipe_config c = base_config(dir, 4, threads);
        c.num_epochs = 3;
        int32_t labels[128];
        pipe_stats_t st;
        size_t n = drain(&c, labels, 128, NULL, &st);
        /* 16 good records a epoch, 48 in all: 12 batches of 4 */
        assert_int_equal(n, 48);
        assert_int_equal(st.corrupt, 12);
        assert_int_equal(st.records, 60);
        assert_int_equal(st.dropped, 0);
        for (size_t i = 0; i < n; i++)
            assert_true(labels[i] != 3 && labels[i] != 8 && labels[i] != 12 && labels[i] != 17);
        int missing;
        check_epoch(labels, 16, 20, &missing);
        assert_int_equal(missing, 4);
    }
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char *text;
    size_t tn;
    sb_err e;
    assert_int_equal(sb_read_file(log, &text, &tn, &e), 0);
    /* the warning names the shard and the key */
    assert_non_null(strstr(text, "record 0000000003 of shard"));
    assert_non_null(strstr(text, "train-00000-of-00002"));
    assert_non_null(strstr(text, "record 0000000008 of shard"));
    assert_non_null(strstr(text, "record 0000000007 of shard")); /* id 17 = shard 1 key 7 */
    assert_non_null(strstr(text, "train-00001-of-00002"));
    assert_non_null(strstr(text, "image/class/label"));
    free(text);
    tu_remove_tree(dir);
}

static enum rec_kind gray_kind(int id) {
    (void)id;
    return REC_RAW_GRAY;
}

static void test_raw_records_lenet(void **state) {
    (void)state;
    char dir[256];
    tu_make_tmpdir(dir, sizeof dir);
    write_dataset(dir, "train", 1, 6, gray_kind);
    pipe_config c = base_config(dir, 2, 2);
    c.dataset_name = "mnist";
    c.model_name = "lenet";
    c.image_size = 28;
    c.shuffle = 0;
    c.num_epochs = 1;
    pipe_t *p;
    sb_err e;
    assert_int_equal(pipe_create(&p, &c, &e), 0);
    assert_int_equal(pipe_channels(p), 1);
    float img[2 * 28 * 28];
    int32_t lab[2];
    assert_int_equal(pipe_next(p, img, lab, NULL, &e), 0);
    assert_int_equal(lab[0], 0);
    assert_int_equal(lab[1], 1);
    for (int i = 0; i < 28 * 28; i++) {
        assert_true(img[i] == ((float)((i + 0 * 3) & 0xff) - 128.0f) / 128.0f);
        assert_true(img[28 * 28 + i] == ((float)((i + 1 * 3) & 0xff) - 128.0f) / 128.0f);
    }
    pipe_destroy(p);
    /* grey raw records for a 3-channel net: replicated */
    c.dataset_name = NULL;
    c.model_name = "cifarnet";
    c.image_size = 28;
    assert_int_equal(pipe_create(&p, &c, &e), 0);
    assert_int_equal(pipe_channels(p), 3);
    float img3[2 * 28 * 28 * 3];
    assert_int_equal(pipe_next(p, img3, lab, NULL, &e), 0);
    for (int i = 0; i < 28 * 28; i++)
        assert_true(img3[3 * i] == img3[3 * i + 1] && img3[3 * i] == img3[3 * i + 2]);
    pipe_destroy(p);
    tu_remove_tree(dir);
}

static void test_inception_and_bboxes(void **state) {
    (void)state;
    char dir[256];
    tu_make_tmpdir(dir, sizeof dir);
    write_dataset(dir, "train", 2, 6, NULL);
    pipe_config c = base_config(dir, 4, 3);
    c.model_name = "inception_v3";
    c.image_size = 16;
    c.use_bboxes = 1;
    int32_t labels[64];
    pipe_stats_t st;
    size_t n = drain(&c, labels, 64, NULL, &st);
    assert_int_equal(n, 24);
    int missing;
    check_epoch(labels, 12, 12, &missing);
    assert_int_equal(missing, 0);
    /* outputs in [-1, 1] */
    pipe_t *p;
    sb_err e;
    assert_int_equal(pipe_create(&p, &c, &e), 0);
    float img[4 * 16 * 16 * 3];
    int32_t lab[4];
    assert_int_equal(pipe_next(p, img, lab, NULL, &e), 0);
    for (size_t i = 0; i < SB_ARRAY_LEN(img); i++) assert_true(img[i] >= -1.0f && img[i] <= 1.0f);
    pipe_destroy(p);
    tu_remove_tree(dir);
}

static void test_config_errors(void **state) {
    (void)state;
    char dir[256];
    tu_make_tmpdir(dir, sizeof dir);
    pipe_t *p;
    sb_err e;
    pipe_config c = base_config(dir, 4, 1);
    assert_int_equal(pipe_create(&p, &c, &e), SB_E_NOTFOUND); /* no shards */
    assert_null(p);
    assert_non_null(strstr(e.msg, "train-"));
    write_dataset(dir, "train", 1, 2, NULL);
    c.image_size = 300;
    assert_int_equal(pipe_create(&p, &c, &e), SB_E_USAGE);
    assert_non_null(strstr(e.msg, "vgg_preprocessing"));
    c.image_size = 24;
    c.model_name = "alexnet";
    assert_int_equal(pipe_create(&p, &c, &e), SB_E_USAGE);
    assert_non_null(strstr(e.msg, "alexnet"));
    c.preprocessing_name = "cifarnet";
    assert_int_equal(pipe_create(&p, &c, &e), 0);
    pipe_destroy(p);
    c.batch_size = 0;
    assert_int_equal(pipe_create(&p, &c, &e), SB_E_USAGE);
    assert_non_null(strstr(e.msg, "batch_size"));
    pipe_destroy(NULL);
    tu_remove_tree(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_record_once_per_epoch),
        cmocka_unit_test(test_unshuffled_order_and_eval),
        cmocka_unit_test(test_replicas_disjoint),
        cmocka_unit_test(test_corrupt_records_skipped),
        cmocka_unit_test(test_raw_records_lenet),
        cmocka_unit_test(test_inception_and_bboxes),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
