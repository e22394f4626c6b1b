/* datasets/download_convert.c — download_and_convert_data for mnist, fashion_mnist and cifar10:
 * fetch the canonical archives (dl_fetch), decode them (gzip'ed IDX files; CIFAR-10's binary
 * tarball) and write one LMDB shard per split plus labels.txt, as slim's
 * download_and_convert_{mnist,cifar10}.py do with TFRecords.
 *
 * Departure from slim: slim stores these images PNG-encoded. We have no PNG codec dependency, so
 * image/encoded holds the raw uint8 pixels in HWC order with image/format "raw" (and height,
 * width, channels, colorspace), which the input pipeline reads without decoding. CIFAR-10 comes
 * from the binary tarball rather than the Python-pickle one (same images and labels).
 */
#include "datasets/datasets.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>
#include <zlib.h>

typedef struct remote_file {
    const char *name;
    const char *sha256;      /* published sum of the canonical file, NULL if none is known */
} remote_file;

#define MNIST_URL "https://storage.googleapis.com/cvdf-datasets/mnist/"
#define FASHION_URL "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
#define CIFAR10_URL "https://www.cs.toronto.edu/~kriz/"
#define FLOWERS_URL "http://download.tensorflow.org/example_images/"

/* [split][images, labels] */
static const remote_file k_mnist[2][2] = {
    {{"train-images-idx3-ubyte.gz",
      "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"},
     {"train-labels-idx1-ubyte.gz",
      "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"}},
    {{"t10k-images-idx3-ubyte.gz",
      "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"},
     {"t10k-labels-idx1-ubyte.gz",
      "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"}},
};
/* Zalando publishes only MD5 sums for fashion_mnist, so these are not verified. */
static const remote_file k_fashion[2][2] = {
    {{"train-images-idx3-ubyte.gz", NULL}, {"train-labels-idx1-ubyte.gz", NULL}},
    {{"t10k-images-idx3-ubyte.gz", NULL}, {"t10k-labels-idx1-ubyte.gz", NULL}},
};
/* No published checksum for flower_photos.tgz. */
static const remote_file k_flowers = {"flower_photos.tgz", NULL};
static const remote_file k_cifar10 = {
    "cifar-10-binary.tar.gz", "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"};

static char *join(const char *a, const char *b) {
    size_t la = strlen(a), n = la + strlen(b) + 2;
    char *s = sb_xmalloc(n);
    snprintf(s, n, "%s%s%s", a, la && a[la - 1] == '/' ? "" : "/", b);
    return s;
}

static int fetch(const char *base_url, const char *dir, const remote_file *f,
                 const dsf_convert_opts *o, char **local, sb_err *err) {
    char *url = join(base_url, f->name);
    *local = join(dir, f->name);
    const char *sum = o->verify_checksums ? f->sha256 : NULL;
    if (o->verify_checksums && !f->sha256)
        sb_info("%s: no published SHA-256 is known; not verified", f->name);
    sb_info("fetching %s", url);
    int rc = dl_fetch(url, *local, sum, &o->dl, err);
    free(url);
    return rc;
}

/* ------------------------------------------------------------------------------------------ *
 * gzip'ed IDX (MNIST layout): big-endian magic 0x00000803 (images) / 0x00000801 (labels), counts
 * and dimensions, then uint8 data.
 * ------------------------------------------------------------------------------------------ */

