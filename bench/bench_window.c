/* bench_window.c — window mode in thread CPU time: the LSTM and GRU with in-flight windows and
 * recomputing each window (cphil_infer_state_set_inflight), Mamba and attention (which always
 * recompute; "mamba,attention" in the backbone list), at the seed's sizes (hidden 256, 2 layers, window 60,
 * the default embedding, random weights, the same frames as `cphil bench`), f32 / bf16 / int8.
 * Each decision is timed in thread CPU time (CLOCK_THREAD_CPUTIME_ID), so the time slices a
 * shared machine gives to other jobs are not counted (wall-clock p50 of a 5-12 ms decision on a
 * loaded 2-core machine jumps by whole 4 ms slices); the two ways alternate row by row, three
 * rounds, and the medians of the rounds' p50 and p99 are printed. Pin it:
 *   taskset -c 1 build/rel/bench/bench_window [seconds per row, default 0.5] [lstm,gru,mamba,attention]
 *                                             [f32,bf16,int8]      (default: lstm,gru and all three)
 * Built with -DBENCH_WINDOW_NO_INFLIGHT (for a library without the switch), only "recompute".
 */
#include "infer/infer.h"
#include "infer/infer_bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* p50 and p99 of the decisions of `seconds` of CPU time after a warm-up of two windows. */
static int run(const cphil_infer_model *m, bool inflight, const cphil_bench_frames *fr, double seconds, double *p50,
               double *p99) {
    cphil_infer_state *s;
    if (cphil_infer_state_open(m, CPHIL_INFER_WINDOW, &s)) return -1;
#ifndef BENCH_WINDOW_NO_INFLIGHT
    cphil_infer_state_set_inflight(s, inflight);
#else
    (void)inflight;
#endif
    enum { CAP = 100000 };
    static double t[CAP];
    float logits[INFER_N_LOGITS];
    int n = 0, rc = 0;
    for (int i = 0; i < 120 && !rc; i++)
        rc = cphil_infer_step(s, fr->cont + (size_t)(i % fr->n) * fr->n_cont, fr->ids + (size_t)(i % fr->n) * fr->n_ids,
                              logits) != CPHIL_OK;
    double total = 0;
    while (!rc && n < CAP && (n < 30 || total < seconds * 1e6)) {
        const int i = (120 + n) % fr->n;
        const double a = cpu_us();
        rc = cphil_infer_step(s, fr->cont + (size_t)i * fr->n_cont, fr->ids + (size_t)i * fr->n_ids, logits) != CPHIL_OK;
        t[n] = cpu_us() - a;
        total += t[n++];
    }
    cphil_infer_state_close(s);
    if (rc) return -1;
    qsort(t, (size_t)n, sizeof *t, cmp_d);
    *p50 = t[n / 2];
    *p99 = t[(size_t)((n - 1) * 0.99)];
    return 0;
}

static double med3(const double *v) {
    double a = v[0], b = v[1], c = v[2];
    return a > b ? (b > c ? b : a > c ? c : a) : (a > c ? a : b > c ? c : b);
}

int main(int argc, char **argv) {
    const double seconds = argc > 1 ? atof(argv[1]) : 0.5;
    const char *bbs = argc > 2 ? argv[2] : "lstm,gru", *precs = argc > 3 ? argv[3] : "f32,bf16,int8";
    int n_cont, n_ids, E, off[64], width[64];
    cphil_bench_default_embedding(&n_cont, &n_ids, &E, off, width);
    printf("# window mode, seed sizes, thread CPU time per decision (us), median of 3 rounds\n");
    printf("%-5s %-5s %-10s %10s %10s\n", "bb", "prec", "way", "p50_us", "p99_us");
    static const cphil_backbone all[4] = {CPHIL_BACKBONE_LSTM, CPHIL_BACKBONE_GRU, CPHIL_BACKBONE_MAMBA,
                                          CPHIL_BACKBONE_ATTENTION};
    for (int b = 0; b < 4; b++) {
        const cphil_backbone bb = all[b];
        if (!cphil_bench_in_list(bbs, cphil_backbone_name(bb))) continue;
        for (int p = 0; p < 3; p++) {
            const cphil_wtype dt = p == 0 ? CPHIL_W_F32 : p == 1 ? CPHIL_W_BF16 : CPHIL_W_I8;
            if (!cphil_bench_in_list(precs, cphil_bench_precision_name(dt))) continue;
            cphil_infer_spec sp;
            cphil_infer_spec_default(&sp, bb, n_cont, n_ids, E);
            cphil_infer_random *r;
            cphil_infer_model *m;
            cphil_bench_frames fr;
            if (cphil_infer_random_open(&sp, 1, &r) || cphil_infer_model_build(&sp, cphil_infer_random_lookup, r, dt, &m) ||
                cphil_bench_frames_make(&fr, &sp, off, width)) {
                fprintf(stderr, "bench_window: %s\n", cphil_last_error());
                return 1;
            }
            double p50[2][3], p99[2][3];
#ifndef BENCH_WINDOW_NO_INFLIGHT
            const int ways = b < 2 ? 2 : 1; /* in-flight windows: LSTM and GRU */
#else
            const int ways = 1;
#endif
            for (int round = 0; round < 3; round++)
                for (int w = 0; w < ways; w++)
                    if (run(m, w == 1, &fr, seconds, &p50[w][round], &p99[w][round])) {
                        fprintf(stderr, "bench_window: %s\n", cphil_last_error());
                        return 1;
                    }
            for (int w = 0; w < ways; w++)
                printf("%-5s %-5s %-10s %10.1f %10.1f\n", cphil_backbone_name(bb), cphil_bench_precision_name(dt),
                       w ? "in-flight" : "recompute", med3(p50[w]), med3(p99[w]));
            cphil_bench_frames_free(&fr);
            cphil_infer_model_free(m);
            cphil_infer_random_close(r);
        }
    }
    return 0;
}
