/* datasets/download.c — fetch one URL into a file with libcurl (http, https, ftp, file).
 *
 * Bytes land in "<dest>.part". A transfer that breaks off (connection cut, timeout, 5xx) is
 * retried with a growing delay, resuming from the size of the .part file with a Range request;
 * a server that cannot serve ranges makes us start over. The finished file is checked against
 * its published SHA-256 when one is known, and only then renamed to dest (and the directory
 * fsynced), so dest is either absent or complete. Knows nothing of data sets.
 */
#include "datasets/datasets.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct xfer {
    FILE *fp;
    int write_errno;
    uint64_t offset;        /* bytes already in .part when this attempt started */
    sb_progress *bar;
} xfer;

static size_t on_write(char *p, size_t size, size_t n, void *ctx) {
    xfer *x = ctx;
    size_t w = fwrite(p, size, n, x->fp);
    if (w != n) x->write_errno = errno ? errno : EIO;
    return w * size;
}

static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
    xfer *x = ctx;
    if (dltotal > 0) x->bar->total = (x->offset + (uint64_t)dltotal) >> 10;
    sb_progress_update(x->bar, (x->offset + (uint64_t)dlnow) >> 10);
    return 0;
}

static uint64_t file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Errors that another attempt cannot fix. */
static int permanent(CURLcode c, long http) {
    if (c == CURLE_HTTP_RETURNED_ERROR)
        return http >= 400 && http < 500 && http != 408 && http != 429 && http != 416;
    return c == CURLE_UNSUPPORTED_PROTOCOL || c == CURLE_URL_MALFORMAT ||
           c == CURLE_FILE_COULDNT_READ_FILE || c == CURLE_REMOTE_FILE_NOT_FOUND ||
           c == CURLE_WRITE_ERROR || c == CURLE_LOGIN_DENIED || c == CURLE_REMOTE_ACCESS_DENIED;
}

static int verify(const char *path, const char *url, const char *want, sb_err *err) {
    char got[65];
    int rc = dl_sha256_file(path, got, err);
    if (rc) return rc;
    if (strcasecmp(got, want) != 0)
        return sb_err_set(err, SB_E_CRC, "download %s: SHA-256 of %s is %s, expected %s", url,
                          path, got, want);
    return 0;
}

int dl_fetch(const char *url, const char *dest, const char *sha256_hex, const dl_opts *opts,
             sb_err *err) {
    dl_opts o = opts ? *opts : (dl_opts){0};
    if (!opts) {
        o.retries = 5;
        o.retry_delay_ms = 1000;
    }
    if (o.low_speed_secs <= 0) o.low_speed_secs = 60;
    if (exists(dest)) {
        if (!sha256_hex) return 0;
        sb_err e;
        if (verify(dest, url, sha256_hex, &e) == 0) return 0;
        sb_warn("%s: %s; downloading again", dest, e.msg);
    }
    size_t plen = strlen(dest) + 6;
    char *part = sb_xmalloc(plen);
    snprintf(part, plen, "%s.part", dest);
    const char *base = strrchr(dest, '/');
    base = base ? base + 1 : dest;

    CURL *curl = curl_easy_init();
    if (!curl) {
        free(part);
        return sb_err_set(err, SB_E_CURL_BASE - CURLE_FAILED_INIT, "download %s: curl_easy_init",
                          url);
    }
    char errbuf[CURL_ERROR_SIZE];
    sb_progress bar;
    sb_progress_init(&bar, base, "KiB", 0);
    xfer x = {.bar = &bar};
    int rc = 0;
    for (int attempt = 0;; attempt++) {
        x.offset = file_size(part);
        x.write_errno = 0;
        x.fp = fopen(part, "ab");
        if (!x.fp) {
            rc = sb_err_setc(err, errno, "download %s: opening %s", url, part);
            break;
        }
        errbuf[0] = '\0';
        curl_easy_reset(curl);
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &x);
        curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
        curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, o.low_speed_secs);
        curl_easy_setopt(curl, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)x.offset);
        curl_easy_setopt(curl, CURLOPT_NOPROGRESS, o.progress ? 0L : 1L);
        curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &x);
        CURLcode c = curl_easy_perform(curl);
        long http = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http);
        int close_failed = fclose(x.fp) != 0;
        if (c == CURLE_OK && !close_failed && !x.write_errno) break;
        if (x.write_errno || close_failed) {
            rc = sb_err_setc(err, x.write_errno ? x.write_errno : EIO, "download %s: writing %s",
                             url, part);
            break;
        }
        /* A server that ignores ranges (or finds the .part already complete, 416) gets a fresh
         * start; keeping a .part we cannot extend would loop forever. */
        if (c == CURLE_RANGE_ERROR || (c == CURLE_HTTP_RETURNED_ERROR && http == 416)) unlink(part);
        rc = sb_err_set(err, SB_E_CURL_BASE - (int)c, "download %s: %s%s%s (attempt %d of %d)", url,
                        errbuf[0] ? errbuf : curl_easy_strerror(c),
                        c == CURLE_HTTP_RETURNED_ERROR ? "" : "; ",
                        c == CURLE_HTTP_RETURNED_ERROR ? "" : curl_easy_strerror(c), attempt + 1,
                        o.retries + 1);
        if (permanent(c, http) || attempt >= o.retries) break;
        sb_warn("%s; retrying from byte %llu", err->msg, (unsigned long long)file_size(part));
        usleep((useconds_t)(attempt + 1) * (useconds_t)o.retry_delay_ms * 1000u);
        rc = 0;
    }
    curl_easy_cleanup(curl);
    if (o.progress && !rc) {
        bar.done = file_size(part) >> 10;
        sb_progress_finish(&bar);
    }
    if (!rc && sha256_hex && (rc = verify(part, url, sha256_hex, err))) unlink(part);
    if (!rc) rc = sb_rename_durable(part, dest, err);
    if (rc && exists(part) && file_size(part) == 0) unlink(part); /* nothing worth resuming */
    free(part);
    return rc;
}
