/* infer_kern.c — the engine's view of the ISA tier, and the scalar twins and dispatch of its
 * elementwise work (activations, the LSTM cell, Mamba's conv + SiLU and its fused scan step,
 * attention's pieces). The matrix products are the kernels' (src/kernels/cpu/panel.h). Does not:
 * any SIMD (infer_kern_avx512.c, infer_kern_avx2.c: every kernel has both tiers).
 */
#include "infer/infer_kern.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/vmath.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- tier: the panel products' (src/kernels/cpu/panel.c), so products and elementwise work
 * always run on the same tier. ---------------------------------------------------------------- */
cphil_isa cphil_infer_isa_best(void) { return (cphil_isa)cphil_pmat_isa_best(); }
cphil_isa cphil_infer_isa_default(void) {
    cphil_isa d = cphil_isa_default(), b = cphil_pmat_isa_best();
    return (cphil_isa)(d < b ? d : b);
}

cphil_isa cphil_infer_isa_set(cphil_isa isa) {
    cphil_isa best = cphil_infer_isa_best();
    if (isa > best) isa = best;
    cphil_isa_set((cphil_isa)isa);
    return cphil_infer_isa_get();
}

cphil_isa cphil_infer_isa_get(void) { return (cphil_isa)cphil_pmat_isa(); }

const char *cphil_infer_isa_name(cphil_isa isa) {
    switch (isa) {
    case CPHIL_ISA_SCALAR: return "scalar";
    case CPHIL_ISA_AVX2: return "avx2";
    case CPHIL_ISA_AVX512: return "avx512";
    }
    return "?";
}

/* ---- activations: scalar reference and dispatch ------------------------------------------ */
void cphil_infer_vexp_ref(float *x, int n) {
    for (int i = 0; i < n; i++) x[i] = cphil_vm_exp(x[i]);
}
void cphil_infer_vsigmoid_ref(float *x, int n) {
    for (int i = 0; i < n; i++) x[i] = cphil_vm_sigmoid(x[i]);
}
void cphil_infer_vtanh_ref(float *x, int n) {
    for (int i = 0; i < n; i++) x[i] = cphil_vm_tanh(x[i]);
}
void cphil_infer_vsilu_ref(float *x, int n) {
    for (int i = 0; i < n; i++) x[i] = cphil_vm_silu(x[i]);
}
void cphil_infer_vsoftplus_ref(float *x, int n) {
    for (int i = 0; i < n; i++) x[i] = cphil_vm_softplus(x[i]);
}

#define DISPATCH_ACT(name)                                                                     \
    void cphil_infer_##name(float *x, int n) {                                                 \
        cphil_isa isa_ = cphil_infer_isa_get();                                                \
        if (isa_ == CPHIL_ISA_AVX512) cphil_infer_##name##_avx512(x, n);                       \
        else if (isa_ == CPHIL_ISA_AVX2) cphil_infer_##name##_avx2(x, n);                      \
        else cphil_infer_##name##_ref(x, n);                                                   \
    }
DISPATCH_ACT(vexp)
DISPATCH_ACT(vsigmoid)
DISPATCH_ACT(vtanh)
DISPATCH_ACT(vsilu)
DISPATCH_ACT(vsoftplus)

void cphil_infer_lstm_cell_ref(float *g, const float *pre, float *h, float *c, int H, float *tmp) {
    if (pre)
        for (int j = 0; j < 4 * H; j++) g[j] += pre[j];
    cphil_infer_vsigmoid_ref(g, 2 * H);
    cphil_infer_vtanh_ref(g + 2 * H, H);
    cphil_infer_vsigmoid_ref(g + 3 * H, H);
    for (int j = 0; j < H; j++) tmp[j] = c[j] = g[H + j] * c[j] + g[j] * g[2 * H + j];
    cphil_infer_vtanh_ref(tmp, H);
    for (int j = 0; j < H; j++) h[j] = g[3 * H + j] * tmp[j];
}

