/* cu_rnn_persist.cu — the LSTM/GRU recurrence as ONE kernel per layer and direction, with the
 * recurrent weights resident in shared memory (gpu_training.md 2.2): the bf16 path of
 * cphil_cu_lstm_* / cphil_cu_gru_* (cu_rnn.cu) where the shape fits.
 *
 * Why: the per-step path (cu_rnn.cu) is a chain of 2 launches per time step and direction; at
 * B 64, T 60, 2 layers that is 480 dependent launches, about 10 us each on an H100, and the
 * arithmetic is a small fraction of it. Here the whole chain of one layer is one launch.
 *
 * Layout (Hopper thread-block clusters, sm_90):
 *  - a cluster of PR_CS = 8 blocks serves BC = 16 MT batch rows, MT = 1, 2 or 3 tiles of the
 *    mma's 16 rows: the fewest whose clusters are all resident at once (a batch of 512 takes 48
 *    rows per cluster, 11 clusters, where 16 rows would need 32 and about 15 fit on an H100);
 *    block r of the cluster owns the hidden units [r U, (r+1) U), U = H / 8, and keeps the rows
 *    of Whh of its units' gates (NG U rows: 4 gates for the LSTM, 3 for the GRU) in shared
 *    memory as bf16 for all T steps;
 *  - forward step t: each block multiplies h_{t-1} (BC x H, bf16, in its shared memory) by its
 *    Whh slice on the tensor cores (mma.sync m16n8k16, f32 accumulation), runs the cell for its
 *    units (the formulas and saved values of cu_rnn.cu's cell kernels, term for term), writes
 *    the outputs to global memory and h_t as bf16 into every block's shared memory of the
 *    cluster (distributed shared memory); one cluster barrier per step (double-buffered h);
 *  - backward step t: each block runs the cell backward for its units (dc stays on the block),
 *    writes dG to global memory for the products after the loop, and multiplies its dG slice
 *    (BC x NG U, bf16) by its Whh slice: a partial dh over all H units from its gates. Each
 *    partial's columns go to the block that owns them; after the cluster barrier each block sums
 *    the 8 partials of its units in rank order 0..7. Clusters are independent (rows do not
 *    mix), so B only sets how many there are; there is no grid-wide barrier.
 * Precision: the products take bf16 operands (h_{t-1} or dG rounded to nearest even, Whh
 * rounded) with f32 accumulation: the CPU's bf16 rule (the per-step path's cuBLASLt FAST_16BF
 * runs TF32 kernels on f32 storage, so the two GPU paths differ in rounding only). f32 runs the
 * per-step path (IEEE f32 products).
 * Deterministic: fixed accumulation order in the mma, fixed order of the partial sums, no
 * atomics: same-seed runs take the same MT (a function of B and the card) and give the same bits.
 * Across MT the mma sums are the same, but the compiler contracts the cell's products into FMAs
 * per instantiation, so the LSTM's bits may differ (measured: they do between 16 and 48 rows; the
 * GRU's did not).
 * Applies when H % 32 == 0 (LSTM) or H % 128 == 0 (GRU), the slice fits in shared memory and the
 * block in the registers (on an H100: LSTM up to H 352, GRU up to H 256; two or three tiles up to
 * H 256), and (CPHIL_RNN auto) every cluster of the batch is resident at once for some MT;
 * otherwise the callers run the per-step path. One GPU per process: the shared-memory opt-in and
 * the register query are made once per kernel, not per device.
 */
extern "C" {
#include "core/core.h"
}
#include "kernels/cuda/cu.h"
#include "kernels/cuda/cu_rnn_persist.h"
#include "kernels/cuda/cu_util.cuh"

#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <stdint.h>

namespace cg = cooperative_groups;

#define PR_CS 8  /* blocks per cluster; block r owns hidden units [r U, (r+1) U) */
#define PR_M 16  /* batch rows per tile: the mma's M; a cluster serves MT tiles (BC = PR_M MT rows) */
#define PR_MT_MAX 3
/* The largest block each kernel is built for (__launch_bounds__, so the compiler keeps its
 * registers within 64 K / this): one tile serves an LSTM up to H 352 and a GRU up to H 256 (the
 * sizes whose slice fits in shared memory), two and three tiles both up to H 256 (NG 128 threads). */
#define PR_MAX_THREADS(NG, MT) ((MT) == 1 ? ((NG) == 4 ? 704 : 384) : (NG) * 128)
#define PR_PAD 8 /* bf16 elements of padding per shared row: 16 bytes, so the 8 rows an mma
                  * fragment load touches fall in different banks */
#define PR_FPAD 8 /* f32 padding of the rows the mma results are stored to (rec, ploc): the 8
                   * rows of a fragment store then meet at most 2 to a bank, not 8 */

typedef __nv_bfloat16 bf16;

/* D += A B for one m16n8k16 tile: A 16 x 16 bf16 (row-major fragments), B 16 x 8 bf16 (column
 * fragments), D 16 x 8 f32. Fragment layout (PTX ISA, "mma.m16n8k16"): with g = lane / 4 and
 * q = lane % 4, a[0] = A[g][2q..2q+1], a[1] = A[g+8][2q..], a[2] = A[g][2q+8..], a[3] =
 * A[g+8][2q+8..]; b[0] = B[2q..2q+1][g], b[1] = B[2q+8..2q+9][g]; d[0..1] = D[g][2q..2q+1],
 * d[2..3] = D[g+8][2q..2q+1]. */
