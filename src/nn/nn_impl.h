/* nn_impl.h — the layers of nn.h, written once over the scalar type R and compiled by nn_f32.c
 * (R float, cphil_gemm) and nn_f64.c (R double, cphil_nn_gemm_f64). Forward and backward of each
 * layer side by side. Needs, from the including file: R, NN_FN(name), GEMM(prec, ta, tb, M, N, K,
 * alpha, A, lda, B, ldb, beta, C, ldc) and the math wrappers EXP TANH SIGMOID SOFTPLUS (f32: the
 * library of src/kernels/cpu/vmath.h) and LOG LOG1P EXPM1 ERF SQRT COS SIN POW.
 *
 * References: PyTorch's documentation of nn.Linear, nn.LayerNorm, nn.LSTM, nn.GRU, nn.GELU,
 * nn.Softplus, BCEWithLogitsLoss (pos_weight), CrossEntropyLoss (label_smoothing);
 * Zhang & Sennrich 2019 (RMSNorm); Gu & Dao 2023 "Mamba" (Algorithm 2, selective scan) and the
 * reference mamba_simple.py; Su et al. 2021 "RoFormer" (rotary positions, rotate-half form);
 * llm.c (layernorm / attention backward formulas).
 * Not here: threads (cphil_gemm runs the matrix products on the worker pool; everything else is
 * single-threaded and deterministic), allocation.
 */
#include <math.h>
#include <string.h>

#define SZ(x) ((size_t)(x))

/* ---- scalar helpers -------------------------------------------------------------------- */
static inline R NN_FN(sigm)(R x) { return SIGMOID(x); }
static inline R NN_FN(softplus)(R x) { return SOFTPLUS(x); } /* x > 20 -> x, as PyTorch */
static inline R NN_FN(silu)(R x) { return x * NN_FN(sigm)(x); }
static inline R NN_FN(dsilu)(R x) {
    R s = NN_FN(sigm)(x);
    return s * ((R)1 + x * ((R)1 - s));
}

/* ---- activations ----------------------------------------------------------------------- */
void NN_FN(cphil_nn_act_forward)(cphil_act f, size_t n, const R *x, R *y) {
    const R rs2 = (R)0.70710678118654752440;
    switch (f) { /* one loop per function, so each vectorizes */
    case CPHIL_ACT_RELU: for (size_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0; break;
    case CPHIL_ACT_GELU: for (size_t i = 0; i < n; i++) y[i] = (R)0.5 * x[i] * ((R)1 + ERF(x[i] * rs2)); break;
    case CPHIL_ACT_SILU: for (size_t i = 0; i < n; i++) y[i] = NN_FN(silu)(x[i]); break;
    case CPHIL_ACT_SOFTPLUS: for (size_t i = 0; i < n; i++) y[i] = NN_FN(softplus)(x[i]); break;
    case CPHIL_ACT_SIGMOID: for (size_t i = 0; i < n; i++) y[i] = NN_FN(sigm)(x[i]); break;
    case CPHIL_ACT_TANH: for (size_t i = 0; i < n; i++) y[i] = TANH(x[i]); break;
    default: CPHIL_ASSERT(0);
    }
}

void NN_FN(cphil_nn_act_backward)(cphil_act f, size_t n, const R *x, const R *dy, R *dx) {
    const R rs2 = (R)0.70710678118654752440, rs2pi = (R)0.39894228040143267794;
    switch (f) {
    case CPHIL_ACT_RELU: for (size_t i = 0; i < n; i++) dx[i] += x[i] > 0 ? dy[i] : 0; break;
    case CPHIL_ACT_GELU:
        for (size_t i = 0; i < n; i++) {
            R v = x[i];
            dx[i] += dy[i] * ((R)0.5 * ((R)1 + ERF(v * rs2)) + v * rs2pi * EXP((R)-0.5 * v * v));
        }
        break;
    case CPHIL_ACT_SILU: for (size_t i = 0; i < n; i++) dx[i] += dy[i] * NN_FN(dsilu)(x[i]); break;
    case CPHIL_ACT_SOFTPLUS:
        for (size_t i = 0; i < n; i++) dx[i] += dy[i] * (x[i] > (R)20 ? (R)1 : NN_FN(sigm)(x[i]));
        break;
    case CPHIL_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++) {
            R s = NN_FN(sigm)(x[i]);
            dx[i] += dy[i] * s * ((R)1 - s);
        }
        break;
    case CPHIL_ACT_TANH:
        for (size_t i = 0; i < n; i++) {
            R t = TANH(x[i]);
            dx[i] += dy[i] * ((R)1 - t * t);
        }
        break;
    default: CPHIL_ASSERT(0);
    }
}

/* column sums of dy [M, N] (row stride ld) added into db [N] */
static void NN_FN(colsum_add)(int M, int N, const R *dy, int ld, R *db) {
    for (int m = 0; m < M; m++) {
        const R *r = dy + SZ(m) * ld;
        for (int n = 0; n < N; n++) db[n] += r[n];
    }
}

/* ---- Linear ---------------------------------------------------------------------------- */
void NN_FN(cphil_nn_linear_forward)(cphil_precision prec, int M, int N, int K, const R *x, int ldx,
                                    const R *W, const R *b, R *y, int ldy) {
    /* y[M, N] = x[M, K] @ W[N, K]^T */
    GEMM(prec, false, true, M, N, K, 1, x, ldx, W, K, 0, y, ldy);
    if (b)
        for (int m = 0; m < M; m++) {
            R *r = y + SZ(m) * ldy;
            for (int n = 0; n < N; n++) r[n] += b[n];
        }
}

void NN_FN(cphil_nn_linear_backward)(cphil_precision prec, int M, int N, int K, const R *x, int ldx,
                                     const R *W, const R *dy, int lddy, R *dx, int lddx, R *dW,
                                     R *db) {
    if (dx) GEMM(prec, false, false, M, K, N, 1, dy, lddy, W, K, 1, dx, lddx); /* dx[M,K] += dy[M,N] W[N,K] */
    GEMM(prec, true, false, N, K, M, 1, dy, lddy, x, ldx, 1, dW, K);           /* dW[N,K] += dy^T x */
    if (db) NN_FN(colsum_add)(M, N, dy, lddy, db);
}

