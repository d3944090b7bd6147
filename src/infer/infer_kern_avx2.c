/* infer_kern_avx2.c — AVX2 + FMA elementwise work of the inference engine, for CPUs without
 * AVX-512 (AMD Zen 2/3, most Intel desktop parts): the same kernels as infer_kern_avx512.c on 8
 * lanes — activations (the math library src/kernels/cpu/vmath_impl.h on 8 lanes), the LSTM cell,
 * Mamba's conv + SiLU, fused scan step and RMSNorm, and attention's pieces (GELU, LayerNorm, one
 * head and the causal window of softmax attention, RoPE pairs, row transposes). Where AVX-512 has
 * an instruction AVX2 lacks, the substitutes are: blends by sign masks, ragged tails by
 * vmaskmovps (full blocks use plain loads and stores). The causal kernel's register tile is 4
 * queries x 16 keys (16 ymm registers, not 32). Twins: *_ref in infer_kern.c; tests/test_infer.c
 * compares every kernel here with its twin. Does not: matrix products
 * (src/kernels/cpu/panel_avx2.c), bf16 conversion (the panel code's).
 */
#include "infer/infer_kern.h"

#include <immintrin.h>
#include <math.h>

#define AI static inline __attribute__((always_inline))

/* ---- lane helpers ---------------------------------------------------------------------------- */
/* lanes [0, r) set (r <= 0: none, r >= 8: all) */
AI __m256i tail8(int r) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }
/* full: a plain load / store; otherwise masked (masked lanes read as 0, are not written) */
AI __m256 ld8(const float *p, __m256i k, const int full) { return full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, k); }
AI void st8(float *p, __m256i k, __m256 v, const int full) {
    if (full) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, k, v);
}
AI float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
AI float hmax8(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}
AI double hsum4d(__m256d v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

/* ---- activations: the library of src/kernels/cpu/vmath_impl.h on 8 lanes (vm8_exp, vm8_exp2,
 * vm8_log, vm8_tanh, vm8_sigmoid, vm8_silu, vm8_softplus, vm8_gelu): the same bits as the scalar
 * tier and the trainer. ------------------------------------------------------------------------ */
typedef int32_t vm8i __attribute__((vector_size(32)));
#define VF __m256
#define VI vm8i
#define VM(name) vm8_##name
#define VM_SPLAT(c) _mm256_set1_ps(c)
#define VM_SEL(m, a, b) ((VF)(((VI)(a) & (m)) | ((VI)(b) & ~(m))))
#define VM_TOINT(v) __builtin_convertvector((v), VI)
#define VM_TOFLOAT(i) __builtin_convertvector((i), VF)
#define VM_ASINT(v) ((VI)(v))
#define VM_ASFLOAT(i) ((VF)(i))
#define VM_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define VM_MAXC(x, c) _mm256_max_ps(VM_SPLAT(c), (x))
#define VM_MINC(x, c) _mm256_min_ps(VM_SPLAT(c), (x))
#define VM_ROUND(v) (_mm256_round_ps((v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))
#include "kernels/cpu/vmath_impl.h"

#define ACT_LOOP8(expr)                                                                        \
    int i = 0;                                                                                 \
    for (; i + 8 <= n; i += 8) {                                                               \
        __m256 v = _mm256_loadu_ps(x + i);                                                     \
        _mm256_storeu_ps(x + i, expr);                                                         \
    }                                                                                          \
    if (i < n) {                                                                               \
        __m256i k = tail8(n - i);                                                              \
        __m256 v = _mm256_maskload_ps(x + i, k);                                               \
        _mm256_maskstore_ps(x + i, k, expr);                                                   \
    }

void cphil_infer_vexp_avx2(float *x, int n) { ACT_LOOP8(vm8_exp(v)) }
void cphil_infer_vsigmoid_avx2(float *x, int n) { ACT_LOOP8(vm8_sigmoid(v)) }
void cphil_infer_vsilu_avx2(float *x, int n) { ACT_LOOP8(vm8_silu(v)) }
void cphil_infer_vtanh_avx2(float *x, int n) { ACT_LOOP8(vm8_tanh(v)) }
void cphil_infer_vsoftplus_avx2(float *x, int n) { ACT_LOOP8(vm8_softplus(v)) }
void cphil_infer_vgelu_avx2(float *x, int n) { ACT_LOOP8(vm8_gelu(v)) }

/* ---- the LSTM cell in one pass over 8 units at a time -------------------------------------- */
AI void lstm8(float *g, const float *pre, float *h, float *c, int H, int j, __m256i k, const int full) {
    __m256 gi = ld8(g + j, k, full), gf = ld8(g + H + j, k, full);
    __m256 gg = ld8(g + 2 * H + j, k, full), go = ld8(g + 3 * H + j, k, full);
    if (pre) {
        gi = _mm256_add_ps(gi, ld8(pre + j, k, full));
        gf = _mm256_add_ps(gf, ld8(pre + H + j, k, full));
        gg = _mm256_add_ps(gg, ld8(pre + 2 * H + j, k, full));
        go = _mm256_add_ps(go, ld8(pre + 3 * H + j, k, full));
    }
    gi = vm8_sigmoid(gi);
    gf = vm8_sigmoid(gf);
    gg = vm8_tanh(gg);
    go = vm8_sigmoid(go);
    __m256 cn = _mm256_fmadd_ps(gf, ld8(c + j, k, full), _mm256_mul_ps(gi, gg));
    st8(c + j, k, cn, full);
    st8(h + j, k, _mm256_mul_ps(go, vm8_tanh(cn)), full);
}

void cphil_infer_lstm_cell_avx2(float *g, const float *pre, float *h, float *c, int H, float *tmp) {
    (void)tmp;
    int j = 0;
    for (; j + 8 <= H; j += 8) lstm8(g, pre, h, c, H, j, tail8(8), 1);
    if (j < H) lstm8(g, pre, h, c, H, j, tail8(H - j), 0);
}

/* ---- Mamba: fused scan step, conv + SiLU, RMSNorm ------------------------------------------- */
/* One block of 8 channels: the N state rows read and written once, two partial sums over n. */
AI void ssm8(int I, int N, const float *A2, const float *xc, const float *B, const float *C, const float *D, float *h,
             float *y, int i, __m256 d, __m256 g, __m256i k, const int full) {
    __m256 x = ld8(xc + i, k, full);
    __m256 dx = _mm256_mul_ps(d, x), acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    const float *a = A2 + i;
    float *hp = h + i;
    int n = 0;
    for (; n + 2 <= N; n += 2) {
        const float *a0 = a + (size_t)n * I, *a1 = a0 + I;
        float *h0 = hp + (size_t)n * I, *h1 = h0 + I;
        __m256 e0 = vm8_exp2(_mm256_mul_ps(d, ld8(a0, k, full)));
        __m256 e1 = vm8_exp2(_mm256_mul_ps(d, ld8(a1, k, full)));
        __m256 v0 = _mm256_fmadd_ps(e0, ld8(h0, k, full), _mm256_mul_ps(dx, _mm256_set1_ps(B[n])));
        __m256 v1 = _mm256_fmadd_ps(e1, ld8(h1, k, full), _mm256_mul_ps(dx, _mm256_set1_ps(B[n + 1])));
        st8(h0, k, v0, full);
        st8(h1, k, v1, full);
        acc0 = _mm256_fmadd_ps(v0, _mm256_set1_ps(C[n]), acc0);
        acc1 = _mm256_fmadd_ps(v1, _mm256_set1_ps(C[n + 1]), acc1);
    }
    if (n < N) {
        float *h0 = hp + (size_t)n * I;
        __m256 e0 = vm8_exp2(_mm256_mul_ps(d, ld8(a + (size_t)n * I, k, full)));
        __m256 v0 = _mm256_fmadd_ps(e0, ld8(h0, k, full), _mm256_mul_ps(dx, _mm256_set1_ps(B[n])));
        st8(h0, k, v0, full);
        acc0 = _mm256_fmadd_ps(v0, _mm256_set1_ps(C[n]), acc0);
    }
    __m256 acc = _mm256_fmadd_ps(ld8(D + i, k, full), x, _mm256_add_ps(acc0, acc1));
    st8(y + i, k, _mm256_mul_ps(acc, g), full);
}

/* softplus(dt) and silu(z) of the next block are computed before this block's scan so that
 * their latency overlaps it (as the AVX-512 form). y may alias xc or dtr: each block's dtr is
 * read one block ahead of its y store, xc within the block before the store. */
void cphil_infer_ssm_gated_avx2(int I, int N, const float *A2, const float *dtr, const float *xc, const float *z,
                          const float *B, const float *C, const float *D, float *h, float *y) {
    __m256i kn = tail8(I);
    __m256 dn = vm8_softplus(_mm256_maskload_ps(dtr, kn)), gn = vm8_silu(_mm256_maskload_ps(z, kn));
    for (int i = 0; i < I; i += 8) {
        const __m256i k = kn;
        const __m256 d = dn, g = gn;
        if (i + 8 < I) {
            kn = tail8(I - i - 8);
            dn = vm8_softplus(_mm256_maskload_ps(dtr + i + 8, kn));
            gn = vm8_silu(_mm256_maskload_ps(z + i + 8, kn));
        }
        if (I - i >= 8) ssm8(I, N, A2, xc, B, C, D, h, y, i, d, g, k, 1);
        else ssm8(I, N, A2, xc, B, C, D, h, y, i, d, g, k, 0);
    }
}

/* Depthwise conv at one position + SiLU, 8 channels at a time; the taps summed in order. The
 * present taps come in a local list (tp, wp: nt of them): read through the caller's array, each
 * would be reloaded after every store (the build has -fno-strict-aliasing). */
AI void conv8(int nt, const float *const *wp, const float *const *tp, const float *b, float *save, float *out,
              const float *last, int i, __m256i k, const int full) {
    __m256 acc = ld8(b + i, k, full);
    for (int j = 0; j < nt; j++) acc = _mm256_fmadd_ps(ld8(wp[j] + i, k, full), ld8(tp[j] + i, k, full), acc);
    if (save) st8(save + i, k, last ? ld8(last + i, k, full) : _mm256_setzero_ps(), full);
    st8(out + i, k, vm8_silu(acc), full);
}

void cphil_infer_conv_silu_avx2(int I, int K, const float *w, const float *b, const float *const *tap, float *save,
                          float *out) {
    enum { KMAX = 16 };
    const float *tl[KMAX], *wl[KMAX];
    const float *const *tp = tl, *const *wp = wl;
    const float *last = tap[K - 1];
    int nt = 0;
    if (K <= KMAX) {
        for (int j = 0; j < K; j++)
            if (tap[j]) {
                tl[nt] = tap[j];
                wl[nt++] = w + (size_t)j * I;
            }
    } else { /* longer kernels: each tap through the caller's array, one at a time */
        for (int i = 0; i < I; i += 8) {
            const __m256i k = tail8(I - i);
            __m256 acc = _mm256_maskload_ps(b + i, k);
            for (int j = 0; j < K; j++)
                if (tap[j]) acc = _mm256_fmadd_ps(_mm256_maskload_ps(w + (size_t)j * I + i, k), _mm256_maskload_ps(tap[j] + i, k), acc);
            if (save) _mm256_maskstore_ps(save + i, k, last ? _mm256_maskload_ps(last + i, k) : _mm256_setzero_ps());
            _mm256_maskstore_ps(out + i, k, vm8_silu(acc));
        }
        return;
    }
    int i = 0;
    for (; i + 8 <= I; i += 8) conv8(nt, wp, tp, b, save, out, last, i, tail8(8), 1);
    if (i < I) conv8(nt, wp, tp, b, save, out, last, i, tail8(I - i), 0);
}

/* RMSNorm: squares summed in double (exact products), 8 floats = two 4-lane chains per step */
void cphil_infer_rmsnorm_avx2(const float *x, const float *w, float *y, int n, float eps) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    for (int i = 0; i < n; i += 8) {
        __m256 v = _mm256_maskload_ps(x + i, tail8(n - i));
        __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        s0 = _mm256_fmadd_pd(lo, lo, s0);
        s1 = _mm256_fmadd_pd(hi, hi, s1);
    }
    double ss = hsum4d(_mm256_add_pd(s0, s1));
    const __m256 r = _mm256_set1_ps((float)(1.0 / sqrt(ss / n + eps)));
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), r), _mm256_loadu_ps(w + i)));
    if (i < n) {
        __m256i k = tail8(n - i);
        __m256 v = _mm256_maskload_ps(x + i, k);
        _mm256_maskstore_ps(y + i, k, _mm256_mul_ps(_mm256_mul_ps(v, r), _mm256_maskload_ps(w + i, k)));
    }
}

