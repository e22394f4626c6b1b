/* datasets/tfrecord.c — TFRecord files, as TensorFlow's record_writer/record_reader write and
 * read them (no compression): u64 length LE, u32 masked crc32c of those 8 bytes, the data,
 * u32 masked crc32c of the data. The reader verifies both CRCs of every record and says which
 * file and byte offset failed; the writer goes through core's atomic file, so a crash never
 * leaves a half-written shard under the final name. Knows nothing of what the records hold.
 */
#include "datasets/datasets.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Records larger than this are taken as a corrupt length (TensorFlow has no limit, but no image
 * record comes near it and a bad length must not make us allocate terabytes). */
#define TFR_MAX_RECORD ((uint64_t)1 << 32)

struct tfr_reader {
    FILE *fp;
    char *path;
    uint64_t offset;    /* of the next record */
    int lost;           /* framing lost: no more records */
    uint8_t *buf;
    size_t cap;
};

int tfr_reader_open(const char *path, tfr_reader **out, sb_err *err) {
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return sb_err_setc(err, errno, "TFRecord %s", path);
    tfr_reader *r = sb_xcalloc(1, sizeof *r);
    r->fp = fp;
    r->path = sb_xstrdup(path);
    setvbuf(fp, NULL, _IOFBF, 1 << 20);
    *out = r;
    return 0;
}

static uint64_t le64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint32_t le32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

int tfr_reader_next(tfr_reader *r, const uint8_t **data, size_t *n, sb_err *err) {
    if (r->lost) return SB_E_NOTFOUND;
    uint8_t hdr[12];
    size_t got = fread(hdr, 1, sizeof hdr, r->fp);
    if (got == 0 && feof(r->fp)) return SB_E_NOTFOUND;
    if (ferror(r->fp)) {
        r->lost = 1;
        return sb_err_setc(err, EIO, "TFRecord %s: read error at byte %llu", r->path,
                           (unsigned long long)r->offset);
    }
    uint64_t at = r->offset;
    if (got < sizeof hdr) {
        r->lost = 1;
        return sb_err_set(err, SB_E_TRUNCATED,
                          "TFRecord %s: truncated record header at byte %llu (%zu of 12 bytes)",
                          r->path, (unsigned long long)at, got);
    }
    uint64_t len = le64(hdr);
    if (crc32c_mask(crc32c(hdr, 8)) != le32(hdr + 8)) {
        r->lost = 1;
        return sb_err_set(err, SB_E_CRC,
                          "TFRecord %s: corrupt length CRC of the record at byte %llu; the rest "
                          "of the file is unreadable",
                          r->path, (unsigned long long)at);
    }
    if (len > TFR_MAX_RECORD) {
        r->lost = 1;
        return sb_err_set(err, SB_E_CORRUPT, "TFRecord %s: record length %llu at byte %llu",
                          r->path, (unsigned long long)len, (unsigned long long)at);
    }
    if (len + 4 > r->cap) {
        r->cap = (size_t)len + 4 + (r->cap / 2);
        r->buf = sb_xrealloc(r->buf, r->cap);
    }
    got = fread(r->buf, 1, (size_t)len + 4, r->fp);
    if (got < len + 4) {
        r->lost = 1;
        return sb_err_set(err, SB_E_TRUNCATED,
                          "TFRecord %s: record at byte %llu truncated (%zu of %llu bytes)",
                          r->path, (unsigned long long)at, got, (unsigned long long)len + 4);
    }
    r->offset += 12 + len + 4;
    if (crc32c_mask(crc32c(r->buf, (size_t)len)) != le32(r->buf + len))
        return sb_err_set(err, SB_E_CRC, "TFRecord %s: corrupt data CRC of the record at byte %llu",
                          r->path, (unsigned long long)at);
    *data = r->buf;
    *n = (size_t)len;
    return 0;
}

uint64_t tfr_reader_offset(const tfr_reader *r) { return r->offset; }

void tfr_reader_close(tfr_reader *r) {
    if (!r) return;
    fclose(r->fp);
    free(r->path);
    free(r->buf);
    free(r);
}

struct tfr_writer {
    sb_atomic_file af;
};

int tfr_writer_open(const char *path, tfr_writer **out, sb_err *err) {
    tfr_writer *w = sb_xcalloc(1, sizeof *w);
    int rc = sb_atomic_open(&w->af, path, err);
    if (rc) {
        free(w);
        *out = NULL;
        return rc;
    }
    setvbuf(w->af.fp, NULL, _IOFBF, 1 << 20);
    *out = w;
    return 0;
}

int tfr_writer_write(tfr_writer *w, const uint8_t *data, size_t n, sb_err *err) {
    uint8_t hdr[12];
    uint64_t len = n;
    memcpy(hdr, &len, 8);
    uint32_t c = crc32c_mask(crc32c(hdr, 8));
    memcpy(hdr + 8, &c, 4);
    uint32_t dc = crc32c_mask(crc32c(data, n));
    if (fwrite(hdr, 1, 12, w->af.fp) != 12 || (n && fwrite(data, 1, n, w->af.fp) != n) ||
        fwrite(&dc, 1, 4, w->af.fp) != 4)
        return sb_err_setc(err, errno ? errno : EIO, "TFRecord %s: write", w->af.tmp_path);
    return 0;
}

int tfr_writer_commit(tfr_writer *w, sb_err *err) {
    int rc = sb_atomic_commit(&w->af, err);
    free(w);
    return rc;
}

void tfr_writer_abort(tfr_writer *w) {
    if (!w) return;
    sb_atomic_abort(&w->af);
    free(w);
}
