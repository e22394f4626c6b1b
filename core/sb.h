/* core/sb.h — the leaf module every part of slimbench may include.
 *
 * It provides: asserts with an installable abort hook, the error convention (status codes in a
 * reserved range, an sb_err that carries a message naming the thing and the cause, and the one
 * code->text table), aligned and checked allocation, atomic file writes, the results-CSV writer,
 * logging, timers, progress bars and the build identity. It includes nothing of ours.
 *
 * Error convention (STYLE.md §3): a function that can fail on bad input or environment returns
 * int — 0 on success, an SB_E_* code (negative, reserved range), an LMDB code (its own negative
 * range) or a positive errno — and fills the caller's sb_err with the full message once. Callers
 * above may prefix context with sb_err_wrap(). Bugs are SB_ASSERT; out-of-memory aborts in
 * sb_xmalloc.
 */
#ifndef SB_H
#define SB_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---------------------------------------------------------------------------------------------
 * Asserts. Always on (release builds included); SB_DASSERT only in debug/asan builds.
 * On failure: print "file:line: SB_ASSERT(cond) failed[: message]" to stderr and call the abort
 * hook (default: abort()). dist/ installs MPI_Abort so one rank's bug ends the whole job.
 * ------------------------------------------------------------------------------------------- */
typedef void (*sb_abort_hook)(void);

/* Install the hook called after an assert message is printed. NULL restores abort(). The hook
 * must not return; if it does, abort() is called. Returns the previous hook. */
sb_abort_hook sb_set_abort_hook(sb_abort_hook hook);

