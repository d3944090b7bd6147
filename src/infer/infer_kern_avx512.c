/* infer_kern_avx512.c — AVX-512 elementwise work of the inference engine: activations
 * (Cephes-style expf polynomials) and the Mamba selective-scan step. Twins: *_ref in
 * infer_kern.c. The matrix products are src/kernels/cpu/panel*.c.
 */
#include "infer/infer_kern.h"

#include <immintrin.h>

#define AI static inline __attribute__((always_inline))
/* ---- activations (Cephes expf / logf polynomials) ------------------------------------------ */
AI __m512 exp512(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500E-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507E-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073E-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894E-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459E-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201E-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.f)));
    return _mm512_scalef_ps(p, n);
}

AI __m512 log512(__m512 x) { /* x > 0 */
    __m512 e = _mm512_getexp_ps(x);
    __m512 m = _mm512_getmant_ps(x, _MM_MANT_NORM_p5_1, _MM_MANT_SIGN_src); /* [0.5, 1) */
    e = _mm512_add_ps(e, _mm512_set1_ps(1.f));
    __mmask16 small = _mm512_cmp_ps_mask(m, _mm512_set1_ps(0.707106781186547524f), _CMP_LT_OQ);
    m = _mm512_mask_add_ps(m, small, m, m);
    e = _mm512_mask_sub_ps(e, small, e, _mm512_set1_ps(1.f));
    __m512 t = _mm512_sub_ps(m, _mm512_set1_ps(1.f));
    __m512 z = _mm512_mul_ps(t, t);
    __m512 p = _mm512_set1_ps(7.0376836292E-2f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.1514610310E-1f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.1676998740E-1f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.2420140846E-1f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.4249322787E-1f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.6668057665E-1f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(2.0000714765E-1f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-2.4999993993E-1f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(3.3333331174E-1f));
    __m512 y = _mm512_mul_ps(_mm512_mul_ps(p, t), z);
    y = _mm512_fmadd_ps(e, _mm512_set1_ps(-2.12194440e-4f), y);
    y = _mm512_fnmadd_ps(z, _mm512_set1_ps(0.5f), y);
    __m512 r = _mm512_add_ps(t, y);
    return _mm512_fmadd_ps(e, _mm512_set1_ps(0.693359375f), r);
}

AI __m512 sigm512(__m512 x) {
    __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), x));
    return _mm512_div_ps(_mm512_set1_ps(1.f), _mm512_add_ps(_mm512_set1_ps(1.f), e));
}

#define ACT_LOOP(expr)                                                                         \
    int i = 0;                                                                                 \
    for (; i + 16 <= n; i += 16) {                                                             \
        __m512 v = _mm512_loadu_ps(x + i);                                                     \
        _mm512_storeu_ps(x + i, expr);                                                         \
    }                                                                                          \
    if (i < n) {                                                                               \
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1u);                                       \
        __m512 v = _mm512_maskz_loadu_ps(k, x + i);                                            \
        _mm512_mask_storeu_ps(x + i, k, expr);                                                 \
    }

void infer_vexp_avx512(float *x, int n) { ACT_LOOP(exp512(v)) }
void infer_vsigmoid_avx512(float *x, int n) { ACT_LOOP(sigm512(v)) }
void infer_vsilu_avx512(float *x, int n) { ACT_LOOP(_mm512_mul_ps(v, sigm512(v))) }
/* tanh(x) = 1 - 2 / (exp(2x) + 1); for |x| < 0.005 use x - x^3/3 (cancellation) */
AI __m512 tanh512(__m512 v) {
    __m512 e2 = exp512(_mm512_add_ps(v, v));
    __m512 t = _mm512_sub_ps(_mm512_set1_ps(1.f),
                             _mm512_div_ps(_mm512_set1_ps(2.f), _mm512_add_ps(e2, _mm512_set1_ps(1.f))));
    __m512 v3 = _mm512_mul_ps(_mm512_mul_ps(v, v), v);
    __m512 sm = _mm512_fnmadd_ps(v3, _mm512_set1_ps(1.f / 3.f), v);
    __mmask16 tiny = _mm512_cmp_ps_mask(_mm512_abs_ps(v), _mm512_set1_ps(0.005f), _CMP_LT_OQ);
    return _mm512_mask_blend_ps(tiny, t, sm);
}
void infer_vtanh_avx512(float *x, int n) { ACT_LOOP(tanh512(v)) }

