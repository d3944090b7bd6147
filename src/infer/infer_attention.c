/* infer_attention.c — the attention backbone: pre-norm transformer layers (LayerNorm, qkv,
 * RoPE in rotate-half form (RoFormer), causal softmax attention, out, LayerNorm, FFN with exact
 * GELU), LayerNorm at the end. The first layer's qkv(ln1(x)) before RoPE is frame-local: cached
 * per frame in the ring ("pre"). Window mode rotates by window position (relative positions are
 * what matter); stream mode keeps a key/value ring of W entries rotated at absolute positions.
 */
#include "infer/infer_impl.h"

#include <stdio.h>

typedef struct attn_weights {
    struct attn_layer {
        float *ln1_w, *ln1_b, *ln2_w, *ln2_b; /* [H] */
        cphil_pmat qkv;                       /* [3H, H] + bias */
        cphil_pmat out;                       /* [H, H] + bias */
        cphil_pmat fc1;                       /* [4H, H] + bias */
        cphil_pmat fc2;                       /* [H, 4H] + bias */
    } layer[INFER_MAX_LAYERS];
    float *normf_w, *normf_b;    /* [H] */
    float *rope_cos, *rope_sin;  /* [W][dh/2] window positions */
    float *rope_cosT, *rope_sinT;/* [dh/2][Wp] the same, transposed (keys are stored transposed) */
} attn_weights;

typedef struct attn_run {
    int Wp;            /* W rounded up to 16 */
    float *normed;     /* [H] the first layer's ln1 of a frame (for its cached qkv) */
    /* window mode */
    float *res;        /* [W][H] residual stream */
    float *seq_u;      /* [W][H] ln1 / ln2 of the residual */
    float *seq_qkv;    /* [W][3H] q | k | v (queries rotated; layer 0: values copied from the cache) */
    float *seq_o;      /* [W][H] the heads' outputs */
    float *seq_ffn;    /* [W][4H] the FFN's hidden layer */
    float *kt;         /* [H][Wp] keys, transposed and rotated */
    float *scores;     /* [4 Wp + H + 16] cphil_infer_attend_causal's scratch */
    const float **rows;/* [W] a layer's q|k|v rows (layer 0: the cache) */
    /* stream mode */
    float *st_x;       /* [H] residual stream */
    float *st_u;       /* [H] ln1 / ln2 of it */
    float *st_qkv;     /* [3H] */
    float *st_o;       /* [H] */
    float *st_ffn;     /* [4H] */
    float *st_scores;  /* [Wp] cphil_infer_attend_head's scratch */
    float *kring;      /* [L][H][Wp] keys transposed (kring[c][slot]) */
    float *vring;      /* [L][W][H] values by rows */
    double *rot;       /* [dh/2][2] cos, sin of the current absolute position */
    double *rot_step;  /* [dh/2][2] of one position */
} attn_run;

static cphil_status attn_check(const cphil_infer_spec *sp) {
    if (sp->heads < 1 || sp->hidden % sp->heads || (sp->hidden / sp->heads) % 2)
        return cphil_err(CPHIL_E_MISMATCH, "attention: hidden %d must split into %d heads of even size", sp->hidden, sp->heads);
    if (sp->hidden / sp->heads > INFER_MAX_HEAD_DIM)
        return cphil_err(CPHIL_E_MISMATCH,
                         "attention: heads of %d values (hidden %d / %d heads) are over the engine's %d "
                         "(use more heads)", sp->hidden / sp->heads, sp->hidden, sp->heads, INFER_MAX_HEAD_DIM);
    return CPHIL_OK;
}

static void attn_free_weights(void *wp) {
    attn_weights *w = wp;
    for (int l = 0; l < INFER_MAX_LAYERS; l++) { /* the products are freed through m->mats */
        cphil_free(w->layer[l].ln1_w);
        cphil_free(w->layer[l].ln1_b);
        cphil_free(w->layer[l].ln2_w);
        cphil_free(w->layer[l].ln2_b);
    }
    cphil_free(w->normf_w);
    cphil_free(w->normf_b);
    cphil_free(w->rope_cos);
    cphil_free(w->rope_sin);
    cphil_free(w->rope_cosT);
    cphil_free(w->rope_sinT);
    cphil_free(w);
}

