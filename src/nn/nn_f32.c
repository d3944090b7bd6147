/* nn_f32.c — the layers of nn.h in f32: nn_impl.h with R = float; every matrix product goes
 * through cphil_gemm with the caller's precision (f32, or bf16 operands with f32 accumulation).
 * exp, tanh, sigmoid and softplus are the math library's (src/kernels/cpu/vmath.h: branch-free,
 * so the pointwise loops vectorize, and the same bits as the inference engine's).
 * Not here: the math itself (nn_impl.h). */
/* Loops with runtime alias checks and tails vectorize only under the dynamic cost model (-O2's
 * default "very cheap" model refuses them); the pointwise cells and the scan depend on it. */
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic", "no-trapping-math")
#include "nn/nn.h"
#include "core/core.h"
#include "kernels/cpu/vmath.h"

#define R float
#define NN_FN(name) name
#define GEMM cphil_gemm
#define EXP cphil_vm_exp
#define LOG logf
#define LOG1P log1pf
#define EXPM1 expm1f
#define TANH cphil_vm_tanh
#define SIGMOID cphil_vm_sigmoid
#define SOFTPLUS cphil_vm_softplus
#define ERF erff
#define SQRT sqrtf
#define COS cosf
#define SIN sinf
#define POW powf
#include "nn/nn_impl.h"
