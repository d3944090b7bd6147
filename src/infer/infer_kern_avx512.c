/* infer_kern_avx512.c — AVX-512 elementwise work of the inference engine: activations (the math
 * library src/kernels/cpu/vmath_impl.h on 16 lanes), the LSTM cell, Mamba's conv + SiLU and fused
 * scan step, and attention's pieces. Twins: *_ref in infer_kern.c. The matrix products are
 * src/kernels/cpu/panel*.c.
 */
#include "infer/infer_kern.h"

#include <immintrin.h>
#include <math.h>

#define AI static inline __attribute__((always_inline))
/* ---- activations: the library of src/kernels/cpu/vmath_impl.h on 16 lanes (vm16_exp, vm16_exp2,
 * vm16_log, vm16_tanh, vm16_sigmoid, vm16_silu, vm16_softplus, vm16_gelu): the same bits as the
 * scalar tier and the trainer. --------------------------------------------------------------- */
typedef int32_t vm16i __attribute__((vector_size(64)));
#define VF __m512
#define VI vm16i
#define VM(name) vm16_##name
#define VM_SPLAT(c) _mm512_set1_ps(c)
#define VM_SEL(m, a, b) ((VF)(((VI)(a) & (m)) | ((VI)(b) & ~(m))))
#define VM_TOINT(v) __builtin_convertvector((v), VI)
#define VM_TOFLOAT(i) __builtin_convertvector((i), VF)
#define VM_ASINT(v) ((VI)(v))
#define VM_ASFLOAT(i) ((VF)(i))
#define VM_FMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VM_MAXC(x, c) _mm512_max_ps(VM_SPLAT(c), (x))
#define VM_MINC(x, c) _mm512_min_ps(VM_SPLAT(c), (x))
#define VM_ROUND(v) (_mm512_roundscale_ps((v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))
#include "kernels/cpu/vmath_impl.h"

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

void cphil_infer_vexp_avx512(float *x, int n) { ACT_LOOP(vm16_exp(v)) }
void cphil_infer_vsigmoid_avx512(float *x, int n) { ACT_LOOP(vm16_sigmoid(v)) }
void cphil_infer_vsilu_avx512(float *x, int n) { ACT_LOOP(vm16_silu(v)) }
void cphil_infer_vtanh_avx512(float *x, int n) { ACT_LOOP(vm16_tanh(v)) }

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
        gi = vm16_sigmoid(gi);
        gf = vm16_sigmoid(gf);
        gg = vm16_tanh(gg);
        go = vm16_sigmoid(go);
        __m512 cn = _mm512_fmadd_ps(gf, _mm512_maskz_loadu_ps(k, c + j), _mm512_mul_ps(gi, gg));
        _mm512_mask_storeu_ps(c + j, k, cn);
        _mm512_mask_storeu_ps(h + j, k, _mm512_mul_ps(go, vm16_tanh(cn)));
    }
}
void cphil_infer_vsoftplus_avx512(float *x, int n) { ACT_LOOP(vm16_softplus(v)) }


/* One pass per 16 channels: the N state rows read and written once, two partial sums over n,
 * D x and the gate in registers. softplus(dt) and silu(z) of the next block are issued before
 * this block's scan so that their latency overlaps it. */
void cphil_infer_ssm_gated_avx512(int I, int N, const float *A2, const float *dtr, const float *xc, const float *z,
                            const float *B, const float *C, const float *D, float *h, float *y) {
    __mmask16 kn = I >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << I) - 1u);
    __m512 dn = vm16_softplus(_mm512_maskz_loadu_ps(kn, dtr)), gn = vm16_silu(_mm512_maskz_loadu_ps(kn, z));
    for (int i = 0; i < I; i += 16) {
        const __mmask16 k = kn;
        const __m512 d = dn, g = gn;
        if (i + 16 < I) {
            int rest = I - i - 16;
            kn = rest >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rest) - 1u);
            dn = vm16_softplus(_mm512_maskz_loadu_ps(kn, dtr + i + 16));
            gn = vm16_silu(_mm512_maskz_loadu_ps(kn, z + i + 16));
        }
        __m512 x = _mm512_maskz_loadu_ps(k, xc + i);
        __m512 dx = _mm512_mul_ps(d, x), acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
        const float *a = A2 + i;
        float *hp = h + i;
        int n = 0;
        for (; n + 2 <= N; n += 2) {
            const float *a0 = a + (size_t)n * I, *a1 = a0 + I;
            float *h0 = hp + (size_t)n * I, *h1 = h0 + I;
            __m512 e0 = vm16_exp2(_mm512_mul_ps(d, _mm512_maskz_loadu_ps(k, a0)));
            __m512 e1 = vm16_exp2(_mm512_mul_ps(d, _mm512_maskz_loadu_ps(k, a1)));
            __m512 v0 = _mm512_fmadd_ps(e0, _mm512_maskz_loadu_ps(k, h0), _mm512_mul_ps(dx, _mm512_set1_ps(B[n])));
            __m512 v1 = _mm512_fmadd_ps(e1, _mm512_maskz_loadu_ps(k, h1), _mm512_mul_ps(dx, _mm512_set1_ps(B[n + 1])));
            _mm512_mask_storeu_ps(h0, k, v0);
            _mm512_mask_storeu_ps(h1, k, v1);
            acc0 = _mm512_fmadd_ps(v0, _mm512_set1_ps(C[n]), acc0);
            acc1 = _mm512_fmadd_ps(v1, _mm512_set1_ps(C[n + 1]), acc1);
        }
        if (n < N) {
            float *h0 = hp + (size_t)n * I;
            __m512 e0 = vm16_exp2(_mm512_mul_ps(d, _mm512_maskz_loadu_ps(k, a + (size_t)n * I)));
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

void cphil_infer_vgelu_avx512(float *x, int n) { ACT_LOOP(vm16_gelu(v)) }

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
        __m512 e = _mm512_maskz_mov_ps(k, vm16_exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, sc + j), vm)));
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
        _mm512_mask_storeu_ps(out + i, k, vm16_silu(acc));
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
                __m512 e = _mm512_maskz_mov_ps(kn, vm16_exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(kn, sr + j), vm)));
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
