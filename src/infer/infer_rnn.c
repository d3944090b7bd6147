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
    float *gates_hh; /* [3H] GRU: W_hh h + b_hh (kept apart: r multiplies its n part); NULL for the LSTM */
    float *cell_tmp; /* [H] the LSTM cell's scratch; NULL for the GRU */
    /* window mode: a layer's sequence and the running state */
    float *seq_h;    /* [W][H] a layer's outputs, the next layer's inputs */
    float *seq_in;   /* [W][G H] layer > 0: W_ih of the previous layer's outputs, all positions */
    float *h, *c;    /* [H] the running state of the layer being computed */
    /* window mode, in-flight windows (docs/inference.md): slot e mod W holds the window that ends
     * at frame e, for the W windows that end at frames t .. t + W - 1 */
    float *fl_h;        /* [L][W][H] each window's h per layer */
    float *fl_c;        /* [L][W][H] LSTM: each window's c per layer (NULL for the GRU) */
    float *fl_in;       /* [W][G H] layer > 0: W_ih of the layer below's new outputs, every window */
    float *fl_g;        /* [W][G H] gates: LSTM W_hh h (then the cell's), GRU W_ih x + b_ih */
    float *fl_gh;       /* [W][3H] GRU: W_hh h + b_hh (NULL for the LSTM) */
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
        if ((s = cphil_infer_load_linear(b, &w->layer[l].ih, n1, n2, lstm ? n3 : NULL, w->G * H, H))) return s;
        snprintf(n1, sizeof n1, "%s.weight_hh_l%d", nm, l);
        if ((s = cphil_infer_load_linear(b, &w->layer[l].hh, n1, lstm ? NULL : n3, NULL, w->G * H, H))) return s;
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
    rnn_run *r = cphil_infer_calloc(&ok, 1, sizeof *r);
    s->run = r;
    if (!ok) return CPHIL_E_NOMEM;
    const bool lstm = sp->backbone == CPHIL_BACKBONE_LSTM; /* c and cell_tmp: LSTM; gates_hh: GRU */
    r->gates = cphil_infer_calloc(&ok, GH, sizeof(float));
    if (lstm) r->cell_tmp = cphil_infer_calloc(&ok, H, sizeof(float));
    else r->gates_hh = cphil_infer_calloc(&ok, GH, sizeof(float));
    if (s->mode == CPHIL_INFER_WINDOW) {
        r->seq_h = cphil_infer_calloc(&ok, W * H, sizeof(float));
        r->seq_in = cphil_infer_calloc(&ok, W * GH, sizeof(float));
        r->h = cphil_infer_calloc(&ok, H, sizeof(float));
        r->c = cphil_infer_calloc(&ok, H, sizeof(float));
        r->fl_h = cphil_infer_calloc(&ok, L * W * H, sizeof(float));
        if (lstm) r->fl_c = cphil_infer_calloc(&ok, L * W * H, sizeof(float));
        else r->fl_gh = cphil_infer_calloc(&ok, W * GH, sizeof(float));
        r->fl_in = cphil_infer_calloc(&ok, W * GH, sizeof(float));
        r->fl_g = cphil_infer_calloc(&ok, W * GH, sizeof(float));
    } else {
        r->st_h = cphil_infer_calloc(&ok, L * H, sizeof(float));
        r->st_c = cphil_infer_calloc(&ok, L * H, sizeof(float));
        r->st_in = cphil_infer_calloc(&ok, GH, sizeof(float));
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
    cphil_free(r->fl_h);
    cphil_free(r->fl_c);
    cphil_free(r->fl_in);
    cphil_free(r->fl_g);
    cphil_free(r->fl_gh);
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
 * the cheap cost model (see cphil_infer_relu). */
__attribute__((optimize("vect-cost-model=cheap"))) static void gru_cell(float *restrict gi, const float *restrict gh,
                                                                         float *restrict h, int H) {
    for (int j = 0; j < 2 * H; j++) gi[j] += gh[j];
    cphil_infer_vsigmoid(gi, 2 * H);
    for (int j = 0; j < H; j++) gi[2 * H + j] += gi[j] * gh[2 * H + j];
    cphil_infer_vtanh(gi + 2 * H, H);
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
            cphil_infer_lstm_cell(g, NULL, h, c, H, r->cell_tmp);
        } else {
            infer_mm(s, &w->layer[l].hh, 1, h, H, g, 4 * H, 0);
            cphil_infer_lstm_cell(g, pre, h, c, H, r->cell_tmp);
        }
    } else {
        memcpy(g, pre, sizeof(float) * 3 * (size_t)H);
        if (h_zero) memcpy(r->gates_hh, w->layer[l].hh.bias, sizeof(float) * 3 * (size_t)H);
        else infer_mm(s, &w->layer[l].hh, 1, h, H, r->gates_hh, 3 * H, 0);
        gru_cell(g, r->gates_hh, h, H);
    }
}

/* Window: layer by layer over the T positions from a zero state; a layer > 0 takes its input
 * product for all positions at once. record: also keep the state after position t of each
 * layer as the in-flight state of the window that ends at frame W - 1 - t (at a game's first
 * frame the window is the first frame W times, and the window that ends at frame e < W is that
 * frame W - e times followed by frames 1 .. e: after position W - 1 - e it has taken exactly
 * the first W - e of them). */
