/* flags/tables.c — the .def files expanded into flags_def rows: name, type, bounds, default,
 * help and where the value and its set bit live in the typed struct. Nothing here parses; the
 * rows are data for flags.c (parsing) and help.c (help, configuration, CSV columns). */
#include "flags/flags.h"

#include <string.h>

/* Trait names used in the .def files. */
#define SLIM FLAGS_TRAIT_SLIM
#define OURS FLAGS_TRAIT_OURS
#define CSV FLAGS_TRAIT_CSV
#define INERT FLAGS_TRAIT_INERT

#define ROW_(S, n, ty, t, h) \
    .name = #n, .type = (ty), .traits = (t), .help = (h), .offset = offsetof(S, n), \
    .set_offset = offsetof(S, set.n)

#define FLAG_BOOL(n, d, t, h) \
    {ROW_(FLAGS_S_, n, FLAGS_TYPE_BOOL, t, h), .has_default = true, .bool_default = (d)},
#define FLAG_INT(n, d, lo, hi, t, h) \
    {ROW_(FLAGS_S_, n, FLAGS_TYPE_INT, t, h), .has_default = true, .int_default = (d), \
     .int_min = (lo), .int_max = (hi)},
#define FLAG_INT_NONE(n, lo, hi, t, h) \
    {ROW_(FLAGS_S_, n, FLAGS_TYPE_INT, t, h), .has_default = false, .int_min = (lo), \
     .int_max = (hi)},
#define FLAG_FLOAT(n, d, lo, hi, t, h) \
    {ROW_(FLAGS_S_, n, FLAGS_TYPE_FLOAT, t, h), .has_default = true, .float_default = (d), \
     .float_min = (lo), .float_max = (hi)},
#define FLAG_FLOAT_NONE(n, lo, hi, t, h) \
    {ROW_(FLAGS_S_, n, FLAGS_TYPE_FLOAT, t, h), .has_default = false, .float_min = (lo), \
     .float_max = (hi)},
#define FLAG_STRING(n, d, t, h) \
    {ROW_(FLAGS_S_, n, FLAGS_TYPE_STRING, t, h), .has_default = (d) != NULL, .str_default = (d)},
#define FLAG_ENUM(n, d, c, b, t, h) \
    {ROW_(FLAGS_S_, n, FLAGS_TYPE_ENUM, t, h), .has_default = true, .str_default = (d), \
     .choices = (c), .bare = (b)},

#define FLAGS_S_ train_flags
static const flags_def train_defs[] = {
#include "flags/train.def"
};
#undef FLAGS_S_

#define FLAGS_S_ eval_flags
static const flags_def eval_defs[] = {
#include "flags/eval.def"
};
#undef FLAGS_S_

#define FLAGS_S_ sb_flags
static const flags_def sb_defs[] = {
#include "flags/ours.def"
};
#undef FLAGS_S_

#define FLAGS_S_ convert_flags
static const flags_def convert_defs[] = {
#include "flags/convert.def"
};
#undef FLAGS_S_

#define FLAGS_S_ download_flags
static const flags_def download_defs[] = {
#include "flags/download.def"
};
#undef FLAGS_S_

#define FLAGS_S_ build_imagenet_flags
static const flags_def build_imagenet_defs[] = {
#include "flags/build_imagenet.def"
};
#undef FLAGS_S_

#include "flags/flags_xundef.h"

const flags_table flags_train_table = {
    "train_image_classifier.py", train_defs, SB_ARRAY_LEN(train_defs), sizeof(train_flags)};
const flags_table flags_eval_table = {
    "eval_image_classifier.py", eval_defs, SB_ARRAY_LEN(eval_defs), sizeof(eval_flags)};
const flags_table flags_sb_table = {"slimbench", sb_defs, SB_ARRAY_LEN(sb_defs), sizeof(sb_flags)};
const flags_table flags_convert_table = {"convert_tfrecord", convert_defs,
                                         SB_ARRAY_LEN(convert_defs), sizeof(convert_flags)};
const flags_table flags_download_table = {"download_and_convert_data.py", download_defs,
                                          SB_ARRAY_LEN(download_defs), sizeof(download_flags)};
const flags_table flags_build_imagenet_table = {"build_imagenet_data.py", build_imagenet_defs,
                                                SB_ARRAY_LEN(build_imagenet_defs),
                                                sizeof(build_imagenet_flags)};

const flags_def *flags_table_find(const flags_table *table, const char *name) {
    for (size_t i = 0; i < table->count; i++)
        if (strcmp(table->defs[i].name, name) == 0) return &table->defs[i];
    return NULL;
}
