/* tests/test_datasets_imagenet.c — datasets/imagenet/: Python's random.seed/shuffle and numpy's
 * linspace reproduced exactly (expected values printed by CPython 3.11), slim's shard boundaries
 * for 1024 shards over 8 threads, the labels / metadata / validation-labels files and the
 * bounding-box CSV, with their error messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_python_random),
        cmocka_unit_test(test_shard_bounds),
        cmocka_unit_test(test_synsets_and_metadata),
        cmocka_unit_test(test_bboxes),
    };
    return cmocka_run_group_tests_name("datasets_imagenet", tests, NULL, NULL);
}
