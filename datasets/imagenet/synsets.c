/* datasets/imagenet/synsets.c — the text files build_imagenet_data reads besides images: the
 * labels file (the 1000 challenge synsets in label order), the metadata file (synset -> human
 * readable text, tab-separated, as slim's imagenet_metadata.txt) and a flat validation labels
 * file (one synset per line, in the order of the sorted validation file names).
 * Knows nothing of images or records.
 */
#include "datasets/imagenet/imagenet.h"

#include <stdlib.h>
#include <string.h>

/* Split text into lines in place; calls fn for each (without "\n" or "\r"); stops at non-zero. */
typedef int (*line_fn)(char *line, int line_no, void *ctx, sb_err *err);

static int each_line(const char *path, line_fn fn, void *ctx, sb_err *err) {
    char *text;
    size_t n;
    int rc = sb_read_file(path, &text, &n, err);
    if (rc) return rc;
    int line_no = 0;
    for (char *line = text, *next; line && *line && !rc; line = next) {
        line_no++;
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        size_t l = strlen(line);
        if (l && line[l - 1] == '\r') line[--l] = '\0';
        rc = fn(line, line_no, ctx, err);
    }
    free(text);
    return rc;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t l = strlen(s);
    while (l && (s[l - 1] == ' ' || s[l - 1] == '\t')) s[--l] = '\0';
    return s;
}

typedef struct synset_ctx {
    imagenet_synsets *s;
    const char *path;
    int cap;
} synset_ctx;

static int add_synset(char *line, int line_no, void *vctx, sb_err *err) {
    synset_ctx *c = vctx;
    char *id = trim(line);
    if (!*id) return 0;
    if (strchr(id, ' ') || strchr(id, '\t') || strchr(id, '/'))
        return sb_err_set(err, SB_E_FORMAT, "labels file %s:%d: \"%s\" is not a synset", c->path,
                          line_no, id);
    if (imagenet_synsets_label(c->s, id))
        return sb_err_set(err, SB_E_FORMAT, "labels file %s:%d: %s listed twice", c->path,
                          line_no, id);
    if (c->s->count == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 1024;
        c->s->ids = sb_xrealloc(c->s->ids, (size_t)c->cap * sizeof *c->s->ids);
    }
    c->s->ids[c->s->count++] = sb_xstrdup(id);
    return 0;
}

static int add_synset_dup_ok(char *line, int line_no, void *vctx, sb_err *err) {
    synset_ctx *c = vctx;
    char *id = trim(line);
    if (!*id) return 0;
    if (strchr(id, ' ') || strchr(id, '\t') || strchr(id, '/'))
        return sb_err_set(err, SB_E_FORMAT, "validation labels %s:%d: \"%s\" is not a synset",
                          c->path, line_no, id);
    if (c->s->count == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 65536;
        c->s->ids = sb_xrealloc(c->s->ids, (size_t)c->cap * sizeof *c->s->ids);
    }
    c->s->ids[c->s->count++] = sb_xstrdup(id);
    return 0;
}

int imagenet_validation_labels_read(const char *path, imagenet_synsets *s, sb_err *err) {
    memset(s, 0, sizeof *s);
    synset_ctx c = {s, path, 0};
    int rc = each_line(path, add_synset_dup_ok, &c, err);
    if (rc) imagenet_synsets_free(s);
    return rc;
}

int imagenet_synsets_read(const char *path, imagenet_synsets *s, sb_err *err) {
    memset(s, 0, sizeof *s);
    synset_ctx c = {s, path, 0};
    int rc = each_line(path, add_synset, &c, err);
    if (!rc && s->count == 0) rc = sb_err_set(err, SB_E_FORMAT, "labels file %s: no synsets", path);
    if (rc) imagenet_synsets_free(s);
    return rc;
}

void imagenet_synsets_free(imagenet_synsets *s) {
    for (int i = 0; i < s->count; i++) free(s->ids[i]);
    free(s->ids);
    memset(s, 0, sizeof *s);
}

int imagenet_synsets_label(const imagenet_synsets *s, const char *id) {
    /* 1000 entries, looked up once per synset directory: a scan is enough */
    for (int i = 0; i < s->count; i++)
        if (!strcmp(s->ids[i], id)) return i + 1;
    return 0;
}

typedef struct meta_ctx {
    imagenet_metadata *m;
    const char *path;
    int cap;
} meta_ctx;

static int add_meta(char *line, int line_no, void *vctx, sb_err *err) {
    meta_ctx *c = vctx;
    if (!*trim(line)) return 0;
    char *tab = strchr(line, '\t');
    if (!tab)
        return sb_err_set(err, SB_E_FORMAT,
                          "metadata file %s:%d: expected \"synset<TAB>text\", got \"%.60s\"",
                          c->path, line_no, line);
    *tab = '\0';
    if (c->m->count == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 4096;
        c->m->ids = sb_xrealloc(c->m->ids, (size_t)c->cap * sizeof *c->m->ids);
        c->m->texts = sb_xrealloc(c->m->texts, (size_t)c->cap * sizeof *c->m->texts);
    }
    c->m->ids[c->m->count] = sb_xstrdup(trim(line));
    c->m->texts[c->m->count++] = sb_xstrdup(trim(tab + 1));
    return 0;
}

/* Sort ids and texts together through an array of pointers into ids; equal ids keep their file
 * order (the pointers' order), so the last line of a repeated synset is found last. */
static int cmp_str_ptr(const void *a, const void *b) {
    char **const x = *(char **const *)a, **const y = *(char **const *)b;
    int c = strcmp(*x, *y);
    return c ? c : (x > y) - (x < y);
}

int imagenet_metadata_read(const char *path, imagenet_metadata *m, sb_err *err) {
    memset(m, 0, sizeof *m);
    meta_ctx c = {m, path, 0};
    int rc = each_line(path, add_meta, &c, err);
    if (rc) {
        imagenet_metadata_free(m);
        return rc;
    }
    char ***order = sb_xmalloc((size_t)(m->count + 1) * sizeof *order);
    for (int i = 0; i < m->count; i++) order[i] = &m->ids[i];
    qsort(order, (size_t)m->count, sizeof *order, cmp_str_ptr);
    char **ids = sb_xmalloc((size_t)(m->count + 1) * sizeof *ids);
    char **texts = sb_xmalloc((size_t)(m->count + 1) * sizeof *texts);
    for (int i = 0; i < m->count; i++) {
        size_t k = (size_t)(order[i] - m->ids);
        ids[i] = m->ids[k];
        texts[i] = m->texts[k];
    }
    free(order);
    free(m->ids);
    free(m->texts);
    m->ids = ids;
    m->texts = texts;
    return 0;
}

void imagenet_metadata_free(imagenet_metadata *m) {
    for (int i = 0; i < m->count; i++) {
        free(m->ids[i]);
        free(m->texts[i]);
    }
    free(m->ids);
    free(m->texts);
    memset(m, 0, sizeof *m);
}

const char *imagenet_metadata_text(const imagenet_metadata *m, const char *id) {
    int lo = 0, hi = m->count - 1;
    const char *found = NULL;
    while (lo <= hi) { /* the last of equal ids wins, as a Python dict built line by line */
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(m->ids[mid], id);
        if (c <= 0) {
            if (c == 0) found = m->texts[mid];
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return found;
}
