/* datasets/example.c — tf.train.Example in protobuf wire format, without a protobuf library.
 *
 * The decoder validates the whole message once and keeps an index of (key, Feature body) spans
 * into the caller's buffer, so the accessors walk memory already known to be well formed. It
 * follows protobuf's merge rules where they matter for Examples: a oneof field seen again of the
 * same kind extends the list, a different kind replaces it, a map key seen again overrides the
 * earlier value, unknown fields are skipped. Numbers are accepted packed and unpacked. The
 * encoder writes features sorted by key, numbers packed: the same bytes every time.
 * This file knows nothing of files, TFRecord or LMDB.
 */
#include "datasets/datasets.h"

#include <stdlib.h>
#include <string.h>

enum { WT_VARINT = 0, WT_FIXED64 = 1, WT_LEN = 2, WT_SGROUP = 3, WT_EGROUP = 4, WT_FIXED32 = 5 };

/* A read position inside the serialized Example; base is the start of the whole buffer so
 * messages can report absolute offsets. */
typedef struct cursor {
    const uint8_t *base, *p, *end;
} cursor;

static size_t off(const cursor *c, const uint8_t *p) { return (size_t)(p - c->base); }

static int read_varint(cursor *c, uint64_t *v, sb_err *err) {
    uint64_t x = 0;
    const uint8_t *start = c->p;
    *v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (c->p >= c->end)
            return sb_err_set(err, SB_E_CORRUPT, "Example: truncated varint at byte %zu",
                              off(c, start));
        uint8_t b = *c->p++;
        if (shift == 63 && b > 1)
            return sb_err_set(err, SB_E_CORRUPT, "Example: varint longer than 64 bits at byte %zu",
                              off(c, start));
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return sb_err_set(err, SB_E_CORRUPT, "Example: varint longer than 10 bytes at byte %zu",
                      off(c, start));
}

/* Read a tag; *at gets the offset of the tag for messages. */
static int read_tag(cursor *c, uint32_t *field, int *wt, size_t *at, sb_err *err) {
    *at = off(c, c->p);
    *field = 0;
    *wt = 0;
    uint64_t t;
    int rc = read_varint(c, &t, err);
    if (rc) return rc;
    if ((t >> 3) == 0 || (t >> 3) > 0x1fffffff || (t & 7) > 5)
        return sb_err_set(err, SB_E_CORRUPT, "Example: invalid tag %llu at byte %zu",
                          (unsigned long long)t, *at);
    *field = (uint32_t)(t >> 3);
    *wt = (int)(t & 7);
    return 0;
}

/* A length-delimited payload: the sub-cursor over it. */
static int read_len(cursor *c, cursor *sub, sb_err *err) {
    const uint8_t *start = c->p;
    *sub = (cursor){c->base, c->p, c->p};
    uint64_t n;
    int rc = read_varint(c, &n, err);
    if (rc) return rc;
    if (n > (uint64_t)(c->end - c->p))
        return sb_err_set(err, SB_E_CORRUPT,
                          "Example: length %llu at byte %zu runs past the end (%zu bytes left)",
                          (unsigned long long)n, off(c, start), (size_t)(c->end - c->p));
    sub->base = c->base;
    sub->p = c->p;
    sub->end = c->p + n;
    c->p += n;
    return 0;
}

