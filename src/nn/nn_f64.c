/* nn_f64.c — the layers of nn.h in double (names *_f64): nn_impl.h with R = double and a plain
 * double matrix product. Only the finite-difference gradient checks use it (tests/test_nn.c):
 * in double a central difference is accurate to ~1e-9, so the check can be tight. */
#include "nn/nn.h"
#include "core/core.h"

#include <math.h>

void cphil_nn_gemm_f64(bool trans_a, bool trans_b, int M, int N, int K, double alpha,
                       const double *A, int lda, const double *B, int ldb, double beta, double *C,
                       int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double acc = 0;
            for (int k = 0; k < K; k++) {
                double a = trans_a ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                double b = trans_b ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                acc += a * b;
            }
            double *c = &C[(size_t)i * ldc + j];
            *c = beta == 0.0 ? alpha * acc : alpha * acc + beta * *c;
        }
}

/* sigmoid branch-free (e = exp(-|x|) never overflows) and softplus with PyTorch's x > 20 cut,
 * in double with libm: the reference the f32 library is checked against */
static inline double sigmoid_libm(double x) {
    double e = exp(x < 0 ? x : -x), s = 1.0 / (1.0 + e);
    return x >= 0 ? s : e * s;
}
static inline double softplus_libm(double x) { return x > 20.0 ? x : log1p(exp(x)); }

#define R double
#define NN_FN(name) name##_f64
#define GEMM(prec, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) \
    ((void)(prec), cphil_nn_gemm_f64(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc))
#define EXP exp
#define LOG log
#define LOG1P log1p
#define EXPM1 expm1
#define TANH tanh
#define SIGMOID sigmoid_libm
#define SOFTPLUS softplus_libm
#define ERF erf
#define SQRT sqrt
#define COS cos
#define SIN sin
#define POW pow
#include "nn/nn_impl.h"
