/* train/summary.c — TensorBoard event files written by hand: TFRecord framing (u64 length, u32
 * masked crc32c of the length, data, u32 masked crc32c of the data) of tensorflow.Event protos.
 *
 *   Event            wall_time = 1 (double), step = 2 (int64), file_version = 3 (string),
 *                    summary = 5 (Summary)
 *   Summary          value = 1 (repeated Value)
 *   Summary.Value    tag = 1 (string), simple_value = 2 (float), histo = 5 (HistogramProto)
 *   HistogramProto   min = 1, max = 2, num = 3, sum = 4, sum_squares = 5 (double),
 *                    bucket_limit = 6, bucket = 7 (packed repeated double)
 *
 * Histograms use TensorFlow's default bucket limits (core/lib/histogram: ±1e-12 x 1.1^k up to
 * 1e20, then DBL_MAX) and, like TensorFlow, emit the range of non-empty buckets. The file is
 * appended to as TensorFlow's EventsWriter does (not atomically); each flush fsyncs. Knows
 * nothing of nets.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "datasets/datasets.h"
#include "train/train_loop.h"

struct tb_writer {
    FILE *fp;
    char *path;
};

/* ---- a tiny protobuf encoder into a growing buffer ---- */
typedef struct pb {
    uint8_t *p;
    size_t n, cap;
    int fixed;   /* 1: p is caller-owned and must not grow; overflow sets failed */
    int failed;
} pb;

