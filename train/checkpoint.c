/* train/checkpoint.c — checkpoint files and TensorFlow's "checkpoint" index (format in
 * train_loop.h). A file is written through core's atomic writer, so a crash leaves the previous
 * checkpoint intact; it is read whole and verified (CRC32C over everything) before any variable
 * is used. Knows tensors by name only, nothing of nets or optimizers.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datasets/datasets.h"
#include "train/train_loop.h"

#define CKPT_MAGIC "SBCKPT\0\0"
#define CKPT_VERSION 1u
#define CKPT_HEADER_BYTES 32

static const size_t dtype_size[CKPT_DTYPE_COUNT] = {4, 8};
static_assert(SB_ARRAY_LEN(dtype_size) == CKPT_DTYPE_COUNT, "dtype table");

struct ckpt {
    char *path;
    char *buf;           /* the whole file */
    size_t n;
    ckpt_tensor *tensors;
    char **names;
    size_t count;
};

/* ---- little-endian helpers (x86 is little endian; memcpy keeps it alignment-safe) ---- */
static void put(uint8_t **p, const void *v, size_t n) { memcpy(*p, v, n); *p += n; }

typedef struct crc_file {
    FILE *fp;
    uint32_t crc;
    int failed;
} crc_file;

static void cf_write(crc_file *f, const void *p, size_t n) {
    f->crc = crc32c_extend(f->crc, p, n);
    if (n && fwrite(p, 1, n, f->fp) != n) f->failed = 1;
}

static size_t align8(size_t x) { return (x + 7) & ~(size_t)7; }

int ckpt_write(const char *path, const ckpt_tensor *t, size_t n, sb_err *err) {
    size_t index_bytes = 0, data_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        SB_ASSERT(t[i].dtype >= 0 && t[i].dtype < CKPT_DTYPE_COUNT && t[i].ndim >= 0 &&
                  t[i].ndim <= 4);
        size_t len = strlen(t[i].name);
        SB_ASSERTF(len < 65536, "tensor name %zu bytes", len);
        index_bytes += 2 + len + 2 + 4 * (size_t)t[i].ndim + 16;
        data_bytes = align8(data_bytes) + t[i].count * dtype_size[t[i].dtype];
    }
    data_bytes = align8(data_bytes);
    uint8_t *index = sb_xmalloc(index_bytes + CKPT_HEADER_BYTES);
    uint8_t *p = index;
    uint32_t version = CKPT_VERSION, nt = (uint32_t)n;
    uint64_t ib = index_bytes, db = data_bytes;
    put(&p, CKPT_MAGIC, 8);
    put(&p, &version, 4);
    put(&p, &nt, 4);
    put(&p, &ib, 8);
    put(&p, &db, 8);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        uint16_t len = (uint16_t)strlen(t[i].name);
        uint8_t dt = (uint8_t)t[i].dtype, nd = (uint8_t)t[i].ndim;
        off = align8(off);
        uint64_t o = off, c = t[i].count;
        put(&p, &len, 2);
        put(&p, t[i].name, len);
        put(&p, &dt, 1);
        put(&p, &nd, 1);
        for (int k = 0; k < t[i].ndim; k++) put(&p, &t[i].shape[k], 4);
        put(&p, &o, 8);
        put(&p, &c, 8);
        off += t[i].count * dtype_size[t[i].dtype];
    }
    SB_ASSERT((size_t)(p - index) == index_bytes + CKPT_HEADER_BYTES);

    sb_atomic_file af;
    int rc = sb_atomic_open(&af, path, err);
    if (rc) {
        free(index);
        return rc;
    }
    crc_file f = {af.fp, 0, 0};
    cf_write(&f, index, index_bytes + CKPT_HEADER_BYTES);
    static const uint8_t zeros[8];
    off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t a = align8(off);
        cf_write(&f, zeros, a - off);
        size_t bytes = t[i].count * dtype_size[t[i].dtype];
        cf_write(&f, t[i].data, bytes);
        off = a + bytes;
    }
    cf_write(&f, zeros, data_bytes - off);
    uint32_t crc = f.crc;
    if (fwrite(&crc, 1, 4, af.fp) != 4) f.failed = 1;
    free(index);
    if (f.failed) {
        int e = errno ? errno : EIO;
        sb_atomic_abort(&af);
        return sb_err_setc(err, e, "writing checkpoint %s", path);
    }
    return sb_atomic_commit(&af, err);
}

