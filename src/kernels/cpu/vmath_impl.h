/* vmath_impl.h — cphil's one element-wise math library, written once over a lane type: exp,
 * exp2, tanh, sigmoid, silu, softplus and GELU, branch-free. Included by
 *   src/kernels/cpu/vmath.h      VF = float   (1 lane: the CPU trainer and the engine's scalar tier)
 *   src/infer/infer_kern_avx2.c  VF = __m256  (8 lanes)
 *   src/infer/infer_kern_avx512.c VF = __m512 (16 lanes)
 * with these defined by the includer:
 *   VF, VI           the float type and the int32 type of the same lane count
 *   VM(name)         the instantiated name of a function (vm_exp, vm8_exp, ...)
 *   VM_SPLAT(c)      a VF with every lane c
 *   VM_SEL(m, a, b)  lane-wise m ? a : b, m a comparison of VF values
 *   VM_TOINT(v)      VF -> VI, rounding towards zero (here v is always integral)
 *   VM_TOFLOAT(i)    VI -> VF
 *   VM_ASINT(v), VM_ASFLOAT(i)   the same bits read as the other type
 *   VM_FMA(a, b, c)  a b + c: fused on the SIMD tiers (one rounding), a * b + c on one lane
 *   VM_MAXC(x, c), VM_MINC(x, c)   x < c ? c : x and x > c ? c : x (NaN stays NaN; vmaxps/vminps)
 *   VM_ROUND(v)      v rounded to the nearest integer, ties to even (|v| < 2^22; one lane: the
 *                    1.5 * 2^23 trick, which the trainer's loops vectorize; SIMD: vroundps)
 * Apart from VM_FMA only + - * / and comparisons touch the floats, in the order written, and the
 * project compiles C as ISO C11 (no contraction, no reassociation). So the scalar tier and the
 * CPU trainer give the same bits, and the 8- and 16-lane tiers differ from them only by the
 * fused roundings (tests/test_infer.c, vmath_tiers_agree, bounds it). CUDA keeps its own
 * expf/tanhf (src/kernels/cuda); GPU and CPU layers agree to f32 rounding, not bit for bit.
 *
 * Accuracy of the one-lane build against double libm, dense sweeps of 4 M points (exp on
 * [-87, 88], exp2 on [-126, 127], GELU on [-14, 14], the others on [-30, 30]); relative figures
 * where |f| > 1e-6. In brackets what tests/test_infer.c (activations_dense_sweep,
 * gelu_matches_exact_erf_every_isa) and tests/test_nn.c assert on every tier:
 *   exp       relative 8.1e-8                          [3e-7 relative]
 *   exp2      relative 1.0e-7
 *   tanh      absolute 1.1e-7, relative 1.7e-7          [4e-7 + 4e-7 |f|]
 *   sigmoid   absolute 9.1e-8, relative 9.7e-7 (x -14)  [4e-7 + 4e-7 |f|]
 *   silu      absolute 1.3e-6 (x 13.8), relative 1e-6   [4e-7 + 4e-7 |f|]
 *   softplus  absolute 4.8e-7, relative 2.6e-7          [4e-7 + 4e-7 |f|]
 *   gelu      absolute 3.8e-7, relative 1.9e-6 (x -5)   [4e-7 + 2e-6 |f|]
 * (sigmoid's and silu's relative error grows as |x| 6e-8 below 0, from the rounding of
 * |x| log2 e in exp2; it matters only where the value is below 1e-6.)
 */

/* |x| and -|x| by the sign bit (NaN stays NaN) */
static inline VF VM(abs)(VF x) { return VM_ASFLOAT(VM_ASINT(x) & INT32_MAX); }
static inline VF VM(negabs)(VF x) { return VM_ASFLOAT(VM_ASINT(x) | INT32_MIN); }

/* 2^n for integral n in [-127, 127], built in the exponent field (n = -127 gives 0) */
static inline VF VM(pow2n)(VF n) { return VM_ASFLOAT((VM_TOINT(n) + 127) << 23); }

/* e^x: Cephes expf. x clamped to [-87.3, 88.3] (below, 2^-126 instead of a subnormal or 0:
 * harmless where it is used, added to or multiplying something of order 1), n = round(x / ln 2),
 * r = x - n ln 2 with ln 2 in two parts, a degree-6 polynomial, 2^n from the exponent bits. NaN
 * stays NaN. */
static inline VF VM(exp)(VF x) {
    x = VM_MINC(VM_MAXC(x, -87.3f), 88.3f);
    VF n = VM_ROUND(x * 1.44269504088896341f);
    VF r = VM_FMA(n, VM_SPLAT(-0.693359375f), x);
    r = VM_FMA(n, VM_SPLAT(2.12194440e-4f), r);
    VF p = VM_SPLAT(1.9875691500e-4f);
    p = VM_FMA(p, r, VM_SPLAT(1.3981999507e-3f));
    p = VM_FMA(p, r, VM_SPLAT(8.3334519073e-3f));
    p = VM_FMA(p, r, VM_SPLAT(4.1665795894e-2f));
    p = VM_FMA(p, r, VM_SPLAT(1.6666665459e-1f));
    p = VM_FMA(p, r, VM_SPLAT(5.0000001201e-1f));
    p = VM_FMA(p * r, r, r) + 1.0f;
    return p * VM(pow2n)(n);
}

/* 2^y: y clamped to [-127, 127], n = round(y), f = y - n in [-1/2, 1/2] (exact), 2^f by a degree-6
 * polynomial fitted for this project (relative error ~2e-9 in exact arithmetic, ~1e-7 in f32),
 * 2^n from the exponent bits (n = -127 gives 0). Mamba's scan runs it N x I times a step, on
 * A pre-scaled by log2 e, and GELU's tail uses it. */