void cphil_infer_lstm_cell(float *g, const float *pre, float *h, float *c, int H, float *tmp) {
    cphil_isa isa = cphil_infer_isa_get();
    if (isa == CPHIL_ISA_AVX512) cphil_infer_lstm_cell_avx512(g, pre, h, c, H, tmp);
    else if (isa == CPHIL_ISA_AVX2) cphil_infer_lstm_cell_avx2(g, pre, h, c, H, tmp);
    else cphil_infer_lstm_cell_ref(g, pre, h, c, H, tmp);
}

void cphil_infer_ssm_gated_ref(int I, int N, const float *A2, const float *dtr, const float *xc, const float *z,
                         const float *B, const float *C, const float *D, float *h, float *y) {
    for (int i = 0; i < I; i++) {
        float d = cphil_vm_softplus(dtr[i]);
        float x = xc[i], dx = d * x, zi = z[i], acc = 0.f;
        for (int n = 0; n < N; n++) {
            float *hn = h + (size_t)n * I + i;
            *hn = cphil_vm_exp2(d * A2[(size_t)n * I + i]) * *hn + dx * B[n];
            acc += *hn * C[n];
        }
        y[i] = (acc + D[i] * x) * cphil_vm_silu(zi);
    }
}

void cphil_infer_ssm_gated(int I, int N, const float *A2, const float *dtr, const float *xc, const float *z,
                     const float *B, const float *C, const float *D, float *h, float *y) {
    cphil_isa isa = cphil_infer_isa_get();
    if (isa == CPHIL_ISA_AVX512) cphil_infer_ssm_gated_avx512(I, N, A2, dtr, xc, z, B, C, D, h, y);
    else if (isa == CPHIL_ISA_AVX2) cphil_infer_ssm_gated_avx2(I, N, A2, dtr, xc, z, B, C, D, h, y);
    else cphil_infer_ssm_gated_ref(I, N, A2, dtr, xc, z, B, C, D, h, y);
}

void cphil_infer_conv_silu_ref(int I, int K, const float *w, const float *b, const float *const *tap, float *save,
                         float *out) {
    /* tap by tap over all channels (the same order of sums; contiguous loops the compiler
     * vectorizes), then the copy into save (which may be tap[0]) and the SiLU */
    for (int i = 0; i < I; i++) out[i] = b[i];
    for (int j = 0; j < K; j++) {
        const float *t = tap[j], *wj = w + (size_t)j * I;
        if (t)
            for (int i = 0; i < I; i++) out[i] += wj[i] * t[i];
    }
    if (save) {
        if (tap[K - 1]) memmove(save, tap[K - 1], sizeof(float) * (size_t)I);
        else memset(save, 0, sizeof(float) * (size_t)I);
    }
    for (int i = 0; i < I; i++) out[i] = cphil_vm_silu(out[i]);
}

/* ---- attention's pieces: GELU, LayerNorm, one head of softmax attention ------------------ */
void cphil_infer_vgelu_ref(float *x, int n) {
    for (int i = 0; i < n; i++) x[i] = cphil_vm_gelu(x[i]);
}

void cphil_infer_vgelu(float *x, int n) {
    cphil_isa isa = cphil_infer_isa_get();
    if (isa == CPHIL_ISA_AVX512) cphil_infer_vgelu_avx512(x, n);
    else if (isa == CPHIL_ISA_AVX2) cphil_infer_vgelu_avx2(x, n);
    else cphil_infer_vgelu_ref(x, n);
}

void cphil_infer_layernorm_ref(int M, const float *X, int ldx, const float *w, const float *b, float *Y, int ldy, int n,
                         float eps) {
    for (int m = 0; m < M; m++) {
        const float *x = X + (size_t)m * ldx;
        float *y = Y + (size_t)m * ldy;
        double mu = 0.0, var = 0.0;
        for (int i = 0; i < n; i++) mu += x[i];
        mu /= n;
        for (int i = 0; i < n; i++) var += ((double)x[i] - mu) * ((double)x[i] - mu);
        var /= n;
        float r = (float)(1.0 / sqrt(var + eps));
        for (int i = 0; i < n; i++) y[i] = ((float)(x[i] - mu)) * r * w[i] + b[i];
    }
}

