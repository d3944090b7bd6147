/* test_kernels.c — every fast kernel against its scalar twin, on ragged sizes, for every ISA
 * path the CPU has (forced in-process with cphil_isa_set). */
#include "harness.h"
#include "core/core.h"
#include "kernels/cpu/kernels.h"

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

TEST(gemm_vs_ref_small) {
    static const int sz[] = {1, 3, 15, 17, 33};
    for (int p = 0; p < 2; p++)
        for (int t = 0; t < 4; t++)
            for (int a = 0; a < 5; a++)
                for (int b = 0; b < 5; b += 2)
                    gemm_case((cphil_precision)p, t & 1, t >> 1, sz[a], sz[b], sz[(a + b) % 5], 0.7f, (t & 1) ? 0.0f : -1.3f);
}

TEST(gemm_beta0_ignores_nan) {
    float A[6] = {1, 2, 3, 4, 5, 6}, B[6] = {1, 0, 0, 1, 1, 1}, C[4];
    for (int i = 0; i < 4; i++) C[i] = NAN;
    cphil_gemm(CPHIL_PREC_F32, false, false, 2, 2, 3, 1.0f, A, 3, B, 2, 0.0f, C, 2);
    CHECK(C[0] == 4 && C[1] == 5 && C[2] == 10 && C[3] == 11);
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
}

int main(void) {
    RUN(gemm_vs_ref_small);
    RUN(gemm_beta0_ignores_nan);
    RUN(bf16_rounding);
    RUN(isa_force);
    return harness_done();
}