static __device__ __forceinline__ void mma16816(float d[4], const uint32_t a[4], const uint32_t b[2]) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
                 "{%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

static __device__ __forceinline__ uint32_t ld_pair(const bf16 *p) { return *(const uint32_t *)p; }

/* MT tiles of 16 x 8: D[16 MT][8] = A[16 MT][K] Bt[8][K]^T (A row-major, leading dimension lda;
 * Bt the 8 output columns' rows, k contiguous, leading dimension ldb), d[m] the rows [16 m, 16 m +
 * 16) in the fragment layout above; each B fragment is loaded once for the MT tiles. Even and odd
 * k-steps accumulate apart (independent mma chains) and are added at the end: a fixed order, the
 * same for every MT, so the sums do not change from run to run or with MT. K % 16 == 0. */
template <int MT>
static __device__ __forceinline__ void tiles_mx8(const bf16 *A, int lda, const bf16 *Bt, int ldb, int K, int lane,
                                                 float d[MT][4]) {
    const int g = lane >> 2, q = lane & 3;
    float even[MT][4] = {}, odd[MT][4] = {};
    const bf16 *b = Bt + g * ldb + 2 * q;
    for (int k0 = 0, par = 0; k0 < K; k0 += 16, par ^= 1) {
        uint32_t bb[2] = {ld_pair(b + k0), ld_pair(b + k0 + 8)};
#pragma unroll
        for (int m = 0; m < MT; m++) {
            const bf16 *a0 = A + (m * PR_M + g) * lda + 2 * q + k0, *a8 = a0 + 8 * lda;
            uint32_t a[4] = {ld_pair(a0), ld_pair(a8), ld_pair(a0 + 8), ld_pair(a8 + 8)};
            if (par) mma16816(odd[m], a, bb); /* a branch, not acc[par]: keeps both in registers */
            else mma16816(even[m], a, bb);
        }
    }
#pragma unroll
    for (int m = 0; m < MT; m++)
        for (int i = 0; i < 4; i++) d[m][i] = even[m][i] + odd[m][i];
}

/* One 16 x 16 block of outputs (two 8-column tiles): D[16][16] = A[16][K] Bt[16][K]^T, A row-major
 * with leading dimension lda, Bt the 16 output columns' rows (k contiguous) with leading dimension
 * ldb; d0 holds columns 0..7, d1 columns 8..15 in the fragment layout above. Even and odd k-steps
 * accumulate apart (four independent mma chains instead of two) and are added at the end: a
 * fixed order, so the bits do not change from run to run. K % 16 == 0. */
static __device__ __forceinline__ void block_16x16(const bf16 *A, int lda, const bf16 *Bt, int ldb, int K, int lane,
                                                   float d0[4], float d1[4]) {
    const int g = lane >> 2, q = lane & 3;
    float acc[2][2][4] = {};
    for (int k0 = 0, par = 0; k0 < K; k0 += 16, par ^= 1) {
        uint32_t a[4], b0[2], b1[2];
        a[0] = ld_pair(A + g * lda + k0 + 2 * q);
        a[1] = ld_pair(A + (g + 8) * lda + k0 + 2 * q);
        a[2] = ld_pair(A + g * lda + k0 + 8 + 2 * q);
        a[3] = ld_pair(A + (g + 8) * lda + k0 + 8 + 2 * q);
        b0[0] = ld_pair(Bt + g * ldb + k0 + 2 * q);
        b0[1] = ld_pair(Bt + g * ldb + k0 + 8 + 2 * q);
        b1[0] = ld_pair(Bt + (g + 8) * ldb + k0 + 2 * q);
        b1[1] = ld_pair(Bt + (g + 8) * ldb + k0 + 8 + 2 * q);
        if (par) {
            mma16816(acc[1][0], a, b0);
            mma16816(acc[1][1], a, b1);
        } else {
            mma16816(acc[0][0], a, b0);
            mma16816(acc[0][1], a, b1);
        }
    }
    for (int i = 0; i < 4; i++) {
        d0[i] = acc[0][0][i] + acc[1][0][i];
        d1[i] = acc[0][1][i] + acc[1][1][i];
    }
}

/* ---- shapes ----------------------------------------------------------------------------------- */
/* Threads per block: one warp per 8 gate columns of the slice (one output tile each forward):
 * the step's critical path is one warp's chain of instructions, so more, shorter chains. */
static inline int pr_threads(int NG, int H) { return 32 * (NG * (H / PR_CS) / 8); }

/* Shared memory of each kernel for MT tiles of 16 rows per cluster (BC = 16 MT rows). */
static size_t pr_smem_fwd(int NG, int H, int MT) {
    const int NGU = NG * (H / PR_CS), BC = PR_M * MT;
    return (size_t)NGU * (H + PR_PAD) * sizeof(bf16)    /* Wt: the slice, [NGU][H] */
           + 2 * (size_t)BC * (H + PR_PAD) * sizeof(bf16) /* h_{t-1}, double-buffered */
           + (size_t)BC * (NGU + PR_FPAD) * sizeof(float) /* the recurrent product for the cell */
           + (size_t)BC * (H / PR_CS) * sizeof(bf16);   /* this block's h_t, sent to the others */
}

