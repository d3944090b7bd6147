/* policy_train.c — the training loop's model table over src/model/ (see policy_train.h).
 * One optimizer step = zero the gradient block, forward, loss (the model's imitation loss, or
 * the distillation loss when the batch has teacher probabilities), backward, AdamW (clipping
 * inside). Everything is deterministic given the seed: the model's kernels do not depend on
 * thread timing (docs/model.md).
 * Deliberately not here: the maths (src/model, src/nn), the schedule (the loop passes lr).
 */
#include "train/policy_train.h"

#include "train/distill_loss.h"

#include <math.h>
#include <string.h>

struct cphil_tr_policy {
    cphil_model model;
    cphil_adamw opt;
    cphil_model_ws *ws;
    cphil_loss_config lc;
    cphil_tr_policy_opts o;
    float *grads;
    float *dz;           /* distillation: d loss / d logits [B*T*81] */
    float *carry;        /* TBPTT: carried recurrent state of every slot (NULL: windows) */
    size_t carry_floats;
    /* TBPTT with several ranks: the checkpoint's "carry" section is the state of every slot of
     * the global batch, laid out as one process with ranks x B slots lays it out ([layer][slot][H]),
     * so a checkpoint resumes with any rank count that keeps the global batch.
     * carry_all holds it (gathered before a save, dealt out after a load); carry_tmp receives the
     * ranks' blocks in rank order. NULL for one process (carry is the section itself). */
    float *carry_all, *carry_tmp;
    int ranks, rank;
    /* gradient buckets (o.bucket_floats > 0 with ranks): the backward's hook starts the sum of
     * each finished tail of the block; [bk_lo, n + 1) is started, bk_frac scales it first */
    size_t bk_lo;
    float bk_frac;
    cphil_status bk_st;
    char config_json[4096];
};

void cphil_tr_policy_opts_default(cphil_tr_policy_opts *o) {
    memset(o, 0, sizeof *o);
    o->seed = 1;
    o->weight_decay = 1e-5;
    o->max_grad_norm = 1.0;
    o->button_weight = 1.0;
    o->B = 64;
    o->T = 60;
    o->distill_T = 2.0;
    o->distill_alpha = 0.7;
}

cphil_model *cphil_tr_policy_model(cphil_tr_policy *p) { return &p->model; }

void cphil_tr_policy_free(cphil_tr_policy *p) {
    if (!p) return;
    cphil_model_ws_free(p->ws);
    cphil_adamw_free(&p->opt);
    cphil_model_free(&p->model);
    cphil_free(p->grads);
    cphil_free(p->dz);
    cphil_free(p->carry);
    cphil_free(p->carry_all);
    cphil_free(p->carry_tmp);
    cphil_free(p);
}

