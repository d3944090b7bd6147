/* infer_kern_avx2.c — AVX2/FMA versions of the Mamba step's fused scan (infer_ssm_gated) for CPUs
 * without the AVX-512 tier: 8 channels at a time, the same formulas as the AVX-512 kernel
 * (2^x by a degree-6 polynomial on [-1/2, 1/2] and an exponent built in the integer unit; log1p
 * as s (2 + q P(q)); silu with 2^x). Twin: infer_ssm_gated_ref (infer_kern.c). Does not: the other
 * activations (the AVX2 tier uses their scalar twins).
 */
#include "infer/infer_kern.h"

#include <immintrin.h>

#define AI static inline __attribute__((always_inline))

/* 2^y: n = round(y) (y clamped at -127: 2^-127 and below give 0), f = y - n, 2^f = 1 + f P(f)
 * (the AVX-512 kernel's coefficients), times 2^n built as (n + 127) << 23 (n = -127: 0). */
AI __m256 exp2_256(__m256 y) {
    y = _mm256_max_ps(y, _mm256_set1_ps(-127.f));
    __m256 n = _mm256_round_ps(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 f = _mm256_sub_ps(y, n);
    __m256 p = _mm256_set1_ps(1.535335905e-4f);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.339887618e-3f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.618437849e-3f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.550332367e-2f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.402264774e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.931471825e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* exp(-a) for a >= 0 with ln 2 in two parts (keeps large a accurate): 2^(-a log2 e) where the
 * reduction uses n = round(a log2 e) and r = a - n ln2_hi - n ln2_lo. */
AI __m256 expneg256(__m256 a) {
    a = _mm256_min_ps(a, _mm256_set1_ps(87.f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(a, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), a);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r); /* r = a - n ln2, |r| <= ln2/2 */
    /* exp(-a) = 2^-n * exp(-r) = 2^-n * 2^(-r log2 e) */
    __m256 f = _mm256_mul_ps(r, _mm256_set1_ps(-1.44269504088896341f));
    __m256 p = _mm256_set1_ps(1.535335905e-4f);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.339887618e-3f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.618437849e-3f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.550332367e-2f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.402264774e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.931471825e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.f));
    __m256i e = _mm256_slli_epi32(_mm256_sub_epi32(_mm256_set1_epi32(127), _mm256_cvtps_epi32(n)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

AI __m256 softplus256(__m256 v) { /* x > 20 -> x (PyTorch) */
    __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.f), v);
    __m256 u = expneg256(ax);
    __m256 s = _mm256_div_ps(u, _mm256_add_ps(u, _mm256_set1_ps(2.f)));
    __m256 q = _mm256_mul_ps(s, s);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(2.801174521e-1f), q, _mm256_set1_ps(2.800181508e-1f));
    p = _mm256_fmadd_ps(p, q, _mm256_set1_ps(4.002152681e-1f));
    p = _mm256_fmadd_ps(p, q, _mm256_set1_ps(6.666641831e-1f));
    __m256 l = _mm256_mul_ps(s, _mm256_fmadd_ps(q, p, _mm256_set1_ps(2.f)));
    __m256 r = _mm256_add_ps(_mm256_max_ps(v, _mm256_setzero_ps()), l);
    return _mm256_blendv_ps(r, v, _mm256_cmp_ps(v, _mm256_set1_ps(20.f), _CMP_GT_OQ));
}

AI __m256 silu256(__m256 z) { /* z / (1 + 2^(-z log2 e)), the power capped at 2^120 */
    __m256 y = _mm256_min_ps(_mm256_mul_ps(z, _mm256_set1_ps(-1.44269504088896341f)), _mm256_set1_ps(120.f));
    return _mm256_div_ps(z, _mm256_add_ps(exp2_256(y), _mm256_set1_ps(1.f)));
}

AI __m256 load8(const float *p, int r, __m256i lanes) {
    return r >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(r), lanes));
}
AI void store8(float *p, int r, __m256i lanes, __m256 v) {
    if (r >= 8) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(r), lanes), v);
}

void infer_ssm_gated_avx2(int I, int N, const float *A2, const float *dtr, const float *xc, const float *z,
                          const float *B, const float *C, const float *D, float *h, float *y) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int i = 0; i < I; i += 8) {
        int r = I - i;
        __m256 d = softplus256(load8(dtr + i, r, lanes)), x = load8(xc + i, r, lanes);
        __m256 g = silu256(load8(z + i, r, lanes));
        __m256 dx = _mm256_mul_ps(d, x), acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        int n = 0;
        for (; n + 2 <= N; n += 2) {
            float *h0 = h + (size_t)n * I + i, *h1 = h0 + I;
            const float *a0 = A2 + (size_t)n * I + i, *a1 = a0 + I;
            __m256 e0 = exp2_256(_mm256_mul_ps(d, load8(a0, r, lanes)));
            __m256 e1 = exp2_256(_mm256_mul_ps(d, load8(a1, r, lanes)));
            __m256 v0 = _mm256_fmadd_ps(e0, load8(h0, r, lanes), _mm256_mul_ps(dx, _mm256_set1_ps(B[n])));
            __m256 v1 = _mm256_fmadd_ps(e1, load8(h1, r, lanes), _mm256_mul_ps(dx, _mm256_set1_ps(B[n + 1])));
            store8(h0, r, lanes, v0);
            store8(h1, r, lanes, v1);
            acc0 = _mm256_fmadd_ps(v0, _mm256_set1_ps(C[n]), acc0);
            acc1 = _mm256_fmadd_ps(v1, _mm256_set1_ps(C[n + 1]), acc1);
        }
        if (n < N) {
            float *h0 = h + (size_t)n * I + i;
            __m256 e0 = exp2_256(_mm256_mul_ps(d, load8(A2 + (size_t)n * I + i, r, lanes)));
            __m256 v0 = _mm256_fmadd_ps(e0, load8(h0, r, lanes), _mm256_mul_ps(dx, _mm256_set1_ps(B[n])));
            store8(h0, r, lanes, v0);
            acc0 = _mm256_fmadd_ps(v0, _mm256_set1_ps(C[n]), acc0);
        }
        __m256 acc = _mm256_fmadd_ps(load8(D + i, r, lanes), x, _mm256_add_ps(acc0, acc1));
        store8(y + i, r, lanes, _mm256_mul_ps(acc, g));
    }
}