/* ---- attention's pieces: LayerNorm over rows, one head of softmax attention ----------------- */
/* R rows at a time (their dependency chains interleaved), as ln_rows in infer_kern_avx512.c:
 * the mean summed in f64 (8 floats at a time as two halves of 4); then the centred values
 * d = (x - mu_hi) - mu_lo in f32 (mu split into two floats), their squares summed in f32 over 8
 * lanes, and y = d r w + b. Full blocks of 8 use plain loads; the ragged tail masked loads (the
 * masked lanes of d forced to 0). */
AI void ln_rows8(const float *X, int ldx, const float *w, const float *b, float *Y, int ldy, int n, float eps,
                 const int R) {
    __m256d s0[4], s1[4];
    __m256 vmh[4], vml[4], q[4], vr[4];
    const int n8 = n & ~7;
    const __m256i kt = tail8(n - n8);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) s0[r] = s1[r] = _mm256_setzero_pd();
    for (int i = 0; i < n; i += 8) {
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const float *xp = X + (size_t)r * ldx + i;
            __m256 v = i < n8 ? _mm256_loadu_ps(xp) : _mm256_maskload_ps(xp, kt);
            s0[r] = _mm256_add_pd(s0[r], _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
            s1[r] = _mm256_add_pd(s1[r], _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        const double mu = hsum4d(_mm256_add_pd(s0[r], s1[r])) / n;
        const float mh = (float)mu;
        vmh[r] = _mm256_set1_ps(mh);
        vml[r] = _mm256_set1_ps((float)(mu - (double)mh));
        q[r] = _mm256_setzero_ps();
    }
    for (int i = 0; i < n8; i += 8) {
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m256 d = _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(X + (size_t)r * ldx + i), vmh[r]), vml[r]);
            q[r] = _mm256_fmadd_ps(d, d, q[r]);
        }
    }
    if (n8 < n) {
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m256 x = _mm256_maskload_ps(X + (size_t)r * ldx + n8, kt);
            __m256 d = _mm256_and_ps(_mm256_castsi256_ps(kt), _mm256_sub_ps(_mm256_sub_ps(x, vmh[r]), vml[r]));
            q[r] = _mm256_fmadd_ps(d, d, q[r]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        const double var = (double)hsum8(q[r]) / n;
        vr[r] = _mm256_set1_ps((float)(1.0 / sqrt(var + eps)));
    }
    for (int i = 0; i < n; i += 8) {
        const int full = i < n8;
        const __m256 vw = ld8(w + i, kt, full), vb = ld8(b + i, kt, full);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m256 x = ld8(X + (size_t)r * ldx + i, kt, full);
            __m256 d = _mm256_sub_ps(_mm256_sub_ps(x, vmh[r]), vml[r]);
            st8(Y + (size_t)r * ldy + i, kt, _mm256_fmadd_ps(_mm256_mul_ps(d, vr[r]), vw, vb), full);
        }
    }
}

