/* predict.c — window-mode logits on dense inputs through the model's forward (predict.h).
 * Deliberately not: bf16/int8 (the inference engine's business), stream mode. */
#include "export/predict.h"
#include "game/embed.h"

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
        cphil_model_batch batch = {.B = Bc, .T = T, .cont = cont, .ids = NULL};
        const float *lg = cphil_model_forward(&twin, ws, &batch);
        for (int i = 0; i < n; i++)
            memcpy(logits + (size_t)(b0 + i) * CPHIL_N_LOGITS, lg + ((size_t)i * T + (size_t)(T - 1)) * CPHIL_N_LOGITS,
                   CPHIL_N_LOGITS * sizeof(float));
    }
    cphil_free(cont);
    cphil_model_ws_free(ws);
    return CPHIL_OK;
}

cphil_status cphil_predict_replay_windows(const cphil_model *m, const char *path, int port, int32_t A, int32_t B,
                                          int max_windows, float **X, int *N, int *W) {
    *X = NULL;
    *N = 0;
    const cphil_model_config *c = &m->cfg;
    *W = c->window;
    cphil_embed_layout L;
    cphil_status ls = cphil_model_find_layout(c, &L, "predict --replay (--input takes inputs of any embedding)");
    if (ls) return ls;
    if (port < 1 || port > CPHIL_SLP_PORTS) return cphil_err(CPHIL_E_ARG, "predict: --port %d (1..4)", port);
    cphil_replay *r = NULL;
    cphil_status s = cphil_slp_read_file(path, &r);
    if (s == CPHIL_E_TRUNCATED && r) s = CPHIL_OK; /* use the frames before the cut */
    if (s) return s;
    cphil_embed_game g;
    s = cphil_embed_game_init(&g, r, port - 1, -1);
    if (s) {
        cphil_replay_free(r);
        return cphil_err_prefix(s, "%s: port %d: ", path, port);
    }
    if (A == INT32_MIN) A = r->first_frame;
    if (B == INT32_MAX) B = r->last_frame;
    if (r->n_frames == 0 || A > B || A < r->first_frame || B > r->last_frame) {
        s = cphil_err(CPHIL_E_ARG, "%s: frames %d:%d are outside the replay's frames %d:%d", path, (int)A, (int)B,
                      (int)r->first_frame, (int)r->last_frame);
        cphil_replay_free(r);
        return s;
    }
    const int span = (int)(B - A + 1), w = *W, E = L.E;
    const int n = max_windows > 0 && span > max_windows ? max_windows : span;
    float *dense = cphil_calloc((size_t)n * w * E, sizeof(float));
    if (!dense) {
        cphil_replay_free(r);
        return cphil_err(CPHIL_E_NOMEM, "predict: out of memory (%d windows of %d x %d)", n, w, E);
    }
    float cont[CPHIL_EMBED_MAX_CONT];
    int32_t ids[CPHIL_EMBED_MAX_IDS];
    cphil_frame f;
    for (int i = 0; i < n; i++) {
        int64_t end = (int64_t)A + (n == span ? i : (int64_t)i * (span - 1) / (n > 1 ? n - 1 : 1)) - r->first_frame;
        for (int t = 0; t < w; t++) {
            int64_t row = end - (w - 1) + t;
            if (row < 0) row = 0;
            cphil_replay_get_frame(r, (uint32_t)row, &f);
            cphil_embed_frame(&L, &g, &f, cont, ids);
            cphil_embed_densify(&L, cont, ids, dense + ((size_t)i * w + t) * E);
        }
    }
    cphil_replay_free(r);
    *X = dense;
    *N = n;
    return CPHIL_OK;
}
