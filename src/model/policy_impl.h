/* policy_impl.h — the whole policy (input layer + backbone + six heads), forward and backward,
 * and its workspace, written once over the scalar type R and compiled by policy_f32.c (the
 * public API of model.h) and policy_f64.c (double, for gradient checks). Needs R and NN_FN from
 * the including file.
 *
 * Composition (docs/model.md has the math):
 *   mlp        x0 = input(frame); a0 = relu(x0); a_{i+1} = relu(mlp.i(a_i)); feat = a_last
 *   lstm/gru   x0 = input(frame); x_{k+1} = rnn_k(x_k) over time (zero initial state)
 *   mamba      x0 = input; x_{k+1} = x_k + mixer_k(rmsnorm_k(x_k)); feat = rmsnorm_f(x_L)
 *   attention  x0 = input; m = x_k + attn_k(ln1_k(x_k)); x_{k+1} = m + ffn_k(ln2_k(m));
 *              feat = layernorm_f(x_L)
 *   heads      logits[h] = W2_h relu(W0_h feat + b0_h) + b2_h, for every frame
 * The workspace holds every activation the backward needs, in one allocation sized for (B, T);
 * the parameter pointers come from the tensor table (looked up once, by name, at creation).
 */
#include "core/core.h"
#include "model/model.h"
#include "nn/nn.h"

#include <stdarg.h>
#include <string.h>

#define PMAXL 64
#define HEADS_W 352 /* 5 x 64 + 32: the six head hidden layers side by side */

struct NN_FN(cphil_model_ws) {
    cphil_model_config cfg;
    int B, T, M;
    int scan_threads; /* Mamba: batch rows the scans run at once (fixed at creation) */
    R *block;
    size_t n_elems;
    /* tensor offsets (floats from the block start) */
    size_t o_in_w, o_in_b, o_nf_w, o_nf_b;
    size_t o_head[CPHIL_N_HEADS][4];
    size_t o_ar[CPHIL_N_HEADS];  /* autoregressive heads: heads.<name>.ar.weight (h >= 1) */
    /* autoregressive heads: the state each frame's heads were conditioned on in the last
     * forward ([M, 6]: button mask, five classes), and the targets to condition on (teacher
     * forcing; NULL: the policy's own greedy choices) */
    uint8_t *arc;
    const uint8_t *tf_btn, *tf_cls;
    size_t o_layer[PMAXL][12];
    int head_off[CPHIL_N_HEADS]; /* column of each head's hidden layer in the HEADS_W rows */
    /* common buffers */
    R *WT, *x0, *dx0, *hpre, *hact, *dhid, *dhpre, *logits, *dlogits, *dfeat;
    R *hw0, *hb0, *dhw0, *dhb0; /* the six heads' first layers stacked: [HEADS_W, Hb], [HEADS_W] */
    R *feat; /* points at the backbone's output */
    R *carry; /* lstm/gru TBPTT: caller-owned initial state, overwritten with the final state
               * (per layer k: lstm h [B,H] then c [B,H]; gru h [B,H]); NULL = zero state */
    /* data-parallel overlap (model.h cphil_model_set_grads_hook): told when a tail of the gradient
     * block is final, so its exchange can start while the backward goes on */
    void (*grads_ready)(void *user, size_t lo);
    void *grads_user;
    /* mlp */
    R *mz[CPHIL_MAX_MLP_LAYERS], *ma[CPHIL_MAX_MLP_LAYERS], *md0, *md1;
    /* lstm / gru */
    R *ry[PMAXL], *rgates[PMAXL], *rcs[PMAXL], *rhprev[PMAXL], *rc0[PMAXL], *rgh[PMAXL];
    R *rd0, *rd1, *rdG, *rdGh, *rdh, *rdc;
    /* residual stream (mamba, attention) */
    R *xs[PMAXL + 1], *nu[PMAXL], *nr[PMAXL], *nm[PMAXL], *frstd, *fmean, *tmp, *dstream, *dnu;
    /* mamba */
    NN_FN(cphil_mamba_saved) ms[PMAXL];
    NN_FN(cphil_mamba_scratch) mw;
    /* attention */
    R *qkv[PMAXL], *P[PMAXL], *att[PMAXL], *xmid[PMAXL], *ln2[PMAXL], *m2[PMAXL], *r2[PMAXL],
        *f1[PMAXL], *f1a[PMAXL], *rope, *datt, *dqkv, *dP, *df1, *df1a;
};
typedef struct NN_FN(cphil_model_ws) NN_FN(pws);

