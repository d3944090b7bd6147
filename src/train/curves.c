/* curves.c — CSV and SVG training curves (see curves.h). Both files are built in memory and
 * written atomically. Non-finite values are written as empty CSV cells and skipped in plots. */
#include "train/curves.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* A growable text buffer over cphil_alloc. */
typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) CPHIL_PRINTF(2, 3);
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->n;
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && (size_t)k < room) {
            b->n += (size_t)k;
            return;
        }
        size_t nc = (b->cap ? b->cap * 2 : 4096) + (size_t)k + 1;
        char *np = cphil_realloc(b->p, b->cap, nc);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
}

static cphil_status sb_commit(sbuf *b, const char *path) {
    cphil_status s = b->oom ? cphil_err(CPHIL_E_NOMEM, "%s: out of memory", path)
                            : cphil_file_write_atomic(path, b->p, b->n);
    cphil_free(b->p);
    return s;
}

static void sb_num(sbuf *b, double v) {
    if (isfinite(v)) sb_printf(b, "%.6g", v);
}

cphil_status cphil_curves_write_csv(const char *path, const cphil_curve_row *rows, int n) {
    sbuf b = {0};
    sb_printf(&b, "epoch,step,train_loss,val_loss");
    for (int h = 0; h < CPHIL_TR_N_HEADS; h++) sb_printf(&b, ",acc_%s", cphil_head_names[h]);
    sb_printf(&b, ",seconds,best\n");
    for (int i = 0; i < n; i++) {
        const cphil_curve_row *r = &rows[i];
        sb_printf(&b, "%d,%llu,", r->epoch, (unsigned long long)r->step);
        sb_num(&b, r->train_loss);
        sb_printf(&b, ",");
        sb_num(&b, r->val_loss);
        for (int h = 0; h < CPHIL_TR_N_HEADS; h++) {
            sb_printf(&b, ",");
            sb_num(&b, r->acc[h]);
        }
        sb_printf(&b, ",%.3f,%d\n", r->seconds, r->best);
    }
    return sb_commit(&b, path);
}

static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"};

typedef struct panel {
    double x0, y0, w, h; /* pixel box */
    double xmin, xmax, ymin, ymax;
} panel;

static double px(const panel *p, double x) { return p->x0 + (x - p->xmin) / (p->xmax - p->xmin) * p->w; }
static double py(const panel *p, double y) { return p->y0 + p->h - (y - p->ymin) / (p->ymax - p->ymin) * p->h; }

static void axes(sbuf *b, const panel *p, const char *ylabel, int n_epochs) {
    sb_printf(b, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='none' stroke='#444'/>\n", p->x0, p->y0,
              p->w, p->h);
    for (int i = 0; i <= 4; i++) {
        double v = p->ymin + (p->ymax - p->ymin) * i / 4.0, y = py(p, v);
        sb_printf(b, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#ddd'/>", p->x0, y, p->x0 + p->w, y);
        sb_printf(b, "<text x='%.1f' y='%.1f' font-size='10' text-anchor='end'>%.3g</text>\n", p->x0 - 4, y + 3, v);
    }
    int step = n_epochs > 10 ? (n_epochs + 9) / 10 : 1;
    for (int e = 1; e <= n_epochs; e += step)
        sb_printf(b, "<text x='%.1f' y='%.1f' font-size='10' text-anchor='middle'>%d</text>\n", px(p, e),
                  p->y0 + p->h + 12, e);
    sb_printf(b, "<text x='%.1f' y='%.1f' font-size='11' transform='rotate(-90 %.1f %.1f)' text-anchor='middle'>%s</text>\n",
              p->x0 - 38, p->y0 + p->h / 2, p->x0 - 38, p->y0 + p->h / 2, ylabel);
}

static void series(sbuf *b, const panel *p, const cphil_curve_row *rows, int n, size_t off, const char *color,
                   const char *dash) {
    sb_printf(b, "<polyline fill='none' stroke='%s' stroke-width='1.8'%s points='", color, dash);
    for (int i = 0; i < n; i++) {
        double v = *(const double *)((const char *)&rows[i] + off);
        if (isfinite(v)) sb_printf(b, "%.1f,%.1f ", px(p, rows[i].epoch), py(p, v));
    }
    sb_printf(b, "'/>\n");
    for (int i = 0; i < n; i++) {
        double v = *(const double *)((const char *)&rows[i] + off);
        if (isfinite(v))
            sb_printf(b, "<circle cx='%.1f' cy='%.1f' r='2.2' fill='%s'/>", px(p, rows[i].epoch), py(p, v), color);
    }
    sb_printf(b, "\n");
}

static void range_of(const cphil_curve_row *rows, int n, const size_t *offs, int k, double *lo, double *hi) {
    *lo = INFINITY;
    *hi = -INFINITY;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++) {
            double v = *(const double *)((const char *)&rows[i] + offs[j]);
            if (isfinite(v)) {
                if (v < *lo) *lo = v;
                if (v > *hi) *hi = v;
            }
        }
    if (!isfinite(*lo)) *lo = 0, *hi = 1;
    if (*hi - *lo < 1e-9) *lo -= 0.5, *hi += 0.5;
    double pad = (*hi - *lo) * 0.05;
    *lo -= pad;
    *hi += pad;
}

