/* cu_rnn.cu — the LSTM and GRU layers of cu.h (cphil_cu_lstm_*, cphil_cu_gru_*): the GPU twins of
 * cphil_nn_lstm_* / cphil_nn_gru_* (nn_impl.h) with the same saved values and scratch, so the GPU
 * policy keeps the CPU's workspace layout.
 *
 * Strategy ("alternating" RNN, Appleyard et al. 2016; gpu_training.md 1.3):
 *  - forward: the input part of every step is ONE product over all B*T rows, written straight
 *    into `gates` (where the CPU keeps the pre-activations); then per step t one product for the
 *    B rows of step t (h_{t-1} Whh^T, h_{t-1} read from `hprev` with row stride T*H, as the CPU
 *    does) and one fused cell kernel that adds the biases, activates the gates in place and
 *    writes c, h into cs[:, t], y[:, t] and hprev[:, t+1]. Adding the biases in the cell (not
 *    before the input product, as the CPU does) saves a pass over gates: 126 MB of writes at
 *    B = 512, T = 60; the sums differ from the CPU's in rounding only. Launches per step: 2 (the
 *    product and the cell).
 *  - backward: per step t (T-1 down to 0) one cell kernel (dy[:, t] + carried dh -> dG[:, t],
 *    carried dc) and one product dh = dG[:, t] Whh. After the loop, off the serial chain: dx, dWih,
 *    dWhh as single products over all B*T rows and the bias gradients as column sums
 *    (cphil_cu_colsum). Launches per step: 2.
 *  - the per-step loop does nothing on the host but enqueue launches (the product plans are
 *    cached per shape, and every step has the same shape), so it is captured into a CUDA graph
 *    as it stands.
 * Deterministic: each cell thread owns one (b, j) element and writes only its own outputs; the
 * products are cuBLASLt without atomic split-K. Cell formulas are nn_impl.h's, term for term.
 * bf16 layers whose hidden size fits run the recurrence (both loops above) as one kernel per
 * layer and direction instead: cu_rnn_persist.cu (Whh resident in shared memory, thread-block
 * clusters); CPHIL_RNN=steps keeps this per-step path everywhere.
 */
extern "C" {
#include "core/core.h"
}
#include "kernels/cuda/cu.h"
#include "kernels/cuda/cu_rnn_persist.h"
#include "kernels/cuda/cu_util.cuh"

/* The cell kernels have one thread per (b, j): 128-thread blocks give B = 64, H = 256 (16384
 * threads) 128 blocks, about one per SM, where 256-thread blocks would leave half the SMs idle. */
#define RNN_BLOCK 128

static inline unsigned rnn_grid(size_t n) {
    size_t g = (n + RNN_BLOCK - 1) / RNN_BLOCK;
    if (g > 65535) g = 65535;
    return (unsigned)(g ? g : 1);
}

#define GRID_STRIDE(i, n) \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

/* hprev[b, 0, :] = h0[b] (or 0) when hprev is given (T > 0); cprev0[b] = c0[b] (or 0) when
 * cprev0 is given (LSTM). */
static __global__ void k_rnn_init(int B, int T, int H, const float *h0, const float *c0, float *hprev,
                                  float *cprev0) {
    GRID_STRIDE(i, (size_t)B * H) {
        size_t b = i / (size_t)H, j = i % (size_t)H;
        if (hprev) hprev[b * (size_t)T * H + j] = h0 ? h0[i] : 0.f;
        if (cprev0) cprev0[i] = c0 ? c0[i] : 0.f;
    }
}

/* ---- LSTM ------------------------------------------------------------------------------- */
/* Step t: gates[b, t] holds x Wih^T + h_{t-1} Whh^T; add bih + bhh and activate in place,
 * c = f c_{t-1} + i g, h = o tanh(c) -> cs[b, t], y[b, t], hprev[b, t+1]. */
static __global__ void k_lstm_cell_fwd(int B, int T, int H, int t, const float *bih, const float *bhh,
                                       float *gates, float *cs, const float *cprev0, float *y, float *hprev) {
    const size_t G = 4 * (size_t)H;
    GRID_STRIDE(e, (size_t)B * H) {
        size_t b = e / (size_t)H, j = e % (size_t)H;
        size_t row = b * (size_t)T + (size_t)t;
        float *gr = gates + row * G;
        float ai = gr[j] + (bih[j] + bhh[j]), af = gr[H + j] + (bih[H + j] + bhh[H + j]);
        float ag = gr[2 * H + j] + (bih[2 * H + j] + bhh[2 * H + j]);
        float ao = gr[3 * H + j] + (bih[3 * H + j] + bhh[3 * H + j]);
        float i = cu_sigm(ai), f = cu_sigm(af), g = tanhf(ag), o = cu_sigm(ao);
        gr[j] = i;
        gr[H + j] = f;
        gr[2 * H + j] = g;
        gr[3 * H + j] = o;
        float cp = t > 0 ? cs[(row - 1) * H + j] : cprev0[e];
        float c = f * cp + i * g;
        cs[row * H + j] = c;
        float h = o * tanhf(c);
        y[row * H + j] = h;
        if (t + 1 < T) hprev[(row + 1) * H + j] = h;
    }
}

