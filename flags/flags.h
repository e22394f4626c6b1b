/* flags/flags.h — absl-compatible command-line flags driven by definition tables.
 *
 * A command's flags come from X-macro tables (flags/train.def, flags/eval.def, flags/ours.def).
 * Expanding a table yields a typed struct (train_flags, eval_flags, sb_flags) and a flags_table
 * describing each row; the parser, --help/--helpfull, the resolved-configuration printout and
 * the results CSV's config columns all read the same rows.
 *
 * Syntax (absl): --f=v, --f v, -f=v, -f v; booleans --b, --nob, --b=true|false|t|f|1|0 (any
 * case); --flagfile=F (one argument per line, blank lines and lines starting with # or // are
 * skipped, nested --flagfile=G is read relative to F's directory); --undefok=a,b (unknown flags
 * a, b, noa, nob are ignored wherever they appear); --help, --helpshort, --helpfull; "--" ends
 * the flags. Later occurrences override earlier ones. A flag with a "bare" value (ours:
 * --print_model) given without "=value" takes that value and never consumes the next argument.
 *
 * Value types: bool; int (decimal, 0x hex or 0o octal, range-checked against the row's bounds,
 * no trailing garbage); float (strtod syntax, no NaN, bounds); string; enum (one of the row's
 * choices, case-sensitive). Rows may have no default ("None" in slim): the field then holds
 * 0 / NULL and its `set` bit stays false until the flag is given.
 */
#ifndef SB_FLAGS_H
#define SB_FLAGS_H

#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "core/sb.h"

/* ---------------------------------------------------------------------------------------------
 * The typed structs. For each row `name`: a field `name` (bool, int, double, or char * owned by
 * the struct, NULL for a string without default) and a bit `set.name`, true when the flag was
 * given on the command line or in a flagfile.
 * ------------------------------------------------------------------------------------------- */
typedef struct train_flags {
#include "flags/flags_xfields.h"
#include "flags/train.def"
    struct {
#include "flags/flags_xsetbits.h"
#include "flags/train.def"
    } set;
} train_flags;

typedef struct eval_flags {
#include "flags/flags_xfields.h"
#include "flags/eval.def"
    struct {
#include "flags/flags_xsetbits.h"
#include "flags/eval.def"
    } set;
} eval_flags;

typedef struct sb_flags {
#include "flags/flags_xfields.h"
#include "flags/ours.def"
    struct {
#include "flags/flags_xsetbits.h"
#include "flags/ours.def"
    } set;
} sb_flags;
/* convert_tfrecord (flags/convert.def) and download_and_convert_data (flags/download.def). */
typedef struct convert_flags {
#include "flags/flags_xfields.h"
#include "flags/convert.def"
    struct {
#include "flags/flags_xsetbits.h"
#include "flags/convert.def"
    } set;
} convert_flags;

typedef struct download_flags {
#include "flags/flags_xfields.h"
#include "flags/download.def"
    struct {
#include "flags/flags_xsetbits.h"
#include "flags/download.def"
    } set;
} download_flags;

typedef struct build_imagenet_flags {
#include "flags/flags_xfields.h"
#include "flags/build_imagenet.def"
    struct {
#include "flags/flags_xsetbits.h"
#include "flags/build_imagenet.def"
    } set;
} build_imagenet_flags;
#include "flags/flags_xundef.h"

/* ---------------------------------------------------------------------------------------------
 * Table rows.
 * ------------------------------------------------------------------------------------------- */
typedef enum flags_type {
    FLAGS_TYPE_BOOL,
    FLAGS_TYPE_INT,
    FLAGS_TYPE_FLOAT,
    FLAGS_TYPE_STRING,
    FLAGS_TYPE_ENUM,
    FLAGS_TYPE_COUNT
} flags_type;

/* Row traits (the `traits` column of the .def files). */
enum flags_trait {
    FLAGS_TRAIT_SLIM = 1 << 0,  /* TF-slim's flag: same name, default and meaning */
    FLAGS_TRAIT_OURS = 1 << 1,  /* slimbench's own */
    FLAGS_TRAIT_CSV = 1 << 2,   /* a config column of the results CSV */
    FLAGS_TRAIT_INERT = 1 << 3, /* accepted for compatibility; no effect in slimbench */
};

/* One flag. Read-only, static lifetime. */
typedef struct flags_def {
    const char *name;
    flags_type type;
    unsigned traits;           /* enum flags_trait bits */
    bool has_default;          /* false: default None (int/float rows *_NONE, strings NULL) */
    bool bool_default;
    long long int_default, int_min, int_max;
    double float_default, float_min, float_max;
    const char *str_default;   /* string and enum rows; NULL = None */
    const char *choices;       /* enum: "a|b|c"; a leading "|" allows the empty value */
    const char *bare;          /* enum: value of a bare --name (no "=value"); NULL = needs one */
    const char *help;
    size_t offset;             /* of the value in the typed struct */
    size_t set_offset;         /* of the set bit in the typed struct */
} flags_def;

