/* datasets/pipeline.h — the input pipeline: LMDB shards -> records -> JPEG decode (TurboJPEG,
 * DCT-scaled when the preprocessing allows) or raw pixels -> slim's preprocessing -> batches.
 *
 *   img_   JPEG decoding with TurboJPEG: header, choice of DCT scale, decode to RGB or grey
 *   pipe_  the pipeline: readers over this replica's shards, shuffling, epochs, worker threads
 *          filling a bounded prefetch queue, batches handed to the training loop
 *
 * Errors follow core/sb.h: 0, an SB_E_* code, an LMDB code or an errno, with err naming the shard
 * or the flag. Corrupt records are not errors: they are skipped, counted and named in a warning.
 * Nothing here calls exit().
 */
#ifndef SB_PIPELINE_H
#define SB_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "core/sb.h"

/* =============================================================================================
 * JPEG decoding
 * =========================================================================================== */

typedef struct img_decoder img_decoder;

/* A decoder (one TurboJPEG handle; use one per thread). Returns 0 or SB_E_JPEG. */
int img_decoder_create(img_decoder **out, sb_err *err);
/* NULL is a no-op. */
void img_decoder_destroy(img_decoder *d);

/* Size of the JPEG image at jpeg (n bytes). Returns 0 or SB_E_JPEG (err holds TurboJPEG's text). */
int img_jpeg_size(img_decoder *d, const uint8_t *jpeg, size_t n, int *h, int *w, sb_err *err);

/* The smallest DCT scale num/den among 1/2, 1/4, 1/8 for which a region of
 * region_h x region_w source pixels still has at least target_h x target_w pixels
 * (region * num >= target * den in both dimensions); 1/1 when nothing smaller qualifies. */
void img_pick_scale(int region_h, int region_w, int target_h, int target_w, int *num, int *den);

/* Decode at scale num/den (one of TurboJPEG's factors; 1/1 = full size) to channels 3 (RGB; a
 * greyscale JPEG is expanded) or 1 (grey) with TurboJPEG's accurate defaults (islow IDCT, fancy
 * upsampling, as tf.image.decode_jpeg). *buf (capacity *cap bytes, may start NULL/0) is grown
 * with sb_xrealloc as needed; *h, *w get the decoded size (TJSCALED of the source size).
 * Returns 0 or SB_E_JPEG: not a JPEG, a fatal libjpeg error, or data that ends early.
 * Other libjpeg warnings (extraneous bytes before a marker) are accepted, as TensorFlow does. */
int img_decode_jpeg(img_decoder *d, const uint8_t *jpeg, size_t n, int num, int den, int channels,
                    uint8_t **buf, size_t *cap, int *h, int *w, sb_err *err);

/* Where a window decode put its pixels: rows [y0, y0 + h) and columns [x0, x0 + w) of the
 * img_h x img_w image decoded at the chosen scale. */
typedef struct img_window {
    int y0, x0, h, w;
    int img_h, img_w;
} img_window;

/* Decode only rows [y0, y1) and columns [x0, x1) (clipped to the image) of the JPEG at scale
 * num/den, with libjpeg's defaults as img_decode_jpeg. The columns are widened to iMCU
 * boundaries (win->x0 <= x0, win->x0 + win->w >= x1); *buf holds (win->h, win->w, channels) and
 * every pixel equals the same pixel of a whole-image decode. Rows after y1 are not decoded, so
 * damage below the window goes unnoticed. Returns 0 or SB_E_JPEG (not a JPEG, a fatal libjpeg
 * error, data that ends inside the window). */
int img_decode_jpeg_window(img_decoder *d, const uint8_t *jpeg, size_t n, int num, int den,
                           int channels, int y0, int x0, int y1, int x1, uint8_t **buf,
                           size_t *cap, img_window *win, sb_err *err);

/* =============================================================================================
 * The pipeline
 * =========================================================================================== */

/* pipe_next's return at the end of the data: num_epochs > 0 and every epoch delivered. The
 * records of a final partial batch are dropped (tf.train.batch, allow_smaller_final_batch=False)
 * and counted in pipe_stats_t.dropped. */
