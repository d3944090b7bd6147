/* cu_norm.cu — LayerNorm and RMSNorm of cu.h, the GPU twins of cphil_nn_layernorm_* and
 * cphil_nn_rmsnorm_* (nn_impl.h): same formulas (two-pass mean then biased variance, rstd =
 * 1/sqrt(var + eps) in IEEE f32), same saved mean/rstd, backward ADDS into dx, dg, db.
 *
 * Kernels:
 *  - rows (forward and dx): one warp per row, 8 rows per 256-thread block; each lane walks the
 *    columns lane, lane+32, ... and the row sums are xor-butterfly warp reductions (a fixed order,
 *    and every lane ends with the same bits). No __restrict__ here: y may be x, dx may be dy (each
 *    element is read before the same thread writes it, as in the CPU loops; the dg/db partials
 *    are taken before dx is written, for the same reason).
 *  - parameter gradients (dg, db), no atomics: the M rows are cut into `nch` chunks (norm_chunks);
 *    k_norm_partial has one block per (32-column tile, chunk) of 32 x 8 threads: thread (tx, ty) sums
 *    column c = tile*32 + tx over the chunk's rows ty, ty+8, ... then the 8 row-lanes are added in
 *    order of ty into scratch[chunk][c]; k_colsum_chunks (32 x 16 threads per 32 columns) adds
 *    the nch partials of a column in a fixed order and ADDS the total into dg/db. The chunking
 *    depends only on M, so the bits depend only on the inputs.
 * Not here: the residual add (the policy composes it), attention (cu_attention.cu).
 */
extern "C" {
#include "core/core.h"
}
#include "kernels/cuda/cu.h"
#include "kernels/cuda/cu_util.cuh"

#define NORM_ROWS_PER_BLOCK 8 /* warps of a 256-thread row block */
#define NORM_CHUNK_ROWS 64    /* rows per partial-sum chunk (before the cap below) */
#define NORM_MAX_CHUNKS 1024

/* Number of row chunks for the parameter-gradient partials: 64 rows each, at most 1024 chunks
 * (then ceil(M / 1024) rows each). */
static int norm_chunks(int M) {
    int n = (M + NORM_CHUNK_ROWS - 1) / NORM_CHUNK_ROWS;
    if (n > NORM_MAX_CHUNKS) n = NORM_MAX_CHUNKS;
    return n > 0 ? n : 1;
}

extern "C" size_t cphil_cu_norm_scratch_floats(int M, int C) {
    if (M <= 0 || C <= 0) return 0;
    return (size_t)2 * (size_t)norm_chunks(M) * (size_t)C; /* dg partials, then db partials */
}

static __device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* ---- forward ------------------------------------------------------------------------------ */
static __global__ void k_layernorm_fwd(int M, int C, const float *x, const float *g,
                                       const float *b, float eps, float *y,
                                       float *mean, float *rstd) {
    int lane = threadIdx.x & 31;
    int m = blockIdx.x * NORM_ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (m >= M) return; /* whole warps leave together: no block-level barrier follows */
    const float *xr = x + (size_t)m * C;
    float *yr = y + (size_t)m * C;
    float s = 0.f;
    for (int c = lane; c < C; c += 32) s += xr[c];
    float mu = warp_sum(s) / (float)C;
    float v = 0.f;
    for (int c = lane; c < C; c += 32) {
        float d = xr[c] - mu;
        v += d * d;
    }
    float var = warp_sum(v) / (float)C;
    float rs = 1.f / sqrtf(var + eps);
    for (int c = lane; c < C; c += 32) yr[c] = (xr[c] - mu) * rs * g[c] + b[c];
    if (lane == 0) {
        mean[m] = mu;
        rstd[m] = rs;
    }
}

static __global__ void k_rmsnorm_fwd(int M, int C, const float *x, const float *g, float eps,
                                     float *y, float *rstd) {
    int lane = threadIdx.x & 31;
    int m = blockIdx.x * NORM_ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (m >= M) return;
    const float *xr = x + (size_t)m * C;
    float *yr = y + (size_t)m * C;
    float s = 0.f;
    for (int c = lane; c < C; c += 32) s += xr[c] * xr[c];
    float rs = 1.f / sqrtf(warp_sum(s) / (float)C + eps);
    for (int c = lane; c < C; c += 32) yr[c] = xr[c] * rs * g[c];
    if (lane == 0) rstd[m] = rs;
}