/* Step t backward: dh (carried; zero when `first`) + dy[b, t] -> dG[b, t]; dc carried through
 * the forget gate (read as zero when `first`, then overwritten). */
static __global__ void k_lstm_cell_bwd(int B, int T, int H, int t, int first, const float *gates,
                                       const float *cs, const float *cprev0, const float *dy, float *dG,
                                       const float *dh, float *dc) {
    const size_t G = 4 * (size_t)H;
    GRID_STRIDE(e, (size_t)B * H) {
        size_t b = e / (size_t)H, j = e % (size_t)H;
        size_t row = b * (size_t)T + (size_t)t;
        const float *gr = gates + row * G;
        float i = gr[j], f = gr[H + j], g = gr[2 * H + j], o = gr[3 * H + j];
        float tc = tanhf(cs[row * H + j]);
        float dhv = dy[row * H + j] + (first ? 0.f : dh[e]);
        float dcv = (first ? 0.f : dc[e]) + dhv * o * (1.f - tc * tc);
        float cp = t > 0 ? cs[(row - 1) * H + j] : cprev0[e];
        float *di = dG + row * G;
        di[j] = dcv * g * i * (1.f - i);
        di[H + j] = dcv * cp * f * (1.f - f);
        di[2 * H + j] = dcv * i * (1.f - g * g);
        di[3 * H + j] = dhv * tc * o * (1.f - o);
        dc[e] = dcv * f;
    }
}

extern "C" void cphil_cu_lstm_forward(cphil_cu *cu, cphil_precision prec, int B, int T, int In, int H,
                                      const float *x, const float *Wih, const float *Whh, const float *bih,
                                      const float *bhh, const float *h0, const float *c0, float *y, float *gates,
                                      float *cs, float *hprev, float *cprev0) {
    if (B <= 0 || H <= 0) return;
    cudaStream_t st = cphil_cu_stream(cu);
    const int G = 4 * H;
    const size_t M = (size_t)B * T, BH = (size_t)B * H;
    /* with no steps only cprev0 (the copy of c0) has a place to go */
    k_rnn_init<<<rnn_grid(BH), RNN_BLOCK, 0, st>>>(B, T, H, h0, c0, T > 0 ? hprev : NULL, cprev0);
    CPHIL_CU_CHECK_LAUNCH(cu, "lstm init");
    if (T <= 0) return;
    /* gates[B*T, 4H] = x Wih^T, every step at once (the biases are added by the cell) */
    cphil_cu_gemm(cu, prec, false, true, (int)M, G, In, 1.f, x, In, Wih, In, 0.f, gates, G);
    if (const int tiles = cphil_cu_rnn_persist_tiles(cu, 4, B, T, H, prec)) {
        cphil_cu_lstm_persist_forward(cu, tiles, B, T, H, Whh, bih, bhh, gates, cs, cprev0, y, hprev);
        return;
    }
    for (int t = 0; t < T; t++) {
        /* gates[:, t] += h_{t-1} Whh^T (rows strided by T); h_{-1} = 0 adds nothing */
        if (t > 0 || h0)
            cphil_cu_gemm(cu, prec, false, true, B, G, H, 1.f, hprev + (size_t)t * H, T * H, Whh, H, 1.f,
                          gates + (size_t)t * G, T * G);
        k_lstm_cell_fwd<<<rnn_grid(BH), RNN_BLOCK, 0, st>>>(B, T, H, t, bih, bhh, gates, cs, cprev0, y, hprev);
        CPHIL_CU_CHECK_LAUNCH(cu, "lstm cell forward");
    }
}

