/* flags/flags.c — the absl-compatible parser, generic over flags_table rows.
 *
 * Two passes, as absl does: first --flagfile directives are expanded into one argument list
 * (each argument remembers the file and line it came from, for messages), then the list is
 * parsed left to right. Unknown names are collected and reported after the whole list, so a
 * later --undefok still covers them. The parser only fills structs and an sb_err; it never
 * prints and never exits (the launcher decides). It knows nothing about what the flags mean.
 */
#include "flags/flags_impl.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* ---------------------------------------------------------------------------------------------
 * Struct initialisation.
 * ------------------------------------------------------------------------------------------- */
void flags_values_init(const flags_table *table, void *values) {
    memset(values, 0, table->struct_size);
    for (size_t i = 0; i < table->count; i++) {
        const flags_def *d = &table->defs[i];
        switch (d->type) {
        case FLAGS_TYPE_BOOL: *FLAGS_FIELD(d, values, bool) = d->bool_default; break;
        case FLAGS_TYPE_INT: *FLAGS_FIELD(d, values, int) = (int)d->int_default; break;
        case FLAGS_TYPE_FLOAT: *FLAGS_FIELD(d, values, double) = d->float_default; break;
        case FLAGS_TYPE_STRING:
        case FLAGS_TYPE_ENUM:
            *FLAGS_FIELD(d, values, char *) = d->str_default ? sb_xstrdup(d->str_default) : NULL;
            break;
        case FLAGS_TYPE_COUNT: SB_ASSERT(0);
        }
    }
}

void flags_values_fini(const flags_table *table, void *values) {
    for (size_t i = 0; i < table->count; i++) {
        const flags_def *d = &table->defs[i];
        if (d->type == FLAGS_TYPE_STRING || d->type == FLAGS_TYPE_ENUM) {
            char **p = FLAGS_FIELD(d, values, char *);
            free(*p);
            *p = NULL;
        }
    }
}

void flags_result_fini(flags_result *res) {
    for (int i = 0; i < res->npositional; i++) free(res->positional[i]);
    free(res->positional);
    res->positional = NULL;
    res->npositional = 0;
    res->help = FLAGS_HELP_NONE;
}

/* ---------------------------------------------------------------------------------------------
 * Values.
 * ------------------------------------------------------------------------------------------- */
int flags_enum_index(const flags_def *d, const char *value) {
    size_t vl = strlen(value);
    int idx = 0;
    for (const char *p = d->choices;; idx++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == vl && strncmp(p, value, len) == 0) return idx;
        if (!bar) return -1;
        p = bar + 1;
    }
}

void flags_choices_text(const flags_def *d, char *buf, size_t n) {
    snprintf(buf, n, "<%s%s>", d->choices[0] == '|' ? "''" : "", d->choices);
}

/* Returns 0, 1 for "not an integer", 2 for out of the range of long long. absl (Python int with
 * base detection) accepts an optional sign, decimal digits, 0x hex and 0o octal. */
static int parse_ll(const char *s, long long *out) {
    const char *p = s;
    bool neg = false;
    if (*p == '+' || *p == '-') neg = *p++ == '-';
    int base = 10;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) base = 16, p += 2;
    else if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O')) base = 8, p += 2;
    bool digit_ok = base == 16 ? isxdigit((unsigned char)*p) : (*p >= '0' && *p < '0' + base);
    if (!digit_ok) return 1;
    errno = 0;
    char *end;
    unsigned long long mag = strtoull(p, &end, base);
    if (*end != '\0') return 1;
    if (errno == ERANGE) return 2;
    if (neg) {
        if (mag > (unsigned long long)LLONG_MAX + 1ULL) return 2;
        *out = mag == (unsigned long long)LLONG_MAX + 1ULL ? LLONG_MIN : -(long long)mag;
    } else {
        if (mag > (unsigned long long)LLONG_MAX) return 2;
        *out = (long long)mag;
    }
    return 0;
}

static int parse_bool(const char *s, bool *out) {
    static const char *const yes[] = {"true", "t", "1"}, *const no[] = {"false", "f", "0"};
    for (size_t i = 0; i < SB_ARRAY_LEN(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) return *out = true, 0;
        if (strcasecmp(s, no[i]) == 0) return *out = false, 0;
    }
    return 1;
}