/* ---- input layer ----------------------------------------------------------------------- */
void NN_FN(cphil_nn_input_forward)(cphil_precision prec, int M, int H0, int E, int n_cont,
                                   int n_ids, const R *cont, const int32_t *ids, const R *W,
                                   const R *b, R *WT, R *y) {
    /* WT[e, h] = W[h, e] for the id columns e >= n_cont (16 x 16 tiles) */
    for (int h0 = 0; h0 < H0; h0 += 16)
        for (int e0 = n_cont; e0 < E; e0 += 16) {
            int h1 = h0 + 16 < H0 ? h0 + 16 : H0, e1 = e0 + 16 < E ? e0 + 16 : E;
            for (int h = h0; h < h1; h++)
                for (int e = e0; e < e1; e++) WT[SZ(e) * H0 + h] = W[SZ(h) * E + e];
        }
    if (n_cont > 0)
        GEMM(prec, false, true, M, H0, n_cont, 1, cont, n_cont, W, E, 0, y, H0); /* cont @ W[:, :n_cont]^T */
    else
        memset(y, 0, SZ(M) * H0 * sizeof(R));
    for (int m = 0; m < M; m++) {
        R *r = y + SZ(m) * H0;
        for (int h = 0; h < H0; h++) r[h] += b[h];
        for (int k = 0; k < n_ids; k++) {
            int id = ids[SZ(m) * n_ids + k];
            CPHIL_ASSERT(id >= n_cont && id < E);
            const R *w = WT + SZ(id) * H0;
            for (int h = 0; h < H0; h++) r[h] += w[h];
        }
    }
}

void NN_FN(cphil_nn_input_backward)(cphil_precision prec, int M, int H0, int E, int n_cont,
                                    int n_ids, const R *cont, const int32_t *ids, const R *dy,
                                    R *dW, R *db, R *dWT) {
    if (n_cont > 0) GEMM(prec, true, false, H0, n_cont, M, 1, dy, H0, cont, n_cont, 1, dW, E);
    NN_FN(colsum_add)(M, H0, dy, H0, db);
    memset(dWT + SZ(n_cont) * H0, 0, SZ(E - n_cont) * H0 * sizeof(R));
    for (int m = 0; m < M; m++) {
        const R *r = dy + SZ(m) * H0;
        for (int k = 0; k < n_ids; k++) {
            int id = ids[SZ(m) * n_ids + k];
            CPHIL_ASSERT(id >= n_cont && id < E);
            R *w = dWT + SZ(id) * H0;
            for (int h = 0; h < H0; h++) w[h] += r[h];
        }
    }
    for (int h0 = 0; h0 < H0; h0 += 16)
        for (int e0 = n_cont; e0 < E; e0 += 16) {
            int h1 = h0 + 16 < H0 ? h0 + 16 : H0, e1 = e0 + 16 < E ? e0 + 16 : E;
            for (int h = h0; h < h1; h++)
                for (int e = e0; e < e1; e++) dW[SZ(h) * E + e] += dWT[SZ(e) * H0 + h];
        }
}

/* ---- LayerNorm ------------------------------------------------------------------------- */
void NN_FN(cphil_nn_layernorm_forward)(int M, int C, const R *x, const R *g, const R *b, R eps,
                                       R *y, R *mean, R *rstd) {
    for (int m = 0; m < M; m++) {
        const R *xr = x + SZ(m) * C;
        R *yr = y + SZ(m) * C;
        R mu = 0, var = 0;
        for (int c = 0; c < C; c++) mu += xr[c];
        mu /= (R)C;
        for (int c = 0; c < C; c++) var += (xr[c] - mu) * (xr[c] - mu);
        var /= (R)C;
        R rs = (R)1 / SQRT(var + eps);
        for (int c = 0; c < C; c++) yr[c] = (xr[c] - mu) * rs * g[c] + b[c];
        mean[m] = mu;
        rstd[m] = rs;
    }
}

void NN_FN(cphil_nn_layernorm_backward)(int M, int C, const R *x, const R *g, const R *mean,
                                        const R *rstd, const R *dy, R *dx, R *dg, R *db) {
    /* xhat = (x - mu) rstd; dxhat = dy g;
     * dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) */
    for (int m = 0; m < M; m++) {
        const R *xr = x + SZ(m) * C, *dr = dy + SZ(m) * C;
        R mu = mean[m], rs = rstd[m], s1 = 0, s2 = 0;
        for (int c = 0; c < C; c++) {
            R xh = (xr[c] - mu) * rs, dxh = dr[c] * g[c];
            s1 += dxh;
            s2 += dxh * xh;
            dg[c] += dr[c] * xh;
            db[c] += dr[c];
        }
        s1 /= (R)C;
        s2 /= (R)C;
        if (dx) {
            R *o = dx + SZ(m) * C;
            for (int c = 0; c < C; c++) {
                R xh = (xr[c] - mu) * rs;
                o[c] += rs * (dr[c] * g[c] - s1 - xh * s2);
            }
        }
    }
}

/* ---- RMSNorm --------------------------------------------------------------------------- */
void NN_FN(cphil_nn_rmsnorm_forward)(int M, int C, const R *x, const R *g, R eps, R *y, R *rstd) {
    for (int m = 0; m < M; m++) {
        const R *xr = x + SZ(m) * C;
        R *yr = y + SZ(m) * C;
        R ss = 0;
        for (int c = 0; c < C; c++) ss += xr[c] * xr[c];
        R rs = (R)1 / SQRT(ss / (R)C + eps);
        for (int c = 0; c < C; c++) yr[c] = xr[c] * rs * g[c];
        rstd[m] = rs;
    }
}

