/* infer_kern_avx512.c — AVX-512 elementwise work of the inference engine: activations
 * (Cephes-style expf polynomials), the LSTM cell, and Mamba's conv + SiLU and fused scan step
 * (its own 2^x polynomial, fitted here: see exp2_512). Twins: *_ref in
 * infer_kern.c. The matrix products are src/kernels/cpu/panel*.c.
 */
#include "infer/infer_kern.h"

#include <immintrin.h>
#include <math.h>

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

/* 2^y for any finite y: n = round(y), f = y - n in [-1/2, 1/2] (exact), 2^f = 1 + f P(f) with P
 * of degree 5 (coefficients fitted for relative error here: ~2e-9 in exact arithmetic, ~1e-7
 * evaluated in f32), times 2^n by vscalefps (underflows to 0 for y below -150; no clamp needed).
 * 10 operations where exp512 needs 15: the scan's inner loop runs it N*I times per step. */
AI __m512 exp2_512(__m512 y) {
    __m512 n = _mm512_roundscale_ps(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_sub_ps(y, n);
    __m512 p = _mm512_set1_ps(1.535335905e-4f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.339887618e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618437849e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550332367e-2f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402264774e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931471825e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.f));
    return _mm512_scalef_ps(p, n);
}
AI __m512 rcp512(__m512 t) { /* 1/t, t in [1, 2^121]: vrcp14ps + one Newton step (~1e-8) */
    __m512 r = _mm512_rcp14_ps(t);
    return _mm512_mul_ps(r, _mm512_fnmadd_ps(t, r, _mm512_set1_ps(2.f)));
}

/* sigmoid(x) = 1 / (1 + 2^(-x log2 e)): exp2_512 and a reciprocal by vrcp14ps + one Newton step
 * (no division); the exponent is capped at 120 (x < -83: the result is 0 to within 1e-36). The
 * rounding of -x log2 e gives a relative error ~|x| 6e-8 in 2^(...), i.e. float-level results
 * (LSTM cell vs its libm twin: <= 3e-7 absolute). */
AI __m512 sigm512(__m512 x) {
    __m512 y = _mm512_min_ps(_mm512_mul_ps(x, _mm512_set1_ps(-1.44269504088896341f)), _mm512_set1_ps(120.f));
    return rcp512(_mm512_add_ps(exp2_512(y), _mm512_set1_ps(1.f)));
}

/* silu(z) = z * sigmoid(z) (sigm512: one rounding in the exponent, relative error ~|z| 6e-8,
 * which matters only where silu(z) is below 1e-6 in magnitude). */
AI __m512 silu512(__m512 z) { return _mm512_mul_ps(z, sigm512(z)); }

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

void cphil_infer_vexp_avx512(float *x, int n) { ACT_LOOP(exp512(v)) }
void cphil_infer_vsigmoid_avx512(float *x, int n) { ACT_LOOP(sigm512(v)) }
void cphil_infer_vsilu_avx512(float *x, int n) { ACT_LOOP(silu512(v)) }
/* tanh(x) = 1 - 2 / (2^(2x log2 e) + 1) (exp2_512, rcp512, exponent capped at 120); for
 * |x| < 0.005 use x - x^3/3 (cancellation) */
AI __m512 tanh512(__m512 v) {
    __m512 y = _mm512_min_ps(_mm512_mul_ps(v, _mm512_set1_ps(2.88539008177792682f)), _mm512_set1_ps(120.f));
    __m512 t = _mm512_fnmadd_ps(_mm512_set1_ps(2.f), rcp512(_mm512_add_ps(exp2_512(y), _mm512_set1_ps(1.f))),
                                _mm512_set1_ps(1.f));
    __m512 v3 = _mm512_mul_ps(_mm512_mul_ps(v, v), v);
    __m512 sm = _mm512_fnmadd_ps(v3, _mm512_set1_ps(1.f / 3.f), v);
    __mmask16 tiny = _mm512_cmp_ps_mask(_mm512_abs_ps(v), _mm512_set1_ps(0.005f), _CMP_LT_OQ);
    return _mm512_mask_blend_ps(tiny, t, sm);
}
void cphil_infer_vtanh_avx512(float *x, int n) { ACT_LOOP(tanh512(v)) }