void cphil_infer_layernorm(int M, const float *X, int ldx, const float *w, const float *b, float *Y, int ldy, int n,
                     float eps) {
    cphil_isa isa = cphil_infer_isa_get();
    if (isa == CPHIL_ISA_AVX512) cphil_infer_layernorm_avx512(M, X, ldx, w, b, Y, ldy, n, eps);
    else if (isa == CPHIL_ISA_AVX2) cphil_infer_layernorm_avx2(M, X, ldx, w, b, Y, ldy, n, eps);
    else cphil_infer_layernorm_ref(M, X, ldx, w, b, Y, ldy, n, eps);
}

/* The twin keeps the layout (scores accumulated over i for all keys, P.V over the head size:
 * both contiguous, restrict-qualified, and allowed the "cheap" vectorizer cost model, so that the
 * baseline build vectorizes them over j and over i without changing any element's order of sums;
 * the softmax sum stays sequential). Results agree with the AVX-512 form within float rounding,
 * not bit for bit. */
__attribute__((optimize("vect-cost-model=cheap")))
void cphil_infer_attend_head_ref(const float *q, const float *KT, int ldkt, const float *V, int ldv, int n, int dh,
                           float scale, float *out, float *sc) {
    float *restrict s = sc, *restrict o = out;
    for (int j = 0; j < n; j++) s[j] = 0.f;
    for (int i = 0; i < dh; i++) {
        const float *restrict kr = KT + (size_t)i * ldkt;
        float qi = q[i];
        for (int j = 0; j < n; j++) s[j] += qi * kr[j];
    }
    float mx = -INFINITY;
    for (int j = 0; j < n; j++) {
        s[j] *= scale;
        mx = s[j] > mx ? s[j] : mx;
    }
    float sum = 0.f;
    for (int j = 0; j < n; j++) {
        s[j] = cphil_vm_exp(s[j] - mx);
        sum += s[j];
    }
    for (int i = 0; i < dh; i++) o[i] = 0.f;
    for (int j = 0; j < n; j++) {
        const float *restrict vj = V + (size_t)j * ldv;
        float p = s[j];
        for (int i = 0; i < dh; i++) o[i] += p * vj[i];
    }
    float inv = 1.f / sum;
    for (int i = 0; i < dh; i++) o[i] *= inv;
}

void cphil_infer_attend_head(const float *q, const float *KT, int ldkt, const float *V, int ldv, int n, int dh,
                       float scale, float *out, float *sc) {
    cphil_isa isa = cphil_infer_isa_get();
    if (isa == CPHIL_ISA_AVX512) cphil_infer_attend_head_avx512(q, KT, ldkt, V, ldv, n, dh, scale, out, sc);
    else if (isa == CPHIL_ISA_AVX2) cphil_infer_attend_head_avx2(q, KT, ldkt, V, ldv, n, dh, scale, out, sc);
    else cphil_infer_attend_head_ref(q, KT, ldkt, V, ldv, n, dh, scale, out, sc);
}

void cphil_infer_conv_silu(int I, int K, const float *w, const float *b, const float *const *tap, float *save, float *out) {
    cphil_isa isa = cphil_infer_isa_get();
    if (isa == CPHIL_ISA_AVX512) cphil_infer_conv_silu_avx512(I, K, w, b, tap, save, out);
    else if (isa == CPHIL_ISA_AVX2) cphil_infer_conv_silu_avx2(I, K, w, b, tap, save, out);
    else cphil_infer_conv_silu_ref(I, K, w, b, tap, save, out);
}

