/* predict.c — window-mode logits on dense inputs through the model's forward (predict.h).
 * Deliberately not: bf16/int8 (the inference engine's business), stream mode. */
#include "export/predict.h"

#include <string.h>

#define PREDICT_CHUNK 64

cphil_status cphil_predict_dense(const cphil_model *m, const float *X, int N, int W, int E, float *logits) {
    const cphil_model_config *c = &m->cfg;
    bool mlp = c->backbone == CPHIL_BACKBONE_MLP;
    if (E != c->E)
        return cphil_err(CPHIL_E_ARG, "predict: inputs are %d wide, the policy's embedding is E = %d", E, c->E);
    if (W < 1 || (!mlp && W != c->window))
        return cphil_err(CPHIL_E_ARG, "predict: inputs hold windows of %d frames, the %s policy's window is %d",
                         W, cphil_backbone_name(c->backbone), c->window);
    if (N <= 0) return CPHIL_OK;
    cphil_model twin = *m;               /* shares tensors and params: never freed */
    twin.cfg.n_cont = c->E;
    twin.cfg.n_ids = 0;
    twin.cfg.precision = CPHIL_PREC_F32;
    const int T = mlp ? 1 : W, Bc = N < PREDICT_CHUNK ? N : PREDICT_CHUNK;
    cphil_model_ws *ws = NULL;
    cphil_status s = cphil_model_ws_create(&twin, Bc, T, &ws);
    if (s) return s;
    size_t row = (size_t)T * E;
    float *cont = cphil_calloc((size_t)Bc * row, sizeof(float));
    if (!cont) {
        cphil_model_ws_free(ws);
        return cphil_err(CPHIL_E_NOMEM, "predict: out of memory");
    }
    for (int b0 = 0; b0 < N; b0 += Bc) {
        int n = N - b0 < Bc ? N - b0 : Bc;
        for (int i = 0; i < Bc; i++) {
            if (i < n) {
                const float *src = X + ((size_t)(b0 + i) * W + (size_t)(W - T)) * E; /* MLP: the last frame */
                memcpy(cont + (size_t)i * row, src, row * sizeof(float));
            } else {
                memset(cont + (size_t)i * row, 0, row * sizeof(float));
            }
        }
        cphil_batch batch = {.B = Bc, .T = T, .cont = cont, .ids = NULL};
        const float *lg = cphil_model_forward(&twin, ws, &batch);
        for (int i = 0; i < n; i++)
            memcpy(logits + (size_t)(b0 + i) * CPHIL_N_LOGITS, lg + ((size_t)i * T + (size_t)(T - 1)) * CPHIL_N_LOGITS,
                   CPHIL_N_LOGITS * sizeof(float));
    }
    cphil_free(cont);
    cphil_model_ws_free(ws);
    return CPHIL_OK;
}
