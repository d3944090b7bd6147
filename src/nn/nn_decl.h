/* nn_decl.h — declarations of the layers for one scalar type (NN_R) and name scheme (NN_FN);
 * included by nn.h once per type. No include guard on purpose. Shapes: see nn.h conventions. */

/* ---- elementwise activations ----------------------------------------------------------- */
/* y[i] = f(x[i]) for i < n (y may alias x). GELU is the erf form; softplus is PyTorch's
 * (beta 1, threshold 20: x > 20 gives x). */
void NN_FN(cphil_nn_act_forward)(cphil_act f, size_t n, const NN_R *x, NN_R *y);
/* dx[i] += dy[i] * f'(x[i]) (x is the forward input). */
void NN_FN(cphil_nn_act_backward)(cphil_act f, size_t n, const NN_R *x, const NN_R *dy, NN_R *dx);

/* ---- Linear ---------------------------------------------------------------------------- */
/* y[M, N] (row stride ldy) = x[M, K] (row stride ldx) W[N, K]^T + b[N] (b may be NULL). */
void NN_FN(cphil_nn_linear_forward)(cphil_precision prec, int M, int N, int K, const NN_R *x,
                                    int ldx, const NN_R *W, const NN_R *b, NN_R *y, int ldy);
/* dx[M, K] += dy W (dx may be NULL); dW[N, K] += dy^T x; db[N] += column sums of dy (db may be
 * NULL when the layer has no bias). */
void NN_FN(cphil_nn_linear_backward)(cphil_precision prec, int M, int N, int K, const NN_R *x,
                                     int ldx, const NN_R *W, const NN_R *dy, int lddy, NN_R *dx,
                                     int lddx, NN_R *dW, NN_R *db);

/* ---- input layer: Linear on [cont | one-hot ids] without building the one-hot -------------- */
/* y[M, H0] = b + W[:, :n_cont] cont[M, n_cont] + sum_k W[:, ids[m, k]] (W is [H0, E]);
 * exactly W @ dense + b. ids are absolute dense columns in [n_cont, E) (asserted).
 * WT [E, H0] is scratch: W transposed once per call so each gathered column is a contiguous
 * row. The gathered sums are exact in f32 (no bf16 rounding: a one-hot product is a copy). */
void NN_FN(cphil_nn_input_forward)(cphil_precision prec, int M, int H0, int E, int n_cont,
                                   int n_ids, const NN_R *cont, const int32_t *ids, const NN_R *W,
                                   const NN_R *b, NN_R *WT, NN_R *y);
/* dW[:, :n_cont] += dy^T cont; dW[:, ids] += dy (scatter-add through the scratch dWT [E, H0]);
 * db += column sums of dy. */
void NN_FN(cphil_nn_input_backward)(cphil_precision prec, int M, int H0, int E, int n_cont,
                                    int n_ids, const NN_R *cont, const int32_t *ids,
                                    const NN_R *dy, NN_R *dW, NN_R *db, NN_R *dWT);

/* ---- norms (over the last dimension C of M rows) ------------------------------------------ */
/* LayerNorm: y = (x - mean) * rstd * g + b, biased variance; saves mean[M], rstd[M]. */
void NN_FN(cphil_nn_layernorm_forward)(int M, int C, const NN_R *x, const NN_R *g, const NN_R *b,
                                       NN_R eps, NN_R *y, NN_R *mean, NN_R *rstd);
void NN_FN(cphil_nn_layernorm_backward)(int M, int C, const NN_R *x, const NN_R *g,
                                        const NN_R *mean, const NN_R *rstd, const NN_R *dy,
                                        NN_R *dx, NN_R *dg, NN_R *db);
/* RMSNorm: y = x * rstd * g, rstd = 1 / sqrt(mean(x^2) + eps); saves rstd[M]. */
void NN_FN(cphil_nn_rmsnorm_forward)(int M, int C, const NN_R *x, const NN_R *g, NN_R eps,
                                     NN_R *y, NN_R *rstd);
void NN_FN(cphil_nn_rmsnorm_backward)(int M, int C, const NN_R *x, const NN_R *g,
                                      const NN_R *rstd, const NN_R *dy, NN_R *dx, NN_R *dg);

