/* core/log.c — one-line log messages on stderr with level, wall time and (under MPI) the rank. */
#include "sb.h"

#include <sys/time.h>
#include <time.h>

static enum sb_log_level g_min_level = SB_LOG_INFO; /* set once by the launcher */
static int g_rank = -1;

void sb_log_config(enum sb_log_level min_level, int rank) {
    g_min_level = min_level;
    g_rank = rank;
}

void sb_log(enum sb_log_level level, const char *fmt, ...) {
    static const char k_letters[] = "DIWE";
    _Static_assert(sizeof k_letters - 1 == SB_LOG_LEVEL_COUNT, "one letter per level");
    if (level < g_min_level) return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    char line[2048];
    int n = snprintf(line, sizeof line, "%c %02d:%02d:%02d.%03d ", k_letters[level], tm.tm_hour,
                     tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
    if (g_rank >= 0 && n >= 0 && (size_t)n < sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, "[rank %d] ", g_rank);
    if (n >= 0 && (size_t)n < sizeof line) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
        va_end(ap);
    }
    fprintf(stderr, "%s\n", line); /* one fprintf: lines from threads do not interleave */
}