static int gz_read_all(gzFile g, void *buf, size_t n, const char *path, sb_err *err) {
    uint8_t *p = buf;
    while (n) {
        unsigned chunk = n > (1u << 30) ? 1u << 30 : (unsigned)n;
        int got = gzread(g, p, chunk);
        if (got <= 0) {
            int zerr;
            const char *msg = gzerror(g, &zerr);
            return sb_err_set(err, got < 0 ? SB_E_CORRUPT : SB_E_TRUNCATED, "%s: %s", path,
                              got < 0 ? msg : "ends early");
        }
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Read an IDX file: dims[0] = count, dims[1..] = sizes; *data malloc'ed. */
static int idx_read(const char *path, uint32_t magic, int ndim, uint32_t *dims, uint8_t **data,
                    size_t *n, sb_err *err) {
    *data = NULL;
    gzFile g = gzopen(path, "rb");
    if (!g) return sb_err_setc(err, errno ? errno : ENOMEM, "opening %s", path);
    gzbuffer(g, 1 << 18);
    uint8_t hdr[16];
    int rc = gz_read_all(g, hdr, 4 + 4 * (size_t)ndim, path, err);
    if (!rc && be32(hdr) != magic)
        rc = sb_err_set(err, SB_E_FORMAT, "%s: IDX magic 0x%08x, expected 0x%08x", path,
                        be32(hdr), magic);
    size_t total = 1;
    for (int i = 0; !rc && i < ndim; i++) {
        dims[i] = be32(hdr + 4 + 4 * i);
        total *= dims[i];
    }
    if (!rc && total > ((size_t)1 << 34))
        rc = sb_err_set(err, SB_E_FORMAT, "%s: implausible size %zu", path, total);
    if (!rc) {
        *data = sb_xmalloc(total ? total : 1);
        rc = gz_read_all(g, *data, total, path, err);
        *n = total;
    }
    gzclose(g);
    if (rc) {
        free(*data);
        *data = NULL;
    }
    return rc;
}

typedef struct raw_writer {
    rec_lmdb_writer *w;
    ex_builder b;
    ex_buf buf;
    const char *const *names;
} raw_writer;

static int raw_put(raw_writer *rw, const uint8_t *pixels, int h, int w, int c, int label,
                   sb_err *err) {
    ex_image img = {
        .encoded = pixels,
        .encoded_len = (size_t)h * (size_t)w * (size_t)c,
        .format = "raw",
        .colorspace = c == 1 ? "Grayscale" : "RGB",
        .channels = c,
        .height = h,
        .width = w,
        .label = label,
        .text = rw->names ? rw->names[label] : "",
    };
    ex_encode_image(&img, &rw->b, &rw->buf);
    return rec_lmdb_writer_put(rw->w, rw->buf.data, rw->buf.len, err);
}

static int raw_open(raw_writer *rw, const char *shard, const dsf_dataset *ds, sb_err *err) {
    memset(rw, 0, sizeof *rw);
    ex_builder_init(&rw->b);
    ex_buf_init(&rw->buf);
    rw->names = dsf_class_names(ds);
    return rec_lmdb_writer_open(shard, NULL, &rw->w, err);
}

static int raw_close(raw_writer *rw, int ok, sb_err *err) {
    int rc = 0;
    if (rw->w) {
        if (ok) rc = rec_lmdb_writer_commit(rw->w, err);
        else rec_lmdb_writer_abort(rw->w);
    }
    rw->w = NULL;
    ex_builder_fini(&rw->b);
    ex_buf_fini(&rw->buf);
    return rc;
}

static int convert_idx(const dsf_dataset *ds, const char *images, const char *labels,
                       const char *shard, sb_err *err) {
    uint32_t idims[3], ldims[1];
    uint8_t *px = NULL, *lb = NULL;
    size_t npx, nlb;
    raw_writer rw = {0};
    int rc = idx_read(images, 0x803, 3, idims, &px, &npx, err);
    if (!rc) rc = idx_read(labels, 0x801, 1, ldims, &lb, &nlb, err);
    if (!rc && idims[0] != ldims[0])
        rc = sb_err_set(err, SB_E_FORMAT, "%s has %u images but %s has %u labels", images,
                        idims[0], labels, ldims[0]);
    if (rc) goto done;
    if ((rc = raw_open(&rw, shard, ds, err))) goto done;
    size_t per = (size_t)idims[1] * idims[2];
    sb_progress bar;
    sb_progress_init(&bar, "converting", "img", idims[0]);
    for (uint32_t i = 0; i < idims[0] && !rc; i++) {
        if (lb[i] >= ds->num_classes) {
            rc = sb_err_set(err, SB_E_RANGE, "%s: label %u of record %u is not below %d", labels,
                            lb[i], i, ds->num_classes);
            break;
        }
        rc = raw_put(&rw, px + per * i, (int)idims[1], (int)idims[2], 1, lb[i], err);
        sb_progress_update(&bar, i + 1);
    }
    if (!rc) sb_progress_finish(&bar);
done:;
    int crc = raw_close(&rw, rc == 0, err); /* safe on the zeroed struct too */
    if (!rc) rc = crc;
    free(px);
    free(lb);
    return rc;
}

/* ------------------------------------------------------------------------------------------ *
 * .tar.gz members (ustar, with GNU long names): each regular file the caller wants is read whole
 * and handed to a callback.
 * ------------------------------------------------------------------------------------------ */

static int octal(const uint8_t *p, size_t n, uint64_t *v) {
    *v = 0;
    size_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == 0)) i++;
    for (; i < n && p[i] >= '0' && p[i] <= '7'; i++) *v = *v * 8 + (uint64_t)(p[i] - '0');
    return i < n && p[i] != ' ' && p[i] != 0 ? -1 : 0;
}

