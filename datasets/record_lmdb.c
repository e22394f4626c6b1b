/* datasets/record_lmdb.c — LMDB shards: one environment per shard file (MDB_NOSUBDIR), keys are
 * record indices as 10 zero-padded digits, values are serialized Examples.
 *
 * The writer follows mdb_load: keys arrive in increasing order, so MDB_APPEND puts them at the
 * end of the B-tree without searching; transactions are committed by a byte budget. The values of
 * the open transaction are also kept in a side buffer so that on MDB_MAP_FULL the transaction can
 * be aborted, the map doubled with mdb_env_set_mapsize and the batch redone: no MDB_MAP_FULL
 * reaches the caller. Records go to "<shard>.tmp" with MDB_NOSYNC (nothing is durable until the
 * end anyway), then mdb_env_sync, close, rename and fsync of the directory (Redis rdbSave).
 * Shards are immutable once renamed, so readers open them without a lock file.
 * Knows nothing of what the values hold.
 */
#include "datasets/datasets.h"

#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_MAP_SIZE ((size_t)256 << 20)
#define DEFAULT_COMMIT_BYTES ((size_t)8 << 20)

struct rec_lmdb_writer {
    char *path, *tmp_path;
    MDB_env *env;
    MDB_txn *txn;           /* open batch, or NULL */
    MDB_dbi dbi;
    size_t map_size, commit_bytes;
    int grows;
    uint64_t committed;     /* records in committed transactions */
    /* the open batch, kept to redo it after growing the map */
    uint8_t *vals;
    size_t vals_len, vals_cap;
    size_t *ends;           /* ends[i]: end offset of pending value i in vals */
    size_t n_pending, ends_cap;
};

static void format_key(char key[REC_LMDB_KEY_DIGITS + 1], uint64_t index) {
    snprintf(key, REC_LMDB_KEY_DIGITS + 1, "%0*llu", REC_LMDB_KEY_DIGITS,
             (unsigned long long)index);
}

static int lmdb_fail(sb_err *err, int rc, const char *path, const char *what) {
    return sb_err_set(err, rc, "shard %s: %s: %s", path, what, sb_strerror(rc));
}

int rec_lmdb_writer_open(const char *path, const rec_lmdb_writer_opts *opts,
                         rec_lmdb_writer **out, sb_err *err) {
    *out = NULL;
    rec_lmdb_writer *w = sb_xcalloc(1, sizeof *w);
    w->path = sb_xstrdup(path);
    size_t n = strlen(path) + 5;
    w->tmp_path = sb_xmalloc(n);
    snprintf(w->tmp_path, n, "%s.tmp", path);
    w->map_size = opts && opts->map_size ? opts->map_size : DEFAULT_MAP_SIZE;
    w->commit_bytes = opts && opts->commit_bytes ? opts->commit_bytes : DEFAULT_COMMIT_BYTES;
    int rc;
    MDB_txn *txn = NULL;
    if (unlink(w->tmp_path) != 0 && errno != ENOENT) {
        rc = sb_err_setc(err, errno, "shard %s: removing stale %s", path, w->tmp_path);
        goto fail;
    }
    if ((rc = mdb_env_create(&w->env))) {
        rc = lmdb_fail(err, rc, path, "mdb_env_create");
        goto fail;
    }
    if ((rc = mdb_env_set_mapsize(w->env, w->map_size))) {
        rc = lmdb_fail(err, rc, path, "mdb_env_set_mapsize");
        goto fail_env;
    }
    rc = mdb_env_open(w->env, w->tmp_path, MDB_NOSUBDIR | MDB_NOLOCK | MDB_NOSYNC | MDB_NOMETASYNC,
                      0644);
    if (rc) {
        rc = lmdb_fail(err, rc, w->tmp_path, "mdb_env_open");
        goto fail_env;
    }
    if ((rc = mdb_txn_begin(w->env, NULL, 0, &txn)) || (rc = mdb_dbi_open(txn, NULL, 0, &w->dbi)) ||
        (rc = mdb_txn_commit(txn))) {
        if (txn) mdb_txn_abort(txn);
        rc = lmdb_fail(err, rc, w->tmp_path, "opening the database");
        goto fail_file;
    }
    *out = w;
    return 0;

fail_file:
    mdb_env_close(w->env);
    w->env = NULL;
    unlink(w->tmp_path);
fail_env:
    if (w->env) mdb_env_close(w->env);
fail:
    free(w->path);
    free(w->tmp_path);
    free(w);
    return rc;
}

