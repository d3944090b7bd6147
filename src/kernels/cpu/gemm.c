/* gemm.c — cphil_gemm, the training matrix product: C = alpha op(A) op(B) + beta C.
 *
 * Interim version: a correct blocked scalar implementation with the final numerical contract
 * (f32 accumulation; bf16 pairs reduced as vdpbf16ps does). The packed, register-blocked SIMD
 * version replaces the inner loops without changing the API.
 */
#include "kernels/cpu/kernels.h"

#include <math.h>
#include <string.h>

static int g_threads = 1;

void cphil_threads_set(int n) { g_threads = n < 1 ? 1 : (n > 64 ? 64 : n); }
int cphil_threads_get(void) { return g_threads; }

static float ftz(float x) { return fabsf(x) < 1.17549435e-38f ? copysignf(0.0f, x) : x; }

void cphil_gemm(cphil_precision prec, bool trans_a, bool trans_b, int M, int N, int K,
                float alpha, const float *A, int lda, const float *B, int ldb,
                float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float acc = 0.0f;
            if (prec == CPHIL_PREC_BF16) {
                for (int k = 0; k < K; k += 2) {
                    float a0 = cphil_bf16_round(trans_a ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]);
                    float b0 = cphil_bf16_round(trans_b ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
                    float a1 = 0, b1 = 0;
                    if (k + 1 < K) {
                        a1 = cphil_bf16_round(trans_a ? A[(size_t)(k + 1) * lda + i] : A[(size_t)i * lda + k + 1]);
                        b1 = cphil_bf16_round(trans_b ? B[(size_t)j * ldb + k + 1] : B[(size_t)(k + 1) * ldb + j]);
                    }
                    acc = ftz(acc + a1 * b1);
                    acc = ftz(acc + a0 * b0);
                }
            } else {
                for (int k = 0; k < K; k++) {
                    float a = trans_a ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                    float b = trans_b ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                    acc += a * b;
                }
            }
            float *c = &C[(size_t)i * ldc + j];
            *c = beta == 0.0f ? alpha * acc : alpha * acc + beta * *c;
        }
}