/* Offset of a tensor by name; the table always has it for a valid config. */
CPHIL_PRINTF(2, 3) static size_t NN_FN(toff)(const cphil_model *m, const char *fmt, ...) {
    char name[CPHIL_TENSOR_NAME_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    const cphil_tensor *t = cphil_model_find(m, name);
    CPHIL_ASSERT(t != NULL);
    return t->offset;
}

/* Two passes: count (base NULL) then assign pointers into one block. */
static void NN_FN(plan)(NN_FN(pws) *w, R *base) {
    size_t off = 0;
#define TAKE(ptr, count)                                              \
    do {                                                              \
        size_t n_ = (size_t)(count);                                  \
        (ptr) = base ? base + off : NULL;                             \
        off += (n_ + 15) & ~(size_t)15;                               \
    } while (0)
    const cphil_model_config *c = &w->cfg;
    const size_t M = (size_t)w->M, B = (size_t)w->B, T = (size_t)w->T;
    const int H0 = cphil_model_input_width(c), Hb = cphil_model_features(c), H = c->hidden,
              L = c->num_layers;
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
        if (mamba) {
            const size_t I = (size_t)cphil_mamba_inner(c), N = (size_t)c->state_size,
                         XD = (size_t)cphil_mamba_dt_rank(c) + 2 * N;
            for (int k = 0; k < L; k++) {
                NN_FN(cphil_mamba_saved) *s = &w->ms[k];
                TAKE(s->xz, M * 2 * I);
                TAKE(s->xc, M * I);
                TAKE(s->xa, M * I);
                TAKE(s->xdbl, M * XD);
                TAKE(s->dtp, M * I);
                TAKE(s->dt, M * I);
                TAKE(s->y, M * I);
                TAKE(s->g, M * I);
            }
            const size_t nt = (size_t)w->scan_threads;
            NN_FN(cphil_mamba_scratch) *s = &w->mw;
            s->nthr = w->scan_threads;
            TAKE(s->A, I * N);
            TAKE(s->h, nt * I * N);
            TAKE(s->hs, nt * T * I * N);
            TAKE(s->dxz, M * 2 * I);
            TAKE(s->dxa, M * I);
            TAKE(s->dxc, M * I);
            TAKE(s->dy, M * I);
            TAKE(s->dg, M * I);
            TAKE(s->ddt, M * I);
            TAKE(s->dxdbl, M * XD);
            TAKE(s->dAs, nt * T * I * N);
            TAKE(s->gtmp, nt * I);
            TAKE(s->dAl, I * N);
            TAKE(s->zeros, I);
            TAKE(s->dAl_b, B * N * I);
            TAKE(s->dD_b, B * I);
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
            TAKE(w->dP, T * T);
            TAKE(w->df1, M * 4 * H);
            TAKE(w->df1a, M * 4 * H);
        }
        break;
    }
    default:
        break;
    }
#undef TAKE
    w->n_elems = off;
}

