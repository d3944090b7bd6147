/* infer_kern_avx512.c — AVX-512 kernels of the inference engine on the panel16 layout:
 * f32 (AVX-512F FMA), bf16 (AVX-512 BF16 vdpbf16ps), int8 (AVX-512 VNNI vpdpbusd, u8 x s8 with
 * the +128 offset removed through per-row sums). Twins: gemm_*_ref in infer_kern.c.
 * Blocking: MB input rows x PB panels of accumulators so that a batch-1 step (M = 1) still has
 * independent FMA chains. Does not: prefetching, multi-threading.
 */
#include "infer/infer_kern.h"

#include <immintrin.h>

#define AI static inline __attribute__((always_inline))

/* y[0..15] of panel p for input row mm: bias, beta, masked tail. */
AI void epilogue(const infer_kargs *a, int mm, int p, __m512 v) {
    const infer_mat *m = a->m;
    int r0 = p * INFER_PANEL;
    int n = m->rows - r0;
    __mmask16 k = n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u);
    float *y = a->Y + (size_t)mm * a->ldy + r0;
    if (m->bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, m->bias + r0));
    if (a->beta) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, y));
    _mm512_mask_storeu_ps(y, k, v);
}

/* ---- f32 ---------------------------------------------------------------------------------- */
AI void blk_f32(const infer_kargs *a, int m0, int p0, const int MB, const int PB) {
    const infer_mat *m = a->m;
    const int kp = m->kp;
    const float *x = (const float *)a->x + (size_t)m0 * a->ldx;
    const float *w = (const float *)m->w + (size_t)p0 * INFER_PANEL * kp;
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int i = 0; i < MB; i++)
#pragma GCC unroll 4
        for (int j = 0; j < PB; j++) acc[i][j] = _mm512_setzero_ps();
    for (int k = 0; k < kp; k++) {
        __m512 wv[4];
#pragma GCC unroll 4
        for (int j = 0; j < PB; j++) wv[j] = _mm512_load_ps(w + (size_t)j * INFER_PANEL * kp + (size_t)k * 16);
#pragma GCC unroll 4
        for (int i = 0; i < MB; i++) {
            __m512 xv = _mm512_set1_ps(x[(size_t)i * a->ldx + k]);
#pragma GCC unroll 4
            for (int j = 0; j < PB; j++) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < MB; i++)
#pragma GCC unroll 4
        for (int j = 0; j < PB; j++) epilogue(a, m0 + i, p0 + j, acc[i][j]);
}

void gemm_f32_avx512(const infer_kargs *a) {
    const int np = a->m->np;
    int m0 = 0;
    for (; m0 + 4 <= a->M; m0 += 4) {
        int p = 0;
        for (; p + 2 <= np; p += 2) blk_f32(a, m0, p, 4, 2);
        for (; p < np; p++) blk_f32(a, m0, p, 4, 1);
    }
    int rest = a->M - m0;
    if (!rest) return;
    int p = 0;
    for (; p + 4 <= np; p += 4) {
        if (rest == 1) blk_f32(a, m0, p, 1, 4);
        else if (rest == 2) blk_f32(a, m0, p, 2, 4);
        else blk_f32(a, m0, p, 3, 4);
    }
    for (; p < np; p++) {
        if (rest == 1) blk_f32(a, m0, p, 1, 1);
        else if (rest == 2) blk_f32(a, m0, p, 2, 1);
        else blk_f32(a, m0, p, 3, 1);
    }
}

/* ---- bf16 --------------------------------------------------------------------------------- */
AI void blk_bf16(const infer_kargs *a, int m0, int p0, const int MB, const int PB) {
    const infer_mat *m = a->m;
    const int kp = m->kp;
    const uint16_t *x = (const uint16_t *)a->x + (size_t)m0 * kp;
    const uint16_t *w = (const uint16_t *)m->w + (size_t)p0 * INFER_PANEL * kp;
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int i = 0; i < MB; i++)
#pragma GCC unroll 4
        for (int j = 0; j < PB; j++) acc[i][j] = _mm512_setzero_ps();
    for (int k2 = 0; k2 < kp / 2; k2++) {
        __m512i wv[4];
#pragma GCC unroll 4
        for (int j = 0; j < PB; j++)
            wv[j] = _mm512_load_si512((const void *)(w + (size_t)j * INFER_PANEL * kp + (size_t)k2 * 32));
#pragma GCC unroll 4
        for (int i = 0; i < MB; i++) {
            int32_t pair;
            __builtin_memcpy(&pair, x + (size_t)i * kp + 2 * k2, 4);
            __m512i xv = _mm512_set1_epi32(pair);
#pragma GCC unroll 4
            for (int j = 0; j < PB; j++)
                acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)xv, (__m512bh)wv[j]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < MB; i++)
#pragma GCC unroll 4
        for (int j = 0; j < PB; j++) epilogue(a, m0 + i, p0 + j, acc[i][j]);
}

void gemm_bf16_avx512(const infer_kargs *a) {
    const int np = a->m->np;
    int m0 = 0;
    for (; m0 + 4 <= a->M; m0 += 4) {
        int p = 0;
        for (; p + 2 <= np; p += 2) blk_bf16(a, m0, p, 4, 2);
        for (; p < np; p++) blk_bf16(a, m0, p, 4, 1);
    }
    int rest = a->M - m0;
    if (!rest) return;
    int p = 0;
    for (; p + 4 <= np; p += 4) {
        if (rest == 1) blk_bf16(a, m0, p, 1, 4);
        else if (rest == 2) blk_bf16(a, m0, p, 2, 4);
        else blk_bf16(a, m0, p, 3, 4);
    }
    for (; p < np; p++) {
        if (rest == 1) blk_bf16(a, m0, p, 1, 1);
        else if (rest == 2) blk_bf16(a, m0, p, 2, 1);
        else blk_bf16(a, m0, p, 3, 1);
    }
}

