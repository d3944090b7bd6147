/* test_trainer.c — the training loop on a toy model (a linear map from random features to the
 * 81 logits, trained by SGD on the plain imitation loss): it learns; an interrupted and resumed
 * run ends with the same bits as an uninterrupted one; a NaN loss stops the run and keeps the
 * last good checkpoint; a checkpoint of another model, or a damaged one, is refused; the best
 * files and curves are written; early stopping stops; a model that stages batches itself gets
 * them one ahead on the loader thread with the same bits. The real model runs the same loop
 * (tests/t_train_*.sh). */
#include "harness.h"
#include "train/distill_loss.h"
#include "train/trainer.h"

#include <limits.h>
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
    out[0] = (cphil_tr_section){"params", m->w, sizeof m->w, CPHIL_TR_SEC_F32_FINITE};
    out[1] = (cphil_tr_section){"step", &m->step, sizeof m->step, CPHIL_TR_SEC_I64_NONNEG};
    return 2;
}
static cphil_status toy_save(void *self, const char *path, const char *meta) {
    (void)meta;
    toy_model *m = self;
    return cphil_file_write_atomic(path, m->w, sizeof m->w);
}
static const char *toy_config(void *self) { return ((toy_model *)self)->config; }

static const cphil_tr_model_ops MOPS = {toy_step, toy_eval, toy_sections, toy_save, toy_config, NULL};
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

/* ---- crafted checkpoints: a valid one edited, hashes recomputed by cphil_ckpt_write ---------- */
enum { TSW_VERSION, TSW_EPOCH, TSW_BATCH, TSW_STEP, TSW_LOSS_SUM, TSW_LOSS_N, TSW_LOSS_EMA, TSW_BEST_VAL,
       TSW_BEST_EPOCH, TSW_BAD_EPOCHS, TSW_SEED, TSW_TOTAL_STEPS, TSW_EPOCH_SECONDS, TSW_N_ROWS, TSW_WORDS };
enum { ROW_BYTES = (5 + CPHIL_TR_N_HEADS + 2) * 8 };

typedef struct ck_edit {
    const char *meta;        /* replace the metadata (NULL: keep) */
    int word;                /* trainer_state word to set (-1: none) */
    uint64_t value;
    int row, row_off;        /* curves: set the 8 bytes at row*ROW_BYTES + row_off (row -1: none) */
    uint64_t row_value;
    int param;               /* params float to set (-1: none) */
    float param_value;
    bool dup_section;        /* write "params" twice */
} ck_edit;

static ck_edit ck_none(void) { return (ck_edit){NULL, -1, 0, -1, 0, 0, -1, 0, false}; }

