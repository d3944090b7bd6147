/* vec.c — element-wise helpers over float arrays (exp, sigmoid, tanh, silu, softplus): the
 * scalar twins (libm in double, rounded once to f32) and the dispatch to the SIMD versions
 * (vec_avx2.c, vec_avx512.c, one source in vec_impl.h). The scalar tier uses the twins.
 * Not here: reductions, softmax, norms (src/nn). Reference: Cephes (polynomial forms).
 */
#include "kernels/cpu/kernels_internal.h"

#include <math.h>

static double sig_d(double x) { return 1.0 / (1.0 + exp(-x)); }

void cphil_vexp_ref(int n, const float *x, float *y) {
    for (int i = 0; i < n; i++) y[i] = (float)exp((double)x[i]);
}
void cphil_vsigmoid_ref(int n, const float *x, float *y) {
    for (int i = 0; i < n; i++) y[i] = (float)sig_d((double)x[i]);
}
void cphil_vtanh_ref(int n, const float *x, float *y) {
    for (int i = 0; i < n; i++) y[i] = (float)tanh((double)x[i]);
}
void cphil_vsilu_ref(int n, const float *x, float *y) {
    for (int i = 0; i < n; i++) y[i] = (float)((double)x[i] * sig_d((double)x[i]));
}
void cphil_vsoftplus_ref(int n, const float *x, float *y) {
    for (int i = 0; i < n; i++) {
        double v = x[i];
        y[i] = (float)(v > 0 ? v + log1p(exp(-v)) : log1p(exp(v)));
    }
}

#define DISPATCH(name)                                                                           \
    void cphil_##name(int n, const float *x, float *y) {                                         \
        cphil_isa isa = cphil_isa_active();                                                      \
        if (isa == CPHIL_ISA_AVX512) cphil_##name##_avx512(n, x, y);                             \
        else if (isa == CPHIL_ISA_AVX2) cphil_##name##_avx2(n, x, y);                            \
        else cphil_##name##_ref(n, x, y);                                                        \
    }
DISPATCH(vexp)
DISPATCH(vsigmoid)
DISPATCH(vtanh)
DISPATCH(vsilu)
DISPATCH(vsoftplus)