/* The backward's partial-sum buffers: two halves of [PR_CS][BC][U] floats (partials from each
 * rank, double-buffered), each also big enough for [BC][H + PR_FPAD], because the half not
 * receiving this step stages this block's own partial before it is sent (see the kernel). */
static size_t pr_part_half(int H, int MT) { return (size_t)PR_M * MT * (H + PR_FPAD); }

static size_t pr_smem_bwd(int NG, int H, int MT) {
    const int U = H / PR_CS, NGU = NG * U, BC = PR_M * MT;
    return (size_t)H * (NGU + PR_PAD) * sizeof(bf16)    /* Wk: the slice transposed, [H][NGU] */
           + (size_t)BC * (NGU + PR_PAD) * sizeof(bf16) /* dG slice for the product */
           + 2 * pr_part_half(H, MT) * sizeof(float);   /* partials and the staged own partial */
}

template <int NG, int MT> static int max_clusters(cphil_cu *cu, int H, int backward);
template <int NG, int MT> static int max_threads();
template <int NG, int MT> static void allow_smem(cphil_cu *cu);

/* Clusters of MT tiles resident at once for (ng, H): the smaller of the forward's and the
 * backward's, queried once per device and shape (a layer of one model has one shape); a failed
 * query is not remembered. */
static int resident_clusters(cphil_cu *cu, int NG, int H, int MT) {
    static struct {
        int dev, ng, H, mt, n;
    } memo[32];
    static int nmemo;
    const int dev = cphil_cu_device_index(cu);
    for (int i = 0; i < nmemo; i++)
        if (memo[i].dev == dev && memo[i].ng == NG && memo[i].H == H && memo[i].mt == MT) return memo[i].n;
    int f = cphil_cu_rnn_persist_max_clusters(cu, NG, H, MT, 0);
    int b = cphil_cu_rnn_persist_max_clusters(cu, NG, H, MT, 1);
    int n = f < b ? f : b;
    if (n >= 0 && nmemo < 32) memo[nmemo++] = {dev, NG, H, MT, n};
    return n;
}

/* Whether the kernels can run (ng, H) with MT tiles at all: shared memory and registers. */
template <int NG, int MT>
static bool shape_fits(cphil_cu *cu, int H) {
    size_t need = pr_smem_fwd(NG, H, MT) > pr_smem_bwd(NG, H, MT) ? pr_smem_fwd(NG, H, MT) : pr_smem_bwd(NG, H, MT);
    if (need > cphil_cu_smem_optin(cu)) return false;
    allow_smem<NG, MT>(cu);
    /* threads per block within what both kernels' register use allows (cudaFuncGetAttributes;
     * e.g. the GRU backward at H 384 would need 576 threads x 128 registers, more than a block has) */
    return pr_threads(NG, H) <= max_threads<NG, MT>();
}

static bool shape_fits_mt(cphil_cu *cu, int NG, int H, int MT) {
    if (NG == 4) return MT == 1 ? shape_fits<4, 1>(cu, H) : MT == 2 ? shape_fits<4, 2>(cu, H) : shape_fits<4, 3>(cu, H);
    return MT == 1 ? shape_fits<3, 1>(cu, H) : MT == 2 ? shape_fits<3, 2>(cu, H) : shape_fits<3, 3>(cu, H);
}

int cphil_cu_rnn_persist_tiles(cphil_cu *cu, int NG, int B, int T, int H, cphil_precision prec) {
    if (prec != CPHIL_PREC_BF16 || B <= 0 || T <= 0 || H <= 0 || (NG != 3 && NG != 4)) return 0;
    cphil_cu_rnn_mode m = cphil_cu_get_rnn_mode(cu);
    if (m == CPHIL_CU_RNN_STEPS) return 0;
    if (H % PR_CS) return 0;
    const int U = H / PR_CS, NGU = NG * U;
    if (NGU % 16 || H % 16) return 0;
    const int forced = cphil_cu_get_rnn_tiles(cu);
    if (forced >= 1 && forced <= PR_MT_MAX) return shape_fits_mt(cu, NG, H, forced) ? forced : 0;
    /* the fewest tiles (the shortest chain per step) whose clusters are all resident at once: with
     * more clusters than fit, the second wave starts after the first has walked all T steps, and
     * the per-step path is faster (measured on an H100, B 512, H 256, 16-row clusters: 30
     * resident for 32 needed, docs/gpu.md). PERSISTENT takes the most tiles that fit anyway. */
    int last = 0;
    for (int mt = 1; mt <= PR_MT_MAX; mt++) {
        if (!shape_fits_mt(cu, NG, H, mt)) continue;
        last = mt;
        if ((B + PR_M * mt - 1) / (PR_M * mt) <= resident_clusters(cu, NG, H, mt)) return mt;
    }
    return m == CPHIL_CU_RNN_PERSISTENT ? last : 0;
}

bool cphil_cu_rnn_persist_fits(cphil_cu *cu, int NG, int B, int T, int H, cphil_precision prec) {
    return cphil_cu_rnn_persist_tiles(cu, NG, B, T, H, prec) > 0;
}

/* ---- forward ---------------------------------------------------------------------------------- */
/* The recurrence of steps 0..T-1 of one layer. On entry gates[b, t] holds x Wih^T (no biases)
 * and hprev[b, 0] = h_{-1} (k_rnn_init); cprev0 = c_{-1} (LSTM). Writes exactly what the
 * per-step path writes: LSTM gates (activated), cs, y, hprev[:, 1..T-1]; GRU gates (r z n), gh
 * (h_{t-1} Whh^T + bhh), y, hprev. */
