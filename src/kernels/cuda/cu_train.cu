/* cu_train.cu — the GPU kernels around the backbone: the one-hot gather input layer (forward and
 * its deterministic backward over an id-sorted index built on the host), the policy loss of
 * nn_impl.h (BCE with positive weights + label-smoothed cross-entropy, every frame), fixed-order
 * reductions, global-norm clipping + AdamW on the flat parameter block, and the TBPTT carry.
 *
 * Determinism: no floating-point atomics. Sums over frames use a fixed assignment of rows to
 * threads and a fixed tree, in double where the CPU sums in double (loss, gradient norm).
 * References: nn_impl.h (cphil_nn_input_*, cphil_nn_policy_loss), adamw.c (torch AdamW after
 * clip_grad_norm_), PyTorch's EmbeddingBackwardKernel.cu and llm.c's encoder backward (sorted
 * segments, partial sums, fixed-order combine instead of atomics).
 */
extern "C" {
#include "core/core.h"
}
#include "kernels/cuda/cu.h"
#include "kernels/cuda/cu_train.h"
#include "kernels/cuda/cu_util.cuh"

#include <math.h>

#define RED_THREADS 256

/* Fixed-order block sum of one double per thread (tree in shared memory). */
static __device__ double block_sum_d(double v) {
    __shared__ double sh[RED_THREADS];
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = RED_THREADS / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    double r = sh[0];
    __syncthreads();
    return r;
}

/* ---- input layer ------------------------------------------------------------------------- */
/* WT[e, h] = W[h, e] for e in [n_cont, E) (32 x 32 tiles through shared memory). */
static __global__ void k_transpose_ids(int H0, int E, int n_cont, const float *W, float *WT) {
    __shared__ float tile[32][33];
    int e0 = n_cont + blockIdx.x * 32, h0 = blockIdx.y * 32;
    for (int j = threadIdx.y; j < 32; j += blockDim.y) {
        int h = h0 + j, e = e0 + threadIdx.x;
        if (h < H0 && e < E) tile[j][threadIdx.x] = W[(size_t)h * E + e];
    }
    __syncthreads();
    for (int j = threadIdx.y; j < 32; j += blockDim.y) {
        int e = e0 + j, h = h0 + threadIdx.x;
        if (e < E && h < H0) WT[(size_t)e * H0 + h] = tile[threadIdx.x][j];
    }
}

/* y[m, h] += b[h] + sum_k WT[ids[m, k], h] (k in order, as the CPU adds them). */
static __global__ void k_gather_add(int M, int H0, int n_ids, const int32_t *ids, const float *b, const float *WT,
                                    float *y) {
    size_t n = (size_t)M * H0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t m = i / (size_t)H0;
        int h = (int)(i % (size_t)H0);
        float r = y[i] + b[h];
        const int32_t *id = ids + m * (size_t)n_ids;
        for (int k = 0; k < n_ids; k++) r += WT[(size_t)id[k] * H0 + h];
        y[i] = r;
    }
}

extern "C" void cphil_cu_input_forward(cphil_cu *cu, cphil_precision prec, int M, int H0, int E, int n_cont,
                                       int n_ids, const float *cont, const int32_t *ids, const float *W,
                                       const float *b, float *WT, float *y) {
    cudaStream_t s = cphil_cu_stream(cu);
    if (E > n_cont) {
        dim3 grid((unsigned)((E - n_cont + 31) / 32), (unsigned)((H0 + 31) / 32)), blk(32, 8);
        k_transpose_ids<<<grid, blk, 0, s>>>(H0, E, n_cont, W, WT);
        CPHIL_CU_CHECK_LAUNCH(cu, "input layer transpose");
    }
    if (n_cont > 0)
        cphil_cu_gemm(cu, prec, false, true, M, H0, n_cont, 1.f, cont, n_cont, W, E, 0.f, y, H0);
    else
        cphil_cu_zero(cu, y, (size_t)M * H0 * sizeof(float));
    k_gather_add<<<cu_grid((size_t)M * H0), CU_BLOCK, 0, s>>>(M, H0, n_ids, ids, b, WT, y);
    CPHIL_CU_CHECK_LAUNCH(cu, "input layer gather");
}

/* One block per chunk c of the sorted (id, frame) list: partial[c, h] = sum of dy[frame, h]
 * over the chunk's frames, in list order. Blocks past the live chunk count exit. */
