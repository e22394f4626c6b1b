/* datasets/datasets.h — records on disk and the data sets that fill them.
 *
 * Public API of datasets/ (DESIGN.md "Records on disk"):
 *   crc32c_    CRC-32C (Castagnoli) and TFRecord's masking of it
 *   ex_        tf.train.Example: protobuf wire-format decoder with accessors by key, and a
 *              deterministic encoder
 *   tfr_       TFRecord files: reader (every CRC verified) and atomic writer
 *   rec_lmdb_  LMDB shards: one environment per shard file (MDB_NOSUBDIR), keys are the record
 *              index as 10 zero-padded decimal digits ("0000000042"), values are serialized
 *              Examples; the writer grows the map itself, so MDB_MAP_FULL never reaches a caller
 *   dsf_       dataset factory: names, splits, sizes, class counts, shard names, labels.txt,
 *              and the download-and-convert step of mnist, fashion_mnist, cifar10 and flowers
 *   dl_        downloads (libcurl; http, https, file): retries, resume into "<file>.part",
 *              SHA-256 verification
 *
 * Errors follow core/sb.h: 0 on success, otherwise an SB_E_* code, an LMDB code or a positive
 * errno, with the caller's sb_err filled with a message that names the file and, for records,
 * the byte offset. Nothing here calls exit().
 */
#ifndef SB_DATASETS_H
#define SB_DATASETS_H

#include <stddef.h>
#include <stdint.h>

#include "core/sb.h"

/* =============================================================================================
 * CRC-32C
 * =========================================================================================== */

/* Extend crc (0 to start) over n bytes at p; returns the new CRC-32C. Hardware crc32 instructions
 * when the build targets SSE4.2, otherwise a slice-by-8 table. crc32c_extend(0, "123456789", 9)
 * == 0xE3069283. */
uint32_t crc32c_extend(uint32_t crc, const void *p, size_t n);
static inline uint32_t crc32c(const void *p, size_t n) { return crc32c_extend(0, p, n); }

/* TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8, and its inverse. */
uint32_t crc32c_mask(uint32_t crc);
uint32_t crc32c_unmask(uint32_t masked);

/* =============================================================================================
 * tf.train.Example
 *
 *   Example  { Features features = 1; }
 *   Features { map<string, Feature> feature = 1; }        (entries: key = 1, value = 2)
 *   Feature  { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2;
 *                           Int64List int64_list = 3; } }
 *   *List    { repeated bytes|float|int64 value = 1; }    (numbers packed or not)
 * =========================================================================================== */

enum ex_kind {
    EX_KIND_NONE,   /* a Feature with no list set */
    EX_KIND_BYTES,
    EX_KIND_FLOAT,
    EX_KIND_INT64,
    EX_KIND_COUNT
};

/* One feature of a decoded Example. key and the list point into the serialized buffer. */
typedef struct ex_feature {
    const uint8_t *key;
    size_t key_len;
    enum ex_kind kind;
    size_t count;          /* number of values in the list */
    const uint8_t *body;   /* the Feature message */
    size_t body_len;
    size_t body_from;      /* offset in body where the last run of `kind` fields starts */
} ex_feature;

/* A decoded Example: an index over the caller's serialized bytes, which must outlive it. */
typedef struct ex_example {
    ex_feature *features;  /* owned; in wire order, a later duplicate key overrides an earlier */
    size_t count, cap;
} ex_example;

void ex_init(ex_example *ex);
void ex_fini(ex_example *ex);

/* Decode a serialized Example of n bytes at data into ex (previous contents are replaced).
 * Every nested message is validated, so the accessors below cannot fail on the wire format.
 * Unknown fields are skipped at every level, as protobuf does.
 * Returns 0, or SB_E_CORRUPT (truncated varint, a length past the end, a wire type that does not
 * match the field, a float list whose byte length is not a multiple of 4) with the byte offset
 * in err->msg. The pointers in ex stay valid as long as data does. */
