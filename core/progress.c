/* core/progress.c — progress bars for long work (conversion, download, training). Redraws in
 * place on a terminal; writes a plain line every 10 s otherwise so CI logs stay readable. */
#include "sb.h"

#include <string.h>
#include <unistd.h>

void sb_progress_init(sb_progress *p, const char *label, const char *unit, uint64_t total) {
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    p->unit = unit ? unit : "items";
    p->total = total;
    p->out = stderr;
    p->tty = isatty(fileno(stderr));
    p->t_start = p->t_last = sb_now();
}

static void fmt_hms(char *buf, size_t n, double sec) {
    if (sec < 0 || sec > 360000.0) {
        snprintf(buf, n, "--:--");
        return;
    }
    long s = (long)(sec + 0.5);
    if (s >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else snprintf(buf, n, "%02ld:%02ld", s / 60, s % 60);
}

static void draw(sb_progress *p, double now, int final) {
    double el = now - p->t_start;
    double rate = el > 0 ? (double)p->done / el : 0.0;
    char eta[32] = "";
    if (p->total && rate > 0 && !final) {
        char t[24];
        fmt_hms(t, sizeof t, (double)(p->total - SB_MIN(p->done, p->total)) / rate);
        snprintf(eta, sizeof eta, "  ETA %s", t);
    } else if (final) {
        char t[24];
        fmt_hms(t, sizeof t, el);
        snprintf(eta, sizeof eta, "  in %s", t);
    }
    char bar[32] = "";
    if (p->total) {
        int width = 24, fill = (int)((double)width * (double)SB_MIN(p->done, p->total) / (double)p->total);
        bar[0] = '[';
        for (int i = 0; i < width; i++) bar[1 + i] = i < fill ? '#' : '.';
        bar[width + 1] = ']';
        bar[width + 2] = '\0';
    }
    char count[64];
    if (p->total)
        snprintf(count, sizeof count, "%llu/%llu", (unsigned long long)p->done, (unsigned long long)p->total);
    else
        snprintf(count, sizeof count, "%llu", (unsigned long long)p->done);
    fprintf(p->out, "%s%-14s %s %s %s  %.1f %s/s%s%s", p->tty ? "\r" : "", p->label, bar, count,
            p->unit, rate, p->unit, eta, (p->tty && !final) ? "\033[K" : "\n");
    fflush(p->out);
}

void sb_progress_update(sb_progress *p, uint64_t done) {
    p->done = done;
    double now = sb_now();
    double every = p->tty ? 0.1 : 10.0;
    if (now - p->t_last >= every) {
        p->t_last = now;
        draw(p, now, 0);
    }
}

void sb_progress_finish(sb_progress *p) {
    if (p->tty) fputs("\r", p->out);
    draw(p, sb_now(), 1);
}
