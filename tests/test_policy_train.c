/* test_policy_train.c — the training loop with the real policy (src/model/) on a small
 * synthetic task whose targets are a known function of the inputs (one target depends on the
 * PREVIOUS frame, so temporal backbones must use their history): every backbone learns it; an
 * interrupted and resumed run of the real model ends with the same bits; the policy file reads
 * back to the same parameters; distillation batches train through the same code. */
#include "harness.h"
#include "train/distill_loss.h"
#include "train/policy_train.h"

#include <math.h>

enum { NC = 6, NI = 2, E = NC + 10 + 10, TB = 8, TT = 8, NBATCH = 24 };

typedef struct syn_data {
    uint64_t seed;
    int epoch, pos;
    float cont[TB * TT * NC];
    int32_t ids[TB * TT * NI];
    uint8_t btn[TB * TT * 8], cls[TB * TT * 5];
    float soft[TB * TT * CPHIL_N_LOGITS];
    bool distill;
} syn_data;

static uint64_t sm(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Fill batch number `k` of the stream identified by (seed, epoch) (validation: epoch -1). */
static void syn_fill(syn_data *d, uint64_t seed, int epoch, int k) {
    uint64_t s = seed * 1000003u + (uint64_t)(epoch + 7) * 7919u + (uint64_t)k * 104729u;
    memset(d->btn, 0, sizeof d->btn);
    for (int b = 0; b < TB; b++) {
        int prev0 = -1;
        for (int t = 0; t < TT; t++) {
            int i = b * TT + t;
            for (int c = 0; c < NC; c++) d->cont[i * NC + c] = (float)((int)(sm(&s) % 2001) - 1000) / 1000.0f;
            int a = (int)(sm(&s) % 10), c1 = (int)(sm(&s) % 10);
            d->ids[i * NI] = NC + a;
            d->ids[i * NI + 1] = NC + 10 + c1;
            d->btn[i * 8] = d->cont[i * NC] > 0;
            d->btn[i * 8 + 2] = d->cont[i * NC + 2] > 0.5f;
            d->cls[i * 5 + 0] = (uint8_t)a;
            d->cls[i * 5 + 1] = d->cont[i * NC + 1] < 0 ? 8 : 12;
            d->cls[i * 5 + 2] = (uint8_t)(prev0 < 0 ? 8 : prev0); /* the previous frame's id */
            d->cls[i * 5 + 3] = 8;
            d->cls[i * 5 + 4] = (uint8_t)(c1 % 5);
            prev0 = a;
        }
    }
    if (d->distill) /* a "teacher" that knows the answer: one-hot-ish soft targets */
        for (int i = 0; i < TB * TT; i++) {
            float z[CPHIL_N_LOGITS];
            for (int k2 = 0; k2 < CPHIL_N_LOGITS; k2++) z[k2] = 0;
            for (int j = 0; j < 8; j++) z[j] = d->btn[i * 8 + j] ? 4.0f : -4.0f;
            for (int h = 0; h < 5; h++) z[cphil_head_offset[1 + h] + d->cls[i * 5 + h]] = 6.0f;
            cphil_soft_probs(z, 2.0, d->soft + (size_t)i * CPHIL_N_LOGITS);
        }
}

static void syn_batch(syn_data *d, cphil_tr_batch *out) {
    memset(out, 0, sizeof *out);
    out->B = TB;
    out->T = TT;
    out->cont = d->cont;
    out->ids = d->ids;
    out->btn = d->btn;
    out->cls = d->cls;
    out->soft = d->distill ? d->soft : NULL;
}

static cphil_status s_begin(void *self, uint64_t seed, int epoch, size_t *nb) {
    syn_data *d = self;
    d->seed = seed;
    d->epoch = epoch;
    d->pos = 0;
    *nb = NBATCH;
    return CPHIL_OK;
}
static cphil_status s_next(void *self, cphil_tr_batch *out) {
    syn_data *d = self;
    syn_fill(d, d->seed, d->epoch, d->pos++);
    syn_batch(d, out);
    return CPHIL_OK;
}
static cphil_status s_vbegin(void *self, size_t *nb) {
    ((syn_data *)self)->pos = 0;
    *nb = 4;
    return CPHIL_OK;
}
static cphil_status s_vnext(void *self, cphil_tr_batch *out) {
    syn_data *d = self;
    syn_fill(d, 999, -1, d->pos++);
    syn_batch(d, out);
    return CPHIL_OK;
}
static const cphil_tr_data_ops SOPS = {s_begin, s_next, s_vbegin, s_vnext, TB * TT};

static void small_config(cphil_model_config *c, cphil_backbone b) {
    cphil_model_config_default(c, b);
    c->n_cont = NC;
    c->n_ids = NI;
    c->E = E;
    c->hidden = 32;
    c->n_mlp = 1;
    c->mlp_hidden[0] = 48;
    c->num_layers = 1;
    c->window = TT;
    c->state_size = 4;
    c->expand = 2;
    c->conv_size = 3;
    c->num_heads = 2;
    c->precision = CPHIL_PREC_F32;
}

static cphil_tr_policy *make(cphil_backbone b, uint64_t seed) {
    cphil_model_config c;
    small_config(&c, b);
    cphil_tr_policy_opts po;
    cphil_tr_policy_opts_default(&po);
    po.seed = seed;
    po.B = TB;
    po.T = TT;
    cphil_tr_policy *p = NULL;
    if (cphil_tr_policy_create(&c, &po, &p) != CPHIL_OK) return NULL;
    return p;
}

static void topts(cphil_trainer_opts *o, const char *name, int epochs) {
    cphil_trainer_opts_default(o);
    o->epochs = epochs;
    o->lr = 3e-3;
    o->warmup_steps = 10;
    o->seed = 5;
    o->out_dir = harness_tmpdir();
    o->name = name;
    o->meta_json = "{\"test\":1}";
}

/* Accuracy on the 4 validation batches of the trained model, computed here from the logits (not
 * from the trainer's report): per head (buttons: all 8 right at logit > 0; the others argmax) and
 * of the whole action (all six heads right on the frame). */
static void measure(const cphil_model *m, double acc[CPHIL_N_HEADS], double *action) {
    cphil_model_ws *ws = NULL;
    CPHIL_ASSERT(cphil_model_ws_create(m, TB, TT, &ws) == CPHIL_OK);
    static syn_data d;
    memset(&d, 0, sizeof d);
    long right[CPHIL_N_HEADS] = {0}, all = 0, n = 0;
    for (int k = 0; k < 4; k++) {
        syn_fill(&d, 999, -1, k);
        float w[TB * TT];
        for (int i = 0; i < TB * TT; i++) w[i] = 1;
        cphil_model_batch b = {TB, TT, d.cont, d.ids, d.btn, d.cls, w};
        const float *lg = cphil_model_forward(m, ws, &b);
        for (int i = 0; i < TB * TT; i++, n++) {
            const float *z = lg + (size_t)i * CPHIL_N_LOGITS;
            int ok[CPHIL_N_HEADS], every = 1;
            ok[0] = 1;
            for (int j = 0; j < 8; j++) ok[0] &= (z[j] > 0) == (d.btn[i * 8 + j] != 0);
            for (int h = 1; h < CPHIL_N_HEADS; h++) {
                const float *zh = z + cphil_head_offset[h];
                int best = 0;
                for (int c = 1; c < cphil_head_classes[h]; c++)
                    if (zh[c] > zh[best]) best = c;
                ok[h] = best == d.cls[i * 5 + h - 1];
            }
            for (int h = 0; h < CPHIL_N_HEADS; h++) {
                right[h] += ok[h];
                every &= ok[h];
            }
            all += every;
        }
    }
    for (int h = 0; h < CPHIL_N_HEADS; h++) acc[h] = (double)right[h] / (double)n;
    *action = (double)all / (double)n;
    cphil_model_ws_free(ws);
}

/* Every head of every backbone is checked against its own threshold, and the whole action: the
 * targets are exact functions of the inputs, so a model that learned the task gets them nearly
 * all right. buttons: two thresholds of continuous inputs (frames near a threshold may miss);
 * main_x, shoulder: functions of an id; main_y: a sign; c_y: a constant; c_x: the previous
 * frame's id (temporal backbones only; the MLP, which sees one frame, must stay near chance,
 * which shows the target needs history). */
TEST(every_backbone_learns_the_synthetic_task) {
    static const cphil_backbone bbs[] = {CPHIL_BACKBONE_MLP, CPHIL_BACKBONE_LSTM, CPHIL_BACKBONE_GRU,
                                         CPHIL_BACKBONE_MAMBA, CPHIL_BACKBONE_ATTENTION};
    static const double min_acc[CPHIL_N_HEADS] = {0.90, 0.97, 0.95, 0.85, 0.99, 0.95};
    for (size_t i = 0; i < CPHIL_ARRAY_LEN(bbs); i++) {
        bool temporal = bbs[i] != CPHIL_BACKBONE_MLP;
        cphil_tr_policy *p = make(bbs[i], 1);
        CHECK_MSG(p != NULL, "%s", cphil_last_error());
        static syn_data d;
        memset(&d, 0, sizeof d);
        cphil_trainer_opts o;
        char name[64];
        snprintf(name, sizeof name, "syn_%s", cphil_backbone_name(bbs[i]));
        /* the recurrent backbones learn the button thresholds slowest (LSTM buttons 0.57 after
         * 30 epochs, 0.95 after 60) */
        bool recurrent = bbs[i] == CPHIL_BACKBONE_LSTM || bbs[i] == CPHIL_BACKBONE_GRU;
        topts(&o, name, recurrent ? 60 : 30);
        o.lr = 1e-2;
        cphil_tr_result r;
        cphil_status s = cphil_train_run(&o, &cphil_tr_policy_ops, p, &SOPS, &d, NULL, &r);
        CHECK_MSG(s == CPHIL_OK, "%s: %s", name, cphil_last_error());
        const cphil_curve_row *last = &r.rows[r.epochs_done - 1];
        double acc[CPHIL_N_HEADS], action;
        measure(cphil_tr_policy_model(p), acc, &action);
        printf("  %-10s val loss %.3f -> %.3f, acc", cphil_backbone_name(bbs[i]), r.rows[0].val_loss, last->val_loss);
        for (int h = 0; h < CPHIL_N_HEADS; h++) printf(" %s %.3f", cphil_head_names[h], acc[h]);
        printf(", action %.3f\n", action);
        CHECK_MSG(last->val_loss < 0.5 * r.rows[0].val_loss, "%s did not learn", name);
        for (int h = 0; h < CPHIL_N_HEADS; h++) {
            if (h == CPHIL_HEAD_C_X && !temporal) {
                CHECK_MSG(acc[h] < 0.5, "%s: c_x (the previous frame's id) %.3f from one frame?", name, acc[h]);
                continue;
            }
            CHECK_MSG(acc[h] >= min_acc[h], "%s: head %s accuracy %.3f < %.2f", name, cphil_head_names[h], acc[h],
                      min_acc[h]);
            /* the trainer's report agrees with the accuracy measured here */
            CHECK_MSG(fabs(last->acc[h] - acc[h]) < 0.02, "%s: %s: the trainer reports %.3f, measured %.3f", name,
                      cphil_head_names[h], last->acc[h], acc[h]);
        }
        CHECK_MSG(action >= (temporal ? 0.90 : 0.0), "%s: whole-action accuracy %.3f < 0.90", name, action);
        if (!temporal) CHECK_MSG(action < 0.5, "%s: whole action %.3f without the previous frame?", name, action);
        cphil_tr_result_free(&r);
        cphil_tr_policy_free(p);
    }
}

static bool same_file(const char *a, const char *b) {
    uint8_t *x, *y;
    size_t nx, ny;
    if (cphil_file_read(a, 1 << 26, &x, &nx) || cphil_file_read(b, 1 << 26, &y, &ny)) return false;
    bool same = nx == ny && !memcmp(x, y, nx);
    cphil_free(x);
    cphil_free(y);
    return same;
}

TEST(real_model_resume_is_bit_exact) {
    static syn_data d;
    memset(&d, 0, sizeof d);
    cphil_trainer_opts oa, ob;
    cphil_tr_result ra, rb, rc;
    cphil_tr_policy *a = make(CPHIL_BACKBONE_LSTM, 2);
    topts(&oa, "res_full", 3);
    CHECK(cphil_train_run(&oa, &cphil_tr_policy_ops, a, &SOPS, &d, NULL, &ra) == CPHIL_OK);
    cphil_tr_policy *b = make(CPHIL_BACKBONE_LSTM, 2);
    topts(&ob, "res_int", 3);
    ob.stop_after_steps = NBATCH + 9;
    CHECK(cphil_train_run(&ob, &cphil_tr_policy_ops, b, &SOPS, &d, NULL, &rb) == CPHIL_OK && rb.interrupted);
    cphil_tr_policy_free(b);
    cphil_tr_policy *c = make(CPHIL_BACKBONE_LSTM, 77); /* other init: everything must come from the file */
    char ck[1024];
    cphil_tr_path(&ob, "ckpt", ck, sizeof ck);
    ob.stop_after_steps = 0;
    ob.resume = ck;
    CHECK_MSG(cphil_train_run(&ob, &cphil_tr_policy_ops, c, &SOPS, &d, NULL, &rc) == CPHIL_OK, "%s", cphil_last_error());
    cphil_model *ma = cphil_tr_policy_model(a), *mc = cphil_tr_policy_model(c);
    CHECK(!memcmp(ma->params, mc->params, ma->n_floats * sizeof(float)));
    char pa[1024], pc[1024];
    cphil_tr_path(&oa, "policy", pa, sizeof pa);
    cphil_tr_path(&ob, "policy", pc, sizeof pc);
    CHECK(same_file(pa, pc));
    for (int e = 0; e < 3; e++) CHECK(ra.rows[e].val_loss == rc.rows[e].val_loss);
    /* the policy file reads back to the same parameters */
    cphil_model back;
    CHECK_MSG(cphil_policy_load(pa, &back) == CPHIL_OK, "%s", cphil_last_error());
    CHECK(back.n_floats == ma->n_floats);
    for (int i = 0; i < back.n_tensors; i++) {
        const cphil_tensor *t = &back.tensors[i];
        CHECK(!memcmp(back.params + t->offset, ma->params + t->offset, t->numel * sizeof(float)));
    }
    cphil_model_free(&back);
    /* a checkpoint of another model is refused */
    cphil_tr_policy *g = make(CPHIL_BACKBONE_GRU, 2);
    cphil_tr_result rg;
    ob.name = "res_gru";
    CHECK(cphil_train_run(&ob, &cphil_tr_policy_ops, g, &SOPS, &d, NULL, &rg) == CPHIL_E_MISMATCH);
    cphil_tr_result_free(&rg);
    cphil_tr_policy_free(g);
    cphil_tr_result_free(&ra);
    cphil_tr_result_free(&rb);
    cphil_tr_result_free(&rc);
    cphil_tr_policy_free(a);
    cphil_tr_policy_free(c);
}

TEST(distillation_batches_train) {
    static syn_data d;
    memset(&d, 0, sizeof d);
    d.distill = true;
    cphil_tr_policy *p = make(CPHIL_BACKBONE_MLP, 3);
    cphil_trainer_opts o;
    topts(&o, "syn_distill", 4);
    cphil_tr_result r;
    CHECK_MSG(cphil_train_run(&o, &cphil_tr_policy_ops, p, &SOPS, &d, NULL, &r) == CPHIL_OK, "%s", cphil_last_error());
    CHECK(r.rows[3].val_loss < r.rows[0].val_loss);
    CHECK(r.rows[3].acc[1] > 0.9);
    cphil_tr_result_free(&r);
    cphil_tr_policy_free(p);
}

/* TBPTT: two chunks with the carried state give the logits of one pass over both. */
TEST(tbptt_carry_equals_one_long_pass) {
    static const cphil_backbone bbs[] = {CPHIL_BACKBONE_LSTM, CPHIL_BACKBONE_GRU};
    static syn_data d;
    memset(&d, 0, sizeof d);
    syn_fill(&d, 1, 0, 0); /* TB x TT frames; use them as 2 slots x 2 chunks of TT/2... */
    for (size_t i = 0; i < CPHIL_ARRAY_LEN(bbs); i++) {
        cphil_model_config c;
        small_config(&c, bbs[i]);
        c.num_layers = 2;
        cphil_model m;
        CHECK(cphil_model_init(&m, &c) == CPHIL_OK);
        cphil_model_init_params(&m, 9);
        enum { B2 = 2, T2 = TT * 2, TH = TT };
        /* slot b's long sequence = rows 2b and 2b+1 of the syn batch, concatenated */
        cphil_model_ws *wl = NULL, *wc = NULL;
        CHECK(cphil_model_ws_create(&m, B2, T2, &wl) == CPHIL_OK);
        CHECK(cphil_model_ws_create(&m, B2, TH, &wc) == CPHIL_OK);
        cphil_model_batch bl = {B2, T2, d.cont, d.ids, NULL, NULL, NULL};
        const float *zl = cphil_model_forward(&m, wl, &bl);
        size_t cf = cphil_model_carry_floats(&c, B2);
        CHECK(cf > 0);
        float *carry = cphil_calloc(cf, sizeof(float));
        cphil_model_set_carry(wc, carry);
        static float cont2[B2 * TH * NC];
        static int32_t ids2[B2 * TH * NI];
        for (int chunk = 0; chunk < 2; chunk++) {
            for (int b = 0; b < B2; b++) {
                memcpy(cont2 + (size_t)b * TH * NC, d.cont + ((size_t)b * T2 + (size_t)chunk * TH) * NC,
                       TH * NC * sizeof(float));
                memcpy(ids2 + (size_t)b * TH * NI, d.ids + ((size_t)b * T2 + (size_t)chunk * TH) * NI,
                       TH * NI * sizeof(int32_t));
            }
            cphil_model_batch bc = {B2, TH, cont2, ids2, NULL, NULL, NULL};
            const float *zc = cphil_model_forward(&m, wc, &bc);
            for (int b = 0; b < B2; b++)
                for (int t = 0; t < TH; t++)
                    for (int k = 0; k < CPHIL_N_LOGITS; k++) {
                        float want = zl[((size_t)b * T2 + (size_t)chunk * TH + t) * CPHIL_N_LOGITS + k];
                        float got = zc[((size_t)b * TH + t) * CPHIL_N_LOGITS + k];
                        CHECK_NEAR(got, want, 1e-5, 1e-4);
                    }
        }
        /* without the carry the second chunk differs (the test can fail) */
        cphil_model_set_carry(wc, NULL);
        cphil_model_batch bc = {B2, TH, cont2, ids2, NULL, NULL, NULL};
        const float *zc = cphil_model_forward(&m, wc, &bc);
        CHECK(fabsf(zc[(TH - 1) * CPHIL_N_LOGITS] - zl[(T2 - 1) * CPHIL_N_LOGITS]) > 1e-6f);
        cphil_free(carry);
        cphil_model_ws_free(wl);
        cphil_model_ws_free(wc);
        cphil_model_free(&m);
    }
}

int main(void) {
    RUN(tbptt_carry_equals_one_long_pass);
    RUN(every_backbone_learns_the_synthetic_task);
    RUN(real_model_resume_is_bit_exact);
    RUN(distillation_batches_train);
    return harness_done();
}