void cphil_infer_layernorm_avx2(int M, const float *X, int ldx, const float *w, const float *b, float *Y, int ldy, int n,
                          float eps) {
    int m = 0;
    for (; m + 4 <= M; m += 4) ln_rows8(X + (size_t)m * ldx, ldx, w, b, Y + (size_t)m * ldy, ldy, n, eps, 4);
    for (; m < M; m++) ln_rows8(X + (size_t)m * ldx, ldx, w, b, Y + (size_t)m * ldy, ldy, n, eps, 1);
}

/* Scores of keys [j0, j0 + 8 NB) (masked at n) into sc, running max in *mx: one broadcast of
 * q[i] feeds NB independent accumulators. */
AI void att_scores8(const float *q, const float *KT, int ldkt, int j0, int n, int dh, __m256 scale, float *sc,
                    __m256 *mx, const int NB) {
    __m256 acc[4];
    __m256i k[4];
#pragma GCC unroll 4
    for (int b = 0; b < NB; b++) {
        acc[b] = _mm256_setzero_ps();
        k[b] = tail8(n - j0 - 8 * b);
    }
    for (int i = 0; i < dh; i++) {
        __m256 qb = _mm256_broadcast_ss(q + i);
        const float *kr = KT + (size_t)i * ldkt + j0;
#pragma GCC unroll 4
        for (int b = 0; b < NB; b++) /* blocks before the last are full */
            acc[b] = _mm256_fmadd_ps(qb, b < NB - 1 ? _mm256_loadu_ps(kr + 8 * b) : _mm256_maskload_ps(kr + 8 * b, k[b]),
                                     acc[b]);
    }
#pragma GCC unroll 4
    for (int b = 0; b < NB; b++) {
        __m256 s = _mm256_mul_ps(acc[b], scale);
        _mm256_maskstore_ps(sc + j0 + 8 * b, k[b], s);
        *mx = _mm256_max_ps(*mx, _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), s, _mm256_castsi256_ps(k[b])));
    }
}

