/* test_kernels.c — every fast kernel against its scalar twin, on ragged sizes, for every ISA
 * path the CPU has (forced in-process with cphil_isa_set). */
#include "harness.h"
#include "core/core.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/kernels_internal.h"
#include "kernels/cpu/panel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <stdint.h>

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static float frand(void) {
    g_rng ^= g_rng << 13; g_rng ^= g_rng >> 7; g_rng ^= g_rng << 17;
    return (float)((double)(g_rng >> 11) / 9007199254740992.0) * 2.0f - 1.0f;
}
static float *rand_buf(size_t n) {
    float *p = cphil_alloc(n * sizeof(float) + 64);
    for (size_t i = 0; i < n; i++) p[i] = frand();
    return p;
}

/* One gemm case against the reference; tolerance relative to sum |a||b|. */
static void gemm_case(cphil_precision prec, bool ta, bool tb, int M, int N, int K, float alpha, float beta) {
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
    float *A = rand_buf(na + 1), *B = rand_buf(nb + 1), *C = rand_buf(nc + 1), *R = cphil_alloc(nc * sizeof(float) + 64);
    memcpy(R, C, nc * sizeof(float));
    cphil_gemm(prec, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    cphil_gemm_ref(prec, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, R, ldc);
    double tol = 1e-5 * (K + 4);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double c = C[(size_t)i * ldc + j], r = R[(size_t)i * ldc + j];
            CHECK_MSG(fabs(c - r) <= tol, "gemm prec=%d ta=%d tb=%d M=%d N=%d K=%d (%d,%d): %g vs %g",
                      (int)prec, ta, tb, M, N, K, i, j, c, r);
        }
    for (int i = 0; i < M; i++) /* padding untouched */
        for (int j = N; j < ldc; j++) CHECK(C[(size_t)i * ldc + j] == R[(size_t)i * ldc + j]);
    cphil_free(A); cphil_free(B); cphil_free(C); cphil_free(R);
}

static int g_tiers[3], g_ntiers;
static void tiers_init(void) {
    g_ntiers = 0;
    for (int i = 0; i <= 2; i++)
        if (cphil_isa_supported((cphil_isa)i)) g_tiers[g_ntiers++] = i;
}
#define FOR_TIERS(var) for (int var##_i = 0, var = 0; var##_i < g_ntiers && (var = g_tiers[var##_i], cphil_isa_set((cphil_isa)var) == CPHIL_OK); var##_i++)

TEST(gemm_vs_ref_every_tier) {
    static const int sz[] = {1, 3, 15, 17, 31, 33};
    FOR_TIERS(t) {
        for (int p = 0; p < 2; p++)
            for (int tr = 0; tr < 4; tr++)
                for (int a = 0; a < 6; a++)
                    for (int b = 0; b < 6; b++) {
                        float beta = (a + b) % 3 == 0 ? 0.0f : ((a + b) % 3 == 1 ? 1.0f : -1.3f);
                        gemm_case((cphil_precision)p, tr & 1, tr >> 1, sz[a], sz[b], sz[(a + 2 * b + tr) % 6], 0.7f, beta);
                    }
        /* ragged sizes past the tiles, and K past one k block (beta applied once) */
        gemm_case(CPHIL_PREC_F32, false, true, 257, 255, 33, 1.0f, 0.5f);
        gemm_case(CPHIL_PREC_BF16, true, false, 33, 257, 255, -1.0f, 0.0f);
        gemm_case(CPHIL_PREC_F32, true, true, 31, 40, 1100, 1.0f, 1.0f);
        gemm_case(CPHIL_PREC_BF16, false, false, 17, 45, 1025, 0.5f, 2.0f);
        gemm_case(CPHIL_PREC_F32, false, false, 13, 7, 0, 1.0f, 2.0f); /* K = 0: C = beta C */
    }
    cphil_isa_set(cphil_isa_default());
}

/* Run one gemm into a fresh copy of C0 and return the copy. */
static float *gemm_run(cphil_precision p, bool ta, bool tb, int M, int N, int K, const float *A, const float *B,
                       const float *C0, float beta) {
    float *C = cphil_alloc((size_t)M * N * sizeof(float) + 64);
    memcpy(C, C0, (size_t)M * N * sizeof(float));
    cphil_gemm(p, ta, tb, M, N, K, 1.25f, A, ta ? M : K, B, tb ? K : N, beta, C, N);
    return C;
}

/* The pool grows between jobs (2 threads, then 5): the new workers must wait for the next job,
 * not pick up the finished one (its job lay on the caller's stack: under the sanitizer build's
 * detect_stack_use_after_return that read was reported), and the results stay exact. */
