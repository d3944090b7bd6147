/* infer_kern.h — the inference engine's packed small-M matrix products (f32, bf16, int8) and
 * their run-time ISA dispatch.
 *
 * Implements: one weight layout ("panel16") that every precision and ISA shares, packing from
 * PyTorch-layout row-major weights, and Y[M, rows] (=|+=) X[M, cols] @ W^T (+ bias) for small M
 * (1 for a stream step, the window length for window mode). Each SIMD kernel (AVX2/FMA,
 * AVX-512F, AVX-512 BF16, AVX-512 VNNI, AVX2 int8) has a scalar `_ref` twin on the same packed
 * layout; tests compare them (int8 exactly, f32/bf16 within tolerance).
 * Does not: training products (src/kernels/cpu does those), large-M blocking, threads.
 *
 * Layout. Rows (outputs) are grouped in panels of 16; within a panel the weights are stored
 * k-group by k-group so that one 64-byte load holds the next k-slice of 16 rows:
 *   f32   panel[kp][16]           (one k per 16 floats)
 *   bf16  panel[kp/2][16][2]      (pairs of k per 32-bit lane: vdpbf16ps)
 *   int8  panel[kp/4][16][4]      (quads of k per 32-bit lane: vpdpbusd)
 * kp (padded cols) is a multiple of 4; padding is zero, so padded inputs may hold anything
 * finite (the engine zeroes them). Rows beyond `rows` in the last panel are zero.
 * int8: symmetric per-output-row scales (w = q * scale[r], q in [-127, 127]); activations are
 * quantized per input row m, symmetric s8 with scale xs[m] (dynamic: max|x|/127 per call; static:
 * a calibrated fixed scale, values clamped). Integer accumulation is exact in every path.
 * Reference: llama2.c's int8 matmul (int32 accumulation, scales outside), oneDNN/XNNPACK packed
 * panels; Intel SDM for vpdpbusd / vdpbf16ps.
 */
#ifndef CPHIL_INFER_KERN_H
#define CPHIL_INFER_KERN_H

#include "core/core.h"

#include <stdint.h>

typedef enum infer_dtype { INFER_F32 = 0, INFER_BF16 = 1, INFER_I8 = 2 } infer_dtype;

typedef enum infer_isa { INFER_ISA_SCALAR = 0, INFER_ISA_AVX2 = 1, INFER_ISA_AVX512 = 2 } infer_isa;

#define INFER_PANEL 16

typedef struct infer_mat {
    int rows, cols;      /* logical shape [rows = out, cols = in] */
    int kp;              /* cols padded to a multiple of 4 */
    int np;              /* number of 16-row panels */
    infer_dtype dtype;
    void *w;             /* packed weights (owned) */
    float *scale;        /* int8: per-row scale [np*16] (owned) */
    int32_t *rowsum;     /* int8: per-row sum of q [np*16] (owned; for the u8 VNNI form) */
    float *bias;         /* [rows] or NULL (owned) */
    float act_scale;     /* int8: 0 = dynamic per-call activation scale, > 0 = static */
    int id;              /* index in its model (calibration) */
} infer_mat;

/* Pack a row-major weight w[rows][cols] (f32) into m with dtype; bias may be NULL. For INFER_I8
 * the per-row scales are max|w_r|/127. Returns CPHIL_E_NOMEM on allocation failure. */
cphil_status infer_mat_pack(infer_mat *m, int rows, int cols, const float *w, const float *bias,
                            infer_dtype dtype);
/* Pack already-quantized int8 weights q[rows][cols] with their per-row scales. */
cphil_status infer_mat_pack_i8(infer_mat *m, int rows, int cols, const int8_t *q,
                               const float *scale, const float *bias);
/* Unpack row r back to f32 (for tests and the quantizer's error report). */
void infer_mat_row(const infer_mat *m, int r, float *out);
void infer_mat_free(infer_mat *m);
size_t infer_mat_bytes(const infer_mat *m);

/* Scratch a product needs for its converted input: bytes for M rows of kp. */
size_t infer_mat_scratch_bytes(int M, int kp);

/* Y[m][r] = (beta ? Y[m][r] : 0) + bias[r] + sum_k W[r][k] X[m][k]   for m < M, r < rows.
 * X rows are ldx floats apart (cols valid values each), Y rows ldy floats apart. scratch holds
 * infer_mat_scratch_bytes(M, kp) bytes, 64-byte aligned. Allocates nothing. */
void infer_mat_gemm(const infer_mat *m, int M, const float *X, int ldx, float *Y, int ldy, int beta,
                    void *scratch);

/* The ISA in use (CPHIL_ISA=scalar|avx2|avx512 forces one at first use; the CPU bounds it). */
infer_isa infer_isa_get(void);
/* Force an ISA (tests); returns the one actually set (bounded by the CPU). */
infer_isa infer_isa_set(infer_isa isa);
/* The best this CPU supports. */
infer_isa infer_isa_best(void);
const char *infer_isa_name(infer_isa isa);

/* ---- kernels (internal; dispatched by infer_mat_gemm) -------------------------------------
 * All compute Y[m][r] for r < rows of panels [0, np): acc over k < kp, then
 * Y = (beta ? Y : 0) + bias + f(acc). xb/xq are the converted inputs with row stride kp.
 * int8: Y = ... + acc * xs[m] * scale[r]; xq is s8 (the VNNI kernel adds 128 internally). */
typedef struct infer_kargs {
    const infer_mat *m;
    int M;
    const void *x;  /* f32 (ldx) | bf16 pairs (kp) | s8 (kp) */
    int ldx;
    const float *xs; /* int8 per-row activation scales */
    float *Y;
    int ldy;
    int beta;
} infer_kargs;

void gemm_f32_ref(const infer_kargs *a);
void gemm_bf16_ref(const infer_kargs *a);
void gemm_i8_ref(const infer_kargs *a);
void gemm_f32_avx2(const infer_kargs *a);
void gemm_bf16_avx2(const infer_kargs *a);
void gemm_i8_avx2(const infer_kargs *a);
void gemm_f32_avx512(const infer_kargs *a);
void gemm_bf16_avx512(const infer_kargs *a);
void gemm_i8_avx512(const infer_kargs *a);

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
/* y[j] += sum_k a[k] * rows[k][j] for j < n (rows: f32 or bf16 or int8 with per-column scale
 * folded later by the caller): the input layer's continuous part and its id gathers. */
void infer_axpy_rows_f32(float *y, int n, const float *w, size_t ld, const float *a, int nrows);
void infer_gather_add_f32(float *y, int n, const float *w, size_t ld, const int32_t *ids, int nids);

/* Quantize one activation row x[n] to s8 (q[n]) with scale act_scale (> 0, static, values
 * clamped) or max|x|/127 (dynamic; 1 for an all-zero row); returns the scale. q = clamp(
 * round-half-even(x / scale), -127, 127). Every ISA gives the same bytes. */
float infer_quant_row(const float *x, int n, float act_scale, int8_t *q);
float infer_quant_row_ref(const float *x, int n, float act_scale, int8_t *q);
float infer_quant_row_avx512(const float *x, int n, float act_scale, int8_t *q);

/* f32 -> bf16 round-to-nearest-even (NaN kept quiet). */
static inline uint16_t infer_f32_to_bf16(float f) {
    union { float f; uint32_t u; } v = {f};
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40);
    uint32_t r = v.u + 0x7fffu + ((v.u >> 16) & 1u);
    return (uint16_t)(r >> 16);
}
static inline float infer_bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v = {(uint32_t)h << 16};
    return v.f;
}

#endif