/* ---- LSTM layer (PyTorch nn.LSTM, one layer, gate order i f g o, two biases) ----------------
 * x [B, T, In] -> y [B, T, H]. h0, c0 [B, H] or NULL (zeros).
 * Saved: gates [B, T, 4H] (activated i f g o), cs [B, T, H] (cell), hprev [B, T, H] (h_{t-1}),
 * cprev0 [B, H] (copy of c0). */
void NN_FN(cphil_nn_lstm_forward)(cphil_precision prec, int B, int T, int In, int H,
                                  const NN_R *x, const NN_R *Wih, const NN_R *Whh,
                                  const NN_R *bih, const NN_R *bhh, const NN_R *h0,
                                  const NN_R *c0, NN_R *y, NN_R *gates, NN_R *cs, NN_R *hprev,
                                  NN_R *cprev0);
/* dy [B, T, H] (may be overwritten: used as scratch). Scratch: dG [B, T, 4H], dh [B, H],
 * dc [B, H]. Adds dx (may be NULL), dWih, dWhh, dbih, dbhh. On return dh, dc hold dL/dh0,
 * dL/dc0. */
void NN_FN(cphil_nn_lstm_backward)(cphil_precision prec, int B, int T, int In, int H,
                                   const NN_R *x, const NN_R *Wih, const NN_R *Whh,
                                   const NN_R *gates, const NN_R *cs, const NN_R *hprev,
                                   const NN_R *cprev0, const NN_R *dy, NN_R *dx, NN_R *dWih,
                                   NN_R *dWhh, NN_R *dbih, NN_R *dbhh, NN_R *dG, NN_R *dh,
                                   NN_R *dc);

/* ---- GRU layer (PyTorch nn.GRU, gate order r z n, n = tanh(Wx + b_in + r*(W h + b_hn))) -----
 * x [B, T, In] -> y [B, T, H]; h0 [B, H] or NULL. Saved: gates [B, T, 3H] (r z n),
 * gh [B, T, 3H] (h_{t-1} Whh^T + bhh), hprev [B, T, H]. */
void NN_FN(cphil_nn_gru_forward)(cphil_precision prec, int B, int T, int In, int H,
                                 const NN_R *x, const NN_R *Wih, const NN_R *Whh,
                                 const NN_R *bih, const NN_R *bhh, const NN_R *h0, NN_R *y,
                                 NN_R *gates, NN_R *gh, NN_R *hprev);
/* Scratch: dGi [B, T, 3H], dGh [B, T, 3H], dh [B, H] (holds dL/dh0 on return). */
void NN_FN(cphil_nn_gru_backward)(cphil_precision prec, int B, int T, int In, int H,
                                  const NN_R *x, const NN_R *Wih, const NN_R *Whh,
                                  const NN_R *gates, const NN_R *gh, const NN_R *hprev,
                                  const NN_R *dy, NN_R *dx, NN_R *dWih, NN_R *dWhh, NN_R *dbih,
                                  NN_R *dbhh, NN_R *dGi, NN_R *dGh, NN_R *dh);

/* ---- Mamba mixer (Gu & Dao selective SSM; the reference mamba_simple.py, no biases on the
 * projections) u [B, T, H] -> out [B, T, H]:
 *   xz = u Win^T [.., 2I]; xs, z = split; xc = causal depthwise conv(xs) + conv_b; xa = silu(xc)
 *   xdbl = xa Wx^T [.., R+2N] = [dtr | Bm | Cm]; dt = softplus(dtr Wdt^T + bdt)
 *   A = -exp(A_log); h_t = exp(dt A) h_{t-1} + dt Bm_t xa_t; y = Cm_t . h_t + D xa_t
 *   out = (y * silu(z)) Wout^T. */
typedef struct NN_FN(cphil_mamba_params) {
    const NN_R *Win, *conv_w, *conv_b, *Wx, *Wdt, *bdt, *A_log, *D, *Wout;
} NN_FN(cphil_mamba_params);
typedef struct NN_FN(cphil_mamba_grads) {
    NN_R *Win, *conv_w, *conv_b, *Wx, *Wdt, *bdt, *A_log, *D, *Wout;
} NN_FN(cphil_mamba_grads);
/* Saved values of one mixer (all [B, T, .]): xz 2I, xc I, xa I, xdbl R+2N, dtp I (pre-softplus),
 * dt I, y I (SSM output incl. D), g I (gated). */
