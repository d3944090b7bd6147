/* cu_attention.cu — causal multi-head self-attention with RoPE (cu.h), the GPU twin of
 * cphil_nn_rope_table and cphil_nn_attention_* (nn_impl.h): the same saved qkv (q and k after
 * RoPE), P [B, nh, T, T] (f32 probabilities, zeros above the diagonal), att [B, T, H] and the
 * same scratch (datt, dqkv; dP is B*nh*T*T here, one T x T slice per (b, head)).
 *
 * Forward: qkv = u Wqkv^T + bqkv (cphil_cu_linear_forward), k_rope rotates q and k in place, then
 * k_attn_fwd; out = att Wo^T + bo. Backward: datt = dout Wo (after zeroing, as the CPU), k_attn_bwd,
 * k_rope with the inverse rotation on dq, dk, then the qkv projection's backward.
 *
 * k_attn_fwd / k_attn_bwd: one 256-thread block per (b, head); no atomics, each output element is
 * summed by one thread in a fixed order, so the bits depend only on the inputs. The T x T work
 * goes through square tiles of `tile` rows (attn_tile: min(T, 64), shrunk until two
 * tile x (hd+1) operand tiles and a tile x tile probability tile fit the 48 KiB of shared memory
 * a block gets without opt-in; T = 60, hd = 64 is a single tile), so any T works; hd up to about
 * 6000 fits (checked). Three block-level passes (blk_scores, blk_rows, blk_pv, blk_ptv) write and
 * re-read the T x T slice in global memory (P or dP): it is written by the same block, and
 * __syncthreads orders global writes within a block.
 * With CPHIL_PREC_BF16 every product operand is rounded to bf16 (nearest even) as it is loaded
 * into shared memory and products accumulate in f32 — the CPU's bf16 rule for these products.
 * Not here: the layer's place in the policy (src/gpu/).
 */
extern "C" {
#include "core/core.h"
}
#include "kernels/cuda/cu.h"
#include "kernels/cuda/cu_util.cuh"

#include <cuda_bf16.h>

#define ATT_THREADS 256
#define ATT_MAX_TILE 64 /* = TG * MT below: one thread block covers a whole tile */
#define ATT_SMEM_BYTES 49152

/* ---- RoPE ------------------------------------------------------------------------------------- */
static __global__ void k_rope_table(int T, int hd, float *rope) {
    int h2 = hd / 2;
    size_t n = (size_t)T * h2;
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < n; idx += (size_t)gridDim.x * blockDim.x) {
        int t = (int)(idx / h2), i = (int)(idx % h2);
        float inv = powf(10000.f, -(float)(2 * i) / (float)hd);
        float a = (float)t * inv;
        rope[(size_t)t * hd + i] = cosf(a);
        rope[(size_t)t * hd + h2 + i] = sinf(a);
    }
}

/* One thread per rotated pair (b, t, part q|k, head, i): the rotate-half form of rope_row;
 * dir = -1 applies the transpose (the backward). */
static __global__ void k_rope(int BT, int T, int H, int nh, int hd, const float *__restrict__ rope, float *qkv, float dir) {
    int h2 = hd / 2;
    size_t n = (size_t)BT * 2 * nh * h2;
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < n; idx += (size_t)gridDim.x * blockDim.x) {
        size_t r = idx;
        int i = (int)(r % h2);
        r /= h2;
        int h = (int)(r % nh);
        r /= nh;
        int part = (int)(r % 2);
        size_t bt = r / 2;
        int t = (int)(bt % T);
        const float *cs = rope + (size_t)t * hd;
        float c = cs[i], sn = dir * cs[h2 + i];
        float *v = qkv + bt * 3 * (size_t)H + (size_t)part * H + (size_t)h * hd;
        float x1 = v[i], x2 = v[h2 + i];
        v[i] = x1 * c - x2 * sn;
        v[h2 + i] = x2 * c + x1 * sn;
    }
}

/* ---- block-level pieces of the attention core ---------------------------------------------------- */
static __device__ __forceinline__ float op_round(float v, bool bf) { return bf ? __bfloat162float(__float2bfloat16_rn(v)) : v; }

/* dst[r][c] (row stride ld) = src[r * lds + c] for r < rows, c < cols, rounded if bf. */
static __device__ __forceinline__ void blk_load(float *dst, int ld, const float *src, size_t lds, int rows, int cols, bool bf) {
    for (int idx = threadIdx.x; idx < rows * cols; idx += blockDim.x) {
        int r = idx / cols, c = idx % cols;
        dst[r * ld + c] = op_round(src[(size_t)r * lds + c], bf);
    }
}