typedef int (*tar_want_fn)(const char *name, void *ctx);
/* data is valid during the call only; a non-zero return stops the walk and is returned. */
typedef int (*tar_member_fn)(const char *name, const uint8_t *data, size_t n, void *ctx,
                             sb_err *err);

static int tar_gz_each(const char *path, tar_want_fn want, tar_member_fn fn, void *ctx,
                       sb_err *err) {
    gzFile g = gzopen(path, "rb");
    if (!g) return sb_err_setc(err, errno ? errno : ENOMEM, "opening %s", path);
    gzbuffer(g, 1 << 18);
    int rc = 0;
    uint8_t hdr[512], *data = NULL;
    char name[4096], *longname = NULL;
    for (;;) {
        int got = gzread(g, hdr, sizeof hdr);
        if (got == 0) break;
        if (got != (int)sizeof hdr) {
            rc = sb_err_set(err, SB_E_TRUNCATED, "%s: truncated tar header", path);
            break;
        }
        if (hdr[0] == 0) break; /* end-of-archive block */
        uint64_t len;
        if (octal(hdr + 124, 12, &len) || len > ((uint64_t)1 << 32)) {
            rc = sb_err_set(err, SB_E_FORMAT, "%s: bad tar header", path);
            break;
        }
        if (longname) {
            snprintf(name, sizeof name, "%s", longname);
            free(longname);
            longname = NULL;
        } else if (!memcmp(hdr + 257, "ustar", 5) && hdr[345]) {
            snprintf(name, sizeof name, "%.155s/%.100s", (const char *)hdr + 345,
                     (const char *)hdr);
        } else {
            snprintf(name, sizeof name, "%.100s", (const char *)hdr);
        }
        char type = (char)hdr[156];
        uint64_t padded = (len + 511) / 512 * 512;
        int regular = type == '0' || type == 0;
        if (type == 'L' || (regular && want(name, ctx))) {
            data = sb_xrealloc(data, padded ? padded : 1);
            if ((rc = gz_read_all(g, data, (size_t)padded, path, err))) break;
            if (type == 'L') {
                longname = sb_xmalloc(len + 1);
                memcpy(longname, data, len);
                longname[len] = '\0';
            } else if ((rc = fn(name, data, (size_t)len, ctx, err))) {
                break;
            }
        } else if (padded && gzseek(g, (z_off_t)padded, SEEK_CUR) < 0) {
            rc = sb_err_set(err, SB_E_TRUNCATED, "%s: truncated in %s", path, name);
            break;
        }
    }
    gzclose(g);
    free(data);
    free(longname);
    return rc;
}

/* ------------------------------------------------------------------------------------------ *
 * CIFAR-10 binary tarball: cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin, each 10000
 * records of [label u8][1024 R][1024 G][1024 B].
 * ------------------------------------------------------------------------------------------ */

#define CIFAR_REC 3073

typedef struct cifar_batches {
    const char *path;
    uint8_t *batch[6];       /* data_batch_1..5, test_batch */
    size_t size[6];
} cifar_batches;

static int cifar_slot(const char *name) {
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    if (!strcmp(base, "test_batch.bin")) return 5;
    if (!strncmp(base, "data_batch_", 11) && base[11] >= '1' && base[11] <= '5' &&
        !strcmp(base + 12, ".bin"))
        return base[11] - '1';
    return -1;
}

static int cifar_want(const char *name, void *ctx) { return cifar_slot(name) >= 0; }

static int cifar_keep(const char *name, const uint8_t *data, size_t n, void *ctx, sb_err *err) {
    cifar_batches *cb = ctx;
    int slot = cifar_slot(name);
    if (n % CIFAR_REC)
        return sb_err_set(err, SB_E_FORMAT, "%s: %s has %zu bytes, not records of %d", cb->path,
                          name, n, CIFAR_REC);
    free(cb->batch[slot]);
    cb->batch[slot] = sb_xmalloc(n ? n : 1);
    memcpy(cb->batch[slot], data, n);
    cb->size[slot] = n;
    return 0;
}