/* ---- int8 (VNNI) -------------------------------------------------------------------------- */
AI void blk_i8(const infer_kargs *a, int m0, int p0, const int MB, const int PB) {
    const infer_mat *m = a->m;
    const int kp = m->kp;
    const int8_t *x = (const int8_t *)a->x + (size_t)m0 * kp;
    const int8_t *w = (const int8_t *)m->w + (size_t)p0 * INFER_PANEL * kp;
    const __m512i off = _mm512_set1_epi32((int)0x80808080u);
    __m512i acc[4][8];
#pragma GCC unroll 8
    for (int i = 0; i < MB; i++)
#pragma GCC unroll 8
        for (int j = 0; j < PB; j++) acc[i][j] = _mm512_setzero_si512();
    for (int k4 = 0; k4 < kp / 4; k4++) {
        __m512i wv[8];
#pragma GCC unroll 8
        for (int j = 0; j < PB; j++)
            wv[j] = _mm512_load_si512((const void *)(w + (size_t)j * INFER_PANEL * kp + (size_t)k4 * 64));
#pragma GCC unroll 8
        for (int i = 0; i < MB; i++) {
            int32_t quad;
            __builtin_memcpy(&quad, x + (size_t)i * kp + 4 * k4, 4);
            __m512i xv = _mm512_xor_si512(_mm512_set1_epi32(quad), off); /* s8 -> u8 (+128) */
#pragma GCC unroll 8
            for (int j = 0; j < PB; j++) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], xv, wv[j]);
        }
    }
#pragma GCC unroll 8
    for (int j = 0; j < PB; j++) {
        int r0 = (p0 + j) * INFER_PANEL;
        __m512i corr = _mm512_slli_epi32(_mm512_loadu_si512((const void *)(m->rowsum + r0)), 7);
        __m512 sc = _mm512_loadu_ps(m->scale + r0);
#pragma GCC unroll 8
        for (int i = 0; i < MB; i++) {
            __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][j], corr));
            v = _mm512_mul_ps(v, _mm512_mul_ps(sc, _mm512_set1_ps(a->xs[m0 + i])));
            epilogue(a, m0 + i, p0 + j, v);
        }
    }
}

void gemm_i8_avx512(const infer_kargs *a) {
    const int np = a->m->np;
    int m0 = 0;
    for (; m0 + 4 <= a->M; m0 += 4) {
        int p = 0;
        for (; p + 2 <= np; p += 2) blk_i8(a, m0, p, 4, 2);
        for (; p < np; p++) blk_i8(a, m0, p, 4, 1);
    }
    int rest = a->M - m0;
    if (!rest) return;
    int p = 0;
    /* batch 1: eight panels (128 rows) of independent vpdpbusd chains hide its latency */
    if (rest == 1)
        for (; p + 8 <= np; p += 8) blk_i8(a, m0, p, 1, 8);
    for (; p + 4 <= np; p += 4) {
        if (rest == 1) blk_i8(a, m0, p, 1, 4);
        else if (rest == 2) blk_i8(a, m0, p, 2, 4);
        else blk_i8(a, m0, p, 3, 4);
    }
    for (; p < np; p++) {
        if (rest == 1) blk_i8(a, m0, p, 1, 1);
        else if (rest == 2) blk_i8(a, m0, p, 2, 1);
        else blk_i8(a, m0, p, 3, 1);
    }
}

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
void infer_vtanh_avx512(float *x, int n) {
    /* tanh(x) = 1 - 2 / (exp(2x) + 1); for |x| < 0.005 use x - x^3/3 (cancellation) */
    ACT_LOOP(({
        __m512 e2 = exp512(_mm512_add_ps(v, v));
        __m512 t = _mm512_sub_ps(_mm512_set1_ps(1.f),
                                 _mm512_div_ps(_mm512_set1_ps(2.f), _mm512_add_ps(e2, _mm512_set1_ps(1.f))));
        __m512 v3 = _mm512_mul_ps(_mm512_mul_ps(v, v), v);
        __m512 sm = _mm512_fnmadd_ps(v3, _mm512_set1_ps(1.f / 3.f), v);
        __mmask16 tiny = _mm512_cmp_ps_mask(_mm512_abs_ps(v), _mm512_set1_ps(0.005f), _CMP_LT_OQ);
        _mm512_mask_blend_ps(tiny, t, sm);
    }))
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

float infer_quant_row_avx512(const float *x, int n, float act_scale, int8_t *q) {
    float sc = act_scale;
    if (sc <= 0.f) {
        __m512 mx = _mm512_setzero_ps();
        for (int i = 0; i < n; i += 16) {
            __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1u);
            mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_maskz_loadu_ps(k, x + i)));
        }
        float amax = _mm512_reduce_max_ps(mx);
        sc = amax > 0.f ? amax / 127.f : 1.f;
    }
    const __m512 inv = _mm512_set1_ps(1.f / sc), lo = _mm512_set1_ps(-127.f), hi = _mm512_set1_ps(127.f);
    for (int i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1u);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), inv);
        v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
        __m512i r = _mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm512_mask_cvtepi32_storeu_epi8(q + i, k, r);
    }
    return sc;
}