static void count_part(void *ctx, int part, int parts) {
    (void)parts;
    __atomic_fetch_add((int *)ctx + part, 1, __ATOMIC_RELAXED);
}
TEST(pool_grows_between_jobs) {
    int hits[8] = {0};
    cphil_threads_set(2);
    cphil_parallel(2, count_part, hits);
    int M = 96, N = 80, K = 300;
    float *A = rand_buf((size_t)M * K), *B = rand_buf((size_t)K * N), *C0 = rand_buf((size_t)M * N);
    float *c2 = gemm_run(CPHIL_PREC_F32, false, false, M, N, K, A, B, C0, 0.0f);
    cphil_threads_set(5);
    cphil_parallel(7, count_part, hits); /* more parts than threads: spread */
    float *c5 = gemm_run(CPHIL_PREC_F32, false, false, M, N, K, A, B, C0, 0.0f);
    cphil_threads_set(1);
    for (int i = 0; i < 8; i++) CHECK_MSG(hits[i] == (i < 2 ? 2 : i < 7 ? 1 : 0), "part %d ran %d times", i, hits[i]);
    CHECK(!memcmp(c2, c5, (size_t)M * N * sizeof(float)));
    cphil_free(A); cphil_free(B); cphil_free(C0); cphil_free(c2); cphil_free(c5);
}

TEST(gemm_threads_identical_bits) {
    /* big enough to use the workers; shapes that split rows and that split columns */
    static const int shp[][3] = {{203, 150, 611}, {40, 700, 300}};
    FOR_TIERS(t) {
        for (int s = 0; s < 2; s++)
            for (int p = 0; p < 2; p++)
                for (int tr = 0; tr < 4; tr += 3) {
                    int M = shp[s][0], N = shp[s][1], K = shp[s][2];
                    float *A = rand_buf((size_t)M * K), *B = rand_buf((size_t)K * N), *C0 = rand_buf((size_t)M * N);
                    cphil_threads_set(1);
                    float *c1 = gemm_run((cphil_precision)p, tr & 1, tr >> 1, M, N, K, A, B, C0, 0.5f);
                    cphil_threads_set(2);
                    float *c2 = gemm_run((cphil_precision)p, tr & 1, tr >> 1, M, N, K, A, B, C0, 0.5f);
                    cphil_threads_set(3);
                    float *c3 = gemm_run((cphil_precision)p, tr & 1, tr >> 1, M, N, K, A, B, C0, 0.5f);
                    cphil_threads_set(1);
                    bool same = !memcmp(c1, c2, (size_t)M * N * 4) && !memcmp(c1, c3, (size_t)M * N * 4);
                    cphil_free(A); cphil_free(B); cphil_free(C0); cphil_free(c1); cphil_free(c2); cphil_free(c3);
                    CHECK_MSG(same, "tier %d prec %d shape %d: thread counts differ", t, p, s);
                }
    }
    cphil_isa_set(cphil_isa_default());
}

/* bf16: every tier (scalar emulation, AVX2 emulation, AVX512_BF16 hardware) gives the same bits. */
TEST(gemm_bf16_exact_across_tiers) {
    int M = 37, N = 45, K = 1111;
    float *A = rand_buf((size_t)M * K), *B = rand_buf((size_t)K * N), *C0 = rand_buf((size_t)M * N);
    /* values over a wide exponent range, with cancellation; the last rows and columns near
     * 2^-63 so that products and partial sums underflow into the flushed (subnormal) range */
    for (int i = 0; i < M * K; i++) A[i] = ldexpf(A[i], i / K >= M - 8 ? -61 - i % 5 : (i * 7) % 41 - 20);
    for (int i = 0; i < K * N; i++) B[i] = ldexpf(B[i], i % N >= N - 8 ? -61 - i % 5 : (i * 5) % 37 - 18);
    /* beta 0 as well: with beta != 0 the corner's tiny sums vanish against beta C0 and a missing
     * flush would go unseen */
    float *bases[8] = {0};
    FOR_TIERS(t) {
        for (int r = 0; r < 8; r++) {
            const int tr = r & 3;
            float *c = gemm_run(CPHIL_PREC_BF16, tr & 1, tr >> 1, M, N, K, A, B, C0, r < 4 ? -0.75f : 0.0f);
            if (t == g_tiers[0]) { bases[r] = c; continue; }
            float *base = bases[r];
            bool same = !memcmp(base, c, (size_t)M * N * 4);
            int bad = -1;
            for (int i = 0; i < M * N && !same && bad < 0; i++) if (memcmp(&base[i], &c[i], 4)) bad = i;
            float bv = bad >= 0 ? base[bad] : 0, cv = bad >= 0 ? c[bad] : 0;
            cphil_free(c);
            CHECK_MSG(same, "tier %d transposes %d beta %s: element %d %.9g vs %.9g", t, tr, r < 4 ? "-0.75" : "0",
                      bad, bv, cv);
        }
    }
    int flushed = 0; /* the corner really reaches the flushed range: some sums there are +-0 */
    for (int i = M - 8; i < M; i++)
        for (int j = N - 8; j < N; j++) flushed += bases[4][i * N + j] == 0.0f;
    CHECK_MSG(flushed > 0, "no sum of the tiny corner was flushed: the test lost its underflow case");
    for (int i = 0; i < 8; i++) cphil_free(bases[i]);
    cphil_free(A); cphil_free(B); cphil_free(C0);
    cphil_isa_set(cphil_isa_default());
}

