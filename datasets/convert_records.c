/* datasets/convert_records.c — TFRecord shards <-> LMDB shards, record for record and byte for
 * byte (convert_tfrecord). Each input file becomes one output file of the same base name; files
 * are converted in parallel (one OpenMP thread per file at a time). A record that fails its CRC,
 * or that does not decode as an Example, is skipped, counted and named: never silently kept.
 * The format of every input is sniffed (TFRecord: a valid length CRC; LMDB: the meta page
 * magic), so an input already converted is left alone.
 */
#include "datasets/datasets.h"

#include <errno.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LMDB_META_MAGIC 0xBEEFC0DEu /* MDB_meta.mm_magic, right after the 16-byte page header */

enum sniffed { SNIFF_EMPTY, SNIFF_TFRECORD, SNIFF_LMDB, SNIFF_UNKNOWN };

static int sniff(const char *path, enum sniffed *kind, sb_err *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return sb_err_setc(err, errno, "input %s", path);
    uint8_t b[20];
    size_t n = fread(b, 1, sizeof b, fp);
    fclose(fp);
    uint32_t magic = 0, lcrc = 0;
    if (n >= 20) memcpy(&magic, b + 16, 4);
    if (n >= 12) memcpy(&lcrc, b + 8, 4);
    if (n == 0) *kind = SNIFF_EMPTY;
    else if (n >= 20 && magic == LMDB_META_MAGIC) *kind = SNIFF_LMDB;
    else if (n >= 12 && crc32c_mask(crc32c(b, 8)) == lcrc) *kind = SNIFF_TFRECORD;
    else *kind = SNIFF_UNKNOWN;
    return 0;
}

static int is_temporary(const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    return (n > 4 && !strcmp(base + n - 4, ".tmp")) || strstr(base, ".tmp.") != NULL;
}

/* Per-file counters, merged into the caller's stats after the parallel loop. */
typedef struct file_result {
    uint64_t records, bytes, corrupt, lost_tail, skipped;
    int rc;
    sb_err err;
} file_result;

/* The progress bar: every thread counts records; thread 0 alone draws (sb_progress is not
 * thread-safe). */
typedef struct progress {
    uint64_t done;
    sb_progress bar;
    int draw;
} progress;

static void progress_add(progress *p) {
    uint64_t done;
#pragma omp atomic capture
    done = ++p->done;
    if (p->draw && (done & 63) == 0 && omp_get_thread_num() == 0) sb_progress_update(&p->bar, done);
}

static void note_corrupt(file_result *res, const sb_err *e) {
    res->corrupt++;
    sb_warn("skipped corrupt record: %s", e->msg);
}

static int check_example(ex_example *ex, const uint8_t *d, size_t n, const char *path,
                         uint64_t where, const char *unit, sb_err *e) {
    int rc = ex_decode(ex, d, n, e);
    if (rc) sb_err_wrap(e, "%s: %s %llu is not a tf.train.Example", path, unit,
                        (unsigned long long)where);
    return rc;
}

static void tfrecord_to_lmdb(const char *in, const char *out, const rec_convert_opts *o,
                             file_result *res, progress *prog) {
    tfr_reader *r = NULL;
    rec_lmdb_writer *w = NULL;
    ex_example ex;
    ex_init(&ex);
    sb_err e;
    if ((res->rc = tfr_reader_open(in, &r, &res->err))) goto done;
    if ((res->rc = rec_lmdb_writer_open(out, &o->lmdb, &w, &res->err))) goto done;
    for (;;) {
        const uint8_t *d;
        size_t n;
        uint64_t at = tfr_reader_offset(r);
        int rc = tfr_reader_next(r, &d, &n, &e);
        if (rc == SB_E_NOTFOUND) break;
        if (rc) {
            note_corrupt(res, &e);
            if (rc != SB_E_CRC || tfr_reader_offset(r) == at) res->lost_tail = 1;
            continue;
        }
        if (o->check_examples && check_example(&ex, d, n, in, at, "record at byte", &e)) {
            note_corrupt(res, &e);
            continue;
        }
        if ((res->rc = rec_lmdb_writer_put(w, d, n, &res->err))) goto done;
        res->records++;
        res->bytes += n;
        progress_add(prog);
    }
    res->rc = rec_lmdb_writer_commit(w, &res->err);
    w = NULL;
done:
    rec_lmdb_writer_abort(w);
    tfr_reader_close(r);
    ex_fini(&ex);
}

