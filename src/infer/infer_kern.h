/* infer_kern.h — the inference engine's tier selection and elementwise kernels (activations,
 * the Mamba selective-scan step), each SIMD one with a scalar `_ref` twin.
 * The packed matrix products the engine runs are the kernels' (src/kernels/cpu/panel.h:
 * cphil_pmat_*); the engine's names for the weight types alias the kernels' cphil_wtype.
 * Does not: matrix products, training kernels.
 */
#ifndef CPHIL_INFER_KERN_H
#define CPHIL_INFER_KERN_H

#include "core/core.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/panel.h"

#include <stdint.h>

/* Tensor / product precision: the kernels' weight types. */
typedef cphil_wtype infer_dtype;
#define INFER_F32 CPHIL_W_F32
#define INFER_BF16 CPHIL_W_BF16
#define INFER_I8 CPHIL_W_I8

typedef enum infer_isa { INFER_ISA_SCALAR = 0, INFER_ISA_AVX2 = 1, INFER_ISA_AVX512 = 2 } infer_isa;

/* The ISA in use (CPHIL_ISA=scalar|avx2|avx512 forces one at first use; the CPU bounds it), as
 * the panel products see it (cphil_pmat_isa). */
infer_isa infer_isa_get(void);
/* Force an ISA (tests); returns the one actually set (bounded by the CPU). */
infer_isa infer_isa_set(infer_isa isa);
/* The best this CPU supports. */
infer_isa infer_isa_best(void);
const char *infer_isa_name(infer_isa isa);

/* Elementwise activations in place (the engine's gates, scans and mixers). _ref uses libm;
 * _avx512 uses Cephes-style polynomials (relative error ~2e-7 for exp). softplus follows
 * PyTorch (x > 20 -> x). */
void infer_vexp(float *x, int n);
void infer_vsigmoid(float *x, int n);
void infer_vtanh(float *x, int n);
void infer_vsilu(float *x, int n);
void infer_vsoftplus(float *x, int n);
void infer_vexp_ref(float *x, int n);
void infer_vsigmoid_ref(float *x, int n);
void infer_vtanh_ref(float *x, int n);
void infer_vsilu_ref(float *x, int n);
void infer_vsoftplus_ref(float *x, int n);
void infer_vexp_avx512(float *x, int n);
void infer_vsigmoid_avx512(float *x, int n);
void infer_vtanh_avx512(float *x, int n);
void infer_vsilu_avx512(float *x, int n);
void infer_vsoftplus_avx512(float *x, int n);
/* LSTM cell: gates g[4H] (i f g o, pre-activation; pre[4H] added first when not NULL), state
 * h[H], c[H] updated: c = sig(f) c + sig(i) tanh(g), h = sig(o) tanh(c). g is clobbered; tmp[H]
 * is scratch. */
void infer_lstm_cell(float *g, const float *pre, float *h, float *c, int H, float *tmp);
void infer_lstm_cell_ref(float *g, const float *pre, float *h, float *c, int H, float *tmp);
void infer_lstm_cell_avx512(float *g, const float *pre, float *h, float *c, int H, float *tmp);
/* One step of the selective scan (Mamba, recurrent form), state h[N][I] and At[N][I] = A^T:
 *   h[n][i] = exp(dt[i] * At[n][i]) * h[n][i] + dt[i] * B[n] * xc[i]
 *   y[i]    = sum_n h[n][i] * C[n] + D[i] * xc[i]
 * y may alias xc. */
void infer_ssm_step(int I, int N, const float *At, const float *dt, const float *xc, const float *B,
                    const float *C, const float *D, float *h, float *y);
void infer_ssm_step_ref(int I, int N, const float *At, const float *dt, const float *xc, const float *B,
                        const float *C, const float *D, float *h, float *y);
void infer_ssm_step_avx512(int I, int N, const float *At, const float *dt, const float *xc, const float *B,
                           const float *C, const float *D, float *h, float *y);
/* f32 <-> bf16 (round-to-nearest-even, NaN kept quiet; the panel products' rounding). */
static inline uint16_t infer_f32_to_bf16(float f) { return cphil_pmat_bf16(f); }
static inline float infer_bf16_to_f32(uint16_t h) { return cphil_pmat_bf16_to_f32(h); }

#endif
