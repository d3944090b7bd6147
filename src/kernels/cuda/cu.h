/* cu.h — cphil's CUDA layers: the GPU twins of src/nn/ (nn_decl.h), with the SAME arguments in
 * the same order, so each is tested against its CPU layer and the GPU policy
 * (src/gpu/policy_gpu.c) reads like src/model/policy_impl.h.
 *
 * Conventions (all functions):
 *  - Every float/int pointer is a DEVICE pointer; layouts, shapes and the add-into rules are
 *    exactly those of the CPU layer of the same name (nn_decl.h): row-major, batch-major
 *    [B, T, C], Linear weights [out, in], backward functions ADD into gradients.
 *  - Work is enqueued on the context's stream; nothing synchronizes, allocates or copies to the
 *    host, so a whole training step can be captured into one CUDA graph. Launch errors are
 *    recorded in the context (sticky, first one wins) and reported by cphil_cu_sync / cphil_cu_status.
 *  - Deterministic: no floating-point atomics; every reduction has a fixed order, so the same
 *    inputs give the same bits on the same card.
 *  - prec: CPHIL_PREC_BF16 = matrix products with bf16 operands (round to nearest even) and f32
 *    accumulation (cuBLASLt CUBLAS_COMPUTE_32F_FAST_16BF on f32 storage), the CPU's bf16 rule;
 *    CPHIL_PREC_F32 = IEEE f32 products (CUBLAS_COMPUTE_32F, no TF32). Elementwise work is f32.
 * Not here: the policy composition (src/gpu/), the trainer (src/train/).
 */
#ifndef CPHIL_CU_H
#define CPHIL_CU_H

#include "cphil.h"
#include "model/model.h"
#include "nn/nn.h"

#include <cuda_runtime_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- context ------------------------------------------------------------------------------ */
typedef struct cphil_cu cphil_cu;

/* Open device `device` (cudaSetDevice), create a non-blocking stream, the cuBLASLt handle and
 * its workspace. CPHIL_E_UNSUPPORTED with a clear message when no GPU is present or the index is
 * out of range. */
cphil_status cphil_cu_create(int device, cphil_cu **out);
void cphil_cu_destroy(cphil_cu *cu);
cudaStream_t cphil_cu_stream(const cphil_cu *cu);
/* Shared memory a block may opt in to on this device (cudaDeviceProp.sharedMemPerBlockOptin). */
size_t cphil_cu_smem_optin(const cphil_cu *cu);
/* How the LSTM/GRU recurrence runs (cu_rnn.cu, cu_rnn_persist.cu): AUTO and PERSISTENT take the
 * weights-resident cluster kernel where it applies (bf16, the hidden size fits), STEPS always
 * takes the per-step path (2 launches per step). Set from the environment variable CPHIL_RNN
 * (auto | steps | persistent) when the context is created. */
typedef enum { CPHIL_CU_RNN_AUTO = 0, CPHIL_CU_RNN_STEPS, CPHIL_CU_RNN_PERSISTENT } cphil_cu_rnn_mode;
void cphil_cu_set_rnn_mode(cphil_cu *cu, cphil_cu_rnn_mode m);
cphil_cu_rnn_mode cphil_cu_get_rnn_mode(const cphil_cu *cu);
/* Batch rows per cluster of the weights-resident kernel, in 16-row tiles: 0 (the default) picks
 * the fewest tiles whose clusters are all resident at once; 1..3 forces 16, 32 or 48 rows where
 * the shape fits (tests, measuring). Set from CPHIL_RNN_TILES when the context is created. */
void cphil_cu_set_rnn_tiles(cphil_cu *cu, int tiles);
int cphil_cu_get_rnn_tiles(const cphil_cu *cu);
/* The device index the context was opened on. */
int cphil_cu_device_index(const cphil_cu *cu);
/* Device name, compute capability, memory, driver and runtime versions in one line. */
void cphil_cu_describe(const cphil_cu *cu, char *buf, size_t n);
/* Wait for the stream; returns the first recorded error (launch or cuBLASLt) or a CUDA error of
 * the stream itself, with a message; CPHIL_OK otherwise. */
