/* flags/help.c — what the tables say to people and files: absl-style --help/--helpfull, the
 * resolved configuration a command prints before it runs, and the results CSV's config
 * columns. Values are formatted one way everywhere (flags_format_value). */
#include "flags/flags_impl.h"

#include <stdlib.h>
#include <string.h>

#define HELP_WIDTH 80 /* absl's default help width */

void flags_format_double(double v, char *buf, size_t n) {
    /* Python's repr: the shortest "%.{p}g" that reads back exactly, with ".0" on integers. */
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, n, "%.*g", p, v);
        if (strtod(buf, NULL) == v) break;
    }
    if (!strpbrk(buf, ".eEni") && strlen(buf) + 3 <= n) strcat(buf, ".0");
}

void flags_syntax(const flags_def *d, char *buf, size_t n) {
    char lo[64], hi[64];
    switch (d->type) {
    case FLAGS_TYPE_BOOL: snprintf(buf, n, "a boolean"); return;
    case FLAGS_TYPE_STRING: snprintf(buf, n, "a string"); return;
    case FLAGS_TYPE_ENUM: {
        char c[512];
        flags_choices_text(d, c, sizeof c);
        snprintf(buf, n, "one of %s", c);
        return;
    }
    case FLAGS_TYPE_INT: {
        /* absl's IntegerParser wording; INT_MIN/INT_MAX mean "no bound" */
        bool has_lo = d->int_min != INT_MIN, has_hi = d->int_max != INT_MAX;
        snprintf(lo, sizeof lo, "%lld", d->int_min);
        snprintf(hi, sizeof hi, "%lld", d->int_max);
        if (has_lo && has_hi) snprintf(buf, n, "an integer in the range [%s, %s]", lo, hi);
        else if (has_lo && d->int_min == 1) snprintf(buf, n, "a positive integer");
        else if (has_hi && d->int_max == -1) snprintf(buf, n, "a negative integer");
        else if (has_lo && d->int_min == 0) snprintf(buf, n, "a non-negative integer");
        else if (has_hi && d->int_max == 0) snprintf(buf, n, "a non-positive integer");
        else if (has_hi) snprintf(buf, n, "an integer <= %s", hi);
        else if (has_lo) snprintf(buf, n, "an integer >= %s", lo);
        else snprintf(buf, n, "an integer");
        return;
    }
    case FLAGS_TYPE_FLOAT: {
        bool has_lo = isfinite(d->float_min), has_hi = isfinite(d->float_max);
        flags_format_double(d->float_min, lo, sizeof lo);
        flags_format_double(d->float_max, hi, sizeof hi);
        if (has_lo && has_hi) snprintf(buf, n, "a number in the range [%s, %s]", lo, hi);
        else if (has_lo && d->float_min == 0.0) snprintf(buf, n, "a non-negative number");
        else if (has_hi && d->float_max == 0.0) snprintf(buf, n, "a non-positive number");
        else if (has_hi) snprintf(buf, n, "a number <= %s", hi);
        else if (has_lo) snprintf(buf, n, "a number >= %s", lo);
        else snprintf(buf, n, "a number");
        return;
    }
    case FLAGS_TYPE_COUNT: break;
    }
    SB_ASSERT(0);
}

bool flags_format_value(const flags_def *d, const void *values, char *buf, size_t n) {
    buf[0] = '\0';
    if (!d->has_default && !*FLAGS_SETBIT(d, values) && d->type != FLAGS_TYPE_STRING)
        return false; /* int/float None */
    switch (d->type) {
    case FLAGS_TYPE_BOOL:
        snprintf(buf, n, "%s", *FLAGS_FIELD(d, values, bool) ? "true" : "false");
        break;
    case FLAGS_TYPE_INT: snprintf(buf, n, "%d", *FLAGS_FIELD(d, values, int)); break;
    case FLAGS_TYPE_FLOAT: flags_format_double(*FLAGS_FIELD(d, values, double), buf, n); break;
    case FLAGS_TYPE_STRING:
    case FLAGS_TYPE_ENUM: {
        const char *s = *FLAGS_FIELD(d, values, char *);
        if (!s) return false;
        snprintf(buf, n, "%s", s);
        break;
    }
    case FLAGS_TYPE_COUNT: SB_ASSERT(0);
    }
    return true;
}

/* The default as absl shows it: '0.95', 'false', '' — or None. */
static void default_text(const flags_def *d, char *buf, size_t n) {
    char v[512];
    if (!d->has_default) {
        snprintf(buf, n, "None");
        return;
    }
    switch (d->type) {
    case FLAGS_TYPE_BOOL: snprintf(v, sizeof v, "%s", d->bool_default ? "true" : "false"); break;
    case FLAGS_TYPE_INT: snprintf(v, sizeof v, "%lld", d->int_default); break;
    case FLAGS_TYPE_FLOAT: flags_format_double(d->float_default, v, sizeof v); break;
    default: snprintf(v, sizeof v, "%s", d->str_default); break;
    }
    snprintf(buf, n, "'%s'", v);
}

/* Print first (a prefix such as "  --name:"), then text word-wrapped to HELP_WIDTH columns,
 * continuation lines indented by indent. */