extern "C" void cphil_cu_lstm_backward(cphil_cu *cu, cphil_precision prec, int B, int T, int In, int H,
                                       const float *x, const float *Wih, const float *Whh, const float *gates,
                                       const float *cs, const float *hprev, const float *cprev0, const float *dy,
                                       float *dx, float *dWih, float *dWhh, float *dbih, float *dbhh, float *dG,
                                       float *dh, float *dc) {
    if (B <= 0 || H <= 0) return;
    cudaStream_t st = cphil_cu_stream(cu);
    const int G = 4 * H;
    const size_t BH = (size_t)B * H;
    if (T <= 0) { /* no steps: dL/dh0 = dL/dc0 = 0, as the CPU's memsets leave them */
        cphil_cu_zero(cu, dh, BH * sizeof(float));
        cphil_cu_zero(cu, dc, BH * sizeof(float));
        return;
    }
    const int tiles = cphil_cu_rnn_persist_tiles(cu, 4, B, T, H, prec);
    const bool persist = tiles > 0;
    if (persist) cphil_cu_lstm_persist_backward(cu, tiles, B, T, H, Whh, gates, cs, cprev0, dy, dG, dh, dc);
    for (int t = T - 1; !persist && t >= 0; t--) {
        k_lstm_cell_bwd<<<rnn_grid(BH), RNN_BLOCK, 0, st>>>(B, T, H, t, t == T - 1, gates, cs, cprev0, dy, dG,
                                                             dh, dc);
        CPHIL_CU_CHECK_LAUNCH(cu, "lstm cell backward");
        /* dh = dG[:, t] Whh ([B, 4H] x [4H, H]); after t = 0 it is dL/dh0 */
        cphil_cu_gemm(cu, prec, false, false, B, H, G, 1.f, dG + (size_t)t * G, T * G, Whh, H, 0.f, dh, H);
    }
    const int M = B * T;
    cphil_cu_linear_backward(cu, prec, M, G, In, x, In, Wih, dG, G, dx, In, dWih, dbih);
    cphil_cu_gemm(cu, prec, true, false, G, H, M, 1.f, dG, G, hprev, H, 1.f, dWhh, H); /* dWhh += dG^T h_{t-1} */
    cphil_cu_colsum(cu, M, G, dG, G, dbhh);
}

/* ---- GRU -------------------------------------------------------------------------------- */
/* Step t: gates[b, t] holds x Wih^T and gh[b, t] h_{t-1} Whh^T (or nothing yet when gh_zero:
 * h_{-1} = 0); add bhh to gh in place (the saved gh includes it), gi = x Wih^T + bih,
 * r = s(gi_r + gh_r), z = s(gi_z + gh_z), n = tanh(gi_n + r gh_n), h = (1 - z) n + z h_{t-1}
 * -> gates (r z n), y[b, t], hprev[b, t+1]. */
static __global__ void k_gru_cell_fwd(int B, int T, int H, int t, int gh_zero, const float *bih, const float *bhh,
                                      float *gates, float *gh, float *y, float *hprev) {
    const size_t G = 3 * (size_t)H;
    GRID_STRIDE(e, (size_t)B * H) {
        size_t b = e / (size_t)H, j = e % (size_t)H;
        size_t row = b * (size_t)T + (size_t)t;
        float *gr = gates + row * G, *hr = gh + row * G;
        float ar = gh_zero ? bhh[j] : hr[j] + bhh[j];
        float az = gh_zero ? bhh[H + j] : hr[H + j] + bhh[H + j];
        float an = gh_zero ? bhh[2 * H + j] : hr[2 * H + j] + bhh[2 * H + j];
        hr[j] = ar;
        hr[H + j] = az;
        hr[2 * H + j] = an;
        float r = cu_sigm((gr[j] + bih[j]) + ar), z = cu_sigm((gr[H + j] + bih[H + j]) + az);
        float n = tanhf((gr[2 * H + j] + bih[2 * H + j]) + r * an);
        gr[j] = r;
        gr[H + j] = z;
        gr[2 * H + j] = n;
        float h = (1.f - z) * n + z * hprev[row * H + j];
        y[row * H + j] = h;
        if (t + 1 < T) hprev[(row + 1) * H + j] = h;
    }
}

/* Step t backward: dy[b, t] + carried dh (zero when `first`) -> dGi[b, t], dGh[b, t] (equal but
 * for the n gate, where the recurrent part is scaled by r); dh = dhv z, the direct path (the
 * Whh path is added by the product that follows). */
static __global__ void k_gru_cell_bwd(int B, int T, int H, int t, int first, const float *gates, const float *gh,
                                      const float *hprev, const float *dy, float *dGi, float *dGh, float *dh) {
    const size_t G = 3 * (size_t)H;
    GRID_STRIDE(e, (size_t)B * H) {
        size_t b = e / (size_t)H, j = e % (size_t)H;
        size_t row = b * (size_t)T + (size_t)t;
        const float *gr = gates + row * G;
        float r = gr[j], z = gr[H + j], n = gr[2 * H + j];
        float ghn = gh[row * G + 2 * H + j], hp = hprev[row * H + j];
        float dhv = dy[row * H + j] + (first ? 0.f : dh[e]);
        float dan = dhv * (1.f - z) * (1.f - n * n);
        float daz = dhv * (hp - n) * z * (1.f - z);
        float dar = dan * ghn * r * (1.f - r);
        float *di = dGi + row * G, *dq = dGh + row * G;
        di[j] = dar;
        di[H + j] = daz;
        di[2 * H + j] = dan;
        dq[j] = dar;
        dq[H + j] = daz;
        dq[2 * H + j] = dan * r;
        dh[e] = dhv * z;
    }
}