static cphil_status attn_load(infer_build *b) {
    cphil_infer_model *m = b->m;
    const cphil_infer_spec *sp = &m->spec;
    const int H = sp->hidden;
    attn_weights *w = cphil_calloc(1, sizeof *w);
    if (!w) return cphil_err(CPHIL_E_NOMEM, "out of memory for the attention layers");
    m->weights = w;
    char n1[96], n2[96];
    cphil_status s;
    for (int l = 0; l < sp->layers; l++) {
        struct attn_layer *al = &w->layer[l];
        snprintf(n1, sizeof n1, "layers.%d.ln1.weight", l);
        if ((s = cphil_infer_load_vec(b, n1, H, &al->ln1_w))) return s;
        snprintf(n1, sizeof n1, "layers.%d.ln1.bias", l);
        if ((s = cphil_infer_load_vec(b, n1, H, &al->ln1_b))) return s;
        snprintf(n1, sizeof n1, "layers.%d.attn.qkv.weight", l);
        snprintf(n2, sizeof n2, "layers.%d.attn.qkv.bias", l);
        if ((s = cphil_infer_load_linear(b, &al->qkv, n1, n2, NULL, 3 * H, H))) return s;
        snprintf(n1, sizeof n1, "layers.%d.attn.out.weight", l);
        snprintf(n2, sizeof n2, "layers.%d.attn.out.bias", l);
        if ((s = cphil_infer_load_linear(b, &al->out, n1, n2, NULL, H, H))) return s;
        snprintf(n1, sizeof n1, "layers.%d.ln2.weight", l);
        if ((s = cphil_infer_load_vec(b, n1, H, &al->ln2_w))) return s;
        snprintf(n1, sizeof n1, "layers.%d.ln2.bias", l);
        if ((s = cphil_infer_load_vec(b, n1, H, &al->ln2_b))) return s;
        snprintf(n1, sizeof n1, "layers.%d.ffn.fc1.weight", l);
        snprintf(n2, sizeof n2, "layers.%d.ffn.fc1.bias", l);
        if ((s = cphil_infer_load_linear(b, &al->fc1, n1, n2, NULL, 4 * H, H))) return s;
        snprintf(n1, sizeof n1, "layers.%d.ffn.fc2.weight", l);
        snprintf(n2, sizeof n2, "layers.%d.ffn.fc2.bias", l);
        if ((s = cphil_infer_load_linear(b, &al->fc2, n1, n2, NULL, H, 4 * H))) return s;
    }
    if ((s = cphil_infer_load_vec(b, "norm_f.weight", H, &w->normf_w))) return s;
    if ((s = cphil_infer_load_vec(b, "norm_f.bias", H, &w->normf_b))) return s;
    const int dh = H / sp->heads, W = sp->window, Wp = (W + 15) & ~15;
    w->rope_cos = cphil_alloc(sizeof(float) * (size_t)W * (dh / 2));
    w->rope_sin = cphil_alloc(sizeof(float) * (size_t)W * (dh / 2));
    w->rope_cosT = cphil_calloc((size_t)Wp * (dh / 2), sizeof(float));
    w->rope_sinT = cphil_calloc((size_t)Wp * (dh / 2), sizeof(float));
    if (!w->rope_cos || !w->rope_sin || !w->rope_cosT || !w->rope_sinT)
        return cphil_err(CPHIL_E_NOMEM, "out of memory for RoPE tables");
    for (int p = 0; p < W; p++)
        for (int i = 0; i < dh / 2; i++) {
            double th = (double)p * pow((double)sp->rope_base, -2.0 * i / dh);
            w->rope_cos[p * (dh / 2) + i] = (float)cos(th);
            w->rope_sin[p * (dh / 2) + i] = (float)sin(th);
            w->rope_cosT[(size_t)i * Wp + p] = (float)cos(th);
            w->rope_sinT[(size_t)i * Wp + p] = (float)sin(th);
        }
    return CPHIL_OK;
}

static int attn_pre_width(const cphil_infer_model *m) { return 3 * m->spec.hidden; }

