/* cu_mamba.cu — the Mamba mixer of cu.h on the GPU, the twin of cphil_nn_mamba_forward/backward
 * (src/nn/nn_impl.h): the same saved values (xz, xc, xa, xdbl, dtp, dt, y, g), the same add-into
 * gradients, the CPU's scratch struct as device buffers (dg, dy-free: the gate is fused), plus
 * `extra` floats for the deterministic partial sums (cphil_cu_mamba_extra_floats).
 *
 * Kernels (gpu_training.md section 2.3):
 *  - products: cuBLASLt over all B*T rows (in_proj, x_proj, dt_proj, out_proj and their
 *    backward products), through cphil_cu_linear_* / cphil_cu_gemm;
 *  - k_conv_fwd: causal depthwise conv + bias + SiLU, one thread per (row, channel);
 *  - k_scan_fwd: the selective scan, one thread per (b, channel i, state n) walking T steps
 *    serially; the N states of a channel sit in G = next power of two >= N adjacent threads
 *    (lanes of one warp while G <= 32, else G/32 whole warps); y = C . h is reduced over the
 *    group by xor shuffles (and shared memory across warps when G > 32) in a fixed order.
 *    softplus(dtp), the D skip and the silu(z) gate are fused;
 *  - k_scan_bwd: same thread layout; recomputes the forward states (checkpoints every SCAN_CH
 *    steps in `extra`, the SCAN_CH states of one chunk in registers), then runs the reverse
 *    recurrence; ddt (times softplus'), dxa (+ dy D) and dz (the gate) are written per
 *    (row, channel); dB/dC per (row, state) are summed over the block's channels in shared
 *    memory and written as per-block partials; dA_log per (b, i, n) and dD per (b, i) as
 *    partials over b; k_scan_bwd_bc / k_scan_bwd_ad then sum the partials in a fixed order;
 *  - conv backward: k_dxc (dxc = dxa silu'(xc)), k_conv_bwd_dx (a gather over the K taps in the
 *    CPU's order, so no zeroing or atomics), k_conv_bwd_w (per row-chunk partials of dconv_w /
 *    dconv_b) and k_conv_bwd_w_sum (fixed-order sum over the chunks, added into the gradients).
 * No atomics anywhere: the same inputs give the same bits on the same card.
 * Limits: N <= 512 (a channel's states fit one 512-thread block), K <= 64 (the model config's
 * own limit); outside them an error is recorded in the context.
 */
extern "C" {
#include "core/core.h"
}
#include "kernels/cuda/cu.h"
#include "kernels/cuda/cu_util.cuh"

#define SCAN_THREADS 512 /* threads per scan block: 512/G channels x G states */
#define SCAN_CH 8        /* backward: forward states recomputed per chunk of 8 steps, in registers;
                           8 keeps k_scan_bwd at 64 registers without spills, so two 512-thread
                           blocks fit an SM (16 needs 94 registers: one block per SM) */
#define MAX_N 512
#define MAX_K 64
#define CONV_CHUNKS 64   /* row chunks of the dconv_w / dconv_b partial sums */
#define FULL 0xffffffffu

/* threads per channel: the next power of two >= N */
static int scan_group(int N) {
    int g = 1;
    while (g < N && g < MAX_N) g <<= 1;
    return g;
}
static size_t cdiv(size_t a, size_t b) { return (a + b - 1) / b; }

/* Sum of v over the G threads of one channel group (all threads of the block call it, block-
 * uniform G). G <= 32: xor shuffles inside the group's lanes. G > 32: a warp sum, then the
 * group's G/32 warp sums from red[] (written here; the caller's single __syncthreads per step
 * separates the writes from the reads, double-buffered by the caller). Returns the warp-level
 * sum; finish with group_sum_finish after the barrier when G > 32. */
