/* core/fsio.c — durable file writes. Everything slimbench writes that a user keeps (checkpoints,
 * shards, CSVs, reports) goes to a temporary name, is fsynced, renamed over the final name, and
 * the directory is fsynced (Redis rdbSave), so a crash leaves the last good copy. */
#include "sb.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int sb_fsync_dir_of(const char *path, sb_err *err) {
    char *copy = sb_xstrdup(path);
    const char *dir = dirname(copy);
    int rc = 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        rc = sb_err_setc(err, errno, "opening directory %s to fsync", dir);
    } else {
        if (fsync(fd) != 0 && errno != EINVAL) rc = sb_err_setc(err, errno, "fsync %s", dir);
        close(fd);
    }
    free(copy);
    return rc;
}

int sb_rename_durable(const char *from, const char *to, sb_err *err) {
    if (rename(from, to) != 0) return sb_err_setc(err, errno, "renaming %s to %s", from, to);
    return sb_fsync_dir_of(to, err);
}

int sb_mkdirs(const char *path, sb_err *err) {
    char *p = sb_xstrdup(path);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                rc = sb_err_setc(err, errno, "creating directory %s", p);
                break;
            }
            *s = c;
            if (c == '\0') break;
        }
    }
    if (rc == 0) {
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            rc = sb_err_setc(err, ENOTDIR, "creating directory %s", path);
    }
    free(p);
    return rc;
}

int sb_atomic_open(sb_atomic_file *af, const char *path, sb_err *err) {
    memset(af, 0, sizeof *af);
    size_t n = strlen(path) + 32;
    af->path = sb_xstrdup(path);
    af->tmp_path = sb_xmalloc(n);
    snprintf(af->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
    af->fp = fopen(af->tmp_path, "wb");
    if (!af->fp) {
        int rc = sb_err_setc(err, errno, "creating %s", af->tmp_path);
        free(af->path);
        free(af->tmp_path);
        memset(af, 0, sizeof *af);
        return rc;
    }
    return 0;
}

int sb_atomic_commit(sb_atomic_file *af, sb_err *err) {
    int rc = 0;
    if (fflush(af->fp) != 0) rc = sb_err_setc(err, errno, "writing %s", af->tmp_path);
    else if (fsync(fileno(af->fp)) != 0) rc = sb_err_setc(err, errno, "fsync %s", af->tmp_path);
    if (fclose(af->fp) != 0 && rc == 0) rc = sb_err_setc(err, errno, "closing %s", af->tmp_path);
    af->fp = NULL;
    if (rc == 0) rc = sb_rename_durable(af->tmp_path, af->path, err);
    if (rc != 0) unlink(af->tmp_path);
    free(af->path);
    free(af->tmp_path);
    memset(af, 0, sizeof *af);
    return rc;
}

void sb_atomic_abort(sb_atomic_file *af) {
    if (af->fp) fclose(af->fp);
    if (af->tmp_path) unlink(af->tmp_path);
    free(af->path);
    free(af->tmp_path);
    memset(af, 0, sizeof *af);
}

int sb_atomic_write(const char *path, const void *data, size_t n, sb_err *err) {
    sb_atomic_file af;
    int rc = sb_atomic_open(&af, path, err);
    if (rc) return rc;
    if (n && fwrite(data, 1, n, af.fp) != n) {
        rc = sb_err_setc(err, errno ? errno : EIO, "writing %s", af.tmp_path);
        sb_atomic_abort(&af);
        return rc;
    }
    return sb_atomic_commit(&af, err);
}

int sb_read_file(const char *path, char **data, size_t *n, sb_err *err) {
    *data = NULL;
    *n = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return sb_err_setc(err, errno, "opening %s", path);
    size_t cap = 4096, len = 0;
    char *buf = sb_xmalloc(cap);
    for (;;) {
        if (len + 1 >= cap) buf = sb_xrealloc(buf, cap *= 2);
        size_t got = fread(buf + len, 1, cap - len - 1, fp);
        len += got;
        if (got == 0) break;
    }
    int rc = 0;
    if (ferror(fp)) rc = sb_err_setc(err, EIO, "reading %s", path);
    fclose(fp);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[len] = '\0';
    *data = buf;
    *n = len;
    return 0;
}