/* Read the members we need from the tarball, whatever their order in it. */
static int cifar_read_tar(cifar_batches *cb, sb_err *err) {
    int rc = tar_gz_each(cb->path, cifar_want, cifar_keep, cb, err);
    for (int i = 0; !rc && i < 6; i++)
        if (!cb->batch[i])
            rc = sb_err_set(err, SB_E_FORMAT, "%s: %s missing", cb->path,
                            i == 5 ? "test_batch.bin" : "a data_batch_N.bin");
    return rc;
}

static int cifar_write(const dsf_dataset *ds, uint8_t *const *batches, const size_t *sizes,
                       int nb, const char *shard, sb_err *err) {
    raw_writer rw;
    int rc = raw_open(&rw, shard, ds, err);
    if (rc) {
        raw_close(&rw, 0, err);
        return rc;
    }
    uint8_t hwc[32 * 32 * 3];
    for (int b = 0; b < nb && !rc; b++) {
        for (size_t r = 0; r < sizes[b] / CIFAR_REC && !rc; r++) {
            const uint8_t *rec = batches[b] + r * CIFAR_REC;
            if (rec[0] >= ds->num_classes) {
                rc = sb_err_set(err, SB_E_RANGE, "cifar10 batch %d record %zu: label %u", b + 1, r,
                                rec[0]);
                break;
            }
            for (int p = 0; p < 1024; p++)
                for (int c = 0; c < 3; c++) hwc[p * 3 + c] = rec[1 + c * 1024 + p];
            rc = raw_put(&rw, hwc, 32, 32, 3, rec[0], err);
        }
    }
    int crc = raw_close(&rw, rc == 0, err);
    return rc ? rc : crc;
}

/* ------------------------------------------------------------------------------------------ *
 * Flowers (slim's download_and_convert_flowers.py): flower_photos/<class>/<photo>.jpg, classes
 * the sorted directory names; 350 photos for validation, the rest for training; 5 shards each;
 * the JPEG bytes kept as they are with their height and width.
 * Departure: slim shuffles os.listdir() order with Python's random.seed(0), which no other
 * program can reproduce (listdir order is the file system's). We sort by class and name and
 * shuffle with a fixed-seed SplitMix64 Fisher-Yates, so every run on every machine agrees.
 * ------------------------------------------------------------------------------------------ */

#define FLOWERS_VALIDATION 350

typedef struct photo {
    char *cls, *name;
    uint8_t *data;
    size_t n;
} photo;

typedef struct photo_set {
    photo *v;
    size_t count, cap;
} photo_set;

/* ".../flower_photos/<class>/<file>": *cls and *file point into name. */
static int flower_parts(const char *name, const char **cls, size_t *cls_len, const char **file) {
    const char *root = strstr(name, "flower_photos/");
    if (!root || (root != name && root[-1] != '/')) return 0;
    *cls = root + 14;
    const char *slash = strchr(*cls, '/');
    if (!slash || slash == *cls || !slash[1] || strchr(slash + 1, '/')) return 0;
    *cls_len = (size_t)(slash - *cls);
    *file = slash + 1;
    return 1;
}

static int flowers_want(const char *name, void *ctx) {
    const char *c, *f;
    size_t cl;
    return flower_parts(name, &c, &cl, &f);
}

static int flowers_keep(const char *name, const uint8_t *data, size_t n, void *ctx, sb_err *err) {
    photo_set *ps = ctx;
    const char *c = NULL, *f = NULL;
    size_t cl = 0;
    SB_ASSERT(flower_parts(name, &c, &cl, &f)); /* flowers_want said yes */
    if (ps->count == ps->cap) {
        ps->cap = ps->cap ? ps->cap * 2 : 1024;
        ps->v = sb_xrealloc(ps->v, ps->cap * sizeof *ps->v);
    }
    photo *p = &ps->v[ps->count++];
    p->cls = sb_xmalloc(cl + 1);
    memcpy(p->cls, c, cl);
    p->cls[cl] = '\0';
    p->name = sb_xstrdup(f);
    p->data = sb_xmalloc(n ? n : 1);
    memcpy(p->data, data, n);
    p->n = n;
    return 0;
}

static int cmp_photo(const void *a, const void *b) {
    const photo *x = a, *y = b;
    int c = strcmp(x->cls, y->cls);
    return c ? c : strcmp(x->name, y->name);
}

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void photo_set_free(photo_set *ps) {
    for (size_t i = 0; i < ps->count; i++) {
        free(ps->v[i].cls);
        free(ps->v[i].name);
        free(ps->v[i].data);
    }
    free(ps->v);
    memset(ps, 0, sizeof *ps);
}