static __device__ __forceinline__ float group_sum_warp(float v, int G) {
    int w = G < 32 ? G : 32;
    for (int o = w >> 1; o > 0; o >>= 1) v += __shfl_xor_sync(FULL, v, o);
    return v;
}
static __device__ __forceinline__ float group_sum_finish(const float *red, int G, int cl) {
    int nw = G >> 5, w0 = cl * nw;
    float s = 0.f;
    for (int w = 0; w < nw; w++) s += red[w0 + w];
    return s;
}

/* ---- forward ------------------------------------------------------------------------------ */
/* xc = conv_b + sum_k conv_w[c, k] xs[t - (K-1) + k] (the CPU's order); xa = silu(xc) */
static __global__ void k_conv_fwd(int B, int T, int I, int K, const float *__restrict__ xz,
                                  const float *__restrict__ cw, const float *__restrict__ cb,
                                  float *__restrict__ xc, float *__restrict__ xa) {
    size_t n = (size_t)B * T * I;
    for (size_t q = blockIdx.x * (size_t)blockDim.x + threadIdx.x; q < n; q += (size_t)gridDim.x * blockDim.x) {
        size_t row = q / (size_t)I;
        int c = (int)(q % (size_t)I), t = (int)(row % (size_t)T);
        float acc = cb[c];
        for (int k = 0; k < K; k++) {
            int tt = t - (K - 1) + k;
            if (tt < 0) continue;
            acc += cw[(size_t)c * K + k] * xz[(row - (size_t)(t - tt)) * 2 * I + c];
        }
        xc[q] = acc;
        xa[q] = cu_silu(acc);
    }
}

/* Selective scan forward. Block: SCAN_THREADS threads = CPB channels x G states; grid
 * (ceil(I/CPB), B). Writes dt = softplus(dtp), y = D xa + C . h, g = y silu(z). */
static __global__ void __launch_bounds__(SCAN_THREADS)
k_scan_fwd(int T, int I, int R, int N, int G, const float *__restrict__ dtp, const float *__restrict__ xa,
           const float *__restrict__ xdbl, const float *__restrict__ xz, const float *__restrict__ A_log,
           const float *__restrict__ D, float *__restrict__ dt_out, float *__restrict__ y,
           float *__restrict__ g) {
    __shared__ float red[2][SCAN_THREADS / 32];
    const int tid = threadIdx.x, cpb = SCAN_THREADS / G, cl = tid / G, n = tid % G;
    const int b = blockIdx.y, i = blockIdx.x * cpb + cl, XD = R + 2 * N;
    const bool chan = i < I, act = chan && n < N;
    const float A = act ? -expf(A_log[(size_t)i * N + n]) : 0.f, Dv = chan ? D[i] : 0.f;
    float h = 0.f;
    int buf = 0;
    for (int t = 0; t < T; t++) {
        const size_t row = (size_t)b * T + t, ri = row * I + i;
        float dt = 0.f, x = 0.f, v = 0.f;
        if (chan) {
            dt = cu_softplus(dtp[ri]);
            x = xa[ri];
        }
        if (act) {
            const float bn = xdbl[row * XD + R + n], cn = xdbl[row * XD + R + N + n];
            h = expf(dt * A) * h + dt * x * bn;
            v = cn * h;
        }
        v = group_sum_warp(v, G);
        if (G > 32) { /* block-uniform */
            if ((tid & 31) == 0) red[buf][tid >> 5] = v;
            __syncthreads();
            v = group_sum_finish(red[buf], G, cl);
            buf ^= 1;
        }
        if (n == 0 && chan) {
            const float yv = Dv * x + v, z = xz[row * 2 * I + I + i];
            dt_out[ri] = dt;
            y[ri] = yv;
            g[ri] = yv * cu_silu(z);
        }
    }
}

extern "C" size_t cphil_cu_mamba_extra_floats(int B, int T, int I, int N) {
    const int G = scan_group(N), cpb = SCAN_THREADS / G;
    const size_t nchb = cdiv((size_t)I, (size_t)cpb), nck = cdiv((size_t)T, SCAN_CH);
    const size_t ckpt = (size_t)B * I * N * (nck ? nck - 1 : 0);
    const size_t scan = ckpt + 2 * (size_t)B * T * nchb * N + (size_t)B * I * N + (size_t)B * I;
    const size_t conv = (size_t)CONV_CHUNKS * I * (MAX_K + 1);
    return scan > conv ? scan : conv;
}