static void lmdb_to_tfrecord(const char *in, const char *out, const rec_convert_opts *o,
                             file_result *res, progress *prog) {
    rec_lmdb_reader *r = NULL;
    tfr_writer *w = NULL;
    ex_example ex;
    ex_init(&ex);
    sb_err e;
    if ((res->rc = rec_lmdb_reader_open(in, &r, &res->err))) goto done;
    if ((res->rc = tfr_writer_open(out, &w, &res->err))) goto done;
    for (;;) {
        const uint8_t *d;
        size_t n;
        uint64_t index;
        int rc = rec_lmdb_reader_next(r, &d, &n, &index, &e);
        if (rc == SB_E_NOTFOUND) break;
        if (rc == SB_E_CORRUPT) {
            note_corrupt(res, &e);
            continue;
        }
        if (rc) {
            res->rc = rc;
            res->err = e;
            goto done;
        }
        if (o->check_examples && check_example(&ex, d, n, in, index, "record", &e)) {
            note_corrupt(res, &e);
            continue;
        }
        if ((res->rc = tfr_writer_write(w, d, n, &res->err))) goto done;
        res->records++;
        res->bytes += n;
        progress_add(prog);
    }
    res->rc = tfr_writer_commit(w, &res->err);
    w = NULL;
done:
    tfr_writer_abort(w);
    rec_lmdb_reader_close(r);
    ex_fini(&ex);
}

static void convert_one(const char *in, const char *out_dir, const rec_convert_opts *o,
                        file_result *res, progress *prog) {
    if (is_temporary(in)) {
        res->skipped = 1;
        return;
    }
    enum sniffed kind = SNIFF_UNKNOWN;
    if ((res->rc = sniff(in, &kind, &res->err))) return;
    int want_in = o->to == REC_FORMAT_LMDB ? SNIFF_TFRECORD : SNIFF_LMDB;
    if ((kind == SNIFF_LMDB && o->to == REC_FORMAT_LMDB) ||
        (kind == SNIFF_TFRECORD && o->to == REC_FORMAT_TFRECORD)) {
        sb_info("%s is already %s; skipped", in, o->to == REC_FORMAT_LMDB ? "LMDB" : "TFRecord");
        res->skipped = 1;
        return;
    }
    if ((kind == SNIFF_UNKNOWN || kind == SNIFF_EMPTY) && want_in == SNIFF_LMDB) {
        res->rc = sb_err_set(&res->err, SB_E_FORMAT, "input %s: not an LMDB shard%s", in,
                             kind == SNIFF_EMPTY ? " (empty file)" : "");
        return;
    }
    /* an unknown file is read as TFRecord: its first record then fails with the offset */
    const char *base = strrchr(in, '/');
    base = base ? base + 1 : in;
    size_t n = strlen(out_dir) + strlen(base) + 2;
    char *out = sb_xmalloc(n);
    snprintf(out, n, "%s/%s", out_dir, base);
    if (o->to == REC_FORMAT_LMDB) tfrecord_to_lmdb(in, out, o, res, prog);
    else lmdb_to_tfrecord(in, out, o, res, prog);
    free(out);
}

int rec_convert_files(const char *const *inputs, size_t n, const char *out_dir,
                      const rec_convert_opts *opts, rec_convert_stats *stats, sb_err *err) {
    memset(stats, 0, sizeof *stats);
    int rc = sb_mkdirs(out_dir, err);
    if (rc) return rc;
    uint64_t total = 0;
    if (opts->to == REC_FORMAT_TFRECORD) { /* LMDB shards know their counts */
        for (size_t i = 0; i < n; i++) {
            rec_lmdb_reader *r;
            sb_err e;
            if (!is_temporary(inputs[i]) && rec_lmdb_reader_open(inputs[i], &r, &e) == 0) {
                total += rec_lmdb_reader_count(r);
                rec_lmdb_reader_close(r);
            }
        }
    }
    file_result *res = sb_xcalloc(n ? n : 1, sizeof *res);
    progress prog = {.draw = opts->progress};
    sb_progress_init(&prog.bar, "converting", "rec", total);
    int threads = opts->threads > 0 ? opts->threads : 2;
    if ((size_t)threads > n) threads = n ? (int)n : 1;
    int stop = 0;
#pragma omp parallel num_threads(threads)
    {
#pragma omp for schedule(dynamic, 1)
        for (size_t i = 0; i < n; i++) {
            int stopped;
#pragma omp atomic read
            stopped = stop;
            if (stopped) continue; /* an error ends the run; the files after it are not started */
            convert_one(inputs[i], out_dir, opts, &res[i], &prog);
            if (res[i].rc) {
#pragma omp atomic write
                stop = 1;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (res[i].rc && !rc) {
            rc = res[i].rc;
            *err = res[i].err;
        }
        stats->records += res[i].records;
        stats->bytes += res[i].bytes;
        stats->corrupt += res[i].corrupt;
        stats->lost_tails += res[i].lost_tail;
        stats->skipped_files += res[i].skipped;
        if (!res[i].rc && !res[i].skipped) stats->files++;
    }
    if (opts->progress) {
        prog.bar.done = prog.done;
        sb_progress_finish(&prog.bar);
    }
    free(res);
    return rc;
}