/* Write photos [0, n) of v into the split's shards; undecodable photos are skipped and named. */
static int flowers_write_split(const char *dir, const char *split, int shards, photo *v, size_t n,
                               char *const *classes, int n_classes, uint64_t *skipped,
                               sb_err *err) {
    tjhandle tj = tjInitDecompress();
    if (!tj) return sb_err_set(err, SB_E_JPEG, "tjInitDecompress: %s", tjGetErrorStr2(NULL));
    ex_builder b;
    ex_buf buf;
    ex_builder_init(&b);
    ex_buf_init(&buf);
    int rc = 0;
    size_t per = (n + (size_t)shards - 1) / (size_t)shards;
    sb_progress bar;
    sb_progress_init(&bar, split, "img", n);
    for (int s = 0; s < shards && !rc; s++) {
        char path[4096];
        dsf_shard_path(path, sizeof path, dir, split, s, shards);
        rec_lmdb_writer *w;
        if ((rc = rec_lmdb_writer_open(path, NULL, &w, err))) break;
        for (size_t i = (size_t)s * per; i < SB_MIN(n, (size_t)(s + 1) * per) && !rc; i++) {
            int width, height, subsamp, cs;
            if (v[i].n > (size_t)ULONG_MAX ||
                tjDecompressHeader3(tj, v[i].data, (unsigned long)v[i].n, &width, &height,
                                    &subsamp, &cs) != 0) {
                sb_warn("skipped %s/%s: not a JPEG: %s", v[i].cls, v[i].name, tjGetErrorStr2(tj));
                (*skipped)++;
                continue;
            }
            int label = 0;
            while (label < n_classes && strcmp(classes[label], v[i].cls)) label++;
            ex_image img = {
                .encoded = v[i].data,
                .encoded_len = v[i].n,
                .format = "jpg", /* slim's flowers writes b'jpg' */
                .colorspace = cs == TJCS_GRAY ? "Grayscale" : cs == TJCS_CMYK || cs == TJCS_YCCK ? "CMYK" : "RGB",
                .channels = cs == TJCS_GRAY ? 1 : cs == TJCS_CMYK || cs == TJCS_YCCK ? 4 : 3,
                .height = height,
                .width = width,
                .label = label,
                .text = v[i].cls,
                .filename = v[i].name,
            };
            ex_encode_image(&img, &b, &buf);
            rc = rec_lmdb_writer_put(w, buf.data, buf.len, err);
            sb_progress_update(&bar, i + 1);
        }
        if (rc) rec_lmdb_writer_abort(w);
        else rc = rec_lmdb_writer_commit(w, err);
    }
    if (!rc) sb_progress_finish(&bar);
    ex_buf_fini(&buf);
    ex_builder_fini(&b);
    tjDestroy(tj);
    return rc;
}

