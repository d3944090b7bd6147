/* nn_f32.c — the layers of nn.h in f32: nn_impl.h with R = float; every matrix product goes
 * through cphil_gemm with the caller's precision (f32, or bf16 operands with f32 accumulation).
 * Not here: the math itself (nn_impl.h). */
#include "nn/nn.h"
#include "core/core.h"

#define R float
#define NN_FN(name) name
#define GEMM cphil_gemm
#define EXP expf
#define LOG logf
#define LOG1P log1pf
#define EXPM1 expm1f
#define TANH tanhf
#define ERF erff
#define SQRT sqrtf
#define COS cosf
#define SIN sinf
#define POW powf
#include "nn/nn_impl.h"