/* The flush at FLT_MIN, on every tier: a pair step whose exact sum lies in [FLT_MIN - 2^-150,
 * FLT_MIN - 2^-151) is tiny for x86's flush-to-zero (rounded to 24 bits with an unbounded
 * exponent it is below FLT_MIN) and becomes a signed zero, although rounding to f32 first would
 * give FLT_MIN; a sum in [FLT_MIN - 2^-151, FLT_MIN) rounds to FLT_MIN and stays. The pair step
 * adds k = 1's product (2^-63 * 2^-63 = FLT_MIN) first, then k = 0's. On AVX512_BF16 hardware
 * this checks that vdpbf16ps flushes the same way. */
TEST(gemm_bf16_flush_at_flt_min) {
    static const struct {
        float a0, b0, a1;
        uint32_t want;
    } cases[] = {
        {-0x3p-76f, 0x1p-76f, 0x1p-63f, 0x00000000u},  /* FLT_MIN - 3 * 2^-152: flushed, +0 */
        {0x3p-76f, 0x1p-76f, -0x1p-63f, 0x80000000u},  /* its negative: -0 */
        {-0x1p-76f, 0x1p-76f, 0x1p-63f, 0x00800000u},  /* FLT_MIN - 2^-152: rounds to FLT_MIN */
        {-0x1p-70f, 0x1p-76f, 0x1p-63f, 0x00000000u},  /* FLT_MIN - 2^-146: subnormal, flushed */
        {-0x1p-75f, 0x1p-75f, 0x1p-63f, 0x00000000u},  /* FLT_MIN - 2^-150 exactly: tiny, flushed */
        {-0x1p-76f, 0x1p-75f, 0x1p-63f, 0x00800000u},  /* FLT_MIN - 2^-151: a tie, rounds to FLT_MIN */
    };
    FOR_TIERS(t) {
        for (size_t i = 0; i < CPHIL_ARRAY_LEN(cases); i++) {
            const float A[2] = {cases[i].a0, cases[i].a1}, B[2] = {cases[i].b0, 0x1p-63f};
            float C = 1.0f;
            cphil_gemm(CPHIL_PREC_BF16, false, false, 1, 1, 2, 1.0f, A, 2, B, 1, 0.0f, &C, 1);
            uint32_t got;
            memcpy(&got, &C, 4);
            CHECK_MSG(got == cases[i].want, "tier %d case %zu: %08x, want %08x", t, i, got, cases[i].want);
        }
    }
    cphil_isa_set(cphil_isa_default());
}

/* bf16 against f32: relative to sum |a||b|, within 2 * 2^-8 (two operand roundings). */
TEST(gemm_bf16_vs_f32) {
    int M = 64, N = 48, K = 300;
    float *A = rand_buf((size_t)M * K), *B = rand_buf((size_t)K * N), *Z = cphil_calloc((size_t)M * N, 4);
    float *c32 = gemm_run(CPHIL_PREC_F32, false, true, M, N, K, A, B, Z, 0.0f);
    float *c16 = gemm_run(CPHIL_PREC_BF16, false, true, M, N, K, A, B, Z, 0.0f);
    double worst = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double mag = 0;
            for (int k = 0; k < K; k++) mag += fabs((double)A[i * K + k] * B[j * K + k]);
            double e = fabs((double)c32[i * N + j] - c16[i * N + j]) / (1.25 * mag);
            if (e > worst) worst = e;
        }
    cphil_free(A); cphil_free(B); cphil_free(Z); cphil_free(c32); cphil_free(c16);
    CHECK_MSG(worst <= 2.0 / 256, "bf16 vs f32 relative error %g", worst);
    CHECK(worst > 0); /* bf16 really rounds */
}


/* ---- inference kernels --------------------------------------------------------------------- */
static long g_allocs;
static void *count_alloc(size_t size, size_t align, void *user) {
    (void)user;
    g_allocs++;
    void *p = NULL;
    return posix_memalign(&p, align, size ? size : 1) == 0 ? p : NULL;
}
static void count_free(void *p, void *user) { (void)user; free(p); }

