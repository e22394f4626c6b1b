/* tests/test_datasets_records.c — datasets/ record layers: CRC-32C (RFC 3720 vectors, a bitwise
 * reference at every alignment), SHA-256 (FIPS vectors), the Example codec (hand-built wire
 * bytes, packed and unpacked lists, protobuf merge rules, malformed input with offsets, a
 * mutation loop that must never crash), TFRecord (known bytes, corruption and truncation with
 * offsets), LMDB shards (order, random access, map growth from a tiny map), dataset factory and
 * labels.txt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/sb.h"
#include "datasets/datasets.h"
#include "tests/support/testutil.h"

/* ---------------------------------------------------------------------------------------------
 * CRC-32C and SHA-256
 * ------------------------------------------------------------------------------------------- */

static uint32_t crc_bitwise(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (c & 1 ? 0x82F63B78u : 0);
    }
    return ~c;
}

static void test_crc32c_vectors(void **state) {
    (void)state;
    assert_int_equal(crc32c("123456789", 9), 0xE3069283u);
    assert_int_equal(crc32c("", 0), 0);
    uint8_t b[48];
    /* RFC 3720 B.4 */
    memset(b, 0, 32);
    assert_int_equal(crc32c(b, 32), 0x8A9136AAu);
    memset(b, 0xff, 32);
    assert_int_equal(crc32c(b, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++) b[i] = (uint8_t)i;
    assert_int_equal(crc32c(b, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++) b[i] = (uint8_t)(31 - i);
    assert_int_equal(crc32c(b, 32), 0x113FDB5Cu);
    static const uint8_t pdu[48] = {
        0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
        0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    assert_int_equal(crc32c(pdu, 48), 0xD9963A56u);
    /* every alignment and length against the bitwise definition, and extend == one shot */
    uint8_t big[300];
    for (int i = 0; i < 300; i++) big[i] = (uint8_t)(i * 131 + 7);
    for (size_t start = 0; start < 9; start++)
        for (size_t n = 0; n + start <= 300; n += 7) {
            assert_int_equal(crc32c(big + start, n), crc_bitwise(big + start, n));
            size_t h = n / 3;
            assert_int_equal(crc32c_extend(crc32c(big + start, h), big + start + h, n - h),
                             crc32c(big + start, n));
        }
    for (uint32_t x = 1; x < 0xF0000000u; x = x * 3 + 17)
        assert_int_equal(crc32c_unmask(crc32c_mask(x)), x);
}

static void hex(const uint8_t *d, size_t n, char *out) {
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", d[i]);
}

static void sha_of(const void *p, size_t n, size_t chunk, char out[65]) {
    dl_sha256 s;
    dl_sha256_init(&s);
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i += chunk) dl_sha256_update(&s, b + i, SB_MIN(chunk, n - i));
    uint8_t d[32];
    dl_sha256_final(&s, d);
    hex(d, 32, out);
}

static void test_sha256_vectors(void **state) {
    (void)state;
    char h[65];
    sha_of("", 0, 1, h);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha_of("abc", 3, 1, h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    for (size_t chunk = 1; chunk < 70; chunk += 13) {
        sha_of(m, strlen(m), chunk, h);
        assert_string_equal(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    }
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    sha_of(a, 1000000, 4099, h);
    assert_string_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    /* the file variant */
    char dir[256], path[512];
    tu_make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/a", dir);
    sb_err e;
    assert_int_equal(sb_atomic_write(path, a, 1000000, &e), 0);
    assert_int_equal(dl_sha256_file(path, h, &e), 0);
    assert_string_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);
    tu_remove_tree(dir);
}

/* ---------------------------------------------------------------------------------------------
 * Example codec
 * ------------------------------------------------------------------------------------------- */

static void test_example_known_bytes(void **state) {
    (void)state;
    /* Example{features{feature{key:"a" value{int64_list{value:[1]}}}}}, as protobuf writes it */
    static const uint8_t want[] = {0x0a, 0x0c, 0x0a, 0x0a, 0x0a, 0x01, 'a', 0x12, 0x05,
                                   0x1a, 0x03, 0x0a, 0x01, 0x01};
    ex_builder b;
    ex_buf out;
    ex_builder_init(&b);
    ex_buf_init(&out);
    int64_t one = 1;
    ex_builder_add_int64(&b, "a", &one, 1);
    ex_builder_encode(&b, &out);
    assert_int_equal(out.len, sizeof want);
    assert_memory_equal(out.data, want, sizeof want);
    /* empty lists keep their kind: Feature{float_list{}} */
    ex_builder_reset(&b);
    ex_builder_add_float(&b, "f", NULL, 0);
    ex_builder_encode(&b, &out);
    static const uint8_t want_empty[] = {0x0a, 0x09, 0x0a, 0x07, 0x0a, 0x01, 'f', 0x12, 0x02,
                                         0x12, 0x00};
    assert_int_equal(out.len, sizeof want_empty);
    assert_memory_equal(out.data, want_empty, sizeof want_empty);
    ex_example ex;
    ex_init(&ex);
    sb_err e;
    assert_int_equal(ex_decode(&ex, out.data, out.len, &e), 0);
    size_t cnt = 9;
    assert_int_equal(ex_get_float(&ex, "f", NULL, 0, &cnt), 0);
    assert_int_equal(cnt, 0);
    assert_int_equal(ex_get_int64(&ex, "f", NULL, 0, &cnt), SB_E_FORMAT);
    assert_int_equal(ex_get_int64(&ex, "g", NULL, 0, &cnt), SB_E_NOTFOUND);
    ex_fini(&ex);
    ex_buf_fini(&out);
    ex_builder_fini(&b);
}

static void test_example_image_round_trip(void **state) {
    (void)state;
    uint8_t jpeg[3000];
    for (size_t i = 0; i < sizeof jpeg; i++) jpeg[i] = (uint8_t)(i * 7);
    float xmin[2] = {0.1f, 0.2f}, ymin[2] = {0.3f, 0.4f}, xmax[2] = {0.5f, 0.6f},
          ymax[2] = {0.7f, -0.0f};
    ex_image img = {jpeg, sizeof jpeg, "JPEG", "RGB", 3, 375, 500, 449,
                    "n01440764", "tench, Tinca tinca", "n01440764_10026.JPEG",
                    xmin, ymin, xmax, ymax, 2};
    ex_builder b;
    ex_buf out, again;
    ex_builder_init(&b);
    ex_buf_init(&out);
    ex_buf_init(&again);
    ex_encode_image(&img, &b, &out);
    ex_encode_image(&img, &b, &again); /* deterministic */
    assert_int_equal(out.len, again.len);
    assert_memory_equal(out.data, again.data, out.len);

    ex_example ex;
    ex_init(&ex);
    sb_err e;
    assert_int_equal(ex_decode(&ex, out.data, out.len, &e), 0);
    assert_int_equal(ex.count, 15);
    const uint8_t *p;
    size_t n;
    assert_int_equal(ex_get_bytes(&ex, "image/encoded", 0, &p, &n), 0);
    assert_int_equal(n, sizeof jpeg);
    assert_memory_equal(p, jpeg, n);
    assert_true(p >= out.data && p < out.data + out.len); /* borrowed, not copied */
    assert_int_equal(ex_get_bytes(&ex, "image/encoded", 1, &p, &n), SB_E_NOTFOUND);
    assert_int_equal(ex_get_bytes(&ex, "image/class/text", 0, &p, &n), 0);
    assert_int_equal(n, strlen("tench, Tinca tinca"));
    assert_memory_equal(p, "tench, Tinca tinca", n);
    int64_t v[4];
    size_t cnt;
    assert_int_equal(ex_get_int64(&ex, "image/class/label", v, 4, &cnt), 0);
    assert_int_equal(cnt, 1);
    assert_int_equal(v[0], 449);
    assert_int_equal(ex_get_int64(&ex, "image/height", v, 4, &cnt), 0);
    assert_int_equal(v[0], 375);
    assert_int_equal(ex_get_int64(&ex, "image/object/bbox/label", v, 4, &cnt), 0);
    assert_int_equal(cnt, 2);
    assert_int_equal(v[1], 449);
    float f[4];
    assert_int_equal(ex_get_float(&ex, "image/object/bbox/ymax", f, 1, &cnt), 0);
    assert_int_equal(cnt, 2); /* the count even when cap is smaller */
    assert_true(f[0] == 0.7f);
    assert_int_equal(ex_get_float(&ex, "image/object/bbox/xmin", f, 4, &cnt), 0);
    assert_true(f[0] == 0.1f && f[1] == 0.2f);
    ex_fini(&ex);
    ex_buf_fini(&out);
    ex_buf_fini(&again);
    ex_builder_fini(&b);
}

static void test_example_unpacked_unknown_and_merge(void **state) {
    (void)state;
    /* hand-built: an unknown top-level field, an unpacked int64 list with a negative value, an
     * unpacked float list, a bytes list split over two BytesList fields, a key given twice (the
     * later wins), a oneof switched from bytes to int64, unknown fields inside Features and
     * lists */
    static const uint8_t msg[] = {
        0x10, 0x96, 0x01, /* unknown field 2, varint 150 */
        0x0a, 0x6b,       /* features, 107 bytes */
        /* entry "i": int64_list unpacked [3, -1, 300] */
        0x0a, 0x19, 0x0a, 0x01, 'i', 0x12, 0x14, 0x1a, 0x12, 0x08, 0x03, 0x08, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x08, 0xac, 0x02, 0x20, 0x05,
        /* entry "f": float_list unpacked [1.0, 2.5] (fixed32) */
        0x0a, 0x13, 0x0a, 0x01, 'f', 0x12, 0x0e, 0x12, 0x0c, 0x0d, 0x00, 0x00, 0x80, 0x3f, 0x28,
        0x07, 0x0d, 0x00, 0x00, 0x20, 0x40,
        /* entry "b": bytes_list "x" then bytes_list "yz": merged to ["x", "yz"] */
        0x0a, 0x12, 0x0a, 0x01, 'b', 0x12, 0x0d, 0x0a, 0x03, 0x0a, 0x01, 'x', 0x0a, 0x04, 0x0a,
        0x02, 'y', 'z', 0x20, 0x01,
        /* entry "b" again with bytes ["w"]: overrides */
        0x0a, 0x0c, 0x0a, 0x01, 'b', 0x12, 0x07, 0x0a, 0x05, 0x0a, 0x01, 'w', 0x30, 0x00,
        /* entry "o": bytes_list ["q"] then int64_list packed [7, 8]: int64 wins */
        0x0a, 0x12, 0x0a, 0x01, 'o', 0x12, 0x0d, 0x0a, 0x03, 0x0a, 0x01, 'q', 0x1a, 0x04, 0x0a,
        0x02, 0x07, 0x08, 0x50, 0x01,
        /* entry with no value: empty Feature under key "n" */
        0x0a, 0x03, 0x0a, 0x01, 'n',
    };
    assert_int_equal(sizeof msg, 5 + 107);
    ex_example ex;
    ex_init(&ex);
    sb_err e;
    sb_err_clear(&e);
    int rc = ex_decode(&ex, msg, sizeof msg, &e);
    if (rc) fail_msg("%s", e.msg);
    int64_t v[4];
    size_t cnt;
    assert_int_equal(ex_get_int64(&ex, "i", v, 4, &cnt), 0);
    assert_int_equal(cnt, 3);
    assert_int_equal(v[0], 3);
    assert_int_equal(v[1], -1);
    assert_int_equal(v[2], 300);
    float f[2];
    assert_int_equal(ex_get_float(&ex, "f", f, 2, &cnt), 0);
    assert_int_equal(cnt, 2);
    assert_true(f[0] == 1.0f && f[1] == 2.5f);
    const uint8_t *p;
    size_t n;
    assert_int_equal(ex_get_bytes(&ex, "b", 0, &p, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(p[0], 'w');
    assert_int_equal(ex_find(&ex, "b")->count, 1);
    assert_int_equal(ex_get_int64(&ex, "o", v, 4, &cnt), 0);
    assert_int_equal(cnt, 2);
    assert_int_equal(v[1], 8);
    assert_int_equal(ex_get_bytes(&ex, "o", 0, &p, &n), SB_E_FORMAT);
    assert_int_equal(ex_find(&ex, "n")->kind, EX_KIND_NONE);
    /* the merged list before it was overridden: decode only the first "b" entry */
    static const uint8_t first_b[] = {0x0a, 0x14, 0x0a, 0x12, 0x0a, 0x01, 'b', 0x12, 0x0d, 0x0a,
                                      0x03, 0x0a, 0x01, 'x', 0x0a, 0x04, 0x0a, 0x02, 'y', 'z',
                                      0x20, 0x01};
    assert_int_equal(ex_decode(&ex, first_b, sizeof first_b, &e), 0);
    assert_int_equal(ex_get_bytes(&ex, "b", 1, &p, &n), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(p, "yz", 2);
    ex_fini(&ex);
}

static void expect_corrupt(const uint8_t *m, size_t n, const char *needle) {
    ex_example ex;
    ex_init(&ex);
    sb_err e;
    sb_err_clear(&e);
    int rc = ex_decode(&ex, m, n, &e);
    if (rc != SB_E_CORRUPT) fail_msg("expected SB_E_CORRUPT (%s), got %d", needle, rc);
    if (!strstr(e.msg, needle)) fail_msg("message \"%s\" lacks \"%s\"", e.msg, needle);
    ex_fini(&ex);
}

static void test_example_malformed(void **state) {
    (void)state;
    static const uint8_t trunc_varint[] = {0x0a, 0x80};
    expect_corrupt(trunc_varint, sizeof trunc_varint, "truncated varint at byte 1");
    static const uint8_t past_end[] = {0x0a, 0x05, 0x0a, 0x01};
    expect_corrupt(past_end, sizeof past_end, "length 5 at byte 1 runs past the end");
    static const uint8_t wrong_wt[] = {0x08, 0x01}; /* Example.features as a varint */
    expect_corrupt(wrong_wt, sizeof wrong_wt, "field 1 of Example has wire type 0 at byte 0");
    /* Feature.int64_list as fixed32, inside: byte offset 9 */
    static const uint8_t wrong_inner[] = {0x0a, 0x0b, 0x0a, 0x09, 0x0a, 0x01, 'a',
                                          0x12, 0x04, 0x1d, 0x00, 0x00, 0x00};
    expect_corrupt(wrong_inner, sizeof wrong_inner - 1, "runs past the end");
    static const uint8_t wrong_inner2[] = {0x0a, 0x0c, 0x0a, 0x0a, 0x0a, 0x01, 'a', 0x12,
                                           0x05, 0x1d, 0x00, 0x00, 0x00, 0x00};
    expect_corrupt(wrong_inner2, sizeof wrong_inner2, "field 3 of Feature has wire type 5 at byte 9");
    static const uint8_t odd_floats[] = {0x0a, 0x0c, 0x0a, 0x0a, 0x0a, 0x01, 'a', 0x12,
                                         0x05, 0x12, 0x03, 0x0a, 0x01, 0x00};
    expect_corrupt(odd_floats, sizeof odd_floats, "packed float list of 1 bytes");
    static const uint8_t long_varint[] = {0x10, 0xff, 0xff, 0xff, 0xff, 0xff,
                                          0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    expect_corrupt(long_varint, sizeof long_varint, "byte 1");
    static const uint8_t bad_group[] = {0x1b, 0x08, 0x01, 0x24}; /* group 3 closed as 4 */
    expect_corrupt(bad_group, sizeof bad_group, "closes group 3");
    /* a well-formed group in an unknown field is skipped */
    static const uint8_t good_group[] = {0x1b, 0x08, 0x01, 0x1c, 0x0a, 0x00};
    ex_example ex;
    ex_init(&ex);
    assert_int_equal(ex_decode(&ex, good_group, sizeof good_group, NULL), 0);
    ex_fini(&ex);
}

/* Mutate a valid Example many ways; decoding must return 0 or SB_E_CORRUPT, and whatever
 * decodes must be readable through every accessor (ASan/UBSan builds catch overruns). */
static void test_example_mutation_loop(void **state) {
    (void)state;
    uint8_t pix[64];
    for (int i = 0; i < 64; i++) pix[i] = (uint8_t)i;
    float box[1] = {0.5f};
    ex_image img = {pix, sizeof pix, "raw", "Grayscale", 1, 8, 8, 3, "s", "t", "f.png",
                    box, box, box, box, 1};
    ex_builder b;
    ex_buf good;
    ex_builder_init(&b);
    ex_buf_init(&good);
    ex_encode_image(&img, &b, &good);
    uint8_t *m = malloc(good.len + 16);
    uint64_t rng = 88172645463325252ull;
    int decoded = 0, rejected = 0;
    ex_example ex;
    ex_init(&ex);
    for (int it = 0; it < 30000; it++) {
        memcpy(m, good.data, good.len);
        size_t n = good.len;
        int edits = 1 + (int)(rng % 4);
        for (int k = 0; k < edits; k++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            size_t at = (size_t)(rng >> 8) % n;
            switch (rng % 5) {
            case 0: m[at] ^= (uint8_t)(1u << (rng >> 40) % 8); break;
            case 1: m[at] = (uint8_t)(rng >> 32); break;
            case 2: n = at + 1; break;
            case 3: m[at] = 0xff; break;
            default: m[at] = 0x80; break;
            }
        }
        uint8_t *exact = malloc(n); /* exact-size copy so ASan sees any overread */
        memcpy(exact, m, n);
        int rc = ex_decode(&ex, exact, n, NULL);
        assert_true(rc == 0 || rc == SB_E_CORRUPT);
        if (rc == 0) {
            decoded++;
            for (size_t i = 0; i < ex.count; i++) {
                char key[64];
                size_t kl = SB_MIN(ex.features[i].key_len, sizeof key - 1);
                memcpy(key, ex.features[i].key, kl);
                key[kl] = '\0';
                if (memchr(key, 0, kl)) continue;
                const uint8_t *p;
                size_t pn, cnt;
                int64_t iv[8];
                float fv[8];
                for (size_t j = 0; j < 3; j++) (void)ex_get_bytes(&ex, key, j, &p, &pn);
                (void)ex_get_int64(&ex, key, iv, 8, &cnt);
                (void)ex_get_float(&ex, key, fv, 8, &cnt);
            }
        } else {
            rejected++;
        }
        free(exact);
    }
    assert_true(decoded > 100 && rejected > 100);
    ex_fini(&ex);
    free(m);
    ex_buf_fini(&good);
    ex_builder_fini(&b);
}

/* ---------------------------------------------------------------------------------------------
 * TFRecord
 * ------------------------------------------------------------------------------------------- */

static void write_tfrecord(const char *path, int n, size_t base_len) {
    tfr_writer *w;
    sb_err e;
    assert_int_equal(tfr_writer_open(path, &w, &e), 0);
    uint8_t *buf = malloc(base_len + (size_t)n);
    for (int i = 0; i < n; i++) {
        size_t len = base_len + (size_t)i;
        for (size_t k = 0; k < len; k++) buf[k] = (uint8_t)(i + k);
        assert_int_equal(tfr_writer_write(w, buf, len, &e), 0);
    }
    free(buf);
    assert_int_equal(tfr_writer_commit(w, &e), 0);
}

static void test_tfrecord_known_bytes_and_read(void **state) {
    (void)state;
    char dir[256], path[512];
    tu_make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/hello", dir);
    sb_err e;
    tfr_writer *w;
    assert_int_equal(tfr_writer_open(path, &w, &e), 0);
    assert_int_equal(tfr_writer_write(w, (const uint8_t *)"hello", 5, &e), 0);
    assert_int_equal(tfr_writer_commit(w, &e), 0);
    static const uint8_t want[] = {0x05, 0, 0, 0, 0, 0, 0, 0, 0xea, 0xb2, 0x04, 0x3e,
                                   'h', 'e', 'l', 'l', 'o', 0xbb, 0x1f, 0x1c, 0x19};
    char *data;
    size_t n;
    assert_int_equal(sb_read_file(path, &data, &n, &e), 0);
    assert_int_equal(n, sizeof want);
    assert_memory_equal(data, want, n);
    free(data);

    snprintf(path, sizeof path, "%s/many", dir);
    write_tfrecord(path, 50, 100);
    tfr_reader *r;
    assert_int_equal(tfr_reader_open(path, &r, &e), 0);
    const uint8_t *d;
    for (int i = 0; i < 50; i++) {
        assert_int_equal(tfr_reader_next(r, &d, &n, &e), 0);
        assert_int_equal(n, 100 + (size_t)i);
        assert_int_equal(d[n - 1], (uint8_t)(i + n - 1));
    }
    assert_int_equal(tfr_reader_next(r, &d, &n, &e), SB_E_NOTFOUND);
    tfr_reader_close(r);
    assert_int_equal(tfr_reader_open("/nonexistent/x", &r, &e), ENOENT);
    assert_non_null(strstr(e.msg, "/nonexistent/x"));
    tu_remove_tree(dir);
}

static void flip_byte(const char *path, long at) {
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    fseek(fp, at, SEEK_SET);
    int c = fgetc(fp);
    fseek(fp, at, SEEK_SET);
    fputc(c ^ 0x40, fp);
    fclose(fp);
}

static void test_tfrecord_corruption_offsets(void **state) {
    (void)state;
    char dir[256], path[512];
    tu_make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/shard", dir);
    write_tfrecord(path, 5, 10); /* records of 10..14 bytes: 26, 27, 28, 29, 30 bytes on disk */
    /* record 2 starts at 26 + 27 = 53; its data at 65 */
    flip_byte(path, 53 + 12 + 3);
    tfr_reader *r;
    sb_err e;
    const uint8_t *d;
    size_t n;
    assert_int_equal(tfr_reader_open(path, &r, &e), 0);
    assert_int_equal(tfr_reader_next(r, &d, &n, &e), 0);
    assert_int_equal(tfr_reader_next(r, &d, &n, &e), 0);
    assert_int_equal(tfr_reader_next(r, &d, &n, &e), SB_E_CRC);
    assert_non_null(strstr(e.msg, "data CRC of the record at byte 53"));
    assert_non_null(strstr(e.msg, path));
    assert_int_equal(tfr_reader_next(r, &d, &n, &e), 0); /* goes on with record 3 */
    assert_int_equal(n, 13);
    assert_int_equal(tfr_reader_next(r, &d, &n, &e), 0);
    assert_int_equal(tfr_reader_next(r, &d, &n, &e), SB_E_NOTFOUND);
    tfr_reader_close(r);

    /* a broken length CRC loses the framing */
    write_tfrecord(path, 5, 10);
    flip_byte(path, 26 + 2);
    assert_int_equal(tfr_reader_open(path, &r, &e), 0);
    assert_int_equal(tfr_reader_next(r, &d, &n, &e), 0);
    assert_int_equal(tfr_reader_next(r, &d, &n, &e), SB_E_CRC);
    assert_non_null(strstr(e.msg, "length CRC of the record at byte 26"));
    assert_int_equal(tfr_reader_next(r, &d, &n, &e), SB_E_NOTFOUND);
    tfr_reader_close(r);

    /* truncation inside the last record */
    write_tfrecord(path, 5, 10);
    assert_int_equal(truncate(path, 26 + 27 + 28 + 29 + 20), 0);
    assert_int_equal(tfr_reader_open(path, &r, &e), 0);
    for (int i = 0; i < 4; i++) assert_int_equal(tfr_reader_next(r, &d, &n, &e), 0);
    assert_int_equal(tfr_reader_next(r, &d, &n, &e), SB_E_TRUNCATED);
    assert_non_null(strstr(e.msg, "record at byte 110 truncated"));
    tfr_reader_close(r);
    assert_int_equal(truncate(path, 26 + 5), 0);
    assert_int_equal(tfr_reader_open(path, &r, &e), 0);
    assert_int_equal(tfr_reader_next(r, &d, &n, &e), 0);
    assert_int_equal(tfr_reader_next(r, &d, &n, &e), SB_E_TRUNCATED);
    assert_non_null(strstr(e.msg, "header at byte 26"));
    tfr_reader_close(r);
    tu_remove_tree(dir);
}

/* ---------------------------------------------------------------------------------------------
 * LMDB shards
 * ------------------------------------------------------------------------------------------- */

static void fill_value(uint8_t *v, size_t n, uint64_t i) {
    for (size_t k = 0; k < n; k++) v[k] = (uint8_t)(i * 31 + k);
}

static void test_lmdb_write_read(void **state) {
    (void)state;
    char dir[256], path[512];
    tu_make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/train-00000-of-00001", dir);
    sb_err e;
    rec_lmdb_writer *w;
    rec_lmdb_writer_opts o = {.commit_bytes = 10000};
    assert_int_equal(rec_lmdb_writer_open(path, &o, &w, &e), 0);
    uint8_t v[1000];
    for (uint64_t i = 0; i < 1234; i++) {
        size_t n = 1 + i % 900;
        fill_value(v, n, i);
        assert_int_equal(rec_lmdb_writer_put(w, v, n, &e), 0);
    }
    assert_int_equal(rec_lmdb_writer_count(w), 1234);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_equal(access(tmp, F_OK), 0);
    assert_int_not_equal(access(path, F_OK), 0); /* no final name before commit */
    assert_int_equal(rec_lmdb_writer_commit(w, &e), 0);
    assert_int_not_equal(access(tmp, F_OK), 0);

    rec_lmdb_reader *r;
    assert_int_equal(rec_lmdb_reader_open(path, &r, &e), 0);
    assert_int_equal(rec_lmdb_reader_count(r), 1234);
    const uint8_t *d;
    size_t n;
    uint64_t idx;
    for (uint64_t i = 0; i < 1234; i++) {
        assert_int_equal(rec_lmdb_reader_next(r, &d, &n, &idx, &e), 0);
        assert_int_equal(idx, i);
        assert_int_equal(n, 1 + i % 900);
        fill_value(v, n, i);
        assert_memory_equal(d, v, n);
    }
    assert_int_equal(rec_lmdb_reader_next(r, &d, &n, &idx, &e), SB_E_NOTFOUND);
    rec_lmdb_reader_rewind(r);
    assert_int_equal(rec_lmdb_reader_next(r, &d, &n, &idx, &e), 0);
    assert_int_equal(idx, 0);
    assert_int_equal(rec_lmdb_reader_get(r, 777, &d, &n, &e), 0);
    fill_value(v, 1 + 777 % 900, 777);
    assert_int_equal(n, 1 + 777 % 900);
    assert_memory_equal(d, v, n);
    assert_int_equal(rec_lmdb_reader_get(r, 1234, &d, &n, &e), SB_E_NOTFOUND);
    assert_non_null(strstr(e.msg, path));
    rec_lmdb_reader_close(r);
    /* no lock file next to the shard */
    snprintf(tmp, sizeof tmp, "%s-lock", path);
    assert_int_not_equal(access(tmp, F_OK), 0);

    /* an aborted writer leaves nothing */
    snprintf(path, sizeof path, "%s/aborted", dir);
    assert_int_equal(rec_lmdb_writer_open(path, NULL, &w, &e), 0);
    assert_int_equal(rec_lmdb_writer_put(w, v, 10, &e), 0);
    rec_lmdb_writer_abort(w);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_not_equal(access(path, F_OK), 0);
    assert_int_not_equal(access(tmp, F_OK), 0);
    /* errors name the shard */
    assert_int_not_equal(rec_lmdb_reader_open(path, &r, &e), 0);
    assert_non_null(strstr(e.msg, "aborted"));
    snprintf(path, sizeof path, "%s/missing/dir/shard", dir);
    assert_int_not_equal(rec_lmdb_writer_open(path, NULL, &w, &e), 0);
    assert_non_null(strstr(e.msg, "missing/dir/shard"));
    tu_remove_tree(dir);
}

static void test_lmdb_map_growth(void **state) {
    (void)state;
    char dir[256], path[512];
    tu_make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/grow", dir);
    sb_err e;
    sb_err_clear(&e);
    rec_lmdb_writer *w;
    /* a 64 KiB map and 1 MiB batches: the first batch alone outgrows it many times over */
    rec_lmdb_writer_opts o = {.map_size = 64 << 10, .commit_bytes = 1 << 20};
    assert_int_equal(rec_lmdb_writer_open(path, &o, &w, &e), 0);
    uint8_t *v = malloc(20000);
    const uint64_t count = 600; /* ~6 MB, values up to 20 KB (overflow pages) */
    for (uint64_t i = 0; i < count; i++) {
        size_t n = 100 + (i * 7919) % 19900;
        fill_value(v, n, i);
        int rc = rec_lmdb_writer_put(w, v, n, &e);
        if (rc) fail_msg("put %llu: %s", (unsigned long long)i, e.msg);
    }
    assert_true(rec_lmdb_writer_map_grows(w) >= 6);
    assert_true(rec_lmdb_writer_map_size(w) >= (size_t)6 << 20);
    assert_int_equal(rec_lmdb_writer_commit(w, &e), 0);
    rec_lmdb_reader *r;
    assert_int_equal(rec_lmdb_reader_open(path, &r, &e), 0);
    assert_int_equal(rec_lmdb_reader_count(r), count);
    const uint8_t *d;
    size_t n;
    uint64_t idx;
    for (uint64_t i = 0; i < count; i++) {
        assert_int_equal(rec_lmdb_reader_next(r, &d, &n, &idx, &e), 0);
        size_t want = 100 + (i * 7919) % 19900;
        assert_int_equal(n, want);
        fill_value(v, n, i);
        assert_memory_equal(d, v, n);
    }
    rec_lmdb_reader_close(r);
    free(v);
    tu_remove_tree(dir);
}

/* ---------------------------------------------------------------------------------------------
 * Dataset factory, labels, glob
 * ------------------------------------------------------------------------------------------- */

static void test_dataset_factory(void **state) {
    (void)state;
    const dsf_dataset *d = dsf_find("imagenet");
    assert_non_null(d);
    assert_int_equal(d->num_classes, 1001);
    assert_int_equal(dsf_find_split(d, "train")->size, 1281167);
    assert_int_equal(dsf_find_split(d, "train")->num_shards, 1024);
    assert_int_equal(dsf_find_split(d, "validation")->size, 50000);
    assert_int_equal(dsf_find_split(d, "validation")->num_shards, 128);
    assert_null(dsf_find_split(d, "test"));
    d = dsf_find("mnist");
    assert_int_equal(d->num_classes, 10);
    assert_int_equal(dsf_find_split(d, "train")->size, 60000);
    assert_int_equal(dsf_find_split(d, "test")->size, 10000);
    assert_string_equal(dsf_class_names(d)[9], "nine");
    d = dsf_find("fashion_mnist");
    assert_int_equal(dsf_find_split(d, "test")->size, 10000);
    d = dsf_find("cifar10");
    assert_int_equal(dsf_find_split(d, "train")->size, 50000);
    assert_string_equal(dsf_class_names(d)[0], "airplane");
    d = dsf_find("flowers");
    assert_int_equal(d->num_classes, 5);
    assert_int_equal(dsf_find_split(d, "train")->size, 3320);
    assert_int_equal(dsf_find_split(d, "validation")->size, 350);
    assert_true(dsf_find("synthetic")->synthetic);
    assert_null(dsf_find("imagenet2"));
    char buf[128];
    dsf_shard_path(buf, sizeof buf, "/d", "train", 7, 1024);
    assert_string_equal(buf, "/d/train-00007-of-01024");
}

static void test_labels_and_glob(void **state) {
    (void)state;
    char dir[256], path[512];
    tu_make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/labels.txt", dir);
    const char *names[] = {"background", "n01440764", "tench, Tinca tinca"};
    int ids[] = {0, 1, 1000};
    sb_err e;
    assert_int_equal(dsf_labels_write(path, ids, names, 3, &e), 0);
    char *text;
    size_t n;
    assert_int_equal(sb_read_file(path, &text, &n, &e), 0);
    assert_string_equal(text, "0:background\n1:n01440764\n1000:tench, Tinca tinca\n");
    free(text);
    dsf_labels l;
    assert_int_equal(dsf_labels_read(path, &l, &e), 0);
    assert_int_equal(l.count, 3);
    assert_int_equal(l.ids[2], 1000);
    assert_string_equal(l.names[2], "tench, Tinca tinca");
    dsf_labels_free(&l);
    assert_int_equal(sb_atomic_write(path, "0:a\nbad line\n", 13, &e), 0);
    assert_int_equal(dsf_labels_read(path, &l, &e), SB_E_FORMAT);
    assert_non_null(strstr(e.msg, "labels.txt:2"));

    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/train-%05d-of-00003", dir, 2 - i);
        assert_int_equal(sb_atomic_write(path, "", 0, &e), 0);
    }
    char pat[600];
    snprintf(pat, sizeof pat, "%s/train-*,%s/train-00001-*", dir, dir);
    char **paths;
    assert_int_equal(dsf_glob(pat, &paths, &n, &e), 0);
    assert_int_equal(n, 3); /* sorted, de-duplicated */
    assert_non_null(strstr(paths[0], "train-00000-of-00003"));
    assert_non_null(strstr(paths[2], "train-00002-of-00003"));
    dsf_free_paths(paths, n);
    snprintf(pat, sizeof pat, "%s/validation-*", dir);
    assert_int_equal(dsf_glob(pat, &paths, &n, &e), SB_E_NOTFOUND);
    assert_non_null(strstr(e.msg, "validation-*"));
    tu_remove_tree(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_vectors),
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_example_known_bytes),
        cmocka_unit_test(test_example_image_round_trip),
        cmocka_unit_test(test_example_unpacked_unknown_and_merge),
        cmocka_unit_test(test_example_malformed),
        cmocka_unit_test(test_example_mutation_loop),
        cmocka_unit_test(test_tfrecord_known_bytes_and_read),
        cmocka_unit_test(test_tfrecord_corruption_offsets),
        cmocka_unit_test(test_lmdb_write_read),
        cmocka_unit_test(test_lmdb_map_growth),
        cmocka_unit_test(test_dataset_factory),
        cmocka_unit_test(test_labels_and_glob),
    };
    return cmocka_run_group_tests_name("datasets_records", tests, NULL, NULL);
}