/* The three products below run on a 16 x 16 grid of threads (ATT_THREADS = 256), each thread
 * owning a 4 x 4 block of outputs held in registers: per step of the inner sum it reads 4 + 4
 * operands from shared memory for 16 FMAs (one thread per output read 2 for 1, and shared
 * memory was the bound). Every output is still summed by one thread, in the same order as a
 * plain loop over the inner index, so the bits do not depend on the tiling. */
#define MT 4  /* outputs per thread along each side of its block */
#define TG 16 /* threads along each side of the grid: TG * MT = ATT_MAX_TILE */

/* S[i][j] = alpha * sum_c A[i][c] Bm[j][c] for the causal part j <= i of the T x T slice S
 * (row stride T); entries above the diagonal are left alone. A, Bm: T rows of hd, strides lda, ldb.
 * Thread (ti, tj) owns rows ti*4.., columns tj*4.. of a tile pair; blocks wholly above the
 * diagonal are skipped. */
static __device__ void blk_scores(int T, int hd, int tile, float alpha, const float *A, size_t lda, const float *Bm,
                                  size_t ldb, float *S, float *smem, bool bf) {
    const int ld = hd + 1; /* odd stride: the rows a warp reads fall in different banks */
    float *As = smem, *Bs = smem + tile * ld;
    const int ti = threadIdx.x / TG, tj = threadIdx.x % TG;
    for (int i0 = 0; i0 < T; i0 += tile) {
        int ni = min(tile, T - i0);
        blk_load(As, ld, A + (size_t)i0 * lda, lda, ni, hd, bf);
        for (int j0 = 0; j0 <= i0 + ni - 1; j0 += tile) {
            int nj = min(tile, T - j0);
            blk_load(Bs, ld, Bm + (size_t)j0 * ldb, ldb, nj, hd, bf);
            __syncthreads();
            const int r0 = ti * MT, c0 = tj * MT;
            if (r0 < ni && c0 < nj && j0 + c0 <= i0 + min(r0 + MT - 1, ni - 1)) {
                const float *a[MT], *bb[MT];
                for (int r = 0; r < MT; r++) a[r] = As + min(r0 + r, ni - 1) * ld; /* clamped rows are not stored */
                for (int q = 0; q < MT; q++) bb[q] = Bs + min(c0 + q, nj - 1) * ld;
                float acc[MT][MT];
                for (int r = 0; r < MT; r++)
                    for (int q = 0; q < MT; q++) acc[r][q] = 0.f;
                for (int c = 0; c < hd; c++) {
                    float av[MT], bv[MT];
                    for (int r = 0; r < MT; r++) av[r] = a[r][c];
                    for (int q = 0; q < MT; q++) bv[q] = bb[q][c];
                    for (int r = 0; r < MT; r++)
                        for (int q = 0; q < MT; q++) acc[r][q] += av[r] * bv[q];
                }
                for (int r = 0; r < MT; r++)
                    for (int q = 0; q < MT; q++) {
                        int ii = r0 + r, jj = c0 + q, i = i0 + ii, j = j0 + jj;
                        if (ii < ni && jj < nj && j <= i) S[(size_t)i * T + j] = alpha * acc[r][q];
                    }
            }
            __syncthreads(); /* Bs (and at the end As) are reloaded next */
        }
    }
}

/* Os[row][d] += sum_k P(row, k) Xs[k][d] for rows < nrows, k < nk, d < hd: the shared inner
 * step of blk_pv (P(row, k) = Ps[row * tile + k]) and blk_ptv (P(row, k) = Ps[k * tile + row]),
 * given as the strides p_row, p_k. Thread (ti, tj) owns rows ti*4.. and columns tj, tj+16, ..
 * (strided, so a warp reads consecutive banks of Xs), reads and writes only its own entries of
 * Os, and sums k in order. */