/* out[c0, c0 + 8 NB) = inv * sum_j p_j v_j[...]: two key parities x NB column blocks of chains. */
AI void att_pv8(const float *p, const float *V, int ldv, int n, int c0, int dh, __m256 inv, float *out, const int NB) {
    __m256 a0[4], a1[4];
    __m256i k[4];
#pragma GCC unroll 4
    for (int b = 0; b < NB; b++) {
        a0[b] = a1[b] = _mm256_setzero_ps();
        k[b] = tail8(dh - c0 - 8 * b);
    }
    int j = 0;
    for (; j + 2 <= n; j += 2) {
        __m256 p0 = _mm256_broadcast_ss(p + j), p1 = _mm256_broadcast_ss(p + j + 1);
        const float *v0 = V + (size_t)j * ldv + c0, *v1 = v0 + ldv;
#pragma GCC unroll 4
        for (int b = 0; b < NB; b++) {
            a0[b] = _mm256_fmadd_ps(p0, _mm256_maskload_ps(v0 + 8 * b, k[b]), a0[b]);
            a1[b] = _mm256_fmadd_ps(p1, _mm256_maskload_ps(v1 + 8 * b, k[b]), a1[b]);
        }
    }
    if (j < n) {
        __m256 p0 = _mm256_broadcast_ss(p + j);
        const float *v0 = V + (size_t)j * ldv + c0;
#pragma GCC unroll 4
        for (int b = 0; b < NB; b++) a0[b] = _mm256_fmadd_ps(p0, _mm256_maskload_ps(v0 + 8 * b, k[b]), a0[b]);
    }
#pragma GCC unroll 4
    for (int b = 0; b < NB; b++) _mm256_maskstore_ps(out + c0 + 8 * b, k[b], _mm256_mul_ps(_mm256_add_ps(a0[b], a1[b]), inv));
}