extern "C" void cphil_cu_gru_forward(cphil_cu *cu, cphil_precision prec, int B, int T, int In, int H,
                                     const float *x, const float *Wih, const float *Whh, const float *bih,
                                     const float *bhh, const float *h0, float *y, float *gates, float *gh,
                                     float *hprev) {
    if (B <= 0 || H <= 0 || T <= 0) return;
    cudaStream_t st = cphil_cu_stream(cu);
    const int G = 3 * H;
    const size_t M = (size_t)B * T, BH = (size_t)B * H;
    k_rnn_init<<<rnn_grid(BH), RNN_BLOCK, 0, st>>>(B, T, H, h0, NULL, hprev, NULL);
    CPHIL_CU_CHECK_LAUNCH(cu, "gru init");
    /* gates[B*T, 3H] = x Wih^T, every step at once (bih is added by the cell) */
    cphil_cu_gemm(cu, prec, false, true, (int)M, G, In, 1.f, x, In, Wih, In, 0.f, gates, G);
    if (const int tiles = cphil_cu_rnn_persist_tiles(cu, 3, B, T, H, prec)) {
        cphil_cu_gru_persist_forward(cu, tiles, B, T, H, Whh, bih, bhh, gates, gh, y, hprev);
        return;
    }
    for (int t = 0; t < T; t++) {
        /* gh[:, t] = h_{t-1} Whh^T; with h_{-1} = 0 the cell takes it as zero (the product would
         * give exact zeros) */
        bool zero = t == 0 && !h0;
        if (!zero)
            cphil_cu_gemm(cu, prec, false, true, B, G, H, 1.f, hprev + (size_t)t * H, T * H, Whh, H, 0.f,
                          gh + (size_t)t * G, T * G);
        k_gru_cell_fwd<<<rnn_grid(BH), RNN_BLOCK, 0, st>>>(B, T, H, t, zero, bih, bhh, gates, gh, y, hprev);
        CPHIL_CU_CHECK_LAUNCH(cu, "gru cell forward");
    }
}

extern "C" void cphil_cu_gru_backward(cphil_cu *cu, cphil_precision prec, int B, int T, int In, int H,
                                      const float *x, const float *Wih, const float *Whh, const float *gates,
                                      const float *gh, const float *hprev, const float *dy, float *dx,
                                      float *dWih, float *dWhh, float *dbih, float *dbhh, float *dGi, float *dGh,
                                      float *dh) {
    if (B <= 0 || H <= 0) return;
    cudaStream_t st = cphil_cu_stream(cu);
    const int G = 3 * H;
    const size_t BH = (size_t)B * H;
    if (T <= 0) {
        cphil_cu_zero(cu, dh, BH * sizeof(float));
        return;
    }
    const int tiles = cphil_cu_rnn_persist_tiles(cu, 3, B, T, H, prec);
    const bool persist = tiles > 0;
    if (persist) cphil_cu_gru_persist_backward(cu, tiles, B, T, H, Whh, gates, gh, hprev, dy, dGi, dGh, dh);
    for (int t = T - 1; !persist && t >= 0; t--) {
        k_gru_cell_bwd<<<rnn_grid(BH), RNN_BLOCK, 0, st>>>(B, T, H, t, t == T - 1, gates, gh, hprev, dy, dGi,
                                                            dGh, dh);
        CPHIL_CU_CHECK_LAUNCH(cu, "gru cell backward");
        /* dh += dGh[:, t] Whh; after t = 0 it is dL/dh0 */
        cphil_cu_gemm(cu, prec, false, false, B, H, G, 1.f, dGh + (size_t)t * G, T * G, Whh, H, 1.f, dh, H);
    }
    const int M = B * T;
    cphil_cu_linear_backward(cu, prec, M, G, In, x, In, Wih, dGi, G, dx, In, dWih, dbih);
    cphil_cu_gemm(cu, prec, true, false, G, H, M, 1.f, dGh, G, hprev, H, 1.f, dWhh, H); /* dWhh += dGh^T h_{t-1} */
    cphil_cu_colsum(cu, M, G, dGh, G, dbhh);
}