static bool mamba_sizes_ok(cphil_cu *cu, int N, int K) {
    if (N >= 1 && N <= MAX_N && K >= 1 && K <= MAX_K) return true;
    cphil_cu_record(cu, (int)cudaErrorInvalidValue, "mamba: state size N must be 1..512 and conv size K 1..64 on the GPU",
                    __FILE__, __LINE__);
    return false;
}

extern "C" void cphil_cu_mamba_forward(cphil_cu *cu, cphil_precision prec, int B, int T, int H, int I, int R,
                                       int N, int K, const float *u, const cphil_mamba_params *p,
                                       cphil_mamba_saved *s, cphil_mamba_scratch *w, float *extra, float *out) {
    (void)w;
    (void)extra;
    if (B <= 0 || T <= 0 || !mamba_sizes_ok(cu, N, K)) return;
    const int M = B * T, XD = R + 2 * N;
    const size_t MI = (size_t)M * I;
    cudaStream_t st = cphil_cu_stream(cu);
    cphil_cu_linear_forward(cu, prec, M, 2 * I, H, u, H, p->Win, NULL, s->xz, 2 * I);
    k_conv_fwd<<<cu_grid(MI), CU_BLOCK, 0, st>>>(B, T, I, K, s->xz, p->conv_w, p->conv_b, s->xc, s->xa);
    CPHIL_CU_CHECK_LAUNCH(cu, "mamba conv forward");
    cphil_cu_linear_forward(cu, prec, M, XD, I, s->xa, I, p->Wx, NULL, s->xdbl, XD);
    cphil_cu_linear_forward(cu, prec, M, I, R, s->xdbl, XD, p->Wdt, p->bdt, s->dtp, I);
    const int G = scan_group(N), cpb = SCAN_THREADS / G;
    dim3 grid((unsigned)cdiv((size_t)I, (size_t)cpb), (unsigned)B);
    k_scan_fwd<<<grid, SCAN_THREADS, 0, st>>>(T, I, R, N, G, s->dtp, s->xa, s->xdbl, s->xz, p->A_log, p->D, s->dt,
                                                s->y, s->g);
    CPHIL_CU_CHECK_LAUNCH(cu, "mamba scan forward");
    cphil_cu_linear_forward(cu, prec, M, H, I, s->g, I, p->Wout, NULL, out, H);
}

/* ---- backward ----------------------------------------------------------------------------- */
/* Selective scan backward, the gate and the D skip. Same layout as k_scan_fwd. Per thread
 * (b, i, n): a forward pass storing h at the start of every chunk of SCAN_CH steps (ckpt), then
 * the chunks in reverse: recompute the chunk's states into hc[] (registers), walk it backwards.
 * Writes (every element, no zeroing needed): dz into dxz[:, I:], dxa = sum_n g dt B + dy D,
 * ddt = (sum_n dL/d(dt)) softplus'(dtp); partials pB/pC [B, T, nchb, N] (sums over the block's
 * channels), pA [B, I, N], pD [B, I]. */