static __global__ void k_id_partials(const int32_t *n_chunks, const int32_t *chunk_begin, const int32_t *frames, int H0,
                                     const float *dy, float *partial) {
    int c = blockIdx.x;
    if (c >= *n_chunks) return;
    int a = chunk_begin[c], z = chunk_begin[c + 1];
    for (int h = threadIdx.x; h < H0; h += blockDim.x) {
        float acc = 0.f;
        for (int q = a; q < z; q++) acc += dy[(size_t)frames[q] * H0 + h];
        partial[(size_t)c * H0 + h] = acc;
    }
}

/* One block per id row r (rows listed in row_of, count n_rows): dW[h, id] += sum of the row's
 * chunk partials in chunk order. */
static __global__ void k_id_combine(const int32_t *n_rows, const int32_t *row_id, const int32_t *row_chunk, int H0, int E,
                                    const float *partial, float *dW) {
    int r = blockIdx.x;
    if (r >= *n_rows) return;
    int id = row_id[r], a = row_chunk[r], z = row_chunk[r + 1];
    for (int h = threadIdx.x; h < H0; h += blockDim.x) {
        float acc = 0.f;
        for (int c = a; c < z; c++) acc += partial[(size_t)c * H0 + h];
        dW[(size_t)h * E + id] += acc;
    }
}

extern "C" void cphil_cu_input_backward(cphil_cu *cu, cphil_precision prec, int M, int H0, int E, int n_cont,
                                        int n_ids, const float *cont, const cphil_cu_id_index *ix, const float *dy,
                                        float *dW, float *db, float *partial) {
    cudaStream_t s = cphil_cu_stream(cu);
    if (n_cont > 0) cphil_cu_gemm(cu, prec, true, false, H0, n_cont, M, 1.f, dy, H0, cont, n_cont, 1.f, dW, E);
    cphil_cu_colsum(cu, M, H0, dy, H0, db);
    if (n_ids > 0) {
        int cap_chunks = cphil_cu_id_index_max_chunks(M, n_ids, E, n_cont);
        k_id_partials<<<(unsigned)cap_chunks, CU_BLOCK, 0, s>>>(ix->n_chunks, ix->chunk_begin, ix->frames, H0, dy,
                                                                 partial);
        CPHIL_CU_CHECK_LAUNCH(cu, "input layer id partials");
        k_id_combine<<<(unsigned)(E - n_cont), CU_BLOCK, 0, s>>>(ix->n_rows, ix->row_id, ix->row_chunk, H0, E,
                                                                  partial, dW);
        CPHIL_CU_CHECK_LAUNCH(cu, "input layer id combine");
    }
}

int cphil_cu_id_index_max_chunks(int M, int n_ids, int E, int n_cont) {
    /* every row's segment splits into ceil(len / CHUNK) chunks: at most pairs / CHUNK + rows */
    long pairs = (long)M * n_ids;
    long cap = pairs / CPHIL_CU_ID_CHUNK + (E - n_cont) + 1;
    return (int)cap;
}

/* ---- loss --------------------------------------------------------------------------------- */
/* out_w = sum of weights (double, fixed order), one block. */
static __global__ void k_weight_sum(int M, const float *weight, double *wsum) {
    double acc = 0;
    for (int m = threadIdx.x; m < M; m += RED_THREADS) acc += weight ? (double)weight[m] : 1.0;
    double t = block_sum_d(acc);
    if (threadIdx.x == 0) *wsum = t;
}

