/* infer_kern.h — the inference engine's tier selection and elementwise kernels (activations,
 * the Mamba selective-scan step), each SIMD one with a scalar `_ref` twin.
 * The packed matrix products the engine runs are the kernels' (src/kernels/cpu/panel.h:
 * cphil_pmat_*); the engine's names for the weight types alias the kernels' cphil_wtype.
 * Attention's pieces (GELU, LayerNorm, one head of softmax attention over a key set) are here too.
 * Tiers: _avx512 (infer_kern_avx512.c), _avx2 (infer_kern_avx2.c: the same kernels on 8 lanes),
 * scalar _ref (infer_kern.c); the dispatch picks by cphil_infer_isa_get().
 * Does not: matrix products, training kernels.
 */
#ifndef CPHIL_INFER_KERN_H
#define CPHIL_INFER_KERN_H

#include "core/core.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/panel.h"

#include <stdint.h>

/* Precisions are the kernels' weight types (cphil_wtype) and ISA tiers the kernels' cphil_isa
 * (src/kernels/cpu/kernels.h): the engine has no names of its own for either. */

/* The ISA in use (CPHIL_ISA=scalar|avx2|avx512 forces one at first use; the CPU bounds it), as
 * the panel products see it (cphil_pmat_isa). */
cphil_isa cphil_infer_isa_get(void);
/* Force an ISA (tests); returns the one actually set (bounded by the CPU). */
cphil_isa cphil_infer_isa_set(cphil_isa isa);
/* The best this CPU supports. */
cphil_isa cphil_infer_isa_best(void);
/* The tier chosen at start (CPHIL_ISA, else the best): tests return to it after a loop over tiers. */
cphil_isa cphil_infer_isa_default(void);
const char *cphil_infer_isa_name(cphil_isa isa);

/* Elementwise activations in place (the engine's gates, scans and mixers): the math library of
 * src/kernels/cpu/vmath_impl.h (formulas and accuracy there) on every tier: _ref on one lane (the
 * same bits as the CPU trainer), _avx2 on 8 and _avx512 on 16 lanes (fused multiply-adds: within
 * 4 ulp of _ref). softplus follows PyTorch (x > 20 -> x). */
void cphil_infer_vexp(float *x, int n);
void cphil_infer_vsigmoid(float *x, int n);
void cphil_infer_vtanh(float *x, int n);
void cphil_infer_vsilu(float *x, int n);
void cphil_infer_vsoftplus(float *x, int n);
void cphil_infer_vexp_ref(float *x, int n);
void cphil_infer_vsigmoid_ref(float *x, int n);
void cphil_infer_vtanh_ref(float *x, int n);
void cphil_infer_vsilu_ref(float *x, int n);
void cphil_infer_vsoftplus_ref(float *x, int n);
void cphil_infer_vexp_avx512(float *x, int n);
void cphil_infer_vsigmoid_avx512(float *x, int n);
void cphil_infer_vtanh_avx512(float *x, int n);
void cphil_infer_vsilu_avx512(float *x, int n);
void cphil_infer_vsoftplus_avx512(float *x, int n);
/* LSTM cell: gates g[4H] (i f g o, pre-activation; pre[4H] added first when not NULL), state
 * h[H], c[H] updated: c = sig(f) c + sig(i) tanh(g), h = sig(o) tanh(c). g is clobbered; tmp[H]
 * is scratch. */
void cphil_infer_lstm_cell(float *g, const float *pre, float *h, float *c, int H, float *tmp);
void cphil_infer_lstm_cell_ref(float *g, const float *pre, float *h, float *c, int H, float *tmp);
void cphil_infer_lstm_cell_avx512(float *g, const float *pre, float *h, float *c, int H, float *tmp);
/* GELU, exact-erf form (PyTorch nn.GELU's default): x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), in
 * place: the library's cphil_vm_gelu (Phi from erfc/2 in base 2, so the lower tail keeps its
 * relative accuracy, which 1 + erff rounds away). The test bounds it by 4e-7 + 2e-6 |gelu(x)| on
 * [-14, 14] against double erfc. */
void cphil_infer_vgelu(float *x, int n);
void cphil_infer_vgelu_ref(float *x, int n);
void cphil_infer_vgelu_avx512(float *x, int n);
/* LayerNorm of M rows (X rows ldx apart, Y rows ldy apart, n values each):
 *   y = (x - mean) / sqrt(var + eps) * w + b
 * two passes per row. _ref sums the mean and the variance in f64; _avx512 takes four rows at a
 * time, sums the mean in f64 and the squares of the centred values (x - mean, the mean split
 * into two floats) in f32 over 16 lanes. Y must not overlap X. */
