/* nn_fastmath.h — branch-free f32 exp, tanh and sigmoid that compilers can vectorize (libm's
 * expf/tanhf are calls, which keep the LSTM/GRU cells, softmax and the Mamba scan scalar).
 * Accuracy: exp within ~2 ulp on [-87, 88] (Cephes expf: range reduction by ln 2 in two parts,
 * degree-6 polynomial, exponent built from bits), tanh within ~3e-7 absolute (Cephes tanhf odd
 * polynomial below |x| 0.625, (1 - e)/(1 + e) with e = exp(-2|x|) above); below -87.3 exp returns
 * 2^-126 instead of a subnormal or 0 (harmless where it is used: every caller adds it to
 * something of order 1 or multiplies a state by it). Used only by the f32 build of nn_impl.h;
 * the f64 build keeps libm (finite-difference checks need the exact functions).
 * Measured against double libm on 4 M points: exp relative 8.2e-8 on [-87, 88], tanh absolute
 * 8.9e-8 on [-30, 30]; tests/test_nn.c (fast_exp_tanh_match_libm) asserts 3e-7. The GPU twins
 * (src/kernels/cuda/cu_util.cuh) copy these formulas, so they are not to be changed alone. The
 * inference engine has its own SIMD library (src/infer/infer_kern.h); there is no third.
 */
#ifndef CPHIL_NN_FASTMATH_H
#define CPHIL_NN_FASTMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float cphil_fast_expf(float x) {
    x = x < -87.3f ? -87.3f : x;
    x = x > 88.3f ? 88.3f : x;
    /* n = round(x / ln 2) by the 1.5 * 2^23 trick (floorf would be a call and block vectorizing) */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { int32_t i; float f; } u; /* 2^n from the exponent bits (C11 allows the pun) */
    u.i = ((int32_t)n + 127) << 23;
    return p * u.f;
}

static inline float cphil_fast_tanhf(float x) {
    float a = fabsf(x);
    float e = cphil_fast_expf(-2.0f * a);
    float big = (1.0f - e) / (1.0f + e);
    big = x < 0 ? -big : big;
    float z = x * x;
    float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
                    1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
    return a < 0.625f ? small : big;
}

#endif