static uint64_t d2u(double d) {
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

static void put_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Copy checkpoint src to dst with one edit; returns false when src cannot be read. */
static bool ck_rewrite(const char *src, const char *dst, const ck_edit *e) {
    cphil_ckpt c;
    if (cphil_ckpt_read(src, &c) != CPHIL_OK) return false;
    cphil_ckpt_section secs[CPHIL_CKPT_MAX_SECTIONS];
    uint8_t *copies[CPHIL_CKPT_MAX_SECTIONS];
    int n = 0;
    for (int i = 0; i < c.n; i++) {
        copies[i] = malloc(c.sec[i].size + 1);
        memcpy(copies[i], c.sec[i].data, c.sec[i].size);
        if (!strcmp(c.sec[i].name, "trainer_state") && e->word >= 0) put_le64(copies[i] + 8 * e->word, e->value);
        if (!strcmp(c.sec[i].name, "curves") && e->row >= 0)
            put_le64(copies[i] + (size_t)e->row * ROW_BYTES + (size_t)e->row_off, e->row_value);
        if (!strcmp(c.sec[i].name, "params") && e->param >= 0) memcpy(copies[i] + 4 * e->param, &e->param_value, 4);
        secs[n++] = (cphil_ckpt_section){c.sec[i].name, copies[i], c.sec[i].size};
    }
    if (e->dup_section) secs[n++] = secs[0];
    cphil_status st = cphil_ckpt_write(dst, e->meta ? e->meta : c.meta, secs, n);
    for (int i = 0; i < c.n; i++) free(copies[i]);
    cphil_ckpt_close(&c);
    return st == CPHIL_OK;
}

/* Resume from an edited copy of `good`; returns the status (the message is in cphil_last_error). */
static cphil_status resume_edited(const char *good, const ck_edit *e, const char *tag) {
    char bad[1024];
    snprintf(bad, sizeof bad, "%s/toy_edit_%s.ckpt", harness_tmpdir(), tag);
    if (!ck_rewrite(good, bad, e)) return CPHIL_E_INTERNAL;
    static toy_model m;
    toy_model_init(&m, 1);
    cphil_trainer_opts o;
    opts_for(&o, "toy_edited");
    o.resume = bad;
    cphil_tr_result r;
    cphil_status st = cphil_train_run(&o, &MOPS, &m, &DOPS, &data, NULL, &r);
    cphil_tr_result_free(&r);
    return st;
}

/* A checkpoint in the middle of epoch 3 (2 finished epochs, 2 curve rows), with validation. */
static void make_mid_ckpt(char *ck, size_t n) {
    toy_data_init(&data);
    static toy_model m;
    toy_model_init(&m, 1);
    cphil_trainer_opts o;
    opts_for(&o, "toy_mid");
    o.stop_after_steps = 2 * NF / BT + 4;
    cphil_tr_result r;
    cphil_status st = cphil_train_run(&o, &MOPS, &m, &DOPS, &data, NULL, &r);
    CHECK(st == CPHIL_OK && r.interrupted);
    cphil_tr_result_free(&r);
    cphil_tr_path(&o, "ckpt", ck, n);
}

TEST(resume_refuses_out_of_range_trainer_state) {
    char ck[1024];
    make_mid_ckpt(ck, sizeof ck);
    ck_edit e = ck_none();
    CHECK_MSG(resume_edited(ck, &e, "same") == CPHIL_OK, "the unedited copy: %s", cphil_last_error());
    /* every word of the trainer state, each with a value out of its range */
    const struct {
        int word;
        uint64_t value;
        const char *why;
    } bad[] = {
        {TSW_VERSION, 2, "version"},
        {TSW_EPOCH, (uint64_t)-1, "epoch"},                 /* C5: negative epoch */
        {TSW_EPOCH, (uint64_t)INT_MAX, "epoch"},            /* C7: INT_MAX overflows epoch + 1 */
        {TSW_EPOCH, 1, "curve rows"},                       /* 2 rows for 1 finished epoch */
        {TSW_BATCH, 1000000, "past step"},                  /* batch > step */
        {TSW_STEP, (uint64_t)1 << 63, "step"},
        {TSW_LOSS_SUM, d2u(NAN), "loss sum"},
        {TSW_LOSS_SUM, d2u(INFINITY), "loss sum"},
        {TSW_LOSS_N, 3, "losses summed"},
        {TSW_LOSS_EMA, d2u(-INFINITY), "loss average"},
        {TSW_BEST_VAL, d2u(NAN), "best value"},
        {TSW_BEST_VAL, d2u(INFINITY), "best value"},         /* inf with a best epoch set */
        {TSW_BEST_EPOCH, 3, "best epoch"},
        {TSW_BEST_EPOCH, (uint64_t)-5, "best epoch"},
        {TSW_BAD_EPOCHS, (uint64_t)-1, "without improvement"},
        {TSW_SEED, 77, "seed"},
        {TSW_TOTAL_STEPS, (uint64_t)-1, "total steps"},
        {TSW_EPOCH_SECONDS, d2u(NAN), "epoch seconds"},
        {TSW_EPOCH_SECONDS, d2u(-1.0), "epoch seconds"},
        {TSW_N_ROWS, 3, "rows"},
    };
    for (size_t i = 0; i < CPHIL_ARRAY_LEN(bad); i++) {
        e = ck_none();
        e.word = bad[i].word;
        e.value = bad[i].value;
        cphil_status st = resume_edited(ck, &e, "word");
        CHECK_MSG(st == CPHIL_E_FORMAT, "word %d = %llx: status %d", bad[i].word, (unsigned long long)bad[i].value,
                  (int)st);
        CHECK_MSG(strstr(cphil_last_error(), bad[i].why) != NULL, "word %d: '%s' not in: %s", bad[i].word, bad[i].why,
                  cphil_last_error());
    }
    /* curve rows: an epoch number out of order, inf losses, accuracy out of [0, 1], flags */
    const struct {
        int row, off;
        uint64_t value;
    } badrow[] = {
        {0, 0, (uint64_t)-7},                                     /* epoch */
        {1, 8, (uint64_t)1 << 40},                                /* step past the state's step */
        {0, 16, d2u(INFINITY)},                                   /* train loss */
        {1, 16, d2u(NAN)},
        {0, 24, d2u(-INFINITY)},                                  /* validation loss */
        {1, 32, d2u(1.5)},                                        /* accuracy */
        {0, 40, d2u(NAN)},                                        /* accuracy NaN beside a validation loss */
        {1, 32 + 8 * CPHIL_TR_N_HEADS, d2u(INFINITY)},            /* seconds */
        {0, 40 + 8 * CPHIL_TR_N_HEADS, 2},                        /* best flag */
        {1, 48 + 8 * CPHIL_TR_N_HEADS, 1},                        /* reserved */
    };
    for (size_t i = 0; i < CPHIL_ARRAY_LEN(badrow); i++) {
        e = ck_none();
        e.row = badrow[i].row;
        e.row_off = badrow[i].off;
        e.row_value = badrow[i].value;
        cphil_status st = resume_edited(ck, &e, "row");
        CHECK_MSG(st == CPHIL_E_FORMAT && strstr(cphil_last_error(), "curve row"), "row %d +%d: status %d: %s",
                  badrow[i].row, badrow[i].off, (int)st, cphil_last_error());
    }
}

TEST(resume_refuses_nonfinite_values_and_bad_metadata) {
    char ck[1024];
    make_mid_ckpt(ck, sizeof ck);
    ck_edit e = ck_none();
    e.param = 17;
    e.param_value = NAN;
    CHECK(resume_edited(ck, &e, "nan") == CPHIL_E_FORMAT);
    CHECK_MSG(strstr(cphil_last_error(), "'params' value 17") && strstr(cphil_last_error(), "not finite"), "%s",
              cphil_last_error());
    e.param_value = -INFINITY;
    CHECK(resume_edited(ck, &e, "inf") == CPHIL_E_FORMAT);
    e = ck_none();
    e.dup_section = true;
    CHECK(resume_edited(ck, &e, "dup") == CPHIL_E_FORMAT);
    CHECK_MSG(strstr(cphil_last_error(), "appears twice") != NULL, "%s", cphil_last_error());
    const char *metas[] = {
        "{\"format\":\"cphil-checkpoint\",\"model\":{\"backbone\":\"toy\",\"width\":1},\"trainer\":{\"seed\":3}",
        "{\"format\":\"cphil-checkpoint\",\"model\":{\"backbone\":\"toy\",\"width\":1},\"trainer\":{\"seed\":3},"
        "\"trainer\":{\"seed\":3}}",                                   /* duplicate key */
        "{\"format\":\"other\",\"model\":{\"backbone\":\"toy\",\"width\":1},\"trainer\":{\"seed\":3}}",
        "{\"format\":\"cphil-checkpoint\",\"model\":{\"backbone\":\"toy\",\"width\":1},\"trainer\":{\"seed\":-3}}",
        "{\"format\":\"cphil-checkpoint\",\"model\":{\"backbone\":\"toy\",\"width\":1},\"trainer\":{\"seed\":3,"
        "\"epochs\":0}}",
        "not json {\"model\":{\"backbone\":\"toy\",\"width\":1},\"seed\":3}",
    };
    for (size_t i = 0; i < CPHIL_ARRAY_LEN(metas); i++) {
        e = ck_none();
        e.meta = metas[i];
        cphil_status st = resume_edited(ck, &e, "meta");
        CHECK_MSG(st == CPHIL_E_FORMAT, "metadata %zu accepted (status %d): %s", i, (int)st, cphil_last_error());
    }
    /* the well-formed minimal metadata still loads */
    e = ck_none();
    e.meta = "{\"format\":\"cphil-checkpoint\",\"model\":{\"backbone\":\"toy\",\"width\":1},\"trainer\":{\"seed\":3}}";
    CHECK_MSG(resume_edited(ck, &e, "meta_ok") == CPHIL_OK, "%s", cphil_last_error());
}

TEST(resume_refuses_a_batch_past_the_epoch) {
    char ck[1024];
    make_mid_ckpt(ck, sizeof ck);
    /* epoch 3 at batch 1000 of its 30: step and loss count kept consistent, so only the
     * position against the data is wrong (C6: the skip loop read past the epoch's order) */
    cphil_ckpt c;
    CHECK(cphil_ckpt_read(ck, &c) == CPHIL_OK);
    uint8_t ts[TSW_WORDS * 8];
    uint64_t sz;
    memcpy(ts, cphil_ckpt_find(&c, "trainer_state", &sz), sizeof ts);
    cphil_ckpt_close(&c);
    put_le64(ts + 8 * TSW_BATCH, 1000);
    put_le64(ts + 8 * TSW_LOSS_N, 1000);
    put_le64(ts + 8 * TSW_STEP, 2000);
    char ed[1024];
    snprintf(ed, sizeof ed, "%s/toy_batch.ckpt", harness_tmpdir());
    CHECK(cphil_ckpt_read(ck, &c) == CPHIL_OK);
    cphil_ckpt_section secs[CPHIL_CKPT_MAX_SECTIONS];
    for (int i = 0; i < c.n; i++)
        secs[i] = (cphil_ckpt_section){c.sec[i].name, strcmp(c.sec[i].name, "trainer_state") ? (const void *)c.sec[i].data : ts,
                                       c.sec[i].size};
    CHECK(cphil_ckpt_write(ed, c.meta, secs, c.n) == CPHIL_OK);
    cphil_ckpt_close(&c);
    static toy_model m;
    toy_model_init(&m, 1);
    cphil_trainer_opts o;
    opts_for(&o, "toy_batch");
    o.resume = ed;
    cphil_tr_result r;
    cphil_status st = cphil_train_run(&o, &MOPS, &m, &DOPS, &data, NULL, &r);
    cphil_tr_result_free(&r);
    CHECK_MSG(st == CPHIL_E_MISMATCH && strstr(cphil_last_error(), "batch 1000 of epoch 3"), "status %d: %s", (int)st,
              cphil_last_error());
}

/* A toy that stages its batches as the GPU policy does (cphil_tr_model_ops.prepare): the loop's
 * loader thread copies batch i+1 into the slot step i does not read. The data source refills
 * one shared view per `next`, so a step that read its batch after the loader's `next` would
 * train on the wrong batch and the bits would differ from the serial loop's. */
typedef struct staged_toy {
    toy_model m;
    toy_view slot_view[2];
    uint8_t slot_btn[2][BT][8], slot_cls[2][BT][5];
    bool ready[2];
    int prep, run, fail_at, prepared;
    bool refuse; /* act as for a distillation batch: not staged */
} staged_toy;

static cphil_status staged_prepare(void *self, const cphil_tr_batch *b, bool *staged) {
    staged_toy *t = self;
    *staged = false;
    if (t->refuse) return CPHIL_OK;
    if (t->fail_at && ++t->prepared == t->fail_at) return cphil_err(CPHIL_E_FORMAT, "toy batch %d is bad", t->fail_at);
    int k = t->prep;
    t->slot_view[k] = *(const toy_view *)b->inputs;
    memcpy(t->slot_btn[k], b->btn, sizeof t->slot_btn[k]);
    memcpy(t->slot_cls[k], b->cls, sizeof t->slot_cls[k]);
    t->ready[k] = true;
    t->prep ^= 1;
    *staged = true;
    return CPHIL_OK;
}
static cphil_status staged_step(void *self, const cphil_tr_batch *b, double lr, double *loss) {
    staged_toy *t = self;
    cphil_tr_batch mine = *b;
    if (t->ready[t->run]) {
        int k = t->run;
        t->ready[k] = false;
        t->run ^= 1;
        mine.inputs = &t->slot_view[k];
        mine.btn = &t->slot_btn[k][0][0];
        mine.cls = &t->slot_cls[k][0][0];
    }
    return toy_step(&t->m, &mine, lr, loss);
}
static cphil_status staged_eval(void *self, const cphil_tr_batch *b, float *logits, double *loss) {
    return toy_eval(&((staged_toy *)self)->m, b, logits, loss);
}
static int staged_sections(void *self, cphil_tr_section *out, int cap) {
    return toy_sections(&((staged_toy *)self)->m, out, cap);
}
static cphil_status staged_save(void *self, const char *path, const char *meta) {
    return toy_save(&((staged_toy *)self)->m, path, meta);
}
static const char *staged_config(void *self) { return ((staged_toy *)self)->m.config; }
static const cphil_tr_model_ops STAGED_MOPS = {staged_step, staged_eval, staged_sections, staged_save, staged_config,
                                               staged_prepare};

TEST(prefetching_loader_gives_the_serial_bits) {
    toy_data_init(&data);
    static toy_model a;
    static staged_toy b, c, d, e;
    cphil_trainer_opts o;
    cphil_tr_result ra, rb, rc, rd, re;
    toy_model_init(&a, 1);
    opts_for(&o, "toy_serial");
    o.max_steps = 3 * NF / BT + 5; /* a stop inside an epoch: nothing is fetched past it */
    CHECK(cphil_train_run(&o, &MOPS, &a, &DOPS, &data, NULL, &ra) == CPHIL_OK);
    memset(&b, 0, sizeof b);
    toy_model_init(&b.m, 1);
    opts_for(&o, "toy_prefetch");
    o.max_steps = 3 * NF / BT + 5;
    CHECK_MSG(cphil_train_run(&o, &STAGED_MOPS, &b, &DOPS, &data, NULL, &rb) == CPHIL_OK, "%s", cphil_last_error());
    CHECK_EQ_INT(rb.steps, ra.steps);
    CHECK(!memcmp(a.w, b.m.w, sizeof a.w));
    for (int ep = 0; ep < ra.epochs_done; ep++) CHECK(ra.rows[ep].val_loss == rb.rows[ep].val_loss);
    CHECK(!b.ready[0] && !b.ready[1]); /* every staged batch was stepped */
    /* interrupted with a batch staged ahead, then resumed: still the same bits */
    memset(&c, 0, sizeof c);
    toy_model_init(&c.m, 1);
    opts_for(&o, "toy_prefetch_int");
    o.max_steps = 3 * NF / BT + 5;
    o.stop_after_steps = NF / BT + 11;
    CHECK(cphil_train_run(&o, &STAGED_MOPS, &c, &DOPS, &data, NULL, &rc) == CPHIL_OK && rc.interrupted);
    memset(&d, 0, sizeof d);
    toy_model_init(&d.m, 1);
    char ck[1024];
    cphil_tr_path(&o, "ckpt", ck, sizeof ck);
    o.stop_after_steps = 0;
    o.resume = ck;
    CHECK_MSG(cphil_train_run(&o, &STAGED_MOPS, &d, &DOPS, &data, NULL, &rd) == CPHIL_OK, "%s", cphil_last_error());
    CHECK(!memcmp(a.w, d.m.w, sizeof a.w));
    /* a model that refuses to stage (distillation batches): the serial loop, same bits */
    memset(&e, 0, sizeof e);
    toy_model_init(&e.m, 1);
    e.refuse = true;
    opts_for(&o, "toy_refuse");
    o.max_steps = 3 * NF / BT + 5;
    CHECK(cphil_train_run(&o, &STAGED_MOPS, &e, &DOPS, &data, NULL, &re) == CPHIL_OK);
    CHECK(!memcmp(a.w, e.m.w, sizeof a.w));
    cphil_tr_result_free(&ra);
    cphil_tr_result_free(&rb);
    cphil_tr_result_free(&rc);
    cphil_tr_result_free(&rd);
    cphil_tr_result_free(&re);
}

TEST(prefetching_loader_reports_a_bad_batch) {
    toy_data_init(&data);
    static staged_toy t;
    memset(&t, 0, sizeof t);
    toy_model_init(&t.m, 1);
    t.fail_at = 9; /* prepared on the loader thread, during step 8 */
    cphil_trainer_opts o;
    opts_for(&o, "toy_prefetch_bad");
    cphil_tr_result r;
    cphil_status s = cphil_train_run(&o, &STAGED_MOPS, &t, &DOPS, &data, NULL, &r);
    CHECK(s == CPHIL_E_FORMAT);
    CHECK_MSG(strstr(cphil_last_error(), "toy batch 9 is bad") != NULL, "%s", cphil_last_error());
    CHECK_EQ_INT(t.m.step, 8);
    cphil_tr_result_free(&r);
}

TEST(max_steps_stop_resumes_with_more_steps) {
    toy_data_init(&data);
    static toy_model a, b;
    cphil_trainer_opts oa, ob;
    cphil_tr_result ra, rb;
    /* constant schedule: the schedule's length does not depend on --max-steps, so a run stopped
     * by max_steps and resumed without it must equal the uninterrupted run bit for bit */
    toy_model_init(&a, 1);
    opts_for(&oa, "toy_ms_full");
    oa.schedule = CPHIL_TR_SCHED_CONSTANT;
    CHECK(cphil_train_run(&oa, &MOPS, &a, &DOPS, &data, NULL, &ra) == CPHIL_OK);
    toy_model_init(&b, 1);
    opts_for(&ob, "toy_ms");
    ob.schedule = CPHIL_TR_SCHED_CONSTANT;
    ob.max_steps = NF / BT + 9; /* in the middle of epoch 2 */
    CHECK(cphil_train_run(&ob, &MOPS, &b, &DOPS, &data, NULL, &rb) == CPHIL_OK);
    CHECK(rb.steps == (uint64_t)ob.max_steps && rb.epochs_done == 2); /* the partial epoch is reported */
    cphil_tr_result_free(&rb);
    char ck[1024];
    cphil_tr_path(&ob, "ckpt", ck, sizeof ck);
    ob.resume = ck;
    /* the same --max-steps: nothing to do, said clearly, not a silent success */
    toy_model_init(&b, 1);
    CHECK(cphil_train_run(&ob, &MOPS, &b, &DOPS, &data, NULL, &rb) == CPHIL_E_ARG);
    CHECK_MSG(strstr(cphil_last_error(), "--max-steps") != NULL, "%s", cphil_last_error());
    cphil_tr_result_free(&rb);
    /* a larger --max-steps continues */
    ob.max_steps = 2 * NF / BT + 3;
    toy_model_init(&b, 1);
    CHECK_MSG(cphil_train_run(&ob, &MOPS, &b, &DOPS, &data, NULL, &rb) == CPHIL_OK, "%s", cphil_last_error());
    CHECK(rb.steps == (uint64_t)ob.max_steps);
    cphil_tr_result_free(&rb);
    /* and without a limit it runs to the end, equal to the uninterrupted run */
    ob.max_steps = 0;
    toy_model_init(&b, 1);
    CHECK_MSG(cphil_train_run(&ob, &MOPS, &b, &DOPS, &data, NULL, &rb) == CPHIL_OK, "%s", cphil_last_error());
    CHECK(rb.steps == ra.steps && rb.epochs_done == 4);
    CHECK(!memcmp(a.w, b.w, sizeof a.w));
    CHECK(ra.rows[3].train_loss == rb.rows[3].train_loss);
    cphil_tr_result_free(&rb);
    /* a truly finished run says so */
    toy_model_init(&b, 1);
    CHECK(cphil_train_run(&ob, &MOPS, &b, &DOPS, &data, NULL, &rb) == CPHIL_E_ARG);
    CHECK_MSG(strstr(cphil_last_error(), "finished") && strstr(cphil_last_error(), "--epochs"), "%s",
              cphil_last_error());
    cphil_tr_result_free(&rb);
    cphil_tr_result_free(&ra);
}

int main(void) {
    RUN(trainer_learns_and_writes_files);
    RUN(interrupted_and_resumed_equals_uninterrupted);
    RUN(nan_stops_and_keeps_last_good_checkpoint);
    RUN(resume_refuses_other_model_and_damage);
    RUN(early_stopping_stops);
    RUN(lr_schedule);
    RUN(resume_refuses_out_of_range_trainer_state);
    RUN(resume_refuses_nonfinite_values_and_bad_metadata);
    RUN(resume_refuses_a_batch_past_the_epoch);
    RUN(max_steps_stop_resumes_with_more_steps);
    RUN(prefetching_loader_gives_the_serial_bits);
    RUN(prefetching_loader_reports_a_bad_batch);
    return harness_done();
}
