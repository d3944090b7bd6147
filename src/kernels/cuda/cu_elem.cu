/* cu_elem.cu — elementwise GPU kernels and the Linear layer of cu.h: fill/add/accumulate, the
 * activations of nn_impl.h with the same formulas (branch-free sigmoid, PyTorch's softplus with
 * threshold 20, erf GELU), and Linear forward/backward as cuBLASLt products (bias gradients as a
 * product with a column of ones: a fixed-order f32 reduction, so deterministic).
 * Not here: layers with their own kernels (norms, recurrences, scan, attention).
 */
extern "C" {
#include "core/core.h"
}
#include "kernels/cuda/cu.h"
#include "kernels/cuda/cu_util.cuh"

static __global__ void k_fill(float *x, size_t n, float v) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] = v;
}
static __global__ void k_add(size_t n, const float *a, const float *b, float *y) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = a[i] + b[i];
}
static __global__ void k_accumulate(size_t n, const float *x, float *y) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] += x[i];
}

static __device__ __forceinline__ float act_f(int f, float x) {
    switch (f) {
    case CPHIL_ACT_RELU: return x > 0.f ? x : 0.f;
    case CPHIL_ACT_GELU: return 0.5f * x * (1.f + erff(x * 0.70710678118654752440f));
    case CPHIL_ACT_SILU: return x * cu_sigm(x);
    case CPHIL_ACT_SOFTPLUS: return cu_softplus(x);
    case CPHIL_ACT_SIGMOID: return cu_sigm(x);
    default: return tanhf(x);
    }
}
static __device__ __forceinline__ float act_df(int f, float x) {
    switch (f) {
    case CPHIL_ACT_RELU: return x > 0.f ? 1.f : 0.f;
    case CPHIL_ACT_GELU:
        return 0.5f * (1.f + erff(x * 0.70710678118654752440f)) + x * 0.39894228040143267794f * expf(-0.5f * x * x);
    case CPHIL_ACT_SILU: return cu_dsilu(x);
    case CPHIL_ACT_SOFTPLUS: return x > 20.f ? 1.f : cu_sigm(x);
    case CPHIL_ACT_SIGMOID: {
        float s = cu_sigm(x);
        return s * (1.f - s);
    }
    default: {
        float t = tanhf(x);
        return 1.f - t * t;
    }
    }
}
static __global__ void k_act_fwd(int f, size_t n, const float *x, float *y) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = act_f(f, x[i]);
}
static __global__ void k_act_bwd(int f, size_t n, const float *x, const float *dy, float *dx) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dx[i] += dy[i] * act_df(f, x[i]);
}
/* y[r, :] = b for every row r (ldy stride) */
static __global__ void k_bias_rows(int M, int N, const float *b, float *y, int ldy) {
    size_t n = (size_t)M * N;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / (size_t)N, c = i % (size_t)N;
        y[r * (size_t)ldy + c] = b[c];
    }
}

extern "C" void cphil_cu_fill(cphil_cu *cu, float *x, size_t n, float v) {
    if (!n) return;
    k_fill<<<cu_grid(n), CU_BLOCK, 0, cphil_cu_stream(cu)>>>(x, n, v);
    CPHIL_CU_CHECK_LAUNCH(cu, "fill");
}
extern "C" void cphil_cu_zero(cphil_cu *cu, void *x, size_t bytes) {
    if (!bytes) return;
    cphil_cu_record(cu, (int)cudaMemsetAsync(x, 0, bytes, cphil_cu_stream(cu)), "memset", __FILE__, __LINE__);
}
extern "C" void cphil_cu_copy(cphil_cu *cu, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    cphil_cu_record(cu, (int)cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cphil_cu_stream(cu)),
                    "device copy", __FILE__, __LINE__);
}
extern "C" void cphil_cu_add(cphil_cu *cu, size_t n, const float *a, const float *b, float *y) {
    if (!n) return;
    k_add<<<cu_grid(n), CU_BLOCK, 0, cphil_cu_stream(cu)>>>(n, a, b, y);
    CPHIL_CU_CHECK_LAUNCH(cu, "add");
}
extern "C" void cphil_cu_accumulate(cphil_cu *cu, size_t n, const float *x, float *y) {
    if (!n) return;
    k_accumulate<<<cu_grid(n), CU_BLOCK, 0, cphil_cu_stream(cu)>>>(n, x, y);
    CPHIL_CU_CHECK_LAUNCH(cu, "accumulate");
}
extern "C" void cphil_cu_act_forward(cphil_cu *cu, cphil_act f, size_t n, const float *x, float *y) {
    if (!n) return;
    k_act_fwd<<<cu_grid(n), CU_BLOCK, 0, cphil_cu_stream(cu)>>>((int)f, n, x, y);
    CPHIL_CU_CHECK_LAUNCH(cu, "activation forward");
}
extern "C" void cphil_cu_act_backward(cphil_cu *cu, cphil_act f, size_t n, const float *x, const float *dy,
                                      float *dx) {
    if (!n) return;
    k_act_bwd<<<cu_grid(n), CU_BLOCK, 0, cphil_cu_stream(cu)>>>((int)f, n, x, dy, dx);
    CPHIL_CU_CHECK_LAUNCH(cu, "activation backward");
}

/* ---- Linear ------------------------------------------------------------------------------ */
extern "C" void cphil_cu_linear_forward(cphil_cu *cu, cphil_precision prec, int M, int N, int K, const float *x,
                                        int ldx, const float *W, const float *b, float *y, int ldy) {
    float beta = 0.f;
    if (b && cphil_cu_gemm_bias(cu, prec, M, N, K, x, ldx, W, K, b, y, ldy)) return; /* the bias in the epilogue */
    if (b) { /* no epilogue algorithm for this shape: the bias first, then the product adds to it */
        k_bias_rows<<<cu_grid((size_t)M * N), CU_BLOCK, 0, cphil_cu_stream(cu)>>>(M, N, b, y, ldy);
        CPHIL_CU_CHECK_LAUNCH(cu, "linear bias");
        beta = 1.f;
    }
    cphil_cu_gemm(cu, prec, false, true, M, N, K, 1.f, x, ldx, W, K, beta, y, ldy);
}

extern "C" void cphil_cu_linear_backward(cphil_cu *cu, cphil_precision prec, int M, int N, int K, const float *x,
                                         int ldx, const float *W, const float *dy, int lddy, float *dx, int lddx,
                                         float *dW, float *db) {
    if (dx) cphil_cu_gemm(cu, prec, false, false, M, K, N, 1.f, dy, lddy, W, K, 1.f, dx, lddx);
    cphil_cu_gemm(cu, prec, true, false, N, K, M, 1.f, dy, lddy, x, ldx, 1.f, dW, K);
    if (db) cphil_cu_colsum(cu, M, N, dy, lddy, db);
}

/* db[n] += sum over rows of dy[:, n]: a product with a column of ones in IEEE f32 (the CPU sums
 * bias gradients in f32 whatever the precision). */
extern "C" void cphil_cu_colsum(cphil_cu *cu, int M, int N, const float *dy, int lddy, float *db) {
    const float *ones = cphil_cu_ones(cu, (size_t)M);
    if (!ones) {
        cphil_cu_record(cu, (int)cudaErrorMemoryAllocation, "column of ones", __FILE__, __LINE__);
        return;
    }
    cphil_cu_gemm(cu, CPHIL_PREC_F32, true, false, N, 1, M, 1.f, dy, lddy, ones, 1, 1.f, db, 1);
}
