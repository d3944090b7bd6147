/* panel.h — the inference products on pre-packed weights: Y[M, rows] (=|+=) X[M, cols] @ W^T
 * (+ bias) for small M (1 for a stream step, the window length for window mode), in f32, bf16 and
 * int8, on one weight layout ("panel16") that every precision and tier shares. Used by the
 * inference engine (src/infer); the one-hot input layer's gather-add is cphil_gather_add
 * (kernels.h).
 *
 * Implements: packing from PyTorch-layout row-major weights (or already-quantized int8), and the
 * products with the project's ISA dispatch (isa.c, CPHIL_ISA): AVX-512 (F FMA, BF16 vdpbf16ps,
 * VNNI vpdpbusd; needs VNNI and BF16, else the AVX2 tier is used), AVX2/FMA (bf16 widened by
 * shifts, int8 through vpmaddubsw with the sign trick), scalar. Each SIMD kernel has a scalar `_ref` twin on the same
 * packed layout; tests/test_kernels.c compares them (int8 exactly, f32/bf16 within tolerance).
 * Does not: training products (cphil_gemm), large-M blocking, threads.
 *
 * Layout. Rows (outputs) are grouped in panels of 16; within a panel the weights are stored
 * k-group by k-group so that one 64-byte load holds the next k-slice of 16 rows:
 *   f32   panel[kp][16]           (one k per 16 floats)
 *   bf16  panel[kp/2][16][2]      (pairs of k per 32-bit lane: vdpbf16ps)
 *   int8  panel[kp/4][16][4]      (quads of k per 32-bit lane: vpdpbusd)
 * kp (padded cols) is a multiple of 4; padding is zero, so padded inputs may hold anything
 * finite (the product zeroes them). Rows beyond `rows` in the last panel are zero.
 * bf16: weights and inputs rounded to nearest-even (subnormals kept, NaN kept quiet), f32 sums.
 * int8: symmetric per-output-row scales (w = q * scale[r], q in [-127, 127]); activations are
 * quantized per input row m, symmetric s8 with scale xs[m] (dynamic: max|x|/127 per call, 1 for
 * an all-zero row; static: a calibrated fixed scale, values clamped). Integer accumulation is
 * exact in every path, so int8 results are the same bits on every tier.
 * Reference: llama2.c's int8 matmul (int32 accumulation, scales outside), oneDNN/XNNPACK packed
 * panels; Intel SDM for vpdpbusd / vdpbf16ps.
 */
#ifndef CPHIL_KERNELS_PANEL_H
#define CPHIL_KERNELS_PANEL_H

#include "core/core.h"
#include "kernels/cpu/kernels.h"

#include <stdint.h>

#define CPHIL_PANEL 16

typedef struct cphil_pmat {
    int rows, cols;      /* logical shape [rows = out, cols = in] */
    int kp;              /* cols padded to a multiple of 4 */
    int np;              /* number of 16-row panels */
    cphil_wtype dtype;
    void *w;             /* packed weights (owned) */
    float *scale;        /* int8: per-row scale [np*16] (owned) */
    int32_t *rowsum;     /* int8: per-row sum of q [np*16] (owned; for the u8 VNNI form) */
    float *bias;         /* [rows] or NULL (owned) */
    float act_scale;     /* int8: 0 = dynamic per-call activation scale, > 0 = static */
    int id;              /* index in its model (the engine's calibration) */
} cphil_pmat;

/* Pack a row-major weight w[rows][cols] (f32) into m with dtype; bias may be NULL. For CPHIL_W_I8
 * the per-row scales are max|w_r|/127 and a weight that is not finite is CPHIL_E_NUMERIC (m
 * left empty). Returns CPHIL_E_NOMEM on allocation failure. */
cphil_status cphil_pmat_pack(cphil_pmat *m, int rows, int cols, const float *w, const float *bias,
                             cphil_wtype dtype);
/* Pack already-quantized int8 weights q[rows][cols] with their per-row scales. */
cphil_status cphil_pmat_pack_i8(cphil_pmat *m, int rows, int cols, const int8_t *q,
                                const float *scale, const float *bias);
/* Unpack row r back to f32 (for tests and the quantizer's error report). */
void cphil_pmat_row(const cphil_pmat *m, int r, float *out);
void cphil_pmat_free(cphil_pmat *m);
size_t cphil_pmat_bytes(const cphil_pmat *m);

