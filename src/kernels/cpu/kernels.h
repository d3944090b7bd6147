/* kernels.h — cphil's CPU numerical kernels: the training matrix product (cphil_gemm), the
 * inference products on pre-packed weights (panel.h: f32, bf16, int8) with the one-hot gather-add, and
 * the ISA dispatch that chooses among scalar, AVX2/FMA and AVX-512 code at run time.
 *
 * Every fast kernel has a scalar `_ref` twin that states its semantics; tests compare the two on
 * ragged sizes for every ISA path (docs/kernels.md). Matrices are row-major with leading
 * dimensions (elements, not bytes). Per-call kernels never allocate; they never print or exit.
 *
 * Not here: element-wise math (one library, src/kernels/cpu/vmath.h / vmath_impl.h, which the
 * engine's kernels in src/infer/infer_kern*.c and the trainer both use), layer logic (src/nn),
 * CUDA (src/kernels/cuda, behind the same calls).
 */
#ifndef CPHIL_KERNELS_CPU_H
#define CPHIL_KERNELS_CPU_H

#include "cphil.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ============================================================================================
 * ISA dispatch (isa.c)
 * The best path the CPU supports is used unless forced, either by the environment variable
 * CPHIL_ISA=scalar|avx2|avx512 (read once, by cphil_isa_init or lazily at the first kernel call)
 * or by cphil_isa_set. Tiers:
 *   scalar : portable C (x86-64-v2 baseline); bf16 products emulated exactly (see cphil_gemm).
 *   avx2   : AVX2 + FMA (+F16C).
 *   avx512 : AVX-512 F/BW/VL/DQ + VNNI; bf16 uses AVX512_BF16 (vdpbf16ps) when present, else the
 *            exact emulation.
 * The active tier is process-wide; change it only while no kernel runs (tests do it between
 * calls). Packed weights (cphil_pmat, cphil_gtable) do not depend on the tier.
 * ========================================================================================== */
typedef enum cphil_isa { CPHIL_ISA_SCALAR = 0, CPHIL_ISA_AVX2 = 1, CPHIL_ISA_AVX512 = 2 } cphil_isa;

/* Read CPHIL_ISA and set the tier. CPHIL_E_ARG for an unknown name, CPHIL_E_UNSUPPORTED when the
 * CPU lacks the forced tier (the message names the missing features); on error the tier stays
 * at the scalar path (safe everywhere). Programs call this once at start and report the error. */
cphil_status cphil_isa_init(void);
/* Force a tier; CPHIL_E_UNSUPPORTED (tier unchanged) when the CPU lacks it. */
cphil_status cphil_isa_set(cphil_isa isa);
cphil_isa cphil_isa_active(void);     /* the tier kernels use now */
cphil_isa cphil_isa_best(void);       /* the best tier this CPU supports */
cphil_isa cphil_isa_default(void);    /* the tier chosen at start: CPHIL_ISA, else the best */
bool cphil_isa_supported(cphil_isa isa);
bool cphil_cpu_has_bf16(void);        /* AVX512_BF16 (vdpbf16ps) */
bool cphil_cpu_has_vnni(void);        /* AVX512_VNNI */
/* AMX (Intel Sapphire Rapids and later): the AVX-512 tier's int8 products of 2 or more rows
 * (window mode, in-flight windows) run on the tile unit (tdpbssd) when the CPU has AMX-INT8 and
 * Linux granted the tile state at start-up; the same integer sums, so the same bits. CPHIL_AMX=0
 * in the environment turns it off for the process; cphil_amx_set switches it (returns whether it
 * is now on). */
bool cphil_amx_available(void);
bool cphil_amx_on(void);
bool cphil_amx_set(bool on);
const char *cphil_isa_name(cphil_isa isa); /* "scalar", "avx2", "avx512" */
/* One line describing the CPU features found and the tier in use (for `cphil version`). */
const char *cphil_isa_describe(void);

/* ============================================================================================
 * Training matrix product (gemm.c)
 * ========================================================================================== */
typedef enum cphil_precision { CPHIL_PREC_F32 = 0, CPHIL_PREC_BF16 = 1 } cphil_precision;

/* C[M,N] = alpha * op(A) @ op(B) + beta * C, op(X) = X or X^T as trans_*; row-major with
 * leading dimensions: op(A) is M x K (A is M x K with lda >= K, or K x M with lda >= M when
 * trans_a), op(B) is K x N (B is K x N with ldb >= N, or N x K with ldb >= K when trans_b).
 * BF16: A and B elements rounded to bf16 (round-to-nearest-even; bf16 subnormals flushed to
 * signed zero; NaN stays NaN) before the products, f32 accumulation: each output element is
 * reduced over k in pairs (k = 2p, 2p+1) exactly as vdpbf16ps does (acc = acc + a1*b1, then
 * acc = acc + a0*b0, each product exact, each sum rounded to f32 nearest-even), whether the CPU
 * has the instruction or not (docs/kernels.md).
 * beta == 0 ignores C's old contents (NaN-safe). M, N or K == 0 is allowed (K == 0: C = beta*C).
 * Results are bit-identical for any thread count (static partition of output tiles, each element
 * reduced in a fixed order by exactly one thread) but differ in the last bits between ISA tiers.
 * Thread-safe for distinct C; the worker pool is shared, so concurrent callers serialize. */
