/* datasets/dataset_factory.c — the data sets slim knows (its dataset_factory plus fashion_mnist
 * and synthetic): splits, sizes, class counts and shard names; labels.txt in slim's
 * dataset_utils format ("N:name" per line); glob expansion for shard patterns.
 * Knows nothing of the record formats.
 */
#include "datasets/datasets.h"

#include <errno.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>

/* Sizes and class counts as slim's datasets/{imagenet,mnist,cifar10,flowers}.py. mnist and
 * cifar10 splits are one shard each ("train-00000-of-00001"); slim writes one TFRecord file per
 * split for them too. */
static const dsf_dataset k_datasets[] = {
    {"imagenet", 1001, 0, 0, 0, 3, 0, {{"train", 1281167, 1024}, {"validation", 50000, 128}}, 2},
    {"mnist", 10, 0, 28, 28, 1, 0, {{"train", 60000, 1}, {"test", 10000, 1}}, 2},
    {"fashion_mnist", 10, 0, 28, 28, 1, 0, {{"train", 60000, 1}, {"test", 10000, 1}}, 2},
    {"cifar10", 10, 0, 32, 32, 3, 0, {{"train", 50000, 1}, {"test", 10000, 1}}, 2},
    {"flowers", 5, 0, 0, 0, 3, 0, {{"train", 3320, 5}, {"validation", 350, 5}}, 2},
    {"synthetic", 1001, 0, 224, 224, 3, 1, {{"train", 1281167, 0}, {"validation", 50000, 0}}, 2},
};

const dsf_dataset *dsf_find(const char *name) {
    for (size_t i = 0; i < SB_ARRAY_LEN(k_datasets); i++)
        if (!strcmp(k_datasets[i].name, name)) return &k_datasets[i];
    return NULL;
}

const char *dsf_names(void) { return "imagenet, mnist, fashion_mnist, cifar10, flowers, synthetic"; }

const dsf_split *dsf_find_split(const dsf_dataset *ds, const char *split) {
    for (int i = 0; i < ds->num_splits; i++)
        if (!strcmp(ds->splits[i].name, split)) return &ds->splits[i];
    return NULL;
}

int dsf_shard_path(char *buf, size_t cap, const char *dir, const char *split, int i, int n) {
    return snprintf(buf, cap, "%s/%s-%05d-of-%05d", dir, split, i, n);
}

static const char *const k_mnist_names[] = {"zero", "one", "two",   "three", "four",
                                            "five", "six", "seven", "eight", "nine"};
static const char *const k_fashion_names[] = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                              "Coat",        "Sandal",  "Shirt",    "Sneaker",
                                              "Bag",         "Ankle boot"};
static const char *const k_cifar10_names[] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                              "dog",      "frog",       "horse", "ship", "truck"};
/* slim's flowers labels are the sorted directory names of flower_photos */
static const char *const k_flowers_names[] = {"daisy", "dandelion", "roses", "sunflowers",
                                              "tulips"};

const char *const *dsf_class_names(const dsf_dataset *ds) {
    if (!strcmp(ds->name, "mnist")) return k_mnist_names;
    if (!strcmp(ds->name, "fashion_mnist")) return k_fashion_names;
    if (!strcmp(ds->name, "cifar10")) return k_cifar10_names;
    if (!strcmp(ds->name, "flowers")) return k_flowers_names;
    return NULL;
}

int dsf_labels_write(const char *path, const int *ids, const char *const *names, int n,
                     sb_err *err) {
    size_t cap = 64, len = 0;
    char *text = sb_xmalloc(cap);
    for (int i = 0; i < n; i++) {
        size_t need = strlen(names[i]) + 16;
        if (len + need >= cap) {
            while (len + need >= cap) cap *= 2;
            text = sb_xrealloc(text, cap);
        }
        len += (size_t)snprintf(text + len, cap - len, "%d:%s\n", ids ? ids[i] : i, names[i]);
    }
    int rc = sb_atomic_write(path, text, len, err);
    free(text);
    return rc;
}

void dsf_labels_free(dsf_labels *labels) {
    for (int i = 0; i < labels->count; i++) free(labels->names[i]);
    free(labels->names);
    free(labels->ids);
    memset(labels, 0, sizeof *labels);
}

int dsf_labels_read(const char *path, dsf_labels *labels, sb_err *err) {
    memset(labels, 0, sizeof *labels);
    char *text;
    size_t n;
    int rc = sb_read_file(path, &text, &n, err);
    if (rc) return rc;
    int cap = 0, line_no = 0;
    for (char *line = text, *next; line && *line; line = next) {
        line_no++;
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        size_t l = strlen(line);
        if (l && line[l - 1] == '\r') line[--l] = '\0';
        if (!l) continue;
        char *colon = strchr(line, ':'), *end;
        errno = 0;
        long id = colon ? strtol(line, &end, 10) : 0;
        if (!colon || end != colon || end == line || errno || id < 0 || id > 1000000) {
            rc = sb_err_set(err, SB_E_FORMAT, "labels %s:%d: expected \"N:name\", got \"%.60s\"",
                            path, line_no, line);
            dsf_labels_free(labels);
            break;
        }
        if (labels->count == cap) {
            cap = cap ? cap * 2 : 64;
            labels->ids = sb_xrealloc(labels->ids, (size_t)cap * sizeof *labels->ids);
            labels->names = sb_xrealloc(labels->names, (size_t)cap * sizeof *labels->names);
        }
        labels->ids[labels->count] = (int)id;
        labels->names[labels->count++] = sb_xstrdup(colon + 1);
    }
    free(text);
    return rc;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int dsf_glob(const char *patterns, char ***paths, size_t *n, sb_err *err) {
    *paths = NULL;
    *n = 0;
    char *copy = sb_xstrdup(patterns);
    size_t cap = 0;
    int rc = 0;
    for (char *save = NULL, *pat = strtok_r(copy, ",", &save); pat;
         pat = strtok_r(NULL, ",", &save)) {
        glob_t g;
        int grc = glob(pat, 0, NULL, &g);
        if (grc == GLOB_NOMATCH || (grc == 0 && g.gl_pathc == 0)) {
            globfree(&g);
            rc = sb_err_set(err, SB_E_NOTFOUND, "pattern: no file matches '%s'", pat);
            break;
        }
        if (grc) {
            globfree(&g);
            rc = sb_err_set(err, grc == GLOB_NOSPACE ? ENOMEM : EIO, "pattern: cannot expand '%s'",
                            pat);
            break;
        }
        for (size_t i = 0; i < g.gl_pathc; i++) {
            if (*n == cap) {
                cap = cap ? cap * 2 : 64;
                *paths = sb_xrealloc(*paths, cap * sizeof **paths);
            }
            (*paths)[(*n)++] = sb_xstrdup(g.gl_pathv[i]);
        }
        globfree(&g);
    }
    free(copy);
    if (rc) {
        dsf_free_paths(*paths, *n);
        *paths = NULL;
        *n = 0;
        return rc;
    }
    if (*n == 0) return sb_err_set(err, SB_E_NOTFOUND, "empty file pattern");
    qsort(*paths, *n, sizeof **paths, cmp_str);
    size_t w = 1;
    for (size_t i = 1; i < *n; i++) {
        if (strcmp((*paths)[i], (*paths)[w - 1])) (*paths)[w++] = (*paths)[i];
        else free((*paths)[i]);
    }
    *n = w;
    return 0;
}

void dsf_free_paths(char **paths, size_t n) {
    for (size_t i = 0; i < n; i++) free(paths[i]);
    free(paths);
}