cphil_status cphil_tr_policy_create(const cphil_model_config *cfg, const cphil_tr_policy_opts *o,
                                    cphil_tr_policy **out) {
    *out = NULL;
    cphil_tr_policy *p = cphil_calloc(1, sizeof *p);
    if (!p) return cphil_err(CPHIL_E_NOMEM, "out of memory for the policy");
    p->o = *o;
    cphil_status s = cphil_model_init(&p->model, cfg);
    if (s) goto fail;
    cphil_model_init_params(&p->model, o->seed);
    cphil_adamw_config ac;
    cphil_adamw_config_default(&ac);
    ac.weight_decay = (float)o->weight_decay;
    ac.max_grad_norm = (float)o->max_grad_norm;
    ac.schedule = CPHIL_SCHED_CONSTANT; /* the loop passes the scheduled lr every step */
    if ((s = cphil_adamw_init(&p->opt, &ac, p->model.n_floats)) != CPHIL_OK) goto fail;
    if ((s = cphil_model_ws_create(&p->model, o->B, o->T, &p->ws)) != CPHIL_OK) goto fail;
    /* one float past the gradients: the rank's share of the loss rides in the same all-reduce */
    p->grads = cphil_calloc(p->model.n_floats + 1, sizeof(float));
    p->dz = cphil_calloc((size_t)o->B * (size_t)o->T * CPHIL_N_LOGITS, sizeof(float));
    if (!p->grads || !p->dz) {
        s = cphil_err(CPHIL_E_NOMEM, "out of memory for the gradients");
        goto fail;
    }
    if (o->tbptt) {
        p->carry_floats = cphil_model_carry_floats(cfg, o->B);
        if (p->carry_floats == 0) {
            s = cphil_err(CPHIL_E_ARG, "--tbptt needs a recurrent backbone (lstm or gru), not %s",
                          cphil_backbone_name(cfg->backbone));
            goto fail;
        }
        p->carry = cphil_calloc(p->carry_floats, sizeof(float));
        p->ranks = cphil_dist_size(o->dist);
        p->rank = cphil_dist_rank(o->dist);
        if (p->ranks > 1) {
            p->carry_all = cphil_calloc(p->carry_floats * (size_t)p->ranks, sizeof(float));
            p->carry_tmp = cphil_calloc(p->carry_floats * (size_t)p->ranks, sizeof(float));
        }
        if (!p->carry || (p->ranks > 1 && (!p->carry_all || !p->carry_tmp))) {
            s = cphil_err(CPHIL_E_NOMEM, "out of memory for the carried state");
            goto fail;
        }
    }
    cphil_loss_config_default(&p->lc);
    p->lc.label_smoothing = (float)o->label_smoothing;
    p->lc.button_weight = (float)o->button_weight;
    size_t jl;
    if ((s = cphil_model_config_to_json(cfg, p->config_json, sizeof p->config_json, &jl)) != CPHIL_OK) goto fail;
    *out = p;
    return CPHIL_OK;
fail:
    cphil_tr_policy_free(p);
    return s;
}

/* The model's view of a loop batch (targets packed: [B, T, 8] and [B, T, 5]). */
static cphil_model_batch model_batch(const cphil_tr_batch *tb) {
    cphil_model_batch b = {tb->B, tb->T, tb->cont, tb->ids, tb->btn, tb->cls, tb->weight};
    return b;
}

static cphil_status check_shape(const cphil_tr_policy *p, const cphil_model_batch *b) {
    if (b->B != p->o.B || b->T != p->o.T)
        return cphil_err(CPHIL_E_INTERNAL, "batch %dx%d does not match the workspace %dx%d", b->B, b->T, p->o.B,
                         p->o.T);
    return CPHIL_OK;
}

/* Distillation: overwrite the workspace's dlogits with the distillation gradient. */
static double distill_grad(cphil_tr_policy *p, const cphil_tr_batch *tb, const float *logits, float *dlogits) {
    size_t n = (size_t)tb->B * (size_t)tb->T;
    cphil_distill_terms t;
    cphil_distill_loss(logits, tb->soft, tb->btn, tb->cls, n, p->o.distill_T, p->o.distill_alpha, dlogits, &t);
    return t.loss;
}

/* Frame-weight sum of a batch (the loss's denominator). */
static double weight_sum(const cphil_tr_batch *tb) {
    size_t n = (size_t)tb->B * (size_t)tb->T;
    if (!tb->weight) return (double)n;
    double w = 0;
    for (size_t i = 0; i < n; i++) w += tb->weight[i];
    return w;
}

/* The backward finished [lo, n_floats): once at least a bucket's worth is pending (or the block
 * is done), scale it by this rank's share and start its sum; in between, let MPI progress. */
static void bucket_ready(void *user, size_t lo) {
    cphil_tr_policy *p = user;
    if (p->bk_st) return;
    if (lo > 0 && p->bk_lo - lo < p->o.bucket_floats) {
        cphil_dist_progress(p->o.dist);
        return;
    }
    const size_t n = p->model.n_floats, hi = p->bk_lo < n ? p->bk_lo : n;
    if (p->bk_frac != 1.0f)
        for (size_t i = lo; i < hi; i++) p->grads[i] *= p->bk_frac;
    p->bk_st = cphil_dist_sum_f32_start(p->o.dist, p->grads + lo, p->bk_lo - lo, "gradient all-reduce");
    p->bk_lo = lo;
}