template <int NG, int MT>
static __global__ void __cluster_dims__(PR_CS, 1, 1) __launch_bounds__(PR_MAX_THREADS(NG, MT))
    k_rnn_persist_fwd(int B, int T, int H, const float *__restrict__ Whh, const float *__restrict__ bih,
                      const float *__restrict__ bhh, float *gates, float *cs, const float *cprev0, float *gh,
                      float *y, float *hprev) {
    cg::cluster_group cl = cg::this_cluster();
    const int r = (int)cl.block_rank();
    constexpr int BC = PR_M * MT; /* batch rows of this cluster */
    const int U = H / PR_CS, NGU = NG * U, G = NG * H, ld = H + PR_PAD;
    const int row0 = (int)(blockIdx.x / PR_CS) * BC;
    const int tid = threadIdx.x, nth = blockDim.x, warp = tid >> 5, lane = tid & 31;
    extern __shared__ __align__(16) unsigned char smem[];
    bf16 *Wt = (bf16 *)smem;                   /* [NGU][ld]: row n = g U + u is Whh[g H + r U + u] */
    bf16 *hb = Wt + (size_t)NGU * ld;          /* [2][BC][ld] */
    const int ldr = NGU + PR_FPAD;
    float *rec = (float *)(hb + 2 * BC * ld);  /* [BC][ldr] */
    bf16 *hloc = (bf16 *)(rec + BC * ldr);     /* [BC][U]: h_t of this block's units */

    for (int i = tid; i < NGU * H; i += nth) {
        int n = i / H, k = i % H, g = n / U, u = n % U;
        Wt[n * ld + k] = __float2bfloat16_rn(Whh[(size_t)(g * H + r * U + u) * H + k]);
    }
    for (int i = tid; i < 2 * BC * ld; i += nth) hb[i] = __float2bfloat16_rn(0.f);
    for (int i = tid; i < BC * U; i += nth) hloc[i] = __float2bfloat16_rn(0.f);
    __syncthreads();
    for (int i = tid; i < BC * H; i += nth) {
        int bl = i / H, k = i % H, b = row0 + bl;
        if (b < B) hb[bl * ld + k] = __float2bfloat16_rn(hprev[(size_t)b * T * H + k]);
    }
    cl.sync(); /* every block of the cluster has started (its shared memory may be written) */

    /* Each thread keeps the same elements (batch row, unit) for all steps, e = tid + i nth
     * (16 MT U elements over 4 NG U threads: at most EPT each), with their biases and the running
     * c (LSTM) or h (GRU) in f32. A step's outputs go to global memory after the step's cluster
     * barrier (so the barrier does not wait for those stores), and the next step's x Wih^T
     * part of the gates is loaded then too, in flight during the product. */
    constexpr int EPT = (4 * MT + NG - 1) / NG;
    float bA[EPT][NG], bB[EPT][NG], xg[EPT][NG], carry[EPT], outv[EPT][NG + 1];
#pragma unroll
    for (int i = 0; i < EPT; i++) {
        const int e = tid + i * nth, bl = e / U, u = e % U, b = row0 + bl, j = r * U + u;
        const bool on = e < BC * U && b < B;
#pragma unroll
        for (int g = 0; g < NG; g++) {
            /* LSTM: bih + bhh as the per-step cell adds them; GRU: bih and bhh apart */
            bA[i][g] = on ? (NG == 4 ? bih[g * H + j] + bhh[g * H + j] : bih[g * H + j]) : 0.f;
            bB[i][g] = on ? bhh[g * H + j] : 0.f;
        }
        carry[i] = on ? (NG == 4 ? cprev0[(size_t)b * H + j] : hprev[(size_t)b * T * H + j]) : 0.f;
    }
    /* step t's stores: LSTM gates (i f g o), c, h; GRU gates (r z n), h, and gh (r z n parts) */
    float ghv[EPT][3];
    auto store_step = [&](int t) {
#pragma unroll
        for (int i = 0; i < EPT; i++) {
            const int e = tid + i * nth, bl = e / U, u = e % U, b = row0 + bl, j = r * U + u;
            if (e >= BC * U || b >= B) continue;
            const size_t row = (size_t)b * T + (size_t)t;
            float *gr = gates + row * G;
#pragma unroll
            for (int g = 0; g < NG; g++) gr[g * H + j] = outv[i][g];
            const float h = outv[i][NG];
            if constexpr (NG == 4) cs[row * H + j] = carry[i];
            else {
                float *hr = gh + row * G;
                hr[j] = ghv[i][0];
                hr[H + j] = ghv[i][1];
                hr[2 * H + j] = ghv[i][2];
            }
            y[row * H + j] = h;
            if (t + 1 < T) hprev[(row + 1) * H + j] = h;
        }
    };
    auto load_x = [&](int t) {
#pragma unroll
        for (int i = 0; i < EPT; i++) {
            const int e = tid + i * nth, bl = e / U, u = e % U, b = row0 + bl, j = r * U + u;
            if (e >= BC * U || b >= B) continue;
            const float *gr = gates + ((size_t)b * T + (size_t)t) * G;
#pragma unroll
            for (int g = 0; g < NG; g++) xg[i][g] = gr[g * H + j];
        }
    };

    for (int t = 0; t < T; t++) {
        const bf16 *hcur = hb + (t & 1) * BC * ld;
        bf16 *hnext = hb + ((t + 1) & 1) * BC * ld;
        if (t > 0) store_step(t - 1);
        load_x(t);
        /* rec[BC][NGU] = h_{t-1} Wt^T: warp w computes columns [8 w, 8 w + 8) of every row */
        {
            const int n0 = warp * 8, g = lane >> 2, q = lane & 3;
            float d[MT][4];
            tiles_mx8<MT>(hcur, ld, Wt + (size_t)n0 * ld, ld, H, lane, d);
#pragma unroll
            for (int m = 0; m < MT; m++) {
                float *r0 = rec + (m * PR_M + g) * ldr + n0 + 2 * q, *r8 = r0 + 8 * ldr;
                r0[0] = d[m][0];
                r0[1] = d[m][1];
                r8[0] = d[m][2];
                r8[1] = d[m][3];
            }
        }
        __syncthreads();
#pragma unroll
        for (int i = 0; i < EPT; i++) {
            const int e = tid + i * nth, bl = e / U, u = e % U, b = row0 + bl;
            if (e >= BC * U || b >= B) continue;
            const float *rc = rec + bl * ldr;
            float h;
            if constexpr (NG == 4) { /* k_lstm_cell_fwd: gates = (x Wih^T + h Whh^T) + (bih + bhh) */
                float ig = cu_sigm((xg[i][0] + rc[u]) + bA[i][0]);
                float fg = cu_sigm((xg[i][1] + rc[U + u]) + bA[i][1]);
                float gg = tanhf((xg[i][2] + rc[2 * U + u]) + bA[i][2]);
                float og = cu_sigm((xg[i][3] + rc[3 * U + u]) + bA[i][3]);
                float c = fg * carry[i] + ig * gg;
                carry[i] = c;
                h = og * tanhf(c);
                outv[i][0] = ig;
                outv[i][1] = fg;
                outv[i][2] = gg;
                outv[i][3] = og;
            } else { /* k_gru_cell_fwd */
                float ar = rc[u] + bB[i][0], az = rc[U + u] + bB[i][1], an = rc[2 * U + u] + bB[i][2];
                ghv[i][0] = ar;
                ghv[i][1] = az;
                ghv[i][2] = an;
                float rg = cu_sigm((xg[i][0] + bA[i][0]) + ar), z = cu_sigm((xg[i][1] + bA[i][1]) + az);
                float n = tanhf((xg[i][2] + bA[i][2]) + rg * an);
                h = (1.f - z) * n + z * carry[i];
                carry[i] = h;
                outv[i][0] = rg;
                outv[i][1] = z;
                outv[i][2] = n;
            }
            outv[i][NG] = h;
            hloc[bl * U + u] = __float2bfloat16_rn(h);
        }
        __syncthreads();
        /* send h_t of this block's units to every block of the cluster, in 16-byte (8-byte when
         * U % 8 != 0) pieces: a few hundred remote stores instead of one per value */
        if (t + 1 < T) {
            const int cw = U % 8 == 0 ? 8 : 4, cpr = U / cw, nch = BC * cpr;
            for (int c = tid; c < nch * PR_CS; c += nth) {
                const int q = c / nch, k = c % nch, bl = k / cpr, cc = k % cpr;
                const bf16 *src = hloc + bl * U + cc * cw;
                bf16 *dst = cl.map_shared_rank(hnext, q) + bl * ld + r * U + cc * cw;
                if (cw == 8) *(uint4 *)dst = *(const uint4 *)src;
                else *(uint2 *)dst = *(const uint2 *)src;
            }
        }
        /* h_t is in every block; also orders this step's reads of hcur and rec before the next
         * step's writes into them */
        cl.sync();
    }
    store_step(T - 1);
}

