/* tests/support/testutil.c — see testutil.h. */
#include "tests/support/testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>
#include <math.h>

#include "core/sb.h"

void tu_make_tmpdir(char *buf, size_t n) {
    const char *t = getenv("TMPDIR");
    snprintf(buf, n, "%s/sbtest.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(buf)) fail_msg("mkdtemp %s failed", buf);
}

void tu_remove_tree(const char *path) {
    if (strncmp(path, "/tmp/", 5) != 0 && !strstr(path, "/sbtest.")) return;
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", path);
}

int tu_run(char **out, const char *fmt, ...) {
    char cmd[8192], expanded[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    const char *bin = getenv("SB_BIN_DIR");
    if (!bin) bin = "bin";
    /* replace every {bin} with $SB_BIN_DIR */
    size_t o = 0;
    for (const char *s = cmd; *s && o + 1 < sizeof expanded;) {
        if (!strncmp(s, "{bin}", 5)) {
            o += (size_t)snprintf(expanded + o, sizeof expanded - o, "%s", bin);
            s += 5;
        } else {
            expanded[o++] = *s++;
        }
    }
    expanded[o < sizeof expanded ? o : sizeof expanded - 1] = '\0';
    char full[8300];
    snprintf(full, sizeof full, "%s 2>&1", expanded);
    FILE *p = popen(full, "r");
    if (!p) fail_msg("popen failed for: %s", expanded);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (len + 1 >= cap) buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    int st = pclose(p);
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    if (out) *out = buf;
    else free(buf);
    return rc;
}

void tu_ref_load(tu_ref *r, const char *name) {
    memset(r, 0, sizeof *r);
    const char *dir = getenv("SB_REF_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/reference", name);
    FILE *fp = fopen(path, "rb");
    if (!fp) fail_msg("reference %s: cannot open (run from the repository root)", path);
    char magic[8];
    uint32_t hdr[2];
    if (fread(magic, 1, 8, fp) != 8 || memcmp(magic, "SBREF1\0\0", 8) != 0) {
        fclose(fp);
        fail_msg("reference %s: bad magic; re-run the script named in tests/reference/README.md", path);
    }
    if (fread(hdr, 4, 2, fp) != 2 || hdr[1] > 8) {
        fclose(fp);
        fail_msg("reference %s: bad header", path);
    }
    r->dtype = (int)hdr[0];
    r->ndim = (int)hdr[1];
    r->count = 1;
    for (int i = 0; i < r->ndim; i++) {
        uint32_t d;
        if (fread(&d, 4, 1, fp) != 1) {
            fclose(fp);
            fail_msg("reference %s: truncated dims", path);
        }
        r->dims[i] = (int)d;
        r->count *= d;
    }
    r->data = malloc(r->count * 4 + 4);
    if (fread(r->data, 4, r->count, fp) != r->count) {
        fclose(fp);
        fail_msg("reference %s: truncated data (%zu values expected)", path, r->count);
    }
    fclose(fp);
}

void tu_ref_free(tu_ref *r) {
    free(r->data);
    memset(r, 0, sizeof *r);
}

size_t tu_allclose(const char *what, const float *a, const float *r, size_t n, double atol, double rtol) {
    size_t bad = 0;
    double maxdiff = 0.0;
    size_t maxi = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)r[i]);
        if (!(d <= atol + rtol * fabs((double)r[i]))) {
            if (bad < 5) fprintf(stderr, "%s[%zu]: got %.8g want %.8g (diff %.3g)\n", what, i, a[i], r[i], d);
            bad++;
        }
        if (d > maxdiff || isnan(d)) {
            maxdiff = d;
            maxi = i;
        }
    }
    if (bad)
        fprintf(stderr, "%s: %zu of %zu values differ; max diff %.3g at %zu\n", what, bad, n, maxdiff, maxi);
    return bad;
}