int ex_decode(ex_example *ex, const uint8_t *data, size_t n, sb_err *err);

/* The feature named key (NUL-terminated), or NULL. For a key present more than once, the last. */
const ex_feature *ex_find(const ex_example *ex, const char *key);

/* Value i of a bytes feature: *p points into the serialized buffer (valid while it is), *n its
 * length. Returns 0, SB_E_NOTFOUND (no such key, or i >= count) or SB_E_FORMAT (not bytes). */
int ex_get_bytes(const ex_example *ex, const char *key, size_t i, const uint8_t **p, size_t *n);
/* Copy up to cap values of an int64 / float feature into out; *count gets the number of values
 * the feature holds (which may exceed cap). Returns 0, SB_E_NOTFOUND or SB_E_FORMAT. */
int ex_get_int64(const ex_example *ex, const char *key, int64_t *out, size_t cap, size_t *count);
int ex_get_float(const ex_example *ex, const char *key, float *out, size_t cap, size_t *count);

/* A growing output buffer. */
typedef struct ex_buf {
    uint8_t *data;
    size_t len, cap;
} ex_buf;
void ex_buf_init(ex_buf *b);
void ex_buf_fini(ex_buf *b);

/* Builds an Example feature by feature; ex_builder_encode writes it. Values are copied. */
typedef struct ex_builder {
    struct ex_bfeat *feats;
    size_t count, cap;
} ex_builder;
void ex_builder_init(ex_builder *b);
void ex_builder_fini(ex_builder *b);
/* Forget the features, keep the memory. */
void ex_builder_reset(ex_builder *b);
/* Add a feature. key is copied; adding a key twice is a bug (SB_ASSERT). n may be 0 (an empty
 * list of that kind is still written, as TensorFlow writes it). */
void ex_builder_add_bytes(ex_builder *b, const char *key, const uint8_t *const *vals,
                          const size_t *lens, size_t n);
void ex_builder_add_string(ex_builder *b, const char *key, const char *s);
void ex_builder_add_int64(ex_builder *b, const char *key, const int64_t *vals, size_t n);
void ex_builder_add_float(ex_builder *b, const char *key, const float *vals, size_t n);
/* Serialize into out (out->len is reset first). Deterministic: features sorted by key (as
 * protobuf's deterministic map serialization), numbers packed, no unknown fields. */
void ex_builder_encode(const ex_builder *b, ex_buf *out);

/* The build_imagenet_data record (DESIGN.md): every key is written, bounding boxes may be empty.
 * Strings are NUL-terminated; encoded is n_encoded bytes. */
typedef struct ex_image {
    const uint8_t *encoded;
    size_t encoded_len;
    const char *format;      /* "JPEG", or "raw" for uint8 HWC pixels (mnist, cifar10) */
    const char *colorspace;  /* "RGB" or "Grayscale" */
    int channels, height, width;
    int64_t label;
    const char *synset, *text, *filename;
    const float *xmin, *ymin, *xmax, *ymax;  /* n_boxes each, in [0, 1] */
    size_t n_boxes;
} ex_image;
void ex_encode_image(const ex_image *img, ex_builder *scratch, ex_buf *out);

/* =============================================================================================
 * TFRecord files: each record is u64 length (LE), u32 masked crc32c(length), data,
 * u32 masked crc32c(data).
 * =========================================================================================== */

typedef struct tfr_reader tfr_reader;

/* Open path for reading. Returns 0 or an errno (err names the path). */
int tfr_reader_open(const char *path, tfr_reader **out, sb_err *err);
/* Read the next record. On 0, *data and *n hold the record, valid until the next call or close.
 * At a clean end of file returns SB_E_NOTFOUND (err untouched).
 * SB_E_CRC on a bad data CRC: the record is skipped and the next call goes on with the following
 * one. SB_E_CRC on a bad length CRC, and SB_E_TRUNCATED, lose the framing: the rest of the file
 * cannot be read and later calls return SB_E_NOTFOUND. err names the file and the byte offset
 * of the record. */