cphil_status cphil_cu_sync(cphil_cu *cu);
/* The first recorded error so far (no waiting). */
cphil_status cphil_cu_status(cphil_cu *cu);
/* Record `e` (a cudaError_t as int) with where it happened, if no error is recorded yet. Used by
 * the kernels after every launch (CPHIL_CU_CHECK_LAUNCH). */
void cphil_cu_record(cphil_cu *cu, int e, const char *what, const char *file, int line);
/* Device allocation that fails with CPHIL_E_NOMEM and the size in the message (out of GPU
 * memory is a user-facing error: "the batch does not fit"). */
cphil_status cphil_cu_malloc(cphil_cu *cu, void **p, size_t bytes, const char *what);
void cphil_cu_free(void *p);
/* A device buffer of `n` floats equal to 1 (for column sums as products), grown on demand
 * before capture; NULL on failure. */
const float *cphil_cu_ones(cphil_cu *cu, size_t n);

/* ---- matrix product ----------------------------------------------------------------------- */
/* C[M,N] = alpha op(A) op(B) + beta C, row-major with leading dimensions, exactly the contract
 * of cphil_gemm (src/kernels/cpu/kernels.h). Algorithms are chosen once per shape (cached) with
 * split-K reductions that use atomics excluded, so results are deterministic. */
void cphil_cu_gemm(cphil_cu *cu, cphil_precision prec, bool trans_a, bool trans_b, int M, int N,
                   int K, float alpha, const float *A, int lda, const float *B, int ldb,
                   float beta, float *C, int ldc);
/* y[M,N] = x W^T + b (W [N, K], ldw) in one product with cuBLASLt's bias epilogue (y is not read);
 * false, having enqueued nothing, when no algorithm takes the bias for this shape. */
bool cphil_cu_gemm_bias(cphil_cu *cu, cphil_precision prec, int M, int N, int K, const float *x, int ldx,
                        const float *W, int ldw, const float *b, float *y, int ldy);

/* ---- elementwise -------------------------------------------------------------------------- */
void cphil_cu_fill(cphil_cu *cu, float *x, size_t n, float v);
void cphil_cu_zero(cphil_cu *cu, void *x, size_t bytes);           /* cudaMemsetAsync */
void cphil_cu_copy(cphil_cu *cu, void *dst, const void *src, size_t bytes); /* device to device */
/* y[i] = a[i] + b[i] (y may alias a or b). */
void cphil_cu_add(cphil_cu *cu, size_t n, const float *a, const float *b, float *y);
/* y[i] += x[i] */
void cphil_cu_accumulate(cphil_cu *cu, size_t n, const float *x, float *y);
/* db[n] += sum over the M rows of dy[:, n] (IEEE f32, fixed order). */
void cphil_cu_colsum(cphil_cu *cu, int M, int N, const float *dy, int lddy, float *db);
void cphil_cu_act_forward(cphil_cu *cu, cphil_act f, size_t n, const float *x, float *y);
void cphil_cu_act_backward(cphil_cu *cu, cphil_act f, size_t n, const float *x, const float *dy,
                           float *dx);

/* ---- Linear (cphil_nn_linear_*) --------------------------------------------------------------- */
void cphil_cu_linear_forward(cphil_cu *cu, cphil_precision prec, int M, int N, int K,
                             const float *x, int ldx, const float *W, const float *b, float *y,
                             int ldy);
void cphil_cu_linear_backward(cphil_cu *cu, cphil_precision prec, int M, int N, int K,
                              const float *x, int ldx, const float *W, const float *dy, int lddy,
                              float *dx, int lddx, float *dW, float *db);

/* ---- norms (cphil_nn_layernorm_*, cphil_nn_rmsnorm_*) ------------------------------------------- */
void cphil_cu_layernorm_forward(cphil_cu *cu, int M, int C, const float *x, const float *g,
                                const float *b, float eps, float *y, float *mean, float *rstd);
/* dg, db: ADDED into; needs the scratch cphil_cu_norm_scratch_floats(M, C) floats (per-block
 * partial sums of dg/db reduced in a fixed order). */
void cphil_cu_layernorm_backward(cphil_cu *cu, int M, int C, const float *x, const float *g,
                                 const float *mean, const float *rstd, const float *dy, float *dx,
                                 float *dg, float *db, float *scratch);
void cphil_cu_rmsnorm_forward(cphil_cu *cu, int M, int C, const float *x, const float *g,
                              float eps, float *y, float *rstd);