/* ---- backward --------------------------------------------------------------------------------- */
/* Steps T-1..0 of one layer's backward, exactly the per-step path's cell backward and its
 * dh = dG[:, t] Whh (LSTM) / dh = dhv z + dGh[:, t] Whh (GRU). Writes dG (LSTM) or dGi, dGh
 * (GRU) for every step, and after step 0 dh = dL/dh0 and (LSTM) dc = dL/dc0. */
template <int NG, int MT>
static __global__ void __cluster_dims__(PR_CS, 1, 1) __launch_bounds__(PR_MAX_THREADS(NG, MT))
    k_rnn_persist_bwd(int B, int T, int H, const float *__restrict__ Whh, const float *gates, const float *cs,
                      const float *cprev0, const float *gh, const float *hprev, const float *dy, float *dG,
                      float *dGh, float *dh, float *dc) {
    cg::cluster_group cl = cg::this_cluster();
    const int r = (int)cl.block_rank();
    constexpr int BC = PR_M * MT; /* batch rows of this cluster */
    const int U = H / PR_CS, NGU = NG * U, G = NG * H, ldk = NGU + PR_PAD;
    const int row0 = (int)(blockIdx.x / PR_CS) * BC;
    const int tid = threadIdx.x, nth = blockDim.x, warp = tid >> 5, lane = tid & 31, nwarp = nth >> 5;
    extern __shared__ __align__(16) unsigned char smem[];
    bf16 *Wk = (bf16 *)smem;                       /* [H][ldk]: Wk[k][g U + u] = Whh[g H + r U + u][k] */
    bf16 *dgs = Wk + (size_t)H * ldk;              /* [BC][ldk] */
    /* two halves of pr_part_half floats. At step t, half t & 1 receives the partials of every rank
     * ([PR_CS][BC][U], written remotely), and the other half stages this block's own partial
     * ([BC][ldp]) before it is sent. The other half is free then: it was read (the carried dh of
     * step t+1) before this step's first __syncthreads, and no rank writes it before this step's
     * cluster barrier, which this block reaches only after sending. */
    float *part = (float *)(dgs + BC * ldk);
    const int ldp = H + PR_FPAD;
    const size_t half = (size_t)BC * ldp;

    for (int i = tid; i < NGU * H; i += nth) {
        int n = i / H, k = i % H, g = n / U, u = n % U;
        Wk[k * ldk + n] = __float2bfloat16_rn(Whh[(size_t)(g * H + r * U + u) * H + k]);
    }
    for (int i = tid; i < BC * ldk; i += nth) dgs[i] = __float2bfloat16_rn(0.f);
    cl.sync();

    /* Each thread keeps the same elements e = tid + i nth for all steps (as the forward): the
     * carried dh (and dc for the LSTM; dhv z for the GRU) in registers, and the saved values of
     * the step. A step's dG goes to global memory after the step's cluster barrier, and the
     * saved values of the next step are loaded then too. */
    constexpr int EPT = (4 * MT + NG - 1) / NG;
    float sv[EPT][NG + 3]; /* gates, then LSTM: c_t, c_{t-1}, dy; GRU: gh_n, h_{t-1}, dy */
    float dz[EPT][NG + 1]; /* dG of the step (GRU: dar, daz, dan, dan r) */
    float dhc[EPT], dcc[EPT];
    auto load_step = [&](int t) {
#pragma unroll
        for (int i = 0; i < EPT; i++) {
            const int e = tid + i * nth, bl = e / U, u = e % U, b = row0 + bl, j = r * U + u;
            if (e >= BC * U || b >= B) continue;
            const size_t row = (size_t)b * T + (size_t)t;
#pragma unroll
            for (int g = 0; g < NG; g++) sv[i][g] = gates[row * G + g * H + j];
            if constexpr (NG == 4) {
                sv[i][NG] = cs[row * H + j];
                sv[i][NG + 1] = t > 0 ? cs[(row - 1) * H + j] : cprev0[(size_t)b * H + j];
            } else {
                sv[i][NG] = gh[row * G + 2 * H + j];
                sv[i][NG + 1] = hprev[row * H + j];
            }
            sv[i][NG + 2] = dy[row * H + j];
        }
    };
    auto store_step = [&](int t) {
#pragma unroll
        for (int i = 0; i < EPT; i++) {
            const int e = tid + i * nth, bl = e / U, u = e % U, b = row0 + bl, j = r * U + u;
            if (e >= BC * U || b >= B) continue;
            const size_t row = (size_t)b * T + (size_t)t;
            float *di = dG + row * G;
            if constexpr (NG == 4) {
#pragma unroll
                for (int g = 0; g < NG; g++) di[g * H + j] = dz[i][g];
            } else {
                float *dq = dGh + row * G;
                di[j] = dz[i][0];
                di[H + j] = dz[i][1];
                di[2 * H + j] = dz[i][2];
                dq[j] = dz[i][0];
                dq[H + j] = dz[i][1];
                dq[2 * H + j] = dz[i][3];
            }
        }
    };
#pragma unroll
    for (int i = 0; i < EPT; i++) dhc[i] = dcc[i] = 0.f;
    load_step(T - 1);

    for (int t = T - 1; t >= 0; t--) {
        const bool first = t == T - 1;
        /* cell backward for this block's units */
#pragma unroll
        for (int i = 0; i < EPT; i++) {
            const int e = tid + i * nth, bl = e / U, u = e % U, b = row0 + bl, j = r * U + u;
            if (e >= BC * U || b >= B) continue;
            const float dhv = sv[i][NG + 2] + (first ? 0.f : dhc[i]);
            if constexpr (NG == 4) { /* k_lstm_cell_bwd */
                float ig = sv[i][0], fg = sv[i][1], gg = sv[i][2], og = sv[i][3];
                float tc = tanhf(sv[i][4]), cp = sv[i][5];
                float dcv = (first ? 0.f : dcc[i]) + dhv * og * (1.f - tc * tc);
                dz[i][0] = dcv * gg * ig * (1.f - ig);
                dz[i][1] = dcv * cp * fg * (1.f - fg);
                dz[i][2] = dcv * ig * (1.f - gg * gg);
                dz[i][3] = dhv * tc * og * (1.f - og);
                dcc[i] = dcv * fg;
                if (t == 0) dc[(size_t)b * H + j] = dcv * fg;
            } else { /* k_gru_cell_bwd */
                float rg = sv[i][0], z = sv[i][1], n = sv[i][2], ghn = sv[i][3], hp = sv[i][4];
                float dan = dhv * (1.f - z) * (1.f - n * n);
                float daz = dhv * (hp - n) * z * (1.f - z);
                float dar = dan * ghn * rg * (1.f - rg);
                dz[i][0] = dar;
                dz[i][1] = daz;
                dz[i][2] = dan;
                dz[i][3] = dan * rg;
                dcc[i] = dhv * z; /* the direct path, added to the product's sum below */
            }
            /* the product's operand: dG (LSTM) or dGh (GRU: the n part scaled by r) */
            bf16 *dr = dgs + bl * ldk + u;
            if constexpr (NG == 4) {
#pragma unroll
                for (int k = 0; k < NG; k++) dr[k * U] = __float2bfloat16_rn(dz[i][k]);
            } else {
                dr[0] = __float2bfloat16_rn(dz[i][0]);
                dr[U] = __float2bfloat16_rn(dz[i][1]);
                dr[2 * U] = __float2bfloat16_rn(dz[i][3]);
            }
        }
        __syncthreads();
        /* partial dh over all H units from this block's gates: [BC][H] = dgs [BC][NGU] Wk^T, staged
         * in the free half, then each rank's columns sent to it */
        float *pbuf = part + (size_t)(t & 1) * half, *ploc = part + (size_t)((t + 1) & 1) * half;
        for (int job = warp; job < MT * (H / 16); job += nwarp) {
            const int m = job / (H / 16), nb = job % (H / 16);
            float d0[4], d1[4];
            block_16x16(dgs + (size_t)m * PR_M * ldk, ldk, Wk + (size_t)nb * 16 * ldk, ldk, NGU, lane, d0, d1);
            const int g = lane >> 2, q = lane & 3;
            float *p0 = ploc + (m * PR_M + g) * ldp + nb * 16 + 2 * q, *p8 = p0 + 8 * ldp;
            p0[0] = d0[0];
            p0[1] = d0[1];
            p8[0] = d0[2];
            p8[1] = d0[3];
            p0[8] = d1[0];
            p0[9] = d1[1];
            p8[8] = d1[2];
            p8[9] = d1[3];
        }
        __syncthreads();
        {   /* columns [q U, (q+1) U) of the partial to rank q, in 16-byte pieces (U % 4 == 0) */
            const int cpr = U / 4, nch = BC * cpr;
            for (int c = tid; c < nch * PR_CS; c += nth) {
                const int q = c / nch, k = c % nch, bl = k / cpr, cc = k % cpr;
                const float4 v = *(const float4 *)(ploc + bl * ldp + q * U + cc * 4);
                *(float4 *)(cl.map_shared_rank(pbuf, q) + (size_t)r * BC * U + bl * U + cc * 4) = v;
            }
        }
        cl.sync();
        store_step(t);
        if (t > 0) load_step(t - 1);
        /* carried dh for step t-1: the 8 partials in rank order (LSTM), plus dhv z (GRU) */
#pragma unroll
        for (int i = 0; i < EPT; i++) {
            const int e = tid + i * nth, bl = e / U, u = e % U, b = row0 + bl;
            if (e >= BC * U) continue;
            float s = pbuf[e];
            for (int k = 1; k < PR_CS; k++) s += pbuf[(size_t)k * BC * U + e];
            if constexpr (NG == 3) s = s + dcc[i];
            dhc[i] = s;
            if (t == 0 && b < B) dh[(size_t)b * H + r * U + u] = s;
        }
        /* dgs and pbuf are rewritten next step only after the barrier above; the next step stages
         * its partial in this pbuf only after its first __syncthreads, when these reads are done */
    }
}