static __device__ __forceinline__ void blk_accum(float *Os, int ld, const float *Xs, const float *Ps, int p_row, int p_k,
                                                 int nrows, int nk, int hd) {
    const int tj = threadIdx.x % TG, r0 = (threadIdx.x / TG) * MT;
    for (int d0 = 0; d0 < hd && r0 < nrows; d0 += TG * MT) {
        float acc[MT][MT];
        for (int r = 0; r < MT; r++)
            for (int q = 0; q < MT; q++) {
                int row = r0 + r, d = d0 + tj + TG * q;
                acc[r][q] = row < nrows && d < hd ? Os[row * ld + d] : 0.f;
            }
        for (int k = 0; k < nk; k++) {
            float pv[MT], xv[MT];
            for (int r = 0; r < MT; r++) pv[r] = Ps[min(r0 + r, nrows - 1) * p_row + k * p_k]; /* clamped: not stored */
            for (int q = 0; q < MT; q++) xv[q] = Xs[k * ld + min(d0 + tj + TG * q, hd - 1)];
            for (int r = 0; r < MT; r++)
                for (int q = 0; q < MT; q++) acc[r][q] += pv[r] * xv[q];
        }
        for (int r = 0; r < MT; r++)
            for (int q = 0; q < MT; q++) {
                int row = r0 + r, d = d0 + tj + TG * q;
                if (row < nrows && d < hd) Os[row * ld + d] = acc[r][q];
            }
    }
}

/* O[i][d] = sum_j Pm[i][j] X[j][d] (Pm: the T x T slice, zero above the diagonal; X: T rows of hd,
 * stride ldx; O stride ldo, overwritten). Accumulates in shared memory (blk_accum). */
static __device__ void blk_pv(int T, int hd, int tile, const float *Pm, const float *X, size_t ldx, float *O, size_t ldo,
                              float *smem, bool bf) {
    const int ld = hd + 1;
    float *Os = smem, *Xs = smem + tile * ld, *Ps = smem + 2 * tile * ld;
    for (int i0 = 0; i0 < T; i0 += tile) {
        int ni = min(tile, T - i0);
        for (int idx = threadIdx.x; idx < ni * hd; idx += blockDim.x) Os[(idx / hd) * ld + idx % hd] = 0.f;
        for (int j0 = 0; j0 <= i0 + ni - 1; j0 += tile) {
            int nj = min(tile, T - j0);
            blk_load(Xs, ld, X + (size_t)j0 * ldx, ldx, nj, hd, bf);
            blk_load(Ps, tile, Pm + (size_t)i0 * T + j0, T, ni, nj, bf);
            __syncthreads();
            blk_accum(Os, ld, Xs, Ps, tile, 1, ni, nj, hd);
            __syncthreads();
        }
        for (int idx = threadIdx.x; idx < ni * hd; idx += blockDim.x) {
            int ii = idx / hd, d = idx % hd;
            O[(size_t)(i0 + ii) * ldo + d] = Os[ii * ld + d];
        }
        __syncthreads(); /* Os is zeroed for the next row tile */
    }
}

/* O[j][d] = sum_i Pm[i][j] X[i][d] (the transposed product: dv = P^T dO, dk = dS^T q). Rows i < j
 * of Pm are zero, so only row tiles i0 + tile > j0 are read. */
static __device__ void blk_ptv(int T, int hd, int tile, const float *Pm, const float *X, size_t ldx, float *O, size_t ldo,
                               float *smem, bool bf) {
    const int ld = hd + 1;
    float *Os = smem, *Xs = smem + tile * ld, *Ps = smem + 2 * tile * ld;
    for (int j0 = 0; j0 < T; j0 += tile) {
        int nj = min(tile, T - j0);
        for (int idx = threadIdx.x; idx < nj * hd; idx += blockDim.x) Os[(idx / hd) * ld + idx % hd] = 0.f;
        for (int i0 = (j0 / tile) * tile; i0 < T; i0 += tile) {
            int ni = min(tile, T - i0);
            blk_load(Xs, ld, X + (size_t)i0 * ldx, ldx, ni, hd, bf);
            blk_load(Ps, tile, Pm + (size_t)i0 * T + j0, T, ni, nj, bf);
            __syncthreads();
            blk_accum(Os, ld, Xs, Ps, 1, tile, nj, ni, hd);
            __syncthreads();
        }
        for (int idx = threadIdx.x; idx < nj * hd; idx += blockDim.x) {
            int jj = idx / hd, d = idx % hd;
            O[(size_t)(j0 + jj) * ldo + d] = Os[jj * ld + d];
        }
        __syncthreads();
    }
}

static __device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
static __device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Causal softmax of each row of S in place (one warp per row): S[i][j] = exp(S - max) / sum over
 * j <= i, zeros for j > i — the CPU's formula. */