void ckpt_close(ckpt *c) {
    if (!c) return;
    for (size_t i = 0; i < c->count; i++) free(c->names[i]);
    free(c->path);
    free(c->buf);
    free(c->tensors);
    free(c->names);
    free(c);
}

/* Bounds-checked reader over the index. */
typedef struct rd {
    const uint8_t *p, *end;
} rd;
static int get(rd *r, void *v, size_t n) {
    if ((size_t)(r->end - r->p) < n) return -1;
    memcpy(v, r->p, n);
    r->p += n;
    return 0;
}

int ckpt_open(ckpt **out, const char *path, sb_err *err) {
    *out = NULL;
    char *buf = NULL;
    size_t n = 0;
    int rc = sb_read_file(path, &buf, &n, err);
    if (rc) return sb_err_wrap(err, "checkpoint %s: ", path), rc;
    ckpt *c = sb_xcalloc(1, sizeof *c);
    c->path = sb_xstrdup(path);
    c->buf = buf;
    c->n = n;
    if (n < 8 || memcmp(buf, CKPT_MAGIC, 8) != 0) {
        rc = sb_err_set(err, SB_E_FORMAT, "checkpoint %s: not a slimbench checkpoint (bad magic)",
                        path);
        goto fail;
    }
    if (n < CKPT_HEADER_BYTES + 4) {
        rc = sb_err_set(err, SB_E_TRUNCATED, "checkpoint %s: truncated (%zu bytes)", path, n);
        goto fail;
    }
    uint32_t version, nt;
    uint64_t ib, db;
    memcpy(&version, buf + 8, 4);
    memcpy(&nt, buf + 12, 4);
    memcpy(&ib, buf + 16, 8);
    memcpy(&db, buf + 24, 8);
    if (version != CKPT_VERSION) {
        rc = sb_err_set(err, SB_E_FORMAT, "checkpoint %s: format version %u, this build reads %u",
                        path, version, CKPT_VERSION);
        goto fail;
    }
    if (ib > n || db > n || CKPT_HEADER_BYTES + ib + db + 4 != n) {
        rc = sb_err_set(err, SB_E_TRUNCATED,
                        "checkpoint %s: %zu bytes, header promises %llu (truncated or damaged)",
                        path, n, (unsigned long long)(CKPT_HEADER_BYTES + ib + db + 4));
        goto fail;
    }
    uint32_t want, got = crc32c(buf, n - 4);
    memcpy(&want, buf + n - 4, 4);
    if (want != got) {
        rc = sb_err_set(err, SB_E_CRC,
                        "checkpoint %s: CRC32C mismatch (stored %08x, computed %08x): the file is "
                        "corrupt",
                        path, want, got);
        goto fail;
    }
    const uint8_t *data = (const uint8_t *)buf + CKPT_HEADER_BYTES + ib;
    c->tensors = sb_xcalloc(nt ? nt : 1, sizeof *c->tensors);
    c->names = sb_xcalloc(nt ? nt : 1, sizeof *c->names);
    rd r = {(const uint8_t *)buf + CKPT_HEADER_BYTES, (const uint8_t *)buf + CKPT_HEADER_BYTES + ib};
    for (uint32_t i = 0; i < nt; i++) {
        ckpt_tensor *t = &c->tensors[i];
        uint16_t len;
        uint8_t dt, nd;
        uint64_t off, cnt;
        if (get(&r, &len, 2) || (size_t)(r.end - r.p) < len) goto bad_index;
        /* Names are copied out: in the file they are not NUL-terminated. */
        char *name = sb_xmalloc((size_t)len + 1);
        memcpy(name, r.p, len);
        name[len] = 0;
        c->names[i] = name;
        c->count = i + 1;
        r.p += len;
        if (get(&r, &dt, 1) || get(&r, &nd, 1) || dt >= CKPT_DTYPE_COUNT || nd > 4) goto bad_index;
        t->name = name;
        t->dtype = dt;
        t->ndim = nd;
        size_t prod = 1;
        for (int k = 0; k < nd; k++) {
            if (get(&r, &t->shape[k], 4) || t->shape[k] < 0) goto bad_index;
            prod *= (size_t)t->shape[k];
        }
        if (get(&r, &off, 8) || get(&r, &cnt, 8)) goto bad_index;
        if (cnt != prod || off > db || cnt * dtype_size[dt] > db - off) goto bad_index;
        t->count = cnt;
        t->data = data + off;
    }
    c->count = nt;
    *out = c;
    return 0;
bad_index:
    rc = sb_err_set(err, SB_E_CORRUPT, "checkpoint %s: malformed variable index (entry %zu)",
                    path, c->count);
fail:
    ckpt_close(c);
    return rc;
}

