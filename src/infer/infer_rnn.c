/* infer_rnn.c — the LSTM and GRU backbones (one file: they share the layer loop, the window and
 * the stream step; only the cell differs). PyTorch nn.LSTM / nn.GRU equations and gate orders
 * (LSTM i f g o, GRU r z n). LSTM folds both biases into W_ih's; GRU keeps b_hh apart (r gates
 * it). The first layer's W_ih x + b is frame-local: cached per frame in the ring ("pre").
 */
#include "infer/infer_impl.h"

#include <stdio.h>

typedef struct rnn_weights {
    int G; /* gates: 4 (LSTM), 3 (GRU) */
    struct rnn_layer {
        cphil_pmat ih; /* [G H, in]: W_ih (+ b_ih, + b_hh for the LSTM) */
        cphil_pmat hh; /* [G H, H]: W_hh (+ b_hh for the GRU) */
    } layer[INFER_MAX_LAYERS];
} rnn_weights;

typedef struct rnn_run {
    /* one step's gates */
    float *gates;    /* [G H] W_ih x + W_hh h (LSTM), W_ih x + b_ih (GRU) */
    float *gates_hh; /* [G H] GRU: W_hh h + b_hh (kept apart: r multiplies its n part) */
    float *cell_tmp; /* [H] the LSTM cell's scratch */
    /* window mode: a layer's sequence and the running state */
    float *seq_h;    /* [W][H] a layer's outputs, the next layer's inputs */
    float *seq_in;   /* [W][G H] layer > 0: W_ih of the previous layer's outputs, all positions */
    float *h, *c;    /* [H] the running state of the layer being computed */
    /* stream mode: the carried state and a layer's input product */
    float *st_h, *st_c; /* [L][H] */
    float *st_in;       /* [G H] layer > 0: W_ih h_{l-1} + b */
} rnn_run;

static cphil_status rnn_load(infer_build *b) {
    cphil_infer_model *m = b->m;
    const cphil_infer_spec *sp = &m->spec;
    const int H = sp->hidden;
    const bool lstm = sp->backbone == CPHIL_BACKBONE_LSTM;
    const char *nm = lstm ? "lstm" : "gru";
    rnn_weights *w = cphil_calloc(1, sizeof *w);
    if (!w) return cphil_err(CPHIL_E_NOMEM, "out of memory for the %s", nm);
    m->weights = w;
    w->G = lstm ? 4 : 3;
    char n1[96], n2[96], n3[96];
    cphil_status s;
    for (int l = 0; l < sp->layers; l++) {
        snprintf(n1, sizeof n1, "%s.weight_ih_l%d", nm, l);
        snprintf(n2, sizeof n2, "%s.bias_ih_l%d", nm, l);
        snprintf(n3, sizeof n3, "%s.bias_hh_l%d", nm, l);
        if ((s = infer_load_linear(b, &w->layer[l].ih, n1, n2, lstm ? n3 : NULL, w->G * H, H))) return s;
        snprintf(n1, sizeof n1, "%s.weight_hh_l%d", nm, l);
        if ((s = infer_load_linear(b, &w->layer[l].hh, n1, lstm ? NULL : n3, NULL, w->G * H, H))) return s;
    }
    return CPHIL_OK;
}

static void rnn_free_weights(void *w) { cphil_free(w); } /* its products are freed through m->mats */

static int rnn_pre_width(const cphil_infer_model *m) {
    return (m->spec.backbone == CPHIL_BACKBONE_LSTM ? 4 : 3) * m->spec.hidden;
}

static cphil_status rnn_open(cphil_infer_state *s) {
    const cphil_infer_spec *sp = &s->m->spec;
    const size_t H = (size_t)sp->hidden, L = (size_t)sp->layers, W = (size_t)s->W, GH = (size_t)s->P;
    bool ok = true;
    rnn_run *r = infer_calloc(&ok, 1, sizeof *r);
    s->run = r;
    if (!ok) return CPHIL_E_NOMEM;
    r->gates = infer_calloc(&ok, GH, sizeof(float));
    r->gates_hh = infer_calloc(&ok, GH, sizeof(float));
    r->cell_tmp = infer_calloc(&ok, H, sizeof(float));
    if (s->mode == CPHIL_INFER_WINDOW) {
        r->seq_h = infer_calloc(&ok, W * H, sizeof(float));
        r->seq_in = infer_calloc(&ok, W * GH, sizeof(float));
        r->h = infer_calloc(&ok, H, sizeof(float));
        r->c = infer_calloc(&ok, H, sizeof(float));
    } else {
        r->st_h = infer_calloc(&ok, L * H, sizeof(float));
        r->st_c = infer_calloc(&ok, L * H, sizeof(float));
        r->st_in = infer_calloc(&ok, GH, sizeof(float));
    }
    return ok ? CPHIL_OK : CPHIL_E_NOMEM;
}