/* ---- inference products on 16-row panels (panel.h) ------------------------------------------ */
static void pmat_case(cphil_wtype dt, int rows, int cols, int M, int beta, int with_bias, float *maxerr) {
    float *w = malloc(sizeof(float) * rows * cols), *b = malloc(sizeof(float) * rows);
    float *x = malloc(sizeof(float) * M * (cols + 3)), *y0 = malloc(sizeof(float) * M * rows),
          *y1 = malloc(sizeof(float) * M * rows);
    for (int i = 0; i < rows * cols; i++) w[i] = frand();
    for (int i = 0; i < rows; i++) b[i] = frand();
    for (int i = 0; i < M * (cols + 3); i++) x[i] = frand() * 3.f;
    cphil_pmat m;
    if (cphil_pmat_pack(&m, rows, cols, w, with_bias ? b : NULL, dt)) abort();
    void *scr_raw = malloc(cphil_pmat_scratch_bytes(M, m.kp) + 64);
    void *scr = (void *)(((uintptr_t)scr_raw + 63) & ~(uintptr_t)63);
    for (int isa = CPHIL_ISA_SCALAR; isa <= (int)cphil_pmat_isa_best(); isa++) {
        for (int i = 0; i < M * rows; i++) y0[i] = y1[i] = 0.5f;
        cphil_isa_set(CPHIL_ISA_SCALAR);
        cphil_pmat_gemm(&m, M, x, cols + 3, y0, rows, beta, scr);
        cphil_isa_set((cphil_isa)isa);
        cphil_pmat_gemm(&m, M, x, cols + 3, y1, rows, beta, scr);
        for (int i = 0; i < M * rows; i++) {
            /* int8: the integer sums are identical, so every tier must give the same bits */
            float e = dt == CPHIL_W_I8 ? (y0[i] == y1[i] ? 0.f : INFINITY) : fabsf(y0[i] - y1[i]) / (1.f + fabsf(y0[i]));
            if (e > *maxerr) *maxerr = e;
        }
    }
    cphil_isa_set(cphil_isa_default());
    cphil_pmat_free(&m);
    free(scr_raw);
    free(w); free(b); free(x); free(y0); free(y1);
}

TEST(pmat_vs_ref_every_tier_ragged) {
    int rows_l[] = {1, 5, 16, 17, 33, 64, 70};
    int cols_l[] = {1, 3, 4, 7, 32, 65};
    for (int dt = 0; dt < 3; dt++) {
        float maxerr = 0.f;
        for (size_t a = 0; a < CPHIL_ARRAY_LEN(rows_l); a++)
            for (size_t c = 0; c < CPHIL_ARRAY_LEN(cols_l); c++)
                for (int M = 1; M <= 8; M++) pmat_case((cphil_wtype)dt, rows_l[a], cols_l[c], M, (int)(a & 1), (int)(c & 1), &maxerr);
        /* int8 accumulates exactly (== above); f32/bf16 differ by FMA rounding and summation order */
        CHECK_MSG(dt == CPHIL_W_I8 ? maxerr == 0.f : maxerr < 2e-5f, "dtype %d: max relative error %g", dt, maxerr);
    }
}

/* The test's own activation quantizer, written from panel.h's contract and sharing no code
 * with src/kernels: dynamic scale max|x|/127 (1 for an all-zero row) or the static one; q =
 * clamp(round-half-even(x / scale), -127, 127), computed in double (x / scale is then exact
 * enough that a tie is a tie). */
static float spec_quant_row(const float *x, int n, float act_scale, int8_t *q) {
    double sc = act_scale;
    if (!(act_scale > 0.f)) {
        double amax = 0;
        for (int k = 0; k < n; k++) amax = fabs((double)x[k]) > amax ? fabs((double)x[k]) : amax;
        sc = amax > 0 ? (double)(float)(amax / 127.0) : 1.0;
    }
    for (int k = 0; k < n; k++) {
        double v = (double)x[k] / sc, r = floor(v), d = v - r;
        if (d > 0.5 || (d == 0.5 && fmod(r, 2.0) != 0)) r += 1; /* half to even */
        q[k] = (int8_t)(r > 127 ? 127 : r < -127 ? -127 : r);
    }
    return (float)sc;
}

/* The _ref twin against plain double math on the unpacked weights (cphil_pmat_row: the values
 * the kernels multiply), with bf16 inputs rounded and int8 inputs quantized as the contract says;
 * static and dynamic int8 scales, an all-zero input row, M = 60; and no allocation per call on
 * any tier. */