/* Put pending value i into the open transaction. */
static int put_pending(rec_lmdb_writer *w, size_t i) {
    char key[REC_LMDB_KEY_DIGITS + 1];
    format_key(key, w->committed + i);
    size_t start = i ? w->ends[i - 1] : 0;
    MDB_val k = {REC_LMDB_KEY_DIGITS, key};
    MDB_val v = {w->ends[i] - start, w->vals + start};
    return mdb_put(w->txn, w->dbi, &k, &v, MDB_APPEND);
}

/* MDB_MAP_FULL: drop the transaction, double the map, and redo the whole pending batch, as many
 * times as it takes. */
static int grow_and_redo(rec_lmdb_writer *w, sb_err *err) {
    for (;;) {
        if (w->txn) mdb_txn_abort(w->txn);
        w->txn = NULL;
        if (w->map_size > (SIZE_MAX >> 2))
            return sb_err_set(err, MDB_MAP_FULL, "shard %s: MDB_MAP_FULL: map %zu bytes reached",
                              w->path, w->map_size);
        w->map_size *= 2;
        w->grows++;
        int rc = mdb_env_set_mapsize(w->env, w->map_size);
        if (rc) return lmdb_fail(err, rc, w->path, "mdb_env_set_mapsize");
        if ((rc = mdb_txn_begin(w->env, NULL, 0, &w->txn))) {
            w->txn = NULL;
            return lmdb_fail(err, rc, w->path, "mdb_txn_begin");
        }
        size_t i = 0;
        for (; i < w->n_pending; i++)
            if ((rc = put_pending(w, i))) break;
        if (rc == 0) return 0;
        if (rc != MDB_MAP_FULL) return lmdb_fail(err, rc, w->path, "mdb_put");
    }
}

static int commit_batch(rec_lmdb_writer *w, sb_err *err) {
    while (w->txn) {
        int rc = mdb_txn_commit(w->txn);
        w->txn = NULL; /* freed by mdb_txn_commit whatever the outcome */
        if (rc == MDB_MAP_FULL) {
            if ((rc = grow_and_redo(w, err))) return rc;
            continue;
        }
        if (rc) return lmdb_fail(err, rc, w->path, "mdb_txn_commit");
    }
    w->committed += w->n_pending;
    w->n_pending = 0;
    w->vals_len = 0;
    return 0;
}

int rec_lmdb_writer_put(rec_lmdb_writer *w, const uint8_t *val, size_t n, sb_err *err) {
    int rc;
    if (w->committed + w->n_pending >= 10000000000ull)
        return sb_err_set(err, SB_E_RANGE, "shard %s: more than 10^10 records", w->path);
    if (!w->txn && (rc = mdb_txn_begin(w->env, NULL, 0, &w->txn))) {
        w->txn = NULL;
        return lmdb_fail(err, rc, w->path, "mdb_txn_begin");
    }
    if (w->vals_len + n > w->vals_cap) {
        size_t cap = w->vals_cap ? w->vals_cap : 1 << 20;
        while (cap < w->vals_len + n) cap *= 2;
        w->vals = sb_xrealloc(w->vals, cap);
        w->vals_cap = cap;
    }
    if (w->n_pending == w->ends_cap) {
        w->ends_cap = w->ends_cap ? w->ends_cap * 2 : 1024;
        w->ends = sb_xrealloc(w->ends, w->ends_cap * sizeof *w->ends);
    }
    if (n) memcpy(w->vals + w->vals_len, val, n);
    w->vals_len += n;
    w->ends[w->n_pending++] = w->vals_len;
    rc = put_pending(w, w->n_pending - 1);
    if (rc == MDB_MAP_FULL) rc = grow_and_redo(w, err);
    else if (rc) rc = lmdb_fail(err, rc, w->path, "mdb_put");
    if (rc) {
        w->n_pending--; /* the record was not written */
        w->vals_len -= n;
        return rc;
    }
    if (w->vals_len >= w->commit_bytes) return commit_batch(w, err);
    return 0;
}

uint64_t rec_lmdb_writer_count(const rec_lmdb_writer *w) { return w->committed + w->n_pending; }
size_t rec_lmdb_writer_map_size(const rec_lmdb_writer *w) { return w->map_size; }
int rec_lmdb_writer_map_grows(const rec_lmdb_writer *w) { return w->grows; }

static void writer_free(rec_lmdb_writer *w) {
    free(w->path);
    free(w->tmp_path);
    free(w->vals);
    free(w->ends);
    free(w);
}

int rec_lmdb_writer_commit(rec_lmdb_writer *w, sb_err *err) {
    int rc = commit_batch(w, err);
    if (!rc && (rc = mdb_env_sync(w->env, 1))) rc = lmdb_fail(err, rc, w->tmp_path, "mdb_env_sync");
    if (w->txn) mdb_txn_abort(w->txn);
    mdb_env_close(w->env);
    if (!rc) rc = sb_rename_durable(w->tmp_path, w->path, err);
    if (rc) unlink(w->tmp_path);
    writer_free(w);
    return rc;
}