static int skip_field(cursor *c, uint32_t field, int wt, int depth, sb_err *err) {
    uint64_t v;
    cursor sub;
    switch (wt) {
    case WT_VARINT: return read_varint(c, &v, err);
    case WT_LEN: return read_len(c, &sub, err);
    case WT_FIXED64:
    case WT_FIXED32: {
        size_t k = wt == WT_FIXED64 ? 8 : 4;
        if ((size_t)(c->end - c->p) < k)
            return sb_err_set(err, SB_E_CORRUPT, "Example: truncated fixed%zu at byte %zu", k * 8,
                              off(c, c->p));
        c->p += k;
        return 0;
    }
    case WT_SGROUP:
        if (depth > 64)
            return sb_err_set(err, SB_E_CORRUPT, "Example: groups nested too deep at byte %zu",
                              off(c, c->p));
        for (;;) {
            uint32_t f;
            int w;
            size_t at;
            if (c->p >= c->end)
                return sb_err_set(err, SB_E_CORRUPT, "Example: unterminated group %u", field);
            int rc = read_tag(c, &f, &w, &at, err);
            if (rc) return rc;
            if (w == WT_EGROUP) {
                if (f != field)
                    return sb_err_set(err, SB_E_CORRUPT,
                                      "Example: end of group %u at byte %zu closes group %u", f, at,
                                      field);
                return 0;
            }
            rc = skip_field(c, f, w, depth + 1, err);
            if (rc) return rc;
        }
    default:
        return sb_err_set(err, SB_E_CORRUPT, "Example: unexpected end-group at byte %zu",
                          off(c, c->p));
    }
}

static int wrong_type(uint32_t field, int wt, const char *msg, size_t at, sb_err *err) {
    return sb_err_set(err, SB_E_CORRUPT, "Example: field %u of %s has wire type %d at byte %zu",
                      field, msg, wt, at);
}

/* Count the values of one *List message, validating it. */
static int count_list(cursor *list, enum ex_kind kind, size_t *count, sb_err *err) {
    while (list->p < list->end) {
        uint32_t f;
        int wt;
        size_t at;
        int rc = read_tag(list, &f, &wt, &at, err);
        if (rc) return rc;
        if (f != 1) {
            if ((rc = skip_field(list, f, wt, 0, err))) return rc;
            continue;
        }
        cursor sub;
        uint64_t v;
        switch (kind) {
        case EX_KIND_BYTES:
            if (wt != WT_LEN) return wrong_type(f, wt, "BytesList", at, err);
            if ((rc = read_len(list, &sub, err))) return rc;
            (*count)++;
            break;
        case EX_KIND_FLOAT:
            if (wt == WT_FIXED32) {
                if ((rc = skip_field(list, f, wt, 0, err))) return rc;
                (*count)++;
            } else if (wt == WT_LEN) {
                if ((rc = read_len(list, &sub, err))) return rc;
                size_t n = (size_t)(sub.end - sub.p);
                if (n % 4)
                    return sb_err_set(err, SB_E_CORRUPT,
                                      "Example: packed float list of %zu bytes at byte %zu", n, at);
                *count += n / 4;
            } else {
                return wrong_type(f, wt, "FloatList", at, err);
            }
            break;
        default: /* EX_KIND_INT64 */
            if (wt == WT_VARINT) {
                if ((rc = read_varint(list, &v, err))) return rc;
                (*count)++;
            } else if (wt == WT_LEN) {
                if ((rc = read_len(list, &sub, err))) return rc;
                while (sub.p < sub.end) {
                    if ((rc = read_varint(&sub, &v, err))) return rc;
                    (*count)++;
                }
            } else {
                return wrong_type(f, wt, "Int64List", at, err);
            }
            break;
        }
    }
    return 0;
}

static int parse_feature(cursor *body, ex_feature *ft, sb_err *err) {
    ft->kind = EX_KIND_NONE;
    ft->count = 0;
    ft->body = body->p;
    ft->body_len = (size_t)(body->end - body->p);
    ft->body_from = 0;
    while (body->p < body->end) {
        const uint8_t *field_start = body->p;
        uint32_t f;
        int wt;
        size_t at;
        int rc = read_tag(body, &f, &wt, &at, err);
        if (rc) return rc;
        if (f < 1 || f > 3) {
            if ((rc = skip_field(body, f, wt, 0, err))) return rc;
            continue;
        }
        if (wt != WT_LEN) return wrong_type(f, wt, "Feature", at, err);
        enum ex_kind kind = (enum ex_kind)f; /* 1 bytes, 2 float, 3 int64 */
        if (kind != ft->kind) { /* oneof: a different list replaces the earlier one */
            ft->kind = kind;
            ft->count = 0;
            ft->body_from = (size_t)(field_start - ft->body);
        }
        cursor list;
        if ((rc = read_len(body, &list, err))) return rc;
        if ((rc = count_list(&list, kind, &ft->count, err))) return rc;
    }
    return 0;
}