TEST(pmat_ref_vs_unpacked_math_no_alloc) {
    const int rows = 37, cols = 45, M = 60, ldx = 47;
    float *w = rand_buf((size_t)rows * cols), *b = rand_buf((size_t)rows), *x = rand_buf((size_t)M * ldx);
    float *y = cphil_alloc(sizeof(float) * M * rows), *wr = cphil_alloc(sizeof(float) * cols);
    for (int k = 0; k < cols; k++) x[(size_t)3 * ldx + k] = 0.f; /* row 3 all zero */
    void *scr = cphil_alloc(cphil_pmat_scratch_bytes(M, (cols + 3) & ~3));
    int8_t xq[64];
    for (int dt = 0; dt < 3; dt++)
        for (int st = 0; st < (dt == CPHIL_W_I8 ? 2 : 1); st++) {
            cphil_pmat m;
            CHECK(cphil_pmat_pack(&m, rows, cols, w, b, (cphil_wtype)dt) == CPHIL_OK);
            m.act_scale = st ? 0.01f : 0.f; /* static: clamps most inputs (|x| < 1 -> |x/s| < 100) */
            cphil_allocator ca = {count_alloc, count_free, NULL};
            for (int isa = CPHIL_ISA_SCALAR; isa <= (int)cphil_pmat_isa_best(); isa++) {
                cphil_isa_set((cphil_isa)isa);
                cphil_set_allocator(&ca);
                g_allocs = 0;
                cphil_pmat_gemm(&m, M, x, ldx, y, rows, 0, scr);
                cphil_set_allocator(NULL);
                CHECK_MSG(g_allocs == 0, "cphil_pmat_gemm allocated %ld times (tier %d)", g_allocs, isa);
            }
            cphil_isa_set(CPHIL_ISA_SCALAR);
            cphil_pmat_gemm(&m, M, x, ldx, y, rows, 0, scr);
            cphil_isa_set(cphil_isa_default());
            double worst = 0;
            for (int mm = 0; mm < M; mm++) {
                const float *xr = x + (size_t)mm * ldx;
                float xs = 1.f;
                if (dt == CPHIL_W_I8) xs = spec_quant_row(xr, cols, m.act_scale, xq);
                for (int r = 0; r < rows; r++) {
                    cphil_pmat_row(&m, r, wr);
                    double acc = 0, mag = 0;
                    for (int k = 0; k < cols; k++) {
                        double xv = dt == CPHIL_W_F32 ? xr[k]
                                    : dt == CPHIL_W_BF16 ? (double)cphil_pmat_bf16_to_f32(cphil_pmat_bf16(xr[k]))
                                                         : (double)xq[k] * xs;
                        acc += (double)wr[k] * xv;
                        mag += fabs((double)wr[k] * xv);
                    }
                    double e = fabs(acc + b[r] - y[(size_t)mm * rows + r]) / (1.0 + mag + fabs(b[r]));
                    if (e > worst) worst = e;
                    if (mm == 3) CHECK(y[(size_t)mm * rows + r] == b[r]); /* zero row: bias only */
                }
            }
            CHECK_MSG(worst < 1e-6, "type %d static %d: ref vs unpacked math %g", dt, st, worst);
            cphil_pmat_free(&m);
        }
    cphil_free(w); cphil_free(b); cphil_free(x); cphil_free(y); cphil_free(wr); cphil_free(scr);
}

TEST(pmat_int8_quantization_error_small) {
    /* the quantized product is close to the f32 one (relative to the output's scale) */
    int rows = 64, cols = 256;
    float *w = malloc(sizeof(float) * rows * cols), x[256], y0[64], y1[64];
    for (int i = 0; i < rows * cols; i++) w[i] = frand();
    for (int i = 0; i < cols; i++) x[i] = frand();
    cphil_pmat a, b;
    CHECK(cphil_pmat_pack(&a, rows, cols, w, NULL, CPHIL_W_F32) == CPHIL_OK);
    CHECK(cphil_pmat_pack(&b, rows, cols, w, NULL, CPHIL_W_I8) == CPHIL_OK);
    static _Alignas(64) unsigned char scr[1 << 16];
    cphil_pmat_gemm(&a, 1, x, cols, y0, rows, 0, scr);
    cphil_pmat_gemm(&b, 1, x, cols, y1, rows, 0, scr);
    double num = 0, den = 0;
    for (int i = 0; i < rows; i++) {
        num += (y0[i] - y1[i]) * (y0[i] - y1[i]);
        den += y0[i] * y0[i];
    }
    cphil_pmat_free(&a);
    cphil_pmat_free(&b);
    free(w);
    CHECK_MSG(sqrt(num / den) < 0.02, "relative rms error %g", sqrt(num / den));
}

/* A panel view's product equals the columns of the full product it covers (every tier and
 * precision, ragged rows and cols, bias, a last partial panel, an empty range). */
