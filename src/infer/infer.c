/* infer.c — the inference engine (see infer.h for the modes and the contract): model build from
 * a tensor lookup (shape-checked, packed to the chosen precision), the per-thread state, and the
 * window and stream steps of the five backbones.
 * Does not: sampling (src/agent), file parsing (the loader hands tensors through the lookup).
 * References: PyTorch nn.LSTM / nn.GRU equations and gate orders; Gu & Dao 2023 (Mamba, the
 * selective scan in its recurrent form, as in mamba.c); RoFormer (RoPE, rotate-half form);
 * docs/interfaces.md for the parameter names.
 */
#include "infer/infer.h"
#include "infer/infer_ar.h"

#include <math.h>
#include <string.h>

void cphil_infer_spec_default(cphil_infer_spec *s, cphil_backbone backbone, int n_cont, int n_ids, int E) {
    memset(s, 0, sizeof *s);
    s->backbone = backbone;
    s->n_cont = n_cont;
    s->n_ids = n_ids;
    s->E = E;
    s->hidden = 256;
    s->layers = 2;
    s->window = backbone == CPHIL_BACKBONE_MLP ? 1 : 60;
    s->state = 16;
    s->expand = 2;
    s->conv = 4;
    s->heads = 4;
    s->n_mlp = 2;
    s->mlp[0] = 512;
    s->mlp[1] = 512;
    s->norm_eps = 1e-5f;
    s->rope_base = 10000.f;
}

void cphil_infer_spec_from_config(cphil_infer_spec *s, const cphil_model_config *c) {
    cphil_infer_spec_default(s, c->backbone, c->n_cont, c->n_ids, c->E);
    s->hidden = c->hidden;
    s->layers = c->num_layers;
    s->window = c->backbone == CPHIL_BACKBONE_MLP ? 1 : c->window;
    s->state = c->state_size;
    s->expand = c->expand;
    s->conv = c->conv_size;
    s->heads = c->num_heads;
    s->n_mlp = c->n_mlp;
    for (int i = 0; i < c->n_mlp && i < INFER_MAX_MLP; i++) s->mlp[i] = c->mlp_hidden[i];
    s->ar_heads = c->heads == CPHIL_HEADS_AUTOREGRESSIVE;
}

cphil_status cphil_infer_model_lookup(void *ctx, const char *name, cphil_infer_tensor *out) {
    const cphil_model *m = ctx;
    const cphil_tensor *t = cphil_model_find(m, name);
    if (!t) return cphil_err(CPHIL_E_MISMATCH, "tensor '%s' is missing from the model", name);
    memset(out, 0, sizeof *out);
    out->dtype = INFER_F32;
    out->rank = t->ndim;
    for (int i = 0; i < t->ndim; i++) out->shape[i] = t->shape[i];
    out->data = m->params + t->offset;
    return CPHIL_OK;
}

/* ---- model ------------------------------------------------------------------------------- */
#define MAX_MATS (8 + INFER_MAX_LAYERS * 6 + 8)

typedef struct lstm_layer { cphil_pmat ih, hh; } lstm_layer;
typedef struct mamba_layer {
    float *norm;       /* [H] */
    cphil_pmat in_proj; /* [2I, H] */
    float *conv_w;     /* [K][I]: conv1d.weight [I, 1, K] transposed (contiguous over channels) */
    float *conv_b;     /* [I] */
    cphil_pmat x_proj;  /* [R+2N, I] */
    cphil_pmat dt_proj; /* [I, R] + bias */
    float *A;          /* [N][I] = -exp(A_log) * log2(e), transposed (the scan takes 2^(dt A2)) */
    float *D;          /* [I] */
    cphil_pmat out_proj;/* [H, I] */
} mamba_layer;
typedef struct attn_layer {
    float *ln1_w, *ln1_b, *ln2_w, *ln2_b; /* [H] */
    cphil_pmat qkv, out, fc1, fc2;
} attn_layer;

struct cphil_infer_model {
    cphil_infer_spec spec;
    infer_dtype prec;
    int H0, Hb, I, R;     /* input-layer width, backbone output width, Mamba inner, dt rank */
    int64_t params;
    /* input layer: the continuous columns as a packed product (with the bias), the one-hot
     * columns as a gather table (src/kernels: rows = columns of input_proj.weight) */
    int H0p;
    cphil_pmat in_cont;   /* [H0, n_cont] */
    cphil_gtable in_tab; /* columns n_cont .. E-1 */
    bool has_tab;
    float *in_b;
    cphil_pmat mlp[INFER_MAX_MLP];
    lstm_layer rnn[INFER_MAX_LAYERS];
    mamba_layer mb[INFER_MAX_LAYERS];
    attn_layer at[INFER_MAX_LAYERS];
    float *normf_w, *normf_b;
    cphil_pmat head0;                 /* the six first head layers fused: [352, Hb] */
    cphil_pmat head2[INFER_N_HEADS];
    infer_ar_heads ar;               /* autoregressive heads' tables (infer_ar.c) */
    float *rope_cos, *rope_sin;      /* [W][dh/2] window positions */
    float *rope_cosT, *rope_sinT;    /* [dh/2][round16(W)] the same, transposed (keys stored transposed) */
    cphil_pmat *mats[MAX_MATS];
    char mat_names[MAX_MATS][96];
    int n_mats;
    size_t bytes;
    int max_kp, max_rows;
};

typedef struct build_ctx {
    cphil_infer_lookup lookup;
    void *ctx;
    cphil_infer_model *m;
} build_ctx;

static cphil_status get_tensor(build_ctx *b, const char *name, int rank, const int64_t *shape,
                               cphil_infer_tensor *t) {
    memset(t, 0, sizeof *t);
    cphil_status s = b->lookup(b->ctx, name, t);
    if (s) return s;
    bool ok = t->rank == rank;
    for (int i = 0; ok && i < rank; i++) ok = t->shape[i] == shape[i];
    if (!ok) {
        char want[96] = "", got[96] = "";
        for (int i = 0; i < rank; i++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? "," : "", (long long)shape[i]);
        for (int i = 0; i < t->rank && i < 4; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? "," : "", (long long)t->shape[i]);
        return cphil_err(CPHIL_E_MISMATCH,
                         "tensor '%s' has shape [%s], the config needs [%s] (file made for another model?)",
                         name, got, want);
    }
    if (!t->data) return cphil_err(CPHIL_E_MISMATCH, "tensor '%s' has no data", name);
    if (t->dtype == INFER_I8 && !t->scale)
        return cphil_err(CPHIL_E_MISMATCH, "int8 tensor '%s' has no per-channel scales", name);
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= shape[i];
    b->m->params += n;
    return CPHIL_OK;
}

/* A float copy of a tensor (f32 or bf16 source; int8 dequantized). Caller frees. */
static cphil_status tensor_floats(build_ctx *b, const char *name, int rank, const int64_t *shape, float **out) {
    cphil_infer_tensor t;
    cphil_status s = get_tensor(b, name, rank, shape, &t);
    if (s) return s;
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= shape[i];
    float *f = cphil_alloc(sizeof(float) * (size_t)n);
    if (!f) return cphil_err(CPHIL_E_NOMEM, "out of memory loading '%s'", name);
    if (t.dtype == INFER_F32) memcpy(f, t.data, sizeof(float) * (size_t)n);
    else if (t.dtype == INFER_BF16)
        for (int64_t i = 0; i < n; i++) f[i] = infer_bf16_to_f32(((const uint16_t *)t.data)[i]);
    else {
        int64_t cols = n / shape[0];
        for (int64_t i = 0; i < n; i++) f[i] = (float)((const int8_t *)t.data)[i] * t.scale[i / cols];
    }
    b->m->bytes += sizeof(float) * (size_t)n;
    *out = f;
    return CPHIL_OK;
}

static cphil_status vec(build_ctx *b, const char *name, int64_t n, float **out) {
    return tensor_floats(b, name, 1, &n, out);
}

