/* curves.h — training curves: one row per epoch, written as CSV and as a small hand-written SVG
 * plot (two panels: train and validation loss; per-head validation accuracy). No plotting
 * library: the SVG is a few polylines with axes and labels, readable in any browser. */
#ifndef CPHIL_TRAIN_CURVES_H
#define CPHIL_TRAIN_CURVES_H

#include "train/metrics.h"

typedef struct cphil_curve_row {
    int epoch;              /* 1-based */
    uint64_t step;          /* optimizer steps done at the end of the epoch */
    double train_loss;      /* mean training loss over the epoch */
    double val_loss;        /* validation loss (NaN when there is no validation set) */
    double acc[CPHIL_TR_N_HEADS]; /* validation accuracy per head (NaN when none) */
    double seconds;         /* wall time of the epoch */
    int best;               /* 1 on the best validation epoch so far */
} cphil_curve_row;

/* CSV header + rows; atomic. Columns: epoch,step,train_loss,val_loss,acc_<head>...,seconds,best */
cphil_status cphil_curves_write_csv(const char *path, const cphil_curve_row *rows, int n);
/* SVG plot (640 x 480); atomic. `title` is escaped. */
cphil_status cphil_curves_write_svg(const char *path, const cphil_curve_row *rows, int n, const char *title);

#endif