static void rnn_close(void *run) {
    rnn_run *r = run;
    cphil_free(r->gates);
    cphil_free(r->gates_hh);
    cphil_free(r->cell_tmp);
    cphil_free(r->seq_h);
    cphil_free(r->seq_in);
    cphil_free(r->h);
    cphil_free(r->c);
    cphil_free(r->st_h);
    cphil_free(r->st_c);
    cphil_free(r->st_in);
    cphil_free(r);
}

static void rnn_reset(cphil_infer_state *s) {
    rnn_run *r = s->run;
    const size_t LH = (size_t)s->m->spec.layers * s->m->spec.hidden;
    if (r->st_h) memset(r->st_h, 0, sizeof(float) * LH);
    if (r->st_c) memset(r->st_c, 0, sizeof(float) * LH);
}

static void rnn_pre(cphil_infer_state *s, const float *x0, float *pre) {
    const rnn_weights *w = s->m->weights;
    infer_mm(s, &w->layer[0].ih, 1, x0, s->m->H0p, pre, s->P, 0);
}

/* GRU cell: gi[3H] = W_ih x + b_ih, gh[3H] = W_hh h + b_hh (r z n). The loops vectorize with
 * the cheap cost model (see infer_relu). */
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

/* One recurrent step of layer l: input pre[G H] (the layer's input product incl. biases), state
 * h/c. h_zero: h is known to be zero (skip the product). */
static void rnn_step(cphil_infer_state *s, int l, const float *pre, float *h, float *c, bool h_zero) {
    const cphil_infer_model *m = s->m;
    const rnn_weights *w = m->weights;
    rnn_run *r = s->run;
    const int H = m->spec.hidden;
    float *g = r->gates;
    if (w->G == 4) {
        /* LSTM cell (infer_kern.c): gates = pre + W_hh h, one fused pass */
        if (h_zero) {
            memcpy(g, pre, sizeof(float) * 4 * (size_t)H);
            infer_lstm_cell(g, NULL, h, c, H, r->cell_tmp);
        } else {
            infer_mm(s, &w->layer[l].hh, 1, h, H, g, 4 * H, 0);
            infer_lstm_cell(g, pre, h, c, H, r->cell_tmp);
        }
    } else {
        memcpy(g, pre, sizeof(float) * 3 * (size_t)H);
        if (h_zero) memcpy(r->gates_hh, w->layer[l].hh.bias, sizeof(float) * 3 * (size_t)H);
        else infer_mm(s, &w->layer[l].hh, 1, h, H, r->gates_hh, 3 * H, 0);
        gru_cell(g, r->gates_hh, h, H);
    }
}

/* Window: layer by layer over the T positions from a zero state; a layer > 0 takes its input
 * product for all positions at once. */
static void rnn_window(cphil_infer_state *s, int T) {
    const cphil_infer_model *m = s->m;
    const rnn_weights *w = m->weights;
    rnn_run *r = s->run;
    const int H = m->spec.hidden, L = m->spec.layers, GH = s->P;
    for (int l = 0; l < L; l++) {
        memset(r->h, 0, sizeof(float) * (size_t)H);
        memset(r->c, 0, sizeof(float) * (size_t)H);
        if (l > 0) infer_mm(s, &w->layer[l].ih, T, r->seq_h, H, r->seq_in, GH, 0);
        for (int t = 0; t < T; t++) {
            const float *pre = l == 0 ? s->seq_pre[t] : r->seq_in + (size_t)t * GH;
            rnn_step(s, l, pre, r->h, r->c, t == 0);
            if (l < L - 1) memcpy(r->seq_h + (size_t)t * H, r->h, sizeof(float) * (size_t)H);
        }
    }
    memcpy(s->feat, r->h, sizeof(float) * (size_t)H);
}

static void rnn_stream(cphil_infer_state *s, const float *x0, const float *pre0) {
    const cphil_infer_model *m = s->m;
    const rnn_weights *w = m->weights;
    rnn_run *r = s->run;
    const int H = m->spec.hidden, L = m->spec.layers;
    (void)x0;
    for (int l = 0; l < L; l++) {
        float *h = r->st_h + (size_t)l * H, *c = r->st_c + (size_t)l * H;
        const float *pre = pre0;
        if (l > 0) {
            infer_mm(s, &w->layer[l].ih, 1, r->st_h + (size_t)(l - 1) * H, H, r->st_in, s->P, 0);
            pre = r->st_in;
        }
        rnn_step(s, l, pre, h, c, false);
    }
    memcpy(s->feat, r->st_h + (size_t)(L - 1) * H, sizeof(float) * (size_t)H);
}

const infer_backbone infer_lstm_ops = {
    .load = rnn_load,
    .free_weights = rnn_free_weights,
    .pre_width = rnn_pre_width,
    .open = rnn_open,
    .close = rnn_close,
    .reset = rnn_reset,
    .pre = rnn_pre,
    .window = rnn_window,
    .stream = rnn_stream,
};
const infer_backbone infer_gru_ops = {
    .load = rnn_load,
    .free_weights = rnn_free_weights,
    .pre_width = rnn_pre_width,
    .open = rnn_open,
    .close = rnn_close,
    .reset = rnn_reset,
    .pre = rnn_pre,
    .window = rnn_window,
    .stream = rnn_stream,
};
