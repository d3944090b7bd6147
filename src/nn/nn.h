/* nn.h — cphil's layers, forward and backward side by side, in two precisions.
 *
 * Every layer is written once (nn_impl.h, over a scalar type `R`) and compiled twice:
 *   nn_f32.c   R = float,  names cphil_nn_*        matrix products through cphil_gemm (f32 or
 *              bf16 operands with f32 accumulation, chosen by the `prec` argument);
 *   nn_f64.c   R = double, names cphil_nn_*_f64    plain double loops (prec ignored); used by the
 *              finite-difference gradient checks in tests/test_nn.c, never for training.
 * The declarations are in nn_decl.h, included here once per type.
 *
 * Conventions (all layers):
 *  - Activations are row-major and batch-major: a sequence is [B, T, C], row (b, t) = b*T + t.
 *  - Linear weights are PyTorch's [out, in]; y = x W^T + b.
 *  - Backward functions ADD into parameter gradients (zeroed once per step by the caller) and
 *    ADD into input gradients (dx), so residual branches just accumulate; pass dx = NULL when the
 *    input needs no gradient.
 *  - Nothing allocates: saved values and scratch live in buffers the caller passes (the model's
 *    workspace); sizes are in the comments.
 * Not here: the composition into backbones and policies (src/model/policy_impl.h).
 */
#ifndef CPHIL_NN_H
#define CPHIL_NN_H

#include "kernels/cpu/kernels.h"
#include "model/model.h"
#include <stddef.h>
#include <stdint.h>

typedef enum cphil_act {
    CPHIL_ACT_RELU = 0, CPHIL_ACT_GELU, CPHIL_ACT_SILU, CPHIL_ACT_SOFTPLUS, CPHIL_ACT_SIGMOID,
    CPHIL_ACT_TANH, CPHIL_N_ACTS
} cphil_act;

/* The f64 matrix product the double build uses: same contract as cphil_gemm, double, plain
 * loops (only for gradient checks). */
void cphil_nn_gemm_f64(bool trans_a, bool trans_b, int M, int N, int K, double alpha,
                       const double *A, int lda, const double *B, int ldb, double beta, double *C,
                       int ldc);

#define NN_R float
#define NN_FN(name) name
#include "nn/nn_decl.h"
#undef NN_R
#undef NN_FN

#define NN_R double
#define NN_FN(name) name##_f64
#include "nn/nn_decl.h"
#undef NN_R
#undef NN_FN

#endif /* CPHIL_NN_H */