/* Pack a Linear: weight [rows, cols] (+ bias [rows] if bias_name). Extra bias (bias2) is added. */
static cphil_status linear(build_ctx *b, cphil_pmat *mat, const char *wname, const char *bname, const char *b2name,
                           int rows, int cols) {
    cphil_infer_model *m = b->m;
    int64_t shape[2] = {rows, cols};
    cphil_infer_tensor t;
    cphil_status s = get_tensor(b, wname, 2, shape, &t);
    if (s) return s;
    float *bias = NULL, *b2 = NULL;
    if (bname && (s = vec(b, bname, rows, &bias))) return s;
    if (b2name && (s = vec(b, b2name, rows, &b2))) {
        cphil_free(bias);
        return s;
    }
    if (b2)
        for (int i = 0; i < rows; i++) bias[i] += b2[i];
    cphil_free(b2);
    if (bias) m->bytes -= sizeof(float) * (size_t)rows * (b2name ? 2 : 1);
    if (t.dtype == INFER_I8) {
        if (m->prec != INFER_I8) {
            cphil_free(bias);
            return cphil_err(CPHIL_E_MISMATCH, "tensor '%s' is int8 but the engine was asked for %s weights",
                             wname, m->prec == INFER_F32 ? "f32" : "bf16");
        }
        s = cphil_pmat_pack_i8(mat, rows, cols, t.data, t.scale, bias);
        mat->act_scale = t.act_scale > 0.f ? t.act_scale : 0.f;
    } else {
        const float *w = t.data;
        float *tmp = NULL;
        if (t.dtype == INFER_BF16) {
            tmp = cphil_alloc(sizeof(float) * (size_t)rows * cols);
            if (!tmp) {
                cphil_free(bias);
                return cphil_err(CPHIL_E_NOMEM, "out of memory loading '%s'", wname);
            }
            for (size_t i = 0; i < (size_t)rows * cols; i++) tmp[i] = infer_bf16_to_f32(((const uint16_t *)t.data)[i]);
            w = tmp;
        }
        s = cphil_pmat_pack(mat, rows, cols, w, bias, m->prec);
        cphil_free(tmp);
    }
    cphil_free(bias);
    if (s) return s;
    if (m->n_mats >= MAX_MATS) return cphil_err(CPHIL_E_INTERNAL, "too many matrices");
    mat->id = m->n_mats;
    snprintf(m->mat_names[m->n_mats], sizeof m->mat_names[0], "%s", wname);
    m->mats[m->n_mats++] = mat;
    m->bytes += cphil_pmat_bytes(mat) + (mat->bias ? sizeof(float) * (size_t)rows : 0);
    if (mat->kp > m->max_kp) m->max_kp = mat->kp;
    if (mat->np * CPHIL_PANEL > m->max_rows) m->max_rows = mat->np * CPHIL_PANEL;
    return CPHIL_OK;
}

/* input_proj.weight [H0, E]: continuous columns packed like any product (bias folded in),
 * one-hot columns as a gather table in the engine's precision. An int8 file's weights are used
 * as they are (its per-row scales, and its calibrated activation scale for the continuous
 * product when the file is static): quantizing the dequantized values again would round twice. */
static cphil_status input_layer(build_ctx *b) {
    cphil_infer_model *m = b->m;
    const cphil_infer_spec *sp = &m->spec;
    int H0 = m->H0, E = sp->E, nc = sp->n_cont;
    int64_t shape[2] = {H0, E};
    cphil_infer_tensor t;
    float *w = NULL, *wc = NULL;
    int8_t *qc = NULL;
    cphil_status s = get_tensor(b, "input_proj.weight", 2, shape, &t);
    if (s) return s;
    const bool i8 = t.dtype == INFER_I8;
    if (i8 && m->prec != INFER_I8)
        return cphil_err(CPHIL_E_MISMATCH, "tensor 'input_proj.weight' is int8 but the engine was asked for %s weights",
                         m->prec == INFER_F32 ? "f32" : "bf16");
    if ((s = vec(b, "input_proj.bias", H0, &m->in_b))) return s;
    m->H0p = (H0 + 15) & ~15;
    if (i8) {
        qc = cphil_alloc((size_t)H0 * (nc ? nc : 1));
        if (!qc) return cphil_err(CPHIL_E_NOMEM, "out of memory for the input layer");
        const int8_t *q = t.data;
        for (int h = 0; h < H0; h++)
            for (int c = 0; c < nc; c++) qc[(size_t)h * nc + c] = q[(size_t)h * E + c];
        if (nc > 0) {
            s = cphil_pmat_pack_i8(&m->in_cont, H0, nc, qc, t.scale, m->in_b);
            m->in_cont.act_scale = t.act_scale > 0.f ? t.act_scale : 0.f;
        }
    } else {
        w = cphil_alloc(sizeof(float) * (size_t)H0 * E);
        wc = cphil_alloc(sizeof(float) * (size_t)H0 * (nc ? nc : 1));
        if (!w || !wc) {
            s = cphil_err(CPHIL_E_NOMEM, "out of memory for the input layer");
            goto out;
        }
        for (size_t i = 0; i < (size_t)H0 * E; i++)
            w[i] = t.dtype == INFER_F32 ? ((const float *)t.data)[i] : infer_bf16_to_f32(((const uint16_t *)t.data)[i]);
        for (int h = 0; h < H0; h++)
            for (int c = 0; c < nc; c++) wc[(size_t)h * nc + c] = w[(size_t)h * E + c];
        if (nc > 0) s = cphil_pmat_pack(&m->in_cont, H0, nc, wc, m->in_b, m->prec);
    }
    if (s) goto out;
    if (nc > 0) {
        m->in_cont.id = m->n_mats;
        snprintf(m->mat_names[m->n_mats], sizeof m->mat_names[0], "input_proj.weight");
        m->mats[m->n_mats++] = &m->in_cont;
        m->bytes += cphil_pmat_bytes(&m->in_cont);
        if (m->in_cont.kp > m->max_kp) m->max_kp = m->in_cont.kp;
    }
    if (E > nc) {
        if (i8) s = cphil_gtable_init_i8(&m->in_tab, t.data, t.scale, H0, E, nc, E - nc);
        else {
            cphil_wtype wt = m->prec == INFER_F32 ? CPHIL_W_F32 : m->prec == INFER_BF16 ? CPHIL_W_BF16 : CPHIL_W_I8;
            s = cphil_gtable_init(&m->in_tab, wt, w, H0, E, nc, E - nc);
        }
        if (s) goto out;
        m->has_tab = true;
        m->bytes += m->in_tab.bytes;
    }
out:
    cphil_free(w);
    cphil_free(wc);
    cphil_free(qc);
    return s;
}

static cphil_status check_spec(const cphil_infer_spec *sp) {
    if ((int)sp->backbone < 0 || sp->backbone >= CPHIL_N_BACKBONES)
        return cphil_err(CPHIL_E_MISMATCH, "unknown backbone %d", sp->backbone);
    if (sp->n_cont < 0 || sp->n_ids < 0 || sp->E < 1 || sp->n_cont > sp->E || sp->E > (1 << 20))
        return cphil_err(CPHIL_E_MISMATCH, "bad embedding sizes (n_cont %d, n_ids %d, E %d)", sp->n_cont, sp->n_ids, sp->E);
    if (sp->backbone == CPHIL_BACKBONE_MLP) {
        if (sp->n_mlp < 1 || sp->n_mlp > INFER_MAX_MLP)
            return cphil_err(CPHIL_E_MISMATCH, "MLP needs 1..%d hidden sizes (got %d)", INFER_MAX_MLP, sp->n_mlp);
        for (int i = 0; i < sp->n_mlp; i++)
            if (sp->mlp[i] < 1 || sp->mlp[i] > 65536) return cphil_err(CPHIL_E_MISMATCH, "bad MLP hidden size %d", sp->mlp[i]);
        return CPHIL_OK;
    }
    if (sp->hidden < 1 || sp->hidden > 16384) return cphil_err(CPHIL_E_MISMATCH, "bad hidden size %d", sp->hidden);
    if (sp->layers < 1 || sp->layers > INFER_MAX_LAYERS) return cphil_err(CPHIL_E_MISMATCH, "bad layer count %d", sp->layers);
    if (sp->window < 1 || sp->window > 4096) return cphil_err(CPHIL_E_MISMATCH, "bad window %d", sp->window);
    if (sp->backbone == CPHIL_BACKBONE_MAMBA &&
        (sp->state < 1 || sp->state > 1024 || sp->expand < 1 || sp->expand > 16 || sp->conv < 1 || sp->conv > 64))
        return cphil_err(CPHIL_E_MISMATCH, "bad Mamba sizes (state %d, expand %d, conv %d)", sp->state, sp->expand, sp->conv);
    if (sp->backbone == CPHIL_BACKBONE_ATTENTION &&
        (sp->heads < 1 || sp->hidden % sp->heads || (sp->hidden / sp->heads) % 2))
        return cphil_err(CPHIL_E_MISMATCH, "attention: hidden %d must split into %d heads of even size", sp->hidden, sp->heads);
    if (sp->backbone == CPHIL_BACKBONE_ATTENTION && sp->hidden / sp->heads > INFER_MAX_HEAD_DIM)
        return cphil_err(CPHIL_E_MISMATCH,
                         "attention: heads of %d values (hidden %d / %d heads) are over the engine's %d "
                         "(use more heads)", sp->hidden / sp->heads, sp->hidden, sp->heads, INFER_MAX_HEAD_DIM);
    return CPHIL_OK;
}

