/* agent.c — the agent of include/cphil.h: a policy file opened through the inference engine,
 * fed the replay reader's frames through the game embedding (the same cphil_embed_frame the
 * dataset builder uses), sampled into a controller state. See cphil.h "Agent".
 * Does not: talk to Dolphin (the harness does), jump debounce or hysteresis (ExPhil opt-ins).
 */
#include "cphil.h"

#include "agent/sample.h"
#include "core/core.h"
#include "game/embed.h"
#include "infer/infer.h"
#include "infer/infer_policy.h"

#include <math.h>
#include <string.h>

struct cphil_agent {
    cphil_agent_params p;
    cphil_infer_policy *pol;
    cphil_infer_model *model;
    cphil_infer_state *st;
    cphil_embed_layout layout;
    cphil_embed_game game;
    bool have_game;
    int32_t last_frame;  /* the newest frame number consumed (INT32_MIN: none since reset) */
    bool decided;
    cphil_controller_state last_out; /* the newest decision (stream mode repeats it on a re-send) */
    cphil_rng rng_before;            /* the sampler's state before the newest decision */
    float *cont;
    int32_t *ids;
    float logits[CPHIL_N_LOGITS];
    uint8_t det_buttons[8], det_cls[5];
    cphil_rng rng;
    cphil_wtype prec;
    int window;          /* frames the engine's window holds (1 for the MLP) */
    bool ar;             /* autoregressive heads: the engine samples head by head (ar_sample) */
};

/* Autoregressive heads: the engine asks for each head's value in order (each head's logits
 * depend on the values before it), so sampling happens inside the step: buttons Bernoulli on
 * sigmoid(logit), categorical heads Gumbel-max on logits / T, from the agent's generator (the
 * draws differ in order from cphil_sample_action's; deterministic agents keep the engine's
 * greedy chooser). */
static uint8_t ar_sample(void *user, int head, const float *z) {
    cphil_agent *a = user;
    uint8_t v = 0;
    if (head == 0) {
        for (int k = 0; k < CPHIL_N_BUTTONS; k++) {
            double p = 1.0 / (1.0 + exp(-(double)z[k]));
            v |= (uint8_t)((cphil_rng_uniform(&a->rng) < p) << k);
        }
        return v;
    }
    double best = -INFINITY, T = a->p.temperature > 0.f ? a->p.temperature : 1.0;
    for (int k = 0; k < cphil_head_classes[head]; k++) {
        double g = (double)z[k] / T - log(-log(cphil_rng_uniform(&a->rng)));
        if (g > best) best = g, v = (uint8_t)k;
    }
    return v;
}

cphil_agent_params cphil_agent_default_params(void) {
    cphil_agent_params p;
    memset(&p, 0, sizeof p);
    p.mode = CPHIL_AGENT_WINDOW;
    p.precision = CPHIL_AGENT_PREC_AUTO;
    p.temperature = 1.f;
    p.deterministic = 0;
    p.seed = 0;
    p.port = 0;
    p.opponent = -1;
    return p;
}

/* The embedding layout the policy was trained with: the default, or with prev_action; matched by
 * hash when the file records one, else by sizes. */
static cphil_status match_layout(cphil_agent *a, const char *path) {
    return cphil_model_find_layout(cphil_infer_policy_config(a->pol), &a->layout, path);
}