/* exp(sc[j] - m) in place for j < n, zeros for n <= j < nz; returns the sum */
static float exp_shift_sum(float *sc, int n, int nz, float m) {
    const __m256 vm = _mm256_set1_ps(m);
    __m256 vs = _mm256_setzero_ps();
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 e = vm8_exp(_mm256_sub_ps(_mm256_loadu_ps(sc + j), vm));
        _mm256_storeu_ps(sc + j, e);
        vs = _mm256_add_ps(vs, e);
    }
    for (; j < nz; j += 8) {
        __m256i k = tail8(n - j);
        __m256 e = _mm256_and_ps(_mm256_castsi256_ps(k), vm8_exp(_mm256_sub_ps(_mm256_maskload_ps(sc + j, k), vm)));
        _mm256_maskstore_ps(sc + j, tail8(nz - j), e);
        vs = _mm256_add_ps(vs, e);
    }
    return hsum8(vs);
}

void cphil_infer_attend_head_avx2(const float *q, const float *KT, int ldkt, const float *V, int ldv, int n, int dh,
                            float scale, float *out, float *sc) {
    const __m256 vscale = _mm256_set1_ps(scale);
    __m256 mx = _mm256_set1_ps(-INFINITY);
    int j0 = 0;
    for (; j0 < n - 24; j0 += 32) att_scores8(q, KT, ldkt, j0, n, dh, vscale, sc, &mx, 4);
    switch ((n - j0 + 7) / 8) {
    case 1: att_scores8(q, KT, ldkt, j0, n, dh, vscale, sc, &mx, 1); break;
    case 2: att_scores8(q, KT, ldkt, j0, n, dh, vscale, sc, &mx, 2); break;
    case 3: att_scores8(q, KT, ldkt, j0, n, dh, vscale, sc, &mx, 3); break;
    default: break;
    }
    const __m256 inv = _mm256_set1_ps(1.f / exp_shift_sum(sc, n, (n + 7) & ~7, hmax8(mx)));
    int c0 = 0;
    for (; c0 < dh - 24; c0 += 32) att_pv8(sc, V, ldv, n, c0, dh, inv, out, 4);
    switch ((dh - c0 + 7) / 8) {
    case 1: att_pv8(sc, V, ldv, n, c0, dh, inv, out, 1); break;
    case 2: att_pv8(sc, V, ldv, n, c0, dh, inv, out, 2); break;
    case 3: att_pv8(sc, V, ldv, n, c0, dh, inv, out, 3); break;
    default: break;
    }
}