typedef struct NN_FN(cphil_mamba_saved) {
    NN_R *xz, *xc, *xa, *xdbl, *dtp, *dt, *y, *g;
} NN_FN(cphil_mamba_saved);
/* Scratch: A [I*N], h [nthr*I*N] for the forward; the backward adds hs and dAs [nthr*T*I*N]
 * (per thread: one batch row's states and decays), the gradient buffers dxz [B,T,2I], dxa, dxc,
 * dy, dg, ddt [B,T,I] each, dxdbl [B,T,R+2N], gtmp [nthr*I], dAl [I*N], zeros [I] (kept zero),
 * and per batch row the partial gradients dAl_b [B*N*I] and dD_b [B*I].
 * nthr (0 reads as 1): how many batch rows the scans may run at once on cphil_parallel's threads;
 * the results do not depend on it (each row alone, then the rows' partial sums in row order). */
typedef struct NN_FN(cphil_mamba_scratch) {
    NN_R *A, *h, *hs, *dxz, *dxa, *dxc, *dy, *dg, *ddt, *dxdbl, *dAs, *gtmp, *dAl, *zeros, *dAl_b, *dD_b;
    int nthr;
} NN_FN(cphil_mamba_scratch);
void NN_FN(cphil_nn_mamba_forward)(cphil_precision prec, int B, int T, int H, int I, int R, int N,
                                   int K, const NN_R *u, const NN_FN(cphil_mamba_params) *p,
                                   NN_FN(cphil_mamba_saved) *s, NN_FN(cphil_mamba_scratch) *w,
                                   NN_R *out);
/* du += d/du of (dout . out); parameter gradients added into g. */
void NN_FN(cphil_nn_mamba_backward)(cphil_precision prec, int B, int T, int H, int I, int R,
                                    int N, int K, const NN_R *u,
                                    const NN_FN(cphil_mamba_params) *p,
                                    const NN_FN(cphil_mamba_saved) *s,
                                    NN_FN(cphil_mamba_scratch) *w, const NN_R *dout, NN_R *du,
                                    const NN_FN(cphil_mamba_grads) *g);

/* ---- causal multi-head self-attention with rotary positions ---------------------------------
 * u [B, T, H] -> out [B, T, H]; heads nh of size hd = H/nh (even). qkv = u Wqkv^T + bqkv
 * (q | k | v, head h at columns h*hd..), RoPE (rotate-half form, base 10000, position t within
 * the sequence) on q and k, softmax(q k^T / sqrt(hd)) over keys j <= t, then att (heads
 * concatenated) Wo^T + bo.
 * Saved: qkv [B, T, 3H] (q and k after RoPE), P [B, nh, T, T] (probabilities), att [B, T, H].
 * rope [T, hd] : cos in [t, 0..hd/2), sin in [t, hd/2..hd) (filled by cphil_nn_rope_table). */
void NN_FN(cphil_nn_rope_table)(int T, int hd, NN_R *rope);
void NN_FN(cphil_nn_attention_forward)(cphil_precision prec, int B, int T, int H, int nh,
                                       const NN_R *u, const NN_R *Wqkv, const NN_R *bqkv,
                                       const NN_R *Wo, const NN_R *bo, const NN_R *rope,
                                       NN_R *qkv, NN_R *P, NN_R *att, NN_R *out);
/* Scratch: datt [B, T, H], dqkv [B, T, 3H], dP [T, T]. */
void NN_FN(cphil_nn_attention_backward)(cphil_precision prec, int B, int T, int H, int nh,
                                        const NN_R *u, const NN_R *Wqkv, const NN_R *Wo,
                                        const NN_R *rope, const NN_R *qkv, const NN_R *P,
                                        const NN_R *att, const NN_R *dout, NN_R *du,
                                        NN_R *dWqkv, NN_R *dbqkv, NN_R *dWo, NN_R *dbo,
                                        NN_R *datt, NN_R *dqkv, NN_R *dP);

/* ---- loss over every frame ------------------------------------------------------------------
 * logits [M, 81]; targets buttons [M, 8], cls [M, 5], weight [M] (NULL = all ones).
 * Returns sum_m w_m (bw * mean_j BCE(pos_weight_j) + sum of 5 CE(label smoothing)) / sum_m w_m
 * and writes dlogits [M, 81] (overwritten). parts may be NULL. */
NN_R NN_FN(cphil_nn_policy_loss)(int M, const NN_R *logits, const uint8_t *buttons,
                                 const uint8_t *cls, const float *weight,
                                 const cphil_loss_config *lc, NN_R *dlogits,
                                 cphil_loss_parts *parts);