cphil_status cphil_agent_open(const char *policy_path, const cphil_agent_params *params, cphil_agent **out) {
    if (!out) return cphil_err(CPHIL_E_ARG, "cphil_agent_open: out is NULL");
    *out = NULL;
    if (!policy_path) return cphil_err(CPHIL_E_ARG, "cphil_agent_open: no policy path");
    cphil_agent_params p = params ? *params : cphil_agent_default_params();
    if (p.mode != CPHIL_AGENT_WINDOW && p.mode != CPHIL_AGENT_STREAM)
        return cphil_err(CPHIL_E_ARG, "agent: mode %d is neither window (0) nor stream (1)", (int)p.mode);
    if ((int)p.precision < 0 || p.precision > CPHIL_AGENT_PREC_INT8)
        return cphil_err(CPHIL_E_ARG, "agent: precision %d is not auto, f32, bf16 or int8", (int)p.precision);
    if (!(p.temperature > 0.f) || !isfinite(p.temperature))
        return cphil_err(CPHIL_E_ARG, "agent: temperature must be > 0 (got %g)", (double)p.temperature);
    if (p.port < 0 || p.port > 3) return cphil_err(CPHIL_E_ARG, "agent: port index %d is not 0..3 (port 1 is 0)", p.port);
    if (p.opponent < -1 || p.opponent > 3) return cphil_err(CPHIL_E_ARG, "agent: opponent index %d is not -1..3", p.opponent);
    cphil_agent *a = cphil_calloc(1, sizeof *a);
    if (!a) return cphil_err(CPHIL_E_NOMEM, "out of memory for an agent");
    a->p = p;
    cphil_status s = cphil_infer_policy_open(policy_path, &a->pol);
    if (s) goto fail;
    if ((s = match_layout(a, policy_path))) goto fail;
    cphil_wtype file = cphil_infer_policy_precision(a->pol);
    switch (p.precision) {
    case CPHIL_AGENT_PREC_AUTO: a->prec = file; break;
    case CPHIL_AGENT_PREC_F32: a->prec = CPHIL_W_F32; break;
    case CPHIL_AGENT_PREC_BF16: a->prec = CPHIL_W_BF16; break;
    default: a->prec = CPHIL_W_I8; break;
    }
    if ((s = cphil_infer_policy_build(a->pol, a->prec, &a->model))) goto fail;
    if ((s = cphil_infer_state_open(a->model, p.mode == CPHIL_AGENT_STREAM ? CPHIL_INFER_STREAM : CPHIL_INFER_WINDOW,
                                    &a->st)))
        goto fail;
    a->ar = cphil_infer_model_spec(a->model)->ar_heads;
    if (a->ar && !p.deterministic) cphil_infer_set_chooser(a->st, ar_sample, a); /* else greedy */
    a->cont = cphil_calloc((size_t)a->layout.n_cont + 1, sizeof(float));
    a->ids = cphil_calloc((size_t)a->layout.n_ids + 1, sizeof(int32_t));
    if (!a->cont || !a->ids) {
        s = cphil_err(CPHIL_E_NOMEM, "out of memory for an agent");
        goto fail;
    }
    cphil_rng_seed(&a->rng, p.seed);
    a->window = cphil_infer_model_spec(a->model)->window;
    a->last_frame = INT32_MIN;
    *out = a;
    return CPHIL_OK;
fail:
    cphil_agent_close(a);
    return s;
}

void cphil_agent_close(cphil_agent *a) {
    if (!a) return;
    cphil_infer_state_close(a->st);
    cphil_infer_model_free(a->model);
    cphil_infer_policy_close(a->pol);
    cphil_free(a->cont);
    cphil_free(a->ids);
    cphil_free(a);
}

size_t cphil_agent_warm(cphil_agent *a) { return a ? cphil_infer_model_touch(a->model) : 0; }

void cphil_agent_reset(cphil_agent *a) {
    if (!a) return;
    cphil_infer_state_reset(a->st);
    a->last_frame = INT32_MIN;
    a->decided = false;
}

cphil_status cphil_agent_game_start(cphil_agent *a, const cphil_replay *game) {
    if (!a || !game) return cphil_err(CPHIL_E_ARG, "cphil_agent_game_start: NULL argument");
    cphil_status s = cphil_embed_game_init(&a->game, game, a->p.port, a->p.opponent);
    if (s) return s;
    a->have_game = true;
    cphil_agent_reset(a);
    return CPHIL_OK;
}

cphil_status cphil_agent_game_start_bot(cphil_agent *a, const cphil_bot_game *game) {
    if (!a || !game) return cphil_err(CPHIL_E_ARG, "cphil_agent_game_start_bot: NULL argument");
    cphil_status s = cphil_embed_game_init_parts(&a->game, game->stage, game->playing, game->fields, a->p.port,
                                                 a->p.opponent);
    if (s) return s;
    a->have_game = true;
    cphil_agent_reset(a);
    return CPHIL_OK;
}

static void neutral(cphil_controller_state *o) {
    memset(o, 0, sizeof *o);
    o->main_x = o->main_y = o->c_x = o->c_y = 0.5f;
}

/* logits -> controls (and the deterministic choice kept for cphil_agent_last_choice) */
static void decide(cphil_agent *a, cphil_controller_state *out) {
    uint8_t btn[8], cls[5];
    cphil_sample_action(a->logits, 1.f, true, NULL, a->det_buttons, a->det_cls);
    if (a->ar) { /* chosen head by head inside the step (greedy, or ar_sample) */
        const uint8_t *ch = cphil_infer_chosen(a->st);
        for (int k = 0; k < 8; k++) btn[k] = ch[0] >> k & 1;
        memcpy(cls, ch + 1, 5);
    } else if (a->p.deterministic) {
        memcpy(btn, a->det_buttons, 8);
        memcpy(cls, a->det_cls, 5);
    } else {
        cphil_sample_action(a->logits, a->p.temperature, false, &a->rng, btn, cls);
    }
    a->decided = true;
    for (int i = 0; i < 8; i++) out->button[i] = btn[i];
    out->main_x = cls[0] / 16.f;
    out->main_y = cls[1] / 16.f;
    out->c_x = cls[2] / 16.f;
    out->c_y = cls[3] / 16.f;
    out->shoulder = cls[4] / 4.f;
    a->last_out = *out;
}