/* A whole table: the rows of one .def file and the struct they fill. */
typedef struct flags_table {
    const char *module;        /* --helpfull section: "train_image_classifier.py", "slimbench" */
    const flags_def *defs;
    size_t count;
    size_t struct_size;
} flags_table;

extern const flags_table flags_train_table; /* flags/train.def -> train_flags */
extern const flags_table flags_eval_table;  /* flags/eval.def  -> eval_flags  */
extern const flags_table flags_sb_table;    /* flags/ours.def  -> sb_flags    */
extern const flags_table flags_convert_table;  /* flags/convert.def  -> convert_flags  */
extern const flags_table flags_download_table; /* flags/download.def -> download_flags */
extern const flags_table flags_build_imagenet_table; /* build_imagenet.def -> build_imagenet_flags */

/* Set every field of `values` (a struct of table's type) to its default; strings are copied.
 * Release with flags_values_fini. */
void flags_values_init(const flags_table *table, void *values);

/* Free the strings owned by `values`; the struct may be initialised again afterwards. */
void flags_values_fini(const flags_table *table, void *values);

/* The row called name, or NULL. */
const flags_def *flags_table_find(const flags_table *table, const char *name);

/* ---------------------------------------------------------------------------------------------
 * Parsing.
 * ------------------------------------------------------------------------------------------- */

/* A table bound to the struct it fills. */
typedef struct flags_binding {
    const flags_table *table;
    void *values;              /* initialised with flags_values_init */
} flags_binding;

/* A command's flags: its tables, the first being its "main module" (shown by --help). */
typedef struct flags_spec {
    const char *program;       /* "launch" — usage line and messages */
    const char *summary;       /* one line under the usage line */
    const flags_binding *bindings;
    size_t count;
} flags_spec;

typedef enum flags_help {
    FLAGS_HELP_NONE,           /* no help requested */
    FLAGS_HELP_SHORT,          /* --help or --helpshort: the main module's flags */
    FLAGS_HELP_FULL,           /* --helpfull: every module */
    FLAGS_HELP_COUNT
} flags_help;

/* What parsing leaves besides the flag values. */
typedef struct flags_result {
    flags_help help;           /* set when --help/--helpshort/--helpfull was seen; parsing stops
                                * there, as absl's help flags act when they are parsed */
    int npositional;
    char **positional;         /* arguments that are not flags (including all after "--");
                                * owned, freed by flags_result_fini */
} flags_result;

/* Parse argv[1..argc-1] into spec's bound structs.
 *
 * @param[in]  spec  the command's tables; their structs must be initialised (flags_values_init)
 * @param[in]  argc, argv  as given to main(); not modified, not retained
 * @param[out] res   help request and positional arguments; release with flags_result_fini,
 *                   also after a failure
 * @param[out] err   on failure: the message, naming the flag (as "--name" or "--name=value")
 *                   and, for arguments read from a flagfile, "FILE:LINE: " first; an unknown
 *                   flag gets "(did you mean --x?)" when a known name is close
 * @return 0, or SB_E_USAGE for every usage error: unknown flag, bad or missing value, a value
 *         given to --noflag, unreadable, cyclic or malformed flagfile. The structs then hold the
 *         values parsed before the error; callers exit 2.
 */
int flags_parse(const flags_spec *spec, int argc, char *const argv[], flags_result *res,
                sb_err *err);

/* Release what flags_parse put in res. Safe on a zeroed struct. */
void flags_result_fini(flags_result *res);

/* ---------------------------------------------------------------------------------------------
 * Output.
 * ------------------------------------------------------------------------------------------- */

/* absl-style help to out: "USAGE: program [flags]", the summary, then per module each flag's
 * help, "(default: '...')" (or "(default: None)") and its type line. FLAGS_HELP_SHORT prints the
 * main module only; FLAGS_HELP_FULL every module, then absl.app and absl.flags. Flags are sorted
 * by name within a module. */
void flags_print_help(FILE *out, const flags_spec *spec, flags_help which);

/* Every flag's current value, grouped by module in table order, one "--name=value" per line;
 * lines of explicitly set flags start with "*". None prints as "--name=<None>". */
void flags_print_config(FILE *out, const flags_spec *spec);

/* A value as text into buf (n bytes): ints in decimal, floats as Python's repr does ("4e-05",
 * "1.0"), bools "true"/"false", strings verbatim; None gives "" and returns false. */
bool flags_format_value(const flags_def *d, const void *values, char *buf, size_t n);

/* Results CSV config columns: one column per row with FLAGS_TRAIT_CSV, named after the flag,
 * in table order. The header and the values always have the same columns; None is "". */
void flags_csv_add_header(const flags_table *table, sb_csv_line *line);
void flags_csv_add_values(const flags_table *table, const void *values, sb_csv_line *line);

/* Index of value among d's enum choices, or -1. */
int flags_enum_index(const flags_def *d, const char *value);

#endif /* SB_FLAGS_H */