/* The LSTM cell in one pass over 16 units at a time (the scalar twin is four passes). */
void cphil_infer_lstm_cell_avx512(float *g, const float *pre, float *h, float *c, int H, float *tmp) {
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
/* softplus(x) = max(x, 0) + log1p(exp(-|x|)); x > 20 -> x as in PyTorch */
AI __m512 softplus512(__m512 v) {
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
    return _mm512_mask_blend_ps(big, r, v);
}
void cphil_infer_vsoftplus_avx512(float *x, int n) { ACT_LOOP(softplus512(v)) }


/* softplus for the scan (float-level, cheaper than softplus512): u = exp(-|x|) (exp512: its
 * two-constant reduction keeps large |x| accurate),
 * log1p(u) = 2 atanh(s) = s (2 + q P(q)), s = u / (2 + u) in (0, 1/3], q = s^2, P of degree 3
 * fitted here (relative error ~5e-9 in exact arithmetic); 1 / (2 + u) by vrcp14ps and one Newton
 * step. x > 20 -> x as in PyTorch. */
AI __m512 softplus_scan512(__m512 v) {
    __m512 u = exp512(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_abs_ps(v)));
    __m512 s = _mm512_mul_ps(u, rcp512(_mm512_add_ps(u, _mm512_set1_ps(2.f))));
    __m512 q = _mm512_mul_ps(s, s);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(2.801174521e-1f), q, _mm512_set1_ps(2.800181508e-1f));
    p = _mm512_fmadd_ps(p, q, _mm512_set1_ps(4.002152681e-1f));
    p = _mm512_fmadd_ps(p, q, _mm512_set1_ps(6.666641831e-1f));
    __m512 l = _mm512_mul_ps(s, _mm512_fmadd_ps(q, p, _mm512_set1_ps(2.f)));
    __m512 r = _mm512_add_ps(_mm512_max_ps(v, _mm512_setzero_ps()), l);
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, _mm512_set1_ps(20.f), _CMP_GT_OQ), r, v);
}

/* One pass per 16 channels: the N state rows read and written once, two partial sums over n,
 * D x and the gate in registers. softplus(dt) and silu(z) of the next block are issued before
 * this block's scan so that their latency overlaps it. */
void cphil_infer_ssm_gated_avx512(int I, int N, const float *A2, const float *dtr, const float *xc, const float *z,
                            const float *B, const float *C, const float *D, float *h, float *y) {
    __mmask16 kn = I >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << I) - 1u);
    __m512 dn = softplus_scan512(_mm512_maskz_loadu_ps(kn, dtr)), gn = silu512(_mm512_maskz_loadu_ps(kn, z));
    for (int i = 0; i < I; i += 16) {
        const __mmask16 k = kn;
        const __m512 d = dn, g = gn;
        if (i + 16 < I) {
            int rest = I - i - 16;
            kn = rest >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rest) - 1u);
            dn = softplus_scan512(_mm512_maskz_loadu_ps(kn, dtr + i + 16));
            gn = silu512(_mm512_maskz_loadu_ps(kn, z + i + 16));
        }
        __m512 x = _mm512_maskz_loadu_ps(k, xc + i);
        __m512 dx = _mm512_mul_ps(d, x), acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
        const float *a = A2 + i;
        float *hp = h + i;
        int n = 0;
        for (; n + 2 <= N; n += 2) {
            const float *a0 = a + (size_t)n * I, *a1 = a0 + I;
            float *h0 = hp + (size_t)n * I, *h1 = h0 + I;
            __m512 e0 = exp2_512(_mm512_mul_ps(d, _mm512_maskz_loadu_ps(k, a0)));
            __m512 e1 = exp2_512(_mm512_mul_ps(d, _mm512_maskz_loadu_ps(k, a1)));
            __m512 v0 = _mm512_fmadd_ps(e0, _mm512_maskz_loadu_ps(k, h0), _mm512_mul_ps(dx, _mm512_set1_ps(B[n])));
            __m512 v1 = _mm512_fmadd_ps(e1, _mm512_maskz_loadu_ps(k, h1), _mm512_mul_ps(dx, _mm512_set1_ps(B[n + 1])));
            _mm512_mask_storeu_ps(h0, k, v0);
            _mm512_mask_storeu_ps(h1, k, v1);
            acc0 = _mm512_fmadd_ps(v0, _mm512_set1_ps(C[n]), acc0);
            acc1 = _mm512_fmadd_ps(v1, _mm512_set1_ps(C[n + 1]), acc1);
        }
        if (n < N) {
            float *h0 = hp + (size_t)n * I;
            __m512 e0 = exp2_512(_mm512_mul_ps(d, _mm512_maskz_loadu_ps(k, a + (size_t)n * I)));
            __m512 v0 = _mm512_fmadd_ps(e0, _mm512_maskz_loadu_ps(k, h0), _mm512_mul_ps(dx, _mm512_set1_ps(B[n])));
            _mm512_mask_storeu_ps(h0, k, v0);
            acc0 = _mm512_fmadd_ps(v0, _mm512_set1_ps(C[n]), acc0);
        }
        __m512 acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, D + i), x, _mm512_add_ps(acc0, acc1));
        _mm512_mask_storeu_ps(y + i, k, _mm512_mul_ps(acc, g));
    }
}