int tfr_reader_next(tfr_reader *r, const uint8_t **data, size_t *n, sb_err *err);
/* Byte offset of the next record. */
uint64_t tfr_reader_offset(const tfr_reader *r);
void tfr_reader_close(tfr_reader *r);

typedef struct tfr_writer tfr_writer;
/* Create a writer for path; records go to a temporary next to it (core's atomic file). */
int tfr_writer_open(const char *path, tfr_writer **out, sb_err *err);
int tfr_writer_write(tfr_writer *w, const uint8_t *data, size_t n, sb_err *err);
/* fsync, rename to the final name, fsync the directory, free w (also on failure). */
int tfr_writer_commit(tfr_writer *w, sb_err *err);
/* Remove the temporary and free w. NULL is a no-op. */
void tfr_writer_abort(tfr_writer *w);

/* =============================================================================================
 * LMDB shards
 * =========================================================================================== */

#define REC_LMDB_KEY_DIGITS 10

typedef struct rec_lmdb_writer_opts {
    size_t map_size;       /* initial map size in bytes (0: 256 MiB); doubled on MDB_MAP_FULL */
    size_t commit_bytes;   /* commit a transaction after this many value bytes (0: 8 MiB;
                            * larger batches were slower: LMDB mallocs every dirty page) */
} rec_lmdb_writer_opts;

typedef struct rec_lmdb_writer rec_lmdb_writer;

/* Create a shard at path. Records are written to "<path>.tmp" (removed first if a previous run
 * left it), which is renamed to path by rec_lmdb_writer_commit. opts may be NULL.
 * Returns 0, an errno or an LMDB code; err names the path. */
int rec_lmdb_writer_open(const char *path, const rec_lmdb_writer_opts *opts,
                         rec_lmdb_writer **out, sb_err *err);
/* Append a record with the next index as key (0, 1, 2, ...). The value is copied. */
int rec_lmdb_writer_put(rec_lmdb_writer *w, const uint8_t *val, size_t n, sb_err *err);
/* Records written so far; current map size; times the map was grown. */
uint64_t rec_lmdb_writer_count(const rec_lmdb_writer *w);
size_t rec_lmdb_writer_map_size(const rec_lmdb_writer *w);
int rec_lmdb_writer_map_grows(const rec_lmdb_writer *w);
/* Commit the last batch, mdb_env_sync, close, rename "<path>.tmp" to path, fsync the directory.
 * Frees w whatever the outcome; on failure the temporary is removed. */
int rec_lmdb_writer_commit(rec_lmdb_writer *w, sb_err *err);
/* Discard everything, remove the temporary, free w. NULL is a no-op. */
void rec_lmdb_writer_abort(rec_lmdb_writer *w);

typedef struct rec_lmdb_reader rec_lmdb_reader;
/* Open a finished shard read-only (no lock file is created, shards are immutable). */
int rec_lmdb_reader_open(const char *path, rec_lmdb_reader **out, sb_err *err);
uint64_t rec_lmdb_reader_count(const rec_lmdb_reader *r);
/* The next record in key order. *data points into the map, valid until the next call on r
 * or close; *index gets its index (may be NULL). Returns 0, SB_E_NOTFOUND at the end, or an
 * LMDB code / SB_E_CORRUPT (a key that is not 10 digits) naming the shard. */
int rec_lmdb_reader_next(rec_lmdb_reader *r, const uint8_t **data, size_t *n, uint64_t *index,
                         sb_err *err);
/* Start the iteration again from the first record. */
void rec_lmdb_reader_rewind(rec_lmdb_reader *r);
/* Record `index` (random access). Same lifetime as _next. SB_E_NOTFOUND if absent. */
int rec_lmdb_reader_get(rec_lmdb_reader *r, uint64_t index, const uint8_t **data, size_t *n,
                        sb_err *err);