static __global__ void __launch_bounds__(SCAN_THREADS, 2)
k_scan_bwd(int T, int I, int R, int N, int G, const float *__restrict__ dtp, const float *__restrict__ dt_s,
           const float *__restrict__ xa, const float *__restrict__ xdbl, const float *__restrict__ xz,
           const float *__restrict__ y_s, const float *__restrict__ dg, const float *__restrict__ A_log,
           const float *__restrict__ D, float *__restrict__ dxz, float *__restrict__ dxa,
           float *__restrict__ ddt, float *__restrict__ ckpt, float *__restrict__ pB, float *__restrict__ pC,
           float *__restrict__ pA, float *__restrict__ pD) {
    __shared__ float sddt[2][SCAN_THREADS / 32], sdxa[2][SCAN_THREADS / 32];
    __shared__ float sB[2][SCAN_THREADS], sC[2][SCAN_THREADS];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int cpb = SCAN_THREADS / G, cl = tid / G, n = tid % G;
    const int b = blockIdx.y, i = blockIdx.x * cpb + cl, XD = R + 2 * N, B = gridDim.y;
    const int nchb = gridDim.x, rows = SCAN_THREADS / (G > 32 ? G : 32);
    /* where this thread's dB/dC (summed over the warp's channels when G < 32) goes in sB/sC */
    const int sidx = G >= 32 ? tid : warp * G + lane;
    const bool chan = i < I, act = chan && n < N, swr = G >= 32 || lane < G;
    const float A = act ? -expf(A_log[(size_t)i * N + n]) : 0.f, Dv = chan ? D[i] : 0.f;
    const size_t cstride = (size_t)B * I * N, cidx = ((size_t)b * I + i) * N + n;

    /* forward pass: checkpoints h_{c*SCAN_CH - 1} for chunks c >= 1 */
    float h = 0.f;
    if (act)
        for (int t = 0; t < T; t++) {
            if (t > 0 && t % SCAN_CH == 0) ckpt[(size_t)(t / SCAN_CH - 1) * cstride + cidx] = h;
            const size_t row = (size_t)b * T + t, ri = row * I + i;
            const float dt = dt_s[ri];
            h = expf(dt * A) * h + dt * xa[ri] * xdbl[row * XD + R + n];
        }

    float carry = 0.f, dAl = 0.f, dDacc = 0.f;
    int buf = 0;
    const int nck = (T + SCAN_CH - 1) / SCAN_CH;
    for (int c = nck - 1; c >= 0; c--) {
        const int t0 = c * SCAN_CH, len = min(SCAN_CH, T - t0);
        const float h0 = (c > 0 && act) ? ckpt[(size_t)(c - 1) * cstride + cidx] : 0.f;
        float hc[SCAN_CH];
        float hh = h0;
#pragma unroll
        for (int j = 0; j < SCAN_CH; j++) {
            if (j < len && act) {
                const size_t row = (size_t)b * T + t0 + j, ri = row * I + i;
                const float dt = dt_s[ri];
                hh = expf(dt * A) * hh + dt * xa[ri] * xdbl[row * XD + R + n];
            }
            hc[j] = hh;
        }
#pragma unroll
        for (int j = SCAN_CH - 1; j >= 0; j--) {
            if (j < len) { /* len is block-uniform: the barrier below is reached by all */
                const int t = t0 + j;
                const size_t row = (size_t)b * T + t, ri = row * I + i;
                float dgv = 0.f, z = 0.f, dt = 0.f, x = 0.f, bn = 0.f, cn = 0.f;
                if (chan) {
                    dgv = dg[ri];
                    z = xz[row * 2 * I + I + i];
                    dt = dt_s[ri];
                    x = xa[ri];
                }
                if (act) {
                    bn = xdbl[row * XD + R + n];
                    cn = xdbl[row * XD + R + N + n];
                }
                const float dy = dgv * cu_silu(z);
                const float hp = j > 0 ? hc[j - 1] : h0;
                const float dA = expf(dt * A);
                const float gv = carry + dy * cn;
                const float t1 = gv * hp * dA; /* d/d(dt A) of the decay term */
                float vddt = act ? t1 * A + gv * bn * x : 0.f;
                float vdxa = act ? gv * dt * bn : 0.f;
                float vC = act ? dy * hc[j] : 0.f;
                float vB = act ? gv * dt * x : 0.f;
                if (act) dAl += t1 * dt * A; /* dA/dA_log = A */
                carry = gv * dA;
                vddt = group_sum_warp(vddt, G);
                vdxa = group_sum_warp(vdxa, G);
                for (int o = G; o < 32; o <<= 1) { /* over the warp's channels, same state */
                    vC += __shfl_xor_sync(FULL, vC, o);
                    vB += __shfl_xor_sync(FULL, vB, o);
                }
                if (G > 32 && lane == 0) {
                    sddt[buf][warp] = vddt;
                    sdxa[buf][warp] = vdxa;
                }
                if (swr) {
                    sC[buf][sidx] = vC;
                    sB[buf][sidx] = vB;
                }
                __syncthreads(); /* one per step: buffers alternate, so the next step's writes
                                    cannot overtake this step's reads */
                if (G > 32) {
                    vddt = group_sum_finish(sddt[buf], G, cl);
                    vdxa = group_sum_finish(sdxa[buf], G, cl);
                }
                if (n == 0 && chan) {
                    const float dtpv = dtp[ri];
                    ddt[ri] = vddt * (dtpv > 20.f ? 1.f : cu_sigm(dtpv));
                    dxa[ri] = vdxa + dy * Dv;
                    dxz[row * 2 * I + I + i] = dgv * y_s[ri] * cu_dsilu(z);
                    dDacc += dy * x;
                }
                if (tid < N) {
                    float sc = 0.f, sb = 0.f;
                    for (int r = 0; r < rows; r++) {
                        sc += sC[buf][r * G + tid];
                        sb += sB[buf][r * G + tid];
                    }
                    const size_t pidx = ((row * nchb) + blockIdx.x) * N + tid;
                    pC[pidx] = sc;
                    pB[pidx] = sb;
                }
                buf ^= 1;
            }
        }
    }
    if (act) pA[cidx] = dAl;
    if (n == 0 && chan) pD[(size_t)b * I + i] = dDacc;
}

