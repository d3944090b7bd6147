/* bench_gemm.c — throughput of cphil_gemm at the training shapes (M = 64*60 = 3840 rows; the
 * three forms a Linear layer uses: forward NT, backward-data NN, backward-weight TN), f32 and
 * bf16, 1 and 2 threads, against a measured per-core peak (the microkernel on L1-resident
 * panels, in thread CPU time) and the clock-derived roofline. Each product: best wall time of a
 * few runs, and best process CPU time / threads ("cpu" columns: what it costs with the cores to
 * itself; on a machine shared with other jobs the wall figures are pessimistic).
 *   build/rel/bench/bench_gemm [--quick] [--isa scalar|avx2|avx512]
 */
#include "core/core.h"
#include "kernels/cpu/kernels_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static double thread_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Best wall time, and best process CPU time divided by the thread count: on a machine shared
 * with other jobs the second is what the product costs when it has the cores to itself. */
static double best_time(cphil_precision p, bool ta, bool tb, int M, int N, int K, const float *A,
                        const float *B, float *C, int reps, int threads, double *cpu_best) {
    double best = 1e30;
    *cpu_best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = cphil_now_sec(), c0 = cpu_sec();
        cphil_gemm(p, ta, tb, M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, 0.0f, C, N);
        double t = cphil_now_sec() - t0, c = (cpu_sec() - c0) / threads;
        if (t < best) best = t;
        if (c < *cpu_best) *cpu_best = c;
    }
    return best;
}

/* Clock estimate (thread CPU time): a chain of dependent adds runs at one per cycle. */
static double clock_ghz(void) {
    volatile unsigned long sink;
    unsigned long x = 1;
    long n = 200000000;
    double t0 = thread_sec();
    for (long i = 0; i < n; i++) __asm__ volatile("add $1, %0" : "+r"(x));
    double t = thread_sec() - t0;
    sink = x;
    (void)sink;
    return n / t / 1e9;
}

/* The microkernel alone on small, cache-resident packed panels: the attainable peak. */
static double uk_peak(cphil_precision p) {
    cphil_isa isa = cphil_isa_active();
    int MR, NR;
    cphil_gemm_uk uk;
    if (isa == CPHIL_ISA_AVX512 && (p == CPHIL_PREC_F32 || cphil_cpu_has_bf16())) {
        MR = GEMM_MR_AVX512; NR = GEMM_NR_AVX512;
        uk = p == CPHIL_PREC_F32 ? cphil_uk_f32_avx512 : cphil_uk_bf16_avx512;
    } else if (isa >= CPHIL_ISA_AVX2) {
        MR = GEMM_MR_AVX2; NR = GEMM_NR_AVX2;
        uk = p == CPHIL_PREC_F32 ? cphil_uk_f32_avx2 : cphil_uk_bf16emu_avx2;
    } else return 0;
    int kc = 128; /* k steps (bf16: pairs) */
    float *a = cphil_calloc((size_t)kc * MR, 4), *b = cphil_calloc((size_t)kc * NR, 4), c[64 * 32];
    for (int i = 0; i < kc * MR; i++) a[i] = 1e-3f;
    for (int i = 0; i < kc * NR; i++) b[i] = 1e-3f;
    int reps = 20000;
    double best = 1e30;
    for (int t = 0; t < 3; t++) {
        double t0 = thread_sec();
        for (int r = 0; r < reps; r++) uk(kc, a, b, c, NR, MR, NR, 1.0f, 0.0f);
        double dt = thread_sec() - t0;
        if (dt < best) best = dt;
    }
    cphil_free(a);
    cphil_free(b);
    double flops = 2.0 * MR * NR * kc * (p == CPHIL_PREC_BF16 ? 2 : 1) * reps;
    return flops / best / 1e9;
}

int main(int argc, char **argv) {
    bool quick = false;
    if (cphil_isa_init() != CPHIL_OK) { fprintf(stderr, "%s\n", cphil_last_error()); return 1; }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = true;
        else if (!strcmp(argv[i], "--isa") && i + 1 < argc) {
            const char *n = argv[++i];
            cphil_isa isa = !strcmp(n, "scalar") ? CPHIL_ISA_SCALAR : !strcmp(n, "avx2") ? CPHIL_ISA_AVX2 : CPHIL_ISA_AVX512;
            if (cphil_isa_set(isa) != CPHIL_OK) { fprintf(stderr, "%s\n", cphil_last_error()); return 1; }
        }
    }
    double ghz = clock_ghz();
    printf("# %s\n# clock ~%.2f GHz (dependent-add chain); roofline per core: f32 %.0f GFLOP/s (2x256-bit FMA), bf16 %.0f\n",
           cphil_isa_describe(), ghz, ghz * 32, ghz * 64);
    double pk32 = uk_peak(CPHIL_PREC_F32), pk16 = uk_peak(CPHIL_PREC_BF16);
    printf("# microkernel peak (1 core, L1-resident): f32 %.1f GFLOP/s, bf16 %.1f GFLOP/s\n", pk32, pk16);
    const int M = 64 * 60;
    static const int shapes[][2] = {{256, 256}, {256, 1024}, {1024, 256}, {512, 512}, {2000, 256}, {256, 2000}};
    int nshapes = quick ? 2 : (int)CPHIL_ARRAY_LEN(shapes);
    size_t maxe = (size_t)M * 2048;
    float *A = cphil_alloc(maxe * 4), *B = cphil_alloc((size_t)2048 * 2048 * 4), *C = cphil_alloc(maxe * 4);
    for (size_t i = 0; i < maxe; i++) A[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    for (size_t i = 0; i < (size_t)2048 * 2048; i++) B[i] = (float)((i * 40503u) % 1000) / 1000.0f - 0.5f;
    printf("%-6s %-4s %5s %5s %5s %4s %8s %9s %7s %9s %7s\n", "prec", "form", "M", "N", "K", "thr", "ms", "GFLOP/s", "%peak",
           "cpuGF/s", "%peak");
    for (int s = 0; s < nshapes; s++) {
        int in = shapes[s][0], out = shapes[s][1];
        /* forward Y[M,out] = X[M,in] W[out,in]^T; dX[M,in] = dY[M,out] W[out,in]; dW[out,in] = dY^T X */
        struct { const char *name; bool ta, tb; int m, n, k; } forms[3] = {
            {"NT", false, true, M, out, in}, {"NN", false, false, M, in, out}, {"TN", true, false, out, in, M}};
        for (int p = 0; p < 2; p++)
            for (int f = 0; f < 3; f++)
                for (int th = 1; th <= 2; th++) {
                    cphil_threads_set(th);
                    int m = forms[f].m, n = forms[f].n, k = forms[f].k;
                    double ct;
                    double t = best_time((cphil_precision)p, forms[f].ta, forms[f].tb, m, n, k, A, B, C, quick ? 3 : 5, th, &ct);
                    double gf = 2.0 * m * n * k / t / 1e9, cgf = 2.0 * m * n * k / ct / 1e9 / th;
                    double peak = (p ? pk16 : pk32) * th;
                    printf("%-6s %-4s %5d %5d %5d %4d %8.2f %9.1f %6.0f%% %9.1f %6.0f%%\n", p ? "bf16" : "f32", forms[f].name, m, n,
                           k, th, t * 1e3, gf, peak > 0 ? 100 * gf / peak : 0, cgf * th, peak > 0 ? 100 * cgf * th / peak : 0);
                }
    }
    cphil_threads_set(1);
    cphil_free(A); cphil_free(B); cphil_free(C);
    return 0;
}