TEST(pmat_view_panels_equals_full_product_columns) {
    enum { ROWS = 53, COLS = 37, M = 5 };
    static float w[ROWS * COLS], b[ROWS], x[M * COLS], yf[M * ROWS], yv[M * ROWS];
    for (int i = 0; i < ROWS * COLS; i++) w[i] = frand();
    for (int i = 0; i < ROWS; i++) b[i] = frand();
    for (int i = 0; i < M * COLS; i++) x[i] = frand() * 2.f;
    void *scr = cphil_alloc(cphil_pmat_scratch_bytes(M, 40));
    static const int ranges[][2] = {{0, 4}, {1, 3}, {2, 4}, {3, 9}, {2, 2}};
    for (int dt = 0; dt < 3; dt++) {
        cphil_pmat m;
        CHECK(cphil_pmat_pack(&m, ROWS, COLS, w, b, (cphil_wtype)dt) == CPHIL_OK);
        for (int isa = CPHIL_ISA_SCALAR; isa <= (int)cphil_pmat_isa_best(); isa++) {
            cphil_isa_set((cphil_isa)isa);
            cphil_pmat_gemm(&m, M, x, COLS, yf, ROWS, 0, scr);
            for (size_t r = 0; r < CPHIL_ARRAY_LEN(ranges); r++) {
                int p0 = ranges[r][0], p1 = ranges[r][1];
                cphil_pmat v = cphil_pmat_view_panels(&m, p0, p1);
                int c0 = 16 * p0, want = (p1 > 4 ? 4 : p1) * 16;
                want = (want > ROWS ? ROWS : want) - c0;
                CHECK_EQ_INT(v.rows, want > 0 ? want : 0);
                for (int i = 0; i < M * ROWS; i++) yv[i] = 1234.f;
                if (v.rows > 0) cphil_pmat_gemm(&v, M, x, COLS, yv + c0, ROWS, 0, scr);
                for (int i = 0; i < M; i++)
                    for (int c = 0; c < ROWS; c++) {
                        bool in = c >= c0 && c < c0 + v.rows;
                        float e = in ? yf[i * ROWS + c] : 1234.f;
                        /* int8: the same bits; f32/bf16 allowed the kernels' summation order */
                        float tol = in && dt != CPHIL_W_I8 ? 1e-6f * (1.f + fabsf(e)) : 0.f;
                        CHECK_MSG(fabsf(yv[i * ROWS + c] - e) <= tol, "dtype %d tier %d view [%d,%d) row %d col %d: %g vs %g", dt, isa,
                                  p0, p1, i, c, yv[i * ROWS + c], e);
                    }
            }
        }
        cphil_isa_set(cphil_isa_default());
        cphil_pmat_free(&m);
    }
    cphil_free(scr);
}

/* int8 packing of extreme rows (issue 13, C9: an int8 file with scales of 3e38 dequantized to
 * infinities, which the packing turned into NaN and out-of-range integer conversions): a weight
 * that is not finite is refused, near-FLT_MAX and subnormal rows pack to finite scales and
 * in-range values */
TEST(pmat_pack_int8_extreme_rows) {
    float w[3 * 5] = {1.f, -2.f, 0.5f, 0.f, 3.f,   3e38f, -3.3e38f, 1e38f, 0.f, 2e37f,   1e-44f, -3e-45f, 0.f, 1e-45f, 0.f};
    cphil_pmat m;
    CHECK(cphil_pmat_pack(&m, 3, 5, w, NULL, CPHIL_W_I8) == CPHIL_OK);
    float row[5];
    for (int r = 0; r < 3; r++) {
        CHECK(isfinite(m.scale[r]) && m.scale[r] > 0.f);
        cphil_pmat_row(&m, r, row);
        for (int k = 0; k < 5; k++) CHECK_MSG(isfinite(row[k]), "row %d col %d: %g", r, k, row[k]);
    }
    cphil_pmat_row(&m, 1, row);
    CHECK(fabsf(row[1] + 3.3e38f) <= 3.3e38f / 127); /* the extreme row keeps its values */
    int32_t s1 = 0;
    for (int k = 0; k < 5; k++) s1 += ((const int8_t *)m.w)[(k / 4) * 64 + 1 * 4 + k % 4];
    CHECK_EQ_INT(m.rowsum[1], s1);
    cphil_pmat_free(&m);
    const float bad[3] = {INFINITY, -INFINITY, NAN};
    for (int i = 0; i < 3; i++) {
        w[7] = bad[i];
        CHECK_EQ_INT(cphil_pmat_pack(&m, 3, 5, w, NULL, CPHIL_W_I8), CPHIL_E_NUMERIC);
        CHECK(strstr(cphil_last_error(), "[1][2]") != NULL);
        CHECK(m.w == NULL && m.scale == NULL);
    }
}

