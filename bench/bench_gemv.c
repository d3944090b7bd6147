/* bench_gemv.c — ns per call of the inference products (cphil_pmat_gemm, 16-row panels) and of
 * the one-hot gather-add (cphil_gather_add) at the engine's shapes: batch 1 (stream mode) and
 * M = 60 (window mode), f32 / bf16 / int8, for each ISA tier the CPU has. One thread; median of
 * 31 timings in thread CPU time (less sensitive to other jobs on a shared machine, still affected
 * by their cache use). Pin it: taskset -c 1 build/rel/bench/bench_gemv [--quick]
 * Shapes (out x in): 256x256 (MLP / Mamba), 1024x256 (LSTM gates), 768x256 (GRU gates), 256x99
 * (input layer, continuous part), 1024x2185 (a dense input layer of the full width).
 */
#include "core/core.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/panel.h"

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

/* Pack W[out, in] as ty, time M-row products (median of 31 rounds of enough calls for ~2e7
 * flops each) and print one table row labelled `label`. */
static int time_row(const char *label, const char *tname, cphil_wtype ty, int out, int in, int M, const float *W,
                    const float *bias, const float *x, float *y, void *scratch) {
    enum { NR = 31 };
    cphil_pmat p;
    if (cphil_pmat_pack(&p, out, in, W, bias, ty)) {
        fprintf(stderr, "%s\n", cphil_last_error());
        return 1;
    }
    double flops = 2.0 * M * out * in;
    int reps = (int)(2e7 / flops) + 1;
    double t[NR];
    for (int r = 0; r < NR; r++) {
        double t0 = tsec();
        for (int i = 0; i < reps; i++) cphil_pmat_gemm(&p, M, x, in, y, out, 0, scratch);
        t[r] = (tsec() - t0) / reps;
    }
    qsort(t, NR, sizeof t[0], cmp_d);
    double ns = t[NR / 2] * 1e9;
    printf("%-7s %-5s %5d %5d %3d %10.0f %8.1f %8.1f\n", label, tname, out, in, M, ns, (double)cphil_pmat_bytes(&p) / ns,
           flops / ns);
    cphil_pmat_free(&p);
    return 0;
}

int main(int argc, char **argv) {
    bool quick = argc > 1 && !strcmp(argv[1], "--quick");
    static const int shapes[][2] = {{256, 256}, {1024, 256}, {768, 256}, {256, 99}, {1024, 2185}}; /* out, in */
    static const char *tn[] = {"f32", "bf16", "int8"};
    enum { NR = 31, MAXI = 2200 };
    printf("# %s\n", cphil_isa_describe());
    /* GB/s: packed weight bytes per second (the limit for M = 1); GOP/s: 2*M*out*in per second */
    printf("%-7s %-5s %5s %5s %3s %10s %8s %8s\n", "tier", "type", "out", "in", "M", "ns/call", "GB/s(W)", "GOP/s");
    float *x = cphil_alloc((size_t)60 * MAXI * 4), *y = cphil_alloc((size_t)60 * MAXI * 4), *bias = cphil_calloc(MAXI, 4);
    float *W = cphil_alloc((size_t)1024 * 2185 * 4);
    for (size_t i = 0; i < (size_t)60 * MAXI; i++) x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    for (size_t i = 0; i < (size_t)1024 * 2185; i++) W[i] = (float)((i * 40503u) % 1000) / 10000.0f - 0.05f;
    void *scratch = cphil_alloc(cphil_pmat_scratch_bytes(60, MAXI));
    for (int tier = (int)cphil_pmat_isa_best(); tier >= 1; tier--) {
        if (cphil_isa_set((cphil_isa)tier) != CPHIL_OK) continue;
        for (int s = 0; s < (quick ? 2 : 5); s++)
            for (int M = 1; M <= 60; M += 59)
                for (int ty = 0; ty < 3; ty++)
                    if (time_row(cphil_isa_name((cphil_isa)tier), tn[ty], (cphil_wtype)ty, shapes[s][0], shapes[s][1], M,
                                 W, bias, x, y, scratch))
                        return 1;
        /* gather-add: the input layer's one-hot part (8 ids into a 2086-column table, width 256) */
        for (int ty = 0; ty < 3; ty++) {
            cphil_gtable g;
            if (cphil_gtable_init(&g, (cphil_wtype)ty, W, 256, 2185, 99, 2086)) return 1;
            int32_t ids[8] = {150, 400, 700, 900, 1200, 1500, 1800, 2100};
            double t[NR];
            for (int r = 0; r < NR; r++) {
                double t0 = tsec();
                for (int i = 0; i < 1000; i++) cphil_gather_add(&g, 8, ids, y);
                t[r] = (tsec() - t0) / 1000;
            }
            qsort(t, NR, sizeof t[0], cmp_d);
            printf("%-7s %-5s gather_add width 256, 8 ids: %.0f ns\n", cphil_isa_name((cphil_isa)tier), tn[ty], t[NR / 2] * 1e9);
            cphil_gtable_free(&g);
        }
    }
    /* int8 of several rows with and without AMX, alternating in the same run (AVX-512 tier) */
    if (cphil_amx_available() && cphil_isa_set(CPHIL_ISA_AVX512) == CPHIL_OK) {
        for (int s = 0; s < 5; s++)
            for (int M = 16; M <= 60; M += 44)
                for (int amx = 0; amx < 2; amx++) {
                    cphil_amx_set(amx);
                    if (time_row(amx ? "amx" : "vnni", "int8", CPHIL_W_I8, shapes[s][0], shapes[s][1], M, W, bias, x, y,
                                 scratch))
                        return 1;
                }
        cphil_amx_set(true);
    }
    /* The weight-stream ceiling of a batch-1 int8 step: the AVX-512 kernel alone (input already
     * quantized, no conversion) over 256-column matrices that fit L1 (64 rows, 16 KB) or only L2
     * (1024 rows, 256 KB: an LSTM layer's recurrent matrix). A recurrent step cannot reuse
     * weights across steps, so the L2 figure bounds the recurrence of window and stream modes. */
    if (cphil_pmat_isa_best() == CPHIL_ISA_AVX512) {
        cphil_isa_set(CPHIL_ISA_AVX512);
        int8_t *xq = scratch;
        for (int k = 0; k < 256; k++) xq[k] = (int8_t)((k * 37) % 255 - 127);
        float xs = 0.01f;
        for (int rows = 64; rows <= 1024; rows *= 16) {
            cphil_pmat p;
            if (cphil_pmat_pack(&p, rows, 256, W, NULL, CPHIL_W_I8)) return 1;
            cphil_pmat_args a = {&p, 1, xq, 256, &xs, y, rows, 0};
            int reps = 2000000 / rows;
            double t[NR];
            for (int r = 0; r < NR; r++) {
                double t0 = tsec();
                for (int i = 0; i < reps; i++) cphil_pmat_i8_avx512(&a);
                t[r] = (tsec() - t0) / reps;
            }
            qsort(t, NR, sizeof t[0], cmp_d);
            double ns = t[NR / 2] * 1e9;
            printf("avx512  int8 kernel only, batch 1, %4d x 256 (%3d KB, %s): %7.0f ns, %6.1f GB/s of weights\n", rows,
                   rows / 4, rows * 256 <= 32768 ? "fits L1" : "in L2", ns, (double)rows * 256 / ns);
            cphil_pmat_free(&p);
        }
    }
    cphil_isa_set(cphil_isa_best());
    cphil_free(x); cphil_free(y); cphil_free(bias); cphil_free(W); cphil_free(scratch);
    return 0;
}
