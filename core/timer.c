/* core/timer.c — monotonic clocks for step timing and wall-clock stamps for results rows. */
#include "sb.h"

#include <time.h>

uint64_t sb_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double sb_now(void) { return (double)sb_now_ns() * 1e-9; }

void sb_utc_timestamp(char *buf, size_t n) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
