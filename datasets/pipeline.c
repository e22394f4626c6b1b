/* datasets/pipeline.c — the input pipeline: this replica's LMDB shards, read num_readers at a
 * time with their records interleaved, shuffled in a buffer, epoch after epoch; worker threads
 * (pthreads: OpenMP belongs to the training kernels) decode and preprocess the records into a
 * bounded ring of slots; pipe_next hands out the next batch_size good records in order.
 *
 * Determinism. The order of records is a pure function of (seed, epoch, rank): each epoch
 * permutes the shard list, interleaves num_readers shards round robin and draws from the shuffle
 * buffer with its own stream; the buffer is drained at the end of an epoch, so every record is
 * seen exactly once per epoch and epochs do not mix. Each record's random choices come from a
 * stream keyed by (seed, epoch, shard, index). Workers claim sequence positions and the consumer
 * takes them in position order, so batches do not depend on the number of threads. Corrupt
 * records are skipped at their position, which is also deterministic.
 *
 * Shards are opened lazily by the first worker that needs one and closed when the sequencer has
 * handed out all their records and the last of them has been read, so a replica with 1024 shards
 * keeps about num_readers of them open.
 */
#include "datasets/pipeline.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "datasets/datasets.h"
#include "models/slim/preprocessing/preprocessing.h"

enum slot_state { SLOT_EMPTY, SLOT_BUSY, SLOT_OK, SLOT_SKIP, SLOT_STATE_COUNT };
enum { STREAM_ORDER = 1, STREAM_SHUFFLE = 2 };
#define NO_END UINT64_MAX

typedef struct shard {
    char *path;
    int number;                /* position in the split's full shard list */
    uint64_t count;
    rec_lmdb_reader *reader;   /* open while records of it are wanted */
    uint64_t pending;          /* records handed out by the sequencer, not yet read */
    int exhausted;             /* the sequencer is done with it for this epoch */
    pthread_mutex_t mu;
} shard;

typedef struct rec_id {
    int32_t shard;
    uint32_t epoch;
    uint64_t index;
} rec_id;

typedef struct cursor {
    int shard;
    uint64_t next;
} cursor;

typedef struct slot {
    float *image;              /* (H, W, C) */
    int32_t label;
    uint32_t epoch;
    enum slot_state state;
} slot;

typedef struct worker {
    struct pipe *p;
    pthread_t thread;
    img_decoder *dec;
    uint8_t *rec;              /* copy of the record */
    size_t rec_cap;
    uint8_t *pix;              /* decoded pixels */
    size_t pix_cap;
    float *boxes;
    size_t boxes_cap;
    void *work;                /* prep_workspace_size */
    ex_example ex;
} worker;

struct pipe {
    pipe_config cfg;           /* strings point into the copies below */
    char *dataset_dir, *split_name;
    prep_spec spec;
    int C;
    size_t image_elems;        /* H * W * C */

    shard *shards;             /* this replica's */
    int n_shards;
    uint64_t epoch_size;

    /* sequencer, under mu */
    int *order;
    int order_pos;
    cursor *active;
    int n_active, rr;
    rec_id *buf;
    int buf_n, buf_cap;
    uint32_t epoch;
    prep_rng shuffle_rng;
    int seq_done;

