/* tests/support/testutil.h — helpers shared by the cmocka tests: temp dirs, running our commands
 * and capturing their output, reading reference vectors, and comparing arrays with a tolerance. */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* mkdtemp under $TMPDIR (or /tmp); the path goes into buf. Aborts the test on failure. */
void tu_make_tmpdir(char *buf, size_t n);
/* rm -rf path (only paths made by tu_make_tmpdir). */
void tu_remove_tree(const char *path);

/* Run a command line through /bin/sh, capturing stdout+stderr into *out (malloc'ed, caller
 * frees). Returns the exit status (128+signal when killed). Our commands are found through
 * $SB_BIN_DIR (set by tests/run_tests.sh); write "{bin}/launch" to refer to them. */
int tu_run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A reference tensor from tests/reference (format in tests/reference/README.md):
 * magic "SBREF1\0\0", u32 dtype (0 = f32, 1 = i32), u32 ndim, u32 dims[ndim], data. */
typedef struct tu_ref {
    int dtype;
    int ndim;
    int dims[8];
    size_t count;
    void *data; /* float* or int32_t*, malloc'ed */
} tu_ref;
/* Load $SB_REF_DIR/<name>. Fails the test with a message naming the file (and "re-run the
 * script named in tests/reference/README.md" for a bad magic). */
void tu_ref_load(tu_ref *r, const char *name);
void tu_ref_free(tu_ref *r);

/* |a-r| <= atol + rtol*|r| for all i; prints the first mismatches and the max diff and returns
 * the number of mismatches (0 = all close). */
size_t tu_allclose(const char *what, const float *a, const float *r, size_t n, double atol, double rtol);

#endif