cphil_status NN_FN(cphil_model_ws_create)(const cphil_model *m, int B, int T, NN_FN(pws) **out) {
    *out = NULL;
    const cphil_model_config *c = &m->cfg;
    if (B < 1 || T < 1 || (size_t)B * (size_t)T > (size_t)1 << 30)
        return cphil_err(CPHIL_E_ARG, "model workspace: bad batch %d x window %d", B, T);
    if (c->num_layers > PMAXL)
        return cphil_err(CPHIL_E_ARG, "model workspace: at most %d layers", PMAXL);
    NN_FN(pws) *w = cphil_calloc(1, sizeof *w);
    if (!w) return cphil_err(CPHIL_E_NOMEM, "model workspace");
    w->cfg = *c;
    w->B = B;
    w->T = T;
    w->M = B * T;
    w->scan_threads = CPHIL_MIN(cphil_threads_get(), B); /* read once: both plan passes use it */
    NN_FN(plan)(w, NULL);
    w->block = cphil_calloc(w->n_elems ? w->n_elems : 1, sizeof(R));
    if (!w->block) {
        const size_t mb = w->n_elems * sizeof(R) >> 20; /* read before the free */
        cphil_free(w);
        return cphil_err(CPHIL_E_NOMEM, "model workspace: cannot allocate %zu MB", mb);
    }
    NN_FN(plan)(w, w->block);
    if (c->heads == CPHIL_HEADS_AUTOREGRESSIVE) {
        w->arc = cphil_calloc((size_t)w->M, CPHIL_N_HEADS);
        if (!w->arc) {
            cphil_free(w->block);
            cphil_free(w);
            return cphil_err(CPHIL_E_NOMEM, "model workspace: out of memory");
        }
        for (int h = 1; h < CPHIL_N_HEADS; h++)
            w->o_ar[h] = NN_FN(toff)(m, "heads.%s.ar.weight", cphil_head_names[h]);
    }
    /* tensor offsets */
    w->o_in_w = NN_FN(toff)(m, "input_proj.weight");
    w->o_in_b = NN_FN(toff)(m, "input_proj.bias");
    int col = 0;
    for (int h = 0; h < CPHIL_N_HEADS; h++) {
        const char *nm = cphil_head_names[h];
        w->o_head[h][0] = NN_FN(toff)(m, "heads.%s.0.weight", nm);
        w->o_head[h][1] = NN_FN(toff)(m, "heads.%s.0.bias", nm);
        w->o_head[h][2] = NN_FN(toff)(m, "heads.%s.2.weight", nm);
        w->o_head[h][3] = NN_FN(toff)(m, "heads.%s.2.bias", nm);
        w->head_off[h] = col;
        col += cphil_head_hidden[h];
    }
    CPHIL_ASSERT(col == HEADS_W);
    static const char *const lstm_f[] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
    static const char *const mamba_f[] = {"norm.weight", "mixer.in_proj.weight", "mixer.conv1d.weight",
                                          "mixer.conv1d.bias", "mixer.x_proj.weight",
                                          "mixer.dt_proj.weight", "mixer.dt_proj.bias", "mixer.A_log",
                                          "mixer.D", "mixer.out_proj.weight"};
    static const char *const attn_f[] = {"ln1.weight", "ln1.bias", "attn.qkv.weight", "attn.qkv.bias",
                                         "attn.out.weight", "attn.out.bias", "ln2.weight", "ln2.bias",
                                         "ffn.fc1.weight", "ffn.fc1.bias", "ffn.fc2.weight",
                                         "ffn.fc2.bias"};
    switch (c->backbone) {
    case CPHIL_BACKBONE_MLP:
        for (int i = 0; i + 1 < c->n_mlp; i++) {
            w->o_layer[i][0] = NN_FN(toff)(m, "mlp.%d.weight", i);
            w->o_layer[i][1] = NN_FN(toff)(m, "mlp.%d.bias", i);
        }
        break;
    case CPHIL_BACKBONE_LSTM:
    case CPHIL_BACKBONE_GRU:
        for (int k = 0; k < c->num_layers; k++)
            for (int f = 0; f < 4; f++)
                w->o_layer[k][f] = NN_FN(toff)(m, "%s.%s_l%d", c->backbone == CPHIL_BACKBONE_LSTM ? "lstm" : "gru",
                                               lstm_f[f], k);
        break;
    case CPHIL_BACKBONE_MAMBA:
        for (int k = 0; k < c->num_layers; k++)
            for (int f = 0; f < 10; f++) w->o_layer[k][f] = NN_FN(toff)(m, "layers.%d.%s", k, mamba_f[f]);
        w->o_nf_w = NN_FN(toff)(m, "norm_f.weight");
        break;
    case CPHIL_BACKBONE_ATTENTION:
        for (int k = 0; k < c->num_layers; k++)
            for (int f = 0; f < 12; f++) w->o_layer[k][f] = NN_FN(toff)(m, "layers.%d.%s", k, attn_f[f]);
        w->o_nf_w = NN_FN(toff)(m, "norm_f.weight");
        w->o_nf_b = NN_FN(toff)(m, "norm_f.bias");
        NN_FN(cphil_nn_rope_table)(T, c->hidden / c->num_heads, w->rope);
        break;
    default:
        break;
    }
    *out = w;
    return CPHIL_OK;
}

void NN_FN(cphil_model_ws_free)(NN_FN(pws) *w) {
    if (!w) return;
    cphil_free(w->block);
    cphil_free(w->arc);
    cphil_free(w);
}

size_t NN_FN(cphil_model_ws_bytes)(const NN_FN(pws) *w) { return w ? w->n_elems * sizeof(R) : 0; }

