/* infer.c — the inference engine's common part (see infer.h for the modes and the contract,
 * infer_impl.h for how it is split): model build from a tensor lookup (shape-checked, packed to
 * the chosen precision), the input layer and the heads, the per-thread state with its frame ring,
 * and the dispatch of a step to the backbone's file (infer_mlp.c, infer_rnn.c, infer_mamba.c,
 * infer_attention.c).
 * Does not: sampling (src/agent), file parsing (the loader hands tensors through the lookup).
 * References: docs/interfaces.md for the parameter names.
 */
#include "infer/infer_impl.h"
#include "infer/infer_ar.h"

#include <stdio.h>

static const infer_backbone *backbone_ops(cphil_backbone b) {
    switch (b) {
    case CPHIL_BACKBONE_MLP: return &cphil_infer_mlp_ops;
    case CPHIL_BACKBONE_LSTM:
    case CPHIL_BACKBONE_GRU: return &cphil_infer_rnn_ops;
    case CPHIL_BACKBONE_MAMBA: return &cphil_infer_mamba_ops;
    case CPHIL_BACKBONE_ATTENTION: return &cphil_infer_attention_ops;
    default: return NULL;
    }
}

void *cphil_infer_calloc(bool *ok, size_t n, size_t sz) {
    if (!*ok) return NULL;
    void *p = cphil_calloc(n ? n : 1, sz);
    *ok = p != NULL;
    return p;
}

/* x = max(x, 0) in place. The cheap cost model lets GCC vectorize it at -O2 (its default
 * very-cheap model refuses loops whose trip count needs an epilogue: this ran scalar). */
__attribute__((optimize("vect-cost-model=cheap"))) void cphil_infer_relu(float *restrict x, int n) {
    for (int j = 0; j < n; j++) x[j] = x[j] > 0.f ? x[j] : 0.f;
}

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
    out->dtype = CPHIL_W_F32;
    out->rank = t->ndim;
    for (int i = 0; i < t->ndim; i++) out->shape[i] = t->shape[i];
    out->data = m->params + t->offset;
    return CPHIL_OK;
}

/* ---- model ------------------------------------------------------------------------------- */
static cphil_status get_tensor(infer_build *b, const char *name, int rank, const int64_t *shape,
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
    if (t->dtype == CPHIL_W_I8 && !t->scale)
        return cphil_err(CPHIL_E_MISMATCH, "int8 tensor '%s' has no per-channel scales", name);
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= shape[i];
    b->m->params += n;
    return CPHIL_OK;
}

cphil_status cphil_infer_load_floats(infer_build *b, const char *name, int rank, const int64_t *shape, float **out) {
    cphil_infer_tensor t;
    cphil_status s = get_tensor(b, name, rank, shape, &t);
    if (s) return s;
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= shape[i];
    float *f = cphil_alloc(sizeof(float) * (size_t)n);
    if (!f) return cphil_err(CPHIL_E_NOMEM, "out of memory loading '%s'", name);
    if (t.dtype == CPHIL_W_F32) memcpy(f, t.data, sizeof(float) * (size_t)n);
    else if (t.dtype == CPHIL_W_BF16)
        for (int64_t i = 0; i < n; i++) f[i] = infer_bf16_to_f32(((const uint16_t *)t.data)[i]);
    else {
        int64_t cols = n / shape[0];
        for (int64_t i = 0; i < n; i++) f[i] = (float)((const int8_t *)t.data)[i] * t.scale[i / cols];
    }
    b->m->bytes += sizeof(float) * (size_t)n;
    *out = f;
    return CPHIL_OK;
}

cphil_status cphil_infer_load_vec(infer_build *b, const char *name, int64_t n, float **out) {
    return cphil_infer_load_floats(b, name, 1, &n, out);
}

