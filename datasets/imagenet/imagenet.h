/* datasets/imagenet/imagenet.h — the ImageNet specifics build_imagenet_data needs, as slim's
 * build_imagenet_data.py has them:
 *   imagenet_pyrandom_   Python 3's random.seed(int) / random.shuffle (MT19937), so the file
 *                        order slim shuffles with random.seed(12345) is reproduced exactly
 *   imagenet_shard_      shard boundaries as numpy.linspace(...).astype(int) gives them per
 *                        thread and per shard, so shards hold the same files as slim's
 *   imagenet_synsets_    the labels file (one synset per line; label = line index + 1, 0 is
 *                        background), the metadata file ("synset<TAB>human text") and the flat
 *                        validation labels file
 *   imagenet_bboxes_     slim's bounding-box CSV ("n00007846_64193.JPEG,xmin,ymin,xmax,ymax")
 *   imagenet_image_      one file's bytes made ready for a record: JPEGs kept, PNG and CMYK
 *                        re-encoded to RGB JPEG (quality 100), bad files refused with the reason
 *   imagenet_png_        the small PNG decoder that needs
 *   imagenet_build       the whole conversion: files, shuffle, threads writing shards, resume
 *
 * Errors follow core/sb.h: 0, or an SB_E_* code / errno with err naming the file and line.
 */
#ifndef SB_IMAGENET_H
#define SB_IMAGENET_H

#include <stddef.h>
#include <stdint.h>

#include "core/sb.h"

/* =============================================================================================
 * Python's random module (CPython 3: Modules/_randommodule.c, Lib/random.py)
 * =========================================================================================== */

typedef struct imagenet_pyrandom {
    uint32_t mt[624];
    int index;
} imagenet_pyrandom;

/* random.seed(seed) for a non-negative integer seed below 2^64. */
void imagenet_pyrandom_seed(imagenet_pyrandom *r, uint64_t seed);
/* random.getrandbits(k), 1 <= k <= 32. */
uint32_t imagenet_pyrandom_bits(imagenet_pyrandom *r, int k);
/* random.shuffle(x) on n indices (Python >= 3.2: Fisher-Yates with _randbelow). */
void imagenet_pyrandom_shuffle(imagenet_pyrandom *r, size_t *x, size_t n);

/* =============================================================================================
 * Shards
 * =========================================================================================== */

/* numpy.linspace(start, stop, num).astype(int) into out[num] (num >= 2). */
void imagenet_linspace_int(int64_t start, int64_t stop, int num, int64_t *out);

/* Where slim's _process_image_files puts n files into num_shards shards written by num_threads
 * threads: shard s holds files [bounds[s], bounds[s + 1]) of the shuffled list. bounds has
 * num_shards + 1 entries. num_shards must be a multiple of num_threads (slim asserts it):
 * SB_E_USAGE otherwise, with err naming both flags. */
int imagenet_shard_bounds(int64_t n, int num_shards, int num_threads, int64_t *bounds,
                          sb_err *err);

/* =============================================================================================
 * Synsets and human-readable names
 * =========================================================================================== */

typedef struct imagenet_synsets {
    int count;
    char **ids;        /* "n01440764"; label of ids[i] is i + 1 */
} imagenet_synsets;

/* Read a labels file: one synset per line, blank lines ignored, duplicates refused
 * (SB_E_FORMAT naming the line). Free with imagenet_synsets_free. */
int imagenet_synsets_read(const char *path, imagenet_synsets *s, sb_err *err);
void imagenet_synsets_free(imagenet_synsets *s);
/* A flat validation directory's labels: line i is the synset of the i-th validation file in
 * sorted name order (ILSVRC2012_val_00000001.JPEG first). Repeats allowed; same struct. */
int imagenet_validation_labels_read(const char *path, imagenet_synsets *s, sb_err *err);
/* 1-based label of synset id, or 0 when it is not in the list. */
int imagenet_synsets_label(const imagenet_synsets *s, const char *id);

/* synset -> human text ("n01440764\ttench, Tinca tinca"). */
typedef struct imagenet_metadata {
    int count;
    char **ids, **texts;   /* sorted by id */
} imagenet_metadata;
int imagenet_metadata_read(const char *path, imagenet_metadata *m, sb_err *err);
void imagenet_metadata_free(imagenet_metadata *m);
/* The human text of id, or NULL. Valid until imagenet_metadata_free. */
const char *imagenet_metadata_text(const imagenet_metadata *m, const char *id);

/* =============================================================================================
 * Bounding boxes (slim's process_bounding_boxes.py output)
 * =========================================================================================== */

typedef struct imagenet_box {
    float xmin, ymin, xmax, ymax;  /* relative to the image, clipped to [0, 1] by slim */
} imagenet_box;

