/* test_trainer.c — the training loop on a toy model (a linear map from random features to the
 * 81 logits, trained by SGD on the plain imitation loss): it learns; an interrupted and resumed
 * run ends with the same bits as an uninterrupted one; a NaN loss stops the run and keeps the
 * last good checkpoint; a checkpoint of another model, or a damaged one, is refused; the best
 * files and curves are written; early stopping stops. The real model runs the same loop
 * (tests/t_train_*.sh). */
#include "harness.h"
#include "train/distill_loss.h"
#include "train/trainer.h"

#include <math.h>

enum { D = 12, NF = 480, NV = 96, BT = 16 };

typedef struct toy_data {
    float x[NF + NV][D];
    uint8_t btn[NF + NV][8], cls[NF + NV][5];
    int order[NF];
    size_t pos, vpos;
    uint8_t reset[1];
} toy_data;

typedef struct toy_model {
    float w[CPHIL_N_LOGITS][D + 1];
    uint64_t step;
    int nan_at; /* return a NaN loss at this step (1-based; 0 = never) */
    char config[128];
    float z[BT * CPHIL_N_LOGITS], dz[BT * CPHIL_N_LOGITS];
} toy_model;

static uint32_t lcg(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static void toy_data_init(toy_data *d) {
    uint32_t s = 99;
    for (int i = 0; i < NF + NV; i++) {
        for (int k = 0; k < D; k++) d->x[i][k] = (float)((int)(lcg(&s) % 2001) - 1000) / 1000.0f;
        for (int k = 0; k < 8; k++) d->btn[i][k] = d->x[i][k % D] > 0.3f;
        d->cls[i][0] = d->x[i][0] > 0 ? 12 : 4;
        d->cls[i][1] = d->x[i][1] > 0 ? 16 : 8;
        d->cls[i][2] = 8;
        d->cls[i][3] = d->x[i][2] + d->x[3][3] > 0 ? 0 : 8;
        d->cls[i][4] = d->x[i][4] > 0.5f ? 4 : 0;
    }
}

static cphil_status toy_begin(void *self, uint64_t seed, int epoch, size_t *nb) {
    toy_data *d = self;
    uint32_t s = (uint32_t)(seed * 7919u + (uint64_t)epoch * 104729u + 1);
    for (int i = 0; i < NF; i++) d->order[i] = i;
    for (int i = NF - 1; i > 0; i--) {
        int j = (int)(lcg(&s) % (uint32_t)(i + 1)), t = d->order[i];
        d->order[i] = d->order[j];
        d->order[j] = t;
    }
    d->pos = 0;
    *nb = NF / BT;
    return CPHIL_OK;
}

typedef struct toy_view {
    const toy_data *d;
    int idx[BT];
} toy_view;
static toy_view view;
static uint8_t vb[BT][8], vc[BT][5];

static void fill(cphil_tr_batch *b, const toy_data *d, const int *idx) {
    view.d = d;
    for (int i = 0; i < BT; i++) {
        view.idx[i] = idx[i];
        memcpy(vb[i], d->btn[idx[i]], 8);
        memcpy(vc[i], d->cls[idx[i]], 5);
    }
    b->B = BT;
    b->T = 1;
    b->inputs = &view;
    b->btn = &vb[0][0];
    b->cls = &vc[0][0];
    b->tstride = 0;
    b->weight = NULL;
    b->reset = NULL;
    b->soft = NULL;
}

static cphil_status toy_next(void *self, cphil_tr_batch *b) {
    toy_data *d = self;
    fill(b, d, &d->order[d->pos]);
    d->pos += BT;
    return CPHIL_OK;
}
static cphil_status toy_val_begin(void *self, size_t *nb) {
    ((toy_data *)self)->vpos = NF;
    *nb = NV / BT;
    return CPHIL_OK;
}
static cphil_status toy_val_next(void *self, cphil_tr_batch *b) {
    toy_data *d = self;
    int idx[BT];
    for (int i = 0; i < BT; i++) idx[i] = (int)d->vpos + i;
    d->vpos += BT;
    fill(b, d, idx);
    return CPHIL_OK;
}

static void toy_forward(toy_model *m, const cphil_tr_batch *b, float *z) {
    const toy_view *v = b->inputs;
    for (int i = 0; i < BT; i++)
        for (int o = 0; o < CPHIL_N_LOGITS; o++) {
            float a = m->w[o][D];
            for (int k = 0; k < D; k++) a += m->w[o][k] * v->d->x[v->idx[i]][k];
            z[i * CPHIL_N_LOGITS + o] = a;
        }
}

static cphil_status toy_step(void *self, const cphil_tr_batch *b, double lr, double *loss) {
    toy_model *m = self;
    toy_forward(m, b, m->z);
    cphil_distill_terms t;
    cphil_distill_loss(m->z, m->z, b->btn, b->cls, BT, 1.0, 0.0, m->dz, &t);
    *loss = t.loss;
    m->step++;
    if (m->nan_at && m->step == (uint64_t)m->nan_at) *loss = NAN;
    const toy_view *v = b->inputs;
    for (int o = 0; o < CPHIL_N_LOGITS; o++)
        for (int i = 0; i < BT; i++) {
            float g = m->dz[i * CPHIL_N_LOGITS + o] * (float)lr * 20.0f;
            for (int k = 0; k < D; k++) m->w[o][k] -= g * v->d->x[v->idx[i]][k];
            m->w[o][D] -= g;
        }
    return CPHIL_OK;
}
static cphil_status toy_eval(void *self, const cphil_tr_batch *b, float *logits, double *loss) {
    toy_model *m = self;
    toy_forward(m, b, logits);
    cphil_distill_terms t;
    cphil_distill_loss(logits, logits, b->btn, b->cls, BT, 1.0, 0.0, NULL, &t);
    *loss = t.loss;
    return CPHIL_OK;
}
static int toy_sections(void *self, cphil_tr_section *out, int cap) {
    toy_model *m = self;
    if (cap < 2) return 0;
    out[0] = (cphil_tr_section){"params", m->w, sizeof m->w};
    out[1] = (cphil_tr_section){"step", &m->step, sizeof m->step};
    return 2;
}
static cphil_status toy_save(void *self, const char *path, const char *meta) {
    (void)meta;
    toy_model *m = self;
    return cphil_file_write_atomic(path, m->w, sizeof m->w);
}
static const char *toy_config(void *self) { return ((toy_model *)self)->config; }

static const cphil_tr_model_ops MOPS = {toy_step, toy_eval, toy_sections, toy_save, toy_config, BT};
static const cphil_tr_data_ops DOPS = {toy_begin, toy_next, toy_val_begin, toy_val_next, BT};

static toy_data data;

static void toy_model_init(toy_model *m, int width_tag) {
    memset(m, 0, sizeof *m);
    uint32_t s = 5;
    for (int o = 0; o < CPHIL_N_LOGITS; o++)
        for (int k = 0; k <= D; k++) m->w[o][k] = (float)((int)(lcg(&s) % 201) - 100) / 1000.0f;
    snprintf(m->config, sizeof m->config, "{\"backbone\":\"toy\",\"width\":%d}", width_tag);
}

static void opts_for(cphil_trainer_opts *o, const char *name) {
    cphil_trainer_opts_default(o);
    o->epochs = 4;
    o->lr = 0.05;
    o->warmup_steps = 5;
    o->seed = 3;
    o->out_dir = harness_tmpdir();
    o->name = name;
    o->meta_json = "{\"test\":true}";
    o->title = "toy";
}

TEST(trainer_learns_and_writes_files) {
    toy_data_init(&data);
    static toy_model m;
    toy_model_init(&m, 1);
    cphil_trainer_opts o;
    opts_for(&o, "toy_a");
    cphil_tr_result r;
    cphil_status s = cphil_train_run(&o, &MOPS, &m, &DOPS, &data, NULL, &r);
    CHECK_MSG(s == CPHIL_OK, "%s", cphil_last_error());
    CHECK_EQ_INT(r.epochs_done, 4);
    CHECK_EQ_INT(r.steps, 4 * NF / BT);
    CHECK(r.rows[3].train_loss < r.rows[0].train_loss * 0.9);
    CHECK(r.rows[3].val_loss < r.rows[0].val_loss);
    CHECK(r.rows[3].acc[1] > 0.9); /* main_x is a threshold of one feature */
    CHECK(r.best_epoch >= 1 && r.rows[r.best_epoch - 1].best);
    const char *kinds[] = {"policy", "ckpt", "best_policy", "best_ckpt", "csv", "svg"};
    for (int i = 0; i < 6; i++) {
        char p[1024];
        cphil_tr_path(&o, kinds[i], p, sizeof p);
        FILE *f = fopen(p, "rb");
        CHECK_MSG(f != NULL, "missing %s", p);
        fclose(f);
    }
    cphil_tr_result_free(&r);
}

static bool same_file(const char *a, const char *b) {
    uint8_t *x, *y;
    size_t nx, ny;
    if (cphil_file_read(a, 1 << 24, &x, &nx) || cphil_file_read(b, 1 << 24, &y, &ny)) return false;
    bool same = nx == ny && !memcmp(x, y, nx);
    cphil_free(x);
    cphil_free(y);
    return same;
}

TEST(interrupted_and_resumed_equals_uninterrupted) {
    toy_data_init(&data);
    static toy_model a, b, c;
    cphil_trainer_opts oa, ob;
    cphil_tr_result ra, rb, rc;
    toy_model_init(&a, 1);
    opts_for(&oa, "toy_full");
    oa.save_every = 7;
    CHECK(cphil_train_run(&oa, &MOPS, &a, &DOPS, &data, NULL, &ra) == CPHIL_OK);
    toy_model_init(&b, 1);
    opts_for(&ob, "toy_int");
    ob.save_every = 7;
    ob.stop_after_steps = NF / BT + 11; /* in the middle of epoch 2 */
    CHECK(cphil_train_run(&ob, &MOPS, &b, &DOPS, &data, NULL, &rb) == CPHIL_OK);
    CHECK(rb.interrupted && rb.steps == (uint64_t)ob.stop_after_steps && rb.epochs_done == 1);
    /* a fresh process: a new model with other initial weights, resumed from the checkpoint */
    toy_model_init(&c, 1);
    memset(c.w, 0, sizeof c.w);
    char ck[1024];
    cphil_tr_path(&ob, "ckpt", ck, sizeof ck);
    ob.stop_after_steps = 0;
    ob.resume = ck;
    CHECK_MSG(cphil_train_run(&ob, &MOPS, &c, &DOPS, &data, NULL, &rc) == CPHIL_OK, "%s", cphil_last_error());
    CHECK(!rc.interrupted && rc.epochs_done == 4 && rc.steps == ra.steps);
    CHECK(!memcmp(a.w, c.w, sizeof a.w));
    for (int e = 0; e < 4; e++) {
        CHECK(ra.rows[e].train_loss == rc.rows[e].train_loss);
        CHECK(ra.rows[e].val_loss == rc.rows[e].val_loss);
    }
    char pa[1024], pc[1024];
    cphil_tr_path(&oa, "policy", pa, sizeof pa);
    cphil_tr_path(&ob, "policy", pc, sizeof pc);
    CHECK(same_file(pa, pc));
    cphil_tr_result_free(&ra);
    cphil_tr_result_free(&rb);
    cphil_tr_result_free(&rc);
}

TEST(nan_stops_and_keeps_last_good_checkpoint) {
    toy_data_init(&data);
    static toy_model m;
    toy_model_init(&m, 1);
    m.nan_at = NF / BT + 5; /* epoch 2 */
    cphil_trainer_opts o;
    opts_for(&o, "toy_nan");
    cphil_tr_result r;
    cphil_status s = cphil_train_run(&o, &MOPS, &m, &DOPS, &data, NULL, &r);
    CHECK(s == CPHIL_E_NUMERIC);
    CHECK_MSG(strstr(cphil_last_error(), "NaN") && strstr(cphil_last_error(), "toy_nan.ckpt"), "%s",
              cphil_last_error());
    CHECK(strstr(cphil_last_error(), "epoch 2") != NULL);
    cphil_tr_result_free(&r);
    /* the checkpoint on disk is the end of epoch 1, loadable */
    char ck[1024];
    cphil_tr_path(&o, "ckpt", ck, sizeof ck);
    cphil_ckpt c;
    CHECK(cphil_ckpt_read(ck, &c) == CPHIL_OK);
    uint64_t n;
    const uint64_t *st = cphil_ckpt_find(&c, "step", &n);
    CHECK(st && *st == NF / BT);
    cphil_ckpt_close(&c);
}

TEST(resume_refuses_other_model_and_damage) {
    toy_data_init(&data);
    static toy_model m;
    toy_model_init(&m, 1);
    cphil_trainer_opts o;
    opts_for(&o, "toy_ref");
    o.epochs = 1;
    cphil_tr_result r;
    CHECK(cphil_train_run(&o, &MOPS, &m, &DOPS, &data, NULL, &r) == CPHIL_OK);
    cphil_tr_result_free(&r);
    char ck[1024];
    cphil_tr_path(&o, "ckpt", ck, sizeof ck);
    toy_model_init(&m, 2); /* another config */
    o.resume = ck;
    o.name = "toy_ref2";
    CHECK(cphil_train_run(&o, &MOPS, &m, &DOPS, &data, NULL, &r) == CPHIL_E_MISMATCH);
    CHECK_MSG(strstr(cphil_last_error(), "different model") != NULL, "%s", cphil_last_error());
    cphil_tr_result_free(&r);
    o.seed = 4;
    toy_model_init(&m, 1);
    CHECK(cphil_train_run(&o, &MOPS, &m, &DOPS, &data, NULL, &r) == CPHIL_E_MISMATCH);
    CHECK(strstr(cphil_last_error(), "--seed") != NULL);
    cphil_tr_result_free(&r);
    /* truncate the checkpoint */
    uint8_t *buf;
    size_t nb;
    CHECK(cphil_file_read(ck, 1 << 24, &buf, &nb) == CPHIL_OK);
    char bad[1024];
    snprintf(bad, sizeof bad, "%s/toy_trunc.ckpt", harness_tmpdir());
    CHECK(cphil_file_write_atomic(bad, buf, nb / 2) == CPHIL_OK);
    cphil_free(buf);
    o.seed = 3;
    o.resume = bad;
    CHECK(cphil_train_run(&o, &MOPS, &m, &DOPS, &data, NULL, &r) == CPHIL_E_TRUNCATED);
    cphil_tr_result_free(&r);
}

TEST(early_stopping_stops) {
    toy_data_init(&data);
    static toy_model m;
    toy_model_init(&m, 1);
    cphil_trainer_opts o;
    opts_for(&o, "toy_es");
    o.epochs = 10;
    o.lr = 0; /* nothing improves after the first epoch */
    o.early_stopping = true;
    o.patience = 2;
    cphil_tr_result r;
    CHECK(cphil_train_run(&o, &MOPS, &m, &DOPS, &data, NULL, &r) == CPHIL_OK);
    CHECK(r.stopped_early);
    CHECK_EQ_INT(r.epochs_done, 3);
    CHECK_EQ_INT(r.best_epoch, 1);
    cphil_tr_result_free(&r);
}

TEST(lr_schedule) {
    cphil_trainer_opts o;
    cphil_trainer_opts_default(&o);
    o.lr = 1.0;
    o.warmup_steps = 10;
    CHECK_NEAR(cphil_tr_lr_at(&o, 0, 110), 0.1, 1e-12, 0);
    CHECK_NEAR(cphil_tr_lr_at(&o, 9, 110), 1.0, 1e-12, 0);
    CHECK_NEAR(cphil_tr_lr_at(&o, 10, 110), 1.0, 1e-12, 0);
    CHECK_NEAR(cphil_tr_lr_at(&o, 60, 110), 0.5, 1e-12, 0);
    CHECK_NEAR(cphil_tr_lr_at(&o, 110, 110), 0.0, 1e-12, 0);
    o.schedule = CPHIL_TR_SCHED_CONSTANT;
    CHECK_NEAR(cphil_tr_lr_at(&o, 60, 110), 1.0, 1e-12, 0);
}

int main(void) {
    RUN(trainer_learns_and_writes_files);
    RUN(interrupted_and_resumed_equals_uninterrupted);
    RUN(nan_stops_and_keeps_last_good_checkpoint);
    RUN(resume_refuses_other_model_and_damage);
    RUN(early_stopping_stops);
    RUN(lr_schedule);
    return harness_done();
}