static cphil_status build(build_ctx *b) {
    cphil_infer_model *m = b->m;
    const cphil_infer_spec *sp = &m->spec;
    const int H = sp->hidden, L = sp->layers;
    char n1[96], n2[96], n3[96];
    cphil_status s;
    if ((s = input_layer(b))) return s;
    switch (sp->backbone) {
    default: break;
    case CPHIL_BACKBONE_MLP:
        for (int i = 1; i < sp->n_mlp; i++) {
            snprintf(n1, sizeof n1, "mlp.%d.weight", i - 1);
            snprintf(n2, sizeof n2, "mlp.%d.bias", i - 1);
            if ((s = linear(b, &m->mlp[i], n1, n2, NULL, sp->mlp[i], sp->mlp[i - 1]))) return s;
        }
        break;
    case CPHIL_BACKBONE_LSTM:
    case CPHIL_BACKBONE_GRU: {
        const char *nm = sp->backbone == CPHIL_BACKBONE_LSTM ? "lstm" : "gru";
        int G = sp->backbone == CPHIL_BACKBONE_LSTM ? 4 : 3;
        for (int l = 0; l < L; l++) {
            snprintf(n1, sizeof n1, "%s.weight_ih_l%d", nm, l);
            snprintf(n2, sizeof n2, "%s.bias_ih_l%d", nm, l);
            snprintf(n3, sizeof n3, "%s.bias_hh_l%d", nm, l);
            /* LSTM: both biases folded into W_ih's; GRU keeps b_hh apart (r gates it) */
            if ((s = linear(b, &m->rnn[l].ih, n1, n2, G == 4 ? n3 : NULL, G * H, H))) return s;
            snprintf(n1, sizeof n1, "%s.weight_hh_l%d", nm, l);
            if ((s = linear(b, &m->rnn[l].hh, n1, G == 3 ? n3 : NULL, NULL, G * H, H))) return s;
        }
        break;
    }
    case CPHIL_BACKBONE_MAMBA: {
        const int I = m->I, R = m->R, N = sp->state, K = sp->conv;
        for (int l = 0; l < L; l++) {
            mamba_layer *ml = &m->mb[l];
            snprintf(n1, sizeof n1, "layers.%d.norm.weight", l);
            if ((s = vec(b, n1, H, &ml->norm))) return s;
            snprintf(n1, sizeof n1, "layers.%d.mixer.in_proj.weight", l);
            if ((s = linear(b, &ml->in_proj, n1, NULL, NULL, 2 * I, H))) return s;
            snprintf(n1, sizeof n1, "layers.%d.mixer.conv1d.weight", l);
            int64_t cs[3] = {I, 1, K};
            if ((s = tensor_floats(b, n1, 3, cs, &ml->conv_w))) return s;
            float *cT = cphil_alloc(sizeof(float) * (size_t)I * K);
            if (!cT) return cphil_err(CPHIL_E_NOMEM, "out of memory");
            for (int i = 0; i < I; i++)
                for (int j = 0; j < K; j++) cT[(size_t)j * I + i] = ml->conv_w[(size_t)i * K + j];
            cphil_free(ml->conv_w);
            ml->conv_w = cT;
            snprintf(n1, sizeof n1, "layers.%d.mixer.conv1d.bias", l);
            if ((s = vec(b, n1, I, &ml->conv_b))) return s;
            snprintf(n1, sizeof n1, "layers.%d.mixer.x_proj.weight", l);
            if ((s = linear(b, &ml->x_proj, n1, NULL, NULL, R + 2 * N, I))) return s;
            snprintf(n1, sizeof n1, "layers.%d.mixer.dt_proj.weight", l);
            snprintf(n2, sizeof n2, "layers.%d.mixer.dt_proj.bias", l);
            if ((s = linear(b, &ml->dt_proj, n1, n2, NULL, I, R))) return s;
            snprintf(n1, sizeof n1, "layers.%d.mixer.A_log", l);
            int64_t as[2] = {I, N};
            if ((s = tensor_floats(b, n1, 2, as, &ml->A))) return s;
            /* A = -exp(A_log), stored transposed [N][I] for the scan (vectorized over i) and times
             * log2(e) (one rounding, in double): the scan computes exp(dt A) as 2^(dt A2) */
            float *At = cphil_alloc(sizeof(float) * (size_t)I * N);
            if (!At) return cphil_err(CPHIL_E_NOMEM, "out of memory");
            for (int i = 0; i < I; i++)
                for (int n = 0; n < N; n++)
                    At[(size_t)n * I + i] = (float)(-exp((double)ml->A[(size_t)i * N + n]) * 1.4426950408889634074);
            cphil_free(ml->A);
            ml->A = At;
            snprintf(n1, sizeof n1, "layers.%d.mixer.D", l);
            if ((s = vec(b, n1, I, &ml->D))) return s;
            snprintf(n1, sizeof n1, "layers.%d.mixer.out_proj.weight", l);
            if ((s = linear(b, &ml->out_proj, n1, NULL, NULL, H, I))) return s;
        }
        if ((s = vec(b, "norm_f.weight", H, &m->normf_w))) return s;
        break;
    }
    case CPHIL_BACKBONE_ATTENTION: {
        for (int l = 0; l < L; l++) {
            attn_layer *al = &m->at[l];
            snprintf(n1, sizeof n1, "layers.%d.ln1.weight", l);
            if ((s = vec(b, n1, H, &al->ln1_w))) return s;
            snprintf(n1, sizeof n1, "layers.%d.ln1.bias", l);
            if ((s = vec(b, n1, H, &al->ln1_b))) return s;
            snprintf(n1, sizeof n1, "layers.%d.attn.qkv.weight", l);
            snprintf(n2, sizeof n2, "layers.%d.attn.qkv.bias", l);
            if ((s = linear(b, &al->qkv, n1, n2, NULL, 3 * H, H))) return s;
            snprintf(n1, sizeof n1, "layers.%d.attn.out.weight", l);
            snprintf(n2, sizeof n2, "layers.%d.attn.out.bias", l);
            if ((s = linear(b, &al->out, n1, n2, NULL, H, H))) return s;
            snprintf(n1, sizeof n1, "layers.%d.ln2.weight", l);
            if ((s = vec(b, n1, H, &al->ln2_w))) return s;
            snprintf(n1, sizeof n1, "layers.%d.ln2.bias", l);
            if ((s = vec(b, n1, H, &al->ln2_b))) return s;
            snprintf(n1, sizeof n1, "layers.%d.ffn.fc1.weight", l);
            snprintf(n2, sizeof n2, "layers.%d.ffn.fc1.bias", l);
            if ((s = linear(b, &al->fc1, n1, n2, NULL, 4 * H, H))) return s;
            snprintf(n1, sizeof n1, "layers.%d.ffn.fc2.weight", l);
            snprintf(n2, sizeof n2, "layers.%d.ffn.fc2.bias", l);
            if ((s = linear(b, &al->fc2, n1, n2, NULL, H, 4 * H))) return s;
        }
        if ((s = vec(b, "norm_f.weight", H, &m->normf_w))) return s;
        if ((s = vec(b, "norm_f.bias", H, &m->normf_b))) return s;
        int dh = H / sp->heads, W = sp->window;
        m->rope_cos = cphil_alloc(sizeof(float) * (size_t)W * (dh / 2));
        m->rope_sin = cphil_alloc(sizeof(float) * (size_t)W * (dh / 2));
        const int Wp = (W + 15) & ~15;
        m->rope_cosT = cphil_calloc((size_t)Wp * (dh / 2), sizeof(float));
        m->rope_sinT = cphil_calloc((size_t)Wp * (dh / 2), sizeof(float));
        if (!m->rope_cos || !m->rope_sin || !m->rope_cosT || !m->rope_sinT)
            return cphil_err(CPHIL_E_NOMEM, "out of memory for RoPE tables");
        for (int p = 0; p < W; p++)
            for (int i = 0; i < dh / 2; i++) {
                double th = (double)p * pow((double)sp->rope_base, -2.0 * i / dh);
                m->rope_cos[p * (dh / 2) + i] = (float)cos(th);
                m->rope_sin[p * (dh / 2) + i] = (float)sin(th);
                m->rope_cosT[(size_t)i * Wp + p] = (float)cos(th);
                m->rope_sinT[(size_t)i * Wp + p] = (float)sin(th);
            }
        break;
    }
    }
    /* heads: the six first layers fused into one [352, Hb] product, then one product each */
    int tot = 0;
    for (int h = 0; h < INFER_N_HEADS; h++) tot += cphil_head_hidden[h];
    float *w0 = cphil_alloc(sizeof(float) * (size_t)tot * m->Hb);
    float *b0 = cphil_alloc(sizeof(float) * (size_t)tot);
    if (!w0 || !b0) {
        cphil_free(w0);
        cphil_free(b0);
        return cphil_err(CPHIL_E_NOMEM, "out of memory for the heads");
    }
    int row = 0;
    for (int h = 0; h < INFER_N_HEADS && !s; h++) {
        int hid = cphil_head_hidden[h];
        float *w = NULL, *bb = NULL;
        int64_t sh[2] = {hid, m->Hb};
        snprintf(n1, sizeof n1, "heads.%s.0.weight", cphil_head_names[h]);
        snprintf(n2, sizeof n2, "heads.%s.0.bias", cphil_head_names[h]);
        if (!(s = tensor_floats(b, n1, 2, sh, &w)) && !(s = vec(b, n2, hid, &bb))) {
            memcpy(w0 + (size_t)row * m->Hb, w, sizeof(float) * (size_t)hid * m->Hb);
            memcpy(b0 + row, bb, sizeof(float) * (size_t)hid);
            m->bytes -= sizeof(float) * (size_t)hid * (m->Hb + 1);
        }
        cphil_free(w);
        cphil_free(bb);
        row += hid;
    }
    if (!s) {
        /* the fused product is packed f32/bf16/int8 like the others (int8 source dequantized) */
        s = cphil_pmat_pack(&m->head0, tot, m->Hb, w0, b0, m->prec);
        cphil_infer_tensor ht;
        if (!s && b->lookup(b->ctx, "heads.buttons.0.weight", &ht) == CPHIL_OK && ht.dtype == INFER_I8)
            m->head0.act_scale = ht.act_scale;
        if (!s) {
            m->head0.id = m->n_mats;
            snprintf(m->mat_names[m->n_mats], sizeof m->mat_names[0], "heads.*.0.weight");
            m->mats[m->n_mats++] = &m->head0;
            m->bytes += cphil_pmat_bytes(&m->head0);
            if (m->head0.kp > m->max_kp) m->max_kp = m->head0.kp;
            if (m->head0.np * 16 > m->max_rows) m->max_rows = m->head0.np * 16;
        }
    }
    cphil_free(w0);
    cphil_free(b0);
    if (s) return s;
    for (int h = 0; h < INFER_N_HEADS; h++) {
        snprintf(n1, sizeof n1, "heads.%s.2.weight", cphil_head_names[h]);
        snprintf(n2, sizeof n2, "heads.%s.2.bias", cphil_head_names[h]);
        if ((s = linear(b, &m->head2[h], n1, n2, NULL, cphil_head_classes[h], cphil_head_hidden[h]))) return s;
    }
    if (m->spec.ar_heads) return infer_ar_load(&m->ar, b->lookup, b->ctx);
    return CPHIL_OK;
}