/* Per frame: dlogits and the weighted loss terms [M, 1 + 6] (total, then the six heads). */
static __global__ void k_policy_loss(int M, const float *logits, const uint8_t *buttons, const uint8_t *cls,
                                     const float *weight, cphil_cu_loss_params lp, const double *wsum_p, float *dlogits,
                                     double *terms) {
    int m = blockIdx.x * blockDim.x + threadIdx.x;
    if (m >= M) return;
    const double wsum = *wsum_p;
    const float *x = logits + (size_t)m * CPHIL_N_LOGITS;
    float *d = dlogits + (size_t)m * CPHIL_N_LOGITS;
    float wm = weight ? weight[m] : 1.f;
    float sc = wsum > 0 ? (float)(wm / wsum) : 0.f;
    float bl = 0.f;
    for (int j = 0; j < CPHIL_N_BUTTONS; j++) {
        float v = x[j], y = buttons[(size_t)m * CPHIL_N_BUTTONS + j] ? 1.f : 0.f, pw = lp.pos_weight[j];
        float av = v < 0 ? -v : v;
        float spn = (v < 0 ? -v : 0.f) + log1pf(expf(-av));
        float spp = spn + v;
        bl += pw * y * spn + (1.f - y) * spp;
        float s = cu_sigm(v);
        d[j] = sc * lp.button_weight * (-pw * y * (1.f - s) + (1.f - y) * s) / (float)CPHIL_N_BUTTONS;
    }
    bl /= (float)CPHIL_N_BUTTONS;
    float fl = lp.button_weight * bl;
    double *t = terms + (size_t)m * 7;
    t[1] = (double)(wm * bl);
    const int classes[6] = {8, 17, 17, 17, 17, 5}, offs[6] = {0, 8, 25, 42, 59, 76};
    const float eps = lp.label_smoothing;
    for (int h = 1; h < 6; h++) {
        int C = classes[h], o = offs[h];
        int k = cls[(size_t)m * CPHIL_N_CAT_HEADS + (h - 1)];
        if (k >= C) k = C - 1; /* the host checked the targets; never reached */
        const float *xv = x + o;
        float mx = xv[0], se = 0.f;
        for (int c = 1; c < C; c++) mx = xv[c] > mx ? xv[c] : mx;
        for (int c = 0; c < C; c++) se += expf(xv[c] - mx);
        float lse = mx + logf(se), l = 0.f;
        for (int c = 0; c < C; c++) {
            float q = eps / (float)C + (c == k ? 1.f - eps : 0.f);
            l -= q * (xv[c] - lse);
            d[o + c] = sc * (expf(xv[c] - lse) - q);
        }
        fl += l;
        t[1 + h] = (double)(wm * l);
    }
    t[0] = (double)(wm * fl);
}

/* out[c] = sum over frames of terms[:, c] / wsum (c < 7), out[7] = wsum; one block per c. */
static __global__ void k_loss_reduce(int M, const double *terms, const double *wsum_p, float *out) {
    int c = blockIdx.x;
    double acc = 0;
    for (int m = threadIdx.x; m < M; m += RED_THREADS) acc += terms[(size_t)m * 7 + c];
    double t = block_sum_d(acc);
    if (threadIdx.x == 0) {
        double w = *wsum_p;
        out[c] = w > 0 ? (float)(t / w) : 0.f;
        if (c == 0) out[7] = (float)w;
    }
}

size_t cphil_cu_loss_scratch_bytes(int M) { return ((size_t)M * 7 + 2) * sizeof(double); }

extern "C" void cphil_cu_policy_loss(cphil_cu *cu, int M, const float *logits, const uint8_t *buttons,
                                     const uint8_t *cls, const float *weight, const cphil_cu_loss_params *lp,
                                     float *dlogits, float *out, void *scratch) {
    cudaStream_t s = cphil_cu_stream(cu);
    double *wsum = (double *)scratch, *terms = wsum + 2;
    k_weight_sum<<<1, RED_THREADS, 0, s>>>(M, weight, wsum);
    CPHIL_CU_CHECK_LAUNCH(cu, "loss weight sum");
    k_policy_loss<<<(unsigned)((M + 127) / 128), 128, 0, s>>>(M, logits, buttons, cls, weight, *lp, wsum, dlogits,
                                                              terms);
    CPHIL_CU_CHECK_LAUNCH(cu, "policy loss");
    k_loss_reduce<<<7, RED_THREADS, 0, s>>>(M, terms, wsum, out);
    CPHIL_CU_CHECK_LAUNCH(cu, "loss reduce");
}

/* ---- gradient norm, clipping, AdamW --------------------------------------------------------- */
#define NORM_BLOCKS 264 /* 2 per SM on an H100/H200; a fixed number keeps the sum order fixed */

static __global__ void k_sumsq_partials(size_t n, const float *g, double *partials) {
    double acc = 0;
    for (size_t i = blockIdx.x * (size_t)RED_THREADS + threadIdx.x; i < n; i += (size_t)NORM_BLOCKS * RED_THREADS)
        acc += (double)g[i] * (double)g[i];
    double t = block_sum_d(acc);
    if (threadIdx.x == 0) partials[blockIdx.x] = t;
}