/* ---- attention's pieces: GELU, LayerNorm, one head of softmax attention ------------------ */
AI __mmask16 tail16(int r) { return r >= 16 ? (__mmask16)0xffff : r <= 0 ? (__mmask16)0 : (__mmask16)((1u << r) - 1u); }

/* x Phi(x), Phi from erfc(a)/2, a = |x|/sqrt 2 (see infer_kern.h), in base 2:
 *   erfc(a)/2 = t 2^(P2(u) - a^2 log2 e),  t = 1/(1 + a/2),  u = 1 - t = (a/2) t
 * (in u the sum stays well conditioned near a = 0, where P2 is -1). P2 (degree 9) and the 2^f polynomial on [-1/2, 1/2] (degree 6, relative error 2e-9) were
 * fitted for this project by weighted least squares (Lawson iterations towards minimax):
 * P2's error is 6.5e-8 in log2 units over a in [0, 10]. t: rcp14 and one Newton step.
 * Coefficients highest degree first; fnmadd forms P2 - a^2 log2 e in one rounding. */
AI __m512 gelu512(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.f);
    const __m512 ax = _mm512_min_ps(_mm512_abs_ps(x), _mm512_set1_ps(14.f)); /* Phi is 0 or 1 past 14 */
    const __m512 ha = _mm512_mul_ps(ax, _mm512_set1_ps(0.353553390593273762f)); /* a/2 */
    const __m512 d = _mm512_add_ps(ha, one);
    __m512 t = _mm512_rcp14_ps(d);
    t = _mm512_mul_ps(t, _mm512_fnmadd_ps(d, t, _mm512_set1_ps(2.f)));
    const __m512 u = _mm512_mul_ps(ha, t); /* 1 - t, without the cancellation */
    __m512 p = _mm512_set1_ps(-2.051431775e-01f);
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(8.853614565e-01f));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(-1.317022295e+00f));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(7.215058970e-01f));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(-2.352821564e-01f));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(3.514765002e-01f));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(2.234522828e-01f));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(-4.368599855e-01f));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(-1.813134675e+00f));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(-9.999999348e-01f));
    /* a^2 log2 e = x^2 (log2 e)/2 */
    const __m512 arg = _mm512_fnmadd_ps(_mm512_mul_ps(ax, _mm512_set1_ps(0.721347520444481703f)), ax, p);
    const __m512 n = _mm512_roundscale_ps(arg, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 f = _mm512_sub_ps(arg, n);
    __m512 e = _mm512_set1_ps(1.535348983e-04f);
    e = _mm512_fmadd_ps(e, f, _mm512_set1_ps(1.339889537e-03f));
    e = _mm512_fmadd_ps(e, f, _mm512_set1_ps(9.618436952e-03f));
    e = _mm512_fmadd_ps(e, f, _mm512_set1_ps(5.550332397e-02f));
    e = _mm512_fmadd_ps(e, f, _mm512_set1_ps(2.402264792e-01f));
    e = _mm512_fmadd_ps(e, f, _mm512_set1_ps(6.931472029e-01f));
    e = _mm512_fmadd_ps(e, f, one);
    const __m512 h = _mm512_mul_ps(t, _mm512_scalef_ps(e, n)); /* erfc(a)/2 */
    const __mmask16 pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
    return _mm512_mul_ps(x, _mm512_mask_sub_ps(h, pos, one, h));
}
void cphil_infer_vgelu_avx512(float *x, int n) { ACT_LOOP(gelu512(v)) }