    /* queue, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_ready;
    slot *slots;
    uint64_t Q;
    uint64_t s_next, s_consumed, end_pos;
    int stop;
    int fatal;
    sb_err fatal_err;
    pipe_stats_t st;

    worker *workers;
    int n_workers, n_started;
};

/* ---------------------------------------------------------------------------------------------
 * Shards.
 * ------------------------------------------------------------------------------------------- */

static void shard_close_if_idle(shard *sh) {
    if (sh->reader && sh->exhausted && sh->pending == 0) {
        rec_lmdb_reader_close(sh->reader);
        sh->reader = NULL;
    }
}

static void shard_set_exhausted(shard *sh, int v) {
    pthread_mutex_lock(&sh->mu);
    sh->exhausted = v;
    shard_close_if_idle(sh);
    pthread_mutex_unlock(&sh->mu);
}

/* ---------------------------------------------------------------------------------------------
 * Sequencer (caller holds p->mu).
 * ------------------------------------------------------------------------------------------- */

static void seq_start_epoch(struct pipe *p) {
    const uint64_t rank = (uint64_t)p->cfg.replica_rank;
    for (int i = 0; i < p->n_shards; i++) {
        p->order[i] = i;
        shard_set_exhausted(&p->shards[i], 0);
    }
    if (p->cfg.shuffle) {
        prep_rng r;
        prep_rng_seed(&r, p->cfg.seed, STREAM_ORDER, p->epoch, rank);
        for (int i = p->n_shards - 1; i > 0; i--) {
            int j = (int)prep_rng_below(&r, (uint32_t)i + 1);
            int t = p->order[i];
            p->order[i] = p->order[j];
            p->order[j] = t;
        }
        prep_rng_seed(&p->shuffle_rng, p->cfg.seed, STREAM_SHUFFLE, p->epoch, rank);
    }
    p->order_pos = 0;
    p->n_active = 0;
    p->rr = 0;
}

/* The next record of the interleaved shards, or 0 when the epoch's shards are used up. */
static int seq_pull(struct pipe *p, rec_id *id) {
    while (p->n_active < p->cfg.num_readers && p->order_pos < p->n_shards) {
        int s = p->order[p->order_pos++];
        if (p->shards[s].count)
            p->active[p->n_active++] = (cursor){s, 0};
        else
            shard_set_exhausted(&p->shards[s], 1);
    }
    if (!p->n_active) return 0;
    if (p->rr >= p->n_active) p->rr = 0;
    cursor *c = &p->active[p->rr];
    shard *sh = &p->shards[c->shard];
    *id = (rec_id){c->shard, p->epoch, c->next++};
    pthread_mutex_lock(&sh->mu);
    sh->pending++;
    pthread_mutex_unlock(&sh->mu);
    if (c->next == sh->count) {
        shard_set_exhausted(sh, 1);
        memmove(c, c + 1, (size_t)(p->n_active - p->rr - 1) * sizeof *c);
        p->n_active--;
    } else {
        p->rr++;
    }
    return 1;
}

/* The next record of the sequence, or 0 after the last epoch. */
static int seq_next(struct pipe *p, rec_id *id) {
    for (;;) {
        if (p->seq_done) return 0;
        if (p->cfg.shuffle) {
            while (p->buf_n < p->buf_cap && seq_pull(p, &p->buf[p->buf_n])) p->buf_n++;
            if (p->buf_n > 0) {
                int i = (int)prep_rng_below(&p->shuffle_rng, (uint32_t)p->buf_n);
                *id = p->buf[i];
                p->buf[i] = p->buf[--p->buf_n];
                return 1;
            }
        } else if (seq_pull(p, id)) {
            return 1;
        }
        p->epoch++;
        if (p->cfg.num_epochs > 0 && p->epoch >= (uint32_t)p->cfg.num_epochs) {
            p->seq_done = 1;
            return 0;
        }
        seq_start_epoch(p);
    }
}

/* ---------------------------------------------------------------------------------------------
 * One record.
 * ------------------------------------------------------------------------------------------- */

enum outcome { OUT_OK, OUT_SKIP, OUT_FATAL };

static enum outcome skip(const shard *sh, uint64_t index, const sb_err *e) {
    sb_warn("skipping corrupt record %0*" PRIu64 " of shard %s: %s", REC_LMDB_KEY_DIGITS, index,
            sh->path, e->msg);
    return OUT_SKIP;
}

static int64_t get_int(const ex_example *ex, const char *key, int64_t dflt) {
    int64_t v;
    size_t count;
    if (ex_get_int64(ex, key, &v, 1, &count) || count < 1) return dflt;
    return v;
}

/* Boxes [ymin, xmin, ymax, xmax] from image/object/bbox/{ymin,xmin,ymax,xmax}, clipped to
 * [0, 1]. */
static size_t read_boxes(worker *w, const ex_example *ex) {
    static const char *const keys[4] = {"image/object/bbox/ymin", "image/object/bbox/xmin",
                                        "image/object/bbox/ymax", "image/object/bbox/xmax"};
    size_t n = SIZE_MAX;
    for (int k = 0; k < 4; k++) {
        size_t count = 0;
        float dummy;
        if (ex_get_float(ex, keys[k], &dummy, 0, &count)) return 0;
        n = SB_MIN(n, count);
    }
    if (!n || n == SIZE_MAX) return 0;
    if (5 * n > w->boxes_cap) {
        w->boxes_cap = 5 * n;
        w->boxes = sb_xrealloc(w->boxes, w->boxes_cap * sizeof(float));
    }
    float *col = w->boxes + 4 * n; /* one coordinate list at a time, then interleave */
    for (int k = 0; k < 4; k++) {
        size_t count;
        ex_get_float(ex, keys[k], col, n, &count);
        for (size_t b = 0; b < n; b++) {
            float v = col[b];
            w->boxes[4 * b + k] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
        }
    }
    return n;
}

static enum outcome process(worker *w, rec_id id, float *out, int32_t *label, int *scaled,
                            sb_err *fatal) {
    struct pipe *p = w->p;
    shard *sh = &p->shards[id.shard];
    sb_err e;
    sb_err_clear(&e);
    const uint8_t *data;
    size_t n = 0;
    int rc = 0;

    pthread_mutex_lock(&sh->mu);
    if (!sh->reader && (rc = rec_lmdb_reader_open(sh->path, &sh->reader, fatal))) {
        sh->pending--;
        pthread_mutex_unlock(&sh->mu);
        return OUT_FATAL;
    }
    rc = rec_lmdb_reader_get(sh->reader, id.index, &data, &n, &e);
    if (!rc) {
        if (n > w->rec_cap) {
            w->rec = sb_xrealloc(w->rec, n);
            w->rec_cap = n;
        }
        memcpy(w->rec, data, n);
    }
    sh->pending--;
    shard_close_if_idle(sh);
    pthread_mutex_unlock(&sh->mu);
    if (rc) return skip(sh, id.index, &e);

    if (ex_decode(&w->ex, w->rec, n, &e)) return skip(sh, id.index, &e);
    int64_t lab;
    size_t count;
    if (ex_get_int64(&w->ex, "image/class/label", &lab, 1, &count) || count < 1) {
        sb_err_set(&e, SB_E_CORRUPT, "no image/class/label");
        return skip(sh, id.index, &e);
    }
    const uint8_t *enc, *fmt;
    size_t enc_n, fmt_n;
    if (ex_get_bytes(&w->ex, "image/encoded", 0, &enc, &enc_n) || enc_n == 0) {
        sb_err_set(&e, SB_E_CORRUPT, "no image/encoded");
        return skip(sh, id.index, &e);
    }
    int raw = !ex_get_bytes(&w->ex, "image/format", 0, &fmt, &fmt_n) && fmt_n == 3 &&
              !strncasecmp((const char *)fmt, "raw", 3);

    const int C = p->C;
    prep_rng rng;
    prep_rng_seed(&rng, p->cfg.seed, id.epoch, (uint64_t)sh->number, id.index);
    prep_params pp;
    int src_h, src_w, img_h, img_w, num = 1, den = 1;
    const uint8_t *img;
    const float *boxes = NULL;
    size_t n_boxes = 0;
    if (p->cfg.use_bboxes && p->spec.kind == PREP_KIND_INCEPTION && p->spec.is_training) {
        n_boxes = read_boxes(w, &w->ex);
        boxes = w->boxes;
    }
    if (raw) {
        int64_t h = get_int(&w->ex, "image/height", 0), wd = get_int(&w->ex, "image/width", 0);
        int64_t c = get_int(&w->ex, "image/channels", 0);
        if (h <= 0 || wd <= 0 || h > 65535 || wd > 65535 || (c != 1 && c != 3) ||
            (uint64_t)(h * wd * c) != enc_n) {
            sb_err_set(&e, SB_E_CORRUPT, "raw image of %zu bytes is not %" PRId64 "x%" PRId64
                       "x%" PRId64, enc_n, h, wd, c);
            return skip(sh, id.index, &e);
        }
        src_h = img_h = (int)h;
        src_w = img_w = (int)wd;
        img = enc;
        if (c != C) {
            size_t px = (size_t)h * (size_t)wd;
            if (px * C > w->pix_cap) {
                w->pix_cap = px * C;
                w->pix = sb_xrealloc(w->pix, w->pix_cap);
            }
            for (size_t i = 0; i < px; i++) {
                if (C == 3) {
                    w->pix[3 * i] = w->pix[3 * i + 1] = w->pix[3 * i + 2] = enc[i];
                } else { /* tf.image.rgb_to_grayscale weights */
                    float g = 0.2989f * enc[3 * i] + 0.5870f * enc[3 * i + 1] +
                              0.1140f * enc[3 * i + 2];
                    w->pix[i] = (uint8_t)(g + 0.5f);
                }
            }
            img = w->pix;
        }
        prep_sample(&p->spec, src_h, src_w, boxes, n_boxes, &rng, &pp);
    } else {
        if (img_jpeg_size(w->dec, enc, enc_n, &src_h, &src_w, &e)) return skip(sh, id.index, &e);
        prep_sample(&p->spec, src_h, src_w, boxes, n_boxes, &rng, &pp);
        if (!p->cfg.full_decode) {
            int rh, rw, th, tw;
            prep_needed(&p->spec, src_h, src_w, &pp, &rh, &rw, &th, &tw);
            img_pick_scale(rh, rw, th, tw, &num, &den);
        }
        /* decode only the window the preprocessing reads (exact: same pixels as a whole decode) */
        img_h = (src_h * num + den - 1) / den;
        img_w = (src_w * num + den - 1) / den;
        int y0, x0, y1, x1;
        prep_window(&p->spec, img_h, img_w, src_h, src_w, num, den, &pp, w->work, &y0, &x0, &y1,
                    &x1);
        img_window win;
        if (img_decode_jpeg_window(w->dec, enc, enc_n, num, den, C, y0, x0, y1, x1, &w->pix,
                                   &w->pix_cap, &win, &e))
            return skip(sh, id.index, &e);
        *scaled = num != den;
        prep_apply_window(out, w->pix, win.y0, win.x0, win.h, win.w, C, win.img_h, win.img_w,
                          src_h, src_w, num, den, &p->spec, &pp, w->work);
        *label = (int32_t)(lab - p->cfg.labels_offset);
        return OUT_OK;
    }
    prep_apply(out, img, img_h, img_w, C, src_h, src_w, num, den, &p->spec, &pp, w->work);
    *label = (int32_t)(lab - p->cfg.labels_offset);
    return OUT_OK;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    struct pipe *p = w->p;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->stop || p->fatal || p->end_pos != NO_END) break;
        if (p->s_next - p->s_consumed >= p->Q) {
            pthread_cond_wait(&p->cv_work, &p->mu);
            continue;
        }
        rec_id id;
        if (!seq_next(p, &id)) {
            p->end_pos = p->s_next;
            pthread_cond_broadcast(&p->cv_ready);
            pthread_cond_broadcast(&p->cv_work);
            break;
        }
        const uint64_t s = p->s_next++;
        slot *sl = &p->slots[s % p->Q];
        sl->state = SLOT_BUSY;
        sl->epoch = id.epoch;
        p->st.records++;
        pthread_mutex_unlock(&p->mu);