/* dxdbl [M, XD]: dtr columns 0 (the dt_proj backward adds into them), dB and dC the fixed-order
 * sums of the per-block partials. */
static __global__ void k_scan_bwd_bc(int M, int R, int N, int nchb, const float *__restrict__ pB,
                                     const float *__restrict__ pC, float *__restrict__ dxdbl) {
    const int XD = R + 2 * N;
    size_t n = (size_t)M * XD;
    for (size_t q = blockIdx.x * (size_t)blockDim.x + threadIdx.x; q < n; q += (size_t)gridDim.x * blockDim.x) {
        size_t row = q / (size_t)XD;
        int col = (int)(q % (size_t)XD);
        float v = 0.f;
        if (col >= R) {
            const bool isB = col < R + N;
            const int s = isB ? col - R : col - R - N;
            const float *p = (isB ? pB : pC) + row * nchb * N + s;
            for (int k = 0; k < nchb; k++) v += p[(size_t)k * N];
        }
        dxdbl[q] = v;
    }
}

/* A_log[i, n] += sum_b pA[b, i, n]; D[i] += sum_b pD[b, i] (b in order) */
static __global__ void k_scan_bwd_ad(int B, int I, int N, const float *__restrict__ pA, const float *__restrict__ pD,
                                     float *__restrict__ gA, float *__restrict__ gD) {
    size_t n = (size_t)I * N;
    for (size_t q = blockIdx.x * (size_t)blockDim.x + threadIdx.x; q < n; q += (size_t)gridDim.x * blockDim.x) {
        float s = 0.f;
#pragma unroll 8 /* independent loads in flight; the additions stay in b order */
        for (int b = 0; b < B; b++) s += pA[(size_t)b * n + q];
        gA[q] += s;
        if (q < (size_t)I) {
            float d = 0.f;
            for (int b = 0; b < B; b++) d += pD[(size_t)b * I + q];
            gD[q] += d;
        }
    }
}

/* dxc = dxa silu'(xc) */
static __global__ void k_dxc(size_t n, const float *__restrict__ dxa, const float *__restrict__ xc, float *__restrict__ dxc) {
    for (size_t q = blockIdx.x * (size_t)blockDim.x + threadIdx.x; q < n; q += (size_t)gridDim.x * blockDim.x)
        dxc[q] = dxa[q] * cu_dsilu(xc[q]);
}