/* ---- backward: dx ------------------------------------------------------------------------- */
static __global__ void k_layernorm_dx(int M, int C, const float *x, const float *g,
                                      const float *mean, const float *rstd,
                                      const float *dy, float *dx) {
    int lane = threadIdx.x & 31;
    int m = blockIdx.x * NORM_ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (m >= M) return;
    const float *xr = x + (size_t)m * C, *dr = dy + (size_t)m * C;
    float mu = mean[m], rs = rstd[m], s1 = 0.f, s2 = 0.f;
    for (int c = lane; c < C; c += 32) {
        float xh = (xr[c] - mu) * rs, dxh = dr[c] * g[c];
        s1 += dxh;
        s2 += dxh * xh;
    }
    s1 = warp_sum(s1) / (float)C;
    s2 = warp_sum(s2) / (float)C;
    float *o = dx + (size_t)m * C;
    for (int c = lane; c < C; c += 32) {
        float xh = (xr[c] - mu) * rs;
        o[c] += rs * (dr[c] * g[c] - s1 - xh * s2);
    }
}

static __global__ void k_rmsnorm_dx(int M, int C, const float *x, const float *g,
                                    const float *rstd, const float *dy, float *dx) {
    int lane = threadIdx.x & 31;
    int m = blockIdx.x * NORM_ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (m >= M) return;
    const float *xr = x + (size_t)m * C, *dr = dy + (size_t)m * C;
    float rs = rstd[m], s = 0.f;
    for (int c = lane; c < C; c += 32) s += dr[c] * g[c] * xr[c];
    s = warp_sum(s) / (float)C;
    float *o = dx + (size_t)m * C;
    for (int c = lane; c < C; c += 32) o[c] += rs * (dr[c] * g[c] - xr[c] * rs * rs * s);
}

/* ---- backward: per-chunk partial sums of dg (and db) --------------------------------------- */
/* grid (ceil(C/32), nch), block (32, 8). rms: dg term dy x rstd and no db; else dy xhat and dy. */
template <bool RMS>
static __global__ void k_norm_partial(int M, int C, int rows_per_chunk, const float *__restrict__ x,
                                      const float *__restrict__ mean, const float *__restrict__ rstd,
                                      const float *__restrict__ dy, float *__restrict__ part_g,
                                      float *__restrict__ part_b) {
    __shared__ float sg[8][33], sb[8][33];
    int tx = threadIdx.x, ty = threadIdx.y;
    int c = blockIdx.x * 32 + tx, ch = blockIdx.y;
    int r0 = ch * rows_per_chunk, r1 = r0 + rows_per_chunk < M ? r0 + rows_per_chunk : M;
    float ag = 0.f, ab = 0.f;
    if (c < C)
        for (int m = r0 + ty; m < r1; m += 8) {
            float d = dy[(size_t)m * C + c], xv = x[(size_t)m * C + c];
            if (RMS) {
                ag += d * xv * rstd[m];
            } else {
                ag += d * ((xv - mean[m]) * rstd[m]);
                ab += d;
            }
        }
    sg[ty][tx] = ag;
    sb[ty][tx] = ab;
    __syncthreads();
    if (ty == 0 && c < C) {
        float tg = 0.f, tb = 0.f;
        for (int k = 0; k < 8; k++) {
            tg += sg[k][tx];
            tb += sb[k][tx];
        }
        part_g[(size_t)ch * C + c] = tg;
        if (!RMS) part_b[(size_t)ch * C + c] = tb;
    }
}

/* grid ceil(C/32), block (32, 16): out[c] += sum over the nch chunks of part[k][c], fixed order
 * (row-lane ty takes chunks ty, ty+16, ...; then the 16 lanes in order). */
static __global__ void k_colsum_chunks(int C, int nch, const float *__restrict__ part, float *__restrict__ out) {
    __shared__ float s[16][33];
    int tx = threadIdx.x, ty = threadIdx.y, c = blockIdx.x * 32 + tx;
    float a = 0.f;
    if (c < C)
        for (int k = ty; k < nch; k += 16) a += part[(size_t)k * C + c];
    s[ty][tx] = a;
    __syncthreads();
    if (ty == 0 && c < C) {
        float t = 0.f;
        for (int k = 0; k < 16; k++) t += s[k][tx];
        out[c] += t;
    }
}