/* R rows at a time (their dependency chains interleaved: one row alone is latency-bound). The
 * mean summed in f64 (16 floats at a time as two halves of 8); then the centred values
 * d = (x - mu_hi) - mu_lo in f32 (mu split into two floats: d as accurate as (float)(x - mu)),
 * their squares summed in f32 over 16 lanes (n/16 terms per lane), and y = d r w + b. */
AI void ln_rows(const float *X, int ldx, const float *w, const float *b, float *Y, int ldy, int n, float eps,
                const int R) {
    __m512d s0[4], s1[4];
    __m512 vmh[4], vml[4], q[4], vr[4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) s0[r] = s1[r] = _mm512_setzero_pd();
    for (int i = 0; i < n; i += 16) {
        const __mmask16 k = tail16(n - i);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m512 v = _mm512_maskz_loadu_ps(k, X + (size_t)r * ldx + i);
            s0[r] = _mm512_add_pd(s0[r], _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
            s1[r] = _mm512_add_pd(s1[r], _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)));
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        const double mu = _mm512_reduce_add_pd(_mm512_add_pd(s0[r], s1[r])) / n;
        const float mh = (float)mu;
        vmh[r] = _mm512_set1_ps(mh);
        vml[r] = _mm512_set1_ps((float)(mu - (double)mh));
        q[r] = _mm512_setzero_ps();
    }
    for (int i = 0; i < n; i += 16) {
        const __mmask16 k = tail16(n - i);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m512 x = _mm512_maskz_loadu_ps(k, X + (size_t)r * ldx + i);
            __m512 d = _mm512_maskz_sub_ps(k, _mm512_sub_ps(x, vmh[r]), vml[r]);
            q[r] = _mm512_fmadd_ps(d, d, q[r]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        const double var = (double)_mm512_reduce_add_ps(q[r]) / n;
        vr[r] = _mm512_set1_ps((float)(1.0 / sqrt(var + eps)));
    }
    for (int i = 0; i < n; i += 16) {
        const __mmask16 k = tail16(n - i);
        const __m512 vw = _mm512_maskz_loadu_ps(k, w + i), vb = _mm512_maskz_loadu_ps(k, b + i);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m512 x = _mm512_maskz_loadu_ps(k, X + (size_t)r * ldx + i);
            __m512 d = _mm512_sub_ps(_mm512_sub_ps(x, vmh[r]), vml[r]);
            _mm512_mask_storeu_ps(Y + (size_t)r * ldy + i, k, _mm512_fmadd_ps(_mm512_mul_ps(d, vr[r]), vw, vb));
        }
    }
}

void cphil_infer_layernorm_avx512(int M, const float *X, int ldx, const float *w, const float *b, float *Y, int ldy, int n,
                            float eps) {
    int m = 0;
    for (; m + 4 <= M; m += 4) ln_rows(X + (size_t)m * ldx, ldx, w, b, Y + (size_t)m * ldy, ldy, n, eps, 4);
    for (; m < M; m++) ln_rows(X + (size_t)m * ldx, ldx, w, b, Y + (size_t)m * ldy, ldy, n, eps, 1);
}

/* Scores of keys [j0, j0 + 16 NB) (masked at n) into sc, running max in *mx: one broadcast of
 * q[i] feeds NB independent accumulators (NB chains hide the FMA latency). */