        sb_err e;
        sb_err_clear(&e);
        int scaled = 0;
        enum outcome o = process(w, id, sl->image, &sl->label, &scaled, &e);

        pthread_mutex_lock(&p->mu);
        if (o == OUT_FATAL) {
            if (!p->fatal) {
                p->fatal = e.code ? e.code : SB_E_CORRUPT;
                p->fatal_err = e;
            }
            pthread_cond_broadcast(&p->cv_ready);
            pthread_cond_broadcast(&p->cv_work);
            break;
        }
        sl->state = o == OUT_OK ? SLOT_OK : SLOT_SKIP;
        if (o == OUT_SKIP) p->st.corrupt++;
        p->st.dct_scaled += (uint64_t)scaled;
        if (s == p->s_consumed) pthread_cond_signal(&p->cv_ready);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * API.
 * ------------------------------------------------------------------------------------------- */

int pipe_next(struct pipe *p, float *images, int32_t *labels, double *wait_ms, sb_err *err) {
    const int N = p->cfg.batch_size;
    double waited = 0;
    int rc = 0;
    for (int i = 0; i < N;) {
        pthread_mutex_lock(&p->mu);
        slot *sl = NULL;
        for (;;) {
            if (p->fatal) {
                rc = p->fatal;
                if (err) *err = p->fatal_err;
                break;
            }
            sl = &p->slots[p->s_consumed % p->Q];
            if (p->s_consumed < p->s_next && (sl->state == SLOT_OK || sl->state == SLOT_SKIP))
                break;
            if (p->end_pos != NO_END && p->s_consumed >= p->end_pos) {
                rc = PIPE_END;
                p->st.dropped += (uint64_t)i;
                p->st.epochs = (uint64_t)p->cfg.num_epochs;
                sb_err_set(err, PIPE_END, "end of data: %d epoch(s) of %s delivered",
                           p->cfg.num_epochs, p->split_name);
                break;
            }
            double t0 = sb_now();
            pthread_cond_wait(&p->cv_ready, &p->mu);
            waited += sb_now() - t0;
        }
        if (rc) {
            p->st.wait_ms += waited * 1e3;
            pthread_mutex_unlock(&p->mu);
            if (wait_ms) *wait_ms = waited * 1e3;
            return rc;
        }
        if (sl->epoch > p->st.epochs) p->st.epochs = sl->epoch;
        const int ok = sl->state == SLOT_OK;
        pthread_mutex_unlock(&p->mu);
        if (ok) {
            memcpy(images + (size_t)i * p->image_elems, sl->image, p->image_elems * sizeof(float));
            labels[i] = sl->label;
            i++;
        }
        pthread_mutex_lock(&p->mu);
        sl->state = SLOT_EMPTY;
        p->s_consumed++;
        pthread_cond_signal(&p->cv_work);
        pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_lock(&p->mu);
    p->st.wait_ms += waited * 1e3;
    p->st.batches++;
    p->st.delivered += (uint64_t)N;
    pthread_mutex_unlock(&p->mu);
    if (wait_ms) *wait_ms = waited * 1e3;
    return 0;
}

void pipe_stats(const struct pipe *p, pipe_stats_t *st) {
    pthread_mutex_lock((pthread_mutex_t *)&p->mu);
    *st = p->st;
    pthread_mutex_unlock((pthread_mutex_t *)&p->mu);
}

int pipe_channels(const struct pipe *p) { return p->C; }
uint64_t pipe_epoch_size(const struct pipe *p) { return p->epoch_size; }

static void worker_fini(worker *w) {
    img_decoder_destroy(w->dec);
    ex_fini(&w->ex);
    free(w->rec);
    free(w->pix);
    free(w->boxes);
    sb_aligned_free(w->work);
}

void pipe_destroy(struct pipe *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv_work);
    pthread_cond_broadcast(&p->cv_ready);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_started; i++) pthread_join(p->workers[i].thread, NULL);
    for (int i = 0; i < p->n_workers; i++) worker_fini(&p->workers[i]);
    free(p->workers);
    for (int i = 0; i < p->n_shards; i++) {
        if (p->shards[i].reader) rec_lmdb_reader_close(p->shards[i].reader);
        pthread_mutex_destroy(&p->shards[i].mu);
        free(p->shards[i].path);
    }
    free(p->shards);
    for (uint64_t i = 0; p->slots && i < p->Q; i++) sb_aligned_free(p->slots[i].image);
    free(p->slots);
    free(p->order);
    free(p->active);
    free(p->buf);
    pthread_cond_destroy(&p->cv_work);
    pthread_cond_destroy(&p->cv_ready);
    pthread_mutex_destroy(&p->mu);
    free(p->dataset_dir);
    free(p->split_name);
    free(p);
}