const char *ckpt_path(const ckpt *c) { return c->path; }
size_t ckpt_count(const ckpt *c) { return c->count; }
const ckpt_tensor *ckpt_at(const ckpt *c, size_t i) { return i < c->count ? &c->tensors[i] : NULL; }

const ckpt_tensor *ckpt_find(const ckpt *c, const char *name) {
    for (size_t i = 0; i < c->count; i++)
        if (strcmp(c->tensors[i].name, name) == 0) return &c->tensors[i];
    return NULL;
}

static void shape_str(char *buf, size_t cap, int ndim, const int *shape) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%d", i ? ", " : "", shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

int ckpt_read_float(const ckpt *c, const char *name, int ndim, const int *shape, float *dst,
                    sb_err *err) {
    const ckpt_tensor *t = ckpt_find(c, name);
    if (!t)
        return sb_err_set(err, SB_E_NOTFOUND, "checkpoint %s: no variable %s", c->path, name);
    int same = t->dtype == CKPT_DTYPE_FLOAT32 && t->ndim == ndim;
    for (int k = 0; same && k < ndim; k++) same = t->shape[k] == shape[k];
    if (!same) {
        char a[96], b[96];
        shape_str(a, sizeof a, t->ndim, t->shape);
        shape_str(b, sizeof b, ndim, shape);
        return sb_err_set(err, SB_E_FORMAT,
                          "checkpoint %s: variable %s has shape %s%s in the checkpoint, the model "
                          "wants %s",
                          c->path, name, a, t->dtype == CKPT_DTYPE_FLOAT32 ? "" : " (int64)", b);
    }
    memcpy(dst, t->data, t->count * sizeof(float));
    return 0;
}

/* ---- the "checkpoint" index file ---- */

#define MAX_KEEP 64

/* Parse "<dir>/checkpoint": fills paths (malloc'ed, oldest first) and returns how many; the
 * newest (model_checkpoint_path) goes to *latest. -1 when the file does not exist. */
static int read_index(const char *dir, char **paths, int cap, char **latest, sb_err *err, int *rc) {
    char ipath[4096], *text = NULL;
    size_t n;
    snprintf(ipath, sizeof ipath, "%s/checkpoint", dir);
    *latest = NULL;
    *rc = 0;
    if (access(ipath, F_OK) != 0) return -1;
    *rc = sb_read_file(ipath, &text, &n, err);
    if (*rc) return -1;
    int count = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *q1 = strchr(line, '"'), *q2 = q1 ? strrchr(line, '"') : NULL;
        if (!q1 || q2 == q1) {
            *rc = sb_err_set(err, SB_E_FORMAT, "checkpoint index %s: malformed line '%s'", ipath,
                             line);
            break;
        }
        *q2 = 0;
        if (strncmp(line, "model_checkpoint_path:", 22) == 0) {
            free(*latest);
            *latest = sb_xstrdup(q1 + 1);
        } else if (strncmp(line, "all_model_checkpoint_paths:", 27) == 0 && count < cap) {
            paths[count++] = sb_xstrdup(q1 + 1);
        }
    }
    free(text);
    if (!*rc && !*latest)
        *rc = sb_err_set(err, SB_E_FORMAT, "checkpoint index %s: no model_checkpoint_path", ipath);
    return count;
}

