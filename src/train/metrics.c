/* metrics.c — per-head accuracy and NLL, and the two baselines (see metrics.h). The baselines
 * are expressed as logits and scored by the same function as the model, so the three columns
 * of `cphil eval` are computed identically. */
#include "train/metrics.h"

#include <math.h>
#include <string.h>

const char *const cphil_button_names[CPHIL_N_BUTTONS] = {"A", "B", "X", "Y", "Z", "L", "R", "D-up"};
const uint8_t cphil_cat_neutral[CPHIL_N_CAT] = {8, 8, 8, 8, 0};
static const uint8_t neutral_btn[CPHIL_N_BUTTONS] = {0};

void cphil_baseline_fit_init(cphil_baseline_fit *f) { memset(f, 0, sizeof *f); }

void cphil_baseline_fit_add(cphil_baseline_fit *f, const uint8_t *btn, const uint8_t *cls, size_t stride, size_t n) {
    const uint8_t *pb = neutral_btn, *pc = cphil_cat_neutral;
    for (size_t t = 0; t < n; t++) {
        const uint8_t *b = btn + t * (stride ? stride : CPHIL_N_BUTTONS), *c = cls + t * (stride ? stride : CPHIL_N_CAT);
        f->frames += 1;
        for (int k = 0; k < CPHIL_N_BUTTONS; k++) {
            f->press[k] += b[k] != 0;
            f->btn_repeat[k] += (b[k] != 0) == (pb[k] != 0);
        }
        for (int h = 0; h < CPHIL_N_CAT; h++) {
            int k = c[h] < cphil_head_classes[1 + h] ? c[h] : cphil_head_classes[1 + h] - 1;
            f->cls[h][k] += 1;
            f->cls_repeat[h] += c[h] == pc[h];
        }
        pb = b;
        pc = c;
    }
}

/* Rates are clamped to [1e-4, 1 - 1e-4] so a class never seen in training costs a finite NLL. */
static double clamp_rate(double r) { return r < 1e-4 ? 1e-4 : r > 1 - 1e-4 ? 1 - 1e-4 : r; }

void cphil_baseline_most_frequent_logits(const cphil_baseline_fit *f, float out[CPHIL_N_LOGITS]) {
    double n = f->frames;
    for (int k = 0; k < CPHIL_N_BUTTONS; k++) {
        double r = clamp_rate((f->press[k] + 1) / (n + 2));
        out[k] = (float)log(r / (1 - r));
    }
    for (int h = 0; h < CPHIL_N_CAT; h++) {
        int C = cphil_head_classes[1 + h];
        for (int k = 0; k < C; k++) out[cphil_head_offset[1 + h] + k] = (float)log((f->cls[h][k] + 1) / (n + C));
    }
}

void cphil_baseline_repeat_logits(const cphil_baseline_fit *f, const uint8_t *prev_btn, const uint8_t *prev_cls,
                                  float out[CPHIL_N_LOGITS]) {
    double n = f->frames;
    if (!prev_btn) prev_btn = neutral_btn;
    if (!prev_cls) prev_cls = cphil_cat_neutral;
    for (int k = 0; k < CPHIL_N_BUTTONS; k++) {
        double r = clamp_rate((f->btn_repeat[k] + 1) / (n + 2));
        double l = log(r / (1 - r));
        out[k] = (float)(prev_btn[k] ? l : -l);
    }
    for (int h = 0; h < CPHIL_N_CAT; h++) {
        int C = cphil_head_classes[1 + h];
        double r = clamp_rate((f->cls_repeat[h] + 1) / (n + 2));
        double lo = log((1 - r) / (C - 1)), hi = log(r);
        int pk = prev_cls[h] < C ? prev_cls[h] : C - 1;
        for (int k = 0; k < C; k++) out[cphil_head_offset[1 + h] + k] = (float)(k == pk ? hi : lo);
    }
}

/* log(1 + exp(x)) without overflow. */
static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

void cphil_head_sums_add_logits(cphil_head_sums *s, const float *z, const uint8_t *btn, const uint8_t *cls) {
    cphil_head_sums_add_logits2(s, z, z, btn, cls);
}