static inline VF VM(exp2)(VF y) {
    y = VM_MINC(VM_MAXC(y, -127.0f), 127.0f);
    VF n = VM_ROUND(y);
    VF f = y - n;
    VF p = VM_SPLAT(1.535335905e-4f);
    p = VM_FMA(p, f, VM_SPLAT(1.339887618e-3f));
    p = VM_FMA(p, f, VM_SPLAT(9.618437849e-3f));
    p = VM_FMA(p, f, VM_SPLAT(5.550332367e-2f));
    p = VM_FMA(p, f, VM_SPLAT(2.402264774e-1f));
    p = VM_FMA(p, f, VM_SPLAT(6.931471825e-1f));
    p = VM_FMA(p, f, VM_SPLAT(1.0f));
    return p * VM(pow2n)(n);
}

/* tanh: Cephes tanhf. Below |x| 0.625 an odd polynomial; above, (1 - e) / (1 + e) with
 * e = exp(-2|x|) (by exp2, as in sigmoid), sign restored. */
static inline VF VM(tanh)(VF x) {
    VF a = VM(abs)(x);
    VF e = VM(exp2)(a * -2.88539008177792682f); /* exp(-2|x|) */
    VF big = (1.0f - e) / (1.0f + e);
    big = VM_SEL(x < 0.0f, -big, big);
    VF z = x * x;
    VF q = VM_FMA(z, VM_SPLAT(-5.70498872745e-3f), VM_SPLAT(2.06390887954e-2f));
    q = VM_FMA(q, z, VM_SPLAT(-5.37397155531e-2f));
    q = VM_FMA(q, z, VM_SPLAT(1.33314422036e-1f));
    q = VM_FMA(q, z, VM_SPLAT(-3.33332819422e-1f));
    VF small = VM_FMA(q * z, x, x);
    return VM_SEL(a < 0.625f, small, big);
}

/* sigmoid: e = exp(-|x|) = 2^(-|x| log2 e) never overflows; 1 / (1 + e) for x >= 0, e / (1 + e)
 * below. exp2 is cheaper than exp (the rounding of |x| log2 e costs a relative ~|x| 6e-8 in e,
 * which only matters where the result is below 1e-6). */
static inline VF VM(sigmoid)(VF x) {
    VF e = VM(exp2)(VM(negabs)(x) * 1.44269504088896341f);
    VF s = 1.0f / (1.0f + e);
    return VM_SEL(x >= 0.0f, s, e * s);
}

static inline VF VM(silu)(VF x) { return x * VM(sigmoid)(x); }

/* softplus(x) = max(x, 0) + log1p(u), u = exp(-|x|) in (0, 1]; x above 20 gives x (PyTorch's
 * threshold). log1p(u) = 2 atanh(s) = s (2 + q P(q)) with s = u / (2 + u) in (0, 1/3], q = s^2
 * and P of degree 3 fitted for this project (relative error ~5e-9 in exact arithmetic). */
static inline VF VM(softplus)(VF x) {
    VF u = VM(exp)(VM(negabs)(x));
    VF s = u / (u + 2.0f), q = s * s;
    VF p = VM_FMA(VM_SPLAT(2.801174521e-1f), q, VM_SPLAT(2.800181508e-1f));
    p = VM_FMA(p, q, VM_SPLAT(4.002152681e-1f));
    p = VM_FMA(p, q, VM_SPLAT(6.666641831e-1f));
    VF r = VM_MAXC(x, 0.0f) + s * VM_FMA(q, p, VM_SPLAT(2.0f));
    return VM_SEL(x > 20.0f, x, r);
}

/* GELU, exact-erf form x Phi(x) (PyTorch nn.GELU's default). Phi from erfc(a)/2, a = |x|/sqrt 2,
 * in base 2:  erfc(a)/2 = t 2^(P2(u) - a^2 log2 e),  t = 1 / (1 + a/2),  u = 1 - t = (a/2) t
 * (u keeps the sum well conditioned near a = 0, where P2 is -1); P2 of degree 9 fitted for this
 * project (weighted least squares, 6.5e-8 in log2 units over a in [0, 10]). Phi = 1 - erfc/2 for
 * x >= 0 and erfc/2 below, so the lower tail keeps its relative accuracy (1 + erff rounds it
 * away); |x| clamped at 14, past which Phi is 0 or 1. */
static inline VF VM(gelu)(VF x) {
    VF ax = VM(abs)(x);
    ax = VM_MINC(ax, 14.0f);
    VF ha = ax * 0.353553390593273762f; /* a/2 */
    VF t = 1.0f / (ha + 1.0f);
    VF u = ha * t;
    VF p = VM_SPLAT(-2.051431775e-01f);
    p = VM_FMA(p, u, VM_SPLAT(8.853614565e-01f));
    p = VM_FMA(p, u, VM_SPLAT(-1.317022295e+00f));
    p = VM_FMA(p, u, VM_SPLAT(7.215058970e-01f));
    p = VM_FMA(p, u, VM_SPLAT(-2.352821564e-01f));
    p = VM_FMA(p, u, VM_SPLAT(3.514765002e-01f));
    p = VM_FMA(p, u, VM_SPLAT(2.234522828e-01f));
    p = VM_FMA(p, u, VM_SPLAT(-4.368599855e-01f));
    p = VM_FMA(p, u, VM_SPLAT(-1.813134675e+00f));
    p = VM_FMA(p, u, VM_SPLAT(-9.999999348e-01f));
    /* erfc(a)/2, with a^2 log2 e = x^2 (log2 e)/2 */
    VF h = t * VM(exp2)(VM_FMA(ax * -0.721347520444481703f, ax, p));
    return x * VM_SEL(x >= 0.0f, 1.0f - h, h);
}
