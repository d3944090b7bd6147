/* eval.c — held-out evaluation of a policy (see eval.h for how frames are scored). */
#include "train/eval.h"

#include "gpu/gpu.h"

#include <string.h>

static int eval_device = -1; /* cphil_eval_use_device: -1 = the CPU */

void cphil_eval_use_device(int gpu) { eval_device = gpu; }

typedef struct slot {
    int replay;
    size_t start, len;          /* frames [start, start + len) of the replay fill the window */
    size_t score_from, score_to; /* absolute frame range scored */
} slot;

/* fn2 (autoregressive heads only): called with the teacher-forced logits (each head
 * conditioned on the human's values of the heads before it) and the greedy ones. */
typedef cphil_status (*frame_logits2_fn)(void *user, int replay, size_t frame, const float *tf, const float *greedy);

static cphil_status foreach_frame(const cphil_model *m, cphil_tr_data *d, bool held_out, int batch, bool quiet,
                                  const char *label, cphil_frame_logits_fn fn, frame_logits2_fn fn2, void *user) {
    cphil_tr_data_summary ds; /* the batches below are sized by the policy, the rows by the data */
    cphil_tr_data_get_summary(d, &ds);
    cphil_status st = cphil_model_check_embedding(&m->cfg, ds.n_cont, ds.n_ids, ds.E, ds.layout_hash, label);
    if (st) return st;
    const int W = m->cfg.backbone == CPHIL_BACKBONE_MLP ? 1 : m->cfg.window;
    const size_t half = W > 1 ? (size_t)W / 2 : 1;
    const int B = batch > 0 ? batch : 32;
    const int nc = m->cfg.n_cont, ni = m->cfg.n_ids;
    cphil_model_ws *ws = NULL;
    cphil_gpu_forward *gf = NULL;
    float *cont = cphil_alloc((size_t)B * W * (size_t)(nc ? nc : 1) * sizeof(float));
    int32_t *ids = cphil_alloc((size_t)B * W * (size_t)(ni ? ni : 1) * sizeof(int32_t));
    slot *slots = cphil_alloc((size_t)B * sizeof(slot));
    /* autoregressive heads scored by fn2: the targets of the window and the teacher-forced logits */
    const bool tf = fn2 && m->cfg.heads == CPHIL_HEADS_AUTOREGRESSIVE;
    uint8_t *tbtn = tf ? cphil_alloc((size_t)B * W * CPHIL_N_BUTTONS) : NULL;
    uint8_t *tcls = tf ? cphil_alloc((size_t)B * W * CPHIL_N_CAT) : NULL;
    float *tf_logits = tf ? cphil_alloc((size_t)B * W * CPHIL_N_LOGITS * sizeof(float)) : NULL;
    cphil_progress bar;
    cphil_progress_begin(&bar, label ? label : "eval", 0, true);
    if (!cont || !ids || !slots || (tf && (!tbtn || !tcls || !tf_logits))) {
        st = cphil_err(CPHIL_E_NOMEM, "out of memory for evaluation batches");
        goto done;
    }
    if (eval_device >= 0 && m->cfg.heads == CPHIL_HEADS_AUTOREGRESSIVE)
        st = cphil_err(CPHIL_E_ARG, "%s: autoregressive heads run on the CPU only for now (drop --device)",
                       label ? label : "policy");
    else if (eval_device >= 0) st = cphil_gpu_forward_create(eval_device, m, B, W, &gf);
    else st = cphil_model_ws_create(m, B, W, &ws);
    if (st != CPHIL_OK) goto done;
    int nrep = cphil_tr_data_n_replays(d, held_out);
    uint64_t total = 0;
    for (int i = 0; i < nrep; i++) total += cphil_tr_data_replay_frames(d, held_out, i);
    cphil_progress_begin(&bar, label ? label : "eval", total, quiet);
    int ns = 0;
    uint64_t done_frames = 0;
    for (int i = 0; i <= nrep; i++) {
        size_t n = i < nrep ? cphil_tr_data_replay_frames(d, held_out, i) : 0;
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
                if (tf) {
                    const uint8_t *sb, *sc;
                    if ((st = cphil_tr_data_replay_targets(d, held_out, i, &sb, &sc)) != CPHIL_OK) goto done;
                    for (size_t t = 0; t < (size_t)W; t++) {
                        size_t f = start + (t < len ? t : len - 1);
                        memcpy(tbtn + ((size_t)ns * W + t) * CPHIL_N_BUTTONS, sb + f * CPHIL_N_BUTTONS, CPHIL_N_BUTTONS);
                        memcpy(tcls + ((size_t)ns * W + t) * CPHIL_N_CAT, sc + f * CPHIL_N_CAT, CPHIL_N_CAT);
                    }
                }
                ns++;
            }
            if (ns == B || (i == nrep && ns > 0)) {
                for (int j = ns; j < B; j++) { /* pad the batch with copies of slot 0 */
                    memcpy(cont + (size_t)j * W * nc, cont, (size_t)W * nc * sizeof(float));
                    memcpy(ids + (size_t)j * W * ni, ids, (size_t)W * ni * sizeof(int32_t));
                    if (tf) {
                        memcpy(tbtn + (size_t)j * W * CPHIL_N_BUTTONS, tbtn, (size_t)W * CPHIL_N_BUTTONS);
                        memcpy(tcls + (size_t)j * W * CPHIL_N_CAT, tcls, (size_t)W * CPHIL_N_CAT);
                    }
                }
                const float *logits = NULL;
                if (gf) {
                    if ((st = cphil_gpu_forward_run(gf, cont, ids, &logits)) != CPHIL_OK) goto done;
                } else {
                    if (tf) {
                        cphil_model_batch bt = {B, W, cont, ids, tbtn, tcls, NULL};
                        memcpy(tf_logits, cphil_model_forward(m, ws, &bt), (size_t)B * W * CPHIL_N_LOGITS * sizeof(float));
                    }
                    cphil_model_batch b = {B, W, cont, ids, NULL, NULL, NULL};
                    logits = cphil_model_forward(m, ws, &b);
                }
                for (int j = 0; j < ns; j++) {
                    slot *s = &slots[j];
                    for (size_t f = s->score_from; f < s->score_to; f++) {
                        size_t pos = f - s->start, at = ((size_t)j * W + pos) * CPHIL_N_LOGITS;
                        if (fn2) st = fn2(user, s->replay, f, tf ? tf_logits + at : logits + at, logits + at);
                        else st = fn(user, s->replay, f, logits + at);
                        if (st) goto done;
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
done:
    cphil_model_ws_free(ws);
    cphil_gpu_forward_free(gf);
    cphil_free(cont);
    cphil_free(ids);
    cphil_free(slots);
    cphil_free(tbtn);
    cphil_free(tcls);
    cphil_free(tf_logits);
    return st;
}

cphil_status cphil_policy_foreach_frame(const cphil_model *m, cphil_tr_data *d, bool held_out, int batch, bool quiet,
                                        const char *label, cphil_frame_logits_fn fn, void *user) {
    return foreach_frame(m, d, held_out, batch, quiet, label, fn, NULL, user);
}

typedef struct eval_ctx {
    cphil_tr_data *d;
    bool held_out;
    cphil_head_sums *sums;
    cphil_change_sums change; /* of the policy's chosen states */
} eval_ctx;

/* Frames arrive in order within each replay (cphil_policy_foreach_frame), so the change of
 * the chosen state is taken against the previous frame of the same replay. */
static cphil_status score_frame(void *user, int replay, size_t f, const float *logits, const float *greedy) {
    eval_ctx *c = user;
    const uint8_t *sb, *sc;
    cphil_status st = cphil_tr_data_replay_targets(c->d, c->held_out, replay, &sb, &sc);
    if (st) return st;
    cphil_head_sums_add_logits2(c->sums, logits, greedy, sb + f * CPHIL_N_BUTTONS, sc + f * CPHIL_N_CAT);
    uint8_t state[CPHIL_TR_N_HEADS];
    cphil_decide_logits(greedy, state);
    if (f == 0) cphil_change_begin_replay(&c->change);
    cphil_change_add(&c->change, state);
    return CPHIL_OK;
}

cphil_status cphil_eval_policy(const cphil_model *m, cphil_tr_data *d, bool held_out, int batch, bool quiet,
                               cphil_eval_result *out) {
    memset(out, 0, sizeof *out);
    double t0 = cphil_now_sec();
    cphil_status st = CPHIL_OK;
    /* Baselines: fitted on the training replays of the split (or on the scored ones). */
    cphil_baseline_fit fit;
    cphil_baseline_fit_init(&fit);
    bool fit_on_train = held_out && cphil_tr_data_n_replays(d, false) > 0;
    bool hf = fit_on_train ? false : held_out;
    int nfit = cphil_tr_data_n_replays(d, hf);
    for (int i = 0; i < nfit; i++) {
        const uint8_t *b, *c;
        if ((st = cphil_tr_data_replay_targets(d, hf, i, &b, &c)) != CPHIL_OK) return st;
        cphil_baseline_fit_add(&fit, b, c, 0, cphil_tr_data_replay_frames(d, hf, i));
    }
    out->fit_frames = (uint64_t)fit.frames;
    cphil_eval_acc acc;
    cphil_eval_acc_init(&acc);
    cphil_change_sums human;
    memset(&human, 0, sizeof human);
    int nrep = cphil_tr_data_n_replays(d, held_out);
    for (int i = 0; i < nrep; i++) { /* the baselines and the human's changes, replay by replay */
        const uint8_t *tb, *tc;
        size_t n = cphil_tr_data_replay_frames(d, held_out, i);
        if ((st = cphil_tr_data_replay_targets(d, held_out, i, &tb, &tc)) != CPHIL_OK) return st;
        cphil_eval_acc_add(&acc, &fit, NULL, tb, tc, 0, n, NULL, NULL);
        cphil_change_begin_replay(&human);
        for (size_t t = 0; t < n; t++) {
            uint8_t state[CPHIL_TR_N_HEADS];
            cphil_target_state(tb + t * CPHIL_N_BUTTONS, tc + t * CPHIL_N_CAT, state);
            cphil_change_add(&human, state);
        }
        out->files++;
        out->frames += n;
    }
    eval_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.d = d;
    ctx.held_out = held_out;
    ctx.sums = &acc.model;
    st = foreach_frame(m, d, held_out, batch, quiet, "eval", NULL, score_frame, &ctx);
    cphil_change_rates(&ctx.change, out->change_model, &out->change_model_all);
    cphil_change_rates(&human, out->change_human, &out->change_human_all);
    cphil_head_sums_report(&acc.model, &out->model);
    cphil_head_sums_report(&acc.most_frequent, &out->most_frequent);
    cphil_head_sums_report(&acc.repeat_prev, &out->repeat_prev);
    out->seconds = cphil_now_sec() - t0;
    return st;
}

/* ---- agreement between two policies (distillation: student vs teacher) ------------------- */
#define decide cphil_decide_logits

typedef struct agree_ctx {
    uint8_t *dec;     /* [frames][6] decisions of the first policy */
    size_t *base;     /* first frame index of each replay */
    double same[CPHIL_TR_N_HEADS], all, n;
    bool compare;
} agree_ctx;

static cphil_status agree_frame(void *user, int replay, size_t f, const float *logits) {
    agree_ctx *c = user;
    uint8_t *ref = c->dec + (c->base[replay] + f) * CPHIL_TR_N_HEADS;
    if (!c->compare) {
        decide(logits, ref);
        return CPHIL_OK;
    }
    uint8_t mine[CPHIL_TR_N_HEADS];
    decide(logits, mine);
    int every = 1;
    for (int h = 0; h < CPHIL_TR_N_HEADS; h++) {
        c->same[h] += mine[h] == ref[h];
        every &= mine[h] == ref[h];
    }
    c->all += every;
    c->n += 1;
    return CPHIL_OK;
}

cphil_status cphil_eval_agreement(const cphil_model *m, const cphil_model *other, cphil_tr_data *d, bool held_out,
                                  int batch, bool quiet, double agree[CPHIL_TR_N_HEADS], double *agree_all) {
    int nrep = cphil_tr_data_n_replays(d, held_out);
    agree_ctx c;
    memset(&c, 0, sizeof c);
    c.base = cphil_alloc(((size_t)nrep + 1) * sizeof(size_t));
    if (!c.base) return cphil_err(CPHIL_E_NOMEM, "out of memory");
    size_t total = 0;
    for (int i = 0; i < nrep; i++) {
        c.base[i] = total;
        total += cphil_tr_data_replay_frames(d, held_out, i);
    }
    c.dec = cphil_alloc(total * CPHIL_TR_N_HEADS + 1);
    cphil_status st = c.dec ? CPHIL_OK : cphil_err(CPHIL_E_NOMEM, "out of memory");
    if (!st) st = cphil_policy_foreach_frame(other, d, held_out, batch, quiet, "reference", agree_frame, &c);
    c.compare = true;
    if (!st) st = cphil_policy_foreach_frame(m, d, held_out, batch, quiet, "agreement", agree_frame, &c);
    double n = c.n > 0 ? c.n : 1;
    for (int h = 0; h < CPHIL_TR_N_HEADS; h++) agree[h] = c.same[h] / n;
    *agree_all = c.all / n;
    cphil_free(c.dec);
    cphil_free(c.base);
    return st;
}

cphil_status cphil_tr_run_policy(const char *policy, cphil_tr_data *d, bool held_out, int batch, bool quiet,
                                 cphil_tr_frame_fn fn, void *user, uint64_t *layout_hash, char *config_json,
                                 size_t config_cap) {
    cphil_model m;
    cphil_status st = cphil_policy_load(policy, &m);
    if (st) return st;
    *layout_hash = m.cfg.layout_hash;
    size_t len;
    if (config_json && cphil_model_config_to_json(&m.cfg, config_json, config_cap, &len) != CPHIL_OK)
        snprintf(config_json, config_cap, "{}");
    st = cphil_policy_foreach_frame(&m, d, held_out, batch, quiet, "teacher", fn, user);
    cphil_model_free(&m);
    return st;
}