static cphil_status attn_open(cphil_infer_state *s) {
    const cphil_infer_spec *sp = &s->m->spec;
    const size_t H = (size_t)sp->hidden, L = (size_t)sp->layers, W = (size_t)s->W;
    bool ok = true;
    attn_run *r = cphil_infer_calloc(&ok, 1, sizeof *r);
    s->run = r;
    if (!ok) return CPHIL_E_NOMEM;
    r->Wp = (s->W + 15) & ~15;
    const size_t Wp = (size_t)r->Wp;
    r->normed = cphil_infer_calloc(&ok, H, sizeof(float));
    if (s->mode == CPHIL_INFER_WINDOW) {
        r->res = cphil_infer_calloc(&ok, W * H, sizeof(float));
        r->seq_u = cphil_infer_calloc(&ok, W * H, sizeof(float));
        r->seq_qkv = cphil_infer_calloc(&ok, W * 3 * H, sizeof(float));
        r->seq_o = cphil_infer_calloc(&ok, W * H, sizeof(float));
        r->seq_ffn = cphil_infer_calloc(&ok, W * 4 * H, sizeof(float));
        r->kt = cphil_infer_calloc(&ok, H * Wp, sizeof(float));
        r->scores = cphil_infer_calloc(&ok, 4 * Wp + H + 16, sizeof(float));
        r->rows = cphil_infer_calloc(&ok, W, sizeof *r->rows);
    } else {
        r->st_x = cphil_infer_calloc(&ok, H, sizeof(float));
        r->st_u = cphil_infer_calloc(&ok, H, sizeof(float));
        r->st_qkv = cphil_infer_calloc(&ok, 3 * H, sizeof(float));
        r->st_o = cphil_infer_calloc(&ok, H, sizeof(float));
        r->st_ffn = cphil_infer_calloc(&ok, 4 * H, sizeof(float));
        r->st_scores = cphil_infer_calloc(&ok, Wp, sizeof(float));
        r->kring = cphil_infer_calloc(&ok, L * H * Wp, sizeof(float));
        r->vring = cphil_infer_calloc(&ok, L * W * H, sizeof(float));
        r->rot = cphil_infer_calloc(&ok, H / sp->heads, sizeof(double));
        r->rot_step = cphil_infer_calloc(&ok, H / sp->heads, sizeof(double));
    }
    return ok ? CPHIL_OK : CPHIL_E_NOMEM;
}

static void attn_close(void *run) {
    attn_run *r = run;
    float *bufs[] = {r->normed, r->res, r->seq_u, r->seq_qkv, r->seq_o, r->seq_ffn, r->kt, r->scores,
                     r->st_x, r->st_u, r->st_qkv, r->st_o, r->st_ffn, r->st_scores, r->kring, r->vring};
    for (size_t i = 0; i < CPHIL_ARRAY_LEN(bufs); i++) cphil_free(bufs[i]);
    cphil_free((void *)r->rows);
    cphil_free(r->rot);
    cphil_free(r->rot_step);
    cphil_free(r);
}

static void attn_reset(cphil_infer_state *s) {
    const cphil_infer_spec *sp = &s->m->spec;
    attn_run *r = s->run;
    if (!r->rot) return;
    const int dh = sp->hidden / sp->heads;
    for (int i = 0; i < dh / 2; i++) {
        double th = pow((double)sp->rope_base, -2.0 * i / dh);
        r->rot[2 * i] = 1.0;
        r->rot[2 * i + 1] = 0.0;
        r->rot_step[2 * i] = cos(th);
        r->rot_step[2 * i + 1] = sin(th);
    }
}

static void attn_pre(cphil_infer_state *s, const float *x0, float *pre) {
    const cphil_infer_spec *sp = &s->m->spec;
    const attn_weights *w = s->m->weights;
    attn_run *r = s->run;
    cphil_infer_layernorm(1, x0, sp->hidden, w->layer[0].ln1_w, w->layer[0].ln1_b, r->normed, sp->hidden, sp->hidden,
                    sp->norm_eps);
    infer_mm(s, &w->layer[0].qkv, 1, r->normed, sp->hidden, pre, s->P, 0);
}

/* RoPE of one row's q or k (H values, heads of dh: rotate-half per head) by angles cs/sn [dh/2];
 * from src to dst (dst == src: in place). */
static void rope_row(const float *src, float *dst, int H, int heads, const float *cs, const float *sn) {
    const int dh = H / heads, h2 = dh / 2;
    for (int hd = 0; hd < heads; hd++)
        cphil_infer_rope_pairs(src + hd * dh, src + hd * dh + h2, cs, sn, dst + hd * dh, dst + hd * dh + h2, h2);
}

