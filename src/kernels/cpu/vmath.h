/* vmath.h — the element-wise math library (vmath_impl.h: the formulas and their accuracy),
 * instantiated on one lane: cphil_vm_exp, _exp2, _tanh, _sigmoid, _silu, _softplus, _gelu
 * take and return a float. Branch-free, so a loop over them vectorizes (the CPU trainer's
 * pointwise cells and scans rely on it: libm's expf/tanhf are calls that keep them scalar); the
 * engine's SIMD tiers instantiate the same text on 8 and 16 lanes (src/infer/infer_kern_avx2.c,
 * infer_kern_avx512.c), where the multiply-adds are fused (within 4 ulp of these).
 * Does not: double precision (the trainer's f64 build, for finite differences, uses libm), the
 * sampler's f64 Gumbel noise (src/agent/sample*.c).
 */
#ifndef CPHIL_VMATH_H
#define CPHIL_VMATH_H

#include <stdint.h>
#include <string.h>

static inline float cphil_vm_asfloat_(int32_t i) {
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}
static inline int32_t cphil_vm_asint_(float f) {
    int32_t i;
    memcpy(&i, &f, sizeof i);
    return i;
}

#define VF float
#define VI int32_t
#define VM(name) cphil_vm_##name
#define VM_SPLAT(c) (c)
#define VM_SEL(m, a, b) ((m) ? (a) : (b))
#define VM_TOINT(v) ((int32_t)(v))
#define VM_TOFLOAT(i) ((float)(i))
#define VM_ASINT(v) cphil_vm_asint_(v)
#define VM_ASFLOAT(i) cphil_vm_asfloat_(i)
#define VM_FMA(a, b, c) ((a) * (b) + (c))
#define VM_MAXC(x, c) ((x) < (c) ? (c) : (x))
#define VM_MINC(x, c) ((x) > (c) ? (c) : (x))
#define VM_ROUND(v) (((v) + 12582912.0f) - 12582912.0f)
#include "kernels/cpu/vmath_impl.h"
#undef VF
#undef VI
#undef VM
#undef VM_SPLAT
#undef VM_SEL
#undef VM_TOINT
#undef VM_TOFLOAT
#undef VM_ASINT
#undef VM_ASFLOAT
#undef VM_FMA
#undef VM_MAXC
#undef VM_MINC
#undef VM_ROUND

#endif