/* ---- causal attention, four queries at a time (4 x 16 register tiles) ----------------------- */
/* S[r][j0 .. j0 + 8 NB) = scale q_r . k_j for the four queries r (masked at nmax keys). */
AI void attc_scores8(const float *const q[4], const float *KT, int ldkt, int j0, int nmax, int dh, __m256 scale,
                     float *S, int lds, const int NB) {
    __m256 acc[4][2];
    __m256i k[2];
#pragma GCC unroll 2
    for (int b = 0; b < NB; b++) {
        k[b] = tail8(nmax - j0 - 8 * b);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) acc[r][b] = _mm256_setzero_ps();
    }
    for (int i = 0; i < dh; i++) {
        const float *kr = KT + (size_t)i * ldkt + j0;
        __m256 kv[2];
#pragma GCC unroll 2
        for (int b = 0; b < NB; b++) /* blocks before the last are full */
            kv[b] = b < NB - 1 ? _mm256_loadu_ps(kr + 8 * b) : _mm256_maskload_ps(kr + 8 * b, k[b]);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            __m256 qb = _mm256_broadcast_ss(q[r] + i);
#pragma GCC unroll 2
            for (int b = 0; b < NB; b++) acc[r][b] = _mm256_fmadd_ps(qb, kv[b], acc[r][b]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 2
        for (int b = 0; b < NB; b++)
            _mm256_maskstore_ps(S + (size_t)r * lds + j0 + 8 * b, k[b], _mm256_mul_ps(acc[r][b], scale));
}

/* o_r[c0 .. c0 + 8 NB) = inv_r sum_{j < nmax} S[r][j] v_j[...] (S zero past each row's keys). */
AI void attc_pv8(const float *S, int lds, const float *V, int ldv, int nmax, int c0, int dh, const float inv[4],
                 float *const o[4], const int NB) {
    __m256 acc[4][2];
    __m256i k[2];
#pragma GCC unroll 2
    for (int b = 0; b < NB; b++) {
        k[b] = tail8(dh - c0 - 8 * b);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) acc[r][b] = _mm256_setzero_ps();
    }
    for (int j = 0; j < nmax; j++) {
        const float *vj = V + (size_t)j * ldv + c0;
        __m256 vv[2];
#pragma GCC unroll 2
        for (int b = 0; b < NB; b++) vv[b] = _mm256_maskload_ps(vj + 8 * b, k[b]);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            __m256 p = _mm256_broadcast_ss(S + (size_t)r * lds + j);
#pragma GCC unroll 2
            for (int b = 0; b < NB; b++) acc[r][b] = _mm256_fmadd_ps(p, vv[b], acc[r][b]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 2
        for (int b = 0; b < NB; b++)
            _mm256_maskstore_ps(o[r] + c0 + 8 * b, k[b], _mm256_mul_ps(acc[r][b], _mm256_set1_ps(inv[r])));
}

void cphil_infer_attend_causal_avx2(const float *Q, int ldq, const float *KT, int ldkt, const float *V, int ldv, int t0,
                              int T, int dh, float scale, float *O, int ldo, float *S) {
    const __m256 vscale = _mm256_set1_ps(scale);
    float *dummy = S + 4 * (size_t)ldkt;
    for (int t = t0; t < T; t += 4) {
        if (T - t == 1) { /* a lone query (the last layer's): the one-query kernel */
            cphil_infer_attend_head_avx2(Q + (size_t)t * ldq, KT, ldkt, V, ldv, t + 1, dh, scale, O + (size_t)(t - t0) * ldo, S);
            break;
        }
        /* rows past T repeat the last query; their output goes to scratch */
        const float *q[4];
        float *o[4];
        int nr[4];
        for (int r = 0; r < 4; r++) {
            int tr = t + r < T ? t + r : T - 1;
            q[r] = Q + (size_t)tr * ldq;
            o[r] = t + r < T ? O + (size_t)(t + r - t0) * ldo : dummy;
            nr[r] = tr + 1;
        }
        const int nmax = nr[3];
        int j0 = 0;
        for (; j0 < nmax - 8; j0 += 16) attc_scores8(q, KT, ldkt, j0, nmax, dh, vscale, S, ldkt, 2);
        if (j0 < nmax) attc_scores8(q, KT, ldkt, j0, nmax, dh, vscale, S, ldkt, 1);
        /* softmax of each row over its keys; zeros up to nmax */
        float inv[4];
        for (int r = 0; r < 4; r++) {
            float *sr = S + (size_t)r * ldkt;
            __m256 mx = _mm256_set1_ps(-INFINITY);
            for (int j = 0; j < nr[r]; j += 8) {
                __m256i kn = tail8(nr[r] - j);
                mx = _mm256_max_ps(mx, _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), _mm256_maskload_ps(sr + j, kn),
                                                        _mm256_castsi256_ps(kn)));
            }
            inv[r] = 1.f / exp_shift_sum(sr, nr[r], nmax, hmax8(mx));
        }
        int c0 = 0;
        for (; c0 < dh - 8; c0 += 16) attc_pv8(S, ldkt, V, ldv, nmax, c0, dh, inv, o, 2);
        if (c0 < dh) attc_pv8(S, ldkt, V, ldv, nmax, c0, dh, inv, o, 1);
    }
}

