/* infer_mlp.c — the MLP backbone: hidden layers 2.. of the MLP on the newest frame (the input
 * layer with its ReLU is the first hidden layer, infer.c's). No time axis: window and stream
 * modes are the same one-frame forward.
 */
#include "infer/infer_impl.h"

#include <stdio.h>

typedef struct mlp_weights {
    cphil_pmat layer[INFER_MAX_MLP]; /* layer[i]: [mlp[i], mlp[i-1]] for i >= 1 (0 is the input layer) */
} mlp_weights;

typedef struct mlp_run {
    float *act[2]; /* [max mlp[i]] each: hidden activations, alternating between layers */
} mlp_run;

static cphil_status mlp_check(const cphil_infer_spec *sp) {
    if (sp->n_mlp < 1 || sp->n_mlp > INFER_MAX_MLP)
        return cphil_err(CPHIL_E_MISMATCH, "MLP needs 1..%d hidden sizes (got %d)", INFER_MAX_MLP, sp->n_mlp);
    for (int i = 0; i < sp->n_mlp; i++)
        if (sp->mlp[i] < 1 || sp->mlp[i] > 65536) return cphil_err(CPHIL_E_MISMATCH, "bad MLP hidden size %d", sp->mlp[i]);
    return CPHIL_OK;
}

static cphil_status mlp_load(infer_build *b) {
    cphil_infer_model *m = b->m;
    const cphil_infer_spec *sp = &m->spec;
    mlp_weights *w = cphil_calloc(1, sizeof *w);
    if (!w) return cphil_err(CPHIL_E_NOMEM, "out of memory for the MLP");
    m->weights = w;
    char n1[96], n2[96];
    for (int i = 1; i < sp->n_mlp; i++) {
        snprintf(n1, sizeof n1, "mlp.%d.weight", i - 1);
        snprintf(n2, sizeof n2, "mlp.%d.bias", i - 1);
        cphil_status s = cphil_infer_load_linear(b, &w->layer[i], n1, n2, NULL, sp->mlp[i], sp->mlp[i - 1]);
        if (s) return s;
    }
    return CPHIL_OK;
}

static void mlp_free_weights(void *w) { cphil_free(w); } /* its products are freed through m->mats */

static int mlp_pre_width(const cphil_infer_model *m) {
    (void)m;
    return 0;
}

static cphil_status mlp_open(cphil_infer_state *s) {
    const cphil_infer_spec *sp = &s->m->spec;
    int wmax = 1;
    for (int i = 0; i < sp->n_mlp; i++) wmax = CPHIL_MAX(wmax, sp->mlp[i]);
    bool ok = true;
    mlp_run *r = cphil_infer_calloc(&ok, 1, sizeof *r);
    s->run = r;
    if (!ok) return CPHIL_E_NOMEM;
    r->act[0] = cphil_infer_calloc(&ok, (size_t)wmax, sizeof(float));
    r->act[1] = cphil_infer_calloc(&ok, (size_t)wmax, sizeof(float));
    return ok ? CPHIL_OK : CPHIL_E_NOMEM;
}

static void mlp_close(void *run) {
    mlp_run *r = run;
    cphil_free(r->act[0]);
    cphil_free(r->act[1]);
    cphil_free(r);
}

static void mlp_reset(cphil_infer_state *s) { (void)s; }

static void mlp_window(cphil_infer_state *s, int T) {
    const cphil_infer_model *m = s->m;
    const cphil_infer_spec *sp = &m->spec;
    const mlp_weights *wt = m->weights;
    mlp_run *r = s->run;
    const float *x = s->seq_x0[T - 1];
    int w = sp->mlp[0];
    for (int i = 1; i < sp->n_mlp; i++) {
        float *y = r->act[i & 1];
        infer_mm(s, &wt->layer[i], 1, x, w, y, sp->mlp[i], 0);
        cphil_infer_relu(y, sp->mlp[i]);
        x = y;
        w = sp->mlp[i];
    }
    memcpy(s->feat, x, sizeof(float) * (size_t)m->Hb);
}

const infer_backbone cphil_infer_mlp_ops = {
    .check = mlp_check,
    .load = mlp_load,
    .free_weights = mlp_free_weights,
    .pre_width = mlp_pre_width,
    .open = mlp_open,
    .close = mlp_close,
    .reset = mlp_reset,
    .pre = NULL,
    .window = mlp_window,
    .stream = NULL,
};