static int parse_entry(cursor *entry, ex_example *ex, sb_err *err) {
    ex_feature ft = {.key = entry->p, .key_len = 0, .kind = EX_KIND_NONE};
    cursor body = {entry->base, entry->p, entry->p}; /* absent value = empty Feature */
    while (entry->p < entry->end) {
        uint32_t f;
        int wt;
        size_t at;
        int rc = read_tag(entry, &f, &wt, &at, err);
        if (rc) return rc;
        if (f == 1 || f == 2) {
            if (wt != WT_LEN) return wrong_type(f, wt, "Features.feature entry", at, err);
            cursor sub;
            if ((rc = read_len(entry, &sub, err))) return rc;
            if (f == 1) {
                ft.key = sub.p;
                ft.key_len = (size_t)(sub.end - sub.p);
            } else {
                body = sub;
            }
        } else if ((rc = skip_field(entry, f, wt, 0, err))) {
            return rc;
        }
    }
    int rc = parse_feature(&body, &ft, err);
    if (rc) return rc;
    if (ex->count == ex->cap) {
        ex->cap = ex->cap ? ex->cap * 2 : 16;
        ex->features = sb_xrealloc(ex->features, ex->cap * sizeof *ex->features);
    }
    ex->features[ex->count++] = ft;
    return 0;
}

void ex_init(ex_example *ex) { memset(ex, 0, sizeof *ex); }

void ex_fini(ex_example *ex) {
    free(ex->features);
    memset(ex, 0, sizeof *ex);
}

int ex_decode(ex_example *ex, const uint8_t *data, size_t n, sb_err *err) {
    ex->count = 0;
    cursor c = {data, data, data + n};
    while (c.p < c.end) {
        uint32_t f;
        int wt;
        size_t at;
        int rc = read_tag(&c, &f, &wt, &at, err);
        if (rc) return rc;
        if (f != 1) {
            if ((rc = skip_field(&c, f, wt, 0, err))) return rc;
            continue;
        }
        if (wt != WT_LEN) return wrong_type(f, wt, "Example", at, err);
        cursor feats;
        if ((rc = read_len(&c, &feats, err))) return rc;
        while (feats.p < feats.end) {
            if ((rc = read_tag(&feats, &f, &wt, &at, err))) return rc;
            if (f != 1) {
                if ((rc = skip_field(&feats, f, wt, 0, err))) return rc;
                continue;
            }
            if (wt != WT_LEN) return wrong_type(f, wt, "Features", at, err);
            cursor entry;
            if ((rc = read_len(&feats, &entry, err))) return rc;
            if ((rc = parse_entry(&entry, ex, err))) return rc;
        }
    }
    return 0;
}

const ex_feature *ex_find(const ex_example *ex, const char *key) {
    size_t kl = strlen(key);
    for (size_t i = ex->count; i-- > 0;) {
        const ex_feature *ft = &ex->features[i];
        if (ft->key_len == kl && memcmp(ft->key, key, kl) == 0) return ft;
    }
    return NULL;
}

/* Call visit(value cursor, wire type) for every value of ft's list, in order. The message was
 * validated by ex_decode, so errors cannot happen here. */
typedef void (*visit_fn)(const uint8_t *p, size_t n, int wt, void *ctx);