/* ---- host ------------------------------------------------------------------------------------- */
/* Both kernels may use the device's whole opt-in shared memory; set once, before the first
 * occupancy query or launch (shape_fits() and max_clusters() call it; launches follow a tiles()). */
template <int NG, int MT>
static void allow_smem(cphil_cu *cu) {
    static bool done = false;
    if (done) return;
    const int optin = (int)cphil_cu_smem_optin(cu);
    cudaFuncSetAttribute(k_rnn_persist_fwd<NG, MT>, cudaFuncAttributeMaxDynamicSharedMemorySize, optin);
    cudaFuncSetAttribute(k_rnn_persist_bwd<NG, MT>, cudaFuncAttributeMaxDynamicSharedMemorySize, optin);
    done = true;
}

/* One cluster of PR_CS blocks per 16 MT batch rows. */
static inline unsigned pr_grid(int B, int MT) { return (unsigned)(((B + PR_M * MT - 1) / (PR_M * MT)) * PR_CS); }

template <int NG, int MT>
static void launch_fwd(cphil_cu *cu, int B, int T, int H, const float *Whh, const float *bih, const float *bhh,
                       float *gates, float *cs, const float *cprev0, float *gh, float *y, float *hprev) {
    k_rnn_persist_fwd<NG, MT><<<pr_grid(B, MT), pr_threads(NG, H), pr_smem_fwd(NG, H, MT), cphil_cu_stream(cu)>>>(
        B, T, H, Whh, bih, bhh, gates, cs, cprev0, gh, y, hprev);
    CPHIL_CU_CHECK_LAUNCH(cu, NG == 4 ? "lstm persistent forward" : "gru persistent forward");
}