/* dxs[tt] = sum over t = tt .. tt+K-1 (< T) of conv_w[c, K-1-(t-tt)] dxc[t], t increasing (the
 * order the CPU adds them); written into dxz[:, :I]. */
static __global__ void k_conv_bwd_dx(int B, int T, int I, int K, const float *__restrict__ dxc,
                                     const float *__restrict__ cw, float *__restrict__ dxz) {
    size_t n = (size_t)B * T * I;
    for (size_t q = blockIdx.x * (size_t)blockDim.x + threadIdx.x; q < n; q += (size_t)gridDim.x * blockDim.x) {
        size_t row = q / (size_t)I;
        int c = (int)(q % (size_t)I), tt = (int)(row % (size_t)T);
        float acc = 0.f;
        for (int d = 0; d < K && tt + d < T; d++) acc += cw[(size_t)c * K + (K - 1 - d)] * dxc[q + (size_t)d * I];
        dxz[row * 2 * I + c] = acc;
    }
}

/* Partials of dconv_w [I, K] and dconv_b [I] over one chunk of rows. Block (32 channels, 8 row
 * slices); grid (ceil(I/32), nchunk). part[(chunk * I + c) * (K+1) + k], k == K the bias. */
static __global__ void k_conv_bwd_w(int M, int T, int I, int K, int rpc, const float *__restrict__ dxc,
                                    const float *__restrict__ xz, float *__restrict__ part) {
    __shared__ float red[8][33];
    const int tx = threadIdx.x, ty = threadIdx.y, c = blockIdx.x * 32 + tx;
    const int r0 = blockIdx.y * rpc, r1 = min(M, r0 + rpc);
    for (int k = 0; k <= K; k++) {
        float acc = 0.f;
        if (c < I)
            for (int r = r0 + ty; r < r1; r += 8) {
                const float d = dxc[(size_t)r * I + c];
                if (k == K) acc += d;
                else {
                    const int t = r % T, tt = t - (K - 1) + k;
                    if (tt >= 0) acc += d * xz[(size_t)(r - (t - tt)) * 2 * I + c];
                }
            }
        red[ty][tx] = acc;
        __syncthreads();
        if (ty == 0 && c < I) {
            float s = 0.f;
            for (int y = 0; y < 8; y++) s += red[y][tx];
            part[((size_t)blockIdx.y * I + c) * (K + 1) + k] = s;
        }
        __syncthreads(); /* red is rewritten by the next k */
    }
}

/* conv_w[c, k] += sum over chunks (in order); conv_b[c] likewise (k == K) */
static __global__ void k_conv_bwd_w_sum(int I, int K, int nchunk, const float *__restrict__ part, float *__restrict__ gw,
                                        float *__restrict__ gb) {
    size_t n = (size_t)I * (K + 1);
    for (size_t q = blockIdx.x * (size_t)blockDim.x + threadIdx.x; q < n; q += (size_t)gridDim.x * blockDim.x) {
        float s = 0.f;
        for (int ch = 0; ch < nchunk; ch++) s += part[(size_t)ch * n + q];
        const int c = (int)(q / (size_t)(K + 1)), k = (int)(q % (size_t)(K + 1));
        if (k == K) gb[c] += s;
        else gw[(size_t)c * K + k] += s;
    }
}