static void walk_values(const ex_feature *ft, visit_fn visit, void *ctx) {
    cursor body = {ft->body, ft->body + ft->body_from, ft->body + ft->body_len};
    while (body.p < body.end) {
        uint32_t f;
        int wt;
        size_t at;
        SB_ASSERT(read_tag(&body, &f, &wt, &at, NULL) == 0);
        if (f != (uint32_t)ft->kind) {
            SB_ASSERT(skip_field(&body, f, wt, 0, NULL) == 0);
            continue;
        }
        cursor list;
        SB_ASSERT(read_len(&body, &list, NULL) == 0);
        while (list.p < list.end) {
            SB_ASSERT(read_tag(&list, &f, &wt, &at, NULL) == 0);
            const uint8_t *start = list.p;
            if (f != 1 || wt != WT_LEN) {
                SB_ASSERT(skip_field(&list, f, wt, 0, NULL) == 0);
                if (f == 1) visit(start, (size_t)(list.p - start), wt, ctx);
                continue;
            }
            cursor v;
            SB_ASSERT(read_len(&list, &v, NULL) == 0);
            visit(v.p, (size_t)(v.end - v.p), wt, ctx);
        }
    }
}

typedef struct bytes_ctx {
    size_t want, seen;
    const uint8_t *p;
    size_t n;
} bytes_ctx;

static void visit_bytes(const uint8_t *p, size_t n, int wt, void *vctx) {
    bytes_ctx *c = vctx;
    if (c->seen++ == c->want) {
        c->p = p;
        c->n = n;
    }
}

static const ex_feature *find_kind(const ex_example *ex, const char *key, enum ex_kind kind,
                                   int *rc) {
    const ex_feature *ft = ex_find(ex, key);
    *rc = !ft ? SB_E_NOTFOUND : ft->kind != kind ? SB_E_FORMAT : 0;
    return *rc ? NULL : ft;
}

int ex_get_bytes(const ex_example *ex, const char *key, size_t i, const uint8_t **p, size_t *n) {
    int rc;
    const ex_feature *ft = find_kind(ex, key, EX_KIND_BYTES, &rc);
    if (!ft) return rc;
    if (i >= ft->count) return SB_E_NOTFOUND;
    bytes_ctx c = {.want = i};
    walk_values(ft, visit_bytes, &c);
    *p = c.p;
    *n = c.n;
    return 0;
}

typedef struct num_ctx {
    void *out;
    size_t cap, n;
} num_ctx;

static void visit_int64(const uint8_t *p, size_t n, int wt, void *vctx) {
    num_ctx *c = vctx;
    cursor cur = {p, p, p + n};
    while (cur.p < cur.end) { /* a packed run, or one varint */
        uint64_t v;
        SB_ASSERT(read_varint(&cur, &v, NULL) == 0);
        if (c->n < c->cap) ((int64_t *)c->out)[c->n] = (int64_t)v;
        c->n++;
    }
}

static void visit_float(const uint8_t *p, size_t n, int wt, void *vctx) {
    num_ctx *c = vctx;
    for (size_t k = 0; k + 4 <= n; k += 4) { /* packed: n/4 floats; fixed32: one */
        if (c->n < c->cap) memcpy((float *)c->out + c->n, p + k, 4);
        c->n++;
    }
}

int ex_get_int64(const ex_example *ex, const char *key, int64_t *out, size_t cap, size_t *count) {
    int rc;
    const ex_feature *ft = find_kind(ex, key, EX_KIND_INT64, &rc);
    if (!ft) return rc;
    num_ctx c = {out, cap, 0};
    walk_values(ft, visit_int64, &c);
    *count = c.n;
    return 0;
}

int ex_get_float(const ex_example *ex, const char *key, float *out, size_t cap, size_t *count) {
    int rc;
    const ex_feature *ft = find_kind(ex, key, EX_KIND_FLOAT, &rc);
    if (!ft) return rc;
    num_ctx c = {out, cap, 0};
    walk_values(ft, visit_float, &c);
    *count = c.n;
    return 0;
}