cphil_status cphil_infer_model_build(const cphil_infer_spec *spec, cphil_infer_lookup lookup, void *ctx,
                                     infer_dtype precision, cphil_infer_model **out) {
    *out = NULL;
    cphil_status s = check_spec(spec);
    if (s) return s;
    cphil_infer_model *m = cphil_calloc(1, sizeof *m);
    if (!m) return cphil_err(CPHIL_E_NOMEM, "out of memory for the engine");
    m->spec = *spec;
    if (m->spec.norm_eps <= 0.f) m->spec.norm_eps = 1e-5f;
    if (m->spec.rope_base <= 0.f) m->spec.rope_base = 10000.f;
    if (spec->backbone == CPHIL_BACKBONE_MLP) m->spec.window = 1;
    m->prec = precision;
    m->H0 = spec->backbone == CPHIL_BACKBONE_MLP ? spec->mlp[0] : spec->hidden;
    m->Hb = spec->backbone == CPHIL_BACKBONE_MLP ? spec->mlp[spec->n_mlp - 1] : spec->hidden;
    m->I = spec->expand * spec->hidden;
    m->R = (spec->hidden + 15) / 16;
    build_ctx b = {lookup, ctx, m};
    s = build(&b);
    if (s) {
        cphil_infer_model_free(m);
        return s;
    }
    *out = m;
    return CPHIL_OK;
}

void cphil_infer_model_free(cphil_infer_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_mats; i++) cphil_pmat_free(m->mats[i]);
    if (m->has_tab) cphil_gtable_free(&m->in_tab);
    cphil_free(m->in_b);
    infer_ar_free(&m->ar);
    for (int l = 0; l < INFER_MAX_LAYERS; l++) {
        cphil_free(m->mb[l].norm);
        cphil_free(m->mb[l].conv_w);
        cphil_free(m->mb[l].conv_b);
        cphil_free(m->mb[l].A);
        cphil_free(m->mb[l].D);
        cphil_free(m->at[l].ln1_w);
        cphil_free(m->at[l].ln1_b);
        cphil_free(m->at[l].ln2_w);
        cphil_free(m->at[l].ln2_b);
    }
    cphil_free(m->normf_w);
    cphil_free(m->normf_b);
    cphil_free(m->rope_cos);
    cphil_free(m->rope_sin);
    cphil_free(m->rope_cosT);
    cphil_free(m->rope_sinT);
    cphil_free(m);
}

const cphil_infer_spec *cphil_infer_model_spec(const cphil_infer_model *m) { return &m->spec; }
infer_dtype cphil_infer_model_precision(const cphil_infer_model *m) { return m->prec; }
int64_t cphil_infer_model_params(const cphil_infer_model *m) { return m->params; }
size_t cphil_infer_model_bytes(const cphil_infer_model *m) { return m->bytes; }
int cphil_infer_model_n_mats(const cphil_infer_model *m) { return m->n_mats; }
const char *cphil_infer_model_mat_name(const cphil_infer_model *m, int i) {
    return i >= 0 && i < m->n_mats ? m->mat_names[i] : NULL;
}
void cphil_infer_model_set_act_scales(cphil_infer_model *m, const float *scales) {
    for (int i = 0; i < m->n_mats; i++) m->mats[i]->act_scale = scales ? scales[i] : 0.f;
}

/* ---- state ------------------------------------------------------------------------------- */
struct cphil_infer_state {
    const cphil_infer_model *m;
    cphil_infer_mode mode;
    int W, P;            /* window, per-frame cached width of the first layer ("pre") */
    int64_t t;           /* frames since reset */
    int head;            /* ring slot of the newest frame */
    float *ring_x0;      /* [W][H0] input-layer outputs (window mode) */
    float *ring_pre;     /* [W][P] first layer's frame-local product */
    const float **seq_x0, **seq_pre; /* [W] pointers in window order */
    float *A, *B, *C, *D2; /* [W + 1][wmax] window mode's sequence buffers (rows wmax apart) */
    int wmax;
    /* stream-step scratch, one frame: each allocated in state_open with the size of what it
     * holds (no shared offsets into a bigger buffer: a new piece gets its own buffer) */
    float *st_x;         /* [H] residual stream between layers (Mamba, attention) */
    float *st_u;         /* [H] a layer's normed input (Mamba RMSNorm, attention ln1/ln2) */
    float *st_proj;      /* a layer's input product: LSTM [4H] / GRU [3H] gates of layers > 0,
                          * Mamba in_proj [2I], attention qkv [3H] */
    float *st_xc;        /* Mamba [I]: causal conv + SiLU output */
    float *st_dbl;       /* Mamba [R + 2N]: x_proj output (dt rank R, then B[N], C[N]) */
    float *st_dt;        /* Mamba [I]: dt_proj output (the scan applies the softplus) */
    float *st_o;         /* attention [H]: the heads' outputs */
    float *st_ffn;       /* attention [4H]: the FFN's hidden layer */
    float *x0;           /* [H0p] the current frame's input layer */
    float *feat;         /* [max(Hb, H0, I...)] */
    float *hbuf, *cbuf;  /* stream: [L][H] recurrent state; Mamba: conv ring, SSM state */
    float *conv_ring;    /* [L][K-1][I] (stream Mamba) */
    float *ssm;          /* [L][I][N] */
    float *kring, *vring;/* [L][H][wp] keys transposed, [L][W][H] values (stream attention) */
    float *kt;           /* [H][wp] window attention's keys, transposed */
    float *att_s;        /* [4 wp + H + 16] attention's scores (infer_attend_causal) */
    const float **att_rows; /* [W] window attention's q|k|v rows */
    int wp;              /* W rounded up to 16 */
    double *rot;         /* [dh/2][2] (cos, sin) of the current absolute position (stream attention) */
    double *rot_step;    /* [dh/2][2] */
    float *tmp;          /* scratch for gates, dA, scores */
    float *xres;         /* [W][H] residual stream (window Mamba / attention) */
    float *head_h;       /* [352] */
    cphil_infer_choose_fn choose; /* autoregressive heads: the chooser (greedy by default) */
    void *choose_user;
    uint8_t chosen[INFER_N_HEADS]; /* the last decision's values */
    void *scratch;       /* product scratch */
    float *calib;        /* per-matrix max |input| (calibration) or NULL */
};

static void mm(cphil_infer_state *s, const cphil_pmat *w, int M, const float *X, int ldx, float *Y, int ldy, int beta) {
    if (CPHIL_UNLIKELY(s->calib != NULL)) {
        float a = s->calib[w->id];
        for (int i = 0; i < M; i++)
            for (int k = 0; k < w->cols; k++) a = fmaxf(a, fabsf(X[(size_t)i * ldx + k]));
        s->calib[w->id] = a;
    }
    cphil_pmat_gemm(w, M, X, ldx, Y, ldy, beta, s->scratch);
}

void cphil_infer_state_calibrate(cphil_infer_state *s, float *amax) { s->calib = amax; }

