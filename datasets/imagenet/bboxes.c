/* datasets/imagenet/bboxes.c — slim's bounding-box CSV (written by process_bounding_boxes.py
 * from the ILSVRC XML annotations): "<file>,<xmin>,<ymin>,<xmax>,<ymax>" per box, coordinates
 * relative to the image. Boxes are grouped by file name for lookup while shards are written.
 * Knows nothing of images or records.
 */
#include "datasets/imagenet/imagenet.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    char *file;
    imagenet_box box;
    size_t line;  /* keeps the file's order for boxes of the same image */
} entry;

static int cmp_entry(const void *a, const void *b) {
    const entry *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

static int parse_float(const char *s, float *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    while (*end == ' ' || *end == '\t') end++;
    if (end == s || *end || errno) return -1;
    *out = (float)v;
    return 0;
}

int imagenet_bboxes_read(const char *path, imagenet_bboxes *b, sb_err *err) {
    memset(b, 0, sizeof *b);
    char *text;
    size_t n;
    int rc = sb_read_file(path, &text, &n, err);
    if (rc) return rc;
    entry *v = NULL;
    size_t count = 0, cap = 0, line_no = 0;
    for (char *line = text, *next; line && *line && !rc; line = next) {
        line_no++;
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        size_t l = strlen(line);
        if (l && line[l - 1] == '\r') line[--l] = '\0';
        if (!l) continue;
        char *f[5];
        int k = 0;
        for (char *p = line; k < 5 && p; k++) {
            f[k] = p;
            p = strchr(p, ',');
            if (p) *p++ = '\0';
            if (k == 4 && p) k = 6; /* too many fields */
        }
        float c[4];
        if (k != 5 || !*f[0] || parse_float(f[1], &c[0]) || parse_float(f[2], &c[1]) ||
            parse_float(f[3], &c[2]) || parse_float(f[4], &c[3])) {
            rc = sb_err_set(err, SB_E_FORMAT,
                            "bounding boxes %s:%zu: expected \"file,xmin,ymin,xmax,ymax\"", path,
                            line_no);
            break;
        }
        if (c[0] < 0 || c[1] < 0 || c[2] > 1 || c[3] > 1 || c[0] > c[2] || c[1] > c[3]) {
            rc = sb_err_set(err, SB_E_FORMAT,
                            "bounding boxes %s:%zu: box (%g, %g, %g, %g) of %s is not within "
                            "[0, 1] with min <= max",
                            path, line_no, c[0], c[1], c[2], c[3], f[0]);
            break;
        }
        if (count == cap) {
            cap = cap ? cap * 2 : 4096;
            v = sb_xrealloc(v, cap * sizeof *v);
        }
        v[count++] = (entry){sb_xstrdup(f[0]), {c[0], c[1], c[2], c[3]}, line_no};
    }
    free(text);
    if (rc) {
        for (size_t i = 0; i < count; i++) free(v[i].file);
        free(v);
        return rc;
    }
    qsort(v, count, sizeof *v, cmp_entry);
    b->count = count;
    b->files = sb_xmalloc((count + 1) * sizeof *b->files);
    b->boxes = sb_xmalloc((count + 1) * sizeof *b->boxes);
    for (size_t i = 0; i < count; i++) {
        b->files[i] = v[i].file;
        b->boxes[i] = v[i].box;
    }
    free(v);
    return 0;
}

void imagenet_bboxes_free(imagenet_bboxes *b) {
    for (size_t i = 0; i < b->count; i++) free(b->files[i]);
    free(b->files);
    free(b->boxes);
    memset(b, 0, sizeof *b);
}

const imagenet_box *imagenet_bboxes_find(const imagenet_bboxes *b, const char *file, size_t *n) {
    size_t lo = 0, hi = b->count; /* first index with files[i] >= file */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(b->files[mid], file) < 0) lo = mid + 1;
        else hi = mid;
    }
    size_t end = lo;
    while (end < b->count && !strcmp(b->files[end], file)) end++;
    *n = end - lo;
    return *n ? &b->boxes[lo] : NULL;
}