#define PIPE_END SB_E_NOTFOUND

typedef struct pipe_config {
    const char *dataset_dir;        /* holds "<split>-NNNNN-of-NNNNN" LMDB shards */
    const char *dataset_name;       /* slim's name (imagenet, flowers, mnist, cifar10, ...): when
                                       known, its channel count and shard count are checked */
    const char *split_name;         /* train, validation, test */
    int batch_size;
    int image_size;                 /* output H = W (train_image_size / eval_image_size) */
    const char *preprocessing_name; /* NULL or "" = model_name, as slim's factory */
    const char *model_name;
    int is_training;                /* train or eval preprocessing */
    int num_readers;                /* shards read at once, records interleaved (0: 1) */
    int num_preprocessing_threads;  /* worker threads (0: 1) */
    int shuffle;                    /* permute shards each epoch, shuffle records in a buffer */
    int shuffle_buffer;             /* records in the shuffle buffer (0: 20 * batch_size, slim's
                                       common_queue_capacity) */
    uint64_t seed;
    int labels_offset;              /* label = image/class/label - labels_offset */
    int replica_rank, replica_count;/* this replica reads shards i with i % count == rank (0/0:
                                       one replica) */
    int num_epochs;                 /* 0 = forever */
    int channels;                   /* output C; 0 = 3 for JPEG data, the data set's for raw */
    int prefetch_batches;           /* batches the queue holds ahead (0: 2) */
    int full_decode;                /* 1 = always decode JPEGs at full size (no DCT scaling) */
    int use_bboxes;                 /* inception train: crop around the record's boxes (slim's
                                       train_image_classifier passes none: whole image) */
} pipe_config;

typedef struct pipe_stats_t {
    uint64_t records;     /* records taken from the shards (delivered, skipped or queued) */
    uint64_t delivered;   /* records handed out in batches */
    uint64_t corrupt;     /* skipped: not an Example, missing features, undecodable image */
    uint64_t dropped;     /* records of a final partial batch (num_epochs > 0) */
    uint64_t epochs;      /* epochs whose every record has been delivered or skipped */
    uint64_t dct_scaled;  /* JPEGs decoded at a DCT scale below 1 */
    uint64_t batches;     /* successful pipe_next calls */
    double wait_ms;       /* total time pipe_next blocked waiting for records */
} pipe_stats_t;

/* The handle is `struct pipe` (alias pipe_t): a typedef named `pipe` would clash with POSIX's
 * pipe(2) in any file that includes <unistd.h>. */
typedef struct pipe pipe_t;

/* Open this replica's shards, count their records, start the worker threads.
 * Returns 0; SB_E_USAGE (bad sizes, unknown preprocessing, an image_size the preprocessing cannot
 * produce, a replica with no shards), SB_E_NOTFOUND (no shards matching the split), or an LMDB
 * code / errno naming the shard. On failure *out is NULL. cfg's strings are copied. */
int pipe_create(struct pipe **out, const pipe_config *cfg, sb_err *err);

/* The next batch.
 *   images  (N, H, W, C) float, N = batch_size, H = W = image_size, C = pipe_channels()
 *   labels  (N) record label minus labels_offset
 *   wait_ms time this call blocked waiting for workers (may be NULL)
 * Returns 0; PIPE_END when num_epochs > 0 and the data is exhausted; or the error that stopped
 * the pipeline (an unreadable shard), with err naming it. Corrupt records are skipped. */
int pipe_next(struct pipe *p, float *images, int32_t *labels, double *wait_ms, sb_err *err);

void pipe_stats(const struct pipe *p, pipe_stats_t *st);
/* Output channels C. */
int pipe_channels(const struct pipe *p);
/* Records per epoch in this replica's shards. */
uint64_t pipe_epoch_size(const struct pipe *p);

/* Stop the workers, close the shards, free everything. NULL is a no-op. */
void pipe_destroy(struct pipe *p);

#endif /* SB_PIPELINE_H */