static cphil_status pt_train_step(void *self, const cphil_tr_batch *tb, double lr, double *loss) {
    cphil_tr_policy *p = self;
    const cphil_model_batch mb = model_batch(tb), *b = &mb;
    cphil_status s = check_shape(p, b);
    if (s) return s;
    /* ranks: this rank's part of the global frame weight (1 for one process, exactly) */
    double frac = 1.0;
    if (p->o.dist) {
        double w[2] = {weight_sum(tb), 0};
        w[1] = w[0];
        if ((s = cphil_dist_sum_f64(p->o.dist, w + 1, 1, "frame-weight sum")) != CPHIL_OK) return s;
        frac = w[1] > 0 ? w[0] / w[1] : 0.0;
    }
    const size_t n = p->model.n_floats;
    memset(p->grads, 0, (n + 1) * sizeof(float));
    if (p->carry) {
        /* a slot that starts a new replay starts from zero state (rows of every layer) */
        const cphil_model_config *c = &p->model.cfg;
        size_t per = c->backbone == CPHIL_BACKBONE_LSTM ? 2 : 1, H = (size_t)c->hidden;
        for (int slot = 0; slot < tb->B; slot++)
            if (!tb->reset || tb->reset[slot])
                for (size_t k = 0; k < (size_t)c->num_layers * per; k++)
                    memset(p->carry + (k * (size_t)tb->B + (size_t)slot) * H, 0, H * sizeof(float));
    }
    cphil_model_set_carry(p->ws, p->carry);
    const float *logits = cphil_model_forward(&p->model, p->ws, b);
    if (tb->soft) {
        float *dl = cphil_model_dlogits(p->ws);
        *loss = distill_grad(p, tb, logits, dl);
    } else {
        *loss = cphil_model_loss(&p->model, p->ws, b, &p->lc, NULL);
    }
    if (p->o.dist) {
        /* Normalize over the global batch: scale this rank's mean-loss gradient by its weight
         * share, then sum gradients and loss shares over the ranks. A non-finite local loss still
         * joins the sum (as NaN, backward skipped) so every rank sees it and stops together. */
        if (p->o.bucket_floats > 0) {
            /* buckets: each tail of the block is summed while the backward computes the rest
             * (the loss share rides in the first, with the heads). Every rank must start the same
             * sums, so a rank with a non-finite loss runs the backward too, from zero d loss /
             * d logits; its NaN share then stops every rank. */
            if (!isfinite(*loss))
                memset(cphil_model_dlogits(p->ws), 0, (size_t)b->B * (size_t)b->T * CPHIL_N_LOGITS * sizeof(float));
            p->grads[n] = isfinite(*loss) ? (float)(frac * *loss) : NAN;
            p->bk_lo = n + 1;
            p->bk_frac = (float)frac;
            p->bk_st = CPHIL_OK;
            cphil_model_set_grads_hook(p->ws, bucket_ready, p);
            cphil_model_backward(&p->model, p->ws, b, p->grads);
            cphil_model_set_grads_hook(p->ws, NULL, NULL);
            if (!p->bk_st && p->bk_lo > 0) bucket_ready(p, 0); /* the model always ends at 0; a guard */
            if (p->bk_st) return p->bk_st;
            if ((s = cphil_dist_wait_all(p->o.dist)) != CPHIL_OK) return s;
        } else {
            if (isfinite(*loss)) {
                cphil_model_backward(&p->model, p->ws, b, p->grads);
                if (frac != 1.0) {
                    float f = (float)frac;
                    for (size_t i = 0; i < n; i++) p->grads[i] *= f;
                }
                p->grads[n] = (float)(frac * *loss);
            } else {
                p->grads[n] = NAN;
            }
            if ((s = cphil_dist_sum_f32(p->o.dist, p->grads, n + 1, "gradient all-reduce")) != CPHIL_OK) return s;
        }
        *loss = p->grads[n];
        if (!isfinite(*loss)) return CPHIL_OK; /* every rank stops with the loop's message */
    } else {
        if (!isfinite(*loss)) return CPHIL_OK; /* the loop stops with a message; nothing updated */
        cphil_model_backward(&p->model, p->ws, b, p->grads);
    }
    p->opt.cfg.lr = (float)lr;
    float gn = cphil_adamw_step(&p->opt, p->model.params, p->grads);
    if (!isfinite(gn)) *loss = NAN; /* non-finite gradient: AdamW updated nothing; stop */
    return CPHIL_OK;
}