void NN_FN(cphil_nn_rmsnorm_backward)(int M, int C, const R *x, const R *g, const R *rstd,
                                      const R *dy, R *dx, R *dg) {
    /* y = x rs g, rs = (mean x^2 + eps)^-1/2: dx = rs (dy g - x rs^2 mean(dy g x)) */
    for (int m = 0; m < M; m++) {
        const R *xr = x + SZ(m) * C, *dr = dy + SZ(m) * C;
        R rs = rstd[m], s = 0;
        for (int c = 0; c < C; c++) {
            s += dr[c] * g[c] * xr[c];
            dg[c] += dr[c] * xr[c] * rs;
        }
        s /= (R)C;
        if (dx) {
            R *o = dx + SZ(m) * C;
            for (int c = 0; c < C; c++) o[c] += rs * (dr[c] * g[c] - xr[c] * rs * rs * s);
        }
    }
}

/* ---- LSTM ------------------------------------------------------------------------------ */
/* One row's cell (gate pre-activations in, activations out in place). Separate functions with
 * restrict parameters: the rows never overlap, and this is what lets the compiler vectorize. */
__attribute__((noinline)) static void NN_FN(lstm_cell_fwd)(int H, R *restrict gi, R *restrict gf,
                                                           R *restrict gg, R *restrict go,
                                                           const R *restrict cp, R *restrict cr,
                                                           R *restrict yr) {
    for (int j = 0; j < H; j++) {
        R i = NN_FN(sigm)(gi[j]), f = NN_FN(sigm)(gf[j]), g = TANH(gg[j]), o = NN_FN(sigm)(go[j]);
        gi[j] = i;
        gf[j] = f;
        gg[j] = g;
        go[j] = o;
        R c = f * cp[j] + i * g;
        cr[j] = c;
        yr[j] = o * TANH(c);
    }
}

/* dh (carried) + dy -> gate gradients; dc carried through the forget gate. */
__attribute__((noinline)) static void NN_FN(lstm_cell_bwd)(int H, const R *restrict gi, const R *restrict gf,
                                                           const R *restrict gg, const R *restrict go,
                                                           const R *restrict cr, const R *restrict cp,
                                                           const R *restrict dyr, R *restrict di,
                                                           R *restrict df, R *restrict dg, R *restrict dO,
                                                           const R *restrict dhr, R *restrict dcr) {
    for (int j = 0; j < H; j++) {
        R i = gi[j], f = gf[j], g = gg[j], o = go[j];
        R tc = TANH(cr[j]);
        R dhv = dyr[j] + dhr[j];
        R dcv = dcr[j] + dhv * o * ((R)1 - tc * tc);
        di[j] = dcv * g * i * ((R)1 - i);
        df[j] = dcv * cp[j] * f * ((R)1 - f);
        dg[j] = dcv * i * ((R)1 - g * g);
        dO[j] = dhv * tc * o * ((R)1 - o);
        dcr[j] = dcv * f;
    }
}

void NN_FN(cphil_nn_lstm_forward)(cphil_precision prec, int B, int T, int In, int H, const R *x,
                                  const R *Wih, const R *Whh, const R *bih, const R *bhh,
                                  const R *h0, const R *c0, R *y, R *gates, R *cs, R *hprev,
                                  R *cprev0) {
    const int G = 4 * H;
    /* gates[B*T, 4H] = x Wih^T + bih + bhh, all steps at once */
    NN_FN(cphil_nn_linear_forward)(prec, B * T, G, In, x, In, Wih, bih, gates, G);
    for (int m = 0; m < B * T; m++) {
        R *r = gates + SZ(m) * G;
        for (int j = 0; j < G; j++) r[j] += bhh[j];
    }
    for (int b = 0; b < B; b++) {
        for (int j = 0; j < H; j++) {
            hprev[SZ(b) * T * H + j] = h0 ? h0[SZ(b) * H + j] : 0;
            cprev0[SZ(b) * H + j] = c0 ? c0[SZ(b) * H + j] : 0;
        }
    }
    for (int t = 0; t < T; t++) {
        if (t > 0)
            for (int b = 0; b < B; b++)
                memcpy(hprev + (SZ(b) * T + t) * H, y + (SZ(b) * T + t - 1) * H, SZ(H) * sizeof(R));
        /* gates[:, t] += h_{t-1} Whh^T  (rows strided by T) */
        GEMM(prec, false, true, B, G, H, 1, hprev + SZ(t) * H, T * H, Whh, H, 1, gates + SZ(t) * G,
             T * G);
        for (int b = 0; b < B; b++) {
            size_t row = SZ(b) * T + t;
            R *gi = gates + row * G;
            NN_FN(lstm_cell_fwd)(H, gi, gi + H, gi + 2 * H, gi + 3 * H,
                                 t > 0 ? cs + (row - 1) * H : cprev0 + SZ(b) * H, cs + row * H, y + row * H);
        }
    }
}

void NN_FN(cphil_nn_lstm_backward)(cphil_precision prec, int B, int T, int In, int H, const R *x,
                                   const R *Wih, const R *Whh, const R *gates, const R *cs,
                                   const R *hprev, const R *cprev0, const R *dy, R *dx, R *dWih,
                                   R *dWhh, R *dbih, R *dbhh, R *dG, R *dh, R *dc) {
    const int G = 4 * H;
    memset(dh, 0, SZ(B) * H * sizeof(R));
    memset(dc, 0, SZ(B) * H * sizeof(R));
    for (int t = T - 1; t >= 0; t--) {
        for (int b = 0; b < B; b++) {
            size_t row = SZ(b) * T + t;
            const R *gi = gates + row * G;
            R *di = dG + row * G;
            NN_FN(lstm_cell_bwd)(H, gi, gi + H, gi + 2 * H, gi + 3 * H, cs + row * H,
                                 t > 0 ? cs + (row - 1) * H : cprev0 + SZ(b) * H, dy + row * H, di, di + H,
                                 di + 2 * H, di + 3 * H, dh + SZ(b) * H, dc + SZ(b) * H);
        }
        /* dh = dG[:, t] Whh  ([B, 4H] x [4H, H]) */
        GEMM(prec, false, false, B, H, G, 1, dG + SZ(t) * G, T * G, Whh, H, 0, dh, H);
    }
    const int M = B * T;
    NN_FN(cphil_nn_linear_backward)(prec, M, G, In, x, In, Wih, dG, G, dx, In, dWih, dbih);
    GEMM(prec, true, false, G, H, M, 1, dG, G, hprev, H, 1, dWhh, H); /* dWhh += dG^T h_{t-1} */
    NN_FN(colsum_add)(M, G, dG, G, dbhh);
}