void cphil_cu_rmsnorm_backward(cphil_cu *cu, int M, int C, const float *x, const float *g,
                               const float *rstd, const float *dy, float *dx, float *dg,
                               float *scratch);
size_t cphil_cu_norm_scratch_floats(int M, int C);

/* ---- LSTM / GRU (cphil_nn_lstm_*, cphil_nn_gru_*): same saved values and scratch ---------------- */
void cphil_cu_lstm_forward(cphil_cu *cu, cphil_precision prec, int B, int T, int In, int H,
                           const float *x, const float *Wih, const float *Whh, const float *bih,
                           const float *bhh, const float *h0, const float *c0, float *y,
                           float *gates, float *cs, float *hprev, float *cprev0);
void cphil_cu_lstm_backward(cphil_cu *cu, cphil_precision prec, int B, int T, int In, int H,
                            const float *x, const float *Wih, const float *Whh,
                            const float *gates, const float *cs, const float *hprev,
                            const float *cprev0, const float *dy, float *dx, float *dWih,
                            float *dWhh, float *dbih, float *dbhh, float *dG, float *dh,
                            float *dc);
void cphil_cu_gru_forward(cphil_cu *cu, cphil_precision prec, int B, int T, int In, int H,
                          const float *x, const float *Wih, const float *Whh, const float *bih,
                          const float *bhh, const float *h0, float *y, float *gates, float *gh,
                          float *hprev);
void cphil_cu_gru_backward(cphil_cu *cu, cphil_precision prec, int B, int T, int In, int H,
                           const float *x, const float *Wih, const float *Whh,
                           const float *gates, const float *gh, const float *hprev,
                           const float *dy, float *dx, float *dWih, float *dWhh, float *dbih,
                           float *dbhh, float *dGi, float *dGh, float *dh);

/* ---- Mamba mixer (cphil_nn_mamba_*): the same params/grads/saved structs; the scratch struct
 * is the CPU's (cphil_mamba_scratch) with every buffer a device buffer of the CPU's size at
 * nthr 1 (dAl_b and dD_b are not used here), plus `extra` floats of
 * cphil_cu_mamba_extra_floats(B, T, I, N) for the deterministic reductions. */
size_t cphil_cu_mamba_extra_floats(int B, int T, int I, int N);
void cphil_cu_mamba_forward(cphil_cu *cu, cphil_precision prec, int B, int T, int H, int I,
                            int R, int N, int K, const float *u, const cphil_mamba_params *p,
                            cphil_mamba_saved *s, cphil_mamba_scratch *w, float *extra,
                            float *out);
void cphil_cu_mamba_backward(cphil_cu *cu, cphil_precision prec, int B, int T, int H, int I,
                             int R, int N, int K, const float *u, const cphil_mamba_params *p,
                             const cphil_mamba_saved *s, cphil_mamba_scratch *w, float *extra,
                             const float *dout, float *du, const cphil_mamba_grads *g);

/* ---- causal attention with RoPE (cphil_nn_attention_*) ----------------------------------------- */
void cphil_cu_rope_table(cphil_cu *cu, int T, int hd, float *rope);
void cphil_cu_attention_forward(cphil_cu *cu, cphil_precision prec, int B, int T, int H, int nh,
                                const float *u, const float *Wqkv, const float *bqkv,
                                const float *Wo, const float *bo, const float *rope, float *qkv,
                                float *P, float *att, float *out);
/* dP: scratch of B*nh*T*T floats on the GPU (the CPU needs only T*T: it walks (b, h) in turn). */
void cphil_cu_attention_backward(cphil_cu *cu, cphil_precision prec, int B, int T, int H, int nh,
                                 const float *u, const float *Wqkv, const float *Wo,
                                 const float *rope, const float *qkv, const float *P,
                                 const float *att, const float *dout, float *du, float *dWqkv,
                                 float *dbqkv, float *dWo, float *dbo, float *datt, float *dqkv,
                                 float *dP);

#ifdef __cplusplus
}
#endif

/* After every kernel launch: record a launch error in the context. */
#define CPHIL_CU_CHECK_LAUNCH(cu, what) \
    cphil_cu_record((cu), (int)cudaGetLastError(), (what), __FILE__, __LINE__)

#endif /* CPHIL_CU_H */