AI void att_scores(const float *q, const float *KT, int ldkt, int j0, int n, int dh, __m512 scale, float *sc,
                   __m512 *mx, const int NB) {
    __m512 acc[4];
    __mmask16 k[4];
    #pragma GCC unroll 4
    for (int b = 0; b < NB; b++) {
        acc[b] = _mm512_setzero_ps();
        k[b] = tail16(n - j0 - 16 * b);
    }
    for (int i = 0; i < dh; i++) {
        __m512 qb = _mm512_set1_ps(q[i]);
        const float *kr = KT + (size_t)i * ldkt + j0;
        #pragma GCC unroll 4
        for (int b = 0; b < NB; b++) acc[b] = _mm512_fmadd_ps(qb, _mm512_maskz_loadu_ps(k[b], kr + 16 * b), acc[b]);
    }
    #pragma GCC unroll 4
    for (int b = 0; b < NB; b++) {
        __m512 s = _mm512_mul_ps(acc[b], scale);
        _mm512_mask_storeu_ps(sc + j0 + 16 * b, k[b], s);
        *mx = _mm512_mask_max_ps(*mx, k[b], *mx, s);
    }
}

/* out[c0, c0 + 16 NB) = inv * sum_j p_j v_j[...]: two key parities x NB column blocks of chains. */
AI void att_pv(const float *p, const float *V, int ldv, int n, int c0, int dh, __m512 inv, float *out, const int NB) {
    __m512 a0[4], a1[4];
    __mmask16 k[4];
    #pragma GCC unroll 4
    for (int b = 0; b < NB; b++) {
        a0[b] = a1[b] = _mm512_setzero_ps();
        k[b] = tail16(dh - c0 - 16 * b);
    }
    int j = 0;
    for (; j + 2 <= n; j += 2) {
        __m512 p0 = _mm512_set1_ps(p[j]), p1 = _mm512_set1_ps(p[j + 1]);
        const float *v0 = V + (size_t)j * ldv + c0, *v1 = v0 + ldv;
        #pragma GCC unroll 4
        for (int b = 0; b < NB; b++) {
            a0[b] = _mm512_fmadd_ps(p0, _mm512_maskz_loadu_ps(k[b], v0 + 16 * b), a0[b]);
            a1[b] = _mm512_fmadd_ps(p1, _mm512_maskz_loadu_ps(k[b], v1 + 16 * b), a1[b]);
        }
    }
    if (j < n) {
        __m512 p0 = _mm512_set1_ps(p[j]);
        const float *v0 = V + (size_t)j * ldv + c0;
        #pragma GCC unroll 4
        for (int b = 0; b < NB; b++) a0[b] = _mm512_fmadd_ps(p0, _mm512_maskz_loadu_ps(k[b], v0 + 16 * b), a0[b]);
    }
    #pragma GCC unroll 4
    for (int b = 0; b < NB; b++) _mm512_mask_storeu_ps(out + c0 + 16 * b, k[b], _mm512_mul_ps(_mm512_add_ps(a0[b], a1[b]), inv));
}

void cphil_infer_attend_head_avx512(const float *q, const float *KT, int ldkt, const float *V, int ldv, int n, int dh,
                              float scale, float *out, float *sc) {
    const __m512 vscale = _mm512_set1_ps(scale);
    __m512 mx = _mm512_set1_ps(-INFINITY);
    int j0 = 0;
    for (; j0 < n - 48; j0 += 64) att_scores(q, KT, ldkt, j0, n, dh, vscale, sc, &mx, 4);
    switch ((n - j0 + 15) / 16) {
    case 1: att_scores(q, KT, ldkt, j0, n, dh, vscale, sc, &mx, 1); break;
    case 2: att_scores(q, KT, ldkt, j0, n, dh, vscale, sc, &mx, 2); break;
    case 3: att_scores(q, KT, ldkt, j0, n, dh, vscale, sc, &mx, 3); break;
    default: break;
    }
    const __m512 vm = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    __m512 vs = _mm512_setzero_ps();
    for (int j = 0; j < n; j += 16) {
        __mmask16 k = tail16(n - j);
        __m512 e = _mm512_maskz_mov_ps(k, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, sc + j), vm)));
        _mm512_mask_storeu_ps(sc + j, k, e);
        vs = _mm512_add_ps(vs, e);
    }
    const __m512 inv = _mm512_set1_ps(1.f / _mm512_reduce_add_ps(vs));
    int c0 = 0;
    for (; c0 < dh - 48; c0 += 64) att_pv(sc, V, ldv, n, c0, dh, inv, out, 4);
    switch ((dh - c0 + 15) / 16) {
    case 1: att_pv(sc, V, ldv, n, c0, dh, inv, out, 1); break;
    case 2: att_pv(sc, V, ldv, n, c0, dh, inv, out, 2); break;
    case 3: att_pv(sc, V, ldv, n, c0, dh, inv, out, 3); break;
    default: break;
    }
}