/* ---- GRU ------------------------------------------------------------------------------- */
void NN_FN(cphil_nn_gru_forward)(cphil_precision prec, int B, int T, int In, int H, const R *x,
                                 const R *Wih, const R *Whh, const R *bih, const R *bhh,
                                 const R *h0, R *y, R *gates, R *gh, R *hprev) {
    const int G = 3 * H;
    NN_FN(cphil_nn_linear_forward)(prec, B * T, G, In, x, In, Wih, bih, gates, G); /* gi */
    for (int b = 0; b < B; b++)
        for (int j = 0; j < H; j++) hprev[SZ(b) * T * H + j] = h0 ? h0[SZ(b) * H + j] : 0;
    for (int t = 0; t < T; t++) {
        if (t > 0)
            for (int b = 0; b < B; b++)
                memcpy(hprev + (SZ(b) * T + t) * H, y + (SZ(b) * T + t - 1) * H, SZ(H) * sizeof(R));
        GEMM(prec, false, true, B, G, H, 1, hprev + SZ(t) * H, T * H, Whh, H, 0, gh + SZ(t) * G, T * G);
        for (int b = 0; b < B; b++) {
            size_t row = SZ(b) * T + t;
            R *restrict gr = gates + row * G, *restrict gz = gr + H, *restrict gn = gr + 2 * H,
                        *restrict ghr = gh + row * G, *restrict yr = y + row * H;
            const R *restrict hp = hprev + row * H, *restrict ghz = ghr + H, *restrict ghn = ghr + 2 * H;
            for (int j = 0; j < G; j++) ghr[j] += bhh[j];
            for (int j = 0; j < H; j++) {
                R r = NN_FN(sigm)(gr[j] + ghr[j]), z = NN_FN(sigm)(gz[j] + ghz[j]);
                R n = TANH(gn[j] + r * ghn[j]);
                gr[j] = r;
                gz[j] = z;
                gn[j] = n;
                yr[j] = ((R)1 - z) * n + z * hp[j];
            }
        }
    }
}

void NN_FN(cphil_nn_gru_backward)(cphil_precision prec, int B, int T, int In, int H, const R *x,
                                  const R *Wih, const R *Whh, const R *gates, const R *gh,
                                  const R *hprev, const R *dy, R *dx, R *dWih, R *dWhh, R *dbih,
                                  R *dbhh, R *dGi, R *dGh, R *dh) {
    const int G = 3 * H;
    memset(dh, 0, SZ(B) * H * sizeof(R));
    for (int t = T - 1; t >= 0; t--) {
        for (int b = 0; b < B; b++) {
            size_t row = SZ(b) * T + t;
            const R *restrict gr = gates + row * G, *restrict gz = gr + H, *restrict gn = gr + 2 * H,
                    *restrict ghn = gh + row * G + 2 * H, *restrict hp = hprev + row * H,
                    *restrict dyr = dy + row * H;
            R *restrict di = dGi + row * G, *restrict diz = di + H, *restrict din = di + 2 * H,
              *restrict dhh = dGh + row * G, *restrict dhz = dhh + H, *restrict dhn = dhh + 2 * H,
              *restrict dhr = dh + SZ(b) * H;
            for (int j = 0; j < H; j++) {
                R r = gr[j], z = gz[j], n = gn[j];
                R dhv = dyr[j] + dhr[j];
                R dan = dhv * ((R)1 - z) * ((R)1 - n * n);
                R daz = dhv * (hp[j] - n) * z * ((R)1 - z);
                R dar = dan * ghn[j] * r * ((R)1 - r);
                di[j] = dar;
                diz[j] = daz;
                din[j] = dan;
                dhh[j] = dar;
                dhz[j] = daz;
                dhn[j] = dan * r;
                dhr[j] = dhv * z; /* direct path; the Whh path is added below */
            }
        }
        GEMM(prec, false, false, B, H, G, 1, dGh + SZ(t) * G, T * G, Whh, H, 1, dh, H);
    }
    const int M = B * T;
    NN_FN(cphil_nn_linear_backward)(prec, M, G, In, x, In, Wih, dGi, G, dx, In, dWih, dbih);
    GEMM(prec, true, false, G, H, M, 1, dGh, G, hprev, H, 1, dWhh, H);
    NN_FN(colsum_add)(M, G, dGh, G, dbhh);
}

/* ---- Mamba mixer ----------------------------------------------------------------------- */
/* One state index n of one reverse step, over the channels c (see the caller). */
__attribute__((noinline)) static void NN_FN(mamba_rev)(int I, R bn, R cn, R *restrict carry, const R *restrict dy,
                                                       const R *restrict hp, const R *restrict dA,
                                                       const R *restrict A, const R *restrict dt,
                                                       const R *restrict xa, R *restrict ddt, R *restrict dAl,
                                                       R *restrict dxa, R *restrict gh) {
    for (int c = 0; c < I; c++) {
        R gv = carry[c] + dy[c] * cn;
        R t1 = gv * hp[c] * dA[c]; /* d/d(dt A) of the decay term */
        ddt[c] += t1 * A[c] + gv * bn * xa[c];
        dAl[c] += t1 * dt[c] * A[c]; /* dA/dA_log = A */
        dxa[c] += gv * dt[c] * bn;
        carry[c] = gv * dA[c];
        gh[c] = gv;
    }
}