static void pb_reserve(pb *b, size_t more) {
    if (b->n + more <= b->cap) return;
    if (b->fixed) {
        b->failed = 1;
        return;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + more) cap *= 2;
    b->p = sb_xrealloc(b->p, cap);
    b->cap = cap;
}
static void pb_bytes(pb *b, const void *v, size_t n) {
    pb_reserve(b, n);
    if (b->failed) return;
    memcpy(b->p + b->n, v, n);
    b->n += n;
}
static void pb_varint(pb *b, uint64_t v) {
    uint8_t t[10];
    size_t k = 0;
    do {
        t[k++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
        v >>= 7;
    } while (v);
    pb_bytes(b, t, k);
}
static void pb_tag(pb *b, int field, int wire) { pb_varint(b, (uint64_t)field << 3 | (unsigned)wire); }
static void pb_double(pb *b, int field, double v) {
    pb_tag(b, field, 1);
    pb_bytes(b, &v, 8);
}
static void pb_float(pb *b, int field, float v) {
    pb_tag(b, field, 5);
    pb_bytes(b, &v, 4);
}
static void pb_int64(pb *b, int field, int64_t v) {
    pb_tag(b, field, 0);
    pb_varint(b, (uint64_t)v);
}
static void pb_lenbytes(pb *b, int field, const void *v, size_t n) {
    pb_tag(b, field, 2);
    pb_varint(b, n);
    pb_bytes(b, v, n);
}
static void pb_str(pb *b, int field, const char *s) { pb_lenbytes(b, field, s, strlen(s)); }

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void encode_scalars(pb *ev, double wall, int64_t step, const char *const *tags,
                           const float *values, int n) {
    pb_double(ev, 1, wall);
    pb_int64(ev, 2, step);
    pb summ = {0}, val = {0};
    for (int i = 0; i < n; i++) {
        val.n = 0;
        pb_str(&val, 1, tags[i]);
        pb_float(&val, 2, values[i]);
        pb_lenbytes(&summ, 1, val.p, val.n);
    }
    pb_lenbytes(ev, 5, summ.p, summ.n);
    free(summ.p);
    free(val.p);
}

size_t tb_encode_scalars_event(uint8_t *buf, size_t cap, double wall_time, int64_t step,
                               const char *const *tags, const float *values, int n) {
    pb ev = {buf, 0, cap, 1, 0};
    encode_scalars(&ev, wall_time, step, tags, values, n);
    return ev.failed ? 0 : ev.n;
}

static int write_record(tb_writer *w, const uint8_t *data, size_t n, sb_err *err) {
    uint64_t len = n;
    uint32_t lcrc = crc32c_mask(crc32c(&len, 8)), dcrc = crc32c_mask(crc32c(data, n));
    if (fwrite(&len, 8, 1, w->fp) != 1 || fwrite(&lcrc, 4, 1, w->fp) != 1 ||
        (n && fwrite(data, n, 1, w->fp) != 1) || fwrite(&dcrc, 4, 1, w->fp) != 1)
        return sb_err_setc(err, errno ? errno : EIO, "event file %s", w->path);
    return 0;
}

static int write_event(tb_writer *w, pb *ev, sb_err *err) {
    int rc = write_record(w, ev->p, ev->n, err);
    free(ev->p);
    return rc;
}

int tb_writer_open(tb_writer **out, const char *dir, sb_err *err) {
    *out = NULL;
    int rc = sb_mkdirs(dir, err);
    if (rc) return rc;
    char host[256] = "localhost", path[4096];
    gethostname(host, sizeof host - 1);
    double now = wall_now();
    snprintf(path, sizeof path, "%s/events.out.tfevents.%lld.%s", dir, (long long)now, host);
    FILE *fp = fopen(path, "ab");
    if (!fp) return sb_err_setc(err, errno, "event file %s", path);
    tb_writer *w = sb_xcalloc(1, sizeof *w);
    w->fp = fp;
    w->path = sb_xstrdup(path);
    pb ev = {0};
    pb_double(&ev, 1, now);
    pb_int64(&ev, 2, 0);
    pb_str(&ev, 3, "brain.Event:2");
    rc = write_event(w, &ev, err);
    if (rc == 0) rc = tb_writer_flush(w, err);
    if (rc) {
        tb_writer_close(w);
        return rc;
    }
    *out = w;
    return 0;
}

const char *tb_writer_path(const tb_writer *w) { return w->path; }

int tb_write_scalars(tb_writer *w, int64_t step, const char *const *tags, const float *values,
                     int n, sb_err *err) {
    pb ev = {0};
    encode_scalars(&ev, wall_now(), step, tags, values, n);
    return write_event(w, &ev, err);
}

/* TensorFlow's default histogram bucket limits (histogram.cc InitDefaultBucketsInner). */
static double *default_limits(int *count) {
    static const int cap = 2048;
    double *pos = sb_xmalloc(cap * sizeof(double));
    int np = 0;
    for (double v = 1e-12; v < 1e20; v *= 1.1) pos[np++] = v;
    double *lim = sb_xmalloc((size_t)(2 * np + 2) * sizeof(double));
    int k = 0;
    for (int i = np - 1; i >= 0; i--) lim[k++] = -pos[i];
    lim[k++] = 0.0;
    for (int i = 0; i < np; i++) lim[k++] = pos[i];
    lim[k++] = DBL_MAX;
    free(pos);
    *count = k;
    return lim;
}

/* First bucket whose limit is above x (bucket i holds [limit[i-1], limit[i])). */
static int bucket_of(const double *lim, int n, double x) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (lim[mid] > x) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

static void encode_histo(pb *val, const char *tag, const float *x, size_t n, const double *lim,
                         int nlim, double *counts) {
    double mn = DBL_MAX, mx = -DBL_MAX, sum = 0, sq = 0;
    memset(counts, 0, (size_t)nlim * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
        sum += v;
        sq += v * v;
        counts[bucket_of(lim, nlim, v)] += 1;
    }
    int first = 0, last = nlim - 1;
    while (first < last && counts[first] == 0) first++;
    while (last > first && counts[last] == 0) last--;
    pb h = {0};
    pb_double(&h, 1, n ? mn : 0);
    pb_double(&h, 2, n ? mx : 0);
    pb_double(&h, 3, (double)n);
    pb_double(&h, 4, sum);
    pb_double(&h, 5, sq);
    pb_tag(&h, 6, 2);
    pb_varint(&h, (uint64_t)(last - first + 1) * 8);
    pb_bytes(&h, lim + first, (size_t)(last - first + 1) * 8);
    pb_tag(&h, 7, 2);
    pb_varint(&h, (uint64_t)(last - first + 1) * 8);
    pb_bytes(&h, counts + first, (size_t)(last - first + 1) * 8);
    pb_str(val, 1, tag);
    pb_lenbytes(val, 5, h.p, h.n);
    free(h.p);
}

int tb_write_histograms(tb_writer *w, int64_t step, const char *const *tags,
                        const float *const *data, const size_t *counts, int n, sb_err *err) {
    int nlim;
    double *lim = default_limits(&nlim);
    double *bucket = sb_xmalloc((size_t)nlim * sizeof(double));
    pb ev = {0}, summ = {0}, val = {0};
    pb_double(&ev, 1, wall_now());
    pb_int64(&ev, 2, step);
    for (int i = 0; i < n; i++) {
        val.n = 0;
        encode_histo(&val, tags[i], data[i], counts[i], lim, nlim, bucket);
        pb_lenbytes(&summ, 1, val.p, val.n);
    }
    pb_lenbytes(&ev, 5, summ.p, summ.n);
    free(summ.p);
    free(val.p);
    free(bucket);
    free(lim);
    return write_event(w, &ev, err);
}

int tb_writer_flush(tb_writer *w, sb_err *err) {
    if (fflush(w->fp) != 0 || fsync(fileno(w->fp)) != 0)
        return sb_err_setc(err, errno, "event file %s", w->path);
    return 0;
}

void tb_writer_close(tb_writer *w) {
    if (!w) return;
    if (w->fp) fclose(w->fp);
    free(w->path);
    free(w);
}