void cphil_infer_layernorm(int M, const float *X, int ldx, const float *w, const float *b, float *Y, int ldy, int n,
                     float eps);
void cphil_infer_layernorm_ref(int M, const float *X, int ldx, const float *w, const float *b, float *Y, int ldy, int n,
                         float eps);
void cphil_infer_layernorm_avx512(int M, const float *X, int ldx, const float *w, const float *b, float *Y, int ldy, int n,
                            float eps);
/* One head of softmax attention for one query over n >= 1 keys:
 *   s_j = scale (q . k_j),  p = softmax(s),  out = sum_j p_j v_j   (j < n)
 * q[dh]; the keys transposed, k_j[i] = KT[i * ldkt + j] (ldkt >= n), so that the scores are
 * computed 16 keys at a time; v_j = V + j * ldv; out[dh]; sc: scratch of n rounded up to 16.
 * out must not alias q, KT or V. */
void cphil_infer_attend_head(const float *q, const float *KT, int ldkt, const float *V, int ldv, int n, int dh,
                       float scale, float *out, float *sc);
void cphil_infer_attend_head_ref(const float *q, const float *KT, int ldkt, const float *V, int ldv, int n, int dh,
                           float scale, float *out, float *sc);
void cphil_infer_attend_head_avx512(const float *q, const float *KT, int ldkt, const float *V, int ldv, int n, int dh,
                              float scale, float *out, float *sc);
/* Mamba, one time step of the mixer after x_proj, fused into one pass over 16 channels (the
 * AVX-512 kernel keeps dt, the gate and the scan's partial sums in registers). State h[N][I],
 * A2[N][I] = A^T * log2(e) (A = -exp(A_log)), dtr[I] = dt_proj's output (bias included, before
 * the softplus), B[N], C[N] and D[I] as in Mamba:
 *   dt[i]   = softplus(dtr[i])                                 (PyTorch: x > 20 -> x)
 *   h[n][i] = 2^(dt[i] A2[n][i]) h[n][i] + dt[i] B[n] xc[i]     (2^(dt A2) = exp(dt A))
 *   y[i]    = (sum_n h[n][i] C[n] + D[i] xc[i]) * silu(z[i])
 * y may alias xc or dtr (each 16-lane block is read before it is written). softplus, 2^x and
 * silu are the math library's (src/kernels/cpu/vmath_impl.h) on every tier. */
void cphil_infer_ssm_gated(int I, int N, const float *A2, const float *dtr, const float *xc, const float *z,
                     const float *B, const float *C, const float *D, float *h, float *y);
void cphil_infer_ssm_gated_ref(int I, int N, const float *A2, const float *dtr, const float *xc, const float *z,
                         const float *B, const float *C, const float *D, float *h, float *y);
void cphil_infer_ssm_gated_avx512(int I, int N, const float *A2, const float *dtr, const float *xc, const float *z,
                            const float *B, const float *C, const float *D, float *h, float *y);
void cphil_infer_ssm_gated_avx2(int I, int N, const float *A2, const float *dtr, const float *xc, const float *z,
                          const float *B, const float *C, const float *D, float *h, float *y);
/* Mamba's causal depthwise conv at one position, with the SiLU: w[K][I] (taps oldest to newest,
 * contiguous over channels), b[I], tap[j] = the input j positions after the oldest (NULL = before
 * the sequence: contributes nothing), summed in tap order:
 *   out[i] = silu(b[i] + sum_j w[j][i] tap[j][i])
 * save (or NULL) receives a copy of tap[K-1] (the stream ring's slot of the oldest input; it may
 * be tap[0]: each block of every tap is read before save is written). out must not alias a tap. */
void cphil_infer_conv_silu(int I, int K, const float *w, const float *b, const float *const *tap, float *save, float *out);
void cphil_infer_conv_silu_ref(int I, int K, const float *w, const float *b, const float *const *tap, float *save,
                         float *out);
void cphil_infer_conv_silu_avx512(int I, int K, const float *w, const float *b, const float *const *tap, float *save,
                            float *out);
/* RMSNorm (Mamba's): y[i] = x[i] r w[i], r = 1 / sqrt(sum_i x[i]^2 / n + eps), the sum of squares
 * in double (exact squares; _ref in four chains, _avx512 in two 8-lane chains). y may alias x. */
