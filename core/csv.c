/* core/csv.c — the one CSV writer (results rows, benchmark tables). A row goes out in a single
 * write() on an O_APPEND descriptor followed by fsync: concurrent runs appending to the same
 * results file never interleave, and a crash never leaves half a row. */
#include "sb.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* First line of an existing file into buf; returns length or -1. */
static ssize_t read_first_line(int fd, char *buf, size_t cap) {
    ssize_t n = pread(fd, buf, cap - 1, 0);
    if (n < 0) return -1;
    buf[n] = '\0';
    char *nl = strchr(buf, '\n');
    if (nl) *nl = '\0';
    return (ssize_t)strlen(buf);
}

int sb_csv_append(const char *path, const char *header, const char *row, sb_err *err) {
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) return sb_err_setc(err, errno, "opening results CSV %s", path);
    int rc = 0;
    /* The lock only orders "is the file empty? write header" between concurrent writers. */
    if (flock(fd, LOCK_EX) != 0) {
        rc = sb_err_setc(err, errno, "locking %s", path);
        goto out_close;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = sb_err_setc(err, errno, "stat %s", path);
        goto out_close;
    }
    size_t hl = strlen(header), rl = strlen(row);
    char *buf = sb_xmalloc(hl + rl + 3);
    size_t len = 0;
    if (st.st_size == 0) {
        memcpy(buf, header, hl);
        buf[hl] = '\n';
        len = hl + 1;
    } else {
        int rfd = open(path, O_RDONLY);
        char *first = sb_xmalloc(hl + 2);
        ssize_t fl = rfd >= 0 ? read_first_line(rfd, first, hl + 2) : -1;
        if (rfd >= 0) close(rfd);
        if (fl < 0 || (size_t)fl != hl || memcmp(first, header, hl) != 0) {
            rc = sb_err_set(err, SB_E_FORMAT,
                            "results CSV %s has a different header than this version writes; "
                            "use another --results_csv or move the old file aside",
                            path);
        }
        free(first);
    }
    if (rc == 0) {
        memcpy(buf + len, row, rl);
        len += rl;
        buf[len++] = '\n';
        ssize_t w = write(fd, buf, len);
        if (w < 0 || (size_t)w != len)
            rc = sb_err_setc(err, w < 0 ? errno : EIO, "appending to %s", path);
        else if (fsync(fd) != 0)
            rc = sb_err_setc(err, errno, "fsync %s", path);
    }
    free(buf);
out_close:
    close(fd);
    return rc;
}

void sb_csv_line_init(sb_csv_line *l) {
    l->cap = 256;
    l->len = 0;
    l->buf = sb_xmalloc(l->cap);
    l->buf[0] = '\0';
}

void sb_csv_line_fini(sb_csv_line *l) {
    free(l->buf);
    memset(l, 0, sizeof *l);
}

static void reserve(sb_csv_line *l, size_t extra) {
    while (l->len + extra + 1 > l->cap) l->buf = sb_xrealloc(l->buf, l->cap *= 2);
}

void sb_csv_add_str(sb_csv_line *l, const char *s) {
    if (!s) s = "";
    size_t n = strlen(s);
    reserve(l, 2 * n + 3);
    if (l->len) l->buf[l->len++] = ',';
    int quote = strpbrk(s, ",\"\r\n") != NULL;
    if (quote) l->buf[l->len++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') l->buf[l->len++] = '"';
        l->buf[l->len++] = s[i];
    }
    if (quote) l->buf[l->len++] = '"';
    l->buf[l->len] = '\0';
}

void sb_csv_add_int(sb_csv_line *l, long long v) {
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%lld", v);
    sb_csv_add_str(l, tmp);
}

void sb_csv_add_double(sb_csv_line *l, double v, int decimals) {
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%.*f", decimals, v);
    sb_csv_add_str(l, tmp);
}

const char *sb_csv_line_str(const sb_csv_line *l) { return l->buf; }
