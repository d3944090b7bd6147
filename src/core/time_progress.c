/* time_progress.c — monotonic clock and the progress bar drawn on stderr.
 * The bar redraws at most 10 times a second and only when stderr is a terminal and the command
 * is not --quiet, so logs and CI output stay clean. */
#include "core/core.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

uint64_t cphil_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double cphil_now_sec(void) { return (double)cphil_now_ns() * 1e-9; }

void cphil_progress_begin(cphil_progress *p, const char *label, uint64_t total, bool quiet) {
    memset(p, 0, sizeof *p);
    p->label = label;
    p->total = total;
    p->start = cphil_now_sec();
    p->enabled = !quiet && isatty(STDERR_FILENO);
}

static void draw(cphil_progress *p, bool final) {
    double now = cphil_now_sec();
    double el = now - p->start;
    double frac = p->total ? (double)p->done / (double)p->total : 0.0;
    if (frac > 1) frac = 1;
    int width = 28, fill = (int)(frac * width);
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '-';
    bar[width] = '\0';
    double eta = (frac > 0 && !final) ? el * (1 - frac) / frac : 0;
    if (final)
        fprintf(stderr, "\r%s [%s] %5.1f%% %s  %.1fs\x1b[K", p->label, bar, frac * 100, p->extra, el);
    else
        fprintf(stderr, "\r%s [%s] %5.1f%% %s  %.0fs elapsed, ETA %.0fs\x1b[K", p->label, bar,
                frac * 100, p->extra, el, eta);
    if (final) fputc('\n', stderr);
    fflush(stderr);
    p->last_draw = now;
}

void cphil_progress_update(cphil_progress *p, uint64_t done, const char *extra) {
    p->done = done;
    if (extra) snprintf(p->extra, sizeof p->extra, "%s", extra);
    if (!p->enabled) return;
    if (cphil_now_sec() - p->last_draw < 0.1) return;
    draw(p, false);
}

void cphil_progress_end(cphil_progress *p) {
    if (p->enabled) draw(p, true);
}