extern "C" void cphil_cu_mamba_backward(cphil_cu *cu, cphil_precision prec, int B, int T, int H, int I, int R,
                                        int N, int K, const float *u, const cphil_mamba_params *p,
                                        const cphil_mamba_saved *s, cphil_mamba_scratch *w, float *extra,
                                        const float *dout, float *du, const cphil_mamba_grads *g) {
    if (B <= 0 || T <= 0 || !mamba_sizes_ok(cu, N, K)) return;
    const int M = B * T, XD = R + 2 * N;
    const size_t MI = (size_t)M * I;
    cudaStream_t st = cphil_cu_stream(cu);
    /* out = g Wout^T: dg = dout Wout (written: zero then add), dWout += dout^T g */
    cphil_cu_zero(cu, w->dg, MI * sizeof(float));
    cphil_cu_linear_backward(cu, prec, M, H, I, s->g, I, p->Wout, dout, H, w->dg, I, g->Wout, NULL);

    /* scan backward with the gate and D skip fused */
    const int G = scan_group(N), cpb = SCAN_THREADS / G;
    const int nchb = (int)cdiv((size_t)I, (size_t)cpb), nck = (int)cdiv((size_t)T, SCAN_CH);
    float *ckpt = extra;
    float *pB = ckpt + (size_t)B * I * N * (nck - 1);
    float *pC = pB + (size_t)M * nchb * N;
    float *pA = pC + (size_t)M * nchb * N;
    float *pD = pA + (size_t)B * I * N;
    dim3 grid((unsigned)nchb, (unsigned)B);
    k_scan_bwd<<<grid, SCAN_THREADS, 0, st>>>(T, I, R, N, G, s->dtp, s->dt, s->xa, s->xdbl, s->xz, s->y, w->dg,
                                                p->A_log, p->D, w->dxz, w->dxa, w->ddt, ckpt, pB, pC, pA, pD);
    CPHIL_CU_CHECK_LAUNCH(cu, "mamba scan backward");
    k_scan_bwd_bc<<<cu_grid((size_t)M * XD), CU_BLOCK, 0, st>>>(M, R, N, nchb, pB, pC, w->dxdbl);
    CPHIL_CU_CHECK_LAUNCH(cu, "mamba scan backward dB dC");
    k_scan_bwd_ad<<<cu_grid((size_t)I * N), CU_BLOCK, 0, st>>>(B, I, N, pA, pD, g->A_log, g->D);
    CPHIL_CU_CHECK_LAUNCH(cu, "mamba scan backward dA_log dD");

    /* dt = softplus(dtp) (factor applied above); dtp = dtr Wdt^T + bdt */
    cphil_cu_linear_backward(cu, prec, M, I, R, s->xdbl, XD, p->Wdt, w->ddt, I, w->dxdbl, XD, g->Wdt, g->bdt);
    /* xdbl = xa Wx^T */
    cphil_cu_linear_backward(cu, prec, M, XD, I, s->xa, I, p->Wx, w->dxdbl, XD, w->dxa, I, g->Wx, NULL);
    /* xa = silu(xc); the conv (extra is free again: reused for its partials) */
    k_dxc<<<cu_grid(MI), CU_BLOCK, 0, st>>>(MI, w->dxa, s->xc, w->dxc);
    CPHIL_CU_CHECK_LAUNCH(cu, "mamba dxc");
    k_conv_bwd_dx<<<cu_grid(MI), CU_BLOCK, 0, st>>>(B, T, I, K, w->dxc, p->conv_w, w->dxz);
    CPHIL_CU_CHECK_LAUNCH(cu, "mamba conv backward dx");
    const int nchunk = M < CONV_CHUNKS ? M : CONV_CHUNKS, rpc = (int)cdiv((size_t)M, (size_t)nchunk);
    dim3 cgrid((unsigned)cdiv((size_t)I, 32), (unsigned)nchunk), cblock(32, 8);
    k_conv_bwd_w<<<cgrid, cblock, 0, st>>>(M, T, I, K, rpc, w->dxc, s->xz, extra);
    CPHIL_CU_CHECK_LAUNCH(cu, "mamba conv backward dw");
    k_conv_bwd_w_sum<<<cu_grid((size_t)I * (K + 1)), CU_BLOCK, 0, st>>>(I, K, nchunk, extra, g->conv_w, g->conv_b);
    CPHIL_CU_CHECK_LAUNCH(cu, "mamba conv backward dw sum");
    /* xz = u Win^T */
    cphil_cu_linear_backward(cu, prec, M, 2 * I, H, u, H, p->Win, w->dxz, 2 * I, du, H, g->Win, NULL);
}