cphil_status cphil_curves_write_svg(const char *path, const cphil_curve_row *rows, int n, const char *title) {
    sbuf b = {0};
    int ne = n > 0 ? rows[n - 1].epoch : 1;
    sb_printf(&b, "<?xml version='1.0' encoding='UTF-8'?>\n<svg xmlns='http://www.w3.org/2000/svg' width='640' "
                  "height='520' font-family='sans-serif'>\n<rect width='640' height='520' fill='white'/>\n");
    sb_printf(&b, "<text x='320' y='18' font-size='14' text-anchor='middle'>");
    for (const char *c = title ? title : ""; *c; c++) {
        if (*c == '<') sb_printf(&b, "&lt;");
        else if (*c == '>') sb_printf(&b, "&gt;");
        else if (*c == '&') sb_printf(&b, "&amp;");
        else if (*c == '\'') sb_printf(&b, "&apos;");
        else sb_printf(&b, "%c", *c);
    }
    sb_printf(&b, "</text>\n");
    panel lp = {60, 35, 440, 190, 0.5, ne + 0.5, 0, 1};
    size_t loss_off[2] = {offsetof(cphil_curve_row, train_loss), offsetof(cphil_curve_row, val_loss)};
    range_of(rows, n, loss_off, 2, &lp.ymin, &lp.ymax);
    axes(&b, &lp, "loss", ne);
    series(&b, &lp, rows, n, loss_off[0], colors[0], "");
    series(&b, &lp, rows, n, loss_off[1], colors[1], " stroke-dasharray='5,3'");
    for (int i = 0; i < n; i++)
        if (rows[i].best && isfinite(rows[i].val_loss))
            sb_printf(&b, "<text x='%.1f' y='%.1f' font-size='12' text-anchor='middle' fill='%s'>&#9733;</text>\n",
                      px(&lp, rows[i].epoch), py(&lp, rows[i].val_loss) - 5, colors[1]);
    sb_printf(&b, "<text x='515' y='55' font-size='11' fill='%s'>train loss</text>\n", colors[0]);
    sb_printf(&b, "<text x='515' y='70' font-size='11' fill='%s'>val loss (&#9733; best)</text>\n", colors[1]);
    panel ap = {60, 275, 440, 190, 0.5, ne + 0.5, 0, 1};
    size_t acc_off[CPHIL_TR_N_HEADS];
    for (int h = 0; h < CPHIL_TR_N_HEADS; h++) acc_off[h] = offsetof(cphil_curve_row, acc) + (size_t)h * sizeof(double);
    range_of(rows, n, acc_off, CPHIL_TR_N_HEADS, &ap.ymin, &ap.ymax);
    axes(&b, &ap, "val accuracy", ne);
    for (int h = 0; h < CPHIL_TR_N_HEADS; h++) {
        series(&b, &ap, rows, n, acc_off[h], colors[h + 1], "");
        sb_printf(&b, "<text x='515' y='%d' font-size='11' fill='%s'>%s</text>\n", 295 + 15 * h, colors[h + 1],
                  cphil_head_names[h]);
    }
    sb_printf(&b, "<text x='280' y='505' font-size='11' text-anchor='middle'>epoch</text>\n</svg>\n");
    return sb_commit(&b, path);
}