/* FFN residual on M rows of X[M][H]: X += fc2(gelu(fc1(ln2(X)))); U[M][H], F[M][4H] scratch. */
static void attn_ffn(cphil_infer_state *s, const struct attn_layer *al, int M, float *X, float *U, float *F) {
    const int H = s->m->spec.hidden;
    cphil_infer_layernorm(M, X, H, al->ln2_w, al->ln2_b, U, H, H, s->m->spec.norm_eps);
    infer_mm(s, &al->fc1, M, U, H, F, 4 * H, 0);
    /* row by row: a row is a whole number of vectors or ends in the kernel's tail, as before the
     * split, whatever M */
    for (int t = 0; t < M; t++) cphil_infer_vgelu(F + (size_t)t * 4 * H, 4 * H);
    infer_mm(s, &al->fc2, M, F, 4 * H, X, H, 1);
}

static void attn_window(cphil_infer_state *s, int T) {
    const cphil_infer_model *m = s->m;
    const cphil_infer_spec *sp = &m->spec;
    const attn_weights *w = m->weights;
    attn_run *r = s->run;
    const int H = sp->hidden, L = sp->layers, nh = sp->heads, dh = H / nh, Wp = r->Wp, ld = 3 * H;
    const float scale = 1.f / sqrtf((float)dh);
    float *X = r->res, *U = r->seq_u, *QKV = r->seq_qkv, *O = r->seq_o, *KT = r->kt;
    /* the residual stream starts as the input layer's outputs (the ring itself stays as it is) */
    for (int t = 0; t < T; t++) memcpy(X + (size_t)t * H, s->seq_x0[t], sizeof(float) * (size_t)H);
    for (int l = 0; l < L; l++) {
        const struct attn_layer *al = &w->layer[l];
        const bool last = l == L - 1;
        if (l > 0) {
            cphil_infer_layernorm(T, X, H, al->ln1_w, al->ln1_b, U, H, H, sp->norm_eps);
            if (last && T > 1) { /* only the last position's query is used: K, V for the others */
                /* a view of qkv's panels from the one holding row H on (K, V and a few Q rows);
                 * made here so that it sees the matrix's current act_scale */
                const cphil_pmat kv = cphil_pmat_view_panels(&al->qkv, H / CPHIL_PANEL, al->qkv.np);
                const int c0 = H / CPHIL_PANEL * CPHIL_PANEL;
                infer_mm(s, &kv, T - 1, U, H, QKV + c0, ld, 0);
                infer_mm(s, &al->qkv, 1, U + (size_t)(T - 1) * H, H, QKV + (size_t)(T - 1) * ld, ld, 0);
            } else {
                infer_mm(s, &al->qkv, T, U, H, QKV, ld, 0);
            }
        }
        /* q|k|v rows: layer 0's are the per-frame cache (read only), the others QKV's */
        for (int t = 0; t < T; t++) r->rows[t] = l == 0 ? s->seq_pre[t] : QKV + (size_t)t * ld;
        const int t0 = last ? T - 1 : 0;
        /* RoPE by window position: the queries used, into QKV; the keys transposed into KT
         * (KT[c][t]: a query's scores take 16 keys at a time), rotated along t with the
         * transposed tables; layer 0's values copied into QKV */
        for (int t = t0; t < T; t++)
            rope_row(r->rows[t], QKV + (size_t)t * ld, H, nh, w->rope_cos + (size_t)t * (dh / 2),
                     w->rope_sin + (size_t)t * (dh / 2));
        if (l == 0)
            for (int t = 0; t < T; t++)
                memcpy(QKV + (size_t)t * ld + 2 * H, r->rows[t] + 2 * H, sizeof(float) * (size_t)H);
        cphil_infer_transpose_rows(r->rows, H, T, H, KT, Wp);
        for (int hd = 0; hd < nh; hd++)
            for (int i = 0; i < dh / 2; i++) {
                float *ka = KT + (size_t)(hd * dh + i) * Wp, *kb = ka + (size_t)(dh / 2) * Wp;
                cphil_infer_rope_pairs(ka, kb, w->rope_cosT + (size_t)i * Wp, w->rope_sinT + (size_t)i * Wp, ka, kb, T);
            }
        for (int hd = 0; hd < nh; hd++)
            cphil_infer_attend_causal(QKV + hd * dh, ld, KT + (size_t)hd * dh * Wp, Wp, QKV + 2 * H + hd * dh, ld, t0, T,
                                dh, scale, O + hd * dh, H, r->scores);
        const int M = T - t0;
        float *Xl = X + (size_t)t0 * H;
        infer_mm(s, &al->out, M, O, H, Xl, H, 1);
        attn_ffn(s, al, M, Xl, U, r->seq_ffn);
    }
    cphil_infer_layernorm(1, X + (size_t)(T - 1) * H, H, w->normf_w, w->normf_b, s->feat, H, H, sp->norm_eps);
}