void cphil_gemm(cphil_precision prec, bool trans_a, bool trans_b, int M, int N, int K,
                float alpha, const float *A, int lda, const float *B, int ldb,
                float beta, float *C, int ldc);
/* Scalar twin: plain loops, double accumulation (bf16: operands rounded as above). */
void cphil_gemm_ref(cphil_precision prec, bool trans_a, bool trans_b, int M, int N, int K,
                    float alpha, const float *A, int lda, const float *B, int ldb,
                    float beta, float *C, int ldc);
/* Worker threads for cphil_gemm (default 1, at most 64). The pool is created on first need and
 * persists (no per-call thread creation); cphil_threads_set(1) keeps it idle. */
void cphil_threads_set(int n);
int cphil_threads_get(void);
/* Runs fn(ctx, part, parts) for every part in 0..parts-1 on the same pool, at most
 * cphil_threads_get() at once (the caller's thread takes part 0), and returns when all are done.
 * Which thread runs a part is not fixed: results must not depend on it. fn must not call
 * cphil_gemm, cphil_parallel or cphil_threads_set (the pool is busy). */
void cphil_parallel(int parts, void (*fn)(void *ctx, int part, int parts), void *ctx);

/* bf16 helpers: f32 -> bf16 bits with the rounding above (unlike core's cphil_f32_to_bf16,
 * subnormals flush to signed zero, as vcvtneps2bf16 does), and back (exact; the definition is
 * core's, src/core/safetensors.c, declared identically there). */
uint16_t cphil_bf16_from_f32(float x);
float cphil_bf16_to_f32(uint16_t h);
/* x rounded to bf16 and back: the value cphil_gemm(BF16) multiplies. */
float cphil_bf16_round(float x);

/* ============================================================================================
 * Inference: weight types, and the one-hot gather-add (gather.c, gather_avx2.c, gather_avx512.c).
 * The dense products on pre-packed weights (16-row panels, f32 / bf16 / int8, batch 1 and small
 * M) are declared in kernels/cpu/panel.h (panel.c, panel_avx2.c, panel_avx512.c).
 * ========================================================================================== */
typedef enum cphil_wtype { CPHIL_W_F32 = 0, CPHIL_W_BF16 = 1, CPHIL_W_I8 = 2 } cphil_wtype;

/* The one-hot input layer: a table of W's columns col0 .. col0+ncols-1 stored as rows
 * T[c][o] = W[o][col0 + c] (so a selected column is contiguous), in f32, bf16 or int8
 * (int8: per-output-channel scale[o] = max_c |T[c][o]| / 127). */
typedef struct cphil_gtable {
    cphil_wtype type;
    int rows, width; /* rows = ncols (vocabulary), width = out */
    int col0;        /* absolute dense column of row 0 */
    int ld;          /* elements per stored row (width rounded up to 64) */
    void *data;
    float *scale;    /* int8: [ld] */
    size_t bytes;
} cphil_gtable;
cphil_status cphil_gtable_init(cphil_gtable *t, cphil_wtype type, const float *W, int out, int ldw,
                               int col0, int ncols);
/* The same table from already-quantized int8 weights Q[out][ldw] with their per-output scales
 * (an int8 policy file's): the values are kept as they are (-128 becomes -127, the symmetric
 * range), not quantized a second time. CPHIL_E_NUMERIC for a scale that is not finite and > 0. */
cphil_status cphil_gtable_init_i8(cphil_gtable *t, const int8_t *Q, const float *scale, int out, int ldw,
                                  int col0, int ncols);
void cphil_gtable_free(cphil_gtable *t);
/* y[o] = y[o] + (T[ids[0]-col0][o] + T[ids[1]-col0][o] + ...) summed in id order, for o < width
 * (f32 sums of the f32/bf16 values; int8: the int32 sum of q times scale[o]). Ids outside
 * [col0, col0 + rows) are skipped and counted: returns that count (0 when all are valid).
 * Every tier gives the same bits. Never allocates. */
int cphil_gather_add(const cphil_gtable *t, int n_ids, const int32_t *ids, float *y);
int cphil_gather_add_ref(const cphil_gtable *t, int n_ids, const int32_t *ids, float *y);

#endif /* CPHIL_KERNELS_CPU_H */