static int check_config(const pipe_config *c, enum prep_kind *kind, sb_err *err) {
    if (!c->dataset_dir || !*c->dataset_dir)
        return sb_err_set(err, SB_E_USAGE, "input pipeline: no dataset_dir");
    if (!c->split_name || !*c->split_name)
        return sb_err_set(err, SB_E_USAGE, "input pipeline: no split_name");
    if (c->batch_size < 1)
        return sb_err_set(err, SB_E_USAGE, "--batch_size=%d must be at least 1", c->batch_size);
    if (c->image_size < 1 || c->image_size > 8192)
        return sb_err_set(err, SB_E_USAGE, "image size %d is outside [1, 8192]", c->image_size);
    if (c->num_readers < 0 || c->num_preprocessing_threads < 0 || c->shuffle_buffer < 0 ||
        c->prefetch_batches < 0 || c->num_epochs < 0)
        return sb_err_set(err, SB_E_USAGE, "input pipeline: negative count in the configuration");
    int count = c->replica_count ? c->replica_count : 1;
    if (c->replica_rank < 0 || c->replica_rank >= count)
        return sb_err_set(err, SB_E_USAGE, "replica rank %d is outside [0, %d)", c->replica_rank,
                          count);
    const char *name = c->preprocessing_name && *c->preprocessing_name ? c->preprocessing_name
                                                                       : c->model_name;
    sb_err pe;
    if (prep_kind_from_name(name, kind, &pe))
        return sb_err_set(err, SB_E_USAGE, "--preprocessing_name / --model_name: %s", pe.msg);
    if (*kind == PREP_KIND_VGG && c->image_size > PREP_VGG_RESIZE_SIDE_MIN)
        return sb_err_set(err, SB_E_USAGE,
                          "vgg_preprocessing crops %dx%d from an image whose smaller side is "
                          "resized to %d..%d: the image size may be at most %d",
                          c->image_size, c->image_size, PREP_VGG_RESIZE_SIDE_MIN,
                          PREP_VGG_RESIZE_SIDE_MAX, PREP_VGG_RESIZE_SIDE_MIN);
    return 0;
}