/* The LSTM cell in one pass over 16 units at a time (the scalar twin is four passes). */
void infer_lstm_cell_avx512(float *g, const float *pre, float *h, float *c, int H, float *tmp) {
    (void)tmp;
    for (int j = 0; j < H; j += 16) {
        __mmask16 k = H - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (H - j)) - 1u);
        __m512 gi = _mm512_maskz_loadu_ps(k, g + j), gf = _mm512_maskz_loadu_ps(k, g + H + j);
        __m512 gg = _mm512_maskz_loadu_ps(k, g + 2 * H + j), go = _mm512_maskz_loadu_ps(k, g + 3 * H + j);
        if (pre) {
            gi = _mm512_add_ps(gi, _mm512_maskz_loadu_ps(k, pre + j));
            gf = _mm512_add_ps(gf, _mm512_maskz_loadu_ps(k, pre + H + j));
            gg = _mm512_add_ps(gg, _mm512_maskz_loadu_ps(k, pre + 2 * H + j));
            go = _mm512_add_ps(go, _mm512_maskz_loadu_ps(k, pre + 3 * H + j));
        }
        gi = sigm512(gi);
        gf = sigm512(gf);
        gg = tanh512(gg);
        go = sigm512(go);
        __m512 cn = _mm512_fmadd_ps(gf, _mm512_maskz_loadu_ps(k, c + j), _mm512_mul_ps(gi, gg));
        _mm512_mask_storeu_ps(c + j, k, cn);
        _mm512_mask_storeu_ps(h + j, k, _mm512_mul_ps(go, tanh512(cn)));
    }
}
void infer_vsoftplus_avx512(float *x, int n) {
    /* softplus(x) = max(x, 0) + log1p(exp(-|x|)); x > 20 -> x as in PyTorch */
    ACT_LOOP(({
        __m512 ax = _mm512_abs_ps(v);
        __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), ax));
        /* log1p(e) for e in (0, 1]: log(1 + e) with the rounding of 1 + e compensated */
        __m512 u = _mm512_add_ps(_mm512_set1_ps(1.f), e);
        __m512 l = log512(u);
        __m512 d = _mm512_sub_ps(u, _mm512_set1_ps(1.f));
        __mmask16 nz = _mm512_cmp_ps_mask(d, _mm512_setzero_ps(), _CMP_NEQ_OQ);
        l = _mm512_mask_mul_ps(e, nz, l, _mm512_div_ps(e, _mm512_mask_blend_ps(nz, _mm512_set1_ps(1.f), d)));
        __m512 r = _mm512_add_ps(_mm512_max_ps(v, _mm512_setzero_ps()), l);
        __mmask16 big = _mm512_cmp_ps_mask(v, _mm512_set1_ps(20.f), _CMP_GT_OQ);
        _mm512_mask_blend_ps(big, r, v);
    }))
}

void infer_ssm_step_avx512(int I, int N, const float *At, const float *dt, const float *xc, const float *B,
                           const float *C, const float *D, float *h, float *y) {
    for (int i = 0; i < I; i += 16) {
        __mmask16 k = I - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (I - i)) - 1u);
        __m512 d = _mm512_maskz_loadu_ps(k, dt + i), x = _mm512_maskz_loadu_ps(k, xc + i);
        __m512 dx = _mm512_mul_ps(d, x), acc = _mm512_setzero_ps();
        for (int n = 0; n < N; n++) {
            float *hn = h + (size_t)n * I + i;
            __m512 da = exp512(_mm512_mul_ps(d, _mm512_maskz_loadu_ps(k, At + (size_t)n * I + i)));
            __m512 hv = _mm512_fmadd_ps(da, _mm512_maskz_loadu_ps(k, hn), _mm512_mul_ps(dx, _mm512_set1_ps(B[n])));
            _mm512_mask_storeu_ps(hn, k, hv);
            acc = _mm512_fmadd_ps(hv, _mm512_set1_ps(C[n]), acc);
        }
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, D + i), x, acc);
        _mm512_mask_storeu_ps(y + i, k, acc);
    }
}