static void wrap(FILE *out, const char *first, const char *text, const char *indent) {
    fputs(first, out);
    size_t col = strlen(first);
    bool line_empty = col == 0 || first[col - 1] == ' ';
    for (const char *p = text; *p;) {
        while (*p == ' ') p++;
        if (!*p) break;
        size_t wl = strcspn(p, " ");
        if (!line_empty && col + 1 + wl > HELP_WIDTH) {
            fprintf(out, "\n%s", indent);
            col = strlen(indent);
            line_empty = true;
        }
        if (!line_empty) {
            fputc(' ', out);
            col++;
        }
        fwrite(p, 1, wl, out);
        col += wl;
        line_empty = false;
        p += wl;
    }
    fputc('\n', out);
}

static int cmp_def_name(const void *a, const void *b) {
    return strcmp((*(const flags_def *const *)a)->name, (*(const flags_def *const *)b)->name);
}

static void print_flag(FILE *out, const flags_def *d) {
    char head[160], buf[700];
    snprintf(head, sizeof head, "  --%s%s:", d->type == FLAGS_TYPE_BOOL ? "[no]" : "", d->name);
    wrap(out, head, d->help, "    ");
    char def[600];
    default_text(d, def, sizeof def);
    snprintf(buf, sizeof buf, "(default: %s)", def);
    wrap(out, "    ", buf, "    ");
    char syn[600];
    flags_syntax(d, syn, sizeof syn);
    snprintf(buf, sizeof buf, "(%s)", syn);
    if (d->bare) {
        size_t l = strlen(buf);
        snprintf(buf + l - 1, sizeof buf - l + 1, "; bare --%s means '%s')", d->name, d->bare);
    }
    wrap(out, "    ", buf, "    ");
}

static void print_module(FILE *out, const flags_table *t) {
    const flags_def **sorted = sb_xmalloc(t->count * sizeof *sorted);
    for (size_t i = 0; i < t->count; i++) sorted[i] = &t->defs[i];
    qsort(sorted, t->count, sizeof *sorted, cmp_def_name);
    fprintf(out, "\n%s:\n", t->module);
    for (size_t i = 0; i < t->count; i++) print_flag(out, sorted[i]);
    free(sorted);
}

/* absl.app's and absl.flags' own flags, described as rows so they print like the others. */
static const flags_def absl_app_defs[] = {
    {.name = "help", .type = FLAGS_TYPE_BOOL, .has_default = true,
     .help = "show this help"},
    {.name = "helpfull", .type = FLAGS_TYPE_BOOL, .has_default = true,
     .help = "show full help"},
    {.name = "helpshort", .type = FLAGS_TYPE_BOOL, .has_default = true,
     .help = "show this help"},
};
static const flags_def absl_flags_defs[] = {
    {.name = "flagfile", .type = FLAGS_TYPE_STRING, .has_default = true, .str_default = "",
     .help = "Insert flag definitions from the given file into the command line. One argument "
             "per line; blank lines and lines starting with # or // are skipped; a nested "
             "--flagfile=FILE is read relative to the including file's directory."},
    {.name = "undefok", .type = FLAGS_TYPE_STRING, .has_default = true, .str_default = "",
     .help = "comma-separated list of flag names that it is okay to specify on the command line "
             "even if the program does not define a flag with that name. IMPORTANT: flags in "
             "this list that have arguments MUST use the --flag=value format."},
};

void flags_print_help(FILE *out, const flags_spec *spec, flags_help which) {
    fprintf(out, "\n       USAGE: %s [flags]\n", spec->program);
    if (spec->summary) wrap(out, "", spec->summary, "");
    fprintf(out, "flags:\n");
    size_t nmods = which == FLAGS_HELP_FULL ? spec->count : SB_MIN(spec->count, 1);
    for (size_t b = 0; b < nmods; b++) print_module(out, spec->bindings[b].table);
    if (which == FLAGS_HELP_FULL) {
        const flags_table app = {"absl.app", absl_app_defs, SB_ARRAY_LEN(absl_app_defs), 0};
        const flags_table fl = {"absl.flags", absl_flags_defs, SB_ARRAY_LEN(absl_flags_defs), 0};
        print_module(out, &app);
        print_module(out, &fl);
    } else {
        fprintf(out, "\nTry --helpfull to get a list of all flags.\n");
    }
}

void flags_print_config(FILE *out, const flags_spec *spec) {
    char v[4096];
    fprintf(out, "%s configuration (* = set on the command line or in a flagfile):\n",
            spec->program);
    for (size_t b = 0; b < spec->count; b++) {
        const flags_table *t = spec->bindings[b].table;
        const void *values = spec->bindings[b].values;
        fprintf(out, "  %s:\n", t->module);
        for (size_t i = 0; i < t->count; i++) {
            const flags_def *d = &t->defs[i];
            bool some = flags_format_value(d, values, v, sizeof v);
            fprintf(out, "  %c --%s=%s\n", *FLAGS_SETBIT(d, values) ? '*' : ' ', d->name,
                    some ? v : "<None>");
        }
    }
}

void flags_csv_add_header(const flags_table *table, sb_csv_line *line) {
    for (size_t i = 0; i < table->count; i++)
        if (table->defs[i].traits & FLAGS_TRAIT_CSV) sb_csv_add_str(line, table->defs[i].name);
}

void flags_csv_add_values(const flags_table *table, const void *values, sb_csv_line *line) {
    char v[4096];
    for (size_t i = 0; i < table->count; i++) {
        const flags_def *d = &table->defs[i];
        if (!(d->traits & FLAGS_TRAIT_CSV)) continue;
        flags_format_value(d, values, v, sizeof v);
        sb_csv_add_str(line, v);
    }
}