template <int NG, int MT>
static void launch_bwd(cphil_cu *cu, int B, int T, int H, const float *Whh, const float *gates, const float *cs,
                       const float *cprev0, const float *gh, const float *hprev, const float *dy, float *dG,
                       float *dGh, float *dh, float *dc) {
    k_rnn_persist_bwd<NG, MT><<<pr_grid(B, MT), pr_threads(NG, H), pr_smem_bwd(NG, H, MT), cphil_cu_stream(cu)>>>(
        B, T, H, Whh, gates, cs, cprev0, gh, hprev, dy, dG, dGh, dh, dc);
    CPHIL_CU_CHECK_LAUNCH(cu, NG == 4 ? "lstm persistent backward" : "gru persistent backward");
}

template <int NG, int MT>
static int max_clusters(cphil_cu *cu, int H, int backward) {
    allow_smem<NG, MT>(cu);
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute attr;
    attr.id = cudaLaunchAttributeClusterDimension;
    attr.val.clusterDim.x = PR_CS;
    attr.val.clusterDim.y = attr.val.clusterDim.z = 1;
    cfg.gridDim = dim3(PR_CS * 64);
    cfg.blockDim = dim3(pr_threads(NG, H));
    cfg.dynamicSmemBytes = backward ? pr_smem_bwd(NG, H, MT) : pr_smem_fwd(NG, H, MT);
    cfg.attrs = &attr;
    cfg.numAttrs = 1;
    const void *k = backward ? (const void *)k_rnn_persist_bwd<NG, MT> : (const void *)k_rnn_persist_fwd<NG, MT>;
    int n = -1;
    if (cudaOccupancyMaxActiveClusters(&n, k, &cfg) != cudaSuccess) {
        cudaGetLastError(); /* a failed query (the shape does not launch) is not a sticky error */
        return -1;
    }
    return n;
}

