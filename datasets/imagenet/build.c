/* datasets/imagenet/build.c — build_imagenet_data: ImageNet JPEG folders to LMDB shards with
 * slim's file order, shard boundaries, labels and Example keys.
 *
 * As slim's _process_dataset: files are listed per synset in labels-file order (label 1..N, 0 is
 * background), shuffled with Python's random.seed(12345), split into shards by
 * numpy.linspace per thread, and each thread writes its own shards in turn. Each image goes
 * through imagenet_image_prepare (JPEG kept, PNG/CMYK re-encoded); bad files are skipped,
 * counted and listed in "<output_directory>/<split>_skipped.txt". A shard is written under a
 * temporary name and renamed when complete, so a rerun keeps the shards that exist and pass a
 * check (they open, hold no more records than their range, and start and end with its first and
 * last files) and writes the others again.
 */
#include "datasets/imagenet/imagenet.h"

#include <dirent.h>
#include <errno.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "datasets/datasets.h"

typedef struct item {
    char *path;
    int label;          /* 1..num synsets */
    const char *synset; /* borrowed from the synsets list */
} item;

typedef struct item_list {
    item *v;
    size_t count, cap;
} item_list;

static void add_item(item_list *l, char *path, int label, const char *synset) {
    if (l->count == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4096;
        l->v = sb_xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->count++] = (item){path, label, synset};
}

static void free_items(item_list *l) {
    for (size_t i = 0; i < l->count; i++) free(l->v[i].path);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_cstr(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names ending in .JPEG in dir, as tf.gfile.Glob of the synset folder; malloc'ed. */
static int list_jpegs(const char *dir, char ***names, size_t *n, sb_err *err) {
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return sb_err_setc(err, errno, "listing %s", dir);
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".JPEG") || e->d_name[0] == '.') continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 1024;
            *names = sb_xrealloc(*names, cap * sizeof **names);
        }
        (*names)[(*n)++] = sb_xstrdup(e->d_name);
    }
    closedir(d);
    qsort(*names, *n, sizeof **names, cmp_cstr);
    return 0;
}

static char *path_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = sb_xmalloc(n);
    snprintf(s, n, "%s/%s", a, b);
    return s;
}

/* slim's _find_image_files: the .JPEG files of <dir>/<synset> for every synset of the labels
 * file, or a flat directory whose sorted files take their synsets from val_labels. Then the
 * shuffle. */