/* Print the failure and call the abort hook. Never returns. */
_Noreturn void sb_assert_fail(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define SB_ASSERT(c) \
    do { if (!(c)) sb_assert_fail(__FILE__, __LINE__, #c, NULL); } while (0)
#define SB_ASSERTF(c, ...) \
    do { if (!(c)) sb_assert_fail(__FILE__, __LINE__, #c, __VA_ARGS__); } while (0)
#ifdef SB_DEBUG
#define SB_DASSERT(c) SB_ASSERT(c)
#else
#define SB_DASSERT(c) ((void)0)
#endif

/* ---------------------------------------------------------------------------------------------
 * Errors. Codes: 0 ok; positive = errno; [SB_E_FIRST, SB_E_LAST] ours; LMDB's own negative range
 * (-30800..-30780) passes through; curl codes are mapped to SB_E_CURL_BASE - CURLcode.
 * ------------------------------------------------------------------------------------------- */
enum sb_status {
    SB_OK = 0,
    SB_E_FIRST = -31900,
    SB_E_USAGE = SB_E_FIRST, /* bad flag, bad argument combination */
    SB_E_FORMAT,             /* a file is not in the expected format */
    SB_E_CORRUPT,            /* a record or file failed a consistency check */
    SB_E_CRC,                /* checksum mismatch */
    SB_E_TRUNCATED,          /* file or record ends early */
    SB_E_RANGE,              /* a value is outside its allowed range */
    SB_E_UNSUPPORTED,        /* valid input that slimbench does not handle (yet) */
    SB_E_NOTFOUND,           /* a named thing (file, variable, class) does not exist */
    SB_E_JPEG,               /* image decode/encode failed (text in the sb_err) */
    SB_E_MPI,                /* MPI call failed (text in the sb_err) */
    SB_E_DIVERGED,           /* training loss became NaN/Inf */
    SB_E_INTERRUPTED,        /* stopped by a signal */
    SB_E_LAST = SB_E_INTERRUPTED,
    SB_E_CURL_BASE = -32000, /* SB_E_CURL_BASE - CURLcode, CURLcode in 1..99 */
};

/* Where a failing function writes its message. msg always holds a NUL-terminated string. */
typedef struct sb_err {
    int code;
    char msg[1024];
} sb_err;

/* Text for any code this project returns (ours, errno, LMDB, curl). Never NULL; the pointer is
 * static or owned by the library that produced it. This is the only code->text table. */
const char *sb_strerror(int code);

/* Set err (if non-NULL) to code and the formatted message; returns code so callers can write
 * `return sb_err_set(err, SB_E_FORMAT, "shard %s: ...", path);`. */
int sb_err_set(sb_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Like sb_err_set, appending ": <sb_strerror(code)>" to the message. */
int sb_err_setc(sb_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prefix the existing message with context ("reading checkpoint X: " + old message). */
int sb_err_wrap(sb_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reset to "no error". */
void sb_err_clear(sb_err *err);

/* ---------------------------------------------------------------------------------------------
 * Memory. sb_xmalloc & co. abort with the size and call site when memory runs out (tier 3).
 * sb_aligned_alloc returns 64-byte aligned, zeroed memory; release with sb_aligned_free.
 * ------------------------------------------------------------------------------------------- */
void *sb_xmalloc_at(size_t n, const char *file, int line);
void *sb_xcalloc_at(size_t count, size_t size, const char *file, int line);
void *sb_xrealloc_at(void *p, size_t n, const char *file, int line);
char *sb_xstrdup_at(const char *s, const char *file, int line);
void *sb_aligned_alloc_at(size_t n, const char *file, int line);
#define sb_xmalloc(n) sb_xmalloc_at((n), __FILE__, __LINE__)
#define sb_xcalloc(c, s) sb_xcalloc_at((c), (s), __FILE__, __LINE__)
#define sb_xrealloc(p, n) sb_xrealloc_at((p), (n), __FILE__, __LINE__)
#define sb_xstrdup(s) sb_xstrdup_at((s), __FILE__, __LINE__)
#define sb_aligned_alloc(n) sb_aligned_alloc_at((n), __FILE__, __LINE__)
void sb_aligned_free(void *p);
#define SB_ALIGN 64

/* Peak resident set size of this process in MiB (from getrusage). */
double sb_peak_rss_mb(void);

/* ---------------------------------------------------------------------------------------------
 * Atomic files (Redis rdbSave): write to "<path>.tmp.<pid>", fsync, rename over path, fsync the
 * directory. A crash at any point leaves either the old file or the new one, never a mix.
 * ------------------------------------------------------------------------------------------- */
typedef struct sb_atomic_file {
    FILE *fp;          /* write through this; owned by the struct */
    char *path;        /* final name */
    char *tmp_path;    /* temporary name */
} sb_atomic_file;

/* Open a temporary file next to path. On failure returns an errno code, err names the path. */
int sb_atomic_open(sb_atomic_file *af, const char *path, sb_err *err);
/* Flush, fsync, close, rename to the final name, fsync the directory. Frees af's strings
 * whatever the outcome; on failure the temporary is removed and the old file is untouched. */
int sb_atomic_commit(sb_atomic_file *af, sb_err *err);
/* Close and remove the temporary; the final name is untouched. Safe on a zeroed struct. */
void sb_atomic_abort(sb_atomic_file *af);
/* Whole buffer in one go: open, write n bytes, commit. */
int sb_atomic_write(const char *path, const void *data, size_t n, sb_err *err);
/* Make a rename durable: fsync the directory holding path. */
int sb_fsync_dir_of(const char *path, sb_err *err);
/* rename(from, to) then fsync the directory of `to`. */
int sb_rename_durable(const char *from, const char *to, sb_err *err);
/* mkdir -p. Existing directories are fine. */
int sb_mkdirs(const char *path, sb_err *err);
/* Read a whole file into a malloc'ed, NUL-terminated buffer (caller frees); *n gets its size. */
int sb_read_file(const char *path, char **data, size_t *n, sb_err *err);

/* ---------------------------------------------------------------------------------------------
 * CSV (STYLE.md §7): each row is appended with one write() on an O_APPEND descriptor and then
 * fsync'ed, so concurrent writers never interleave and a crash never leaves half a row. The
 * header is written (in the same write) when the file is new or empty; if the file exists with
 * a different header, the row is refused with SB_E_FORMAT naming both.
 * ------------------------------------------------------------------------------------------- */
int sb_csv_append(const char *path, const char *header, const char *row, sb_err *err);

/* A growing CSV line: fields are quoted per RFC 4180 when they contain , " or newline. */
typedef struct sb_csv_line {
    char *buf;
    size_t len, cap;
} sb_csv_line;
void sb_csv_line_init(sb_csv_line *l);
void sb_csv_line_fini(sb_csv_line *l);
void sb_csv_add_str(sb_csv_line *l, const char *s);
void sb_csv_add_int(sb_csv_line *l, long long v);
void sb_csv_add_double(sb_csv_line *l, double v, int decimals);
/* The line without trailing newline; valid until the next add or fini. */
const char *sb_csv_line_str(const sb_csv_line *l);

/* ---------------------------------------------------------------------------------------------
 * Logging to stderr: "I 04:29:22.123 message". The rank prefix and the quiet switch are set once
 * by the launcher (process-wide settings, the one exception to "no mutable globals").
 * ------------------------------------------------------------------------------------------- */
enum sb_log_level { SB_LOG_DEBUG, SB_LOG_INFO, SB_LOG_WARN, SB_LOG_ERROR, SB_LOG_LEVEL_COUNT };
void sb_log_config(enum sb_log_level min_level, int rank);
void sb_log(enum sb_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define sb_info(...) sb_log(SB_LOG_INFO, __VA_ARGS__)
#define sb_warn(...) sb_log(SB_LOG_WARN, __VA_ARGS__)
#define sb_error(...) sb_log(SB_LOG_ERROR, __VA_ARGS__)
#define sb_debug(...) sb_log(SB_LOG_DEBUG, __VA_ARGS__)

/* ---------------------------------------------------------------------------------------------
 * Time.
 * ------------------------------------------------------------------------------------------- */
double sb_now(void);          /* monotonic seconds */
uint64_t sb_now_ns(void);     /* monotonic nanoseconds */
/* ISO-8601 UTC time "2026-11-25T04:29:22Z" into buf (at least 21 bytes). */
void sb_utc_timestamp(char *buf, size_t n);

/* ---------------------------------------------------------------------------------------------
 * Progress: "converting  [#####.....]  51200/1281167  4  012 img/s  ETA 04:12". On a terminal
 * the bar redraws in place (at most 10 times a second); otherwise one line every 10 s, so CI
 * logs stay short.
 * ------------------------------------------------------------------------------------------- */
typedef struct sb_progress {
    char label[48];
    const char *unit;
    uint64_t total;     /* 0 = unknown */
    uint64_t done;
    double t_start, t_last;
    int tty;
    FILE *out;
} sb_progress;
void sb_progress_init(sb_progress *p, const char *label, const char *unit, uint64_t total);
/* Set the absolute count done; prints when due. */
void sb_progress_update(sb_progress *p, uint64_t done);
/* Final line with totals and overall rate. */
void sb_progress_finish(sb_progress *p);

/* ---------------------------------------------------------------------------------------------
 * Build identity, compiled in by the Makefile.
 * ------------------------------------------------------------------------------------------- */
const char *sb_build_variant(void);   /* generic | avx2 | avx512 | native | asan */
const char *sb_build_cc(void);        /* compiler and version */
const char *sb_build_cflags(void);
const char *sb_build_git_sha(void);   /* short sha, "+dirty" when built from a modified tree */
const char *sb_build_isa(void);       /* widest SIMD the build targets: avx512 | avx2 | scalar */
/* "slimbench <sha> build=<variant> isa=<isa> cc=<cc> cflags=<flags>" */
void sb_build_describe(FILE *out);
/* CPU model name from /proc/cpuinfo into buf ("unknown" if unreadable). */
void sb_cpu_model(char *buf, size_t n);

#define SB_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SB_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SB_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif /* SB_H */