cphil_status cphil_infer_state_open(const cphil_infer_model *m, cphil_infer_mode mode, cphil_infer_state **out) {
    *out = NULL;
    const cphil_infer_spec *sp = &m->spec;
    cphil_infer_state *s = cphil_calloc(1, sizeof *s);
    if (!s) return cphil_err(CPHIL_E_NOMEM, "out of memory for an engine state");
    s->m = m;
    s->mode = mode;
    s->choose = cphil_infer_choose_greedy;
    int H = sp->hidden, L = sp->layers, W = sp->window;
    if (sp->backbone == CPHIL_BACKBONE_MLP) W = 1;
    s->W = W;
    switch (sp->backbone) {
    case CPHIL_BACKBONE_LSTM: s->P = 4 * H; break;
    case CPHIL_BACKBONE_GRU: s->P = 3 * H; break;
    case CPHIL_BACKBONE_MAMBA: s->P = 2 * m->I; break;
    case CPHIL_BACKBONE_ATTENTION: s->P = 3 * H; break;
    default: s->P = 0;
    }
    int wmax = m->H0p;
    int cand[] = {4 * H, 2 * m->I, m->R + 2 * sp->state, m->Hb, 64};
    for (size_t i = 0; i < CPHIL_ARRAY_LEN(cand); i++) wmax = CPHIL_MAX(wmax, cand[i]);
    for (int i = 0; i < sp->n_mlp && sp->backbone == CPHIL_BACKBONE_MLP; i++) wmax = CPHIL_MAX(wmax, sp->mlp[i]);
    wmax = (wmax + 15) & ~15;
    s->wmax = wmax;
    size_t Wz = (size_t)W;
    bool ok = true;
#define ALLOC(p, n) do { if (ok) { p = cphil_calloc((size_t)(n), sizeof *(p)); ok = p != NULL; } } while (0)
    ALLOC(s->ring_x0, Wz * m->H0p);
    if (s->P) ALLOC(s->ring_pre, Wz * s->P);
    ALLOC(s->seq_x0, Wz);
    ALLOC(s->seq_pre, Wz);
    ALLOC(s->A, (Wz + 1) * wmax);
    ALLOC(s->B, (Wz + 1) * wmax);
    ALLOC(s->C, (Wz + 1) * wmax);
    ALLOC(s->D2, (Wz + 1) * wmax);
    ALLOC(s->x0, m->H0p);
    ALLOC(s->feat, wmax);
    if (mode == CPHIL_INFER_STREAM) {
        const int I = m->I, R = m->R, N = sp->state;
        switch (sp->backbone) {
        case CPHIL_BACKBONE_LSTM:
        case CPHIL_BACKBONE_GRU: ALLOC(s->st_proj, (size_t)s->P); break;
        case CPHIL_BACKBONE_MAMBA:
            ALLOC(s->st_x, (size_t)H);
            ALLOC(s->st_u, (size_t)H);
            ALLOC(s->st_proj, 2 * (size_t)I);
            ALLOC(s->st_xc, (size_t)I);
            ALLOC(s->st_dbl, (size_t)R + 2 * (size_t)N);
            ALLOC(s->st_dt, (size_t)I);
            break;
        case CPHIL_BACKBONE_ATTENTION:
            ALLOC(s->st_x, (size_t)H);
            ALLOC(s->st_u, (size_t)H);
            ALLOC(s->st_proj, 3 * (size_t)H);
            ALLOC(s->st_o, (size_t)H);
            ALLOC(s->st_ffn, 4 * (size_t)H);
            break;
        default: break;
        }
    }
    ALLOC(s->hbuf, (size_t)L * H + 16);
    ALLOC(s->cbuf, (size_t)L * H + 16);
    if (sp->backbone == CPHIL_BACKBONE_MAMBA) {
        ALLOC(s->conv_ring, (size_t)L * (sp->conv > 1 ? sp->conv - 1 : 1) * m->I);
        ALLOC(s->ssm, (size_t)L * m->I * sp->state);
    }
    if (sp->backbone == CPHIL_BACKBONE_ATTENTION) {
        s->wp = (W + 15) & ~15;
        ALLOC(s->kring, (size_t)L * s->wp * H);
        ALLOC(s->kt, (size_t)s->wp * H);
        ALLOC(s->att_s, (size_t)s->wp * 4 + H + 16);
        ALLOC(s->att_rows, Wz);
        ALLOC(s->vring, (size_t)L * Wz * H);
        ALLOC(s->rot, (size_t)H);
        ALLOC(s->rot_step, (size_t)H);
    }
    ALLOC(s->tmp, CPHIL_MAX((size_t)wmax * 4 + Wz + 64, (size_t)m->I * sp->state + 64));
    ALLOC(s->xres, Wz * H + 16);
    ALLOC(s->head_h, 512);
#undef ALLOC
    if (ok) {
        s->scratch = cphil_alloc(cphil_pmat_scratch_bytes(W, m->max_kp > m->H0p ? m->max_kp : m->H0p));
        ok = s->scratch != NULL;
    }
    if (!ok) {
        cphil_infer_state_close(s);
        return cphil_err(CPHIL_E_NOMEM, "out of memory for an engine state");
    }
    cphil_infer_state_reset(s);
    *out = s;
    return CPHIL_OK;
}

void cphil_infer_state_close(cphil_infer_state *s) {
    if (!s) return;
    cphil_free(s->ring_x0);
    cphil_free(s->ring_pre);
    cphil_free(s->seq_x0);
    cphil_free(s->seq_pre);
    cphil_free(s->A);
    cphil_free(s->B);
    cphil_free(s->C);
    cphil_free(s->D2);
    cphil_free(s->x0);
    cphil_free(s->feat);
    cphil_free(s->st_x);
    cphil_free(s->st_u);
    cphil_free(s->st_proj);
    cphil_free(s->st_xc);
    cphil_free(s->st_dbl);
    cphil_free(s->st_dt);
    cphil_free(s->st_o);
    cphil_free(s->st_ffn);
    cphil_free(s->hbuf);
    cphil_free(s->cbuf);
    cphil_free(s->conv_ring);
    cphil_free(s->ssm);
    cphil_free(s->kring);
    cphil_free(s->vring);
    cphil_free(s->kt);
    cphil_free(s->att_s);
    cphil_free(s->att_rows);
    cphil_free(s->rot);
    cphil_free(s->rot_step);
    cphil_free(s->tmp);
    cphil_free(s->xres);
    cphil_free(s->head_h);
    cphil_free(s->scratch);
    cphil_free(s);
}

static void stream_zero(cphil_infer_state *s) {
    const cphil_infer_model *m = s->m;
    const cphil_infer_spec *sp = &m->spec;
    int H = sp->hidden, L = sp->layers;
    memset(s->hbuf, 0, sizeof(float) * ((size_t)L * H + 16));
    memset(s->cbuf, 0, sizeof(float) * ((size_t)L * H + 16));
    if (s->conv_ring) memset(s->conv_ring, 0, sizeof(float) * (size_t)L * (sp->conv > 1 ? sp->conv - 1 : 1) * m->I);
    if (s->ssm) memset(s->ssm, 0, sizeof(float) * (size_t)L * m->I * sp->state);
    if (s->rot) {
        int dh = H / sp->heads;
        for (int i = 0; i < dh / 2; i++) {
            double th = pow((double)sp->rope_base, -2.0 * i / dh);
            s->rot[2 * i] = 1.0;
            s->rot[2 * i + 1] = 0.0;
            s->rot_step[2 * i] = cos(th);
            s->rot_step[2 * i + 1] = sin(th);
        }
    }
}

void cphil_infer_state_reset(cphil_infer_state *s) {
    s->t = 0;
    s->head = 0;
    stream_zero(s);
}

const float *cphil_infer_state_features(const cphil_infer_state *s, int *n) {
    *n = s->m->Hb;
    return s->feat;
}

/* ---- shared pieces ------------------------------------------------------------------------- */
/* x = max(x, 0) in place. The cheap cost model lets GCC vectorize it at -O2 (its default
 * very-cheap model refuses loops whose trip count needs an epilogue: this ran scalar). */
__attribute__((optimize("vect-cost-model=cheap"))) static void relu(float *restrict x, int n) {
    for (int j = 0; j < n; j++) x[j] = x[j] > 0.f ? x[j] : 0.f;
}

/* x0[H0] = input_proj(frame): continuous product + bias, plus the gathered id rows (ReLU for
 * the MLP). The product is the state's (calibration hook, scratch). */
static void input_forward(cphil_infer_state *st, const float *cont, const int32_t *ids, float *x0) {
    const cphil_infer_model *m = st->m;
    const cphil_infer_spec *sp = &m->spec;
    const int H0 = m->H0;
    if (sp->n_cont > 0) mm(st, &m->in_cont, 1, cont, sp->n_cont, x0, H0, 0);
    else memcpy(x0, m->in_b, sizeof(float) * (size_t)H0);
    if (m->has_tab) cphil_gather_add(&m->in_tab, sp->n_ids, ids, x0);
    if (sp->backbone == CPHIL_BACKBONE_MLP)
        relu(x0, H0);
}

static void rmsnorm(const float *x, const float *w, float *y, int n, float eps) { infer_rmsnorm(x, w, y, n, eps); }

/* The frame-local part of the first layer: pre = f(x0). */
static void first_layer_pre(cphil_infer_state *s, const float *x0, float *pre) {
    const cphil_infer_model *m = s->m;
    const cphil_infer_spec *sp = &m->spec;
    switch (sp->backbone) {
    case CPHIL_BACKBONE_LSTM:
    case CPHIL_BACKBONE_GRU: mm(s, &m->rnn[0].ih, 1, x0, m->H0p, pre, s->P, 0); break;
    case CPHIL_BACKBONE_MAMBA:
        rmsnorm(x0, m->mb[0].norm, s->tmp, sp->hidden, sp->norm_eps);
        mm(s, &m->mb[0].in_proj, 1, s->tmp, sp->hidden, pre, s->P, 0);
        break;
    case CPHIL_BACKBONE_ATTENTION:
        infer_layernorm(1, x0, sp->hidden, m->at[0].ln1_w, m->at[0].ln1_b, s->tmp, sp->hidden, sp->hidden, sp->norm_eps);
        mm(s, &m->at[0].qkv, 1, s->tmp, sp->hidden, pre, s->P, 0);
        break;
    default: break;
    }
}