/* state: [0] = norm (double), [1] = clip coefficient as float in a double slot */
static __global__ void k_norm_final(const double *partials, float max_norm, double *state) {
    double acc = 0;
    for (int i = threadIdx.x; i < NORM_BLOCKS; i += RED_THREADS) acc += partials[i];
    double t = block_sum_d(acc);
    if (threadIdx.x == 0) {
        double norm = sqrt(t);
        state[0] = norm;
        float cf = 1.f;
        if (max_norm > 0 && isfinite(norm)) {
            double coef = (double)max_norm / (norm + 1e-6);
            if (coef < 1.0) cf = (float)coef;
        }
        state[1] = (double)cf;
    }
}

static __global__ void k_adamw(size_t n, float *p, float *g, float *m, float *v, const double *state,
                               const cphil_cu_adamw_params *ap) {
    double norm = state[0];
    if (!isfinite(norm)) return; /* non-finite gradient: update nothing (the CPU's rule) */
    float cf = (float)state[1];
    bool clip = cf != 1.f;
    const float step_size = ap->step_size, bc2s = ap->bc2s, decay = ap->decay, b1 = ap->beta1, b2 = ap->beta2,
                eps = ap->eps;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float gi = g[i];
        if (clip) gi *= cf;
        float pi = p[i] * decay;
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi - step_size * mi / (sqrtf(vi) / bc2s + eps);
    }
}

size_t cphil_cu_adamw_scratch_bytes(void) { return (NORM_BLOCKS + 2) * sizeof(double); }

extern "C" void cphil_cu_adamw_step(cphil_cu *cu, size_t n, float *params, float *grads, float *m, float *v,
                                    float max_grad_norm, const cphil_cu_adamw_params *ap_dev, void *scratch) {
    cudaStream_t s = cphil_cu_stream(cu);
    double *partials = (double *)scratch, *state = partials + NORM_BLOCKS;
    k_sumsq_partials<<<NORM_BLOCKS, RED_THREADS, 0, s>>>(n, grads, partials);
    CPHIL_CU_CHECK_LAUNCH(cu, "gradient norm partials");
    k_norm_final<<<1, RED_THREADS, 0, s>>>(partials, max_grad_norm, state);
    CPHIL_CU_CHECK_LAUNCH(cu, "gradient norm");
    k_adamw<<<cu_grid(n), CU_BLOCK, 0, s>>>(n, params, grads, m, v, state, ap_dev);
    CPHIL_CU_CHECK_LAUNCH(cu, "adamw");
}

const double *cphil_cu_adamw_norm_ptr(const void *scratch) { return (const double *)scratch + NORM_BLOCKS; }

/* ---- TBPTT carry --------------------------------------------------------------------------- */
/* carry rows [blocks, B, H]: zero row b of every block where reset[b] != 0 */
static __global__ void k_carry_reset(int blocks, int B, int H, const uint8_t *reset, float *carry) {
    size_t n = (size_t)blocks * B * H;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        int b = (int)((i / (size_t)H) % (size_t)B);
        if (reset[b]) carry[i] = 0.f;
    }
}
/* dst[b, :] = src[(b*T + T-1), :] : the last step of each row */
static __global__ void k_last_step(int B, int T, int H, const float *src, float *dst) {
    size_t n = (size_t)B * H;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t b = i / (size_t)H, h = i % (size_t)H;
        dst[i] = src[(b * T + (size_t)T - 1) * H + h];
    }
}

extern "C" void cphil_cu_carry_reset(cphil_cu *cu, int blocks, int B, int H, const uint8_t *reset, float *carry) {
    k_carry_reset<<<cu_grid((size_t)blocks * B * H), CU_BLOCK, 0, cphil_cu_stream(cu)>>>(blocks, B, H, reset, carry);
    CPHIL_CU_CHECK_LAUNCH(cu, "carry reset");
}
extern "C" void cphil_cu_last_step(cphil_cu *cu, int B, int T, int H, const float *src, float *dst) {
    k_last_step<<<cu_grid((size_t)B * H), CU_BLOCK, 0, cphil_cu_stream(cu)>>>(B, T, H, src, dst);
    CPHIL_CU_CHECK_LAUNCH(cu, "carry copy");
}
