/* vec_impl.h — the vector math of vec.c written once over a small set of macros (V, VL, V_*),
 * included by vec_avx2.c (ymm) and vec_avx512.c (zmm) with their own definitions.
 *
 * exp: n = round(x log2 e), r = x - n ln2 (two-part ln2), e^r by a degree-6 polynomial on
 * |r| <= ln2/2 (Cephes-style coefficients), times 2^n built in the exponent bits; x is clamped
 * to [-87.33, 88.72] (below: result 0 via the flush, above: inf). log (for softplus): mantissa
 * in [sqrt(1/2), sqrt(2)), degree-8 polynomial of Cephes logf. No lookup tables.
 */
#ifndef VEC_IMPL_NAME
#error "define VEC_IMPL_NAME(base) before including vec_impl.h"
#endif

static inline V v_exp(V x) {
    const V hi = V_SET1(88.7228394f), lo = V_SET1(-87.3365448f);
    V xc = V_MIN(V_MAX(lo, x), hi);
    V fx = V_ROUND(V_MUL(xc, V_SET1(1.44269504088896341f)));
    V r = V_FNMADD(fx, V_SET1(0.693359375f), xc);
    r = V_FNMADD(fx, V_SET1(-2.12194440e-4f), r);
    V p = V_SET1(1.9875691500e-4f);
    p = V_FMADD(p, r, V_SET1(1.3981999507e-3f));
    p = V_FMADD(p, r, V_SET1(8.3334519073e-3f));
    p = V_FMADD(p, r, V_SET1(4.1665795894e-2f));
    p = V_FMADD(p, r, V_SET1(1.6666665459e-1f));
    p = V_FMADD(p, r, V_SET1(5.0000001201e-1f));
    V r2 = V_MUL(r, r);
    p = V_FMADD(p, r2, V_ADD(r, V_SET1(1.0f)));
    /* 2^n: n in [-126, 128]; split as 2^(n/2) * 2^(n - n/2) so n = 128 and -126 both work */
    VI n = V_CVT_I(fx);
    VI n1 = VI_SRAI(n, 1), n2 = VI_SUB(n, n1);
    V s1 = V_CAST_F(VI_SLLI(VI_ADD(n1, VI_SET1(127)), 23));
    V s2 = V_CAST_F(VI_SLLI(VI_ADD(n2, VI_SET1(127)), 23));
    V y = V_MUL(V_MUL(p, s1), s2);
    y = V_SEL_GT(x, hi, V_SET1(__builtin_inff()), y);  /* overflow */
    y = V_SEL_LT(x, lo, V_SET1(0.0f), y);              /* underflow */
    return V_FIXNAN(x, y);
}

/* natural log for u > 0 finite (softplus only needs u in [1, 2]) */
static inline V v_log(V u) {
    VI ui = V_CAST_I(u);
    VI e = VI_SUB(VI_SRLI(ui, 23), VI_SET1(127));
    V m = V_CAST_F(VI_OR(VI_AND(ui, VI_SET1(0x007fffff)), VI_SET1(0x3f800000))); /* [1, 2) */
    /* bring m into [sqrt(1/2), sqrt(2)) */
    V big = V_SEL_GT(m, V_SET1(1.41421356f), V_SET1(1.0f), V_SET1(0.0f));
    m = V_SEL_GT(m, V_SET1(1.41421356f), V_MUL(m, V_SET1(0.5f)), m);
    V ef = V_ADD(V_CVT_F(e), big);
    V t = V_SUB(m, V_SET1(1.0f));
    V p = V_SET1(7.0376836292e-2f);
    p = V_FMADD(p, t, V_SET1(-1.1514610310e-1f));
    p = V_FMADD(p, t, V_SET1(1.1676998740e-1f));
    p = V_FMADD(p, t, V_SET1(-1.2420140846e-1f));
    p = V_FMADD(p, t, V_SET1(1.4249322787e-1f));
    p = V_FMADD(p, t, V_SET1(-1.6668057665e-1f));
    p = V_FMADD(p, t, V_SET1(2.0000714765e-1f));
    p = V_FMADD(p, t, V_SET1(-2.4999993993e-1f));
    p = V_FMADD(p, t, V_SET1(3.3333331174e-1f));
    V t2 = V_MUL(t, t);
    V y = V_MUL(V_MUL(p, t), t2);
    y = V_FMADD(ef, V_SET1(-2.12194440e-4f), y);
    y = V_FNMADD(t2, V_SET1(0.5f), y);
    y = V_ADD(t, y);
    return V_FMADD(ef, V_SET1(0.693359375f), y);
}

static inline V v_sigmoid(V x) {
    /* 1 / (1 + e^-x); e^-x = inf for x < -88.7 gives 0, as it should */
    return V_DIV(V_SET1(1.0f), V_ADD(V_SET1(1.0f), v_exp(V_SUB(V_SET1(0.0f), x))));
}

static inline V v_tanh(V x) {
    /* tanh|x| = (1 - e^-2|x|) / (1 + e^-2|x|); small |x| by the odd series to keep relative
     * accuracy: x - x^3/3 + 2x^5/15 - 17x^7/315 for |x| < 0.125 */
    V ax = V_ABS(x);
    V e = v_exp(V_MUL(ax, V_SET1(-2.0f)));
    V big = V_DIV(V_SUB(V_SET1(1.0f), e), V_ADD(V_SET1(1.0f), e));
    V x2 = V_MUL(ax, ax);
    V s = V_FMADD(x2, V_SET1(-17.0f / 315.0f), V_SET1(2.0f / 15.0f));
    s = V_FMADD(s, x2, V_SET1(-1.0f / 3.0f));
    s = V_FMADD(V_MUL(s, x2), ax, ax);
    V r = V_SEL_LT(ax, V_SET1(0.125f), s, big);
    return V_FIXNAN(x, V_COPYSIGN(r, x));
}

static inline V v_silu(V x) { return V_FIXNAN(x, V_MUL(x, v_sigmoid(x))); }

static inline V v_softplus(V x) {
    /* max(x, 0) + log1p(e^-|x|), log1p(t) = log(u) * t / (u - 1) with u = 1 + t (exact for u == 1) */
    V t = v_exp(V_SUB(V_SET1(0.0f), V_ABS(x)));
    V u = V_ADD(V_SET1(1.0f), t);
    V d = V_SUB(u, V_SET1(1.0f));
    V l = V_SEL_EQ0(d, t, V_MUL(v_log(u), V_DIV(t, d)));
    return V_FIXNAN(x, V_ADD(V_MAX(x, V_SET1(0.0f)), l));
}

#define VEC_DEFINE(fname, vf)                                                                     \
    void VEC_IMPL_NAME(fname)(int n, const float *x, float *y) {                                 \
        int i = 0;                                                                                \
        for (; i + VL <= n; i += VL) V_STORE(y + i, vf(V_LOAD(x + i)));                           \
        if (i < n) {                                                                              \
            float bx[VL] = {0}, by[VL];                                                           \
            for (int j = 0; i + j < n; j++) bx[j] = x[i + j];                                     \
            V_STORE(by, vf(V_LOAD(bx)));                                                          \
            for (int j = 0; i + j < n; j++) y[i + j] = by[j];                                     \
        }                                                                                         \
    }

VEC_DEFINE(vexp, v_exp)
VEC_DEFINE(vsigmoid, v_sigmoid)
VEC_DEFINE(vtanh, v_tanh)
VEC_DEFINE(vsilu, v_silu)
VEC_DEFINE(vsoftplus, v_softplus)