void cphil_infer_rmsnorm(const float *x, const float *w, float *y, int n, float eps);
void cphil_infer_rmsnorm_ref(const float *x, const float *w, float *y, int n, float eps);
void cphil_infer_rmsnorm_avx512(const float *x, const float *w, float *y, int n, float eps);
/* Causal attention of one head over a window, queries t0 <= t < T: query t attends keys 0..t
 * (each as cphil_infer_attend_head with n = t + 1). q_t = Q + t ldq; keys transposed KT[dh][ldkt]
 * (ldkt >= T); v_j = V + j ldv; o_t = O + (t - t0) ldo; S: scratch of 4 ldkt + dh floats. The
 * AVX-512 form takes four queries at a time: their scores share each key's loads (a 4 x 64
 * register tile), and so does P.V. O must not alias Q, KT or V. */
void cphil_infer_attend_causal(const float *Q, int ldq, const float *KT, int ldkt, const float *V, int ldv, int t0, int T,
                         int dh, float scale, float *O, int ldo, float *S);
void cphil_infer_attend_causal_ref(const float *Q, int ldq, const float *KT, int ldkt, const float *V, int ldv, int t0,
                             int T, int dh, float scale, float *O, int ldo, float *S);
void cphil_infer_attend_causal_avx512(const float *Q, int ldq, const float *KT, int ldkt, const float *V, int ldv, int t0,
                                int T, int dh, float scale, float *O, int ldo, float *S);
/* Rotation of pairs (RoPE, rotate-half form: a is the first half of a head, b the second):
 *   oa[j] = a[j] c[j] - b[j] s[j],  ob[j] = a[j] s[j] + b[j] c[j]   (j < n)
 * In place when oa == a and ob == b; otherwise the outputs must not overlap the inputs. */
void cphil_infer_rope_pairs(const float *a, const float *b, const float *c, const float *s, float *oa, float *ob, int n);
void cphil_infer_rope_pairs_ref(const float *a, const float *b, const float *c, const float *s, float *oa, float *ob, int n);
void cphil_infer_rope_pairs_avx512(const float *a, const float *b, const float *c, const float *s, float *oa, float *ob,
                             int n);
/* Transpose of T rows: dst[c * ldd + t] = rows[t][off + c] for t < T, c < n (ldd >= T). The
 * AVX-512 form moves 16 x 16 blocks through registers. */
void cphil_infer_transpose_rows(const float *const *rows, int off, int T, int n, float *dst, int ldd);
void cphil_infer_transpose_rows_ref(const float *const *rows, int off, int T, int n, float *dst, int ldd);
void cphil_infer_transpose_rows_avx512(const float *const *rows, int off, int T, int n, float *dst, int ldd);
/* ---- the AVX2 + FMA tier (infer_kern_avx2.c): every _avx512 kernel above on 8 lanes, same
 * contracts (aliasing, scratch sizes) and the same math library; tested against the _ref twins
 * at the AVX-512 forms' tolerances. Difference: the causal kernel's tile is 4 queries x 16 keys. */
void cphil_infer_vexp_avx2(float *x, int n);
void cphil_infer_vsigmoid_avx2(float *x, int n);
void cphil_infer_vtanh_avx2(float *x, int n);
void cphil_infer_vsilu_avx2(float *x, int n);
void cphil_infer_vsoftplus_avx2(float *x, int n);
void cphil_infer_vgelu_avx2(float *x, int n);
void cphil_infer_lstm_cell_avx2(float *g, const float *pre, float *h, float *c, int H, float *tmp);
void cphil_infer_layernorm_avx2(int M, const float *X, int ldx, const float *w, const float *b, float *Y, int ldy, int n,
                          float eps);
void cphil_infer_attend_head_avx2(const float *q, const float *KT, int ldkt, const float *V, int ldv, int n, int dh,
                            float scale, float *out, float *sc);
void cphil_infer_attend_causal_avx2(const float *Q, int ldq, const float *KT, int ldkt, const float *V, int ldv, int t0,
                              int T, int dh, float scale, float *O, int ldo, float *S);
void cphil_infer_rope_pairs_avx2(const float *a, const float *b, const float *c, const float *s, float *oa, float *ob,
                           int n);
void cphil_infer_transpose_rows_avx2(const float *const *rows, int off, int T, int n, float *dst, int ldd);
void cphil_infer_conv_silu_avx2(int I, int K, const float *w, const float *b, const float *const *tap, float *save,
                          float *out);
void cphil_infer_rmsnorm_avx2(const float *x, const float *w, float *y, int n, float eps);

/* f32 <-> bf16 (round-to-nearest-even, NaN kept quiet; the panel products' rounding). */
static inline uint16_t infer_f32_to_bf16(float f) { return cphil_pmat_bf16(f); }
static inline float infer_bf16_to_f32(uint16_t h) { return cphil_pmat_bf16_to_f32(h); }

#endif