static cphil_status pt_eval(void *self, const cphil_tr_batch *tb, float *logits_out, double *loss) {
    cphil_tr_policy *p = self;
    const cphil_model_batch mb = model_batch(tb), *b = &mb;
    cphil_status s = check_shape(p, b);
    if (s) return s;
    cphil_model_set_carry(p->ws, NULL); /* validation windows start from zero state */
    const float *logits = cphil_model_forward(&p->model, p->ws, b);
    size_t n = (size_t)b->B * (size_t)b->T;
    memcpy(logits_out, logits, n * CPHIL_N_LOGITS * sizeof(float));
    if (tb->soft) *loss = distill_grad(p, tb, logits, p->dz);
    else *loss = cphil_model_loss(&p->model, p->ws, b, &p->lc, NULL);
    return CPHIL_OK;
}

static int pt_sections(void *self, cphil_tr_section *out, int cap) {
    cphil_tr_policy *p = self;
    if (cap < 4) return 0;
    size_t bytes = p->model.n_floats * sizeof(float);
    out[0] = (cphil_tr_section){"params", p->model.params, bytes, CPHIL_TR_SEC_F32_FINITE};
    out[1] = (cphil_tr_section){"adamw_m", p->opt.m, bytes, CPHIL_TR_SEC_F32_FINITE};
    out[2] = (cphil_tr_section){"adamw_v", p->opt.v, bytes, CPHIL_TR_SEC_F32_NONNEG};
    /* the step counter in the host's byte order (x86-64: little-endian 64-bit) */
    out[3] = (cphil_tr_section){"adamw_step", &p->opt.step, sizeof p->opt.step,
                                 sizeof p->opt.step == 8 ? CPHIL_TR_SEC_I64_NONNEG : CPHIL_TR_SEC_BYTES};
    if (p->carry && cap > 4) {
        float *c = p->carry_all ? p->carry_all : p->carry;
        size_t k = p->carry_all ? (size_t)p->ranks : 1;
        out[4] = (cphil_tr_section){"carry", c, k * p->carry_floats * sizeof(float), CPHIL_TR_SEC_F32_FINITE};
        return 5;
    }
    return 4;
}

/* Rank r's slots are global slots [r x B, (r + 1) x B): for every layer block k, its B x H floats
 * sit at (k x ranks x B + r x B) x H of the global layout. */
cphil_status cphil_tr_policy_rank_state(void *self, bool gather) {
    cphil_tr_policy *p = self;
    if (!p->carry_all) return CPHIL_OK; /* one process: the section is the state itself */
    const size_t H = (size_t)p->model.cfg.hidden, B = (size_t)p->o.B, R = (size_t)p->ranks;
    const size_t blocks = p->carry_floats / (B * H), slab = B * H;
    if (gather) {
        cphil_status s = cphil_dist_allgather(p->o.dist, p->carry, p->carry_floats * sizeof(float), p->carry_tmp,
                                              "carried-state gather");
        if (s) return s;
        for (size_t r = 0; r < R; r++)
            for (size_t k = 0; k < blocks; k++)
                memcpy(p->carry_all + (k * R + r) * slab, p->carry_tmp + r * p->carry_floats + k * slab,
                       slab * sizeof(float));
    } else {
        for (size_t k = 0; k < blocks; k++)
            memcpy(p->carry + k * slab, p->carry_all + (k * R + (size_t)p->rank) * slab, slab * sizeof(float));
    }
    return CPHIL_OK;
}

static cphil_status pt_save(void *self, const char *path, const char *meta_json) {
    cphil_tr_policy *p = self;
    return cphil_policy_save_meta(&p->model, path, meta_json);
}

static const char *pt_config(void *self) { return ((cphil_tr_policy *)self)->config_json; }

const cphil_tr_model_ops cphil_tr_policy_ops = {pt_train_step, pt_eval, pt_sections, pt_save, pt_config, 0};