/* Depthwise conv at one position + SiLU, 16 channels at a time; the taps summed in order. */
void cphil_infer_conv_silu_avx512(int I, int K, const float *w, const float *b, const float *const *tap, float *save,
                            float *out) {
    /* the present taps in a local list (the build has -fno-strict-aliasing: the caller's array
     * would be reloaded after every store) */
    const float *tp[64], *wp[64];
    int nt = 0;
    for (int j = 0; j < K && j < 64; j++)
        if (tap[j]) {
            tp[nt] = tap[j];
            wp[nt++] = w + (size_t)j * I;
        }
    const float *last = tap[K - 1];
    for (int i = 0; i < I; i += 16) {
        __mmask16 k = I - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (I - i)) - 1u);
        __m512 acc = _mm512_maskz_loadu_ps(k, b + i);
        for (int j = 0; j < nt; j++)
            acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, wp[j] + i), _mm512_maskz_loadu_ps(k, tp[j] + i), acc);
        if (save) _mm512_mask_storeu_ps(save + i, k, last ? _mm512_maskz_loadu_ps(k, last + i) : _mm512_setzero_ps());
        _mm512_mask_storeu_ps(out + i, k, silu512(acc));
    }
}

/* RMSNorm: squares summed in double (exact products), 16 floats = two 8-lane chains per step */
void cphil_infer_rmsnorm_avx512(const float *x, const float *w, float *y, int n, float eps) {
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    for (int i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1u);
        __m512 v = _mm512_maskz_loadu_ps(k, x + i);
        __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
        __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
        s0 = _mm512_fmadd_pd(lo, lo, s0);
        s1 = _mm512_fmadd_pd(hi, hi, s1);
    }
    double ss = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
    __m512 r = _mm512_set1_ps((float)(1.0 / sqrt(ss / n + eps)));
    for (int i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1u);
        __m512 v = _mm512_maskz_loadu_ps(k, x + i);
        _mm512_mask_storeu_ps(y + i, k, _mm512_mul_ps(_mm512_mul_ps(v, r), _mm512_maskz_loadu_ps(k, w + i)));
    }
}

/* ---- causal attention, four queries at a time ------------------------------------------- */
/* S[r][j0 .. j0 + 16 NB) = scale q_r . k_j for the four queries r (masked at nmax keys). */
AI void attc_scores(const float *const q[4], const float *KT, int ldkt, int j0, int nmax, int dh, __m512 scale,
                    float *S, int lds, const int NB) {
    __m512 acc[4][4];
    __mmask16 k[4];
    #pragma GCC unroll 4
    for (int b = 0; b < NB; b++) {
        k[b] = tail16(nmax - j0 - 16 * b);
        #pragma GCC unroll 4
        for (int r = 0; r < 4; r++) acc[r][b] = _mm512_setzero_ps();
    }
    for (int i = 0; i < dh; i++) {
        const float *kr = KT + (size_t)i * ldkt + j0;
        __m512 kv[4];
        #pragma GCC unroll 4
        for (int b = 0; b < NB; b++) /* blocks before the last are full */
            kv[b] = b < NB - 1 ? _mm512_loadu_ps(kr + 16 * b) : _mm512_maskz_loadu_ps(k[b], kr + 16 * b);
        #pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            __m512 qb = _mm512_set1_ps(q[r][i]);
            #pragma GCC unroll 4
            for (int b = 0; b < NB; b++) acc[r][b] = _mm512_fmadd_ps(qb, kv[b], acc[r][b]);
        }
    }
    #pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
        #pragma GCC unroll 4
        for (int b = 0; b < NB; b++) _mm512_mask_storeu_ps(S + (size_t)r * lds + j0 + 16 * b, k[b], _mm512_mul_ps(acc[r][b], scale));
}