TEST(pmat_quant_row_vs_ref) {
    float x[77];
    int8_t a[77], b[77];
    FOR_TIERS(t) {
        for (int n = 1; n <= 77; n += 4) {
            for (int i = 0; i < n; i++) x[i] = frand() * 5.f;
            x[0] = 127.5f * 0.04f;                 /* clamped in the static case */
            if (n > 3) x[3] = -2.5f * 0.04f;       /* a tie (half to even) in the static case */
            if (n > 9) x[9] = 6.5f * 0.04f;
            for (int st = 0; st < 2; st++) {
                float s0 = cphil_pmat_quant_row_ref(x, n, st ? 0.04f : 0.f, a);
                float s1 = cphil_pmat_quant_row(x, n, st ? 0.04f : 0.f, b);
                CHECK_MSG(s0 == s1, "tier %d n %d: scale %g vs %g", t, n, s0, s1);
                CHECK_MSG(memcmp(a, b, (size_t)n) == 0, "tier %d n %d static %d: bytes differ", t, n, st);
                int8_t c[77];
                float s2 = spec_quant_row(x, n, st ? 0.04f : 0.f, c);
                CHECK_MSG(s2 == s1 && memcmp(c, b, (size_t)n) == 0, "tier %d n %d static %d: differs from the contract",
                          t, n, st);
            }
        }
        for (int i = 0; i < 20; i++) x[i] = 0.f; /* an all-zero row: scale 1 */
        CHECK(cphil_pmat_quant_row(x, 20, 0.f, b) == 1.f);
    }
    cphil_isa_set(cphil_isa_default());
}

TEST(gather_add_every_tier) {
    static const int widths[] = {1, 17, 64, 257};
    FOR_TIERS(t) {
        for (int ty = 0; ty < 3; ty++)
            for (int wi = 0; wi < 4; wi++) {
                int out = widths[wi], ncols = 37, col0 = 5, ldw = col0 + ncols + 2;
                float *W = rand_buf((size_t)out * ldw);
                cphil_gtable g;
                CHECK(cphil_gtable_init(&g, (cphil_wtype)ty, W, out, ldw, col0, ncols) == CPHIL_OK);
                int32_t ids[70];
                for (int i = 0; i < 70; i++) ids[i] = col0 + (i * 13) % ncols;
                ids[3] = 2;            /* invalid: below col0 */
                ids[9] = col0 + ncols; /* invalid: past the end */
                float *y1 = rand_buf((size_t)out + 1), *y2 = cphil_alloc((size_t)out * 4 + 68), *yd = cphil_alloc((size_t)out * 4 + 68);
                memcpy(y2, y1, (size_t)(out + 1) * 4);
                memcpy(yd, y1, (size_t)(out + 1) * 4);
                cphil_allocator ca = {count_alloc, count_free, NULL};
                g_allocs = 0;
                cphil_set_allocator(&ca);
                int b1 = cphil_gather_add(&g, 70, ids, y1);
                cphil_set_allocator(NULL);
                int b2 = cphil_gather_add_ref(&g, 70, ids, y2);
                CHECK_EQ_INT(b1, 2);
                CHECK_EQ_INT(b2, 2);
                CHECK(g_allocs == 0);
                CHECK_MSG(!memcmp(y1, y2, (size_t)(out + 1) * 4), "tier %d type %d width %d: gather differs from ref", t, ty, out);
                /* against the f32 columns */
                for (int o = 0; o < out; o++) {
                    double d = yd[o];
                    for (int i = 0; i < 70; i++)
                        if (i != 3 && i != 9) d += W[(size_t)o * ldw + ids[i]];
                    double tol = ty == CPHIL_W_F32 ? 1e-4 : (ty == CPHIL_W_BF16 ? 70 * 4e-3 : 70 * 0.5 / 127 + 1e-4);
                    CHECK_NEAR(y1[o], d, tol, 0);
                }
                CHECK_EQ_INT(cphil_gather_add(&g, 0, ids, y1), 0);
                cphil_gtable_free(&g);
                cphil_free(W); cphil_free(y1); cphil_free(y2); cphil_free(yd);
            }
    }
    cphil_isa_set(cphil_isa_default());
}


TEST(gemm_beta0_ignores_nan) {
    float A[6] = {1, 2, 3, 4, 5, 6}, B[6] = {1, 0, 0, 1, 1, 1}, C[4];
    for (int i = 0; i < 4; i++) C[i] = NAN;
    cphil_gemm(CPHIL_PREC_F32, false, false, 2, 2, 3, 1.0f, A, 3, B, 2, 0.0f, C, 2);
    CHECK(C[0] == 4 && C[1] == 5 && C[2] == 10 && C[3] == 11);
}

/* The AVX2 bf16 packing primitives against cphil_bf16_from_f32, value by value: ties both ways,
 * subnormals and zeros of both signs, infinities, NaNs, the largest finite values (which round
 * to infinity), random values; every length 0..40 so that every tail runs. */