void cphil_head_sums_add_logits2(cphil_head_sums *s, const float *z, const float *zd, const uint8_t *btn,
                                 const uint8_t *cls) {
    s->frames += 1;
    int all = 1;
    double bnll = 0;
    for (int k = 0; k < CPHIL_N_BUTTONS; k++) {
        int y = btn[k] != 0, pred = zd[k] > 0;
        s->btn_correct[k] += pred == y;
        all &= pred == y;
        /* BCE with logits: y ? softplus(-z) : softplus(z) */
        bnll += y ? softplus(-(double)z[k]) : softplus((double)z[k]);
    }
    s->correct[0] += all;
    s->nll[0] += bnll;
    int every = all;
    for (int h = 0; h < CPHIL_N_CAT; h++) {
        const float *l = z + cphil_head_offset[1 + h], *ld = zd + cphil_head_offset[1 + h];
        int C = cphil_head_classes[1 + h], am = 0;
        double mx = l[0];
        for (int k = 1; k < C; k++) {
            if (l[k] > mx) mx = l[k];
            if (ld[k] > ld[am]) am = k;
        }
        double se = 0;
        for (int k = 0; k < C; k++) se += exp((double)l[k] - mx);
        int y = cls[h] < C ? cls[h] : C - 1;
        s->correct[1 + h] += am == y;
        every &= am == y;
        s->nll[1 + h] += mx + log(se) - (double)l[y];
    }
    s->all_correct += every;
}

void cphil_eval_acc_init(cphil_eval_acc *a) { memset(a, 0, sizeof *a); }

void cphil_eval_acc_add(cphil_eval_acc *a, const cphil_baseline_fit *fit, const float *logits,
                        const uint8_t *btn, const uint8_t *cls, size_t stride, size_t n,
                        const uint8_t *prev_btn, const uint8_t *prev_cls) {
    float mf[CPHIL_N_LOGITS], rp[CPHIL_N_LOGITS];
    cphil_baseline_most_frequent_logits(fit, mf);
    for (size_t t = 0; t < n; t++) {
        const uint8_t *b = btn + t * (stride ? stride : CPHIL_N_BUTTONS), *c = cls + t * (stride ? stride : CPHIL_N_CAT);
        if (logits) cphil_head_sums_add_logits(&a->model, logits + t * CPHIL_N_LOGITS, b, c);
        cphil_head_sums_add_logits(&a->most_frequent, mf, b, c);
        cphil_baseline_repeat_logits(fit, prev_btn, prev_cls, rp);
        cphil_head_sums_add_logits(&a->repeat_prev, rp, b, c);
        prev_btn = b;
        prev_cls = c;
    }
}

void cphil_head_sums_report(const cphil_head_sums *s, cphil_head_report *r) {
    memset(r, 0, sizeof *r);
    r->frames = s->frames;
    double n = s->frames > 0 ? s->frames : 1;
    for (int h = 0; h < CPHIL_TR_N_HEADS; h++) {
        r->acc[h] = s->correct[h] / n;
        r->nll[h] = s->nll[h] / n;
        r->nll_total += r->nll[h];
    }
    for (int k = 0; k < CPHIL_N_BUTTONS; k++) r->btn_acc[k] = s->btn_correct[k] / n;
    r->acc_all = s->all_correct / n;
}

void cphil_change_begin_replay(cphil_change_sums *c) { c->have_prev = false; }

void cphil_change_add(cphil_change_sums *c, const uint8_t state[CPHIL_TR_N_HEADS]) {
    if (c->have_prev) {
        int any = 0;
        for (int h = 0; h < CPHIL_TR_N_HEADS; h++) {
            int d = state[h] != c->prev[h];
            c->changed[h] += d;
            any |= d;
        }
        c->changed_all += any;
        c->pairs += 1;
    }
    memcpy(c->prev, state, CPHIL_TR_N_HEADS);
    c->have_prev = true;
}

void cphil_change_rates(const cphil_change_sums *c, double rate[CPHIL_TR_N_HEADS], double *rate_all) {
    double n = c->pairs > 0 ? c->pairs : 1;
    for (int h = 0; h < CPHIL_TR_N_HEADS; h++) rate[h] = c->changed[h] / n;
    *rate_all = c->changed_all / n;
}

void cphil_decide_logits(const float *z, uint8_t out[CPHIL_TR_N_HEADS]) {
    uint8_t bm = 0;
    for (int k = 0; k < CPHIL_N_BUTTONS; k++) bm |= (uint8_t)((z[k] > 0) << k);
    out[0] = bm;
    for (int h = 0; h < CPHIL_N_CAT; h++) {
        const float *l = z + cphil_head_offset[1 + h];
        int am = 0;
        for (int k = 1; k < cphil_head_classes[1 + h]; k++)
            if (l[k] > l[am]) am = k;
        out[1 + h] = (uint8_t)am;
    }
}

void cphil_target_state(const uint8_t *btn, const uint8_t *cls, uint8_t out[CPHIL_TR_N_HEADS]) {
    uint8_t bm = 0;
    for (int k = 0; k < CPHIL_N_BUTTONS; k++) bm |= (uint8_t)((btn[k] != 0) << k);
    out[0] = bm;
    for (int h = 0; h < CPHIL_N_CAT; h++) out[1 + h] = cls[h];
}