/* ---- RoPE pairs, row transposes ------------------------------------------------------------- */
/* FMA forms: a c - b s as fmsub(a, c, b s), a s + b c as fmadd(a, s, b c). */
AI void rope8(const float *a, const float *b, const float *c, const float *s, float *oa, float *ob, int j, __m256i k,
              const int full) {
    __m256 x = ld8(a + j, k, full), y = ld8(b + j, k, full);
    __m256 vc = ld8(c + j, k, full), vs = ld8(s + j, k, full);
    st8(oa + j, k, _mm256_fmsub_ps(x, vc, _mm256_mul_ps(y, vs)), full);
    st8(ob + j, k, _mm256_fmadd_ps(x, vs, _mm256_mul_ps(y, vc)), full);
}

void cphil_infer_rope_pairs_avx2(const float *a, const float *b, const float *c, const float *s, float *oa, float *ob,
                           int n) {
    int j = 0;
    for (; j + 8 <= n; j += 8) rope8(a, b, c, s, oa, ob, j, tail8(8), 1);
    if (j < n) rope8(a, b, c, s, oa, ob, j, tail8(n - j), 0);
}

/* In-register transpose of 8 rows of 8 floats: r[i][j] -> r[j][i] (unpack pairs, 4 x 4 within
 * 128-bit lanes, then the lanes across registers). */
AI void transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++) {
        u[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    /* u[4i + k], 128-bit lane L: rows 4i..4i+3 of column 4L + k */
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        r[k] = _mm256_permute2f128_ps(u[k], u[4 + k], 0x20);
        r[4 + k] = _mm256_permute2f128_ps(u[k], u[4 + k], 0x31);
    }
}

void cphil_infer_transpose_rows_avx2(const float *const *rows, int off, int T, int n, float *dst, int ldd) {
    for (int t0 = 0; t0 < T; t0 += 8) {
        const int nt = T - t0 < 8 ? T - t0 : 8;
        const __m256i kt = tail8(nt);
        for (int c0 = 0; c0 < n; c0 += 8) {
            const __m256i kc = tail8(n - c0);
            __m256 r[8];
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++)
                r[i] = i < nt ? _mm256_maskload_ps(rows[t0 + i] + off + c0, kc) : _mm256_setzero_ps();
            transpose8(r);
            const int nc = n - c0 < 8 ? n - c0 : 8;
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++)
                if (i < nc) _mm256_maskstore_ps(dst + (size_t)(c0 + i) * ldd + t0, kt, r[i]);
        }
    }
}