/* A re-send of frame f <= the newest consumed (cphil.h, "Frame numbers"). Window mode corrects
 * the frame in the window and decides again for the newest frame, with the sampler rewound to
 * where the newest decision started (an identical copy gives the same controls); stream mode
 * cannot rewind its carried state and repeats the newest decision. */
static cphil_status redecide(cphil_agent *a, const cphil_frame *f, cphil_controller_state *out) {
    int64_t back = (int64_t)a->last_frame - f->frame;
    int64_t held = cphil_infer_state_frames(a->st);
    if (a->p.mode == CPHIL_AGENT_STREAM || back >= held || back >= a->window) {
        *out = a->last_out;
        return CPHIL_OK;
    }
    cphil_embed_frame(&a->layout, &a->game, f, a->cont, a->ids);
    cphil_rng now = a->rng;
    a->rng = a->rng_before; /* before the step: autoregressive heads sample inside it */
    cphil_status s = cphil_infer_correct(a->st, (int)back, a->cont, a->ids, a->logits);
    if (s) {
        a->rng = now;
        return s;
    }
    decide(a, out);
    return CPHIL_OK;
}

cphil_status cphil_agent_step(cphil_agent *a, const cphil_frame *f, cphil_controller_state *out) {
    if (!a || !f || !out) return cphil_err(CPHIL_E_ARG, "cphil_agent_step: NULL argument");
    if (!a->have_game) return cphil_err(CPHIL_E_ARG, "cphil_agent_step: call cphil_agent_game_start first");
    neutral(out);
    /* far below the newest frame: not a rollback re-send but a new game */
    if (a->last_frame != INT32_MIN && (int64_t)f->frame < (int64_t)a->last_frame - CPHIL_AGENT_MAX_ROLLBACK)
        cphil_agent_reset(a);
    if (f->frame < CPHIL_AGENT_FIRST_FRAME) return CPHIL_OK;
    if (a->last_frame != INT32_MIN && f->frame <= a->last_frame) return redecide(a, f, out);
    cphil_embed_frame(&a->layout, &a->game, f, a->cont, a->ids);
    cphil_rng before = a->rng; /* autoregressive heads draw inside the step */
    cphil_status s = cphil_infer_step(a->st, a->cont, a->ids, a->logits);
    if (s) return s; /* nothing consumed: the state is as before */
    a->last_frame = f->frame;
    a->rng_before = before;
    decide(a, out);
    return CPHIL_OK;
}

void cphil_agent_get_config(const cphil_agent *a, cphil_agent_config *o) {
    memset(o, 0, sizeof *o);
    const cphil_model_config *c = cphil_infer_policy_config(a->pol);
    const cphil_infer_spec *sp = cphil_infer_model_spec(a->model);
    o->backbone = cphil_backbone_name(c->backbone);
    o->temporal = c->backbone != CPHIL_BACKBONE_MLP;
    o->window = sp->window;
    o->hidden = c->hidden;
    o->num_layers = c->num_layers;
    o->state_size = c->state_size;
    o->expand = c->expand;
    o->conv_size = c->conv_size;
    o->num_heads = c->num_heads;
    o->n_mlp = c->n_mlp;
    for (int i = 0; i < c->n_mlp && i < 8; i++) o->mlp_hidden[i] = c->mlp_hidden[i];
    o->n_cont = c->n_cont;
    o->n_ids = c->n_ids;
    o->E = c->E;
    o->params = (long long)cphil_infer_model_params(a->model);
    o->precision = a->prec == CPHIL_W_F32 ? "f32" : a->prec == CPHIL_W_BF16 ? "bf16" : "int8";
    o->activations = a->prec != CPHIL_W_I8 ? "f32" : cphil_infer_policy_is_static(a->pol) ? "static" : "dynamic";
    o->mode = a->p.mode == CPHIL_AGENT_STREAM ? "stream" : "window";
}

const float *cphil_agent_last_logits(const cphil_agent *a) { return a && a->decided ? a->logits : NULL; }

int cphil_agent_last_choice(const cphil_agent *a, uint8_t buttons[8], uint8_t cls[5]) {
    if (!a || !a->decided) return 0;
    memcpy(buttons, a->det_buttons, 8);
    memcpy(cls, a->det_cls, 5);
    return 1;
}

int cphil_agent_last_inputs(const cphil_agent *a, const float **cont, const int32_t **ids) {
    if (!a || !a->decided) return 0;
    *cont = a->cont;
    *ids = a->ids;
    return 1;
}
