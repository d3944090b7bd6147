/* cu_util.cuh — small device helpers shared by the .cu files: launch geometry and the scalar
 * functions of nn_impl.h written for the GPU with the same formulas (so GPU and CPU layers agree
 * to f32 rounding). Device code only. */
#ifndef CPHIL_CU_UTIL_CUH
#define CPHIL_CU_UTIL_CUH

#include <cuda_runtime.h>
#include <stddef.h>

#define CU_BLOCK 256

/* Blocks for a grid-stride loop over n elements (capped: the loop covers the rest). */
static inline unsigned cu_grid(size_t n) {
    size_t g = (n + CU_BLOCK - 1) / CU_BLOCK;
    if (g > 65535) g = 65535;
    return (unsigned)(g ? g : 1);
}

/* sigmoid, branch-free like nn_impl.h: e = exp(-|x|) never overflows */
__device__ __forceinline__ float cu_sigm(float x) {
    float e = expf(x < 0.f ? x : -x), s = 1.f / (1.f + e);
    return x >= 0.f ? s : e * s;
}
__device__ __forceinline__ float cu_softplus(float x) { return x > 20.f ? x : log1pf(expf(x)); }
__device__ __forceinline__ float cu_silu(float x) { return x * cu_sigm(x); }
__device__ __forceinline__ float cu_dsilu(float x) {
    float s = cu_sigm(x);
    return s * (1.f + x * (1.f - s));
}

#endif