static void ar_head2(void *ctx, int h, const float *hidden_h, float *logits_h) {
    cphil_infer_state *s = ctx;
    mm(s, &s->m->head2[h], 1, hidden_h, cphil_head_hidden[h], logits_h, INFER_N_LOGITS, 0);
}

uint8_t cphil_infer_choose_greedy(void *user, int head, const float *z) {
    (void)user;
    uint8_t v = 0;
    if (head == 0) {
        for (int k = 0; k < CPHIL_N_BUTTONS; k++) v |= (uint8_t)((z[k] > 0.f) << k);
        return v;
    }
    for (int k = 1; k < cphil_head_classes[head]; k++)
        if (z[k] > z[v]) v = (uint8_t)k;
    return v;
}

void cphil_infer_set_chooser(cphil_infer_state *s, cphil_infer_choose_fn fn, void *user) {
    s->choose = fn ? fn : cphil_infer_choose_greedy;
    s->choose_user = fn ? user : NULL;
}

const uint8_t *cphil_infer_chosen(const cphil_infer_state *s) { return s->chosen; }

/* heads: feat[Hb] -> logits[81] */
static void heads_forward(cphil_infer_state *s, const float *feat, float *logits) {
    const cphil_infer_model *m = s->m;
    mm(s, &m->head0, 1, feat, m->Hb, s->head_h, m->head0.rows, 0);
    if (m->ar.on) { /* in head order, each conditioned on the values chosen before it */
        infer_ar_forward(&m->ar, s->head_h, logits, ar_head2, s, s->choose, s->choose_user, s->chosen);
        return;
    }
    relu(s->head_h, m->head0.rows);
    int row = 0;
    for (int h = 0; h < INFER_N_HEADS; h++) {
        mm(s, &m->head2[h], 1, s->head_h + row, cphil_head_hidden[h], logits + cphil_head_offset[h], INFER_N_LOGITS, 0);
        row += cphil_head_hidden[h];
    }
}

/* GRU cell: gi[3H] = W_ih x + b_ih, gh[3H] = W_hh h + b_hh (r z n). The loops vectorize with
 * the cheap cost model (see relu). */
__attribute__((optimize("vect-cost-model=cheap"))) static void gru_cell(float *restrict gi, const float *restrict gh,
                                                                         float *restrict h, int H) {
    for (int j = 0; j < 2 * H; j++) gi[j] += gh[j];
    infer_vsigmoid(gi, 2 * H);
    for (int j = 0; j < H; j++) gi[2 * H + j] += gi[j] * gh[2 * H + j];
    infer_vtanh(gi + 2 * H, H);
    for (int j = 0; j < H; j++) {
        float z = gi[H + j];
        h[j] = (1.f - z) * gi[2 * H + j] + z * h[j];
    }
}

/* One recurrent step of layer l: input pre[G*H] (frame-local product incl. biases), state h/c.
 * h_zero: h is known to be zero (skip the product). */
static void rnn_step(cphil_infer_state *s, int l, const float *pre, float *h, float *c, bool h_zero) {
    const cphil_infer_model *m = s->m;
    const int H = m->spec.hidden;
    float *g = s->tmp, *g2 = s->tmp + 4 * H, *t2 = s->tmp + 8 * H;
    if (m->spec.backbone == CPHIL_BACKBONE_LSTM) {
        /* LSTM cell (infer_kern.c): gates = pre + W_hh h, one fused pass on AVX-512 */
        if (h_zero) {
            memcpy(g, pre, sizeof(float) * 4 * (size_t)H);
            infer_lstm_cell(g, NULL, h, c, H, t2);
        } else {
            mm(s, &m->rnn[l].hh, 1, h, H, g, 4 * H, 0);
            infer_lstm_cell(g, pre, h, c, H, t2);
        }
    } else {
        memcpy(g, pre, sizeof(float) * 3 * (size_t)H);
        if (h_zero) memcpy(g2, m->rnn[l].hh.bias, sizeof(float) * 3 * (size_t)H);
        else mm(s, &m->rnn[l].hh, 1, h, H, g2, 3 * H, 0);
        gru_cell(g, g2, h, H);
    }
}

/* ---- Mamba --------------------------------------------------------------------------------- */
/* Window Mamba over T positions. X[T][H] residual stream (in/out). layer 0 uses seq_pre for xz.
 * last: only the last position's output is needed from the last layer. */
static void mamba_window(cphil_infer_state *s, int T, float *X) {
    const cphil_infer_model *m = s->m;
    const cphil_infer_spec *sp = &m->spec;
    const int H = sp->hidden, I = m->I, R = m->R, N = sp->state, K = sp->conv, L = sp->layers;
    const int wm = s->wmax;
    float *U = s->A, *XZ = s->B, *XC = s->C, *DBL = s->D2;
    float *DT = s->A; /* U is dead once XZ is made */
    float *h = s->ssm; /* scratch SSM state (window mode never uses the stream state) */
    float *y = s->feat;
    const float *tap[64];
    for (int l = 0; l < L; l++) {
        const mamba_layer *ml = &m->mb[l];
        /* xz rows: layer 0 from the cache, others computed */
        if (l > 0) {
            for (int t = 0; t < T; t++) rmsnorm(X + (size_t)t * H, ml->norm, U + (size_t)t * wm, H, sp->norm_eps);
            mm(s, &ml->in_proj, T, U, wm, XZ, wm, 0);
        } else {
            for (int t = 0; t < T; t++) memcpy(XZ + (size_t)t * wm, s->seq_pre[t], sizeof(float) * 2 * (size_t)I);
        }
        /* causal depthwise conv + SiLU: XC[t][i] (taps before the sequence contribute nothing) */
        for (int t = 0; t < T; t++) {
            for (int j = 0; j < K; j++) {
                int tt = t - (K - 1) + j;
                tap[j] = tt < 0 ? NULL : XZ + (size_t)tt * wm;
            }
            infer_conv_silu(I, K, ml->conv_w, ml->conv_b, tap, NULL, XC + (size_t)t * wm);
        }
        mm(s, &ml->x_proj, T, XC, wm, DBL, wm, 0);
        mm(s, &ml->dt_proj, T, DBL, wm, DT, wm, 0); /* softplus is the scan's */
        memset(h, 0, sizeof(float) * (size_t)I * N);
        bool last_layer = l == L - 1;
        for (int t = 0; t < T; t++) {
            const float *dbl = DBL + (size_t)t * wm;
            infer_ssm_gated(I, N, ml->A, DT + (size_t)t * wm, XC + (size_t)t * wm, XZ + (size_t)t * wm + I, dbl + R,
                            dbl + R + N, ml->D, h, last_layer ? y : XC + (size_t)t * wm);
        }
        /* XC[t] now holds y[t] (y only for the last position in the last layer) */
        if (last_layer) mm(s, &ml->out_proj, 1, y, I, X + (size_t)(T - 1) * H, H, 1);
        else mm(s, &ml->out_proj, T, XC, wm, X, H, 1);
    }
    rmsnorm(X + (size_t)(T - 1) * H, m->normf_w, s->feat, H, sp->norm_eps);
}

/* One Mamba step per layer. The conv ring holds the last K-1 inputs of each layer in rotating
 * slots: at frame t the oldest is in slot t mod (K-1), and the new input replaces it (no shifts). */
static void mamba_stream(cphil_infer_state *s, const float *x0, const float *pre0) {
    const cphil_infer_model *m = s->m;
    const cphil_infer_spec *sp = &m->spec;
    const int H = sp->hidden, I = m->I, R = m->R, N = sp->state, K = sp->conv, L = sp->layers;
    float *x = s->st_x, *u = s->st_u, *xzb = s->st_proj, *xc = s->st_xc, *dbl = s->st_dbl, *dt = s->st_dt;
    float *y = s->feat; /* [I] of wmax >= 2I: the last layer's gated output, then the features */
    const float *tap[64];
    memcpy(x, x0, sizeof(float) * (size_t)H);
    const int Km1 = K > 1 ? K - 1 : 1;
    const int r0 = K > 1 ? (int)(s->t % (K - 1)) : 0;
    for (int l = 0; l < L; l++) {
        const mamba_layer *ml = &m->mb[l];
        const float *xz = pre0;
        if (l > 0) {
            rmsnorm(x, ml->norm, u, H, sp->norm_eps);
            mm(s, &ml->in_proj, 1, u, H, xzb, 2 * I, 0);
            xz = xzb;
        }
        float *ring = s->conv_ring + (size_t)l * Km1 * I;
        for (int j = 0; j < K - 1; j++) tap[j] = ring + (size_t)((r0 + j) % (K - 1)) * I;
        tap[K - 1] = xz;
        infer_conv_silu(I, K, ml->conv_w, ml->conv_b, tap, K > 1 ? ring + (size_t)r0 * I : NULL, xc);
        mm(s, &ml->x_proj, 1, xc, I, dbl, R + 2 * N, 0);
        mm(s, &ml->dt_proj, 1, dbl, R, dt, I, 0);
        infer_ssm_gated(I, N, ml->A, dt, xc, xz + I, dbl + R, dbl + R + N, ml->D, s->ssm + (size_t)l * I * N, y);
        mm(s, &ml->out_proj, 1, y, I, x, H, 1);
    }
    rmsnorm(x, m->normf_w, s->feat, H, sp->norm_eps);
}

