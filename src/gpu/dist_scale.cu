/* dist_scale.cu — the one kernel of the GPU ranks' exchange (dist_nccl.h): gradients times this
 * rank's share of the global frame weight, read from memory at run time (graph-safe). */
#include <cuda_runtime.h>
#include <stddef.h>

static __global__ void k_dist_scale(float *x, size_t n, const float *factor) {
    const float f = *factor;
    if (f == 1.0f) return; /* one rank, or equal shares of a world of one: exact, and free */
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] *= f;
}

extern "C" void cphil_gpu_dist_scale(cudaStream_t s, float *x, size_t n, const float *factor) {
    size_t blocks = (n + 255) / 256;
    if (blocks > 4096) blocks = 4096;
    if (blocks == 0) blocks = 1;
    k_dist_scale<<<(unsigned)blocks, 256, 0, s>>>(x, n, factor);
}