void rec_lmdb_reader_close(rec_lmdb_reader *r);

/* =============================================================================================
 * Converting TFRecord shards <-> LMDB shards (convert_tfrecord). The Examples are copied byte for
 * byte; records that fail a CRC (or that do not decode as an Example, when check_examples) are
 * skipped, counted and named on stderr.
 * =========================================================================================== */

enum rec_format { REC_FORMAT_TFRECORD, REC_FORMAT_LMDB, REC_FORMAT_COUNT };

typedef struct rec_convert_stats {
    uint64_t files, records, bytes;
    uint64_t skipped_files;  /* inputs already in the output format, or temporaries */
    uint64_t corrupt;        /* records skipped: bad CRC, or not an Example */
    uint64_t lost_tails;     /* files whose framing broke; their remaining bytes were unreadable */
} rec_convert_stats;

typedef struct rec_convert_opts {
    enum rec_format to;          /* output format; the input is the other one */
    int check_examples;          /* decode every record as an Example; skip those that fail */
    int progress;                /* draw a progress bar on stderr */
    int threads;                 /* files converted in parallel (0: 2) */
    rec_lmdb_writer_opts lmdb;
} rec_convert_opts;

/* Convert each of the n input files to a file of the same base name in out_dir (created if
 * needed). An input already in the output format is skipped (so rerunning over `DIR/train-*`
 * is harmless), as are temporaries ("*.tmp", "*.tmp.<pid>"). When out_dir is the input's own
 * directory the converted shard replaces the input atomically. Returns 0 or the first error that
 * stops the conversion (unreadable input, write failure); corrupt records are not errors, they
 * are counted in *stats and each is named on stderr. */
int rec_convert_files(const char *const *inputs, size_t n, const char *out_dir,
                      const rec_convert_opts *opts, rec_convert_stats *stats, sb_err *err);

/* Expand a shell glob (or a comma-separated list of globs) into sorted, de-duplicated paths.
 * *paths is an array of malloc'ed strings (free with dsf_free_paths). SB_E_NOTFOUND with the
 * pattern named when nothing matches. */
int dsf_glob(const char *patterns, char ***paths, size_t *n, sb_err *err);
void dsf_free_paths(char **paths, size_t n);

/* =============================================================================================
 * Dataset factory
 * =========================================================================================== */

typedef struct dsf_split {
    const char *name;        /* "train", "validation", "test" */
    uint64_t size;           /* number of examples */
    int num_shards;          /* shard files: "<name>-%05d-of-%05d" */
} dsf_split;

typedef struct dsf_dataset {
    const char *name;
    int num_classes;         /* including background where the data set has it (imagenet) */
    int labels_offset;       /* slim's --labels_offset default that matches: 0 here */
    int height, width, channels;  /* image size of the raw data sets; 0 = varies (JPEG) */
    int synthetic;           /* no files: generated on the fly */
    dsf_split splits[2];
    int num_splits;
} dsf_dataset;

/* The named data set (imagenet, mnist, fashion_mnist, cifar10, flowers, synthetic), or NULL. */
const dsf_dataset *dsf_find(const char *name);
/* Names of all data sets, comma-separated, for usage messages. Static string. */
const char *dsf_names(void);
const dsf_split *dsf_find_split(const dsf_dataset *ds, const char *split);
/* "<dir>/<split>-<i:05d>-of-<n:05d>" into buf. Returns the length snprintf would write. */
int dsf_shard_path(char *buf, size_t cap, const char *dir, const char *split, int i, int n);

/* labels.txt as slim's dataset_utils: one "N:name" line per class. */
typedef struct dsf_labels {
    int count;
    int *ids;
    char **names;
} dsf_labels;
int dsf_labels_write(const char *path, const int *ids, const char *const *names, int n,
                     sb_err *err);