TEST(bf16_prims_avx2_match_scalar) {
    if (!cphil_isa_supported(CPHIL_ISA_AVX2)) {
        printf("# skip: no AVX2 on this CPU\n");
        return;
    }
    enum { N = 40 };
    static const uint32_t special[] = {0x00000000u, 0x80000000u, 0x00000001u, 0x807fffffu, 0x00800000u,
                                       0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc00001u, 0x7f800001u,
                                       0x7f7fffffu, 0xff7fffffu, 0x3f808000u, 0x3f818000u, 0x3f80ffffu,
                                       0x3f807fffu, 0xbf808000u, 0x33800000u};
    float src0[N + 1], src1[N + 1];
    for (int i = 0; i < N + 1; i++) {
        uint32_t u0 = i < (int)CPHIL_ARRAY_LEN(special) ? special[i] : (uint32_t)(g_rng >> 7);
        frand();
        uint32_t u1 = special[(i * 7) % CPHIL_ARRAY_LEN(special)] ^ (i & 1 ? 0u : (uint32_t)(g_rng & 0xffff));
        memcpy(&src0[i], &u0, 4);
        memcpy(&src1[i], &u1, 4);
    }
    for (int n = 0; n <= N; n++) {
        uint32_t got[N], want[N];
        memset(got, 0xab, sizeof got);
        cphil_bf16_pairs_avx2(src0, n, got);
        for (int p = 0; 2 * p < n; p++)
            want[p] = (uint32_t)cphil_bf16_from_f32(src0[2 * p]) |
                      (2 * p + 1 < n ? (uint32_t)cphil_bf16_from_f32(src0[2 * p + 1]) << 16 : 0u);
        for (int p = 0; 2 * p < n; p++) CHECK_MSG(got[p] == want[p], "pairs n=%d p=%d: %08x vs %08x", n, p, got[p], want[p]);
        CHECK_MSG(n == N || got[(n + 1) / 2] == 0xababababu, "pairs n=%d wrote past its end", n);
        for (int k = 0; k < 2; k++) {
            memset(got, 0xab, sizeof got);
            cphil_bf16_inter_avx2(src0, k ? src1 : NULL, n, got);
            for (int j = 0; j < n; j++) {
                uint32_t w = (uint32_t)cphil_bf16_from_f32(src0[j]) | (k ? (uint32_t)cphil_bf16_from_f32(src1[j]) << 16 : 0u);
                CHECK_MSG(got[j] == w, "inter n=%d j=%d r1=%d: %08x vs %08x", n, j, k, got[j], w);
            }
            CHECK_MSG(n == N || got[n] == 0xababababu, "inter n=%d wrote past its end", n);
        }
    }
}

TEST(bf16_rounding) {
    CHECK(cphil_bf16_from_f32(1.0f) == 0x3f80);
    CHECK(cphil_bf16_round(1.0f + 1.0f / 256) == 1.0f);            /* tie to even (down) */
    CHECK(cphil_bf16_round(1.0f + 3.0f / 256) == 1.0f + 4.0f / 256); /* tie to even (up) */
    CHECK(cphil_bf16_round(1e-40f) == 0.0f);
    CHECK(isnan(cphil_bf16_round(NAN)));
    CHECK(isinf(cphil_bf16_round(3.4e38f)));
}

TEST(isa_force) {
    cphil_isa best = cphil_isa_best();
    CHECK(cphil_isa_set(CPHIL_ISA_SCALAR) == CPHIL_OK);
    CHECK(cphil_isa_active() == CPHIL_ISA_SCALAR);
    for (int i = (int)best + 1; i <= 2; i++) CHECK(cphil_isa_set((cphil_isa)i) == CPHIL_E_UNSUPPORTED);
    CHECK(cphil_isa_set(best) == CPHIL_OK);
    CHECK(strlen(cphil_isa_describe()) > 10);
    CHECK(cphil_isa_set(cphil_isa_default()) == CPHIL_OK);
}

int main(void) {
    tiers_init();
    RUN(gemm_vs_ref_every_tier);
    RUN(pool_grows_between_jobs);
    RUN(gemm_threads_identical_bits);
    RUN(gemm_bf16_exact_across_tiers);
    RUN(gemm_bf16_vs_f32);
    RUN(pmat_vs_ref_every_tier_ragged);
    RUN(pmat_ref_vs_unpacked_math_no_alloc);
    RUN(pmat_int8_quantization_error_small);
    RUN(pmat_pack_int8_extreme_rows);
    RUN(pmat_quant_row_vs_ref);
    RUN(pmat_view_panels_equals_full_product_columns);
    RUN(gather_add_every_tier);
    RUN(gemm_beta0_ignores_nan);
    RUN(gemm_bf16_flush_at_flt_min);
    RUN(bf16_prims_avx2_match_scalar);
    RUN(bf16_rounding);
    RUN(isa_force);
    return harness_done();
}