static int find_files(const char *dir, const imagenet_synsets *syn, const imagenet_synsets *val,
                      item_list *out, sb_err *err) {
    int rc = 0;
    if (val) {
        char **names;
        size_t n;
        if ((rc = list_jpegs(dir, &names, &n, err))) return rc;
        if (n != (size_t)val->count)
            rc = sb_err_set(err, SB_E_FORMAT,
                            "%s holds %zu .JPEG files but the validation labels file has %d lines",
                            dir, n, val->count);
        for (size_t i = 0; i < n; i++) {
            int label = rc ? 0 : imagenet_synsets_label(syn, val->ids[i]);
            if (!rc && !label)
                rc = sb_err_set(err, SB_E_FORMAT,
                                "validation labels line %zu: synset %s is not in the labels file",
                                i + 1, val->ids[i]);
            if (!rc) add_item(out, path_join(dir, names[i]), label, syn->ids[label - 1]);
            free(names[i]);
        }
        free(names);
    } else {
        for (int s = 0; s < syn->count && !rc; s++) {
            char *sub = path_join(dir, syn->ids[s]), **names;
            size_t n;
            rc = list_jpegs(sub, &names, &n, err);
            if (rc == ENOENT) { /* slim's glob finds nothing there; so do we */
                rc = 0;
                n = 0;
                names = NULL;
            }
            for (size_t i = 0; i < n; i++) {
                add_item(out, path_join(sub, names[i]), s + 1, syn->ids[s]);
                free(names[i]);
            }
            free(names);
            free(sub);
        }
    }
    if (!rc && out->count == 0) rc = sb_err_set(err, SB_E_NOTFOUND, "no .JPEG files under %s", dir);
    if (rc) return rc;
    size_t *order = sb_xmalloc(out->count * sizeof *order);
    for (size_t i = 0; i < out->count; i++) order[i] = i;
    imagenet_pyrandom r;
    imagenet_pyrandom_seed(&r, 12345);
    imagenet_pyrandom_shuffle(&r, order, out->count);
    item *v = sb_xmalloc(out->count * sizeof *v);
    for (size_t i = 0; i < out->count; i++) v[i] = out->v[order[i]];
    free(out->v);
    out->v = v;
    out->cap = out->count;
    free(order);
    return 0;
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* A finished shard is kept when it opens, holds at most its range's files, and its first and
 * last records are the range's first and last files. */
static int shard_is_done(const char *path, const item *v, size_t n) {
    if (access(path, F_OK) != 0 || n == 0) return 0;
    rec_lmdb_reader *r;
    sb_err e;
    if (rec_lmdb_reader_open(path, &r, &e)) return 0;
    uint64_t count = rec_lmdb_reader_count(r);
    int ok = count >= 1 && count <= n;
    ex_example ex;
    ex_init(&ex);
    uint64_t ends[2] = {0, count ? count - 1 : 0};
    const char *want[2] = {base_name(v[0].path), base_name(v[n - 1].path)};
    for (int k = 0; k < 2 && ok; k++) {
        const uint8_t *d, *p;
        size_t dn, pn;
        ok = !rec_lmdb_reader_get(r, ends[k], &d, &dn, &e) && !ex_decode(&ex, d, dn, &e) &&
             !ex_get_bytes(&ex, "image/filename", 0, &p, &pn) && pn == strlen(want[k]) &&
             !memcmp(p, want[k], pn);
    }
    ex_fini(&ex);
    rec_lmdb_reader_close(r);
    return ok;
}

typedef struct bad_list {
    char **lines;
    size_t count, cap;
} bad_list;

typedef struct split_ctx {
    const char *name;
    const char *out_dir;
    const item_list *items;
    const int64_t *bounds;
    int num_shards;
    const imagenet_metadata *meta;
    const imagenet_bboxes *boxes;
    uint64_t done;          /* images handled, including those of kept shards (progress) */
    uint64_t written, kept_shards, reencoded[IMAGENET_FIX_COUNT], with_boxes;
    sb_progress bar;
    int progress;
} split_ctx;

static int write_shard(split_ctx *c, int s, imagenet_codec *codec, ex_builder *b, ex_buf *buf,
                       bad_list *bad, sb_err *err) {
    char path[4096];
    dsf_shard_path(path, sizeof path, c->out_dir, c->name, s, c->num_shards);
    const item *v = c->items->v + c->bounds[s];
    size_t n = (size_t)(c->bounds[s + 1] - c->bounds[s]);
    if (shard_is_done(path, v, n)) {
        char tmp[4200]; /* a temporary left by a run killed while redoing this shard */
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        unlink(tmp);
#pragma omp atomic
        c->kept_shards++;
#pragma omp atomic
        c->done += n;
        return 0;
    }
    rec_lmdb_writer *w;
    int rc = rec_lmdb_writer_open(path, NULL, &w, err);
    if (rc) return rc;
    float *box = NULL; /* xmin, ymin, xmax, ymax runs of the current image */
    size_t box_cap = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        char *data = NULL;
        size_t dn = 0;
        sb_err e;
        const uint8_t *img;
        size_t img_n;
        int h, wd;
        enum imagenet_fix fix;
        int bad_rc = sb_read_file(v[i].path, &data, &dn, &e);
        if (!bad_rc)
            bad_rc = imagenet_image_prepare(codec, v[i].path, (const uint8_t *)data, dn, &img,
                                            &img_n, &h, &wd, &fix, &e);
        if (bad_rc) {
            if (bad->count == bad->cap) {
                bad->cap = bad->cap ? bad->cap * 2 : 64;
                bad->lines = sb_xrealloc(bad->lines, bad->cap * sizeof *bad->lines);
            }
            bad->lines[bad->count++] = sb_xstrdup(e.msg);
            sb_warn("skipped %s", e.msg);
            free(data);
            continue;
        }
#pragma omp atomic
        c->reencoded[fix]++;
        size_t nb = 0;
        const imagenet_box *bx =
            c->boxes ? imagenet_bboxes_find(c->boxes, base_name(v[i].path), &nb) : NULL;
        if (4 * nb > box_cap) {
            box_cap = 4 * nb;
            box = sb_xrealloc(box, box_cap * sizeof *box);
        }
        for (size_t k = 0; k < nb; k++) {
            box[k] = bx[k].xmin;
            box[nb + k] = bx[k].ymin;
            box[2 * nb + k] = bx[k].xmax;
            box[3 * nb + k] = bx[k].ymax;
        }
        if (nb) {
#pragma omp atomic
            c->with_boxes++;
        }
        const char *text = c->meta ? imagenet_metadata_text(c->meta, v[i].synset) : NULL;
        ex_image ei = {img,         img_n,           "JPEG", "RGB", 3, h, wd, v[i].label,
                       v[i].synset, text ? text : "", base_name(v[i].path),
                       box,         box + nb,        box + 2 * nb,  box + 3 * nb, nb};
        ex_encode_image(&ei, b, buf);
        rc = rec_lmdb_writer_put(w, buf->data, buf->len, err);
        free(data);
#pragma omp atomic
        c->written++;
        uint64_t done;
#pragma omp atomic capture
        done = ++c->done;
        if (c->progress && omp_get_thread_num() == 0) sb_progress_update(&c->bar, done);
    }
    free(box);
    if (rc) {
        rec_lmdb_writer_abort(w);
        return rc;
    }
    return rec_lmdb_writer_commit(w, err);
}