static void rnn_window_run(cphil_infer_state *s, int T, bool record) {
    const cphil_infer_model *m = s->m;
    const rnn_weights *w = m->weights;
    rnn_run *r = s->run;
    const int H = m->spec.hidden, L = m->spec.layers, GH = s->P, W = s->W;
    for (int l = 0; l < L; l++) {
        memset(r->h, 0, sizeof(float) * (size_t)H);
        memset(r->c, 0, sizeof(float) * (size_t)H);
        if (l > 0) infer_mm(s, &w->layer[l].ih, T, r->seq_h, H, r->seq_in, GH, 0);
        for (int t = 0; t < T; t++) {
            const float *pre = l == 0 ? s->seq_pre[t] : r->seq_in + (size_t)t * GH;
            rnn_step(s, l, pre, r->h, r->c, t == 0);
            if (l < L - 1) memcpy(r->seq_h + (size_t)t * H, r->h, sizeof(float) * (size_t)H);
            if (record) {
                const size_t at = ((size_t)l * W + (size_t)(W - 1 - t)) * H;
                memcpy(r->fl_h + at, r->h, sizeof(float) * (size_t)H);
                if (r->fl_c) memcpy(r->fl_c + at, r->c, sizeof(float) * (size_t)H);
            }
        }
    }
    memcpy(s->feat, r->h, sizeof(float) * (size_t)H);
}

static void rnn_window(cphil_infer_state *s, int T) { rnn_window_run(s, T, false); }

/* GRU cells of n windows: gi rows [n][3H] (clobbered), gh rows [n][3H], h rows [n][H]. */
static void gru_cells(float *gi, const float *gh, float *h, int n, int H) {
    for (int k = 0; k < n; k++) gru_cell(gi + (size_t)k * 3 * H, gh + (size_t)k * 3 * H, h + (size_t)k * H, H);
}

/* In-flight windows: the new frame t (the ring's newest) is the next input of all W windows in
 * flight, so each layer's recurrent product is one product of W rows (the weights read once)
 * instead of a batch-1 product per window position. The window that ends at t is complete (its
 * last layer's state is this decision's features); its slot starts the window that ends at
 * t + W - 1 from a zero state. At the game's first frame the states are the recomputed window's
 * (rnn_window_run records them). The products are the recompute's per row (int8: the same
 * integer sums and per-row scales, so the same bits; f32/bf16: up to the kernels' order of sums
 * for a product of W rows against one of a few rows). */
static void rnn_window_step(cphil_infer_state *s) {
    const cphil_infer_model *m = s->m;
    const rnn_weights *w = m->weights;
    rnn_run *r = s->run;
    const int H = m->spec.hidden, L = m->spec.layers, GH = s->P, W = s->W;
    const size_t LW = (size_t)W * H; /* one layer's states */
    if (s->t == 0) {
        rnn_window_run(s, W, true);
        return;
    }
    /* the window that ends at frame t + W - 1 begins now: slot (t - 1) mod W, freed last frame */
    const int fresh = (int)((s->t - 1) % W), done = (int)(s->t % W);
    for (int l = 0; l < L; l++) {
        memset(r->fl_h + l * LW + (size_t)fresh * H, 0, sizeof(float) * (size_t)H);
        if (r->fl_c) memset(r->fl_c + l * LW + (size_t)fresh * H, 0, sizeof(float) * (size_t)H);
    }
    const float *x = s->seq_pre[W - 1]; /* layer 0's input product of frame t, shared by every window */
    for (int l = 0; l < L; l++) {
        float *h = r->fl_h + l * LW;
        if (l > 0) infer_mm(s, &w->layer[l].ih, W, r->fl_h + (l - 1) * LW, H, r->fl_in, GH, 0);
        if (w->G == 4) {
            infer_mm(s, &w->layer[l].hh, W, h, H, r->fl_g, GH, 0);
            for (int k = 0; k < W; k++)
                cphil_infer_lstm_cell(r->fl_g + (size_t)k * GH, l == 0 ? x : r->fl_in + (size_t)k * GH, h + (size_t)k * H,
                                r->fl_c + l * LW + (size_t)k * H, H, r->cell_tmp);
        } else {
            infer_mm(s, &w->layer[l].hh, W, h, H, r->fl_gh, GH, 0);
            if (l == 0)
                for (int k = 0; k < W; k++) memcpy(r->fl_g + (size_t)k * GH, x, sizeof(float) * (size_t)GH);
            gru_cells(l == 0 ? r->fl_g : r->fl_in, r->fl_gh, h, W, H);
        }
    }
    if (s->t <= s->stale_until) rnn_window(s, W); /* a window that holds a stale frame ends now */
    else memcpy(s->feat, r->fl_h + (L - 1) * LW + (size_t)done * H, sizeof(float) * (size_t)H);
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

/* LSTM and GRU share every entry: the cell is chosen from the spec inside each one */
const infer_backbone cphil_infer_rnn_ops = {
    .load = rnn_load,
    .free_weights = rnn_free_weights,
    .pre_width = rnn_pre_width,
    .open = rnn_open,
    .close = rnn_close,
    .reset = rnn_reset,
    .pre = rnn_pre,
    .window = rnn_window,
    .window_step = rnn_window_step,
    .stream = rnn_stream,
};
