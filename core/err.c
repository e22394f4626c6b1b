/* core/err.c — asserts, the abort hook, and the one table that turns any status code this project
 * returns into text (ours, errno, LMDB's, curl's). Wrapping the libraries' own strerror functions
 * here keeps every other file free of "which range is this code in" logic. */
#include "sb.h"

#include <curl/curl.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>

static sb_abort_hook g_abort_hook; /* process-wide: set once by launcher/ or dist/ */

sb_abort_hook sb_set_abort_hook(sb_abort_hook hook) {
    sb_abort_hook old = g_abort_hook;
    g_abort_hook = hook;
    return old;
}

void sb_assert_fail(const char *file, int line, const char *cond, const char *fmt, ...) {
    fprintf(stderr, "%s:%d: SB_ASSERT(%s) failed", file, line, cond);
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        fputs(": ", stderr);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
    fflush(stderr);
    if (g_abort_hook) g_abort_hook();
    abort();
}

static const char *const k_sb_texts[] = {
    [SB_E_USAGE - SB_E_FIRST] = "invalid usage",
    [SB_E_FORMAT - SB_E_FIRST] = "unexpected file format",
    [SB_E_CORRUPT - SB_E_FIRST] = "corrupt data",
    [SB_E_CRC - SB_E_FIRST] = "checksum mismatch",
    [SB_E_TRUNCATED - SB_E_FIRST] = "truncated",
    [SB_E_RANGE - SB_E_FIRST] = "value out of range",
    [SB_E_UNSUPPORTED - SB_E_FIRST] = "not supported",
    [SB_E_NOTFOUND - SB_E_FIRST] = "not found",
    [SB_E_JPEG - SB_E_FIRST] = "image codec error",
    [SB_E_MPI - SB_E_FIRST] = "MPI error",
    [SB_E_DIVERGED - SB_E_FIRST] = "loss diverged (NaN or Inf)",
    [SB_E_INTERRUPTED - SB_E_FIRST] = "interrupted",
};
_Static_assert(SB_ARRAY_LEN(k_sb_texts) == SB_E_LAST - SB_E_FIRST + 1, "one text per SB_E_ code");

const char *sb_strerror(int code) {
    if (code == 0) return "success";
    if (code > 0) return strerror(code);
    if (code >= SB_E_FIRST && code <= SB_E_LAST) return k_sb_texts[code - SB_E_FIRST];
    if (code >= MDB_KEYEXIST && code <= MDB_LAST_ERRCODE) return mdb_strerror(code);
    if (code < SB_E_CURL_BASE && code > SB_E_CURL_BASE - CURL_LAST)
        return curl_easy_strerror((CURLcode)(SB_E_CURL_BASE - code));
    return "unknown error";
}

int sb_err_set(sb_err *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

int sb_err_setc(sb_err *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < sizeof err->msg)
            snprintf(err->msg + n, sizeof err->msg - (size_t)n, ": %s", sb_strerror(code));
        err->code = code;
    }
    return code;
}

int sb_err_wrap(sb_err *err, const char *fmt, ...) {
    if (!err) return 0;
    char old[sizeof err->msg];
    memcpy(old, err->msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    /* append ": <old message>" by hand: the result is cut at sizeof msg, never overflowed */
    size_t at = n < 0 ? 0 : SB_MIN((size_t)n, sizeof err->msg - 1);
    const char *parts[2] = {": ", old};
    for (int k = 0; k < 2; k++)
        for (const char *c = parts[k]; *c && at + 1 < sizeof err->msg; c++) err->msg[at++] = *c;
    err->msg[at] = '\0';
    return err->code;
}

void sb_err_clear(sb_err *err) {
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}