typedef struct imagenet_bboxes {
    size_t count;          /* boxes */
    char **files;          /* files[i] is the base name box i belongs to; sorted by name */
    imagenet_box *boxes;
} imagenet_bboxes;

/* Read the CSV. Lines: "<file>,<xmin>,<ymin>,<xmax>,<ymax>"; a malformed line or a coordinate
 * outside [0, 1] or with min > max gives SB_E_FORMAT naming file:line. */
int imagenet_bboxes_read(const char *path, imagenet_bboxes *b, sb_err *err);
void imagenet_bboxes_free(imagenet_bboxes *b);
/* The boxes of image `file` (base name): *n boxes starting at the returned pointer (NULL when
 * none). Valid until imagenet_bboxes_free. */
const imagenet_box *imagenet_bboxes_find(const imagenet_bboxes *b, const char *file, size_t *n);

/* =============================================================================================
 * Images
 * =========================================================================================== */

/* A PNG signature at data? */
int imagenet_is_png(const uint8_t *data, size_t n);
/* Decode a PNG (non-interlaced; 8/16-bit grey, grey+alpha, RGB, RGBA; 8-bit palette) to RGB:
 * *rgb is malloc'ed (h * w * 3 bytes, caller frees). SB_E_UNSUPPORTED for other layouts,
 * SB_E_CRC / SB_E_TRUNCATED / SB_E_CORRUPT for broken files; err starts with name. */
int imagenet_png_decode(const char *name, const uint8_t *data, size_t n, uint8_t **rgb, int *h,
                        int *w, sb_err *err);

/* What imagenet_image_prepare did to a file. */
enum imagenet_fix {
    IMAGENET_FIX_NONE,    /* JPEG bytes kept as they are */
    IMAGENET_FIX_PNG,     /* a PNG re-encoded as RGB JPEG */
    IMAGENET_FIX_CMYK,    /* a CMYK JPEG re-encoded as RGB JPEG */
    IMAGENET_FIX_COUNT
};

/* TurboJPEG handles and buffers; one per thread. */
typedef struct imagenet_codec imagenet_codec;
int imagenet_codec_create(imagenet_codec **out, sb_err *err);
void imagenet_codec_destroy(imagenet_codec *c);   /* NULL is a no-op */

/* Make the n bytes of image file `name` ready for a record. On 0: *out / *out_n are the bytes to
 * store (data itself, or a buffer of c valid until the next call on c), *h / *w the image size,
 * *fix what was done. Bad files: SB_E_TRUNCATED (empty, or no end-of-image marker), SB_E_JPEG
 * (neither JPEG nor PNG, or a decode failure), or the PNG decoder's codes; err names the file
 * and the reason. Greyscale JPEGs are kept (readers decode them to 3 channels, as slim's
 * decode_jpeg(channels=3)). */
int imagenet_image_prepare(imagenet_codec *c, const char *name, const uint8_t *data, size_t n,
                           const uint8_t **out, size_t *out_n, int *h, int *w,
                           enum imagenet_fix *fix, sb_err *err);

/* =============================================================================================
 * build_imagenet_data
 * =========================================================================================== */

typedef struct imagenet_build_stats {
    uint64_t images;          /* records written (kept shards not included) */
    uint64_t skipped;         /* bad files skipped and listed in <split>_skipped.txt */
    uint64_t kept_shards;     /* finished shards of an earlier run that were kept */
    double seconds;           /* spent converting */
} imagenet_build_stats;

typedef struct imagenet_build_opts {
    const char *train_directory;         /* <dir>/<synset>/NAME.JPEG; NULL or "": none */
    const char *validation_directory;    /* same layout, or flat with validation_labels_file */
    const char *validation_labels_file;  /* NULL or "": synset folders */
    const char *output_directory;
    const char *labels_file;             /* the synsets, label order */
    const char *metadata_file;           /* synset -> human text; NULL or "": texts left empty */
    const char *bounding_box_file;       /* NULL or "": no boxes */
    int train_shards, validation_shards, num_threads;
    int progress;
    imagenet_build_stats *stats;         /* may be NULL */
} imagenet_build_opts;

/* Convert the validation split, then the train split, into "<split>-NNNNN-of-NNNNN" LMDB shards
 * of Examples with build_imagenet_data's keys, and write labels.txt ("0:background", then
 * "N:synset"). Returns 0 or the first error that stops the run (unreadable labels file, a shard
 * that cannot be written, shards not a multiple of threads); bad images are not errors. */
int imagenet_build(const imagenet_build_opts *o, sb_err *err);

#endif /* SB_IMAGENET_H */