/* o_r[c0 .. c0 + 16 NB) = inv_r sum_{j < nmax} S[r][j] v_j[...] (S zero past each row's keys). */
AI void attc_pv(const float *S, int lds, const float *V, int ldv, int nmax, int c0, int dh, const float inv[4],
                float *const o[4], const int NB) {
    __m512 acc[4][4];
    __mmask16 k[4];
    #pragma GCC unroll 4
    for (int b = 0; b < NB; b++) {
        k[b] = tail16(dh - c0 - 16 * b);
        #pragma GCC unroll 4
        for (int r = 0; r < 4; r++) acc[r][b] = _mm512_setzero_ps();
    }
    for (int j = 0; j < nmax; j++) {
        const float *vj = V + (size_t)j * ldv + c0;
        __m512 vv[4];
        #pragma GCC unroll 4
        for (int b = 0; b < NB; b++) vv[b] = _mm512_maskz_loadu_ps(k[b], vj + 16 * b);
        #pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            __m512 p = _mm512_set1_ps(S[(size_t)r * lds + j]);
            #pragma GCC unroll 4
            for (int b = 0; b < NB; b++) acc[r][b] = _mm512_fmadd_ps(p, vv[b], acc[r][b]);
        }
    }
    #pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
        #pragma GCC unroll 4
        for (int b = 0; b < NB; b++)
            _mm512_mask_storeu_ps(o[r] + c0 + 16 * b, k[b], _mm512_mul_ps(acc[r][b], _mm512_set1_ps(inv[r])));
}

void cphil_infer_attend_causal_avx512(const float *Q, int ldq, const float *KT, int ldkt, const float *V, int ldv, int t0,
                                int T, int dh, float scale, float *O, int ldo, float *S) {
    const __m512 vscale = _mm512_set1_ps(scale);
    float *dummy = S + 4 * (size_t)ldkt;
    for (int t = t0; t < T; t += 4) {
        if (T - t == 1) { /* a lone query (the last layer's): the one-query kernel */
            cphil_infer_attend_head_avx512(Q + (size_t)t * ldq, KT, ldkt, V, ldv, t + 1, dh, scale, O + (size_t)(t - t0) * ldo, S);
            break;
        }
        /* rows past T repeat the last query; their output goes to scratch */
        const float *q[4];
        float *o[4];
        int nr[4];
        #pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            int tr = t + r < T ? t + r : T - 1;
            q[r] = Q + (size_t)tr * ldq;
            o[r] = t + r < T ? O + (size_t)(t + r - t0) * ldo : dummy;
            nr[r] = tr + 1;
        }
        const int nmax = nr[3];
        int j0 = 0;
        for (; j0 < nmax - 48; j0 += 64) attc_scores(q, KT, ldkt, j0, nmax, dh, vscale, S, ldkt, 4);
        switch ((nmax - j0 + 15) / 16) {
        case 1: attc_scores(q, KT, ldkt, j0, nmax, dh, vscale, S, ldkt, 1); break;
        case 2: attc_scores(q, KT, ldkt, j0, nmax, dh, vscale, S, ldkt, 2); break;
        case 3: attc_scores(q, KT, ldkt, j0, nmax, dh, vscale, S, ldkt, 3); break;
        default: break;
        }
        /* softmax of each row over its keys; zeros up to nmax */
        float inv[4];
        #pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            float *sr = S + (size_t)r * ldkt;
            __m512 mx = _mm512_set1_ps(-INFINITY);
            for (int j = 0; j < nr[r]; j += 16) {
                __mmask16 kn = tail16(nr[r] - j);
                mx = _mm512_mask_max_ps(mx, kn, mx, _mm512_maskz_loadu_ps(kn, sr + j));
            }
            const __m512 vm = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
            __m512 vs = _mm512_setzero_ps();
            for (int j = 0; j < nmax; j += 16) {
                __mmask16 kn = tail16(nr[r] - j);
                __m512 e = _mm512_maskz_mov_ps(kn, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(kn, sr + j), vm)));
                _mm512_mask_storeu_ps(sr + j, tail16(nmax - j), e);
                vs = _mm512_add_ps(vs, e);
            }
            inv[r] = 1.f / _mm512_reduce_add_ps(vs);
        }
        int c0 = 0;
        for (; c0 < dh - 48; c0 += 64) attc_pv(S, ldkt, V, ldv, nmax, c0, dh, inv, o, 4);
        switch ((dh - c0 + 15) / 16) {
        case 1: attc_pv(S, ldkt, V, ldv, nmax, c0, dh, inv, o, 1); break;
        case 2: attc_pv(S, ldkt, V, ldv, nmax, c0, dh, inv, o, 2); break;
        case 3: attc_pv(S, ldkt, V, ldv, nmax, c0, dh, inv, o, 3); break;
        default: break;
        }
    }
}