static __device__ void blk_softmax(int T, float *S) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    for (int i = w; i < T; i += nw) {
        float *r = S + (size_t)i * T;
        float mx = -INFINITY;
        for (int j = lane; j <= i; j += 32) mx = fmaxf(mx, r[j]);
        mx = warp_max(mx);
        float s = 0.f;
        for (int j = lane; j <= i; j += 32) {
            float e = expf(r[j] - mx);
            r[j] = e;
            s += e;
        }
        s = warp_sum(s);
        for (int j = lane; j < T; j += 32) r[j] = j <= i ? r[j] / s : 0.f;
    }
}

/* dS = P (dP - rowsum(dP P)) * scale in place of dP (one warp per row), zeros for j > i. */
static __device__ void blk_dsoftmax(int T, float scale, const float *Pm, float *dP) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    for (int i = w; i < T; i += nw) {
        const float *p = Pm + (size_t)i * T;
        float *r = dP + (size_t)i * T;
        float dot = 0.f;
        for (int j = lane; j <= i; j += 32) dot += r[j] * p[j];
        dot = warp_sum(dot);
        for (int j = lane; j < T; j += 32) r[j] = j <= i ? p[j] * (r[j] - dot) * scale : 0.f;
    }
}

/* ---- the attention core: one block per (b, head) ------------------------------------------------- */
static __global__ void __launch_bounds__(ATT_THREADS) k_attn_fwd(int T, int H, int nh, int tile, bool bf,
                                                         const float *qkv, float *P, float *att) {
    extern __shared__ float smem[];
    int b = blockIdx.x / nh, h = blockIdx.x % nh, hd = H / nh;
    size_t H3 = 3 * (size_t)H;
    const float *q = qkv + (size_t)b * T * H3 + (size_t)h * hd, *k = q + H, *v = q + 2 * (size_t)H;
    float *S = P + (size_t)blockIdx.x * T * T; /* blockIdx.x = b * nh + h */
    float *o = att + (size_t)b * T * H + (size_t)h * hd;
    blk_scores(T, hd, tile, 1.f / sqrtf((float)hd), q, H3, k, H3, S, smem, bf);
    __syncthreads();
    blk_softmax(T, S);
    __syncthreads();
    blk_pv(T, hd, tile, S, v, H3, o, H, smem, bf);
}

static __global__ void __launch_bounds__(ATT_THREADS) k_attn_bwd(int T, int H, int nh, int tile, bool bf,
                                                         const float *qkv, const float *P, const float *datt,
                                                         float *dqkv, float *dP) {
    extern __shared__ float smem[];
    int b = blockIdx.x / nh, h = blockIdx.x % nh, hd = H / nh;
    size_t H3 = 3 * (size_t)H, off = (size_t)b * T * H3 + (size_t)h * hd;
    const float *q = qkv + off, *k = q + H, *v = q + 2 * (size_t)H;
    float *dq = dqkv + off, *dk = dq + H, *dv = dq + 2 * (size_t)H;
    const float *S = P + (size_t)blockIdx.x * T * T;
    float *D = dP + (size_t)blockIdx.x * T * T;
    const float *da = datt + (size_t)b * T * H + (size_t)h * hd;
    /* dP = datt_h v_h^T (causal part); dv = P^T datt_h */
    blk_scores(T, hd, tile, 1.f, da, H, v, H3, D, smem, bf);
    __syncthreads();
    blk_ptv(T, hd, tile, S, da, H, dv, H3, smem, bf);
    __syncthreads();
    blk_dsoftmax(T, 1.f / sqrtf((float)hd), S, D);
    __syncthreads();
    /* dq = dS k; dk = dS^T q */
    blk_pv(T, hd, tile, D, k, H3, dq, H3, smem, bf);
    __syncthreads();
    blk_ptv(T, hd, tile, D, q, H3, dk, H3, smem, bf);
}

static size_t attn_smem(int tile, int hd) { return ((size_t)2 * tile * (hd + 1) + (size_t)tile * tile) * sizeof(float); }

/* The largest tile <= min(T, 64) whose shared memory fits ATT_SMEM_BYTES; 0 when hd is too big. */
static int attn_tile(int T, int hd) {
    int t = T < ATT_MAX_TILE ? T : ATT_MAX_TILE;
    while (t > 0 && attn_smem(t, hd) > ATT_SMEM_BYTES) t--;
    return t;
}