/* A view of panels [p0, p1) of m: rows 16 p0 .. min(rows, 16 p1) - 1 of m as rows 0.. of the
 * view. It shares m's packed weights, scales, row sums and bias (aligned as m's), owns nothing
 * (never pass it to cphil_pmat_free; it lives as long as m) and keeps m's id and act_scale. Its
 * product writes m's row 16 p0 + r to column r of Y: offset Y by 16 p0 to land where m's full
 * product would, with the same values (the same kernels panel by panel; int8 the same bits,
 * f32/bf16 up to the kernels' order of sums). p0, p1 are clamped to
 * [0, np]; an empty range gives a view with no rows. Used to compute only some outputs of a
 * product (the engine's last attention layer needs only K and V for all but the last position). */
cphil_pmat cphil_pmat_view_panels(const cphil_pmat *m, int p0, int p1);

/* Scratch a product needs for its converted input: bytes for M rows of kp. */
size_t cphil_pmat_scratch_bytes(int M, int kp);

/* Y[m][r] = (beta ? Y[m][r] : 0) + bias[r] + sum_k W[r][k] X[m][k]   for m < M, r < rows.
 * X rows are ldx floats apart (cols valid values each), Y rows ldy floats apart. scratch holds
 * cphil_pmat_scratch_bytes(M, kp) bytes, 64-byte aligned. Allocates nothing. */
void cphil_pmat_gemm(const cphil_pmat *m, int M, const float *X, int ldx, float *Y, int ldy, int beta,
                     void *scratch);

/* The tier the panel kernels use now (cphil_isa_active, bounded to AVX2 when the CPU lacks VNNI
 * or BF16), and the best they can use on this CPU. */
cphil_isa cphil_pmat_isa(void);
cphil_isa cphil_pmat_isa_best(void);

/* ---- kernels (dispatched by cphil_pmat_gemm; public for the tests) -------------------------
 * All compute Y[m][r] for r < rows of panels [0, np): acc over k < kp, then
 * Y = (beta ? Y : 0) + bias + f(acc). xb/xq are the converted inputs with row stride kp.
 * int8: Y = ... + acc * xs[m] * scale[r]; xq is s8 (the VNNI kernel adds 128 internally). */
typedef struct cphil_pmat_args {
    const cphil_pmat *m;
    int M;
    const void *x;  /* f32 (ldx) | bf16 pairs (kp) | s8 (kp) */
    int ldx;
    const float *xs; /* int8 per-row activation scales */
    float *Y;
    int ldy;
    int beta;
} cphil_pmat_args;

void cphil_pmat_f32_ref(const cphil_pmat_args *a);
void cphil_pmat_bf16_ref(const cphil_pmat_args *a);
void cphil_pmat_i8_ref(const cphil_pmat_args *a);
void cphil_pmat_f32_avx2(const cphil_pmat_args *a);
void cphil_pmat_bf16_avx2(const cphil_pmat_args *a);
void cphil_pmat_i8_avx2(const cphil_pmat_args *a);
void cphil_pmat_f32_avx512(const cphil_pmat_args *a);
void cphil_pmat_bf16_avx512(const cphil_pmat_args *a);
void cphil_pmat_i8_avx512(const cphil_pmat_args *a);

/* Quantize one activation row x[n] to s8 (q[n]) with scale act_scale (> 0, static, values
 * clamped) or max|x|/127 (dynamic; 1 for an all-zero row); returns the scale. q = clamp(
 * round-half-even(x / scale), -127, 127). Every tier gives the same bytes. */
float cphil_pmat_quant_row(const float *x, int n, float act_scale, int8_t *q);
float cphil_pmat_quant_row_ref(const float *x, int n, float act_scale, int8_t *q);
float cphil_pmat_quant_row_avx512(const float *x, int n, float act_scale, int8_t *q);
float cphil_pmat_quant_row_avx2(const float *x, int n, float act_scale, int8_t *q);

/* f32 -> bf16 round-to-nearest-even, subnormals kept, NaN kept quiet (unlike
 * cphil_bf16_from_f32, which flushes subnormals as vcvtneps2bf16 does). */
static inline uint16_t cphil_pmat_bf16(float f) {
    union { float f; uint32_t u; } v = {f};
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40);
    uint32_t r = v.u + 0x7fffu + ((v.u >> 16) & 1u);
    return (uint16_t)(r >> 16);
}
/* bf16 -> f32 (exact). Inline: the AVX2 and scalar kernels call it in their inner loops. */
static inline float cphil_pmat_bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v = {(uint32_t)h << 16};
    return v.f;
}

#endif