cphil_status cphil_infer_load_linear(infer_build *b, cphil_pmat *mat, const char *wname, const char *bname, const char *b2name,
                           int rows, int cols) {
    cphil_infer_model *m = b->m;
    int64_t shape[2] = {rows, cols};
    cphil_infer_tensor t;
    cphil_status s = get_tensor(b, wname, 2, shape, &t);
    if (s) return s;
    float *bias = NULL, *b2 = NULL;
    if (bname && (s = cphil_infer_load_vec(b, bname, rows, &bias))) return s;
    if (b2name && (s = cphil_infer_load_vec(b, b2name, rows, &b2))) {
        cphil_free(bias);
        return s;
    }
    if (b2)
        for (int i = 0; i < rows; i++) bias[i] += b2[i];
    cphil_free(b2);
    if (bias) m->bytes -= sizeof(float) * (size_t)rows * (b2name ? 2 : 1);
    if (t.dtype == CPHIL_W_I8) {
        if (m->prec != CPHIL_W_I8) {
            cphil_free(bias);
            return cphil_err(CPHIL_E_MISMATCH, "tensor '%s' is int8 but the engine was asked for %s weights",
                             wname, m->prec == CPHIL_W_F32 ? "f32" : "bf16");
        }
        s = cphil_pmat_pack_i8(mat, rows, cols, t.data, t.scale, bias);
        mat->act_scale = t.act_scale > 0.f ? t.act_scale : 0.f;
    } else {
        const float *w = t.data;
        float *tmp = NULL;
        if (t.dtype == CPHIL_W_BF16) {
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
    if (m->n_mats >= INFER_MAX_MATS) return cphil_err(CPHIL_E_INTERNAL, "too many matrices");
    mat->id = m->n_mats;
    snprintf(m->mat_names[m->n_mats], sizeof m->mat_names[0], "%s", wname);
    m->mats[m->n_mats++] = mat;
    m->bytes += cphil_pmat_bytes(mat) + (mat->bias ? sizeof(float) * (size_t)rows : 0);
    if (mat->kp > m->max_kp) m->max_kp = mat->kp;
    return CPHIL_OK;
}

/* input_proj.weight [H0, E]: continuous columns packed like any product (bias folded in),
 * one-hot columns as a gather table in the engine's precision. An int8 file's weights are used
 * as they are (its per-row scales, and its calibrated activation scale for the continuous
 * product when the file is static): quantizing the dequantized values again would round twice. */
static cphil_status input_layer(infer_build *b) {
    cphil_infer_model *m = b->m;
    const cphil_infer_spec *sp = &m->spec;
    int H0 = m->H0, E = sp->E, nc = sp->n_cont;
    int64_t shape[2] = {H0, E};
    cphil_infer_tensor t;
    float *w = NULL, *wc = NULL;
    int8_t *qc = NULL;
    cphil_status s = get_tensor(b, "input_proj.weight", 2, shape, &t);
    if (s) return s;
    const bool i8 = t.dtype == CPHIL_W_I8;
    if (i8 && m->prec != CPHIL_W_I8)
        return cphil_err(CPHIL_E_MISMATCH, "tensor 'input_proj.weight' is int8 but the engine was asked for %s weights",
                         m->prec == CPHIL_W_F32 ? "f32" : "bf16");
    if ((s = cphil_infer_load_vec(b, "input_proj.bias", H0, &m->in_b))) return s;
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
            w[i] = t.dtype == CPHIL_W_F32 ? ((const float *)t.data)[i] : infer_bf16_to_f32(((const uint16_t *)t.data)[i]);
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
            cphil_wtype wt = m->prec == CPHIL_W_F32 ? CPHIL_W_F32 : m->prec == CPHIL_W_BF16 ? CPHIL_W_BF16 : CPHIL_W_I8;
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
    const infer_backbone *ops = backbone_ops(sp->backbone);
    if (!ops) return cphil_err(CPHIL_E_MISMATCH, "unknown backbone %d", sp->backbone);
    if (sp->n_cont < 0 || sp->n_ids < 0 || sp->E < 1 || sp->n_cont > sp->E || sp->E > (1 << 20))
        return cphil_err(CPHIL_E_MISMATCH, "bad embedding sizes (n_cont %d, n_ids %d, E %d)", sp->n_cont, sp->n_ids, sp->E);
    if (sp->backbone != CPHIL_BACKBONE_MLP) {
        if (sp->hidden < 1 || sp->hidden > 16384) return cphil_err(CPHIL_E_MISMATCH, "bad hidden size %d", sp->hidden);
        if (sp->layers < 1 || sp->layers > INFER_MAX_LAYERS)
            return cphil_err(CPHIL_E_MISMATCH, "bad layer count %d", sp->layers);
        if (sp->window < 1 || sp->window > 4096) return cphil_err(CPHIL_E_MISMATCH, "bad window %d", sp->window);
    }
    return ops->check ? ops->check(sp) : CPHIL_OK;
}

/* heads: the six first layers fused into one [352, Hb] product, then one product each */
static cphil_status load_heads(infer_build *b) {
    cphil_infer_model *m = b->m;
    char n1[96], n2[96];
    cphil_status s = CPHIL_OK;
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
        if (!(s = cphil_infer_load_floats(b, n1, 2, sh, &w)) && !(s = cphil_infer_load_vec(b, n2, hid, &bb))) {
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
        if (!s && b->lookup(b->ctx, "heads.buttons.0.weight", &ht) == CPHIL_OK && ht.dtype == CPHIL_W_I8)
            m->head0.act_scale = ht.act_scale;
        if (!s) {
            m->head0.id = m->n_mats;
            snprintf(m->mat_names[m->n_mats], sizeof m->mat_names[0], "heads.*.0.weight");
            m->mats[m->n_mats++] = &m->head0;
            m->bytes += cphil_pmat_bytes(&m->head0);
            if (m->head0.kp > m->max_kp) m->max_kp = m->head0.kp;
        }
    }
    cphil_free(w0);
    cphil_free(b0);
    if (s) return s;
    for (int h = 0; h < INFER_N_HEADS; h++) {
        snprintf(n1, sizeof n1, "heads.%s.2.weight", cphil_head_names[h]);
        snprintf(n2, sizeof n2, "heads.%s.2.bias", cphil_head_names[h]);
        if ((s = cphil_infer_load_linear(b, &m->head2[h], n1, n2, NULL, cphil_head_classes[h], cphil_head_hidden[h])))
            return s;
    }
    if (m->spec.ar_heads) return cphil_infer_ar_load(&m->ar, b->lookup, b->ctx);
    return CPHIL_OK;
}

cphil_status cphil_infer_model_build(const cphil_infer_spec *spec, cphil_infer_lookup lookup, void *ctx,
                                     cphil_wtype precision, cphil_infer_model **out) {
    *out = NULL;
    cphil_status s = check_spec(spec);
    if (s) return s;
    cphil_infer_model *m = cphil_calloc(1, sizeof *m);
    if (!m) return cphil_err(CPHIL_E_NOMEM, "out of memory for the engine");
    m->spec = *spec;
    if (m->spec.norm_eps <= 0.f) m->spec.norm_eps = 1e-5f;
    if (m->spec.rope_base <= 0.f) m->spec.rope_base = 10000.f;
    if (spec->backbone == CPHIL_BACKBONE_MLP) m->spec.window = 1;
    m->ops = backbone_ops(spec->backbone);
    m->prec = precision;
    m->H0 = spec->backbone == CPHIL_BACKBONE_MLP ? spec->mlp[0] : spec->hidden;
    m->Hb = spec->backbone == CPHIL_BACKBONE_MLP ? spec->mlp[spec->n_mlp - 1] : spec->hidden;
    infer_build b = {lookup, ctx, m};
    if (!(s = input_layer(&b)) && !(s = m->ops->load(&b))) s = load_heads(&b);
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
    cphil_infer_ar_free(&m->ar);
    if (m->weights) m->ops->free_weights(m->weights);
    cphil_free(m);
}

const cphil_infer_spec *cphil_infer_model_spec(const cphil_infer_model *m) { return &m->spec; }
cphil_wtype cphil_infer_model_precision(const cphil_infer_model *m) { return m->prec; }
int64_t cphil_infer_model_params(const cphil_infer_model *m) { return m->params; }
size_t cphil_infer_model_bytes(const cphil_infer_model *m) { return m->bytes; }

/* Read one word per 64-byte line of [p, p + n) (a load, not a prefetch hint: it completes). */
static uint32_t touch_lines(const void *p, size_t n) {
    const volatile unsigned char *b = (const volatile unsigned char *)p;
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i += 64) acc += b[i];
    return acc;
}

size_t cphil_infer_model_touch(const cphil_infer_model *m) {
    size_t bytes = 0;
    uint32_t acc = 0;
    for (int i = 0; i < m->n_mats; i++) {
        const cphil_pmat *p = m->mats[i];
        size_t wb = cphil_pmat_bytes(p), rows = (size_t)p->np * CPHIL_PANEL;
        acc += touch_lines(p->w, wb);
        bytes += wb;
        if (p->scale) acc += touch_lines(p->scale, rows * sizeof(float));
        if (p->rowsum) acc += touch_lines(p->rowsum, rows * sizeof(int32_t));
        if (p->bias) acc += touch_lines(p->bias, (size_t)p->rows * sizeof(float));
    }
    (void)acc;
    return bytes;
}
int cphil_infer_model_n_mats(const cphil_infer_model *m) { return m->n_mats; }
const char *cphil_infer_model_mat_name(const cphil_infer_model *m, int i) {
    return i >= 0 && i < m->n_mats ? m->mat_names[i] : NULL;
}
void cphil_infer_model_set_act_scales(cphil_infer_model *m, const float *scales) {
    for (int i = 0; i < m->n_mats; i++) m->mats[i]->act_scale = scales ? scales[i] : 0.f;
}

/* ---- state ------------------------------------------------------------------------------- */
void cphil_infer_state_calibrate(cphil_infer_state *s, float *amax) { s->calib = amax; }

cphil_status cphil_infer_state_open(const cphil_infer_model *m, cphil_infer_mode mode, cphil_infer_state **out) {
    *out = NULL;
    cphil_infer_state *s = cphil_calloc(1, sizeof *s);
    if (!s) return cphil_err(CPHIL_E_NOMEM, "out of memory for an engine state");
    s->m = m;
    s->mode = mode;
    s->inflight = true;
    s->choose = cphil_infer_choose_greedy;
    s->W = m->spec.backbone == CPHIL_BACKBONE_MLP ? 1 : m->spec.window;
    s->P = m->ops->pre_width(m);
    /* the ring holds the window in window mode (and for the MLP, whose window is one frame) */
    s->ring_n = mode == CPHIL_INFER_WINDOW || !m->ops->stream ? s->W : 1;
    const size_t W = (size_t)s->W, R = (size_t)s->ring_n;
    bool ok = true;
    s->ring_x0 = cphil_infer_calloc(&ok, R * m->H0p, sizeof(float));
    if (s->P) s->ring_pre = cphil_infer_calloc(&ok, R * s->P, sizeof(float));
    s->seq_x0 = cphil_infer_calloc(&ok, W, sizeof *s->seq_x0);
    s->seq_pre = cphil_infer_calloc(&ok, W, sizeof *s->seq_pre);
    s->x0 = cphil_infer_calloc(&ok, (size_t)m->H0p, sizeof(float));
    s->feat = cphil_infer_calloc(&ok, (size_t)m->Hb, sizeof(float));
    s->head_h = cphil_infer_calloc(&ok, (size_t)m->head0.rows, sizeof(float));
    if (ok) {
        s->scratch = cphil_alloc(cphil_pmat_scratch_bytes(s->W, m->max_kp > m->H0p ? m->max_kp : m->H0p));
        ok = s->scratch != NULL;
    }
    if (ok && m->ops->open(s)) ok = false;
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
    if (s->run) s->m->ops->close(s->run);
    cphil_free(s->ring_x0);
    cphil_free(s->ring_pre);
    cphil_free(s->seq_x0);
    cphil_free(s->seq_pre);
    cphil_free(s->x0);
    cphil_free(s->feat);
    cphil_free(s->head_h);
    cphil_free(s->scratch);
    cphil_free(s);
}

void cphil_infer_state_reset(cphil_infer_state *s) {
    s->t = 0;
    s->head = 0;
    s->stale_until = -1;
    s->m->ops->reset(s);
}

void cphil_infer_state_set_inflight(cphil_infer_state *s, bool on) {
    /* windows that end before frame t + W - 1 began before frame t: not advanced while off */
    if (on && !s->inflight && s->t > 0) s->stale_until = s->t + s->W - 2;
    s->inflight = on;
}

const float *cphil_infer_state_features(const cphil_infer_state *s, int *n) {
    *n = s->m->Hb;
    return s->feat;
}

/* ---- a step's shared pieces ------------------------------------------------------------------ */
/* x0[H0] = input_proj(frame): continuous product + bias, plus the gathered id rows (ReLU for
 * the MLP). The product is the state's (calibration hook, scratch). */
static void input_forward(cphil_infer_state *st, const float *cont, const int32_t *ids, float *x0) {
    const cphil_infer_model *m = st->m;
    const cphil_infer_spec *sp = &m->spec;
    const int H0 = m->H0;
    if (sp->n_cont > 0) infer_mm(st, &m->in_cont, 1, cont, sp->n_cont, x0, H0, 0);
    else memcpy(x0, m->in_b, sizeof(float) * (size_t)H0);
    if (m->has_tab) cphil_gather_add(&m->in_tab, sp->n_ids, ids, x0);
    if (sp->backbone == CPHIL_BACKBONE_MLP) cphil_infer_relu(x0, H0);
}

static void ar_head2(void *ctx, int h, const float *hidden_h, float *logits_h) {
    cphil_infer_state *s = ctx;
    infer_mm(s, &s->m->head2[h], 1, hidden_h, cphil_head_hidden[h], logits_h, INFER_N_LOGITS, 0);
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
    infer_mm(s, &m->head0, 1, feat, m->Hb, s->head_h, m->head0.rows, 0);
    if (m->ar.on) { /* in head order, each conditioned on the values chosen before it */
        cphil_infer_ar_forward(&m->ar, s->head_h, logits, ar_head2, s, s->choose, s->choose_user, s->chosen);
        return;
    }
    cphil_infer_relu(s->head_h, m->head0.rows);
    int row = 0;
    for (int h = 0; h < INFER_N_HEADS; h++) {
        infer_mm(s, &m->head2[h], 1, s->head_h + row, cphil_head_hidden[h], logits + cphil_head_offset[h],
                 INFER_N_LOGITS, 0);
        row += cphil_head_hidden[h];
    }
}

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

/* The input layer and the first layer's frame-local product of one frame into ring slot `slot`. */
static void frame_into_ring(cphil_infer_state *s, int slot, const float *cont, const int32_t *ids) {
    float *x0 = s->ring_x0 + (size_t)slot * s->m->H0p;
    input_forward(s, cont, ids, x0);
    if (s->P) s->m->ops->pre(s, x0, s->ring_pre + (size_t)slot * s->P);
}

/* Copy ring slot `from` into slots [j0, W) (the left padding with the game's first frame). */
static void pad_ring(cphil_infer_state *s, int from, int j0) {
    const int H0p = s->m->H0p, P = s->P;
    for (int j = j0; j < s->W; j++) {
        if (j == from) continue;
        memcpy(s->ring_x0 + (size_t)j * H0p, s->ring_x0 + (size_t)from * H0p, sizeof(float) * (size_t)H0p);
        if (P) memcpy(s->ring_pre + (size_t)j * P, s->ring_pre + (size_t)from * P, sizeof(float) * (size_t)P);
    }
}

cphil_status cphil_infer_step(cphil_infer_state *s, const float *cont, const int32_t *ids, float *logits) {
    const cphil_infer_model *m = s->m;
    cphil_status st = check_frame(m, cont, ids);
    if (st) return st;
    const int W = s->W, H0p = m->H0p, P = s->P;
    if (s->mode == CPHIL_INFER_WINDOW || !m->ops->stream) {
        int slot = s->t == 0 ? 0 : (s->head + 1) % W;
        frame_into_ring(s, slot, cont, ids);
        if (s->t == 0) pad_ring(s, 0, 1); /* left-pad with the first frame */
        s->head = slot;
        for (int t = 0; t < W; t++) { /* window order: oldest first */
            int j = (slot + 1 + t) % W;
            s->seq_x0[t] = s->ring_x0 + (size_t)j * H0p;
            s->seq_pre[t] = P ? s->ring_pre + (size_t)j * P : NULL;
        }
        if (s->inflight && m->ops->window_step) m->ops->window_step(s);
        else m->ops->window(s, W);
    } else {
        float *x0 = s->x0, *pre = s->ring_pre;
        input_forward(s, cont, ids, x0);
        if (P) m->ops->pre(s, x0, pre);
        int reps = s->t == 0 ? W : 1; /* cold start: the first frame W times (= window mode) */
        for (int r = 0; r < reps; r++) {
            m->ops->stream(s, x0, pre);
            if (r + 1 < reps) s->t++;
        }
    }
    s->t++;
    heads_forward(s, s->feat, logits);
    return CPHIL_OK;
}

cphil_status cphil_infer_correct(cphil_infer_state *s, int back, const float *cont, const int32_t *ids, float *logits) {
    const cphil_infer_model *m = s->m;
    const int W = s->W;
    if (s->mode != CPHIL_INFER_WINDOW && m->ops->stream)
        return cphil_err(CPHIL_E_ARG, "a stream-mode state cannot correct a frame it has consumed");
    int64_t held = s->t < W ? s->t : W;
    if (back < 0 || back >= held)
        return cphil_err(CPHIL_E_ARG, "frame %d steps back is not in the window (%lld frames held)", back, (long long)held);
    cphil_status st = check_frame(m, cont, ids);
    if (st) return st;
    int slot = ((s->head - back) % W + W) % W;
    frame_into_ring(s, slot, cont, ids);
    if (back == s->t - 1) pad_ring(s, slot, (int)s->t); /* the game's first frame: its padding copies too */
    /* in-flight windows that hold this frame (or its padding copies) were advanced with the old
     * one: their decisions are recomputed until the last of them ends */
    const int64_t at = s->t - 1 - back, until = at + W - 1;
    if (until > s->stale_until) s->stale_until = until;
    /* seq_x0 / seq_pre still point at the ring in window order (set by the last step) */
    m->ops->window(s, W);
    heads_forward(s, s->feat, logits);
    return CPHIL_OK;
}

int64_t cphil_infer_state_frames(const cphil_infer_state *s) { return s->t; }

cphil_status cphil_infer_run_sequence(cphil_infer_state *s, int T, const float *cont, const int32_t *ids,
                                      float *logits) {
    const cphil_infer_model *m = s->m;
    const cphil_infer_spec *sp = &m->spec;
    /* window mode only: a stream state's ring has one row, and its carried state would be lost */
    if (s->mode != CPHIL_INFER_WINDOW)
        return cphil_err(CPHIL_E_ARG, "cphil_infer_run_sequence needs a window-mode state (this one streams)");
    if (T < 1 || T > s->W) return cphil_err(CPHIL_E_ARG, "sequence of %d frames (window %d)", T, s->W);
    for (int t = 0; t < T; t++) {
        cphil_status st = check_frame(m, cont + (size_t)t * sp->n_cont, ids + (size_t)t * sp->n_ids);
        if (st) return st;
        frame_into_ring(s, t, cont + (size_t)t * sp->n_cont, ids + (size_t)t * sp->n_ids);
        s->seq_x0[t] = s->ring_x0 + (size_t)t * m->H0p;
        s->seq_pre[t] = s->P ? s->ring_pre + (size_t)t * s->P : NULL;
    }
    m->ops->window(s, T);
    heads_forward(s, s->feat, logits);
    cphil_infer_state_reset(s); /* the ring was overwritten: the next step starts a new game */
    return CPHIL_OK;
}