/* ------------------------------------------------------------------------------------------ *
 * Encoder
 * ------------------------------------------------------------------------------------------ */

void ex_buf_init(ex_buf *b) { memset(b, 0, sizeof *b); }

void ex_buf_fini(ex_buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

static void buf_reserve(ex_buf *b, size_t extra) {
    if (b->len + extra <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) cap *= 2;
    b->data = sb_xrealloc(b->data, cap);
    b->cap = cap;
}

static void put_bytes(ex_buf *b, const void *p, size_t n) {
    buf_reserve(b, n);
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void put_varint(ex_buf *b, uint64_t v) {
    buf_reserve(b, 10);
    while (v >= 0x80) {
        b->data[b->len++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b->data[b->len++] = (uint8_t)v;
}

static size_t varint_len(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* One feature being built: its key and its serialized Feature message. */
struct ex_bfeat {
    char *key;
    ex_buf body;
};

void ex_builder_init(ex_builder *b) { memset(b, 0, sizeof *b); }

void ex_builder_fini(ex_builder *b) {
    for (size_t i = 0; i < b->cap; i++) {
        free(b->feats[i].key);
        ex_buf_fini(&b->feats[i].body);
    }
    free(b->feats);
    memset(b, 0, sizeof *b);
}

void ex_builder_reset(ex_builder *b) {
    for (size_t i = 0; i < b->count; i++) {
        free(b->feats[i].key);
        b->feats[i].key = NULL;
        b->feats[i].body.len = 0;
    }
    b->count = 0;
}

static ex_buf *add_feature(ex_builder *b, const char *key) {
    for (size_t i = 0; i < b->count; i++)
        SB_ASSERTF(strcmp(b->feats[i].key, key) != 0, "feature %s added twice", key);
    if (b->count == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        b->feats = sb_xrealloc(b->feats, cap * sizeof *b->feats);
        memset(b->feats + b->cap, 0, (cap - b->cap) * sizeof *b->feats);
        b->cap = cap;
    }
    struct ex_bfeat *f = &b->feats[b->count++];
    f->key = sb_xstrdup(key);
    f->body.len = 0;
    return &f->body;
}

void ex_builder_add_bytes(ex_builder *b, const char *key, const uint8_t *const *vals,
                          const size_t *lens, size_t n) {
    ex_buf *body = add_feature(b, key);
    size_t list_len = 0;
    for (size_t i = 0; i < n; i++) list_len += 1 + varint_len(lens[i]) + lens[i];
    put_varint(body, (1 << 3) | WT_LEN);
    put_varint(body, list_len);
    for (size_t i = 0; i < n; i++) {
        put_varint(body, (1 << 3) | WT_LEN);
        put_varint(body, lens[i]);
        put_bytes(body, vals[i], lens[i]);
    }
}

void ex_builder_add_string(ex_builder *b, const char *key, const char *s) {
    const uint8_t *v = (const uint8_t *)s;
    size_t n = strlen(s);
    ex_builder_add_bytes(b, key, &v, &n, 1);
}

void ex_builder_add_int64(ex_builder *b, const char *key, const int64_t *vals, size_t n) {
    ex_buf *body = add_feature(b, key);
    size_t packed = 0;
    for (size_t i = 0; i < n; i++) packed += varint_len((uint64_t)vals[i]);
    size_t list_len = n ? 1 + varint_len(packed) + packed : 0;
    put_varint(body, (3 << 3) | WT_LEN);
    put_varint(body, list_len);
    if (!n) return;
    put_varint(body, (1 << 3) | WT_LEN);
    put_varint(body, packed);
    for (size_t i = 0; i < n; i++) put_varint(body, (uint64_t)vals[i]);
}

void ex_builder_add_float(ex_builder *b, const char *key, const float *vals, size_t n) {
    ex_buf *body = add_feature(b, key);
    size_t packed = 4 * n;
    size_t list_len = n ? 1 + varint_len(packed) + packed : 0;
    put_varint(body, (2 << 3) | WT_LEN);
    put_varint(body, list_len);
    if (!n) return;
    put_varint(body, (1 << 3) | WT_LEN);
    put_varint(body, packed);
    put_bytes(body, vals, packed); /* x86 is little-endian, as the wire format */
}

static int cmp_feat(const void *a, const void *b) {
    const struct ex_bfeat *const *x = a, *const *y = b;
    return strcmp((*x)->key, (*y)->key);
}

void ex_builder_encode(const ex_builder *b, ex_buf *out) {
    out->len = 0;
    const struct ex_bfeat **order = sb_xmalloc((b->count + 1) * sizeof *order);
    for (size_t i = 0; i < b->count; i++) order[i] = &b->feats[i];
    qsort(order, b->count, sizeof *order, cmp_feat);
    size_t features_len = 0;
    for (size_t i = 0; i < b->count; i++) {
        size_t kl = strlen(order[i]->key), bl = order[i]->body.len;
        size_t entry = 1 + varint_len(kl) + kl + 1 + varint_len(bl) + bl;
        features_len += 1 + varint_len(entry) + entry;
    }
    put_varint(out, (1 << 3) | WT_LEN);
    put_varint(out, features_len);
    for (size_t i = 0; i < b->count; i++) {
        size_t kl = strlen(order[i]->key), bl = order[i]->body.len;
        size_t entry = 1 + varint_len(kl) + kl + 1 + varint_len(bl) + bl;
        put_varint(out, (1 << 3) | WT_LEN);
        put_varint(out, entry);
        put_varint(out, (1 << 3) | WT_LEN);
        put_varint(out, kl);
        put_bytes(out, order[i]->key, kl);
        put_varint(out, (2 << 3) | WT_LEN);
        put_varint(out, bl);
        put_bytes(out, order[i]->body.data, bl);
    }
    free(order);
}

void ex_encode_image(const ex_image *img, ex_builder *b, ex_buf *out) {
    ex_builder_reset(b);
    const uint8_t *enc = img->encoded;
    size_t enc_len = img->encoded_len;
    ex_builder_add_bytes(b, "image/encoded", &enc, &enc_len, 1);
    ex_builder_add_string(b, "image/format", img->format ? img->format : "JPEG");
    ex_builder_add_string(b, "image/colorspace", img->colorspace ? img->colorspace : "RGB");
    int64_t v = img->channels;
    ex_builder_add_int64(b, "image/channels", &v, 1);
    v = img->height;
    ex_builder_add_int64(b, "image/height", &v, 1);
    v = img->width;
    ex_builder_add_int64(b, "image/width", &v, 1);
    ex_builder_add_int64(b, "image/class/label", &img->label, 1);
    ex_builder_add_string(b, "image/class/synset", img->synset ? img->synset : "");
    ex_builder_add_string(b, "image/class/text", img->text ? img->text : "");
    ex_builder_add_string(b, "image/filename", img->filename ? img->filename : "");
    ex_builder_add_float(b, "image/object/bbox/xmin", img->xmin, img->n_boxes);
    ex_builder_add_float(b, "image/object/bbox/ymin", img->ymin, img->n_boxes);
    ex_builder_add_float(b, "image/object/bbox/xmax", img->xmax, img->n_boxes);
    ex_builder_add_float(b, "image/object/bbox/ymax", img->ymax, img->n_boxes);
    /* slim labels every box with the image's label */
    int64_t *labels = sb_xmalloc((img->n_boxes + 1) * sizeof *labels);
    for (size_t i = 0; i < img->n_boxes; i++) labels[i] = img->label;
    ex_builder_add_int64(b, "image/object/bbox/label", labels, img->n_boxes);
    free(labels);
    ex_builder_encode(b, out);
}