/* Set d's field from text v. loc is "FILE:LINE: " or "". */
static int set_value(const flags_def *d, void *values, const char *v, const char *loc,
                     sb_err *err) {
    char syn[1024];
    switch (d->type) {
    case FLAGS_TYPE_BOOL: {
        bool b;
        if (parse_bool(v, &b) != 0)
            return sb_err_set(err, SB_E_USAGE,
                              "%sflag --%s=%s: not a boolean; use --%s, --no%s or --%s=true|false "
                              "(also t/f, 1/0)",
                              loc, d->name, v, d->name, d->name, d->name);
        *FLAGS_FIELD(d, values, bool) = b;
        break;
    }
    case FLAGS_TYPE_INT: {
        long long x;
        int rc = parse_ll(v, &x);
        flags_syntax(d, syn, sizeof syn);
        if (rc == 1)
            return sb_err_set(err, SB_E_USAGE, "%sflag --%s=%s: not an integer (expected %s)", loc,
                              d->name, v, syn);
        if (rc == 2 || x < d->int_min || x > d->int_max)
            return sb_err_set(err, SB_E_USAGE, "%sflag --%s=%s: out of range (expected %s)", loc,
                              d->name, v, syn);
        *FLAGS_FIELD(d, values, int) = (int)x;
        break;
    }
    case FLAGS_TYPE_FLOAT: {
        flags_syntax(d, syn, sizeof syn);
        errno = 0;
        char *end;
        double x = strtod(v, &end);
        if (end == v || *end != '\0' || isspace((unsigned char)*v) || x != x)
            return sb_err_set(err, SB_E_USAGE, "%sflag --%s=%s: not a number (expected %s)", loc,
                              d->name, v, syn);
        if ((errno == ERANGE && x != 0.0) || x < d->float_min || x > d->float_max)
            return sb_err_set(err, SB_E_USAGE, "%sflag --%s=%s: out of range (expected %s)", loc,
                              d->name, v, syn);
        *FLAGS_FIELD(d, values, double) = x;
        break;
    }
    case FLAGS_TYPE_ENUM:
        if (flags_enum_index(d, v) < 0) {
            flags_choices_text(d, syn, sizeof syn);
            return sb_err_set(err, SB_E_USAGE, "%sflag --%s=%s: value should be one of %s", loc,
                              d->name, v, syn);
        }
        /* fall through */
    case FLAGS_TYPE_STRING: {
        char **p = FLAGS_FIELD(d, values, char *);
        free(*p);
        *p = sb_xstrdup(v);
        break;
    }
    case FLAGS_TYPE_COUNT: SB_ASSERT(0);
    }
    *FLAGS_SETBIT(d, values) = true;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Pass 1: the argument list with --flagfile expanded.
 * ------------------------------------------------------------------------------------------- */
typedef struct arg_item {
    char *text;
    const char *file; /* NULL: from argv */
    int line;         /* file line, or argv index */
} arg_item;

typedef struct open_file {
    char *real;    /* realpath, for cycle detection */
    char *display; /* path as resolved from the includer */
} open_file;

typedef struct parse_ctx {
    arg_item *args;
    size_t nargs, cap;
    char **files; /* display paths the arg_items point at */
    size_t nfiles;
    open_file stack[64];
    size_t depth;
} parse_ctx;

static void push_arg(parse_ctx *c, const char *text, size_t len, const char *file, int line) {
    if (c->nargs == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 32;
        c->args = sb_xrealloc(c->args, c->cap * sizeof *c->args);
    }
    char *t = sb_xmalloc(len + 1);
    memcpy(t, text, len);
    t[len] = '\0';
    c->args[c->nargs++] = (arg_item){t, file, line};
}

static void ctx_fini(parse_ctx *c) {
    for (size_t i = 0; i < c->nargs; i++) free(c->args[i].text);
    free(c->args);
    for (size_t i = 0; i < c->nfiles; i++) free(c->files[i]);
    free(c->files);
    for (size_t i = 0; i < c->depth; i++) {
        free(c->stack[i].real);
        free(c->stack[i].display);
    }
}

/* "FILE:LINE: " for arguments read from a flagfile, "" for argv. */
static void loc_of(const char *file, int line, char *buf, size_t n) {
    if (file) snprintf(buf, n, "%s:%d: ", file, line);
    else buf[0] = '\0';
}

/* path resolved against the directory of `from` (absl expands "~/" first). Malloc'ed. */
static char *resolve_path(const char *path, const char *from) {
    const char *home = getenv("HOME");
    if (path[0] == '~' && path[1] == '/' && home && *home) {
        char *r = sb_xmalloc(strlen(home) + strlen(path) + 1);
        sprintf(r, "%s%s", home, path + 1);
        return r;
    }
    const char *slash = from ? strrchr(from, '/') : NULL;
    if (path[0] == '/' || !slash) return sb_xstrdup(path);
    size_t dl = (size_t)(slash - from) + 1;
    char *r = sb_xmalloc(dl + strlen(path) + 1);
    memcpy(r, from, dl);
    strcpy(r + dl, path);
    return r;
}

static bool is_flagfile_directive(const char *a, const char **value) {
    const char *p = a[0] == '-' && a[1] == '-' ? a + 2 : a[0] == '-' ? a + 1 : NULL;
    if (!p || strncmp(p, "flagfile", 8) != 0) return false;
    if (p[8] == '=') *value = p + 9;
    else if (p[8] == '\0') *value = NULL;
    else return false;
    return true;
}

static int expand_file(parse_ctx *c, const char *path, const char *from_file, int from_line,
                       sb_err *err) {
    char loc[1200];
    loc_of(from_file, from_line, loc, sizeof loc);
    if (path[0] == '\0') return 0; /* absl ignores an empty --flagfile= */
    char *display = resolve_path(path, from_file);
    char *real = realpath(display, NULL);
    int rc = 0;
    if (!real) {
        rc = sb_err_set(err, SB_E_USAGE, "%sflagfile %s: %s", loc, display, strerror(errno));
        free(display);
        return rc;
    }
    for (size_t i = 0; i < c->depth; i++) {
        if (strcmp(c->stack[i].real, real) != 0) continue;
        char chain[2048];
        size_t o = 0;
        for (size_t j = i; j < c->depth && o < sizeof chain; j++)
            o += (size_t)snprintf(chain + o, sizeof chain - o, "%s -> ", c->stack[j].display);
        if (o < sizeof chain) snprintf(chain + o, sizeof chain - o, "%s", display);
        rc = sb_err_set(err, SB_E_USAGE, "%scyclic flagfile: %s is already being read (%s)", loc,
                        display, chain);
        free(real);
        free(display);
        return rc;
    }
    if (c->depth == SB_ARRAY_LEN(c->stack)) {
        rc = sb_err_set(err, SB_E_USAGE, "%sflagfile %s: nested more than %zu deep", loc, display,
                        SB_ARRAY_LEN(c->stack));
        free(real);
        free(display);
        return rc;
    }
    char *data;
    size_t size;
    sb_err rerr;
    struct stat st;
    if (stat(real, &st) == 0 && S_ISDIR(st.st_mode)) {
        rc = sb_err_set(err, SB_E_USAGE, "%sflagfile %s: %s", loc, display, strerror(EISDIR));
        free(real);
        free(display);
        return rc;
    }
    if (sb_read_file(display, &data, &size, &rerr) != 0) {
        rc = sb_err_set(err, SB_E_USAGE, "%sflagfile %s: %s", loc, display, strerror(rerr.code));
        free(real);
        free(display);
        return rc;
    }
    c->stack[c->depth++] = (open_file){real, display};
    c->files = sb_xrealloc(c->files, (c->nfiles + 1) * sizeof *c->files);
    char *file = c->files[c->nfiles++] = sb_xstrdup(display);

    int lineno = 0;
    for (char *line = data; line && rc == 0;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        lineno++;
        char *s = line, *e = line + strlen(line);
        while (*s && isspace((unsigned char)*s)) s++;
        while (e > s && isspace((unsigned char)e[-1])) e--;
        *e = '\0';
        const char *sub;
        if (*s == '\0' || *s == '#' || (s[0] == '/' && s[1] == '/')) {
            /* blank or comment */
        } else if (is_flagfile_directive(s, &sub)) {
            if (!sub)
                rc = sb_err_set(err, SB_E_USAGE,
                                "%s:%d: --flagfile in a flagfile needs its file on the same line "
                                "(--flagfile=FILE)",
                                file, lineno);
            else
                rc = expand_file(c, sub, file, lineno, err);
        } else {
            push_arg(c, s, (size_t)(e - s), file, lineno);
        }
        line = nl ? nl + 1 : NULL;
    }
    free(data);
    c->depth--;
    free(c->stack[c->depth].real);
    free(c->stack[c->depth].display);
    return rc;
}

static int expand_argv(parse_ctx *c, int argc, char *const argv[], sb_err *err) {
    bool after_dashdash = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *file;
        if (!after_dashdash && is_flagfile_directive(a, &file)) {
            if (!file) {
                if (i + 1 >= argc)
                    return sb_err_set(err, SB_E_USAGE, "flag --flagfile: missing value");
                file = argv[++i];
            }
            int rc = expand_file(c, file, NULL, i, err);
            if (rc) return rc;
            continue;
        }
        if (strcmp(a, "--") == 0) after_dashdash = true;
        push_arg(c, a, strlen(a), NULL, i);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Did-you-mean: absl's rule. Compare the attempt with each name's prefix of the same length by
 * Damerau-Levenshtein distance (optimal string alignment); suggest the closest names when the
 * distance is below half the attempt's length; nothing for attempts of 2 characters or fewer.
 * ------------------------------------------------------------------------------------------- */
static size_t osa_distance(const char *a, size_t la, const char *b, size_t lb) {
    size_t d[65][65];
    for (size_t i = 0; i <= la; i++) d[i][0] = i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t v = SB_MIN(d[i - 1][j] + 1, d[i][j - 1] + 1);
            v = SB_MIN(v, d[i - 1][j - 1] + cost);
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                v = SB_MIN(v, d[i - 2][j - 2] + 1);
            d[i][j] = v;
        }
    return d[la][lb];
}

static const char *const special_flags[] = {"flagfile", "undefok", "help", "helpshort",
                                            "helpfull"};

/* absl's distance (attempt vs the name's prefix), then the full distance to break ties, so
 * "learnig_rate" suggests learning_rate alone, not every learning_rate_* flag. */
static size_t suggest_key(const char *attempt, size_t la, const char *name) {
    size_t ln = strlen(name);
    if (ln > 64) return SIZE_MAX;
    size_t prefix = osa_distance(attempt, la, name, SB_MIN(la, ln));
    return prefix * 1000 + osa_distance(attempt, la, name, ln);
}

static void suggest(const flags_spec *spec, const char *attempt, char *buf, size_t n) {
    buf[0] = '\0';
    size_t la = strlen(attempt);
    if (la <= 2 || la > 64) return;
    size_t best = SIZE_MAX;
    const char *names[256];
    size_t nn = 0;
    for (size_t pass = 0; pass < 2; pass++) {
        for (size_t b = 0; b <= spec->count; b++) {
            bool specials = b == spec->count;
            size_t cnt = specials ? SB_ARRAY_LEN(special_flags) : spec->bindings[b].table->count;
            for (size_t i = 0; i < cnt; i++) {
                const char *name =
                    specials ? special_flags[i] : spec->bindings[b].table->defs[i].name;
                size_t key = suggest_key(attempt, la, name);
                if (pass == 0) best = SB_MIN(best, key);
                else if (key == best && nn < SB_ARRAY_LEN(names)) names[nn++] = name;
            }
        }
        if (pass == 0 && 2 * (best / 1000) >= la) return; /* absl: too many errors */
    }
    /* sorted by name, as absl's stable output does */
    for (size_t i = 1; i < nn; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            const char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    size_t o = (size_t)snprintf(buf, n, " (did you mean ");
    size_t shown = SB_MIN(nn, 3);
    for (size_t i = 0; i < shown && o < n; i++) {
        const char *sep = i == 0 ? "" : i + 1 == shown ? " or " : ", ";
        o += (size_t)snprintf(buf + o, n - o, "%s--%s", sep, names[i]);
    }
    if (o < n) snprintf(buf + o, n - o, "?)");
}

/* ---------------------------------------------------------------------------------------------
 * Pass 2: parse.
 * ------------------------------------------------------------------------------------------- */
static const flags_def *lookup(const flags_spec *spec, const char *name, void **values) {
    for (size_t b = 0; b < spec->count; b++) {
        const flags_def *d = flags_table_find(spec->bindings[b].table, name);
        if (d) {
            *values = spec->bindings[b].values;
            return d;
        }
    }
    return NULL;
}

static void check_spec(const flags_spec *spec) {
    for (size_t b = 0; b < spec->count; b++) {
        const flags_table *t = spec->bindings[b].table;
        SB_ASSERT(spec->bindings[b].values != NULL);
        for (size_t i = 0; i < t->count; i++) {
            void *v;
            SB_ASSERTF(lookup(spec, t->defs[i].name, &v) == &t->defs[i],
                       "flag --%s is defined twice", t->defs[i].name);
            for (size_t s = 0; s < SB_ARRAY_LEN(special_flags); s++)
                SB_ASSERTF(strcmp(t->defs[i].name, special_flags[s]) != 0,
                           "flag --%s is reserved", t->defs[i].name);
        }
    }
}

static void add_positional(flags_result *res, const char *a) {
    res->positional = sb_xrealloc(res->positional, (size_t)(res->npositional + 1) * sizeof(char *));
    res->positional[res->npositional++] = sb_xstrdup(a);
}

typedef struct name_list {
    char **v;
    size_t *at; /* index into the argument list where the name was seen */
    size_t n;
} name_list;

static void name_list_add(name_list *l, const char *s, size_t len, size_t at) {
    l->v = sb_xrealloc(l->v, (l->n + 1) * sizeof *l->v);
    l->at = sb_xrealloc(l->at, (l->n + 1) * sizeof *l->at);
    l->at[l->n] = at;
    char *t = sb_xmalloc(len + 1);
    memcpy(t, s, len);
    t[len] = '\0';
    l->v[l->n++] = t;
}

static bool name_list_has(const name_list *l, const char *s) {
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0) return true;
    return false;
}

static void name_list_free(name_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    free(l->at);
}

static bool undefok_covers(const name_list *undefok, const char *name) {
    return name_list_has(undefok, name) ||
           (strncmp(name, "no", 2) == 0 && name_list_has(undefok, name + 2));
}

/* The parse loop over the expanded list. unknown collects (index of) unknown flag arguments. */
static int parse_list(const flags_spec *spec, parse_ctx *c, flags_result *res, name_list *undefok,
                      name_list *unknown, sb_err *err) {
    char loc[1200];
    for (size_t i = 0; i < c->nargs; i++) {
        const arg_item *it = &c->args[i];
        const char *a = it->text;
        loc_of(it->file, it->line, loc, sizeof loc);
        if (a[0] != '-' || a[1] == '\0') { /* not a flag; absl's GNU mode keeps going */
            add_positional(res, a);
            continue;
        }
        if (strcmp(a, "--") == 0) {
            for (i++; i < c->nargs; i++) add_positional(res, c->args[i].text);
            break;
        }
        const char *body = a[1] == '-' ? a + 2 : a + 1;
        const char *eq = strchr(body, '=');
        size_t nlen = eq ? (size_t)(eq - body) : strlen(body);
        char name[256];
        if (nlen == 0 || nlen >= sizeof name)
            return sb_err_set(err, SB_E_USAGE, "%smalformed flag '%s'", loc, a);
        memcpy(name, body, nlen);
        name[nlen] = '\0';
        const char *value = eq ? eq + 1 : NULL;

        /* value of a non-boolean flag: after '=' or the next argument */
#define NEXT_VALUE()                                                                          \
    do {                                                                                      \
        if (!value) {                                                                         \
            if (i + 1 >= c->nargs)                                                            \
                return sb_err_set(err, SB_E_USAGE, "%sflag --%s: missing value", loc, name); \
            value = c->args[++i].text;                                                        \
        }                                                                                     \
    } while (0)

        if (strcmp(name, "undefok") == 0) {
            NEXT_VALUE();
            for (const char *p = value; *p;) {
                const char *comma = strchr(p, ',');
                const char *e = comma ? comma : p + strlen(p);
                const char *s = p;
                while (s < e && isspace((unsigned char)*s)) s++;
                const char *t = e;
                while (t > s && isspace((unsigned char)t[-1])) t--;
                if (t > s) name_list_add(undefok, s, (size_t)(t - s), i);
                p = comma ? comma + 1 : e;
            }
            continue;
        }
        /* the help flags are booleans that act as soon as they are parsed (absl.app) */
        static const char *const helps[] = {"help", "helpshort", "helpfull"};
        for (size_t h = 0; h < SB_ARRAY_LEN(helps); h++) {
            bool is_no = strncmp(name, "no", 2) == 0 && strcmp(name + 2, helps[h]) == 0;
            if (strcmp(name, helps[h]) != 0 && !is_no) continue;
            bool on = !is_no;
            if (value && (is_no || parse_bool(value, &on) != 0))
                return sb_err_set(err, SB_E_USAGE, "%sflag --%s=%s: not a boolean", loc, name,
                                  value);
            if (on) {
                res->help = h == 2 ? FLAGS_HELP_FULL : FLAGS_HELP_SHORT;
                return 0;
            }
            goto next_arg;
        }

        void *values;
        const flags_def *d = lookup(spec, name, &values);
        if (d) {
            if (!value && d->type == FLAGS_TYPE_BOOL) value = "true";
            else if (!value && d->bare) value = d->bare;
            else NEXT_VALUE();
        } else if (nlen > 2 && strncmp(name, "no", 2) == 0 &&
                   (d = lookup(spec, name + 2, &values)) != NULL && d->type == FLAGS_TYPE_BOOL) {
            if (value)
                return sb_err_set(err, SB_E_USAGE,
                                  "%sflag --%s=%s: --%s does not take an argument (use --%s=false)",
                                  loc, name, value, name, d->name);
            value = "false";
        } else {
            d = NULL;
        }
#undef NEXT_VALUE
        if (d) {
            int rc = set_value(d, values, value, loc, err);
            if (rc) return rc;
        } else {
            /* An unknown flag without "=value" does not consume the next argument: absl cannot
             * know whether it takes one. */
            name_list_add(unknown, name, nlen, i);
        }
    next_arg:;
    }
    return 0;
}

int flags_parse(const flags_spec *spec, int argc, char *const argv[], flags_result *res,
                sb_err *err) {
    memset(res, 0, sizeof *res);
    check_spec(spec);
    parse_ctx c;
    memset(&c, 0, sizeof c);
    name_list undefok = {0}, unknown = {0};
    int rc = expand_argv(&c, argc, argv, err);
    if (rc == 0) rc = parse_list(spec, &c, res, &undefok, &unknown, err);
    if (rc == 0 && res->help == FLAGS_HELP_NONE) {
        /* Name the first unknown flag not covered by --undefok, with its location. */
        size_t first = unknown.n, more = 0;
        for (size_t u = 0; u < unknown.n; u++) {
            if (undefok_covers(&undefok, unknown.v[u])) continue;
            if (first == unknown.n) first = u;
            else more++;
        }
        if (first < unknown.n) {
            const arg_item *it = &c.args[unknown.at[first]];
            char loc[1200], hint[400], tail[64] = "";
            loc_of(it->file, it->line, loc, sizeof loc);
            suggest(spec, unknown.v[first], hint, sizeof hint);
            if (more)
                snprintf(tail, sizeof tail, "; and %zu more unknown flag%s", more,
                         more > 1 ? "s" : "");
            rc = sb_err_set(err, SB_E_USAGE, "%sunknown command line flag --%s%s%s", loc,
                            unknown.v[first], hint, tail);
        }
    }
    name_list_free(&undefok);
    name_list_free(&unknown);
    ctx_fini(&c);
    return rc;
}
