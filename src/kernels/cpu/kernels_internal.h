/* kernels_internal.h — declarations shared between the portable kernel files and the per-ISA
 * files (*_avx2.c, *_avx512.c). Not part of the API: only src/kernels/cpu/ includes it. */
#ifndef CPHIL_KERNELS_INTERNAL_H
#define CPHIL_KERNELS_INTERNAL_H

#include "kernels/cpu/kernels.h"

/* ---- gemm -------------------------------------------------------------------------------- */
/* Blocking shared by every tier, so that every tier reduces each element over k in the same
 * blocks (bf16: bit-identical results across tiers). KC is even (bf16 pairs never straddle). */
#define GEMM_KC 512
#define GEMM_MC 192
#define GEMM_NC 1024

/* Register tile per tier (rows of A broadcast x columns of B in vectors). */
#define GEMM_MR_SCALAR 6
#define GEMM_NR_SCALAR 16
#define GEMM_MR_AVX2 6
#define GEMM_NR_AVX2 16
#define GEMM_MR_AVX512 12
#define GEMM_NR_AVX512 32

/* Microkernel: C[mr x nr] = alpha * (Ap @ Bp) + beta * C with beta == 0 meaning C is ignored.
 * f32: Ap is [kc][MR] floats, Bp is [kc][NR] floats.
 * bf16: kc counts k PAIRS; Ap is [kc][MR] u32, Bp is [kc][NR] u32, each u32 holding the bf16 of
 * k = 2p in its low half and of k = 2p+1 in its high half.
 * The epilogue is t = alpha * acc, then C = t (beta == 0) or C = t + beta * C (separate multiply
 * and add, so every tier rounds the same way). */
typedef void (*cphil_gemm_uk)(int kc, const void *Ap, const void *Bp, float *C, int ldc, int mr,
                              int nr, float alpha, float beta);

void cphil_uk_f32_avx2(int kc, const void *Ap, const void *Bp, float *C, int ldc, int mr, int nr,
                       float alpha, float beta);
void cphil_uk_bf16emu_avx2(int kc, const void *Ap, const void *Bp, float *C, int ldc, int mr,
                           int nr, float alpha, float beta);
void cphil_uk_f32_avx512(int kc, const void *Ap, const void *Bp, float *C, int ldc, int mr, int nr,
                         float alpha, float beta);
void cphil_uk_bf16_avx512(int kc, const void *Ap, const void *Bp, float *C, int ldc, int mr, int nr,
                          float alpha, float beta);

/* bf16 packing primitives: AVX2 integer rounding, and AVX512_BF16 conversions (gemm.c has the
 * scalar twins and the contract; all give the same bits). */
void cphil_bf16_pairs_scalar(const float *src, int n, uint32_t *dst);
void cphil_bf16_inter_scalar(const float *r0, const float *r1, int n, uint32_t *dst);
void cphil_bf16_pairs_avx2(const float *src, int n, uint32_t *dst);
void cphil_bf16_inter_avx2(const float *r0, const float *r1, int n, uint32_t *dst);
void cphil_bf16_pairs_avx512(const float *src, int n, uint32_t *dst);
void cphil_bf16_inter_avx512(const float *r0, const float *r1, int n, uint32_t *dst);

/* Transposing pack (f32 or u32 bits): dst[k*R + i] = X[i*ldx + k] for i < rows, 0 for
 * rows <= i < R (R a multiple of 4, <= 32), k < kc. */
void cphil_pack_t_avx512(const float *X, size_t ldx, int rows, int kc, int R, float *dst);
#define CPHIL_MIN_I(a, b) ((a) < (b) ? (a) : (b))

/* ---- inference (gather.c) ---------------------------------------------------------------- */
int cphil_gather_add_avx2(const cphil_gtable *t, int n_ids, const int32_t *ids, float *y);
int cphil_gather_add_avx512(const cphil_gtable *t, int n_ids, const int32_t *ids, float *y);

/* One step of a bf16 pair as vdpbf16ps computes it, from the exact sum d (docs/kernels.md: the
 * double holds it closely enough): d rounded to f32, or a zero of d's sign when the result is
 * tiny as x86's flush-to-zero decides it: d rounded to 24 bits with an unbounded exponent is
 * below FLT_MIN. The scaling by 2^64 makes the f32 rounding the unbounded one near FLT_MIN.
 * (Rounding to f32 first and flushing subnormals differs for d in [FLT_MIN - 2^-150,
 * FLT_MIN - 2^-151): that gives FLT_MIN, the CPU gives 0.) */
static inline float cphil_ftz_sum(double d) {
    if (__builtin_fabsf((float)(d * 0x1p64)) < 0x1p-62f) return __builtin_copysignf(0.0f, (float)d);
    return (float)d;
}

#endif