static int process_split(const char *name, const char *dir, int num_shards,
                         const imagenet_build_opts *o, const imagenet_synsets *syn,
                         const imagenet_synsets *val, const imagenet_metadata *meta,
                         const imagenet_bboxes *boxes, sb_err *err) {
    item_list items = {0};
    int rc = find_files(dir, syn, val, &items, err);
    int64_t *bounds = sb_xmalloc((size_t)(num_shards + 1) * sizeof *bounds);
    if (!rc) rc = imagenet_shard_bounds((int64_t)items.count, num_shards, o->num_threads, bounds, err);
    if (rc) {
        free(bounds);
        free_items(&items);
        return rc;
    }
    sb_info("%s: %zu images from %s into %d shards with %d threads", name, items.count, dir,
            num_shards, o->num_threads);
    split_ctx c = {.name = name, .out_dir = o->output_directory, .items = &items,
                   .bounds = bounds, .num_shards = num_shards, .meta = meta, .boxes = boxes,
                   .progress = o->progress};
    sb_progress_init(&c.bar, name, "img", items.count);
    int per = num_shards / o->num_threads;
    bad_list *bad = sb_xcalloc((size_t)o->num_threads, sizeof *bad);
    int *rcs = sb_xcalloc((size_t)o->num_threads, sizeof *rcs);
    sb_err *errs = sb_xcalloc((size_t)o->num_threads, sizeof *errs);
    double t0 = sb_now();
#pragma omp parallel num_threads(o->num_threads)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        imagenet_codec *codec = NULL;
        ex_builder b;
        ex_buf buf;
        ex_builder_init(&b);
        ex_buf_init(&buf);
        /* the runtime may give fewer threads than asked: the shards of a missing thread t go
         * to thread t % nt, keeping slim's shard contents */
        for (int tt = t; tt < o->num_threads; tt += nt) {
            if (!rcs[t] && !codec) rcs[t] = imagenet_codec_create(&codec, &errs[t]);
            for (int s = tt * per; s < (tt + 1) * per && !rcs[t]; s++)
                rcs[t] = write_shard(&c, s, codec, &b, &buf, &bad[t], &errs[t]);
        }
        imagenet_codec_destroy(codec);
        ex_buf_fini(&buf);
        ex_builder_fini(&b);
    }
    double dt = sb_now() - t0;
    if (o->progress) {
        c.bar.done = c.done;
        sb_progress_finish(&c.bar);
    }
    size_t n_bad = 0, len = 0, cap = 256;
    char *report = sb_xmalloc(cap);
    report[0] = '\0';
    for (int t = 0; t < o->num_threads; t++) {
        if (rcs[t] && !rc) {
            rc = rcs[t];
            *err = errs[t];
        }
        for (size_t i = 0; i < bad[t].count; i++) {
            size_t l = strlen(bad[t].lines[i]);
            if (len + l + 2 > cap) {
                while (len + l + 2 > cap) cap *= 2;
                report = sb_xrealloc(report, cap);
            }
            memcpy(report + len, bad[t].lines[i], l);
            len += l;
            report[len++] = '\n';
            free(bad[t].lines[i]);
            n_bad++;
        }
        free(bad[t].lines);
    }
    char rpath[4096];
    snprintf(rpath, sizeof rpath, "%s/%s_skipped.txt", o->output_directory, name);
    if (!rc && n_bad) rc = sb_atomic_write(rpath, report, len, err);
    else if (!rc) unlink(rpath);
    if (!rc)
        sb_info("%s: %llu images written (%.0f images/s), %d of %d shards kept from an earlier run, "
                "%llu PNG and %llu CMYK re-encoded, %llu with boxes, %zu skipped%s%s",
                name, (unsigned long long)c.written, dt > 0 ? (double)c.written / dt : 0.0,
                (int)c.kept_shards, num_shards, (unsigned long long)c.reencoded[IMAGENET_FIX_PNG],
                (unsigned long long)c.reencoded[IMAGENET_FIX_CMYK],
                (unsigned long long)c.with_boxes, n_bad, n_bad ? ", listed in " : "",
                n_bad ? rpath : "");
    if (o->stats) {
        o->stats->images += c.written;
        o->stats->kept_shards += c.kept_shards;
        o->stats->skipped += n_bad;
        o->stats->seconds += dt;
    }
    free(report);
    free(bad);
    free(rcs);
    free(errs);
    free(bounds);
    free_items(&items);
    return rc;
}