static void join(char *buf, size_t cap, const char *dir, const char *name) {
    if (name[0] == '/') snprintf(buf, cap, "%s", name);
    else snprintf(buf, cap, "%s/%s", dir, name);
}

int ckpt_latest(const char *dir, char *buf, size_t cap, sb_err *err) {
    char *paths[MAX_KEEP], *latest = NULL;
    int rc;
    int n = read_index(dir, paths, MAX_KEEP, &latest, err, &rc);
    for (int i = 0; i < n; i++) free(paths[i]);
    if (rc) {
        free(latest);
        return rc;
    }
    if (!latest) return sb_err_set(err, SB_E_NOTFOUND, "no checkpoint in %s", dir);
    join(buf, cap, dir, latest);
    free(latest);
    return 0;
}

int ckpt_resolve(const char *path, char *buf, size_t cap, sb_err *err) {
    struct stat st;
    if (stat(path, &st) != 0)
        return sb_err_setc(err, errno, "--checkpoint_path %s", path);
    if (S_ISDIR(st.st_mode)) {
        int rc = ckpt_latest(path, buf, cap, err);
        if (rc == SB_E_NOTFOUND)
            return sb_err_set(err, SB_E_NOTFOUND,
                              "--checkpoint_path %s: a directory without a checkpoint index "
                              "(%s/checkpoint)",
                              path, path);
        return rc;
    }
    snprintf(buf, cap, "%s", path);
    return 0;
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

int ckpt_update_index(const char *dir, const char *path, int max_to_keep, sb_err *err) {
    char *paths[MAX_KEEP + 1], *latest = NULL;
    int rc;
    int n = read_index(dir, paths, MAX_KEEP, &latest, err, &rc);
    if (n < 0) n = 0;
    free(latest);
    rc = 0; /* a malformed old index is replaced */
    const char *name = base_name(path);
    int w = 0;
    for (int i = 0; i < n; i++) { /* drop an older entry of the same name */
        if (strcmp(paths[i], name) == 0) free(paths[i]);
        else paths[w++] = paths[i];
    }
    n = w;
    paths[n++] = sb_xstrdup(name);
    if (max_to_keep < 1) max_to_keep = 1;
    int first = n > max_to_keep ? n - max_to_keep : 0;
    char line[4200];
    snprintf(line, sizeof line, "model_checkpoint_path: \"%s\"\n", name);
    size_t total = strlen(line);
    char *out = sb_xmalloc(total + (size_t)(n - first) * sizeof line + 1);
    memcpy(out, line, total);
    for (int i = first; i < n; i++) {
        int k = snprintf(line, sizeof line, "all_model_checkpoint_paths: \"%s\"\n", paths[i]);
        memcpy(out + total, line, (size_t)k);
        total += (size_t)k;
    }
    char ipath[4096];
    snprintf(ipath, sizeof ipath, "%s/checkpoint", dir);
    rc = sb_atomic_write(ipath, out, total, err);
    free(out);
    for (int i = 0; i < first && rc == 0; i++) { /* delete after the index stops naming them */
        char old[4096];
        join(old, sizeof old, dir, paths[i]);
        if (unlink(old) != 0 && errno != ENOENT)
            sb_warn("could not delete old checkpoint %s: %s", old, sb_strerror(errno));
    }
    for (int i = 0; i < n; i++) free(paths[i]);
    return rc;
}