static unsigned row_blocks(int M) { return (unsigned)((M + NORM_ROWS_PER_BLOCK - 1) / NORM_ROWS_PER_BLOCK); }

/* ---- entry points ----------------------------------------------------------------------------- */
extern "C" void cphil_cu_layernorm_forward(cphil_cu *cu, int M, int C, const float *x, const float *g,
                                           const float *b, float eps, float *y, float *mean, float *rstd) {
    if (M <= 0 || C <= 0) return;
    k_layernorm_fwd<<<row_blocks(M), 32 * NORM_ROWS_PER_BLOCK, 0, cphil_cu_stream(cu)>>>(M, C, x, g, b, eps, y,
                                                                                          mean, rstd);
    CPHIL_CU_CHECK_LAUNCH(cu, "layernorm forward");
}

extern "C" void cphil_cu_layernorm_backward(cphil_cu *cu, int M, int C, const float *x, const float *g,
                                            const float *mean, const float *rstd, const float *dy, float *dx,
                                            float *dg, float *db, float *scratch) {
    if (M <= 0 || C <= 0) return;
    cudaStream_t st = cphil_cu_stream(cu);
    int nch = norm_chunks(M), rpc = (M + nch - 1) / nch;
    float *pg = scratch, *pb = scratch + (size_t)nch * C;
    dim3 gp((unsigned)((C + 31) / 32), (unsigned)nch), bp(32, 8);
    k_norm_partial<false><<<gp, bp, 0, st>>>(M, C, rpc, x, mean, rstd, dy, pg, pb);
    CPHIL_CU_CHECK_LAUNCH(cu, "layernorm backward partials");
    dim3 gs((unsigned)((C + 31) / 32)), bs(32, 16);
    k_colsum_chunks<<<gs, bs, 0, st>>>(C, nch, pg, dg);
    CPHIL_CU_CHECK_LAUNCH(cu, "layernorm backward dg");
    k_colsum_chunks<<<gs, bs, 0, st>>>(C, nch, pb, db);
    CPHIL_CU_CHECK_LAUNCH(cu, "layernorm backward db");
    if (dx) {
        k_layernorm_dx<<<row_blocks(M), 32 * NORM_ROWS_PER_BLOCK, 0, st>>>(M, C, x, g, mean, rstd, dy, dx);
        CPHIL_CU_CHECK_LAUNCH(cu, "layernorm backward dx");
    }
}

extern "C" void cphil_cu_rmsnorm_forward(cphil_cu *cu, int M, int C, const float *x, const float *g, float eps,
                                         float *y, float *rstd) {
    if (M <= 0 || C <= 0) return;
    k_rmsnorm_fwd<<<row_blocks(M), 32 * NORM_ROWS_PER_BLOCK, 0, cphil_cu_stream(cu)>>>(M, C, x, g, eps, y, rstd);
    CPHIL_CU_CHECK_LAUNCH(cu, "rmsnorm forward");
}

extern "C" void cphil_cu_rmsnorm_backward(cphil_cu *cu, int M, int C, const float *x, const float *g,
                                          const float *rstd, const float *dy, float *dx, float *dg, float *scratch) {
    if (M <= 0 || C <= 0) return;
    cudaStream_t st = cphil_cu_stream(cu);
    int nch = norm_chunks(M), rpc = (M + nch - 1) / nch;
    dim3 gp((unsigned)((C + 31) / 32), (unsigned)nch), bp(32, 8);
    k_norm_partial<true><<<gp, bp, 0, st>>>(M, C, rpc, x, NULL, rstd, dy, scratch, NULL);
    CPHIL_CU_CHECK_LAUNCH(cu, "rmsnorm backward partials");
    dim3 gs((unsigned)((C + 31) / 32)), bs(32, 16);
    k_colsum_chunks<<<gs, bs, 0, st>>>(C, nch, scratch, dg);
    CPHIL_CU_CHECK_LAUNCH(cu, "rmsnorm backward dg");
    if (dx) {
        k_rmsnorm_dx<<<row_blocks(M), 32 * NORM_ROWS_PER_BLOCK, 0, st>>>(M, C, x, g, rstd, dy, dx);
        CPHIL_CU_CHECK_LAUNCH(cu, "rmsnorm backward dx");
    }
}
