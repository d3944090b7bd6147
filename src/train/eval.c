/* eval.c — held-out evaluation of a policy (see eval.h for how frames are scored). */
#include "train/eval.h"

#include <string.h>

typedef struct slot {
    int replay;
    size_t start, len;          /* frames [start, start + len) of the replay fill the window */
    size_t score_from, score_to; /* absolute frame range scored */
} slot;

cphil_status cphil_eval_policy(const cphil_model *m, cphil_tr_data *d, bool held_out, int batch, bool quiet,
                               cphil_eval_result *out) {
    memset(out, 0, sizeof *out);
    double t0 = cphil_now_sec();
    cphil_status st = CPHIL_OK;
    /* Baselines: fitted on the training replays of the split (or on the scored ones). */
    cphil_baseline_fit fit;
    cphil_baseline_fit_init(&fit);
    bool fit_on_train = held_out && cphil_tr_data_n_replays(d, false) > 0;
    int nfit = cphil_tr_data_n_replays(d, !fit_on_train ? held_out : false);
    for (int i = 0; i < nfit; i++) {
        const uint8_t *b, *c;
        bool h = fit_on_train ? false : held_out;
        if ((st = cphil_tr_data_replay_targets(d, h, i, &b, &c)) != CPHIL_OK) return st;
        cphil_baseline_fit_add(&fit, b, c, 0, cphil_tr_data_replay_frames(d, h, i));
    }
    out->fit_frames = (uint64_t)fit.frames;

    const int W = m->cfg.backbone == CPHIL_BACKBONE_MLP ? 1 : m->cfg.window;
    const size_t half = W > 1 ? (size_t)W / 2 : 1;
    const int B = batch > 0 ? batch : 32;
    const int nc = m->cfg.n_cont, ni = m->cfg.n_ids;
    cphil_model_ws *ws = NULL;
    float *cont = cphil_alloc((size_t)B * W * (size_t)(nc ? nc : 1) * sizeof(float));
    int32_t *ids = cphil_alloc((size_t)B * W * (size_t)(ni ? ni : 1) * sizeof(int32_t));
    slot *slots = cphil_alloc((size_t)B * sizeof(slot));
    if (!cont || !ids || !slots) {
        st = cphil_err(CPHIL_E_NOMEM, "out of memory for evaluation batches");
        goto done;
    }
    if ((st = cphil_model_ws_create(m, B, W, &ws)) != CPHIL_OK) goto done;
    cphil_eval_acc acc;
    cphil_eval_acc_init(&acc);
    int nrep = cphil_tr_data_n_replays(d, held_out);
    uint64_t total = 0;
    for (int i = 0; i < nrep; i++) total += cphil_tr_data_replay_frames(d, held_out, i);
    cphil_progress bar;
    cphil_progress_begin(&bar, "eval", total, quiet);
    int ns = 0;
    uint64_t done_frames = 0;
    for (int i = 0; i <= nrep; i++) {
        size_t n = i < nrep ? cphil_tr_data_replay_frames(d, held_out, i) : 0;
        const uint8_t *tb = NULL, *tc = NULL;
        if (i < nrep) {
            if ((st = cphil_tr_data_replay_targets(d, held_out, i, &tb, &tc)) != CPHIL_OK) goto done;
            cphil_eval_acc_add(&acc, &fit, NULL, tb, tc, 0, n, NULL, NULL); /* the baselines */
            out->files++;
            out->frames += n;
        }
        size_t scored_to = 0, k = 0;
        while (i < nrep ? scored_to < n : ns > 0) {
            if (i < nrep) {
                size_t start = k * half, len = (size_t)W;
                if (n <= (size_t)W) start = 0, len = n;
                else if (start + (size_t)W > n) start = n - (size_t)W;
                slot *s = &slots[ns];
                s->replay = i;
                s->start = start;
                s->len = len;
                s->score_from = scored_to;
                s->score_to = start + len;
                scored_to = s->score_to;
                k++;
                /* inputs; positions past len repeat the last frame (causal: they do not change
                 * the scored positions) */
                float *c0 = cont + (size_t)ns * W * nc;
                int32_t *i0 = ids + (size_t)ns * W * ni;
                if ((st = cphil_tr_data_replay_inputs(d, held_out, i, start, len, c0, i0)) != CPHIL_OK) goto done;
                for (size_t t = len; t < (size_t)W; t++) {
                    memcpy(c0 + t * nc, c0 + (len - 1) * nc, (size_t)nc * sizeof(float));
                    memcpy(i0 + t * ni, i0 + (len - 1) * ni, (size_t)ni * sizeof(int32_t));
                }
                ns++;
            }
            if (ns == B || (i == nrep && ns > 0)) {
                for (int j = ns; j < B; j++) { /* pad the batch with copies of slot 0 */
                    memcpy(cont + (size_t)j * W * nc, cont, (size_t)W * nc * sizeof(float));
                    memcpy(ids + (size_t)j * W * ni, ids, (size_t)W * ni * sizeof(int32_t));
                }
                cphil_batch b = {B, W, cont, ids, NULL, NULL, NULL};
                const float *logits = cphil_model_forward(m, ws, &b);
                for (int j = 0; j < ns; j++) {
                    slot *s = &slots[j];
                    const uint8_t *sb, *sc;
                    if ((st = cphil_tr_data_replay_targets(d, held_out, s->replay, &sb, &sc)) != CPHIL_OK) goto done;
                    for (size_t f = s->score_from; f < s->score_to; f++) {
                        size_t pos = f - s->start;
                        cphil_head_sums_add_logits(&acc.model, logits + ((size_t)j * W + pos) * CPHIL_N_LOGITS,
                                                   sb + f * CPHIL_N_BUTTONS, sc + f * CPHIL_N_CAT);
                    }
                    done_frames += s->score_to - s->score_from;
                }
                ns = 0;
                char extra[64];
                snprintf(extra, sizeof extra, "%llu frames", (unsigned long long)done_frames);
                cphil_progress_update(&bar, done_frames, extra);
            }
            if (i == nrep) break;
        }
    }
    cphil_progress_end(&bar);
    cphil_head_sums_report(&acc.model, &out->model);
    cphil_head_sums_report(&acc.most_frequent, &out->most_frequent);
    cphil_head_sums_report(&acc.repeat_prev, &out->repeat_prev);
done:
    out->seconds = cphil_now_sec() - t0;
    cphil_model_ws_free(ws);
    cphil_free(cont);
    cphil_free(ids);
    cphil_free(slots);
    return st;
}