static int flowers_convert(const dsf_dataset *ds, const char *dir, const char *tgz, int pending,
                           sb_err *err) {
    photo_set ps = {0};
    char **classes = NULL;
    int n_classes = 0;
    uint64_t skipped = 0;
    int rc = tar_gz_each(tgz, flowers_want, flowers_keep, &ps, err);
    if (!rc && ps.count <= FLOWERS_VALIDATION)
        rc = sb_err_set(err, SB_E_FORMAT, "%s: %zu photos under flower_photos/<class>/, need more "
                        "than the %d validation photos", tgz, ps.count, FLOWERS_VALIDATION);
    if (!rc) {
        qsort(ps.v, ps.count, sizeof *ps.v, cmp_photo);
        classes = sb_xmalloc(ps.count * sizeof *classes);
        for (size_t i = 0; i < ps.count; i++)
            if (!n_classes || strcmp(classes[n_classes - 1], ps.v[i].cls))
                classes[n_classes++] = ps.v[i].cls;
        uint64_t seed = 0;
        for (size_t i = ps.count - 1; i > 0; i--) {
            size_t j = (size_t)(splitmix64(&seed) % (i + 1));
            photo t = ps.v[i];
            ps.v[i] = ps.v[j];
            ps.v[j] = t;
        }
        const dsf_split *tr = &ds->splits[0], *va = &ds->splits[1];
        if (pending & 1)
            rc = flowers_write_split(dir, tr->name, tr->num_shards, ps.v + FLOWERS_VALIDATION,
                                     ps.count - FLOWERS_VALIDATION, classes, n_classes, &skipped,
                                     err);
        if (!rc && (pending & 2))
            rc = flowers_write_split(dir, va->name, va->num_shards, ps.v, FLOWERS_VALIDATION,
                                     classes, n_classes, &skipped, err);
    }
    if (!rc && skipped) sb_warn("flowers: %llu files skipped (not JPEG)", (unsigned long long)skipped);
    if (!rc) {
        char *path = join(dir, "labels.txt");
        rc = dsf_labels_write(path, NULL, (const char *const *)classes, n_classes, err);
        free(path);
    }
    free(classes);
    photo_set_free(&ps);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */

static int write_labels(const dsf_dataset *ds, const char *dir, sb_err *err) {
    char *path = join(dir, "labels.txt");
    int rc = dsf_labels_write(path, NULL, dsf_class_names(ds), ds->num_classes, err);
    free(path);
    return rc;
}

static void remove_download(const char *path, const dsf_convert_opts *o) {
    if (!o->keep_downloads && path) unlink(path);
}

int dsf_download_and_convert(const dsf_dataset *ds, const char *dir, const dsf_convert_opts *o,
                             sb_err *err) {
    int is_mnist = !strcmp(ds->name, "mnist"), is_fashion = !strcmp(ds->name, "fashion_mnist");
    int is_cifar = !strcmp(ds->name, "cifar10"), is_flowers = !strcmp(ds->name, "flowers");
    if (!is_mnist && !is_fashion && !is_cifar && !is_flowers)
        return sb_err_set(err, SB_E_UNSUPPORTED,
                          "--dataset_name=%s: download_and_convert_data supports mnist, "
                          "fashion_mnist, cifar10 and flowers",
                          ds->name);
    int rc = sb_mkdirs(dir, err);
    if (rc) return rc;
    char shards[2][4096];
    int pending = 0;
    for (int s = 0; s < 2; s++) { /* a split is done when all its shards exist */
        int n = ds->splits[s].num_shards, have = 0;
        for (int k = 0; k < n; k++) {
            dsf_shard_path(shards[s], sizeof shards[s], dir, ds->splits[s].name, k, n);
            have += access(shards[s], F_OK) == 0;
        }
        dsf_shard_path(shards[s], sizeof shards[s], dir, ds->splits[s].name, 0, n);
        if (have == n) sb_info("%s split already exists; skipping", ds->splits[s].name);
        else pending |= 1 << s;
    }
    if (pending && (is_cifar || is_flowers)) {
        const char *base = o->source_url ? o->source_url : is_cifar ? CIFAR10_URL : FLOWERS_URL;
        char *local = NULL;
        cifar_batches cb = {0};
        rc = fetch(base, dir, is_cifar ? &k_cifar10 : &k_flowers, o, &local, err);
        cb.path = local;
        if (!rc && is_flowers) rc = flowers_convert(ds, dir, local, pending, err);
        if (!rc && is_cifar) rc = cifar_read_tar(&cb, err);
        if (!rc && is_cifar && (pending & 1)) rc = cifar_write(ds, cb.batch, cb.size, 5, shards[0], err);
        if (!rc && is_cifar && (pending & 2))
            rc = cifar_write(ds, cb.batch + 5, cb.size + 5, 1, shards[1], err);
        for (int i = 0; i < 6; i++) free(cb.batch[i]);
        if (!rc) remove_download(local, o);
        free(local);
    }
    for (int s = 0; s < 2 && !rc && (is_mnist || is_fashion); s++) {
        if (!(pending & (1 << s))) continue;
        const remote_file *files = is_mnist ? k_mnist[s] : k_fashion[s];
        const char *base = o->source_url ? o->source_url : is_mnist ? MNIST_URL : FASHION_URL;
        char *images = NULL, *labels = NULL;
        rc = fetch(base, dir, &files[0], o, &images, err);
        if (!rc) rc = fetch(base, dir, &files[1], o, &labels, err);
        if (!rc) rc = convert_idx(ds, images, labels, shards[s], err);
        if (!rc) {
            remove_download(images, o);
            remove_download(labels, o);
        }
        free(images);
        free(labels);
    }
    /* flowers' classes come from the archive's directories; flowers_convert wrote them */
    if (!rc && !is_flowers) rc = write_labels(ds, dir, err);
    return rc;
}
