/* tests/test_core.c — core/: error texts for every code range, sb_err formatting, atomic writes
 * (a failed write leaves the old file), CSV quoting and header handling, mkdirs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/sb.h"
#include "tests/support/testutil.h"

static void test_strerror_covers_every_range(void **state) {
    (void)state;
    for (int c = SB_E_FIRST; c <= SB_E_LAST; c++) {
        const char *t = sb_strerror(c);
        assert_non_null(t);
        assert_string_not_equal(t, "unknown error");
    }
    assert_string_equal(sb_strerror(ENOENT), strerror(ENOENT));
    assert_string_equal(sb_strerror(MDB_MAP_FULL), mdb_strerror(MDB_MAP_FULL));
    assert_non_null(strstr(sb_strerror(SB_E_CURL_BASE - 7), "onnect")); /* CURLE_COULDNT_CONNECT */
    assert_string_equal(sb_strerror(-12345678), "unknown error");
}

static void test_err_set_wrap(void **state) {
    (void)state;
    sb_err e;
    sb_err_clear(&e);
    assert_int_equal(sb_err_setc(&e, ENOENT, "opening %s", "x.bin"), ENOENT);
    assert_int_equal(e.code, ENOENT);
    assert_string_equal(e.msg, "opening x.bin: No such file or directory");
    sb_err_wrap(&e, "checkpoint %d", 3);
    assert_string_equal(e.msg, "checkpoint 3: opening x.bin: No such file or directory");
    assert_int_equal(sb_err_set(NULL, SB_E_CRC, "ignored"), SB_E_CRC);
}

static void test_atomic_write_and_failure(void **state) {
    (void)state;
    char dir[256];
    tu_make_tmpdir(dir, sizeof dir);
    char path[512];
    snprintf(path, sizeof path, "%s/a/b/file.txt", dir);
    sb_err e;
    char sub[512];
    snprintf(sub, sizeof sub, "%s/a/b", dir);
    assert_int_equal(sb_mkdirs(sub, &e), 0);
    assert_int_equal(sb_atomic_write(path, "first", 5, &e), 0);
    sb_atomic_file af;
    assert_int_equal(sb_atomic_open(&af, path, &e), 0);
    fputs("second-but-aborted", af.fp);
    sb_atomic_abort(&af);
    char *data;
    size_t n;
    assert_int_equal(sb_read_file(path, &data, &n, &e), 0);
    assert_string_equal(data, "first");
    free(data);
    /* no temporaries left behind */
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls %s/a/b | grep -c tmp >/dev/null", dir);
    assert_int_not_equal(system(cmd), 0);
    /* a path in a missing directory names the path */
    snprintf(path, sizeof path, "%s/missing/x", dir);
    assert_int_equal(sb_atomic_write(path, "z", 1, &e), ENOENT);
    assert_non_null(strstr(e.msg, "missing/x"));
    assert_int_equal(sb_read_file(path, &data, &n, &e), ENOENT);
    tu_remove_tree(dir);
}

static void test_csv_quoting_and_header(void **state) {
    (void)state;
    sb_csv_line l;
    sb_csv_line_init(&l);
    sb_csv_add_str(&l, "plain");
    sb_csv_add_str(&l, "a,b");
    sb_csv_add_str(&l, "say \"hi\"");
    sb_csv_add_int(&l, -42);
    sb_csv_add_double(&l, 3.14159, 2);
    assert_string_equal(sb_csv_line_str(&l), "plain,\"a,b\",\"say \"\"hi\"\"\",-42,3.14");
    sb_csv_line_fini(&l);

    char dir[256], path[512];
    tu_make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/runs.csv", dir);
    sb_err e;
    assert_int_equal(sb_csv_append(path, "a,b", "1,2", &e), 0);
    assert_int_equal(sb_csv_append(path, "a,b", "3,4", &e), 0);
    char *data;
    size_t n;
    assert_int_equal(sb_read_file(path, &data, &n, &e), 0);
    assert_string_equal(data, "a,b\n1,2\n3,4\n");
    free(data);
    assert_int_equal(sb_csv_append(path, "a,b,c", "5,6,7", &e), SB_E_FORMAT);
    assert_non_null(strstr(e.msg, "runs.csv"));
    tu_remove_tree(dir);
}

static void test_aligned_alloc_zeroed(void **state) {
    (void)state;
    for (size_t n = 1; n < 5000; n = n * 3 + 1) {
        unsigned char *p = sb_aligned_alloc(n);
        assert_int_equal((uintptr_t)p % SB_ALIGN, 0);
        for (size_t i = 0; i < n; i++) assert_int_equal(p[i], 0);
        sb_aligned_free(p);
    }
    assert_true(sb_peak_rss_mb() > 0.0);
}

static void test_build_identity(void **state) {
    (void)state;
    const char *v = sb_build_variant();
    assert_true(!strcmp(v, "generic") || !strcmp(v, "avx2") || !strcmp(v, "avx512") ||
                !strcmp(v, "native") || !strcmp(v, "asan"));
    assert_string_not_equal(sb_build_git_sha(), "");
    if (!strcmp(v, "generic")) assert_string_equal(sb_build_isa(), "scalar");
    if (!strcmp(v, "avx512")) assert_string_equal(sb_build_isa(), "avx512");
    char cpu[256];
    sb_cpu_model(cpu, sizeof cpu);
    assert_true(strlen(cpu) > 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror_covers_every_range),
        cmocka_unit_test(test_err_set_wrap),
        cmocka_unit_test(test_atomic_write_and_failure),
        cmocka_unit_test(test_csv_quoting_and_header),
        cmocka_unit_test(test_aligned_alloc_zeroed),
        cmocka_unit_test(test_build_identity),
    };
    return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
