/* gemm_ref.c — the scalar twins of the training matrix product and the bf16 conversions.
 *
 * cphil_gemm_ref states the semantics of cphil_gemm in plain loops (double accumulation); it
 * is deliberately slow and simple. The bf16 rounding here (round-to-nearest-even, subnormals to
 * signed zero, NaN kept quiet) is the one every path uses, matching vcvtneps2bf16.
 * Reference: BLAS sgemm argument conventions (row-major variant), Intel SDM for the bf16 forms.
 */
#include "kernels/cpu/kernels.h"

#include <string.h>

uint16_t cphil_bf16_from_f32(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);        /* 0, subnormal */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* cphil_bf16_to_f32 is defined once, in src/core/safetensors.c (same declaration). */

float cphil_bf16_round(float x) { return cphil_bf16_to_f32(cphil_bf16_from_f32(x)); }

void cphil_gemm_ref(cphil_precision prec, bool trans_a, bool trans_b, int M, int N, int K,
                    float alpha, const float *A, int lda, const float *B, int ldb,
                    float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double acc = 0.0;
            for (int k = 0; k < K; k++) {
                float a = trans_a ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                float b = trans_b ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                if (prec == CPHIL_PREC_BF16) {
                    a = cphil_bf16_round(a);
                    b = cphil_bf16_round(b);
                }
                acc += (double)a * (double)b;
            }
            float *c = &C[(size_t)i * ldc + j];
            double v = (double)alpha * acc;
            if (beta != 0.0f) v += (double)beta * (double)*c;
            *c = (float)v;
        }
}
