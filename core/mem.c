/* core/mem.c — allocation that never returns NULL (tier 3 of the error convention: running out of
 * memory is reported with the size and call site, then aborts), and 64-byte aligned zeroed
 * buffers for tensors and arenas. */
#include "sb.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static _Noreturn void oom(size_t n, const char *file, int line) {
    fprintf(stderr, "%s:%d: out of memory allocating %zu bytes (%.1f MiB)\n", file, line, n,
            (double)n / (1024.0 * 1024.0));
    fflush(stderr);
    sb_assert_fail(file, line, "allocation", "out of memory");
}

void *sb_xmalloc_at(size_t n, const char *file, int line) {
    void *p = malloc(n ? n : 1);
    if (!p) oom(n, file, line);
    return p;
}

void *sb_xcalloc_at(size_t count, size_t size, const char *file, int line) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) oom(count * size, file, line);
    return p;
}

void *sb_xrealloc_at(void *p, size_t n, const char *file, int line) {
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n, file, line);
    return q;
}

char *sb_xstrdup_at(const char *s, const char *file, int line) {
    size_t n = strlen(s) + 1;
    char *d = sb_xmalloc_at(n, file, line);
    memcpy(d, s, n);
    return d;
}

void *sb_aligned_alloc_at(size_t n, const char *file, int line) {
    size_t rounded = (n + SB_ALIGN - 1) / SB_ALIGN * SB_ALIGN;
    if (rounded == 0) rounded = SB_ALIGN;
    void *p = aligned_alloc(SB_ALIGN, rounded);
    if (!p) oom(rounded, file, line);
    memset(p, 0, rounded);
    return p;
}

void sb_aligned_free(void *p) { free(p); }

double sb_peak_rss_mb(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0.0;
    return (double)ru.ru_maxrss / 1024.0; /* ru_maxrss is in KiB on Linux */
}
