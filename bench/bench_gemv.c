/* bench_gemv.c — ns per call of the inference kernels (cphil_linear, cphil_gather_add) at the
 * seed's model shapes, batch 1 (stream mode) and M = 60 (window mode), f32 / bf16 / int8, for
 * each ISA tier the CPU has. One thread; median of 31 timings in thread CPU time (less sensitive
 * to other jobs on a shared machine, still affected by their cache use).
 *   build/rel/bench/bench_gemv [--quick]
 */
#include "core/core.h"
#include "kernels/cpu/kernels.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Thread CPU time: on a shared machine, time slices lost to other jobs are not counted. */
static double tsec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    bool quick = argc > 1 && !strcmp(argv[1], "--quick");
    static const int shapes[][2] = {{256, 256}, {1024, 256}, {256, 1991}, {512, 1991}, {1024, 1991}}; /* out, in */
    static const int Ms[] = {1, 60};
    static const char *tn[] = {"f32", "bf16", "int8"};
    printf("# %s\n", cphil_isa_describe());
    /* GB/s: packed weight bytes per second (the limit for M = 1); GOP/s: 2*M*out*in per second */
    printf("%-7s %-5s %5s %5s %3s %10s %8s %8s\n", "tier", "type", "out", "in", "M", "ns/call", "GB/s(W)", "GOP/s");
    float *x = cphil_alloc((size_t)60 * 2048 * 4), *y = cphil_alloc((size_t)60 * 2048 * 4), *bias = cphil_calloc(2048, 4);
    float *W = cphil_alloc((size_t)1024 * 1991 * 4);
    for (size_t i = 0; i < (size_t)60 * 2048; i++) x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    for (size_t i = 0; i < (size_t)1024 * 1991; i++) W[i] = (float)((i * 40503u) % 1000) / 10000.0f - 0.05f;
    void *scratch = cphil_alloc((size_t)60 * 2048 * 4 + 4096);
    for (int tier = 2; tier >= 1; tier--) {
        if (cphil_isa_set((cphil_isa)tier) != CPHIL_OK) continue;
        for (int s = 0; s < (quick ? 2 : 5); s++)
            for (int mi = 0; mi < 2; mi++)
                for (int ty = 0; ty < 3; ty++) {
                    int out = shapes[s][0], in = shapes[s][1], M = Ms[mi];
                    cphil_wpack p;
                    if (cphil_wpack_init(&p, (cphil_wtype)ty, W, out, in, in)) { fprintf(stderr, "%s\n", cphil_last_error()); return 1; }
                    int reps = M == 1 ? 200 : 20;
                    double t[31];
                    for (int r = 0; r < 31; r++) {
                        double t0 = tsec();
                        for (int i = 0; i < reps; i++) cphil_linear(&p, M, x, in, bias, y, out, false, 0, scratch);
                        t[r] = (tsec() - t0) / reps;
                    }
                    qsort(t, 31, sizeof t[0], cmp_d);
                    double ns = t[15] * 1e9;
                    printf("%-7s %-5s %5d %5d %3d %10.0f %8.1f %8.1f\n", cphil_isa_name((cphil_isa)tier), tn[ty], out, in, M, ns,
                           (double)p.bytes / ns, 2.0 * M * out * in / ns);
                    cphil_wpack_free(&p);
                }
        /* gather-add: the input layer's one-hot part (8 ids into a 1991-column table, width 256) */
        for (int ty = 0; ty < 3; ty++) {
            cphil_gtable g;
            if (cphil_gtable_init(&g, (cphil_wtype)ty, W, 256, 1991, 100, 1891)) return 1;
            int32_t ids[8] = {150, 400, 700, 900, 1200, 1500, 1800, 1990};
            double t[31];
            for (int r = 0; r < 31; r++) {
                double t0 = tsec();
                for (int i = 0; i < 1000; i++) cphil_gather_add(&g, 8, ids, y);
                t[r] = (tsec() - t0) / 1000;
            }
            qsort(t, 31, sizeof t[0], cmp_d);
            printf("%-7s %-5s gather_add width 256, 8 ids: %.0f ns\n", cphil_isa_name((cphil_isa)tier), tn[ty], t[15] * 1e9);
            cphil_gtable_free(&g);
        }
    }
    cphil_isa_set(cphil_isa_best());
    cphil_free(x); cphil_free(y); cphil_free(bias); cphil_free(W); cphil_free(scratch);
    return 0;
}
