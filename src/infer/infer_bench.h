/* infer_bench.h — timing decisions of the engine (what `cphil bench` and bench/bench_infer print):
 * a model and mode stepped over prepared frames (random continuous features, one valid id per
 * one-hot block), each decision timed whole: input layer with its id gathers, backbone, heads
 * and sampling. Warm-up first. Allocates only in prepare/free, never while timing.
 * Does not: pin threads (the caller does) or print.
 */
#ifndef CPHIL_INFER_BENCH_H
#define CPHIL_INFER_BENCH_H

#include "infer/infer.h"

typedef struct cphil_bench_frames {
    int n, n_cont, n_ids;
    float *cont;
    int32_t *ids;
} cphil_bench_frames;

typedef struct cphil_bench_result {
    double p50_us, p99_us, mean_us, max_us;
    long iters;
} cphil_bench_result;

/* The default embedding's sizes and one-hot blocks (off[k], width[k] for id k; up to 64). */
void cphil_bench_default_embedding(int *n_cont, int *n_ids, int *E, int *off, int *width);
/* 256 frames for spec; off/width give each id's block (NULL: spread ids over the one-hot columns). */
cphil_status cphil_bench_frames_make(cphil_bench_frames *f, const cphil_infer_spec *sp, const int *off,
                                     const int *width);
void cphil_bench_frames_free(cphil_bench_frames *f);
/* Time decisions for `seconds` (at least 20) after a 0.1 s warm-up. */
cphil_status cphil_bench_run(const cphil_infer_model *m, cphil_infer_mode mode, const cphil_bench_frames *f,
                             double seconds, cphil_bench_result *out);


/* The seed's architecture table: each backbone in `backbones`, precision in `precisions`, mode in
 * `modes` (comma lists; NULL = all) at the seed's sizes with the default embedding and random
 * weights; fn is called once per row. */
typedef struct cphil_bench_row {
    const char *backbone, *precision, *mode;
    int64_t params;
    cphil_bench_result r;
} cphil_bench_row;
typedef void (*cphil_bench_row_fn)(void *user, const cphil_bench_row *row);
cphil_status cphil_bench_table(const char *backbones, const char *precisions, const char *modes, double seconds,
                               cphil_bench_row_fn fn, void *user);
/* Is name in the comma list (NULL list: yes)? */
bool cphil_bench_in_list(const char *list, const char *name);
const char *cphil_bench_precision_name(cphil_wtype d);

#endif