void cphil_infer_rmsnorm_ref(const float *x, const float *w, float *y, int n, float eps) {
    /* four independent f64 partial sums (one chain was latency-bound) */
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    int i4 = 0;
    for (; i4 + 4 <= n; i4 += 4) {
        s0 += (double)x[i4] * x[i4];
        s1 += (double)x[i4 + 1] * x[i4 + 1];
        s2 += (double)x[i4 + 2] * x[i4 + 2];
        s3 += (double)x[i4 + 3] * x[i4 + 3];
    }
    for (; i4 < n; i4++) s0 += (double)x[i4] * x[i4];
    double ss = (s0 + s1) + (s2 + s3);
    float r = (float)(1.0 / sqrt(ss / n + eps));
    for (int i = 0; i < n; i++) y[i] = x[i] * r * w[i];
}

void cphil_infer_rmsnorm(const float *x, const float *w, float *y, int n, float eps) {
    cphil_isa isa = cphil_infer_isa_get();
    if (isa == CPHIL_ISA_AVX512) cphil_infer_rmsnorm_avx512(x, w, y, n, eps);
    else if (isa == CPHIL_ISA_AVX2) cphil_infer_rmsnorm_avx2(x, w, y, n, eps);
    else cphil_infer_rmsnorm_ref(x, w, y, n, eps);
}

void cphil_infer_attend_causal_ref(const float *Q, int ldq, const float *KT, int ldkt, const float *V, int ldv, int t0,
                             int T, int dh, float scale, float *O, int ldo, float *S) {
    for (int t = t0; t < T; t++)
        cphil_infer_attend_head_ref(Q + (size_t)t * ldq, KT, ldkt, V, ldv, t + 1, dh, scale, O + (size_t)(t - t0) * ldo, S);
}

void cphil_infer_attend_causal(const float *Q, int ldq, const float *KT, int ldkt, const float *V, int ldv, int t0, int T,
                         int dh, float scale, float *O, int ldo, float *S) {
    cphil_isa isa = cphil_infer_isa_get();
    if (isa == CPHIL_ISA_AVX512) cphil_infer_attend_causal_avx512(Q, ldq, KT, ldkt, V, ldv, t0, T, dh, scale, O, ldo, S);
    else if (isa == CPHIL_ISA_AVX2) cphil_infer_attend_causal_avx2(Q, ldq, KT, ldkt, V, ldv, t0, T, dh, scale, O, ldo, S);
    else cphil_infer_attend_causal_ref(Q, ldq, KT, ldkt, V, ldv, t0, T, dh, scale, O, ldo, S);
}

void cphil_infer_rope_pairs_ref(const float *a, const float *b, const float *c, const float *s, float *oa, float *ob, int n) {
    for (int j = 0; j < n; j++) {
        float x = a[j], y = b[j];
        oa[j] = x * c[j] - y * s[j];
        ob[j] = x * s[j] + y * c[j];
    }
}

void cphil_infer_rope_pairs(const float *a, const float *b, const float *c, const float *s, float *oa, float *ob, int n) {
    cphil_isa isa = cphil_infer_isa_get();
    if (isa == CPHIL_ISA_AVX512) cphil_infer_rope_pairs_avx512(a, b, c, s, oa, ob, n);
    else if (isa == CPHIL_ISA_AVX2) cphil_infer_rope_pairs_avx2(a, b, c, s, oa, ob, n);
    else cphil_infer_rope_pairs_ref(a, b, c, s, oa, ob, n);
}

void cphil_infer_transpose_rows_ref(const float *const *rows, int off, int T, int n, float *dst, int ldd) {
    for (int t = 0; t < T; t++)
        for (int c = 0; c < n; c++) dst[(size_t)c * ldd + t] = rows[t][off + c];
}

void cphil_infer_transpose_rows(const float *const *rows, int off, int T, int n, float *dst, int ldd) {
    cphil_isa isa = cphil_infer_isa_get();
    if (isa == CPHIL_ISA_AVX512) cphil_infer_transpose_rows_avx512(rows, off, T, n, dst, ldd);
    else if (isa == CPHIL_ISA_AVX2) cphil_infer_transpose_rows_avx2(rows, off, T, n, dst, ldd);
    else cphil_infer_transpose_rows_ref(rows, off, T, n, dst, ldd);
}