/* At[n, c] = -exp(A_log[c, n]) */
static void NN_FN(mamba_At)(int I, int N, const R *A_log, R *At) {
    for (int c = 0; c < I; c++)
        for (int n = 0; n < N; n++) At[SZ(n) * I + c] = -EXP(A_log[SZ(c) * N + n]);
}

/* The scans' work for cphil_parallel: part k of n takes batch rows [B k / n, B (k+1) / n) and
 * slice k of the per-thread scratch (h, hs, dAs, gtmp). */
typedef struct NN_FN(mamba_scan_job) {
    int B, T, I, Rk, N;
    const NN_FN(cphil_mamba_params) *p;
    const NN_FN(cphil_mamba_saved) *s;
    NN_FN(cphil_mamba_scratch) *w; /* the backward reads dL/dy from w->dy [B, T, I] */
} NN_FN(mamba_scan_job);

/* Forward scan of rows; state and A kept transposed, [N, I], so the inner loops run over
 * channels (contiguous, no reduction: they vectorize). */
static void NN_FN(mamba_scan_forward_part)(void *ctx, int part, int parts) {
    const NN_FN(mamba_scan_job) *j = ctx;
    const int T = j->T, I = j->I, N = j->N, Rk = j->Rk, XD = Rk + 2 * N;
    const NN_FN(cphil_mamba_saved) *s = j->s;
    R *hb = j->w->h + SZ(part) * I * N;
    for (int b = j->B * part / parts; b < j->B * (part + 1) / parts; b++) {
        memset(hb, 0, SZ(I) * N * sizeof(R));
        for (int t = 0; t < T; t++) {
            size_t row = SZ(b) * T + t;
            const R *Bm = s->xdbl + row * XD + Rk, *Cm = Bm + N;
            const R *restrict dt = s->dt + row * I, *restrict xa = s->xa + row * I, *restrict D = j->p->D;
            R *restrict y = s->y + row * I;
            for (int c = 0; c < I; c++) y[c] = D[c] * xa[c];
            for (int n = 0; n < N; n++) {
                R *restrict h = hb + SZ(n) * I;
                const R *restrict A = j->w->A + SZ(n) * I;
                const R bn = Bm[n], cn = Cm[n];
                for (int c = 0; c < I; c++) {
                    h[c] = EXP(dt[c] * A[c]) * h[c] + dt[c] * xa[c] * bn;
                    y[c] += cn * h[c];
                }
            }
        }
    }
}

/* Backward scan of rows: recompute one row's states, then reverse time. Writes the rows' dxa,
 * ddt, dB and dC (their own rows) and the rows' partial dA_log and dD (dAl_b, dD_b). */
static void NN_FN(mamba_scan_backward_part)(void *ctx, int part, int parts) {
    const NN_FN(mamba_scan_job) *j = ctx;
    const int T = j->T, I = j->I, N = j->N, Rk = j->Rk, XD = Rk + 2 * N;
    const NN_FN(cphil_mamba_saved) *s = j->s;
    NN_FN(cphil_mamba_scratch) *w = j->w;
    R *hsb = w->hs + SZ(part) * T * I * N, *dAsb = w->dAs + SZ(part) * T * I * N,
      *carryb = w->h + SZ(part) * I * N, *gh = w->gtmp + SZ(part) * I;
    for (int b = j->B * part / parts; b < j->B * (part + 1) / parts; b++) {
        R *dAlb = w->dAl_b + SZ(b) * N * I, *dDb = w->dD_b + SZ(b) * I;
        memset(dAlb, 0, SZ(N) * I * sizeof(R));
        memset(dDb, 0, SZ(I) * sizeof(R));
        /* recompute the states hs[t] and decays dAs[t] = exp(dt A) of this row, all [N, I] */
        for (int t = 0; t < T; t++) {
            size_t row = SZ(b) * T + t;
            const R *Bm = s->xdbl + row * XD + Rk;
            const R *restrict dt = s->dt + row * I, *restrict xa = s->xa + row * I;
            for (int n = 0; n < N; n++) {
                R *restrict hs = hsb + (SZ(t) * N + n) * I, *restrict dA = dAsb + (SZ(t) * N + n) * I;
                const R *restrict hp = t > 0 ? hs - SZ(N) * I : NULL, *restrict A = w->A + SZ(n) * I;
                const R bn = Bm[n];
                if (hp)
                    for (int c = 0; c < I; c++) {
                        dA[c] = EXP(dt[c] * A[c]);
                        hs[c] = dA[c] * hp[c] + dt[c] * xa[c] * bn;
                    }
                else
                    for (int c = 0; c < I; c++) {
                        dA[c] = EXP(dt[c] * A[c]);
                        hs[c] = dt[c] * xa[c] * bn;
                    }
            }
        }
        /* reverse time; carry[n, c] = dL/dh_t flowing back from step t+1 */
        memset(carryb, 0, SZ(I) * N * sizeof(R));
        for (int t = T - 1; t >= 0; t--) {
            size_t row = SZ(b) * T + t;
            const R *Bm = s->xdbl + row * XD + Rk, *Cm = Bm + N;
            const R *restrict dt = s->dt + row * I, *restrict xa = s->xa + row * I, *restrict dy = w->dy + row * I;
            R *dB = w->dxdbl + row * XD + Rk, *dC = dB + N;
            R *restrict dxa = w->dxa + row * I, *restrict ddt = w->ddt + row * I;
            for (int n = 0; n < N; n++) {
                const R *restrict hs = hsb + (SZ(t) * N + n) * I, *restrict dA = dAsb + (SZ(t) * N + n) * I;
                const R *restrict hp = t > 0 ? hs - SZ(N) * I : w->zeros, *restrict A = w->A + SZ(n) * I;
                R *restrict carry = carryb + SZ(n) * I, *restrict dAl = dAlb + SZ(n) * I;
                const R bn = Bm[n], cn = Cm[n];
                NN_FN(mamba_rev)(I, bn, cn, carry, dy, hp, dA, A, dt, xa, ddt, dAl, dxa, gh);
                /* dC[t, n] = sum_c dy h; dB[t, n] = sum_c g dt xa (16 partial sums: vectorizable) */
                R pc[16] = {0}, pb[16] = {0};
                int c = 0;
                for (; c + 16 <= I; c += 16)
                    for (int l = 0; l < 16; l++) {
                        pc[l] += dy[c + l] * hs[c + l];
                        pb[l] += gh[c + l] * dt[c + l] * xa[c + l];
                    }
                for (; c < I; c++) {
                    pc[0] += dy[c] * hs[c];
                    pb[0] += gh[c] * dt[c] * xa[c];
                }
                R sc = 0, sb = 0;
                for (int l = 0; l < 16; l++) {
                    sc += pc[l];
                    sb += pb[l];
                }
                dC[n] += sc;
                dB[n] += sb;
            }
            for (int c = 0; c < I; c++) {
                dDb[c] += dy[c] * xa[c];
                dxa[c] += dy[c] * j->p->D[c];
            }
        }
    }
}