/* ---- RoPE pairs, row transposes ------------------------------------------------------------ */
/* FMA forms: a c - b s as fmsub(a, c, b s), a s + b c as fmadd(a, s, b c). */
void cphil_infer_rope_pairs_avx512(const float *a, const float *b, const float *c, const float *s, float *oa, float *ob,
                             int n) {
    for (int j = 0; j < n; j += 16) {
        __mmask16 k = tail16(n - j);
        __m512 x = _mm512_maskz_loadu_ps(k, a + j), y = _mm512_maskz_loadu_ps(k, b + j);
        __m512 vc = _mm512_maskz_loadu_ps(k, c + j), vs = _mm512_maskz_loadu_ps(k, s + j);
        _mm512_mask_storeu_ps(oa + j, k, _mm512_fmsub_ps(x, vc, _mm512_mul_ps(y, vs)));
        _mm512_mask_storeu_ps(ob + j, k, _mm512_fmadd_ps(x, vs, _mm512_mul_ps(y, vc)));
    }
}

/* In-register transpose of 16 rows of 16 floats: r[i][j] -> r[j][i] (unpack pairs, then 4 x 4
 * within 128-bit lanes, then 128-bit lanes across registers). */
AI void transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        u[4 * i + 0] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    /* u[4i + k], 128-bit lane L: rows 4i..4i+3 of column 4L + k */
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        __m512 v0 = _mm512_shuffle_f32x4(u[k], u[4 + k], 0x88), w0 = _mm512_shuffle_f32x4(u[k], u[4 + k], 0xDD);
        __m512 v1 = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], 0x88), w1 = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], 0xDD);
        r[k] = _mm512_shuffle_f32x4(v0, v1, 0x88);
        r[8 + k] = _mm512_shuffle_f32x4(v0, v1, 0xDD);
        r[4 + k] = _mm512_shuffle_f32x4(w0, w1, 0x88);
        r[12 + k] = _mm512_shuffle_f32x4(w0, w1, 0xDD);
    }
}

void cphil_infer_transpose_rows_avx512(const float *const *rows, int off, int T, int n, float *dst, int ldd) {
    for (int t0 = 0; t0 < T; t0 += 16) {
        const int nt = T - t0 < 16 ? T - t0 : 16;
        for (int c0 = 0; c0 < n; c0 += 16) {
            const __mmask16 kc = tail16(n - c0);
            __m512 r[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                r[i] = i < nt ? _mm512_maskz_loadu_ps(kc, rows[t0 + i] + off + c0) : _mm512_setzero_ps();
            transpose16(r);
            const int nc = n - c0 < 16 ? n - c0 : 16;
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                if (i < nc) _mm512_mask_storeu_ps(dst + (size_t)(c0 + i) * ldd + t0, tail16(nt), r[i]);
        }
    }
}