int pipe_create(struct pipe **out, const pipe_config *cfg, sb_err *err) {
    *out = NULL;
    enum prep_kind kind;
    int rc = check_config(cfg, &kind, err);
    if (rc) return rc;

    struct pipe *p = sb_xcalloc(1, sizeof *p);
    p->cfg = *cfg;
    p->dataset_dir = sb_xstrdup(cfg->dataset_dir);
    p->split_name = sb_xstrdup(cfg->split_name);
    p->cfg.dataset_dir = p->dataset_dir;
    p->cfg.split_name = p->split_name;
    p->cfg.dataset_name = p->cfg.preprocessing_name = p->cfg.model_name = NULL;
    if (!p->cfg.replica_count) p->cfg.replica_count = 1;
    if (!p->cfg.num_readers) p->cfg.num_readers = 1;
    if (!p->cfg.num_preprocessing_threads) p->cfg.num_preprocessing_threads = 1;
    if (!p->cfg.shuffle_buffer) p->cfg.shuffle_buffer = 20 * cfg->batch_size;
    if (!p->cfg.prefetch_batches) p->cfg.prefetch_batches = 2;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_work, NULL);
    pthread_cond_init(&p->cv_ready, NULL);
    p->end_pos = NO_END;

    const dsf_dataset *ds = cfg->dataset_name && *cfg->dataset_name ? dsf_find(cfg->dataset_name)
                                                                     : NULL;
    p->C = cfg->channels ? cfg->channels : ds && ds->channels ? ds->channels : 3;
    if (p->C != 1 && p->C != 3) {
        rc = sb_err_set(err, SB_E_USAGE, "input pipeline: %d channels (1 or 3)", p->C);
        goto fail;
    }
    if ((kind == PREP_KIND_VGG) && p->C != 3) {
        rc = sb_err_set(err, SB_E_USAGE, "vgg_preprocessing needs 3 channels, the data has %d",
                        p->C);
        goto fail;
    }
    p->spec = (prep_spec){kind, cfg->is_training != 0, cfg->image_size, cfg->image_size};
    p->image_elems = (size_t)cfg->image_size * cfg->image_size * p->C;

    /* this replica's shards */
    char pattern[4096];
    const char *d5 = "[0-9][0-9][0-9][0-9][0-9]";
    snprintf(pattern, sizeof pattern, "%s/%s-%s-of-%s", cfg->dataset_dir, cfg->split_name, d5, d5);
    char **paths = NULL;
    size_t n_paths = 0;
    if ((rc = dsf_glob(pattern, &paths, &n_paths, err))) goto fail;
    p->shards = sb_xcalloc(n_paths, sizeof *p->shards);
    for (size_t i = 0; i < n_paths; i++) {
        if ((int)(i % (size_t)p->cfg.replica_count) != p->cfg.replica_rank) continue;
        shard *sh = &p->shards[p->n_shards++];
        sh->path = paths[i];
        paths[i] = NULL;
        sh->number = (int)i;
        pthread_mutex_init(&sh->mu, NULL);
        rec_lmdb_reader *r;
        if ((rc = rec_lmdb_reader_open(sh->path, &r, err))) {
            dsf_free_paths(paths, n_paths);
            goto fail;
        }
        sh->count = rec_lmdb_reader_count(r);
        rec_lmdb_reader_close(r);
        p->epoch_size += sh->count;
    }
    dsf_free_paths(paths, n_paths);
    if (!p->n_shards) {
        rc = sb_err_set(err, SB_E_USAGE, "replica %d of %d has no shard: %s has %zu %s shards",
                        p->cfg.replica_rank, p->cfg.replica_count, cfg->dataset_dir, n_paths,
                        cfg->split_name);
        goto fail;
    }
    if (!p->epoch_size) {
        rc = sb_err_set(err, SB_E_NOTFOUND,
                        "the %d %s shard(s) of replica %d in %s hold no records", p->n_shards, cfg->split_name, p->cfg.replica_rank, cfg->dataset_dir);
        goto fail;
    }
    p->order = sb_xcalloc((size_t)p->n_shards, sizeof *p->order);
    p->active = sb_xcalloc((size_t)p->cfg.num_readers, sizeof *p->active);
    p->buf_cap = p->cfg.shuffle ? p->cfg.shuffle_buffer : 0;
    p->buf = sb_xcalloc((size_t)p->buf_cap + 1, sizeof *p->buf);
    seq_start_epoch(p);

    p->n_workers = p->cfg.num_preprocessing_threads;
    p->Q = (uint64_t)p->cfg.prefetch_batches * (uint64_t)cfg->batch_size + (uint64_t)p->n_workers;
    p->slots = sb_xcalloc(p->Q, sizeof *p->slots);
    for (uint64_t i = 0; i < p->Q; i++)
        p->slots[i].image = sb_aligned_alloc(p->image_elems * sizeof(float));

    p->workers = sb_xcalloc((size_t)p->n_workers, sizeof *p->workers);
    for (int i = 0; i < p->n_workers; i++) {
        worker *w = &p->workers[i];
        w->p = p;
        ex_init(&w->ex);
        w->work = sb_aligned_alloc(prep_workspace_size(&p->spec, p->C));
        if ((rc = img_decoder_create(&w->dec, err))) goto fail;
    }
    for (int i = 0; i < p->n_workers; i++) {
        if ((rc = pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]))) {
            sb_err_setc(err, rc, "input pipeline: starting worker thread %d", i);
            goto fail;
        }
        p->n_started++;
    }
    *out = p;
    return 0;
fail:
    pipe_destroy(p);
    return rc;
}