/* The most threads a block of either kernel can have (registers), queried once. */
template <int NG, int MT>
static int max_threads() {
    static int n = -1;
    if (n < 0) {
        cudaFuncAttributes f, b;
        if (cudaFuncGetAttributes(&f, k_rnn_persist_fwd<NG, MT>) != cudaSuccess ||
            cudaFuncGetAttributes(&b, k_rnn_persist_bwd<NG, MT>) != cudaSuccess)
            return 0;
        n = f.maxThreadsPerBlock < b.maxThreadsPerBlock ? f.maxThreadsPerBlock : b.maxThreadsPerBlock;
    }
    return n;
}

int cphil_cu_rnn_persist_max_clusters(cphil_cu *cu, int ng, int H, int tiles, int backward) {
    if (ng == 4)
        return tiles == 1 ? max_clusters<4, 1>(cu, H, backward)
               : tiles == 2 ? max_clusters<4, 2>(cu, H, backward)
                            : max_clusters<4, 3>(cu, H, backward);
    return tiles == 1 ? max_clusters<3, 1>(cu, H, backward)
           : tiles == 2 ? max_clusters<3, 2>(cu, H, backward)
                        : max_clusters<3, 3>(cu, H, backward);
}

/* `tiles` is the caller's cphil_cu_rnn_persist_tiles for this shape. */
#define PR_DISPATCH(NG, call)                                                                           \
    do {                                                                                                \
        switch (tiles) {                                                                                \
        case 1: call(NG, 1); break;                                                                     \
        case 2: call(NG, 2); break;                                                                     \
        case 3: call(NG, 3); break;                                                                     \
        default:                                                                                        \
            cphil_cu_record(cu, (int)cudaErrorInvalidValue, "persistent recurrence: a tile count not 1..3", \
                            __FILE__, __LINE__);                                                        \
        }                                                                                               \
    } while (0)

void cphil_cu_lstm_persist_forward(cphil_cu *cu, int tiles, int B, int T, int H, const float *Whh,
                                   const float *bih, const float *bhh, float *gates, float *cs,
                                   const float *cprev0, float *y, float *hprev) {
#define CALL(NG, MT) launch_fwd<NG, MT>(cu, B, T, H, Whh, bih, bhh, gates, cs, cprev0, NULL, y, hprev)
    PR_DISPATCH(4, CALL);
#undef CALL
}

void cphil_cu_lstm_persist_backward(cphil_cu *cu, int tiles, int B, int T, int H, const float *Whh, const float *gates,
                                    const float *cs, const float *cprev0, const float *dy, float *dG, float *dh,
                                    float *dc) {
#define CALL(NG, MT) launch_bwd<NG, MT>(cu, B, T, H, Whh, gates, cs, cprev0, NULL, NULL, dy, dG, NULL, dh, dc)
    PR_DISPATCH(4, CALL);
#undef CALL
}

void cphil_cu_gru_persist_forward(cphil_cu *cu, int tiles, int B, int T, int H, const float *Whh, const float *bih,
                                  const float *bhh, float *gates, float *gh, float *y, float *hprev) {
#define CALL(NG, MT) launch_fwd<NG, MT>(cu, B, T, H, Whh, bih, bhh, gates, NULL, NULL, gh, y, hprev)
    PR_DISPATCH(3, CALL);
#undef CALL
}

void cphil_cu_gru_persist_backward(cphil_cu *cu, int tiles, int B, int T, int H, const float *Whh, const float *gates,
                                   const float *gh, const float *hprev, const float *dy, float *dGi, float *dGh,
                                   float *dh) {
#define CALL(NG, MT) launch_bwd<NG, MT>(cu, B, T, H, Whh, gates, NULL, NULL, gh, hprev, dy, dGi, dGh, dh, NULL)
    PR_DISPATCH(3, CALL);
#undef CALL
}