static void NN_FN(mamba_params_at)(const NN_FN(pws) *w, const R *P, int k, NN_FN(cphil_mamba_params) *p) {
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

/* ---- autoregressive heads --------------------------------------------------------------- */
/* Head h's pre-activations get the columns of A_h = heads.<name>.ar.weight [hh, offset_h] that
 * the state of heads 0..h-1 selects: column k < 8 for each pressed button k, column
 * offset_g + class for each categorical head g < h (the logit layout). */
static void NN_FN(ar_add)(const R *A, int hh, int off_h, int h, const uint8_t *state, R *pre) {
    for (int k = 0; k < CPHIL_N_BUTTONS; k++)
        if (state[0] >> k & 1)
            for (int j = 0; j < hh; j++) pre[j] += A[(size_t)j * off_h + k];
    for (int g = 1; g < h; g++) {
        const int col = cphil_head_offset[g] + state[g];
        for (int j = 0; j < hh; j++) pre[j] += A[(size_t)j * off_h + col];
    }
}

/* The heads in order: condition head h on arc[m][0..h) (teacher forcing: the targets, filled
 * up front; else the greedy choice of each head, made as soon as its logits exist), ReLU, the
 * second layer. hpre holds the conditioned pre-activations afterwards (the backward's ReLU
 * mask). */
static void NN_FN(ar_heads_forward)(NN_FN(pws) *w, const R *P) {
    const int M = w->M;
    const bool tf = w->tf_btn && w->tf_cls;
    if (tf)
        for (int m = 0; m < M; m++) {
            uint8_t *st = w->arc + (size_t)m * CPHIL_N_HEADS, bm = 0;
            for (int k = 0; k < CPHIL_N_BUTTONS; k++) bm |= (uint8_t)((w->tf_btn[(size_t)m * CPHIL_N_BUTTONS + k] != 0) << k);
            st[0] = bm;
            for (int g = 1; g < CPHIL_N_HEADS; g++) {
                uint8_t v = w->tf_cls[(size_t)m * CPHIL_N_CAT_HEADS + g - 1];
                st[g] = v < cphil_head_classes[g] ? v : (uint8_t)(cphil_head_classes[g] - 1);
            }
        }
    for (int h = 0; h < CPHIL_N_HEADS; h++) {
        const int hh = cphil_head_hidden[h], C = cphil_head_classes[h], col = w->head_off[h];
        for (int m = 0; m < M; m++) {
            R *pre = w->hpre + (size_t)m * HEADS_W + col, *act = w->hact + (size_t)m * HEADS_W + col;
            if (h > 0) NN_FN(ar_add)(P + w->o_ar[h], hh, cphil_head_offset[h], h, w->arc + (size_t)m * CPHIL_N_HEADS, pre);
            for (int j = 0; j < hh; j++) act[j] = pre[j] > 0 ? pre[j] : 0;
        }
        NN_FN(cphil_nn_linear_forward)(w->cfg.precision, M, C, hh, w->hact + col, HEADS_W, P + w->o_head[h][2],
                                       P + w->o_head[h][3], w->logits + cphil_head_offset[h], CPHIL_N_LOGITS);
        if (tf) continue;
        for (int m = 0; m < M; m++) { /* greedy: buttons at sigmoid > 0.5, argmax (first on ties) */
            const R *z = w->logits + (size_t)m * CPHIL_N_LOGITS + cphil_head_offset[h];
            uint8_t v = 0;
            if (h == 0) {
                for (int k = 0; k < CPHIL_N_BUTTONS; k++) v |= (uint8_t)((z[k] > 0) << k);
            } else {
                for (int k = 1; k < C; k++)
                    if (z[k] > z[v]) v = (uint8_t)k;
            }
            w->arc[(size_t)m * CPHIL_N_HEADS + h] = v;
        }
    }
}

/* dA_h += dpre_h (x) the one-hot state of the frame: no gradient reaches the state (targets, or
 * choices, are constants of the forward). */
static void NN_FN(ar_heads_backward)(NN_FN(pws) *w, R *G) {
    for (int h = 1; h < CPHIL_N_HEADS; h++) {
        const int hh = cphil_head_hidden[h], col = w->head_off[h], off_h = cphil_head_offset[h];
        R *dA = G + w->o_ar[h];
        for (int m = 0; m < w->M; m++) {
            const R *d = w->dhpre + (size_t)m * HEADS_W + col;
            const uint8_t *st = w->arc + (size_t)m * CPHIL_N_HEADS;
            for (int k = 0; k < CPHIL_N_BUTTONS; k++)
                if (st[0] >> k & 1)
                    for (int j = 0; j < hh; j++) dA[(size_t)j * off_h + k] += d[j];
            for (int g = 1; g < h; g++) {
                const int c2 = cphil_head_offset[g] + st[g];
                for (int j = 0; j < hh; j++) dA[(size_t)j * off_h + c2] += d[j];
            }
        }
    }
}

/* ---- forward --------------------------------------------------------------------------- */
static const R *NN_FN(policy_forward)(const NN_FN(pws) *cw, const R *P, const R *cont,
                                      const int32_t *ids) {
    NN_FN(pws) *w = (NN_FN(pws) *)cw;
    const cphil_model_config *c = &w->cfg;
    const cphil_precision pr = c->precision;
    const int M = w->M, B = w->B, T = w->T, H = c->hidden, L = c->num_layers,
              H0 = cphil_model_input_width(c), Hb = cphil_model_features(c);
    NN_FN(cphil_nn_input_forward)(pr, M, H0, c->E, c->n_cont, c->n_ids, cont, ids, P + w->o_in_w,
                                  P + w->o_in_b, w->WT, w->x0);
    switch (c->backbone) {
    case CPHIL_BACKBONE_MLP:
        for (int i = 0; i < c->n_mlp; i++) {
            if (i > 0)
                NN_FN(cphil_nn_linear_forward)(pr, M, c->mlp_hidden[i], c->mlp_hidden[i - 1], w->ma[i - 1],
                                               c->mlp_hidden[i - 1], P + w->o_layer[i - 1][0],
                                               P + w->o_layer[i - 1][1], w->mz[i], c->mlp_hidden[i]);
            NN_FN(cphil_nn_act_forward)(CPHIL_ACT_RELU, (size_t)M * c->mlp_hidden[i], w->mz[i], w->ma[i]);
        }
        break;
    case CPHIL_BACKBONE_LSTM:
        for (int k = 0; k < L; k++) {
            const size_t *o = w->o_layer[k];
            R *h0 = w->carry ? w->carry + (size_t)k * 2 * B * H : NULL, *c0 = h0 ? h0 + (size_t)B * H : NULL;
            NN_FN(cphil_nn_lstm_forward)(pr, B, T, H, H, k ? w->ry[k - 1] : w->x0, P + o[0], P + o[1],
                                         P + o[2], P + o[3], h0, c0, w->ry[k], w->rgates[k],
                                         w->rcs[k], w->rhprev[k], w->rc0[k]);
            if (h0) /* the final state becomes the next chunk's initial state (the backward uses
                     * the copies saved in hprev and rc0) */
                for (int b = 0; b < B; b++) {
                    memcpy(h0 + (size_t)b * H, w->ry[k] + ((size_t)b * T + T - 1) * H, (size_t)H * sizeof(R));
                    memcpy(c0 + (size_t)b * H, w->rcs[k] + ((size_t)b * T + T - 1) * H, (size_t)H * sizeof(R));
                }
        }
        break;
    case CPHIL_BACKBONE_GRU:
        for (int k = 0; k < L; k++) {
            const size_t *o = w->o_layer[k];
            R *h0 = w->carry ? w->carry + (size_t)k * B * H : NULL;
            NN_FN(cphil_nn_gru_forward)(pr, B, T, H, H, k ? w->ry[k - 1] : w->x0, P + o[0], P + o[1],
                                        P + o[2], P + o[3], h0, w->ry[k], w->rgates[k], w->rgh[k],
                                        w->rhprev[k]);
            if (h0)
                for (int b = 0; b < B; b++)
                    memcpy(h0 + (size_t)b * H, w->ry[k] + ((size_t)b * T + T - 1) * H, (size_t)H * sizeof(R));
        }
        break;
    case CPHIL_BACKBONE_MAMBA: {
        const int I = cphil_mamba_inner(c), Rk = cphil_mamba_dt_rank(c);
        for (int k = 0; k < L; k++) {
            NN_FN(cphil_mamba_params) p;
            NN_FN(mamba_params_at)(w, P, k, &p);
            NN_FN(cphil_nn_rmsnorm_forward)(M, H, w->xs[k], P + w->o_layer[k][0], (R)1e-5, w->nu[k], w->nr[k]);
            NN_FN(cphil_nn_mamba_forward)(pr, B, T, H, I, Rk, c->state_size, c->conv_size, w->nu[k], &p,
                                          &w->ms[k], &w->mw, w->tmp);
            for (size_t q = 0; q < (size_t)M * H; q++) w->xs[k + 1][q] = w->xs[k][q] + w->tmp[q];
        }
        NN_FN(cphil_nn_rmsnorm_forward)(M, H, w->xs[L], P + w->o_nf_w, (R)1e-5, w->feat, w->frstd);
        break;
    }
    case CPHIL_BACKBONE_ATTENTION:
        for (int k = 0; k < L; k++) {
            const size_t *o = w->o_layer[k];
            NN_FN(cphil_nn_layernorm_forward)(M, H, w->xs[k], P + o[0], P + o[1], (R)1e-5, w->nu[k], w->nm[k],
                                              w->nr[k]);
            NN_FN(cphil_nn_attention_forward)(pr, B, T, H, c->num_heads, w->nu[k], P + o[2], P + o[3],
                                              P + o[4], P + o[5], w->rope, w->qkv[k], w->P[k], w->att[k],
                                              w->tmp);
            for (size_t q = 0; q < (size_t)M * H; q++) w->xmid[k][q] = w->xs[k][q] + w->tmp[q];
            NN_FN(cphil_nn_layernorm_forward)(M, H, w->xmid[k], P + o[6], P + o[7], (R)1e-5, w->ln2[k],
                                              w->m2[k], w->r2[k]);
            NN_FN(cphil_nn_linear_forward)(pr, M, 4 * H, H, w->ln2[k], H, P + o[8], P + o[9], w->f1[k], 4 * H);
            NN_FN(cphil_nn_act_forward)(CPHIL_ACT_GELU, (size_t)M * 4 * H, w->f1[k], w->f1a[k]);
            NN_FN(cphil_nn_linear_forward)(pr, M, H, 4 * H, w->f1a[k], 4 * H, P + o[10], P + o[11], w->tmp, H);
            for (size_t q = 0; q < (size_t)M * H; q++) w->xs[k + 1][q] = w->xmid[k][q] + w->tmp[q];
        }
        NN_FN(cphil_nn_layernorm_forward)(M, H, w->xs[L], P + w->o_nf_w, P + w->o_nf_b, (R)1e-5, w->feat,
                                          w->fmean, w->frstd);
        break;
    default:
        break;
    }
    /* heads: the six first layers as one [HEADS_W, Hb] product (weights stacked in scratch) */
    for (int h = 0; h < CPHIL_N_HEADS; h++) {
        const int hh = cphil_head_hidden[h], col = w->head_off[h];
        memcpy(w->hw0 + (size_t)col * Hb, P + w->o_head[h][0], (size_t)hh * Hb * sizeof(R));
        memcpy(w->hb0 + col, P + w->o_head[h][1], (size_t)hh * sizeof(R));
    }
    NN_FN(cphil_nn_linear_forward)(pr, M, HEADS_W, Hb, w->feat, Hb, w->hw0, w->hb0, w->hpre, HEADS_W);
    if (c->heads == CPHIL_HEADS_AUTOREGRESSIVE) {
        NN_FN(ar_heads_forward)(w, P);
        return w->logits;
    }
    NN_FN(cphil_nn_act_forward)(CPHIL_ACT_RELU, (size_t)M * HEADS_W, w->hpre, w->hact);
    for (int h = 0; h < CPHIL_N_HEADS; h++) {
        const int hh = cphil_head_hidden[h], C = cphil_head_classes[h], col = w->head_off[h];
        NN_FN(cphil_nn_linear_forward)(pr, M, C, hh, w->hact + col, HEADS_W, P + w->o_head[h][2],
                                       P + w->o_head[h][3], w->logits + cphil_head_offset[h], CPHIL_N_LOGITS);
    }
    return w->logits;
}

static R NN_FN(policy_loss)(NN_FN(pws) *w, const uint8_t *buttons, const uint8_t *cls,
                            const float *weight, const cphil_loss_config *lc,
                            cphil_loss_parts *parts) {
    return NN_FN(cphil_nn_policy_loss)(w->M, w->logits, buttons, cls, weight, lc, w->dlogits, parts);
}

/* ---- backward -------------------------------------------------------------------------- */
/* The tensor table is input_proj, the backbone's layers first to last (then norm_f), the heads;
 * the backward finishes them in the reverse order, so after each stage the gradients from the
 * stage's first tensor to the end of the block are final. */
#define GRADS_READY(w, lo)                                                                         \
    do {                                                                                           \
        if ((w)->grads_ready) (w)->grads_ready((w)->grads_user, (lo));                            \
    } while (0)
static void NN_FN(policy_backward)(NN_FN(pws) *w, const R *P, const R *cont, const int32_t *ids,
                                   R *G) {
    const cphil_model_config *c = &w->cfg;
    const cphil_precision pr = c->precision;
    const int M = w->M, B = w->B, T = w->T, H = c->hidden, L = c->num_layers,
              H0 = cphil_model_input_width(c), Hb = cphil_model_features(c);
    /* heads */
    memset(w->dhid, 0, (size_t)M * HEADS_W * sizeof(R));
    memset(w->dhpre, 0, (size_t)M * HEADS_W * sizeof(R));
    memset(w->dfeat, 0, (size_t)M * Hb * sizeof(R));
    for (int h = 0; h < CPHIL_N_HEADS; h++) {
        const int hh = cphil_head_hidden[h], C = cphil_head_classes[h], col = w->head_off[h];
        NN_FN(cphil_nn_linear_backward)(pr, M, C, hh, w->hact + col, HEADS_W, P + w->o_head[h][2],
                                        w->dlogits + cphil_head_offset[h], CPHIL_N_LOGITS, w->dhid + col,
                                        HEADS_W, G + w->o_head[h][2], G + w->o_head[h][3]);
    }
    NN_FN(cphil_nn_act_backward)(CPHIL_ACT_RELU, (size_t)M * HEADS_W, w->hpre, w->dhid, w->dhpre);
    if (c->heads == CPHIL_HEADS_AUTOREGRESSIVE) NN_FN(ar_heads_backward)(w, G);
    /* the stacked first layers (hw0 still holds this step's weights from the forward) */
    memset(w->dhw0, 0, (size_t)HEADS_W * Hb * sizeof(R));
    memset(w->dhb0, 0, HEADS_W * sizeof(R));
    NN_FN(cphil_nn_linear_backward)(pr, M, HEADS_W, Hb, w->feat, Hb, w->hw0, w->dhpre, HEADS_W, w->dfeat, Hb,
                                    w->dhw0, w->dhb0);
    for (int h = 0; h < CPHIL_N_HEADS; h++) {
        const int hh = cphil_head_hidden[h], col = w->head_off[h];
        R *gw = G + w->o_head[h][0], *gb = G + w->o_head[h][1];
        const R *sw = w->dhw0 + (size_t)col * Hb, *sb = w->dhb0 + col;
        for (size_t q = 0; q < (size_t)hh * Hb; q++) gw[q] += sw[q];
        for (int q = 0; q < hh; q++) gb[q] += sb[q];
    }
    GRADS_READY(w, w->o_head[0][0]);
    /* backbone: ends with dx0 = dL/dx0 */
    switch (c->backbone) {
    case CPHIL_BACKBONE_MLP: {
        /* da (current) starts as dfeat; dz = relu'(z) da */
        const R *da = w->dfeat;
        for (int i = c->n_mlp - 1; i >= 0; i--) {
            const size_t n = (size_t)M * c->mlp_hidden[i];
            R *dz = i == 0 ? w->dx0 : (da == w->md0 ? w->md1 : w->md0);
            memset(dz, 0, n * sizeof(R));
            NN_FN(cphil_nn_act_backward)(CPHIL_ACT_RELU, n, w->mz[i], da, dz);
            if (i == 0) break;
            R *dprev = dz == w->md0 ? w->md1 : w->md0;
            memset(dprev, 0, (size_t)M * c->mlp_hidden[i - 1] * sizeof(R));
            NN_FN(cphil_nn_linear_backward)(pr, M, c->mlp_hidden[i], c->mlp_hidden[i - 1], w->ma[i - 1],
                                            c->mlp_hidden[i - 1], P + w->o_layer[i - 1][0], dz,
                                            c->mlp_hidden[i], dprev, c->mlp_hidden[i - 1],
                                            G + w->o_layer[i - 1][0], G + w->o_layer[i - 1][1]);
            GRADS_READY(w, w->o_layer[i - 1][0]);
            da = dprev;
        }
        break;
    }
    case CPHIL_BACKBONE_LSTM:
    case CPHIL_BACKBONE_GRU: {
        const R *dy = w->dfeat;
        for (int k = L - 1; k >= 0; k--) {
            const size_t *o = w->o_layer[k];
            R *dx = k == 0 ? w->dx0 : (dy == w->rd0 ? w->rd1 : w->rd0);
            memset(dx, 0, (size_t)M * H * sizeof(R));
            const R *x = k ? w->ry[k - 1] : w->x0;
            if (c->backbone == CPHIL_BACKBONE_LSTM)
                NN_FN(cphil_nn_lstm_backward)(pr, B, T, H, H, x, P + o[0], P + o[1], w->rgates[k], w->rcs[k],
                                              w->rhprev[k], w->rc0[k], dy, dx, G + o[0], G + o[1], G + o[2],
                                              G + o[3], w->rdG, w->rdh, w->rdc);
            else
                NN_FN(cphil_nn_gru_backward)(pr, B, T, H, H, x, P + o[0], P + o[1], w->rgates[k], w->rgh[k],
                                             w->rhprev[k], dy, dx, G + o[0], G + o[1], G + o[2], G + o[3],
                                             w->rdG, w->rdGh, w->rdh);
            GRADS_READY(w, o[0]);
            dy = dx;
        }
        break;
    }
    case CPHIL_BACKBONE_MAMBA: {
        const int I = cphil_mamba_inner(c), Rk = cphil_mamba_dt_rank(c);
        memset(w->dstream, 0, (size_t)M * H * sizeof(R));
        NN_FN(cphil_nn_rmsnorm_backward)(M, H, w->xs[L], P + w->o_nf_w, w->frstd, w->dfeat, w->dstream,
                                         G + w->o_nf_w);
        for (int k = L - 1; k >= 0; k--) {
            const size_t *o = w->o_layer[k];
            NN_FN(cphil_mamba_params) p;
            NN_FN(mamba_params_at)(w, P, k, &p);
            NN_FN(cphil_mamba_grads) g = {G + o[1], G + o[2], G + o[3], G + o[4], G + o[5],
                                          G + o[6], G + o[7], G + o[8], G + o[9]};
            memset(w->dnu, 0, (size_t)M * H * sizeof(R));
            NN_FN(cphil_nn_mamba_backward)(pr, B, T, H, I, Rk, c->state_size, c->conv_size, w->nu[k], &p,
                                           &w->ms[k], &w->mw, w->dstream, w->dnu, &g);
            NN_FN(cphil_nn_rmsnorm_backward)(M, H, w->xs[k], P + o[0], w->nr[k], w->dnu, w->dstream, G + o[0]);
            GRADS_READY(w, o[0]);
        }
        memcpy(w->dx0, w->dstream, (size_t)M * H * sizeof(R));
        break;
    }
    case CPHIL_BACKBONE_ATTENTION: {
        memset(w->dstream, 0, (size_t)M * H * sizeof(R));
        NN_FN(cphil_nn_layernorm_backward)(M, H, w->xs[L], P + w->o_nf_w, w->fmean, w->frstd, w->dfeat,
                                           w->dstream, G + w->o_nf_w, G + w->o_nf_b);
        for (int k = L - 1; k >= 0; k--) {
            const size_t *o = w->o_layer[k];
            /* ffn branch: x_{k+1} = xmid + fc2(gelu(fc1(ln2(xmid)))) */
            memset(w->df1a, 0, (size_t)M * 4 * H * sizeof(R));
            NN_FN(cphil_nn_linear_backward)(pr, M, H, 4 * H, w->f1a[k], 4 * H, P + o[10], w->dstream, H,
                                            w->df1a, 4 * H, G + o[10], G + o[11]);
            memset(w->df1, 0, (size_t)M * 4 * H * sizeof(R));
            NN_FN(cphil_nn_act_backward)(CPHIL_ACT_GELU, (size_t)M * 4 * H, w->f1[k], w->df1a, w->df1);
            memset(w->dnu, 0, (size_t)M * H * sizeof(R));
            NN_FN(cphil_nn_linear_backward)(pr, M, 4 * H, H, w->ln2[k], H, P + o[8], w->df1, 4 * H, w->dnu,
                                            H, G + o[8], G + o[9]);
            NN_FN(cphil_nn_layernorm_backward)(M, H, w->xmid[k], P + o[6], w->m2[k], w->r2[k], w->dnu,
                                               w->dstream, G + o[6], G + o[7]);
            /* attention branch: xmid = x_k + attn(ln1(x_k)) */
            memset(w->dnu, 0, (size_t)M * H * sizeof(R));
            NN_FN(cphil_nn_attention_backward)(pr, B, T, H, c->num_heads, w->nu[k], P + o[2], P + o[4],
                                               w->rope, w->qkv[k], w->P[k], w->att[k], w->dstream, w->dnu,
                                               G + o[2], G + o[3], G + o[4], G + o[5], w->datt, w->dqkv,
                                               w->dP);
            NN_FN(cphil_nn_layernorm_backward)(M, H, w->xs[k], P + o[0], w->nm[k], w->nr[k], w->dnu,
                                               w->dstream, G + o[0], G + o[1]);
            GRADS_READY(w, o[0]);
        }
        memcpy(w->dx0, w->dstream, (size_t)M * H * sizeof(R));
        break;
    }
    default:
        break;
    }
    (void)H0;
    NN_FN(cphil_nn_input_backward)(pr, M, H0, c->E, c->n_cont, c->n_ids, cont, ids, w->dx0,
                                   G + w->o_in_w, G + w->o_in_b, w->WT);
    GRADS_READY(w, 0);
}
#undef GRADS_READY