static void attn_stream(cphil_infer_state *s, const float *x0, const float *pre0) {
    const cphil_infer_model *m = s->m;
    const cphil_infer_spec *sp = &m->spec;
    const attn_weights *w = m->weights;
    attn_run *r = s->run;
    const int H = sp->hidden, L = sp->layers, nh = sp->heads, dh = H / nh, W = s->W, Wp = r->Wp;
    const float scale = 1.f / sqrtf((float)dh);
    float *x = r->st_x, *qkv = r->st_qkv;
    float cs[INFER_MAX_HEAD_DIM / 2], sn[INFER_MAX_HEAD_DIM / 2]; /* dh <= INFER_MAX_HEAD_DIM: attn_check */
    for (int i = 0; i < dh / 2; i++) {
        cs[i] = (float)r->rot[2 * i];
        sn[i] = (float)r->rot[2 * i + 1];
    }
    memcpy(x, x0, sizeof(float) * (size_t)H);
    const int slot = (int)(s->t % W);
    const int n = s->t + 1 < W ? (int)(s->t + 1) : W;
    for (int l = 0; l < L; l++) {
        const struct attn_layer *al = &w->layer[l];
        if (l == 0) memcpy(qkv, pre0, sizeof(float) * 3 * (size_t)H);
        else {
            cphil_infer_layernorm(1, x, H, al->ln1_w, al->ln1_b, r->st_u, H, H, sp->norm_eps);
            infer_mm(s, &al->qkv, 1, r->st_u, H, qkv, 3 * H, 0);
        }
        rope_row(qkv, qkv, H, nh, cs, sn);
        rope_row(qkv + H, qkv + H, H, nh, cs, sn);
        /* key ring transposed (kr[c][slot]), value ring by rows (vr[slot][c]) */
        float *kr = r->kring + (size_t)l * H * Wp, *vr = r->vring + (size_t)l * W * H;
        for (int c = 0; c < H; c++) kr[(size_t)c * Wp + slot] = qkv[H + c];
        memcpy(vr + (size_t)slot * H, qkv + 2 * H, sizeof(float) * (size_t)H);
        /* order inside the ring does not matter for softmax attention */
        for (int hd = 0; hd < nh; hd++)
            cphil_infer_attend_head(qkv + hd * dh, kr + (size_t)hd * dh * Wp, Wp, vr + hd * dh, H, n, dh, scale,
                              r->st_o + hd * dh, r->st_scores);
        infer_mm(s, &al->out, 1, r->st_o, H, x, H, 1);
        attn_ffn(s, al, 1, x, r->st_u, r->st_ffn);
    }
    cphil_infer_layernorm(1, x, H, w->normf_w, w->normf_b, s->feat, H, H, sp->norm_eps);
    /* advance the absolute position's rotation (double, renormalized) */
    for (int i = 0; i < dh / 2; i++) {
        double c = r->rot[2 * i], sN = r->rot[2 * i + 1];
        double c2 = r->rot_step[2 * i], s2 = r->rot_step[2 * i + 1];
        double nc = c * c2 - sN * s2, ns = sN * c2 + c * s2;
        double rn = 1.0 / sqrt(nc * nc + ns * ns);
        r->rot[2 * i] = nc * rn;
        r->rot[2 * i + 1] = ns * rn;
    }
}

const infer_backbone cphil_infer_attention_ops = {
    .check = attn_check,
    .load = attn_load,
    .free_weights = attn_free_weights,
    .pre_width = attn_pre_width,
    .open = attn_open,
    .close = attn_close,
    .reset = attn_reset,
    .pre = attn_pre,
    .window = attn_window,
    .stream = attn_stream,
};
