/* policy_gpu.c — the whole policy (input layer + backbone + six heads) forward and backward on
 * the GPU: the twin of src/model/policy_impl.h, step for step, over the SAME tensor table (every
 * parameter is found by name in cphil_model.tensors and lives at the same offset of one device
 * block, so gradients, AdamW moments and checkpoints have the CPU's layout), with the layers of
 * src/kernels/cuda/cu.h in place of src/nn/. The workspace is one device allocation planned like
 * the CPU's (same buffers, same sizes, plus what the GPU layers need for deterministic sums).
 * Everything is enqueued on the context's stream: no host synchronization, no allocation, so a
 * training step can be captured in one CUDA graph (src/gpu/train_gpu.c).
 * Not here: batches, the optimizer, checkpoints (train_gpu.c).
 */
#include "gpu/policy_gpu.h"

#include "core/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define HEADS_W 352 /* 5 x 64 + 32: the six head hidden layers side by side (policy_impl.h) */

/* Offset of a tensor by name; the table always has it for a valid config. */
CPHIL_PRINTF(2, 3) static size_t toff(const cphil_model *m, const char *fmt, ...) {
    char name[CPHIL_TENSOR_NAME_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    const cphil_tensor *t = cphil_model_find(m, name);
    CPHIL_ASSERT(t != NULL);
    return t->offset;
}

/* Two passes: count (base NULL) then assign pointers into one block (floats, 64-byte aligned). */
static size_t plan(cphil_gpu_ws *w, float *base) {
    size_t off = 0;
#define TAKE(ptr, count)                                              \
    do {                                                              \
        size_t n_ = (size_t)(count);                                  \
        (ptr) = base ? base + off : NULL;                             \
        off += (n_ + 15) & ~(size_t)15;                               \
    } while (0)
    const cphil_model_config *c = &w->cfg;
    const size_t M = (size_t)w->M, B = (size_t)w->B, T = (size_t)w->T;
    const int H0 = cphil_model_input_width(c), Hb = cphil_model_features(c), H = c->hidden, L = c->num_layers;
    TAKE(w->WT, (size_t)c->E * H0);
    TAKE(w->x0, M * H0);
    TAKE(w->dx0, M * H0);
    TAKE(w->hpre, M * HEADS_W);
    TAKE(w->hact, M * HEADS_W);
    TAKE(w->dhid, M * HEADS_W);
    TAKE(w->dhpre, M * HEADS_W);
    TAKE(w->logits, M * CPHIL_N_LOGITS);
    TAKE(w->dlogits, M * CPHIL_N_LOGITS);
    TAKE(w->dfeat, M * Hb);
    TAKE(w->hw0, (size_t)HEADS_W * Hb);
    TAKE(w->hb0, HEADS_W);
    TAKE(w->dhw0, (size_t)HEADS_W * Hb);
    TAKE(w->dhb0, HEADS_W);
    TAKE(w->id_partial, (size_t)cphil_cu_id_index_max_chunks(w->M, c->n_ids, c->E, c->n_cont) * H0);
    switch (c->backbone) {
    case CPHIL_BACKBONE_MLP: {
        int mx = 0;
        for (int i = 0; i < c->n_mlp; i++) {
            if (i > 0) TAKE(w->mz[i], M * c->mlp_hidden[i]);
            TAKE(w->ma[i], M * c->mlp_hidden[i]);
            mx = c->mlp_hidden[i] > mx ? c->mlp_hidden[i] : mx;
        }
        w->mz[0] = w->x0;
        TAKE(w->md0, M * mx);
        TAKE(w->md1, M * mx);
        w->feat = w->ma[c->n_mlp - 1];
        break;
    }
    case CPHIL_BACKBONE_LSTM:
    case CPHIL_BACKBONE_GRU: {
        const int G = c->backbone == CPHIL_BACKBONE_LSTM ? 4 : 3;
        for (int k = 0; k < L; k++) {
            TAKE(w->ry[k], M * H);
            TAKE(w->rgates[k], M * G * H);
            TAKE(w->rhprev[k], M * H);
            if (G == 4) {
                TAKE(w->rcs[k], M * H);
                TAKE(w->rc0[k], B * H);
            } else {
                TAKE(w->rgh[k], M * 3 * H);
            }
        }
        TAKE(w->rd0, M * H);
        TAKE(w->rd1, M * H);
        TAKE(w->rdG, M * G * H);
        if (G == 3) TAKE(w->rdGh, M * 3 * H);
        TAKE(w->rdh, B * H);
        TAKE(w->rdc, B * H);
        w->feat = w->ry[L - 1];
        break;
    }
    case CPHIL_BACKBONE_MAMBA:
    case CPHIL_BACKBONE_ATTENTION: {
        const bool mamba = c->backbone == CPHIL_BACKBONE_MAMBA;
        w->xs[0] = w->x0;
        for (int k = 0; k < L; k++) {
            TAKE(w->xs[k + 1], M * H);
            TAKE(w->nu[k], M * H);
            TAKE(w->nr[k], M);
            if (!mamba) TAKE(w->nm[k], M);
        }
        TAKE(w->feat, M * H);
        TAKE(w->frstd, M);
        TAKE(w->fmean, M);
        TAKE(w->tmp, M * H);
        TAKE(w->dstream, M * H);
        TAKE(w->dnu, M * H);
        TAKE(w->norm_scratch, cphil_cu_norm_scratch_floats(w->M, H));
        if (mamba) {
            const size_t I = (size_t)cphil_mamba_inner(c), N = (size_t)c->state_size,
                         XD = (size_t)cphil_mamba_dt_rank(c) + 2 * N;
            for (int k = 0; k < L; k++) {
                cphil_mamba_saved *s = &w->ms[k];
                TAKE(s->xz, M * 2 * I);
                TAKE(s->xc, M * I);
                TAKE(s->xa, M * I);
                TAKE(s->xdbl, M * XD);
                TAKE(s->dtp, M * I);
                TAKE(s->dt, M * I);
                TAKE(s->y, M * I);
                TAKE(s->g, M * I);
            }
            cphil_mamba_scratch *s = &w->mw;
            TAKE(s->A, I * N);
            TAKE(s->h, I * N);
            TAKE(s->hs, T * I * N);
            TAKE(s->dxz, M * 2 * I);
            TAKE(s->dxa, M * I);
            TAKE(s->dxc, M * I);
            TAKE(s->dy, M * I);
            TAKE(s->dg, M * I);
            TAKE(s->ddt, M * I);
            TAKE(s->dxdbl, M * XD);
            TAKE(s->dAs, T * I * N);
            TAKE(s->gtmp, I);
            TAKE(s->dAl, I * N);
            TAKE(s->zeros, I);
            TAKE(w->mextra, cphil_cu_mamba_extra_floats(w->B, w->T, (int)I, (int)N));
        } else {
            const size_t nh = (size_t)c->num_heads;
            for (int k = 0; k < L; k++) {
                TAKE(w->qkv[k], M * 3 * H);
                TAKE(w->P[k], B * nh * T * T);
                TAKE(w->att[k], M * H);
                TAKE(w->xmid[k], M * H);
                TAKE(w->ln2[k], M * H);
                TAKE(w->m2[k], M);
                TAKE(w->r2[k], M);
                TAKE(w->f1[k], M * 4 * H);
                TAKE(w->f1a[k], M * 4 * H);
            }
            TAKE(w->rope, T * (H / nh));
            TAKE(w->datt, M * H);
            TAKE(w->dqkv, M * 3 * H);
            TAKE(w->dP, B * nh * T * T);
            TAKE(w->df1, M * 4 * H);
            TAKE(w->df1a, M * 4 * H);
        }
        break;
    }
    default:
        break;
    }
#undef TAKE
    return off;
}

cphil_status cphil_gpu_ws_create(cphil_cu *cu, const cphil_model *m, int B, int T, cphil_gpu_ws **out) {
    *out = NULL;
    const cphil_model_config *c = &m->cfg;
    if (B < 1 || T < 1 || (size_t)B * (size_t)T > (size_t)1 << 30)
        return cphil_err(CPHIL_E_ARG, "GPU workspace: bad batch %d x window %d", B, T);
    if (c->num_layers > CPHIL_GPU_MAXL)
        return cphil_err(CPHIL_E_ARG, "GPU workspace: at most %d layers", CPHIL_GPU_MAXL);
    cphil_gpu_ws *w = cphil_calloc(1, sizeof *w);
    if (!w) return cphil_err(CPHIL_E_NOMEM, "GPU workspace");
    w->cu = cu;
    w->cfg = *c;
    w->B = B;
    w->T = T;
    w->M = B * T;
    w->n_floats = plan(w, NULL);
    char what[96];
    snprintf(what, sizeof what, "the training workspace (batch %d x window %d)", B, T);
    cphil_status s = cphil_cu_malloc(cu, (void **)&w->block, w->n_floats * sizeof(float), what);
    if (s) {
        cphil_free(w);
        return s;
    }
    cphil_cu_zero(cu, w->block, w->n_floats * sizeof(float));
    plan(w, w->block);
    if (!cphil_cu_ones(cu, (size_t)w->M)) { /* grown now, before any graph capture */
        cphil_gpu_ws_free(w);
        return cphil_err(CPHIL_E_NOMEM, "GPU workspace: a column of %d ones", w->M);
    }
    w->o_in_w = toff(m, "input_proj.weight");
    w->o_in_b = toff(m, "input_proj.bias");
    int col = 0;
    for (int h = 0; h < CPHIL_N_HEADS; h++) {
        const char *nm = cphil_head_names[h];
        w->o_head[h][0] = toff(m, "heads.%s.0.weight", nm);
        w->o_head[h][1] = toff(m, "heads.%s.0.bias", nm);
        w->o_head[h][2] = toff(m, "heads.%s.2.weight", nm);
        w->o_head[h][3] = toff(m, "heads.%s.2.bias", nm);
        w->head_off[h] = col;
        col += cphil_head_hidden[h];
    }
    CPHIL_ASSERT(col == HEADS_W);
    static const char *const rnn_f[] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
    static const char *const mamba_f[] = {"norm.weight", "mixer.in_proj.weight", "mixer.conv1d.weight",
                                          "mixer.conv1d.bias", "mixer.x_proj.weight", "mixer.dt_proj.weight",
                                          "mixer.dt_proj.bias", "mixer.A_log", "mixer.D", "mixer.out_proj.weight"};
    static const char *const attn_f[] = {"ln1.weight", "ln1.bias", "attn.qkv.weight", "attn.qkv.bias",
                                         "attn.out.weight", "attn.out.bias", "ln2.weight", "ln2.bias",
                                         "ffn.fc1.weight", "ffn.fc1.bias", "ffn.fc2.weight", "ffn.fc2.bias"};
    switch (c->backbone) {
    case CPHIL_BACKBONE_MLP:
        for (int i = 0; i + 1 < c->n_mlp; i++) {
            w->o_layer[i][0] = toff(m, "mlp.%d.weight", i);
            w->o_layer[i][1] = toff(m, "mlp.%d.bias", i);
        }
        break;
    case CPHIL_BACKBONE_LSTM:
    case CPHIL_BACKBONE_GRU:
        for (int k = 0; k < c->num_layers; k++)
            for (int f = 0; f < 4; f++)
                w->o_layer[k][f] =
                    toff(m, "%s.%s_l%d", c->backbone == CPHIL_BACKBONE_LSTM ? "lstm" : "gru", rnn_f[f], k);
        break;
    case CPHIL_BACKBONE_MAMBA:
        for (int k = 0; k < c->num_layers; k++)
            for (int f = 0; f < 10; f++) w->o_layer[k][f] = toff(m, "layers.%d.%s", k, mamba_f[f]);
        w->o_nf_w = toff(m, "norm_f.weight");
        break;
    case CPHIL_BACKBONE_ATTENTION:
        for (int k = 0; k < c->num_layers; k++)
            for (int f = 0; f < 12; f++) w->o_layer[k][f] = toff(m, "layers.%d.%s", k, attn_f[f]);
        w->o_nf_w = toff(m, "norm_f.weight");
        w->o_nf_b = toff(m, "norm_f.bias");
        cphil_cu_rope_table(cu, T, c->hidden / c->num_heads, w->rope);
        break;
    default:
        break;
    }
    if ((s = cphil_cu_sync(cu)) != CPHIL_OK) {
        cphil_gpu_ws_free(w);
        return s;
    }
    *out = w;
    return CPHIL_OK;
}

void cphil_gpu_ws_free(cphil_gpu_ws *w) {
    if (!w) return;
    cphil_cu_free(w->block);
    cphil_free(w);
}

size_t cphil_gpu_ws_bytes(const cphil_gpu_ws *w) { return w ? w->n_floats * sizeof(float) : 0; }

static void mamba_params_at(const cphil_gpu_ws *w, const float *P, int k, cphil_mamba_params *p) {
    const size_t *o = w->o_layer[k];
    p->Win = P + o[1];
    p->conv_w = P + o[2];
    p->conv_b = P + o[3];
    p->Wx = P + o[4];
    p->Wdt = P + o[5];
    p->bdt = P + o[6];
    p->A_log = P + o[7];
    p->D = P + o[8];
    p->Wout = P + o[9];
}

/* ---- forward ------------------------------------------------------------------------------ */
const float *cphil_gpu_ws_forward(cphil_gpu_ws *w, const float *P, const float *cont, const int32_t *ids) {
    cphil_cu *cu = w->cu;
    const cphil_model_config *c = &w->cfg;
    const cphil_precision pr = c->precision;
    const int M = w->M, B = w->B, T = w->T, H = c->hidden, L = c->num_layers, H0 = cphil_model_input_width(c),
              Hb = cphil_model_features(c);
    const size_t MH = (size_t)M * H;
    cphil_cu_input_forward(cu, pr, M, H0, c->E, c->n_cont, c->n_ids, cont, ids, P + w->o_in_w, P + w->o_in_b, w->WT,
                           w->x0);
    switch (c->backbone) {
    case CPHIL_BACKBONE_MLP:
        for (int i = 0; i < c->n_mlp; i++) {
            if (i > 0)
                cphil_cu_linear_forward(cu, pr, M, c->mlp_hidden[i], c->mlp_hidden[i - 1], w->ma[i - 1],
                                        c->mlp_hidden[i - 1], P + w->o_layer[i - 1][0], P + w->o_layer[i - 1][1],
                                        w->mz[i], c->mlp_hidden[i]);
            cphil_cu_act_forward(cu, CPHIL_ACT_RELU, (size_t)M * c->mlp_hidden[i], w->mz[i], w->ma[i]);
        }
        break;
    case CPHIL_BACKBONE_LSTM:
        for (int k = 0; k < L; k++) {
            const size_t *o = w->o_layer[k];
            float *h0 = w->carry ? w->carry + (size_t)k * 2 * B * H : NULL, *c0 = h0 ? h0 + (size_t)B * H : NULL;
            cphil_cu_lstm_forward(cu, pr, B, T, H, H, k ? w->ry[k - 1] : w->x0, P + o[0], P + o[1], P + o[2],
                                  P + o[3], h0, c0, w->ry[k], w->rgates[k], w->rcs[k], w->rhprev[k], w->rc0[k]);
            if (h0) { /* the final state becomes the next chunk's initial state */
                cphil_cu_last_step(cu, B, T, H, w->ry[k], h0);
                cphil_cu_last_step(cu, B, T, H, w->rcs[k], c0);
            }
        }
        break;
    case CPHIL_BACKBONE_GRU:
        for (int k = 0; k < L; k++) {
            const size_t *o = w->o_layer[k];
            float *h0 = w->carry ? w->carry + (size_t)k * B * H : NULL;
            cphil_cu_gru_forward(cu, pr, B, T, H, H, k ? w->ry[k - 1] : w->x0, P + o[0], P + o[1], P + o[2],
                                 P + o[3], h0, w->ry[k], w->rgates[k], w->rgh[k], w->rhprev[k]);
            if (h0) cphil_cu_last_step(cu, B, T, H, w->ry[k], h0);
        }
        break;
    case CPHIL_BACKBONE_MAMBA: {
        const int I = cphil_mamba_inner(c), Rk = cphil_mamba_dt_rank(c);
        for (int k = 0; k < L; k++) {
            cphil_mamba_params p;
            mamba_params_at(w, P, k, &p);
            cphil_cu_rmsnorm_forward(cu, M, H, w->xs[k], P + w->o_layer[k][0], 1e-5f, w->nu[k], w->nr[k]);
            cphil_cu_mamba_forward(cu, pr, B, T, H, I, Rk, c->state_size, c->conv_size, w->nu[k], &p, &w->ms[k],
                                   &w->mw, w->mextra, w->tmp);
            cphil_cu_add(cu, MH, w->xs[k], w->tmp, w->xs[k + 1]);
        }
        cphil_cu_rmsnorm_forward(cu, M, H, w->xs[L], P + w->o_nf_w, 1e-5f, w->feat, w->frstd);
        break;
    }
    case CPHIL_BACKBONE_ATTENTION:
        for (int k = 0; k < L; k++) {
            const size_t *o = w->o_layer[k];
            cphil_cu_layernorm_forward(cu, M, H, w->xs[k], P + o[0], P + o[1], 1e-5f, w->nu[k], w->nm[k], w->nr[k]);
            cphil_cu_attention_forward(cu, pr, B, T, H, c->num_heads, w->nu[k], P + o[2], P + o[3], P + o[4],
                                       P + o[5], w->rope, w->qkv[k], w->P[k], w->att[k], w->tmp);
            cphil_cu_add(cu, MH, w->xs[k], w->tmp, w->xmid[k]);
            cphil_cu_layernorm_forward(cu, M, H, w->xmid[k], P + o[6], P + o[7], 1e-5f, w->ln2[k], w->m2[k],
                                       w->r2[k]);
            cphil_cu_linear_forward(cu, pr, M, 4 * H, H, w->ln2[k], H, P + o[8], P + o[9], w->f1[k], 4 * H);
            cphil_cu_act_forward(cu, CPHIL_ACT_GELU, (size_t)M * 4 * H, w->f1[k], w->f1a[k]);
            cphil_cu_linear_forward(cu, pr, M, H, 4 * H, w->f1a[k], 4 * H, P + o[10], P + o[11], w->tmp, H);
            cphil_cu_add(cu, MH, w->xmid[k], w->tmp, w->xs[k + 1]);
        }
        cphil_cu_layernorm_forward(cu, M, H, w->xs[L], P + w->o_nf_w, P + w->o_nf_b, 1e-5f, w->feat, w->fmean,
                                   w->frstd);
        break;
    default:
        break;
    }
    /* heads: the six first layers as one [HEADS_W, Hb] product (weights stacked in scratch) */
    for (int h = 0; h < CPHIL_N_HEADS; h++) {
        const int hh = cphil_head_hidden[h], col = w->head_off[h];
        cphil_cu_copy(cu, w->hw0 + (size_t)col * Hb, P + w->o_head[h][0], (size_t)hh * Hb * sizeof(float));
        cphil_cu_copy(cu, w->hb0 + col, P + w->o_head[h][1], (size_t)hh * sizeof(float));
    }
    cphil_cu_linear_forward(cu, pr, M, HEADS_W, Hb, w->feat, Hb, w->hw0, w->hb0, w->hpre, HEADS_W);
    cphil_cu_act_forward(cu, CPHIL_ACT_RELU, (size_t)M * HEADS_W, w->hpre, w->hact);
    for (int h = 0; h < CPHIL_N_HEADS; h++) {
        const int hh = cphil_head_hidden[h], C = cphil_head_classes[h], col = w->head_off[h];
        cphil_cu_linear_forward(cu, pr, M, C, hh, w->hact + col, HEADS_W, P + w->o_head[h][2], P + w->o_head[h][3],
                                w->logits + cphil_head_offset[h], CPHIL_N_LOGITS);
    }
    return w->logits;
}

/* ---- backward ----------------------------------------------------------------------------- */
/* The tensor table is input_proj, the backbone's layers first to last (then norm_f), the heads;
 * the backward finishes them in the reverse order (as the CPU's, policy_impl.h). */
#define GRADS_READY(w, lo)                                                                         \
    do {                                                                                           \
        if ((w)->grads_ready) (w)->grads_ready((w)->grads_user, (lo));                            \
    } while (0)
void cphil_gpu_ws_backward(cphil_gpu_ws *w, const float *P, const float *cont, const cphil_cu_id_index *ix,
                        float *G) {
    cphil_cu *cu = w->cu;
    const cphil_model_config *c = &w->cfg;
    const cphil_precision pr = c->precision;
    const int M = w->M, B = w->B, T = w->T, H = c->hidden, L = c->num_layers, H0 = cphil_model_input_width(c),
              Hb = cphil_model_features(c);
    const size_t MH = (size_t)M * H, fs = sizeof(float);
    /* heads */
    cphil_cu_zero(cu, w->dhid, (size_t)M * HEADS_W * fs);
    cphil_cu_zero(cu, w->dhpre, (size_t)M * HEADS_W * fs);
    cphil_cu_zero(cu, w->dfeat, (size_t)M * Hb * fs);
    for (int h = 0; h < CPHIL_N_HEADS; h++) {
        const int hh = cphil_head_hidden[h], C = cphil_head_classes[h], col = w->head_off[h];
        cphil_cu_linear_backward(cu, pr, M, C, hh, w->hact + col, HEADS_W, P + w->o_head[h][2],
                                 w->dlogits + cphil_head_offset[h], CPHIL_N_LOGITS, w->dhid + col, HEADS_W,
                                 G + w->o_head[h][2], G + w->o_head[h][3]);
    }
    cphil_cu_act_backward(cu, CPHIL_ACT_RELU, (size_t)M * HEADS_W, w->hpre, w->dhid, w->dhpre);
    cphil_cu_zero(cu, w->dhw0, (size_t)HEADS_W * Hb * fs);
    cphil_cu_zero(cu, w->dhb0, HEADS_W * fs);
    cphil_cu_linear_backward(cu, pr, M, HEADS_W, Hb, w->feat, Hb, w->hw0, w->dhpre, HEADS_W, w->dfeat, Hb, w->dhw0,
                             w->dhb0);
    for (int h = 0; h < CPHIL_N_HEADS; h++) {
        const int hh = cphil_head_hidden[h], col = w->head_off[h];
        cphil_cu_accumulate(cu, (size_t)hh * Hb, w->dhw0 + (size_t)col * Hb, G + w->o_head[h][0]);
        cphil_cu_accumulate(cu, (size_t)hh, w->dhb0 + col, G + w->o_head[h][1]);
    }
    GRADS_READY(w, w->o_head[0][0]);
    /* backbone: ends with dx0 = dL/dx0 */
    switch (c->backbone) {
    case CPHIL_BACKBONE_MLP: {
        const float *da = w->dfeat;
        for (int i = c->n_mlp - 1; i >= 0; i--) {
            const size_t n = (size_t)M * c->mlp_hidden[i];
            float *dz = i == 0 ? w->dx0 : (da == w->md0 ? w->md1 : w->md0);
            cphil_cu_zero(cu, dz, n * fs);
            cphil_cu_act_backward(cu, CPHIL_ACT_RELU, n, w->mz[i], da, dz);
            if (i == 0) break;
            float *dprev = dz == w->md0 ? w->md1 : w->md0;
            cphil_cu_zero(cu, dprev, (size_t)M * c->mlp_hidden[i - 1] * fs);
            cphil_cu_linear_backward(cu, pr, M, c->mlp_hidden[i], c->mlp_hidden[i - 1], w->ma[i - 1],
                                     c->mlp_hidden[i - 1], P + w->o_layer[i - 1][0], dz, c->mlp_hidden[i], dprev,
                                     c->mlp_hidden[i - 1], G + w->o_layer[i - 1][0], G + w->o_layer[i - 1][1]);
            GRADS_READY(w, w->o_layer[i - 1][0]);
            da = dprev;
        }
        break;
    }
    case CPHIL_BACKBONE_LSTM:
    case CPHIL_BACKBONE_GRU: {
        const float *dy = w->dfeat;
        for (int k = L - 1; k >= 0; k--) {
            const size_t *o = w->o_layer[k];
            float *dx = k == 0 ? w->dx0 : (dy == w->rd0 ? w->rd1 : w->rd0);
            cphil_cu_zero(cu, dx, MH * fs);
            const float *x = k ? w->ry[k - 1] : w->x0;
            if (c->backbone == CPHIL_BACKBONE_LSTM)
                cphil_cu_lstm_backward(cu, pr, B, T, H, H, x, P + o[0], P + o[1], w->rgates[k], w->rcs[k],
                                       w->rhprev[k], w->rc0[k], dy, dx, G + o[0], G + o[1], G + o[2], G + o[3],
                                       w->rdG, w->rdh, w->rdc);
            else
                cphil_cu_gru_backward(cu, pr, B, T, H, H, x, P + o[0], P + o[1], w->rgates[k], w->rgh[k],
                                      w->rhprev[k], dy, dx, G + o[0], G + o[1], G + o[2], G + o[3], w->rdG, w->rdGh,
                                      w->rdh);
            GRADS_READY(w, o[0]);
            dy = dx;
        }
        break;
    }
    case CPHIL_BACKBONE_MAMBA: {
        const int I = cphil_mamba_inner(c), Rk = cphil_mamba_dt_rank(c);
        cphil_cu_zero(cu, w->dstream, MH * fs);
        cphil_cu_rmsnorm_backward(cu, M, H, w->xs[L], P + w->o_nf_w, w->frstd, w->dfeat, w->dstream, G + w->o_nf_w,
                                  w->norm_scratch);
        for (int k = L - 1; k >= 0; k--) {
            const size_t *o = w->o_layer[k];
            cphil_mamba_params p;
            mamba_params_at(w, P, k, &p);
            cphil_mamba_grads g = {G + o[1], G + o[2], G + o[3], G + o[4], G + o[5],
                                   G + o[6], G + o[7], G + o[8], G + o[9]};
            cphil_cu_zero(cu, w->dnu, MH * fs);
            cphil_cu_mamba_backward(cu, pr, B, T, H, I, Rk, c->state_size, c->conv_size, w->nu[k], &p, &w->ms[k],
                                    &w->mw, w->mextra, w->dstream, w->dnu, &g);
            cphil_cu_rmsnorm_backward(cu, M, H, w->xs[k], P + o[0], w->nr[k], w->dnu, w->dstream, G + o[0],
                                      w->norm_scratch);
            GRADS_READY(w, o[0]);
        }
        cphil_cu_copy(cu, w->dx0, w->dstream, MH * fs);
        break;
    }
    case CPHIL_BACKBONE_ATTENTION: {
        cphil_cu_zero(cu, w->dstream, MH * fs);
        cphil_cu_layernorm_backward(cu, M, H, w->xs[L], P + w->o_nf_w, w->fmean, w->frstd, w->dfeat, w->dstream,
                                    G + w->o_nf_w, G + w->o_nf_b, w->norm_scratch);
        for (int k = L - 1; k >= 0; k--) {
            const size_t *o = w->o_layer[k];
            /* ffn branch: x_{k+1} = xmid + fc2(gelu(fc1(ln2(xmid)))) */
            cphil_cu_zero(cu, w->df1a, (size_t)M * 4 * H * fs);
            cphil_cu_linear_backward(cu, pr, M, H, 4 * H, w->f1a[k], 4 * H, P + o[10], w->dstream, H, w->df1a, 4 * H,
                                     G + o[10], G + o[11]);
            cphil_cu_zero(cu, w->df1, (size_t)M * 4 * H * fs);
            cphil_cu_act_backward(cu, CPHIL_ACT_GELU, (size_t)M * 4 * H, w->f1[k], w->df1a, w->df1);
            cphil_cu_zero(cu, w->dnu, MH * fs);
            cphil_cu_linear_backward(cu, pr, M, 4 * H, H, w->ln2[k], H, P + o[8], w->df1, 4 * H, w->dnu, H, G + o[8],
                                     G + o[9]);
            cphil_cu_layernorm_backward(cu, M, H, w->xmid[k], P + o[6], w->m2[k], w->r2[k], w->dnu, w->dstream,
                                        G + o[6], G + o[7], w->norm_scratch);
            /* attention branch: xmid = x_k + attn(ln1(x_k)) */
            cphil_cu_zero(cu, w->dnu, MH * fs);
            cphil_cu_attention_backward(cu, pr, B, T, H, c->num_heads, w->nu[k], P + o[2], P + o[4], w->rope,
                                        w->qkv[k], w->P[k], w->att[k], w->dstream, w->dnu, G + o[2], G + o[3],
                                        G + o[4], G + o[5], w->datt, w->dqkv, w->dP);
            cphil_cu_layernorm_backward(cu, M, H, w->xs[k], P + o[0], w->nm[k], w->nr[k], w->dnu, w->dstream,
                                        G + o[0], G + o[1], w->norm_scratch);
            GRADS_READY(w, o[0]);
        }
        cphil_cu_copy(cu, w->dx0, w->dstream, MH * fs);
        break;
    }
    default:
        break;
    }
    cphil_cu_input_backward(cu, pr, M, H0, c->E, c->n_cont, c->n_ids, cont, ix, w->dx0, G + w->o_in_w,
                            G + w->o_in_b, w->id_partial);
    GRADS_READY(w, 0);
}
#undef GRADS_READY