int imagenet_build(const imagenet_build_opts *o, sb_err *err) {
    imagenet_synsets syn = {0}, val = {0};
    imagenet_metadata meta = {0};
    imagenet_bboxes boxes = {0};
    int have_meta = o->metadata_file && *o->metadata_file;
    int have_boxes = o->bounding_box_file && *o->bounding_box_file;
    int have_val = o->validation_labels_file && *o->validation_labels_file;
    int rc = imagenet_synsets_read(o->labels_file, &syn, err);
    if (!rc && have_meta) rc = imagenet_metadata_read(o->metadata_file, &meta, err);
    if (!rc && have_boxes) rc = imagenet_bboxes_read(o->bounding_box_file, &boxes, err);
    if (!rc && have_val) rc = imagenet_validation_labels_read(o->validation_labels_file, &val, err);
    for (int i = 0; !rc && have_meta && i < syn.count; i++)
        if (!imagenet_metadata_text(&meta, syn.ids[i]))
            rc = sb_err_set(err, SB_E_FORMAT, "synset %s of %s has no entry in %s", syn.ids[i],
                            o->labels_file, o->metadata_file);
    if (!rc) rc = sb_mkdirs(o->output_directory, err);
    /* slim converts validation first, then train */
    if (!rc && o->validation_directory && *o->validation_directory)
        rc = process_split("validation", o->validation_directory, o->validation_shards, o, &syn,
                           have_val ? &val : NULL, have_meta ? &meta : NULL,
                           have_boxes ? &boxes : NULL, err);
    if (!rc && o->train_directory && *o->train_directory)
        rc = process_split("train", o->train_directory, o->train_shards, o, &syn, NULL,
                           have_meta ? &meta : NULL, have_boxes ? &boxes : NULL, err);
    if (!rc) { /* labels.txt: 0 is background, then the synsets in label order */
        const char **names = sb_xmalloc((size_t)(syn.count + 1) * sizeof *names);
        names[0] = "background";
        for (int i = 0; i < syn.count; i++) names[i + 1] = syn.ids[i];
        char *path = path_join(o->output_directory, "labels.txt");
        rc = dsf_labels_write(path, NULL, names, syn.count + 1, err);
        free(path);
        free(names);
    }
    imagenet_synsets_free(&syn);
    imagenet_synsets_free(&val);
    imagenet_metadata_free(&meta);
    imagenet_bboxes_free(&boxes);
    return rc;
}