/* How many parts the scans split the batch into: one per scratch slice, at most one per row. */
static int NN_FN(mamba_scan_parts)(const NN_FN(cphil_mamba_scratch) *w, int B) {
    return w->nthr > 1 ? CPHIL_MIN(w->nthr, B) : 1;
}

void NN_FN(cphil_nn_mamba_forward)(cphil_precision prec, int B, int T, int H, int I, int Rk,
                                   int N, int K, const R *u, const NN_FN(cphil_mamba_params) *p,
                                   NN_FN(cphil_mamba_saved) *s, NN_FN(cphil_mamba_scratch) *w,
                                   R *out) {
    const int M = B * T, XD = Rk + 2 * N;
    /* xz [M, 2I] = u Win^T */
    NN_FN(cphil_nn_linear_forward)(prec, M, 2 * I, H, u, H, p->Win, NULL, s->xz, 2 * I);
    /* causal depthwise conv over time on xs = xz[:, :I]; xc = conv + bias; xa = silu(xc) */
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            size_t row = SZ(b) * T + t;
            R *xc = s->xc + row * I, *xa = s->xa + row * I;
            for (int c = 0; c < I; c++) xc[c] = p->conv_b[c];
            for (int k = 0; k < K; k++) {
                int tt = t - (K - 1) + k;
                if (tt < 0) continue;
                const R *xs = s->xz + (SZ(b) * T + tt) * 2 * I;
                for (int c = 0; c < I; c++) xc[c] += p->conv_w[SZ(c) * K + k] * xs[c];
            }
            for (int c = 0; c < I; c++) xa[c] = NN_FN(silu)(xc[c]);
        }
    /* xdbl [M, R+2N] = xa Wx^T; dt = softplus(dtr Wdt^T + bdt) */
    NN_FN(cphil_nn_linear_forward)(prec, M, XD, I, s->xa, I, p->Wx, NULL, s->xdbl, XD);
    NN_FN(cphil_nn_linear_forward)(prec, M, I, Rk, s->xdbl, XD, p->Wdt, p->bdt, s->dtp, I);
    for (size_t q = 0; q < SZ(M) * I; q++) s->dt[q] = NN_FN(softplus)(s->dtp[q]);
    /* selective scan, batch rows on parallel threads */
    NN_FN(mamba_At)(I, N, p->A_log, w->A);
    NN_FN(mamba_scan_job) job = {B, T, I, Rk, N, p, s, w};
    cphil_parallel(NN_FN(mamba_scan_parts)(w, B), NN_FN(mamba_scan_forward_part), &job);
    /* g = y * silu(z); out = g Wout^T */
    for (int m = 0; m < M; m++) {
        const R *z = s->xz + SZ(m) * 2 * I + I, *y = s->y + SZ(m) * I;
        R *g = s->g + SZ(m) * I;
        for (int c = 0; c < I; c++) g[c] = y[c] * NN_FN(silu)(z[c]);
    }
    NN_FN(cphil_nn_linear_forward)(prec, M, H, I, s->g, I, p->Wout, NULL, out, H);
}