/* Read path into labels (free with dsf_labels_free). SB_E_FORMAT names the line. */
int dsf_labels_read(const char *path, dsf_labels *labels, sb_err *err);
void dsf_labels_free(dsf_labels *labels);
/* The class names slim writes for mnist / fashion_mnist / cifar10 / flowers (NULL otherwise). */
const char *const *dsf_class_names(const dsf_dataset *ds);

/* =============================================================================================
 * Downloads
 * =========================================================================================== */

typedef struct dl_opts {
    int retries;             /* attempts after the first (opts NULL: 5) */
    int retry_delay_ms;      /* wait before retry k: k * retry_delay_ms (opts NULL: 1000) */
    int progress;            /* progress bar on stderr */
    long low_speed_secs;     /* abort an attempt that moves < 1 byte/s for this long (0: 60) */
} dl_opts;

/* Fetch url (http, https, ftp or file) into dest. Bytes go to "<dest>.part"; an interrupted
 * transfer (or an earlier run's .part) is resumed with an HTTP Range request; a server that
 * ignores the range restarts from zero. When sha256_hex is non-NULL the finished file must
 * match (SB_E_CRC naming the file and both sums; the .part is removed). dest appears only when
 * complete and verified. An existing dest that matches sha256_hex (or any existing dest when
 * sha256_hex is NULL) is kept without downloading. opts may be NULL.
 * Returns 0, SB_E_CURL_BASE - CURLcode, or an errno; err names the url. */
int dl_fetch(const char *url, const char *dest, const char *sha256_hex, const dl_opts *opts,
             sb_err *err);

/* SHA-256 (FIPS 180-4). */
typedef struct dl_sha256 {
    uint32_t h[8];
    uint64_t bytes;
    uint8_t buf[64];
    size_t fill;
} dl_sha256;
void dl_sha256_init(dl_sha256 *s);
void dl_sha256_update(dl_sha256 *s, const void *p, size_t n);
void dl_sha256_final(dl_sha256 *s, uint8_t out[32]);
/* Lower-case hex of a file's SHA-256 into hex (65 bytes). Returns 0 or an errno. */
int dl_sha256_file(const char *path, char hex[65], sb_err *err);

/* =============================================================================================
 * download_and_convert_data
 * =========================================================================================== */

typedef struct dsf_convert_opts {
    const char *source_url;  /* base URL or file:// directory; NULL = the data set's default */
    int verify_checksums;    /* check the SHA-256 of known files */
    int keep_downloads;      /* keep the downloaded archives in dataset_dir (slim deletes) */
    dl_opts dl;
} dsf_convert_opts;

/* Download the data set's files into dataset_dir and write its LMDB shards and labels.txt, as
 * slim's download_and_convert_{mnist,cifar10,flowers}.py do with TFRecords.
 *   mnist, fashion_mnist, cifar10: one shard per split, "train-00000-of-00001" and
 *     "test-00000-of-00001" (slim writes one file per split too); Examples hold image/format "raw"
 *     with the uint8 pixels in HWC order in image/encoded (slim stores PNG; we have no PNG codec),
 *     image/height, image/width, image/channels, image/colorspace, image/class/label and the
 *     class name in image/class/text.
 *   flowers: "train-0000N-of-00005" and "validation-0000N-of-00005"; the photos' JPEG bytes as
 *     they are (image/format "jpg", as slim), 350 photos for validation; classes and labels.txt
 *     from the archive's directory names. The split is a fixed-seed shuffle of the sorted names.
 * A split whose shards all exist is kept (slim's "already exists, skipping"). The downloaded
 * archives are removed afterwards unless keep_downloads. Other data sets: SB_E_UNSUPPORTED. */
int dsf_download_and_convert(const dsf_dataset *ds, const char *dataset_dir,
                             const dsf_convert_opts *opts, sb_err *err);

#endif /* SB_DATASETS_H */