/* ---- attention ----------------------------------------------------------------------------- */
/* RoPE of one row's q or k (H values, heads of dh: rotate-half per head) by angles cs/sn [dh/2];
 * from src to dst (dst == src: in place). */
static void rope_row(const float *src, float *dst, int H, int heads, const float *cs, const float *sn) {
    const int dh = H / heads, h2 = dh / 2;
    for (int hd = 0; hd < heads; hd++)
        infer_rope_pairs(src + hd * dh, src + hd * dh + h2, cs, sn, dst + hd * dh, dst + hd * dh + h2, h2);
}

/* FFN residual on M rows of X[M][H]: X += fc2(gelu(fc1(ln2(X)))) */
static void attn_ffn(cphil_infer_state *s, const attn_layer *al, int M, float *X, float *U, float *F) {
    const int H = s->m->spec.hidden;
    const int wm = s->wmax;
    infer_layernorm(M, X, H, al->ln2_w, al->ln2_b, U, wm, H, s->m->spec.norm_eps);
    mm(s, &al->fc1, M, U, wm, F, wm, 0);
    if (wm == 4 * H) infer_vgelu(F, M * 4 * H);
    else
        for (int t = 0; t < M; t++) infer_vgelu(F + (size_t)t * wm, 4 * H);
    mm(s, &al->fc2, M, F, wm, X, H, 1);
}

static void attn_window(cphil_infer_state *s, int T, float *X) {
    const cphil_infer_model *m = s->m;
    const cphil_infer_spec *sp = &m->spec;
    const int H = sp->hidden, L = sp->layers, nh = sp->heads, dh = H / nh;
    const int wm = s->wmax;
    const int Wp = s->wp;
    const float scale = 1.f / sqrtf((float)dh);
    float *U = s->A, *QKV = s->B, *O = s->C, *F = s->D2;
    float *KT = s->kt;
    for (int l = 0; l < L; l++) {
        const attn_layer *al = &m->at[l];
        bool last = l == L - 1;
        if (l > 0) {
            infer_layernorm(T, X, H, al->ln1_w, al->ln1_b, U, wm, H, sp->norm_eps);
            if (last && T > 1) { /* only the last position's query is used: K, V for the others */
                /* a view of qkv's panels from the one holding row H on (K, V and a few Q rows);
                 * made here so that it sees the matrix's current act_scale */
                const cphil_pmat kv = cphil_pmat_view_panels(&al->qkv, H / CPHIL_PANEL, al->qkv.np);
                const int c0 = H / CPHIL_PANEL * CPHIL_PANEL;
                mm(s, &kv, T - 1, U, wm, QKV + c0, wm, 0);
                mm(s, &al->qkv, 1, U + (size_t)(T - 1) * wm, wm, QKV + (size_t)(T - 1) * wm, wm, 0);
            } else {
                mm(s, &al->qkv, T, U, wm, QKV, wm, 0);
            }
        }
        /* q|k|v rows: layer 0's are the per-frame cache (read only), the others QKV's */
        const float **rows = s->att_rows;
        for (int t = 0; t < T; t++) rows[t] = l == 0 ? s->seq_pre[t] : QKV + (size_t)t * wm;
        int t0 = last ? T - 1 : 0;
        /* RoPE by window position (relative positions are what matter): the queries used, into
         * QKV; the keys transposed into KT (KT[c][t]: a query's scores take 16 keys at a time),
         * rotated along t with the transposed tables; layer 0's values copied into QKV */
        for (int t = t0; t < T; t++)
            rope_row(rows[t], QKV + (size_t)t * wm, H, nh, m->rope_cos + (size_t)t * (dh / 2), m->rope_sin + (size_t)t * (dh / 2));
        if (l == 0)
            for (int t = 0; t < T; t++) memcpy(QKV + (size_t)t * wm + 2 * H, rows[t] + 2 * H, sizeof(float) * (size_t)H);
        infer_transpose_rows(rows, H, T, H, KT, Wp);
        for (int hd = 0; hd < nh; hd++)
            for (int i = 0; i < dh / 2; i++) {
                float *ka = KT + (size_t)(hd * dh + i) * Wp, *kb = ka + (size_t)(dh / 2) * Wp;
                infer_rope_pairs(ka, kb, m->rope_cosT + (size_t)i * Wp, m->rope_sinT + (size_t)i * Wp, ka, kb, T);
            }
        for (int hd = 0; hd < nh; hd++)
            infer_attend_causal(QKV + hd * dh, wm, KT + (size_t)hd * dh * Wp, Wp, QKV + 2 * H + hd * dh, wm, t0, T, dh, scale,
                                O + hd * dh, wm, s->att_s);
        int M = T - t0;
        float *Xl = X + (size_t)t0 * H;
        mm(s, &al->out, M, O, wm, Xl, H, 1);
        attn_ffn(s, al, M, Xl, U, F);
    }
    infer_layernorm(1, X + (size_t)(T - 1) * H, H, m->normf_w, m->normf_b, s->feat, H, H, sp->norm_eps);
}

static void attn_stream(cphil_infer_state *s, const float *x0, const float *pre0) {
    const cphil_infer_model *m = s->m;
    const cphil_infer_spec *sp = &m->spec;
    const int H = sp->hidden, L = sp->layers, nh = sp->heads, dh = H / nh, W = s->W, Wp = s->wp;
    const float scale = 1.f / sqrtf((float)dh);
    float *x = s->st_x, *u = s->st_u, *qkv = s->st_proj, *o = s->st_o, *F = s->st_ffn;
    float cs[INFER_MAX_HEAD_DIM / 2], sn[INFER_MAX_HEAD_DIM / 2]; /* dh <= INFER_MAX_HEAD_DIM: check_spec */
    for (int i = 0; i < dh / 2; i++) {
        cs[i] = (float)s->rot[2 * i];
        sn[i] = (float)s->rot[2 * i + 1];
    }
    memcpy(x, x0, sizeof(float) * (size_t)H);
    int slot = (int)(s->t % W);
    int n = s->t + 1 < W ? (int)(s->t + 1) : W;
    for (int l = 0; l < L; l++) {
        const attn_layer *al = &m->at[l];
        if (l == 0) memcpy(qkv, pre0, sizeof(float) * 3 * (size_t)H);
        else {
            infer_layernorm(1, x, H, al->ln1_w, al->ln1_b, u, H, H, sp->norm_eps);
            mm(s, &al->qkv, 1, u, H, qkv, 3 * H, 0);
        }
        rope_row(qkv, qkv, H, nh, cs, sn);
        rope_row(qkv + H, qkv + H, H, nh, cs, sn);
        /* key ring transposed (kr[c][slot]), value ring by rows (vr[slot][c]) */
        float *kr = s->kring + (size_t)l * H * Wp, *vr = s->vring + (size_t)l * W * H;
        for (int c = 0; c < H; c++) kr[(size_t)c * Wp + slot] = qkv[H + c];
        memcpy(vr + (size_t)slot * H, qkv + 2 * H, sizeof(float) * (size_t)H);
        /* order inside the ring does not matter for softmax attention */
        for (int hd = 0; hd < nh; hd++)
            infer_attend_head(qkv + hd * dh, kr + (size_t)hd * dh * Wp, Wp, vr + hd * dh, H, n, dh, scale, o + hd * dh,
                              s->tmp);
        mm(s, &al->out, 1, o, H, x, H, 1);
        attn_ffn(s, al, 1, x, u, F);
    }
    infer_layernorm(1, x, H, m->normf_w, m->normf_b, s->feat, H, H, sp->norm_eps);
    /* advance the absolute position's rotation (double, renormalized) */
    for (int i = 0; i < dh / 2; i++) {
        double c = s->rot[2 * i], sN = s->rot[2 * i + 1];
        double c2 = s->rot_step[2 * i], s2 = s->rot_step[2 * i + 1];
        double nc = c * c2 - sN * s2, ns = sN * c2 + c * s2;
        double r = 1.0 / sqrt(nc * nc + ns * ns);
        s->rot[2 * i] = nc * r;
        s->rot[2 * i + 1] = ns * r;
    }
}

/* ---- LSTM / GRU window ----------------------------------------------------------------------- */
static void rnn_window(cphil_infer_state *s, int T) {
    const cphil_infer_model *m = s->m;
    const cphil_infer_spec *sp = &m->spec;
    const int H = sp->hidden, L = sp->layers, G = sp->backbone == CPHIL_BACKBONE_LSTM ? 4 : 3;
    const int wm = s->wmax;
    float *Hs = s->A, *Gs = s->B;
    float *h = s->hbuf, *c = s->cbuf; /* window mode never uses the stream state */
    for (int l = 0; l < L; l++) {
        memset(h, 0, sizeof(float) * (size_t)H);
        memset(c, 0, sizeof(float) * (size_t)H);
        if (l > 0) mm(s, &m->rnn[l].ih, T, Hs, wm, Gs, wm, 0);
        for (int t = 0; t < T; t++) {
            const float *pre = l == 0 ? s->seq_pre[t] : Gs + (size_t)t * wm;
            rnn_step(s, l, pre, h, c, t == 0);
            if (l < L - 1) memcpy(Hs + (size_t)t * wm, h, sizeof(float) * (size_t)H);
        }
    }
    memcpy(s->feat, h, sizeof(float) * (size_t)H);
    (void)G;
}