void NN_FN(cphil_nn_mamba_backward)(cphil_precision prec, int B, int T, int H, int I, int Rk,
                                    int N, int K, const R *u, const NN_FN(cphil_mamba_params) *p,
                                    const NN_FN(cphil_mamba_saved) *s,
                                    NN_FN(cphil_mamba_scratch) *w, const R *dout, R *du,
                                    const NN_FN(cphil_mamba_grads) *g) {
    const int M = B * T, XD = Rk + 2 * N;
    const size_t MI = SZ(M) * I;
    /* out = g Wout^T */
    memset(w->dg, 0, MI * sizeof(R));
    NN_FN(cphil_nn_linear_backward)(prec, M, H, I, s->g, I, p->Wout, dout, H, w->dg, I, g->Wout, NULL);
    /* g = y * silu(z): dy = dg silu(z); dz = dg y silu'(z) */
    memset(w->dxz, 0, MI * 2 * sizeof(R));
    for (int m = 0; m < M; m++) {
        const R *z = s->xz + SZ(m) * 2 * I + I, *y = s->y + SZ(m) * I, *dg = w->dg + SZ(m) * I;
        R *dy = w->dy + SZ(m) * I, *dz = w->dxz + SZ(m) * 2 * I + I;
        for (int c = 0; c < I; c++) {
            dy[c] = dg[c] * NN_FN(silu)(z[c]);
            dz[c] = dg[c] * y[c] * NN_FN(dsilu)(z[c]);
        }
    }
    /* selective scan backward, batch rows on parallel threads; then the rows' partial dA_log
     * and dD summed in row order (the same bits for any thread count) */
    memset(w->dxa, 0, MI * sizeof(R));
    memset(w->ddt, 0, MI * sizeof(R));
    memset(w->dxdbl, 0, SZ(M) * XD * sizeof(R));
    NN_FN(mamba_At)(I, N, p->A_log, w->A);
    NN_FN(mamba_scan_job) job = {B, T, I, Rk, N, p, s, w};
    cphil_parallel(NN_FN(mamba_scan_parts)(w, B), NN_FN(mamba_scan_backward_part), &job);
    memset(w->dAl, 0, SZ(I) * N * sizeof(R));
    for (int b = 0; b < B; b++) {
        const R *restrict dAlb = w->dAl_b + SZ(b) * N * I, *restrict dDb = w->dD_b + SZ(b) * I;
        for (size_t q = 0; q < SZ(N) * I; q++) w->dAl[q] += dAlb[q];
        for (int c = 0; c < I; c++) g->D[c] += dDb[c];
    }
    for (int c = 0; c < I; c++) /* A_log's gradient back to [I, N] */
        for (int n = 0; n < N; n++) g->A_log[SZ(c) * N + n] += w->dAl[SZ(n) * I + c];
    /* dt = softplus(dtp); dtp = dtr Wdt^T + bdt (dtr = xdbl[:, :R]) */
    for (size_t q = 0; q < MI; q++) w->ddt[q] *= s->dtp[q] > (R)20 ? (R)1 : NN_FN(sigm)(s->dtp[q]);
    NN_FN(cphil_nn_linear_backward)(prec, M, I, Rk, s->xdbl, XD, p->Wdt, w->ddt, I, w->dxdbl, XD,
                                    g->Wdt, g->bdt);
    /* xdbl = xa Wx^T */
    NN_FN(cphil_nn_linear_backward)(prec, M, XD, I, s->xa, I, p->Wx, w->dxdbl, XD, w->dxa, I, g->Wx,
                                    NULL);
    /* xa = silu(xc) */
    for (size_t q = 0; q < MI; q++) w->dxc[q] = w->dxa[q] * NN_FN(dsilu)(s->xc[q]);
    /* conv: xc[t] = bias + sum_k w[k] xs[t-(K-1)+k] */
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            size_t row = SZ(b) * T + t;
            const R *dxc = w->dxc + row * I;
            for (int c = 0; c < I; c++) g->conv_b[c] += dxc[c];
            for (int k = 0; k < K; k++) {
                int tt = t - (K - 1) + k;
                if (tt < 0) continue;
                size_t r2 = SZ(b) * T + tt;
                const R *xs = s->xz + r2 * 2 * I;
                R *dxs = w->dxz + r2 * 2 * I;
                for (int c = 0; c < I; c++) {
                    g->conv_w[SZ(c) * K + k] += dxc[c] * xs[c];
                    dxs[c] += p->conv_w[SZ(c) * K + k] * dxc[c];
                }
            }
        }
    /* xz = u Win^T */
    NN_FN(cphil_nn_linear_backward)(prec, M, 2 * I, H, u, H, p->Win, w->dxz, 2 * I, du, H, g->Win,
                                    NULL);
}

/* ---- attention ------------------------------------------------------------------------- */
void NN_FN(cphil_nn_rope_table)(int T, int hd, R *rope) {
    const int h2 = hd / 2;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < h2; i++) {
            R inv = (R)POW((R)10000, -(R)(2 * i) / (R)hd);
            R a = (R)t * inv;
            rope[SZ(t) * hd + i] = COS(a);
            rope[SZ(t) * hd + h2 + i] = SIN(a);
        }
}

/* Rotate (dir +1) or un-rotate (dir -1, the transpose) the q and k parts of one row. */
static void NN_FN(rope_row)(R *row, int H, int nh, int hd, const R *cs, int dir) {
    const int h2 = hd / 2;
    for (int part = 0; part < 2; part++)
        for (int h = 0; h < nh; h++) {
            R *v = row + SZ(part) * H + SZ(h) * hd;
            for (int i = 0; i < h2; i++) {
                R c = cs[i], sn = dir * cs[h2 + i];
                R x1 = v[i], x2 = v[h2 + i];
                v[i] = x1 * c - x2 * sn;
                v[h2 + i] = x2 * c + x1 * sn;
            }
        }
}

void NN_FN(cphil_nn_attention_forward)(cphil_precision prec, int B, int T, int H, int nh,
                                       const R *u, const R *Wqkv, const R *bqkv, const R *Wo,
                                       const R *bo, const R *rope, R *qkv, R *P, R *att, R *out) {
    const int hd = H / nh, H3 = 3 * H;
    const R scale = (R)1 / SQRT((R)hd);
    NN_FN(cphil_nn_linear_forward)(prec, B * T, H3, H, u, H, Wqkv, bqkv, qkv, H3);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) NN_FN(rope_row)(qkv + (SZ(b) * T + t) * H3, H, nh, hd, rope + SZ(t) * hd, 1);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < nh; h++) {
            const R *q = qkv + SZ(b) * T * H3 + SZ(h) * hd, *k = q + H, *v = q + 2 * H;
            R *S = P + (SZ(b) * nh + h) * T * T;
            /* S[T, T] = scale q k^T; causal softmax per row */
            GEMM(prec, false, true, T, T, hd, scale, q, H3, k, H3, 0, S, T);
            for (int i = 0; i < T; i++) {
                R *sr = S + SZ(i) * T, mx = sr[0], sum = 0;
                for (int j = 1; j <= i; j++) mx = sr[j] > mx ? sr[j] : mx;
                for (int j = 0; j <= i; j++) {
                    sr[j] = EXP(sr[j] - mx);
                    sum += sr[j];
                }
                for (int j = 0; j <= i; j++) sr[j] /= sum;
                for (int j = i + 1; j < T; j++) sr[j] = 0;
            }
            /* att_h[T, hd] = P v_h */
            GEMM(prec, false, false, T, hd, T, 1, S, T, v, H3, 0, att + SZ(b) * T * H + SZ(h) * hd, H);
        }
    NN_FN(cphil_nn_linear_forward)(prec, B * T, H, H, att, H, Wo, bo, out, H);
}