void rec_lmdb_writer_abort(rec_lmdb_writer *w) {
    if (!w) return;
    if (w->txn) mdb_txn_abort(w->txn);
    mdb_env_close(w->env);
    unlink(w->tmp_path);
    writer_free(w);
}

/* ------------------------------------------------------------------------------------------ */

struct rec_lmdb_reader {
    char *path;
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    int started;
    uint64_t count;
};

int rec_lmdb_reader_open(const char *path, rec_lmdb_reader **out, sb_err *err) {
    *out = NULL;
    rec_lmdb_reader *r = sb_xcalloc(1, sizeof *r);
    r->path = sb_xstrdup(path);
    MDB_stat st;
    int rc;
    if ((rc = mdb_env_create(&r->env))) {
        rc = lmdb_fail(err, rc, path, "mdb_env_create");
        goto fail;
    }
    if ((rc = mdb_env_open(r->env, path, MDB_RDONLY | MDB_NOSUBDIR | MDB_NOLOCK, 0644))) {
        rc = lmdb_fail(err, rc, path, "mdb_env_open");
        goto fail_env;
    }
    if ((rc = mdb_txn_begin(r->env, NULL, MDB_RDONLY, &r->txn))) {
        rc = lmdb_fail(err, rc, path, "mdb_txn_begin");
        goto fail_env;
    }
    if ((rc = mdb_dbi_open(r->txn, NULL, 0, &r->dbi)) || (rc = mdb_stat(r->txn, r->dbi, &st)) ||
        (rc = mdb_cursor_open(r->txn, r->dbi, &r->cur))) {
        rc = lmdb_fail(err, rc, path, "opening the database");
        goto fail_txn;
    }
    r->count = st.ms_entries;
    *out = r;
    return 0;

fail_txn:
    mdb_txn_abort(r->txn);
fail_env:
    mdb_env_close(r->env);
fail:
    free(r->path);
    free(r);
    return rc;
}

uint64_t rec_lmdb_reader_count(const rec_lmdb_reader *r) { return r->count; }

static int parse_key(const rec_lmdb_reader *r, const MDB_val *k, uint64_t *index, sb_err *err) {
    const char *s = k->mv_data;
    uint64_t v = 0;
    int ok = k->mv_size == REC_LMDB_KEY_DIGITS;
    for (size_t i = 0; ok && i < k->mv_size; i++) {
        ok = s[i] >= '0' && s[i] <= '9';
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (!ok)
        return sb_err_set(err, SB_E_CORRUPT, "shard %s: key of %zu bytes is not %d decimal digits",
                          r->path, k->mv_size, REC_LMDB_KEY_DIGITS);
    if (index) *index = v;
    return 0;
}

int rec_lmdb_reader_next(rec_lmdb_reader *r, const uint8_t **data, size_t *n, uint64_t *index,
                         sb_err *err) {
    MDB_val k, v;
    int rc = mdb_cursor_get(r->cur, &k, &v, r->started ? MDB_NEXT : MDB_FIRST);
    r->started = 1;
    if (rc == MDB_NOTFOUND) return SB_E_NOTFOUND;
    if (rc) return lmdb_fail(err, rc, r->path, "mdb_cursor_get");
    if ((rc = parse_key(r, &k, index, err))) return rc;
    *data = v.mv_data;
    *n = v.mv_size;
    return 0;
}

void rec_lmdb_reader_rewind(rec_lmdb_reader *r) { r->started = 0; }

int rec_lmdb_reader_get(rec_lmdb_reader *r, uint64_t index, const uint8_t **data, size_t *n,
                        sb_err *err) {
    char key[REC_LMDB_KEY_DIGITS + 1];
    format_key(key, index);
    MDB_val k = {REC_LMDB_KEY_DIGITS, key}, v;
    int rc = mdb_get(r->txn, r->dbi, &k, &v);
    if (rc == MDB_NOTFOUND)
        return sb_err_set(err, SB_E_NOTFOUND, "shard %s: no record %llu (%llu records)", r->path,
                          (unsigned long long)index, (unsigned long long)r->count);
    if (rc) return lmdb_fail(err, rc, r->path, "mdb_get");
    *data = v.mv_data;
    *n = v.mv_size;
    return 0;
}

void rec_lmdb_reader_close(rec_lmdb_reader *r) {
    if (!r) return;
    mdb_cursor_close(r->cur);
    mdb_txn_abort(r->txn);
    mdb_env_close(r->env);
    free(r->path);
    free(r);
}
