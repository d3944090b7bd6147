/* bench_data.c — the data pipeline's speed: `cphil dataset` build rate over a replay folder
 * (frames/s, 2 threads, the atomic write with fsync included) and the batcher's rate in
 * batches/s (windows B=32 W=60 stride 30, and TBPTT streams B=32 W=60). Median of repeated
 * runs; noisy on a shared machine (2 cores shared by several users).
 *   build/rel/bench/bench_data [REPLAYS_DIR (default ../shared/replays)] [--jobs N] [--runs R]
 */
#include "core/core.h"
#include "data/dataset.h"

#include <stdlib.h>
#include <string.h>

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    const char *dir = "../shared/replays";
    int jobs = 2, runs = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--jobs") && i + 1 < argc) jobs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else dir = argv[i];
    }
    if (runs < 1 || runs > 50) runs = 3;
    const char *tmp = getenv("TMPDIR");
    char out[1024];
    snprintf(out, sizeof out, "%s/cphil_bench_data.ds", tmp && *tmp ? tmp : "/tmp");
    cphil_ds_build_opts o;
    cphil_ds_build_default_opts(&o);
    o.replays_dir = dir;
    o.out_path = out;
    o.jobs = jobs;
    o.quiet = true;
    double t[50];
    uint64_t rows = 0, bytes = 0;
    uint32_t files = 0;
    for (int r = 0; r < runs; r++) {
        cphil_ds_build_report rep;
        double t0 = cphil_now_sec();
        if (cphil_dataset_build(&o, &rep) != CPHIL_OK) {
            fprintf(stderr, "bench_data: %s\n", cphil_last_error());
            cphil_ds_build_report_free(&rep);
            return 1;
        }
        t[r] = cphil_now_sec() - t0;
        rows = rep.rows;
        bytes = rep.bytes_written;
        files = rep.files_used;
        cphil_ds_build_report_free(&rep);
    }
    qsort(t, (size_t)runs, sizeof t[0], cmp_d);
    printf("dataset build: %u files, %llu frames, %.1f MB, %d threads: median %.3f s (min %.3f), %.0f frames/s\n",
           files, (unsigned long long)rows, (double)bytes / 1e6, jobs, t[runs / 2], t[0],
           (double)rows / t[runs / 2]);

    cphil_dataset ds;
    if (cphil_dataset_open(&ds, out, true) != CPHIL_OK) {
        fprintf(stderr, "bench_data: %s\n", cphil_last_error());
        return 1;
    }
    for (int mode = 0; mode < 2; mode++) {
        cphil_batcher_opts bo;
        cphil_batcher_default_opts(&bo);
        bo.mode = mode ? CPHIL_BATCH_STREAMS : CPHIL_BATCH_WINDOWS;
        bo.split = CPHIL_SPLIT_ALL;
        bo.B = 32;
        bo.W = 60;
        bo.stride = 30;
        cphil_batcher *b = NULL;
        cphil_batch x;
        if (cphil_batcher_open(&b, &ds, &bo) != CPHIL_OK || cphil_batch_alloc(&x, b) != CPHIL_OK) {
            fprintf(stderr, "bench_data: %s\n", cphil_last_error());
            return 1;
        }
        double bt[50];
        uint64_t nb = 0;
        for (int r = 0; r < runs; r++) {
            cphil_batcher_epoch(b, (uint64_t)r);
            nb = 0;
            double t0 = cphil_now_sec();
            while (cphil_batcher_next(b, &x)) nb++;
            bt[r] = (cphil_now_sec() - t0) / (double)(nb ? nb : 1);
        }
        qsort(bt, (size_t)runs, sizeof bt[0], cmp_d);
        printf("batcher %-7s B=32 W=60%s: %llu batches per epoch, median %.1f us/batch, %.0f batches/s (%.0f frames/s)\n",
               mode ? "streams" : "windows", mode ? "" : " stride 30", (unsigned long long)nb, bt[runs / 2] * 1e6,
               1.0 / bt[runs / 2], 32.0 * 60.0 / bt[runs / 2]);
        cphil_batch_free(&x);
        cphil_batcher_close(b);
    }
    cphil_dataset_close(&ds);
    remove(out);
    return 0;
}