void NN_FN(cphil_nn_attention_backward)(cphil_precision prec, int B, int T, int H, int nh,
                                        const R *u, const R *Wqkv, const R *Wo, const R *rope,
                                        const R *qkv, const R *P, const R *att, const R *dout,
                                        R *du, R *dWqkv, R *dbqkv, R *dWo, R *dbo, R *datt,
                                        R *dqkv, R *dP) {
    const int hd = H / nh, H3 = 3 * H;
    const R scale = (R)1 / SQRT((R)hd);
    memset(datt, 0, SZ(B) * T * H * sizeof(R));
    NN_FN(cphil_nn_linear_backward)(prec, B * T, H, H, att, H, Wo, dout, H, datt, H, dWo, dbo);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < nh; h++) {
            size_t off = SZ(b) * T * H3 + SZ(h) * hd;
            const R *q = qkv + off, *k = q + H, *v = q + 2 * H;
            R *dq = dqkv + off, *dk = dq + H, *dv = dq + 2 * H;
            const R *S = P + (SZ(b) * nh + h) * T * T, *da = datt + SZ(b) * T * H + SZ(h) * hd;
            /* dP = datt_h v_h^T; dv_h = P^T datt_h */
            GEMM(prec, false, true, T, T, hd, 1, da, H, v, H3, 0, dP, T);
            GEMM(prec, true, false, T, hd, T, 1, S, T, da, H, 0, dv, H3);
            /* dS = P (dP - rowsum(dP P)), times the scale */
            for (int i = 0; i < T; i++) {
                const R *pr = S + SZ(i) * T;
                R *dr = dP + SZ(i) * T, dot = 0;
                for (int j = 0; j <= i; j++) dot += dr[j] * pr[j];
                for (int j = 0; j <= i; j++) dr[j] = pr[j] * (dr[j] - dot) * scale;
                for (int j = i + 1; j < T; j++) dr[j] = 0;
            }
            /* dq = dS k; dk = dS^T q */
            GEMM(prec, false, false, T, hd, T, 1, dP, T, k, H3, 0, dq, H3);
            GEMM(prec, true, false, T, hd, T, 1, dP, T, q, H3, 0, dk, H3);
        }
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) NN_FN(rope_row)(dqkv + (SZ(b) * T + t) * H3, H, nh, hd, rope + SZ(t) * hd, -1);
    NN_FN(cphil_nn_linear_backward)(prec, B * T, H3, H, u, H, Wqkv, dqkv, H3, du, H, dWqkv, dbqkv);
}

/* ---- loss ------------------------------------------------------------------------------ */
R NN_FN(cphil_nn_policy_loss)(int M, const R *logits, const uint8_t *buttons, const uint8_t *cls,
                              const float *weight, const cphil_loss_config *lc, R *dlogits,
                              cphil_loss_parts *parts) {
    double wsum = 0, total = 0, head[CPHIL_N_HEADS] = {0};
    for (int m = 0; m < M; m++) wsum += weight ? (double)weight[m] : 1.0;
    const R eps = (R)lc->label_smoothing;
    for (int m = 0; m < M; m++) {
        const R *x = logits + SZ(m) * CPHIL_N_LOGITS;
        R *d = dlogits + SZ(m) * CPHIL_N_LOGITS;
        R wm = weight ? (R)weight[m] : (R)1;
        R sc = wsum > 0 ? (R)(wm / wsum) : 0; /* d total / d frame loss */
        /* buttons: l = pw y softplus(-x) + (1 - y) softplus(x), mean over the 8 */
        R bl = 0;
        for (int j = 0; j < CPHIL_N_BUTTONS; j++) {
            R v = x[j], y = buttons[SZ(m) * CPHIL_N_BUTTONS + j] ? (R)1 : (R)0,
              pw = (R)lc->pos_weight[j];
            R spn = (v < 0 ? -v : 0) + LOG1P(EXP(-(v < 0 ? -v : v))); /* softplus(-v) */
            R spp = spn + v;                                              /* softplus(v) */
            bl += pw * y * spn + ((R)1 - y) * spp;
            R s = NN_FN(sigm)(v);
            d[j] = sc * (R)lc->button_weight * (-pw * y * ((R)1 - s) + ((R)1 - y) * s) / (R)CPHIL_N_BUTTONS;
        }
        bl /= (R)CPHIL_N_BUTTONS;
        R fl = (R)lc->button_weight * bl;
        head[0] += (double)(wm * bl);
        /* categorical heads: q = (1 - eps) onehot + eps / C; l = -sum q log_softmax */
        for (int h = 1; h < CPHIL_N_HEADS; h++) {
            int C = cphil_head_classes[h], o = cphil_head_offset[h];
            int k = cls[SZ(m) * CPHIL_N_CAT_HEADS + (h - 1)];
            CPHIL_ASSERT(k >= 0 && k < C);
            const R *xv = x + o;
            R mx = xv[0], se = 0;
            for (int c = 1; c < C; c++) mx = xv[c] > mx ? xv[c] : mx;
            for (int c = 0; c < C; c++) se += EXP(xv[c] - mx);
            R lse = mx + LOG(se), l = 0;
            for (int c = 0; c < C; c++) {
                R q = eps / (R)C + (c == k ? (R)1 - eps : (R)0);
                l -= q * (xv[c] - lse);
                d[o + c] = sc * (EXP(xv[c] - lse) - q);
            }
            fl += l;
            head[h] += (double)(wm * l);
        }
        total += (double)(wm * fl);
    }
    R loss = wsum > 0 ? (R)(total / wsum) : 0;
    if (parts) {
        parts->total = (float)loss;
        parts->weight_sum = wsum;
        for (int h = 0; h < CPHIL_N_HEADS; h++) parts->head[h] = wsum > 0 ? (float)(head[h] / wsum) : 0;
    }
    return loss;
}