static void rnn_stream(cphil_infer_state *s, const float *pre0) {
    const cphil_infer_model *m = s->m;
    const int H = m->spec.hidden, L = m->spec.layers;
    float *gin = s->st_proj;
    for (int l = 0; l < L; l++) {
        float *h = s->hbuf + (size_t)l * H, *c = s->cbuf + (size_t)l * H;
        const float *pre = pre0;
        if (l > 0) {
            mm(s, &m->rnn[l].ih, 1, s->hbuf + (size_t)(l - 1) * H, H, gin, s->P, 0);
            pre = gin;
        }
        rnn_step(s, l, pre, h, c, false);
    }
    memcpy(s->feat, s->hbuf + (size_t)(L - 1) * H, sizeof(float) * (size_t)H);
}

/* ---- MLP ------------------------------------------------------------------------------------- */
static void mlp_forward(cphil_infer_state *s, const float *x0) {
    const cphil_infer_model *m = s->m;
    const cphil_infer_spec *sp = &m->spec;
    const float *x = x0;
    float *bufs[2] = {s->A, s->B};
    int w = sp->mlp[0];
    for (int i = 1; i < sp->n_mlp; i++) {
        float *y = bufs[i & 1];
        mm(s, &m->mlp[i], 1, x, w, y, sp->mlp[i], 0);
        relu(y, sp->mlp[i]);
        x = y;
        w = sp->mlp[i];
    }
    memcpy(s->feat, x, sizeof(float) * (size_t)m->Hb);
}

/* ---- steps ----------------------------------------------------------------------------------- */
static cphil_status check_frame(const cphil_infer_model *m, const float *cont, const int32_t *ids) {
    const cphil_infer_spec *sp = &m->spec;
    for (int k = 0; k < sp->n_ids; k++)
        if (ids[k] < sp->n_cont || ids[k] >= sp->E)
            return cphil_err(CPHIL_E_ARG, "frame id %d is %d, outside the one-hot columns [%d, %d)", k, (int)ids[k],
                             sp->n_cont, sp->E);
    for (int c = 0; c < sp->n_cont; c++)
        if (!isfinite(cont[c])) return cphil_err(CPHIL_E_NUMERIC, "continuous feature %d is not finite", c);
    return CPHIL_OK;
}

static void seq_forward(cphil_infer_state *s, int T) {
    const cphil_infer_model *m = s->m;
    const int H = m->spec.hidden;
    if (m->spec.backbone == CPHIL_BACKBONE_MAMBA || m->spec.backbone == CPHIL_BACKBONE_ATTENTION) {
        /* residual stream X[T][H]: the x0 ring is not touched, so copy into the stream buffer */
        float *X = s->xres;
        for (int t = 0; t < T; t++) memcpy(X + (size_t)t * H, s->seq_x0[t], sizeof(float) * (size_t)H);
        if (m->spec.backbone == CPHIL_BACKBONE_MAMBA) mamba_window(s, T, X);
        else attn_window(s, T, X);
    } else if (m->spec.backbone == CPHIL_BACKBONE_MLP) {
        mlp_forward(s, s->seq_x0[T - 1]);
    } else {
        rnn_window(s, T);
    }
}

cphil_status cphil_infer_step(cphil_infer_state *s, const float *cont, const int32_t *ids, float *logits) {
    const cphil_infer_model *m = s->m;
    cphil_status st = check_frame(m, cont, ids);
    if (st) return st;
    const int W = s->W, H0p = m->H0p, P = s->P;
    if (s->mode == CPHIL_INFER_WINDOW || m->spec.backbone == CPHIL_BACKBONE_MLP) {
        int slot = s->t == 0 ? 0 : (s->head + 1) % W;
        float *x0 = s->ring_x0 + (size_t)slot * H0p;
        input_forward(s, cont, ids, x0);
        if (P) first_layer_pre(s, x0, s->ring_pre + (size_t)slot * P);
        if (s->t == 0)
            for (int j = 1; j < W; j++) { /* left-pad with the first frame */
                memcpy(s->ring_x0 + (size_t)j * H0p, x0, sizeof(float) * (size_t)H0p);
                if (P) memcpy(s->ring_pre + (size_t)j * P, s->ring_pre, sizeof(float) * (size_t)P);
            }
        s->head = slot;
        for (int t = 0; t < W; t++) { /* window order: oldest first */
            int j = (slot + 1 + t) % W;
            s->seq_x0[t] = s->ring_x0 + (size_t)j * H0p;
            s->seq_pre[t] = P ? s->ring_pre + (size_t)j * P : NULL;
        }
        seq_forward(s, W);
    } else {
        float *x0 = s->x0, *pre = s->ring_pre;
        input_forward(s, cont, ids, x0);
        if (P) first_layer_pre(s, x0, pre);
        int reps = s->t == 0 ? W : 1; /* cold start: the first frame W times (= window mode) */
        for (int r = 0; r < reps; r++) {
            switch (m->spec.backbone) {
            case CPHIL_BACKBONE_LSTM:
            case CPHIL_BACKBONE_GRU: rnn_stream(s, pre); break;
            case CPHIL_BACKBONE_MAMBA: mamba_stream(s, x0, pre); break;
            case CPHIL_BACKBONE_ATTENTION: attn_stream(s, x0, pre); break;
            default: break;
            }
            if (r + 1 < reps) s->t++;
        }
    }
    s->t++;
    heads_forward(s, s->feat, logits);
    return CPHIL_OK;
}

cphil_status cphil_infer_correct(cphil_infer_state *s, int back, const float *cont, const int32_t *ids, float *logits) {
    const cphil_infer_model *m = s->m;
    const int W = s->W, H0p = m->H0p, P = s->P;
    if (s->mode != CPHIL_INFER_WINDOW && m->spec.backbone != CPHIL_BACKBONE_MLP)
        return cphil_err(CPHIL_E_ARG, "a stream-mode state cannot correct a frame it has consumed");
    int64_t held = s->t < W ? s->t : W;
    if (back < 0 || back >= held)
        return cphil_err(CPHIL_E_ARG, "frame %d steps back is not in the window (%lld frames held)", back, (long long)held);
    cphil_status st = check_frame(m, cont, ids);
    if (st) return st;
    int slot = ((s->head - back) % W + W) % W;
    float *x0 = s->ring_x0 + (size_t)slot * H0p;
    input_forward(s, cont, ids, x0);
    if (P) first_layer_pre(s, x0, s->ring_pre + (size_t)slot * P);
    if (back == s->t - 1) /* the game's first frame (slot 0): the padding slots t..W-1 copy it */
        for (int j = (int)s->t; j < W; j++) {
            memcpy(s->ring_x0 + (size_t)j * H0p, x0, sizeof(float) * (size_t)H0p);
            if (P) memcpy(s->ring_pre + (size_t)j * P, s->ring_pre + (size_t)slot * P, sizeof(float) * (size_t)P);
        }
    /* seq_x0 / seq_pre still point at the ring in window order (set by the last step) */
    seq_forward(s, W);
    heads_forward(s, s->feat, logits);
    return CPHIL_OK;
}

int64_t cphil_infer_state_frames(const cphil_infer_state *s) { return s->t; }

cphil_status cphil_infer_run_sequence(cphil_infer_state *s, int T, const float *cont, const int32_t *ids,
                                      float *logits) {
    const cphil_infer_model *m = s->m;
    const cphil_infer_spec *sp = &m->spec;
    /* window mode only: the sequence runs in the scratch that stream mode carries its state in
     * (h, c, the SSM state) and restarts the frame count, which would corrupt a stream */
    if (s->mode != CPHIL_INFER_WINDOW)
        return cphil_err(CPHIL_E_ARG, "cphil_infer_run_sequence needs a window-mode state (this one streams)");
    if (T < 1 || T > s->W) return cphil_err(CPHIL_E_ARG, "sequence of %d frames (window %d)", T, s->W);
    for (int t = 0; t < T; t++) {
        cphil_status st = check_frame(m, cont + (size_t)t * sp->n_cont, ids + (size_t)t * sp->n_ids);
        if (st) return st;
        float *x0 = s->ring_x0 + (size_t)t * m->H0p;
        input_forward(s, cont + (size_t)t * sp->n_cont, ids + (size_t)t * sp->n_ids, x0);
        if (s->P) first_layer_pre(s, x0, s->ring_pre + (size_t)t * s->P);
        s->seq_x0[t] = x0;
        s->seq_pre[t] = s->P ? s->ring_pre + (size_t)t * s->P : NULL;
    }
    seq_forward(s, T);
    heads_forward(s, s->feat, logits);
    s->t = 0; /* the ring was overwritten: the next step starts a new game */
    return CPHIL_OK;
}
