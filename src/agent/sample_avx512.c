/* sample_avx512.c — AVX-512 Gumbel noise for the sampler (see sample.h): g = -log(-log(u)) on 8
 * doubles at a time. Twin: cphil_gumbel_f64_ref in sample.c (libm). Does not: the draws (the
 * sampler's xoshiro256**, scalar) or the argmax.
 * log(x) = e ln2 + log(m), m in [sqrt(2)/2, sqrt(2)) (vgetmantpd / vgetexppd), log(m) = 2 atanh(s),
 * s = (m - 1) / (m + 1), |s| <= 0.172: 2s + s q (2/3 + 2/5 q + ... + 2/21 q^9), q = s^2 (the
 * series' next term is below 1e-18 relative); ln 2 as a 32-bit head (e ln2_hi exact) and a tail.
 */
#include "agent/sample.h"

#include <immintrin.h>

#define AI static inline __attribute__((always_inline))

AI __m512d log_pd(__m512d x) { /* x > 0, normal */
    __m512d m = _mm512_getmant_pd(x, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);
    __m512d e = _mm512_getexp_pd(x);
    __mmask8 big = _mm512_cmp_pd_mask(m, _mm512_set1_pd(1.4142135623730951), _CMP_GT_OQ);
    m = _mm512_mask_mul_pd(m, big, m, _mm512_set1_pd(0.5));
    e = _mm512_mask_add_pd(e, big, e, _mm512_set1_pd(1.0));
    __m512d f = _mm512_sub_pd(m, _mm512_set1_pd(1.0));
    __m512d s = _mm512_div_pd(f, _mm512_add_pd(f, _mm512_set1_pd(2.0)));
    __m512d q = _mm512_mul_pd(s, s);
    __m512d p = _mm512_set1_pd(2.0 / 21.0);
    p = _mm512_fmadd_pd(p, q, _mm512_set1_pd(2.0 / 19.0));
    p = _mm512_fmadd_pd(p, q, _mm512_set1_pd(2.0 / 17.0));
    p = _mm512_fmadd_pd(p, q, _mm512_set1_pd(2.0 / 15.0));
    p = _mm512_fmadd_pd(p, q, _mm512_set1_pd(2.0 / 13.0));
    p = _mm512_fmadd_pd(p, q, _mm512_set1_pd(2.0 / 11.0));
    p = _mm512_fmadd_pd(p, q, _mm512_set1_pd(2.0 / 9.0));
    p = _mm512_fmadd_pd(p, q, _mm512_set1_pd(2.0 / 7.0));
    p = _mm512_fmadd_pd(p, q, _mm512_set1_pd(2.0 / 5.0));
    p = _mm512_fmadd_pd(p, q, _mm512_set1_pd(2.0 / 3.0));
    __m512d r = _mm512_fmadd_pd(e, _mm512_set1_pd(1.9082149292705877e-10), _mm512_mul_pd(_mm512_mul_pd(s, q), p));
    return _mm512_fmadd_pd(e, _mm512_set1_pd(0.6931471803691238), _mm512_add_pd(_mm512_add_pd(s, s), r));
}

void cphil_gumbel_f64_avx512(const double *u, double *g, int n) {
    for (int i = 0; i < n; i += 8) {
        __mmask8 k = n - i >= 8 ? (__mmask8)0xff : (__mmask8)((1u << (n - i)) - 1u);
        __m512d x = _mm512_mask_loadu_pd(_mm512_set1_pd(0.5), k, u + i); /* idle lanes: a valid u */
        __m512d e = _mm512_sub_pd(_mm512_setzero_pd(), log_pd(x));
        _mm512_mask_storeu_pd(g + i, k, _mm512_sub_pd(_mm512_setzero_pd(), log_pd(e)));
    }
}