/* Check the sizes the core needs; records an error in the context and returns 0 when unusable. */
static int attn_check(cphil_cu *cu, int H, int nh, int T, const char *what) {
    if (nh <= 0 || H % nh != 0 || (H / nh) % 2 != 0) {
        cphil_cu_record(cu, (int)cudaErrorInvalidValue, what, __FILE__, __LINE__);
        return 0;
    }
    int tile = attn_tile(T, H / nh);
    if (tile <= 0) cphil_cu_record(cu, (int)cudaErrorInvalidValue, what, __FILE__, __LINE__);
    return tile;
}

/* ---- entry points --------------------------------------------------------------------------------- */
extern "C" void cphil_cu_rope_table(cphil_cu *cu, int T, int hd, float *rope) {
    size_t n = (size_t)(T > 0 ? T : 0) * (size_t)(hd > 1 ? hd / 2 : 0);
    if (!n) return;
    k_rope_table<<<cu_grid(n), CU_BLOCK, 0, cphil_cu_stream(cu)>>>(T, hd, rope);
    CPHIL_CU_CHECK_LAUNCH(cu, "rope table");
}

extern "C" void cphil_cu_attention_forward(cphil_cu *cu, cphil_precision prec, int B, int T, int H, int nh,
                                           const float *u, const float *Wqkv, const float *bqkv, const float *Wo,
                                           const float *bo, const float *rope, float *qkv, float *P, float *att,
                                           float *out) {
    if (B <= 0 || T <= 0 || H <= 0) return;
    int tile = attn_check(cu, H, nh, T, "attention forward: bad head size (H % nh, odd hd or hd too large)");
    if (!tile) return;
    const int hd = H / nh, BT = B * T;
    cudaStream_t st = cphil_cu_stream(cu);
    cphil_cu_linear_forward(cu, prec, BT, 3 * H, H, u, H, Wqkv, bqkv, qkv, 3 * H);
    size_t npair = (size_t)BT * H; /* 2 parts x nh heads x hd/2 pairs */
    k_rope<<<cu_grid(npair), CU_BLOCK, 0, st>>>(BT, T, H, nh, hd, rope, qkv, 1.f);
    CPHIL_CU_CHECK_LAUNCH(cu, "attention rope");
    k_attn_fwd<<<(unsigned)(B * nh), ATT_THREADS, attn_smem(tile, hd), st>>>(T, H, nh, tile,
                                                                             prec == CPHIL_PREC_BF16, qkv, P, att);
    CPHIL_CU_CHECK_LAUNCH(cu, "attention core forward");
    cphil_cu_linear_forward(cu, prec, BT, H, H, att, H, Wo, bo, out, H);
}

extern "C" void cphil_cu_attention_backward(cphil_cu *cu, cphil_precision prec, int B, int T, int H, int nh,
                                            const float *u, const float *Wqkv, const float *Wo, const float *rope,
                                            const float *qkv, const float *P, const float *att, const float *dout,
                                            float *du, float *dWqkv, float *dbqkv, float *dWo, float *dbo,
                                            float *datt, float *dqkv, float *dP) {
    if (B <= 0 || T <= 0 || H <= 0) return;
    int tile = attn_check(cu, H, nh, T, "attention backward: bad head size (H % nh, odd hd or hd too large)");
    if (!tile) return;
    const int hd = H / nh, BT = B * T;
    cudaStream_t st = cphil_cu_stream(cu);
    cphil_cu_zero(cu, datt, (size_t)BT * H * sizeof(float));
    cphil_cu_linear_backward(cu, prec, BT, H, H, att, H, Wo, dout, H, datt, H, dWo, dbo);
    k_attn_bwd<<<(unsigned)(B * nh), ATT_THREADS, attn_smem(tile, hd), st>>>(T, H, nh, tile, prec == CPHIL_PREC_BF16,
                                                                             qkv, P, datt, dqkv, dP);
    CPHIL_CU_CHECK_LAUNCH(cu, "attention core backward");
    size_t npair = (size_t)BT * H;
    k_rope<<<cu_grid(npair), CU_BLOCK, 0, st>>>(BT, T, H, nh, hd, rope, dqkv, -1.f);
    CPHIL_CU_CHECK_LAUNCH(cu, "attention rope backward");
    cphil_cu_linear_backward(cu, prec, BT, 3 * H, H, u, H, Wqkv, dqkv, 3 * H, du, H, dWqkv, dbqkv);
}
