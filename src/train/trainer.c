/* trainer.c — the training loop (see trainer.h).
 *
 * Checkpoint (NAME.ckpt, container of ckpt.h): metadata JSON {"format", "model" (the model's
 * config JSON), "trainer" (the options that shape the run), "meta"}; sections: the model's own
 * (parameters, AdamW moments and step, carried recurrent state), "trainer_state" (position:
 * epoch, batches done in it, step, the epoch's loss sums, best-so-far, patience counter, seed)
 * and "curves" (the rows so far). Every value is stored as 8-byte little-endian u64 or IEEE
 * double bits, so the file does not depend on struct padding.
 *
 * Exact resume: the data order depends only on (seed, epoch), so resuming re-creates the epoch's
 * order and skips the batches already done (building a batch is cheap and has no side effects
 * beyond the batcher's own walk), then restores every model section byte for byte.
 * Deliberately not here: the model maths (src/model/), batching (src/data/), printing (CLI).
 */
#include "train/trainer.h"
#include "train/prefetch.h"

#include "core/json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

volatile sig_atomic_t cphil_train_interrupt = 0;

void cphil_trainer_opts_default(cphil_trainer_opts *o) {
    memset(o, 0, sizeof *o);
    o->epochs = 10;
    o->lr = 1e-3;
    o->schedule = CPHIL_TR_SCHED_COSINE;
    o->warmup_steps = 100;
    o->seed = 1;
    o->out_dir = "checkpoints";
    o->name = "policy";
    o->patience = 5;
    o->min_delta = 0.0;
}

void cphil_tr_result_free(cphil_tr_result *r) {
    if (!r) return;
    cphil_free(r->rows);
    r->rows = NULL;
}

double cphil_tr_lr_at(const cphil_trainer_opts *o, uint64_t step, uint64_t total) {
    double lr = o->lr;
    uint64_t w = o->warmup_steps > 0 ? (uint64_t)o->warmup_steps : 0;
    if (step < w) return lr * (double)(step + 1) / (double)w;
    if (o->schedule == CPHIL_TR_SCHED_COSINE && total > w) {
        double f = (double)(step - w) / (double)(total - w);
        if (f > 1) f = 1;
        return lr * 0.5 * (1 + cos(3.14159265358979323846 * f));
    }
    return lr;
}

void cphil_tr_path(const cphil_trainer_opts *o, const char *kind, char *buf, size_t n) {
    const char *d = o->out_dir ? o->out_dir : ".", *nm = o->name ? o->name : "policy";
    if (!strcmp(kind, "policy")) snprintf(buf, n, "%s/%s_policy.safetensors", d, nm);
    else if (!strcmp(kind, "ckpt")) snprintf(buf, n, "%s/%s.ckpt", d, nm);
    else if (!strcmp(kind, "best_policy")) snprintf(buf, n, "%s/%s_best_policy.safetensors", d, nm);
    else if (!strcmp(kind, "best_ckpt")) snprintf(buf, n, "%s/%s_best.ckpt", d, nm);
    else if (!strcmp(kind, "csv")) snprintf(buf, n, "%s/%s_curves.csv", d, nm);
    else if (!strcmp(kind, "svg")) snprintf(buf, n, "%s/%s_curves.svg", d, nm);
    else snprintf(buf, n, "%s/%s_%s", d, nm, kind);
}

/* ---- the loop's own state, serialized as 8-byte words -------------------------------------- */
enum { TS_VERSION, TS_EPOCH, TS_BATCH, TS_STEP, TS_LOSS_SUM, TS_LOSS_N, TS_LOSS_EMA, TS_BEST_VAL, TS_BEST_EPOCH,
       TS_BAD_EPOCHS, TS_SEED, TS_TOTAL_STEPS, TS_EPOCH_SECONDS, TS_N_ROWS, TS_WORDS };
enum { ROW_WORDS = 5 + CPHIL_TR_N_HEADS + 2 };

typedef struct loop_state {
    int epoch;          /* current epoch, 0-based */
    uint64_t batch;     /* batches done in the current epoch */
    uint64_t step;      /* optimizer steps done */
    double loss_sum;    /* sum of this epoch's batch losses */
    uint64_t loss_n;
    double loss_ema;
    double best_val;
    int best_epoch;
    int bad_epochs;
    uint64_t total_steps;
    double epoch_seconds; /* time spent in this epoch before an interruption */
    cphil_curve_row *rows;
    int n_rows, rows_cap;
} loop_state;

static uint64_t dbits(double d) {
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}
static double bitsd(uint64_t u) {
    double d;
    memcpy(&d, &u, 8);
    return d;
}
static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static void state_encode(const loop_state *s, uint64_t seed, uint8_t *ts, uint8_t *rows) {
    uint64_t w[TS_WORDS] = {0};
    w[TS_VERSION] = 1;
    w[TS_EPOCH] = (uint64_t)s->epoch;
    w[TS_BATCH] = s->batch;
    w[TS_STEP] = s->step;
    w[TS_LOSS_SUM] = dbits(s->loss_sum);
    w[TS_LOSS_N] = s->loss_n;
    w[TS_LOSS_EMA] = dbits(s->loss_ema);
    w[TS_BEST_VAL] = dbits(s->best_val);
    w[TS_BEST_EPOCH] = (uint64_t)s->best_epoch;
    w[TS_BAD_EPOCHS] = (uint64_t)s->bad_epochs;
    w[TS_SEED] = seed;
    w[TS_TOTAL_STEPS] = s->total_steps;
    w[TS_EPOCH_SECONDS] = dbits(s->epoch_seconds);
    w[TS_N_ROWS] = (uint64_t)s->n_rows;
    for (int i = 0; i < TS_WORDS; i++) put64(ts + 8 * i, w[i]);
    for (int r = 0; r < s->n_rows; r++) {
        const cphil_curve_row *c = &s->rows[r];
        uint8_t *p = rows + (size_t)r * ROW_WORDS * 8;
        put64(p, (uint64_t)c->epoch);
        put64(p + 8, c->step);
        put64(p + 16, dbits(c->train_loss));
        put64(p + 24, dbits(c->val_loss));
        for (int h = 0; h < CPHIL_TR_N_HEADS; h++) put64(p + 32 + 8 * h, dbits(c->acc[h]));
        put64(p + 32 + 8 * CPHIL_TR_N_HEADS, dbits(c->seconds));
        put64(p + 40 + 8 * CPHIL_TR_N_HEADS, (uint64_t)c->best);
        put64(p + 48 + 8 * CPHIL_TR_N_HEADS, 0);
    }
}

/* Write NAME.ckpt (or another path) with the model's sections and the loop state. */
static cphil_status save_ckpt(const char *path, const cphil_trainer_opts *o, const cphil_tr_model_ops *mops,
                              void *model, const loop_state *s) {
    cphil_tr_section ms[CPHIL_CKPT_MAX_SECTIONS - 2];
    int nm = mops->sections(model, ms, (int)CPHIL_ARRAY_LEN(ms));
    cphil_ckpt_section cs[CPHIL_CKPT_MAX_SECTIONS];
    for (int i = 0; i < nm; i++) cs[i] = (cphil_ckpt_section){ms[i].name, ms[i].data, ms[i].size};
    uint8_t ts[TS_WORDS * 8];
    size_t rows_bytes = (size_t)s->n_rows * ROW_WORDS * 8;
    uint8_t *rows = cphil_alloc(rows_bytes ? rows_bytes : 1);
    if (!rows) return cphil_err(CPHIL_E_NOMEM, "%s: out of memory", path);
    state_encode(s, o->seed, ts, rows);
    cs[nm] = (cphil_ckpt_section){"trainer_state", ts, sizeof ts};
    cs[nm + 1] = (cphil_ckpt_section){"curves", rows, rows_bytes};
    const char *mc = mops->config_json(model);
    size_t ml = strlen(mc) + (o->meta_json ? strlen(o->meta_json) : 2) + 512;
    char *meta = cphil_alloc(ml);
    if (!meta) {
        cphil_free(rows);
        return cphil_err(CPHIL_E_NOMEM, "%s: out of memory", path);
    }
    snprintf(meta, ml,
             "{\"format\":\"cphil-checkpoint\",\"model\":%s,\"trainer\":{\"epochs\":%d,\"lr\":%.17g,"
             "\"schedule\":\"%s\",\"warmup_steps\":%lld,\"max_steps\":%lld,\"seed\":%llu,\"ranks\":%d,"
             "\"global_batch\":%lld},\"meta\":%s}",
             mc, o->epochs, o->lr, o->schedule == CPHIL_TR_SCHED_COSINE ? "cosine" : "constant", o->warmup_steps,
             o->max_steps, (unsigned long long)o->seed, cphil_dist_size(o->dist), o->global_batch,
             o->meta_json ? o->meta_json : "{}");
    cphil_status st = cphil_ckpt_write(path, meta, cs, nm + 2);
    cphil_free(meta);
    cphil_free(rows);
    return st;
}

/* Why a loaded value is refused: every field of the trainer state is range-checked before
 * anything is copied into the model or the loop, so a crafted checkpoint can neither steer the
 * loop past its arrays nor feed NaN into the maths. */
#define BAD_STATE(...)                                                                          \
    do {                                                                                        \
        char why_[256];                                                                         \
        snprintf(why_, sizeof why_, __VA_ARGS__);                                               \
        st = cphil_err(CPHIL_E_FORMAT, "%s: bad trainer state: %s (a damaged or hand-edited checkpoint; " \
                       "resume from another copy or start a new run)", path, why_);             \
        goto out;                                                                               \
    } while (0)

/* Check a model section's values (see CPHIL_TR_SEC_*); the first bad value is named. */
static cphil_status check_section(const char *path, const char *name, const void *data, uint64_t size, int kind) {
    const uint8_t *b = data;
    if (kind == CPHIL_TR_SEC_F32_FINITE || kind == CPHIL_TR_SEC_F32_NONNEG) {
        if (size % 4)
            return cphil_err(CPHIL_E_FORMAT, "%s: section '%s' holds %llu bytes, not whole f32 values", path, name,
                             (unsigned long long)size);
        for (uint64_t i = 0; i < size / 4; i++) {
            float v;
            memcpy(&v, b + 4 * i, 4);
            if (!isfinite(v) || (kind == CPHIL_TR_SEC_F32_NONNEG && v < 0))
                return cphil_err(CPHIL_E_FORMAT,
                                 "%s: section '%s' value %llu is %g (%s): refusing to train from it (a damaged "
                                 "checkpoint, or one saved after the run diverged; use NAME_best.ckpt or an earlier copy)",
                                 path, name, (unsigned long long)i, (double)v,
                                 isfinite(v) ? "negative where only >= 0 is possible" : "not finite");
        }
    } else if (kind == CPHIL_TR_SEC_I64_NONNEG) {
        int64_t v;
        if (size != 8) return cphil_err(CPHIL_E_FORMAT, "%s: section '%s' is not one 8-byte integer", path, name);
        memcpy(&v, b, 8);
        if (v < 0) return cphil_err(CPHIL_E_FORMAT, "%s: section '%s' is %lld, must be >= 0", path, name, (long long)v);
    }
    return CPHIL_OK;
}

/* Load NAME.ckpt into the model and the loop state; refuse a checkpoint of another model, one
 * whose metadata is not the JSON this file writes, and any trainer-state field out of range.
 * *meta_epochs / *meta_max_steps: the run options the checkpoint was written with. */
static cphil_status load_ckpt(const char *path, const cphil_trainer_opts *o, const cphil_tr_model_ops *mops,
                              void *model, loop_state *s, int64_t *meta_epochs, int64_t *meta_max_steps,
                              int64_t *meta_ranks, int64_t *meta_global_batch) {
    cphil_ckpt c;
    cphil_json_doc *doc = NULL;
    cphil_status st = cphil_ckpt_read(path, &c);
    if (st) return st;
    const char *mc = mops->config_json(model);
    size_t mcl = strlen(mc);
    if ((st = cphil_json_parse(c.meta, strlen(c.meta), &doc)) != CPHIL_OK) {
        st = cphil_err(CPHIL_E_FORMAT, "%s: the checkpoint's metadata is not valid JSON: %s", path, cphil_last_error());
        goto out;
    }
    const cphil_json_value *root = cphil_json_root(doc);
    const cphil_json_value *fmt = cphil_json_get(root, "format"), *m = cphil_json_get(root, "model"),
                           *tr = cphil_json_get(root, "trainer");
    const char *fs = cphil_json_as_string(fmt);
    if (!fs || strcmp(fs, "cphil-checkpoint") != 0 || !tr || tr->type != CPHIL_JSON_OBJECT) {
        st = cphil_err(CPHIL_E_FORMAT, "%s: the metadata is not a cphil training checkpoint's (needs \"format\": "
                                       "\"cphil-checkpoint\" and a \"trainer\" object)", path);
        goto out;
    }
    /* The model config is stored verbatim: compare its text, then make sure it is the whole value. */
    if (!m || m->type != CPHIL_JSON_OBJECT || strlen(c.meta + m->offset) < mcl ||
        strncmp(c.meta + m->offset, mc, mcl) != 0 || (c.meta[m->offset + mcl] != ',' && c.meta[m->offset + mcl] != '}')) {
        st = cphil_err(CPHIL_E_MISMATCH,
                       "%s: checkpoint of a different model: it holds %.300s; this run builds %.300s "
                       "(resume with the same model flags, or start a new run)",
                       path, m ? c.meta + m->offset : "(no model config)", mc);
        goto out;
    }
    int64_t seed_meta = 0;
    const cphil_json_value *sd = cphil_json_get(tr, "seed");
    if (!cphil_json_as_int64(sd, &seed_meta) || seed_meta < 0) {
        st = cphil_err(CPHIL_E_FORMAT, "%s: the metadata's trainer.seed is missing or not a non-negative integer", path);
        goto out;
    }
    if ((uint64_t)seed_meta != o->seed) {
        st = cphil_err(CPHIL_E_MISMATCH, "%s: checkpoint made with --seed %llu, this run has --seed %llu", path,
                       (unsigned long long)seed_meta, (unsigned long long)o->seed);
        goto out;
    }
    *meta_epochs = -1;
    *meta_max_steps = 0;
    const cphil_json_value *ep = cphil_json_get(tr, "epochs"), *mx = cphil_json_get(tr, "max_steps");
    if (ep && (!cphil_json_as_int64(ep, meta_epochs) || *meta_epochs < 1 || *meta_epochs > CPHIL_TR_MAX_EPOCHS)) {
        st = cphil_err(CPHIL_E_FORMAT, "%s: the metadata's trainer.epochs is not an integer in [1, %d]", path,
                       CPHIL_TR_MAX_EPOCHS);
        goto out;
    }
    if (mx && (!cphil_json_as_int64(mx, meta_max_steps) || *meta_max_steps < 0)) {
        st = cphil_err(CPHIL_E_FORMAT, "%s: the metadata's trainer.max_steps is not a non-negative integer", path);
        goto out;
    }
    /* written since data-parallel ranks exist; older checkpoints are one process, batch unknown */
    *meta_ranks = 1;
    *meta_global_batch = 0;
    const cphil_json_value *rk = cphil_json_get(tr, "ranks"), *gb = cphil_json_get(tr, "global_batch");
    if (rk && (!cphil_json_as_int64(rk, meta_ranks) || *meta_ranks < 1 || *meta_ranks > (1 << 20))) {
        st = cphil_err(CPHIL_E_FORMAT, "%s: the metadata's trainer.ranks is not an integer in [1, %d]", path, 1 << 20);
        goto out;
    }
    if (gb && (!cphil_json_as_int64(gb, meta_global_batch) || *meta_global_batch < 0 ||
               *meta_global_batch > ((int64_t)1 << 40))) {
        st = cphil_err(CPHIL_E_FORMAT, "%s: the metadata's trainer.global_batch is not a non-negative integer", path);
        goto out;
    }
    cphil_tr_section ms[CPHIL_CKPT_MAX_SECTIONS - 2];
    int nm = mops->sections(model, ms, (int)CPHIL_ARRAY_LEN(ms));
    for (int i = 0; i < nm; i++) {
        const void *d;
        if ((st = cphil_ckpt_get(&c, path, ms[i].name, ms[i].size, &d)) != CPHIL_OK) {
            /* TBPTT's carried state has one row per slot of the global batch; the streams are
             * packed over that many slots, so another global batch cannot continue them */
            if (!strcmp(ms[i].name, "carry") && *meta_global_batch > 0 && o->global_batch > 0 &&
                *meta_global_batch != o->global_batch)
                st = cphil_err(CPHIL_E_MISMATCH,
                               "%s: TBPTT checkpoint of %lld stream slots per step (%lld rank%s); this run has %lld "
                               "(ranks x --batch-size): the carried state of each stream belongs to its slot, so "
                               "resume with %lld slots in all (any rank count that divides it), or start a new run",
                               path, (long long)*meta_global_batch, (long long)*meta_ranks,
                               *meta_ranks == 1 ? "" : "s", o->global_batch, (long long)*meta_global_batch);
            goto out;
        }
        if ((st = check_section(path, ms[i].name, d, ms[i].size, ms[i].check)) != CPHIL_OK) goto out;
    }
    const void *tsv, *rowsv;
    uint64_t rows_size = 0;
    if ((st = cphil_ckpt_get(&c, path, "trainer_state", TS_WORDS * 8, &tsv)) != CPHIL_OK) goto out;
    const uint8_t *ts = tsv;
    uint64_t w[TS_WORDS];
    for (int i = 0; i < TS_WORDS; i++) w[i] = get64(ts + 8 * i);
    if (w[TS_VERSION] != 1) BAD_STATE("version %llu (this cphil writes 1)", (unsigned long long)w[TS_VERSION]);
    /* Bounds: epochs and rows as the loop can make them; step counts far below 2^62 so no sum
     * of them overflows; doubles finite except the documented NaN/inf markers. */
    const uint64_t MAX_STEPS = (uint64_t)1 << 62;
    uint64_t epoch = w[TS_EPOCH], batch = w[TS_BATCH], step = w[TS_STEP], nrows = w[TS_N_ROWS];
    double loss_sum = bitsd(w[TS_LOSS_SUM]), loss_ema = bitsd(w[TS_LOSS_EMA]), best_val = bitsd(w[TS_BEST_VAL]),
           ep_sec = bitsd(w[TS_EPOCH_SECONDS]);
    if (epoch > CPHIL_TR_MAX_EPOCHS) BAD_STATE("epoch %lld (0 to %d)", (long long)epoch, CPHIL_TR_MAX_EPOCHS);
    if (nrows > epoch) BAD_STATE("%llu curve rows for %llu finished epochs", (unsigned long long)nrows, (unsigned long long)epoch);
    if (step >= MAX_STEPS) BAD_STATE("step %llu", (unsigned long long)step);
    if (batch > step) BAD_STATE("batch %llu of the epoch is past step %llu", (unsigned long long)batch, (unsigned long long)step);
    if (w[TS_LOSS_N] != batch)
        BAD_STATE("%llu losses summed for %llu batches", (unsigned long long)w[TS_LOSS_N], (unsigned long long)batch);
    if (!isfinite(loss_sum) || (batch == 0 && loss_sum != 0)) BAD_STATE("epoch loss sum %g", loss_sum);
    if (!isfinite(loss_ema)) BAD_STATE("loss average %g", loss_ema);
    if (w[TS_BEST_EPOCH] > nrows)
        BAD_STATE("best epoch %lld of %llu", (long long)w[TS_BEST_EPOCH], (unsigned long long)nrows);
    /* +inf is "no best yet" (the start value); otherwise a finite loss of a finished epoch */
    if (w[TS_BEST_EPOCH] == 0 ? !(isinf(best_val) && best_val > 0) : !isfinite(best_val))
        BAD_STATE("best value %g with best epoch %llu", best_val, (unsigned long long)w[TS_BEST_EPOCH]);
    if (w[TS_BAD_EPOCHS] > nrows)
        BAD_STATE("%lld epochs without improvement of %llu", (long long)w[TS_BAD_EPOCHS], (unsigned long long)nrows);
    if (w[TS_SEED] != o->seed)
        BAD_STATE("seed %llu, the metadata says %llu", (unsigned long long)w[TS_SEED], (unsigned long long)o->seed);
    if (w[TS_TOTAL_STEPS] >= MAX_STEPS) BAD_STATE("total steps %llu", (unsigned long long)w[TS_TOTAL_STEPS]);
    if (!isfinite(ep_sec) || ep_sec < 0 || ep_sec > 1e12) BAD_STATE("epoch seconds %g", ep_sec);
    rowsv = cphil_ckpt_find(&c, "curves", &rows_size);
    if (!rowsv || rows_size != nrows * ROW_WORDS * 8) {
        st = cphil_err(CPHIL_E_FORMAT, "%s: the curves section does not hold %llu rows", path,
                       (unsigned long long)nrows);
        goto out;
    }
    for (uint64_t r = 0; r < nrows; r++) {
        const uint8_t *p = (const uint8_t *)rowsv + r * ROW_WORDS * 8;
        uint64_t rep = get64(p), rstep = get64(p + 8), rbest = get64(p + 40 + 8 * CPHIL_TR_N_HEADS);
        double tl = bitsd(get64(p + 16)), vl = bitsd(get64(p + 24)), sec = bitsd(get64(p + 32 + 8 * CPHIL_TR_N_HEADS));
        if (rep != r + 1) BAD_STATE("curve row %llu is for epoch %lld", (unsigned long long)r + 1, (long long)rep);
        if (rstep > step) BAD_STATE("curve row %llu at step %llu, past step %llu", (unsigned long long)r + 1,
                                    (unsigned long long)rstep, (unsigned long long)step);
        if (!isfinite(tl)) BAD_STATE("curve row %llu: train loss %g", (unsigned long long)r + 1, tl);
        /* NaN validation loss and accuracies mean "no validation set"; infinities never occur */
        if (isinf(vl)) BAD_STATE("curve row %llu: validation loss %g", (unsigned long long)r + 1, vl);
        for (int h = 0; h < CPHIL_TR_N_HEADS; h++) {
            double a = bitsd(get64(p + 32 + 8 * h));
            if (isnan(vl) ? !isnan(a) : !(a >= 0 && a <= 1))
                BAD_STATE("curve row %llu: accuracy %g (validation loss %g)", (unsigned long long)r + 1, a, vl);
        }
        if (!isfinite(sec) || sec < 0) BAD_STATE("curve row %llu: %g seconds", (unsigned long long)r + 1, sec);
        if (rbest > 1) BAD_STATE("curve row %llu: best flag %llu", (unsigned long long)r + 1, (unsigned long long)rbest);
        if (get64(p + 48 + 8 * CPHIL_TR_N_HEADS) != 0) BAD_STATE("curve row %llu: reserved word set", (unsigned long long)r + 1);
    }
    /* Everything checked: copy in. */
    for (int i = 0; i < nm; i++) {
        const void *d;
        cphil_ckpt_get(&c, path, ms[i].name, ms[i].size, &d);
        if (ms[i].size) memcpy(ms[i].data, d, ms[i].size);
    }
    s->epoch = (int)epoch;
    s->batch = batch;
    s->step = step;
    s->loss_sum = loss_sum;
    s->loss_n = w[TS_LOSS_N];
    s->loss_ema = loss_ema;
    s->best_val = best_val;
    s->best_epoch = (int)w[TS_BEST_EPOCH];
    s->bad_epochs = (int)w[TS_BAD_EPOCHS];
    s->total_steps = w[TS_TOTAL_STEPS];
    s->epoch_seconds = ep_sec;
    s->n_rows = (int)nrows;
    cphil_free(s->rows);
    /* room for the rows so far and one per epoch still to run */
    s->rows_cap = (int)nrows + (o->epochs > (int)epoch ? o->epochs - (int)epoch : 0) + 1;
    s->rows = cphil_calloc((size_t)s->rows_cap, sizeof(cphil_curve_row));
    if (!s->rows) {
        s->rows_cap = 0;
        st = cphil_err(CPHIL_E_NOMEM, "out of memory");
        goto out;
    }
    for (uint64_t r = 0; r < nrows; r++) {
        const uint8_t *p = (const uint8_t *)rowsv + r * ROW_WORDS * 8;
        cphil_curve_row *cr = &s->rows[r];
        cr->epoch = (int)get64(p);
        cr->step = get64(p + 8);
        cr->train_loss = bitsd(get64(p + 16));
        cr->val_loss = bitsd(get64(p + 24));
        for (int h = 0; h < CPHIL_TR_N_HEADS; h++) cr->acc[h] = bitsd(get64(p + 32 + 8 * h));
        cr->seconds = bitsd(get64(p + 32 + 8 * CPHIL_TR_N_HEADS));
        cr->best = (int)get64(p + 40 + 8 * CPHIL_TR_N_HEADS);
    }
out:
    cphil_json_free(doc);
    cphil_ckpt_close(&c);
    return st;
}
#undef BAD_STATE

static void note(const cphil_tr_callbacks *cb, const char *fmt, ...) CPHIL_PRINTF(2, 3);
static void note(const cphil_tr_callbacks *cb, const char *fmt, ...) {
    if (!cb || !cb->on_note) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    cb->on_note(cb->user, buf);
}

/* FNV-1a over every model section but the carried recurrent state (each rank's own slots): equal
 * on every rank while the ranks train one model. */
static uint64_t state_hash(const cphil_tr_model_ops *mops, void *model) {
    cphil_tr_section ms[CPHIL_CKPT_MAX_SECTIONS - 2];
    int nm = mops->sections(model, ms, (int)CPHIL_ARRAY_LEN(ms));
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < nm; i++) {
        if (!strcmp(ms[i].name, "carry")) continue;
        const uint8_t *p = ms[i].data;
        for (size_t k = 0; k < ms[i].size; k++) h = (h ^ p[k]) * 0x100000001b3ull;
    }
    return h;
}

#define count_frames cphil_tr_batch_frames

/* Validation pass: loss (frame-weighted mean of batch losses) and per-head metrics. */
static cphil_status validate(const cphil_tr_model_ops *mops, void *model, const cphil_tr_data_ops *dops, void *data,
                             float **logits_buf, size_t *logits_cap, double *val_loss, cphil_head_report *rep,
                             bool *has_val) {
    *has_val = false;
    size_t nb = 0;
    cphil_status st = dops->val_begin(data, &nb);
    if (st) return st;
    if (nb == 0) return CPHIL_OK;
    cphil_head_sums sums = {0};
    double lsum = 0, fsum = 0;
    for (size_t i = 0; i < nb; i++) {
        cphil_tr_batch b;
        if ((st = dops->val_next(data, &b)) != CPHIL_OK) return st;
        double loss = 0;
        size_t n = (size_t)b.B * (size_t)b.T, nf = count_frames(&b);
        if (n > *logits_cap) {
            cphil_free(*logits_buf);
            *logits_buf = cphil_alloc(n * CPHIL_N_LOGITS * sizeof(float));
            *logits_cap = *logits_buf ? n : 0;
            if (!*logits_buf) return cphil_err(CPHIL_E_NOMEM, "out of memory for validation logits");
        }
        float *logits = *logits_buf;
        if ((st = mops->eval_batch(model, &b, logits, &loss)) != CPHIL_OK) return st;
        lsum += loss * (double)nf;
        fsum += (double)nf;
        size_t ts = b.tstride;
        for (size_t k = 0; k < n; k++) {
            if (b.weight && !(b.weight[k] > 0)) continue;
            cphil_head_sums_add_logits(&sums, logits + k * CPHIL_N_LOGITS, b.btn + k * (ts ? ts : CPHIL_N_BUTTONS),
                                       b.cls + k * (ts ? ts : CPHIL_N_CAT));
        }
    }
    *val_loss = fsum > 0 ? lsum / fsum : NAN;
    cphil_head_sums_report(&sums, rep);
    *has_val = fsum > 0;
    return CPHIL_OK;
}

cphil_status cphil_train_run(const cphil_trainer_opts *o, const cphil_tr_model_ops *mops, void *model,
                             const cphil_tr_data_ops *dops, void *data, const cphil_tr_callbacks *cb,
                             cphil_tr_result *res) {
    memset(res, 0, sizeof *res);
    double t_start = cphil_now_sec();
    loop_state s = {0};
    cphil_prefetch *pf = NULL; /* the loader thread, when the model stages batches itself */
    s.best_val = INFINITY;
    if (o->epochs < 1 || o->epochs > CPHIL_TR_MAX_EPOCHS)
        return cphil_err(CPHIL_E_ARG, "epochs must be 1 to %d, not %d", CPHIL_TR_MAX_EPOCHS, o->epochs);
    s.rows_cap = o->epochs + 1;
    s.rows = cphil_calloc((size_t)s.rows_cap, sizeof(cphil_curve_row));
    float *logits = NULL; /* validation logits, sized by the first validation batch */
    size_t logits_cap = 0;
    cphil_status st = CPHIL_OK;
    char p_ckpt[1024], p_pol[1024], p_bckpt[1024], p_bpol[1024], p_csv[1024], p_svg[1024];
    cphil_tr_path(o, "ckpt", p_ckpt, sizeof p_ckpt);
    cphil_tr_path(o, "policy", p_pol, sizeof p_pol);
    cphil_tr_path(o, "best_ckpt", p_bckpt, sizeof p_bckpt);
    cphil_tr_path(o, "best_policy", p_bpol, sizeof p_bpol);
    cphil_tr_path(o, "csv", p_csv, sizeof p_csv);
    cphil_tr_path(o, "svg", p_svg, sizeof p_svg);
    if (!s.rows) {
        st = cphil_err(CPHIL_E_NOMEM, "out of memory for the training loop");
        goto done;
    }
    if ((st = cphil_mkdir_p(o->out_dir ? o->out_dir : ".")) != CPHIL_OK) goto done;
    if (o->resume) {
        int64_t meta_epochs = -1, meta_max_steps = 0, meta_ranks = 1, meta_gb = 0;
        if ((st = load_ckpt(o->resume, o, mops, model, &s, &meta_epochs, &meta_max_steps, &meta_ranks, &meta_gb)) !=
            CPHIL_OK)
            goto done;
        if (o->rank_state && (st = o->rank_state(model, false)) != CPHIL_OK) goto done;
        /* Nothing to do is an error, not a silent success: the user asked for training. */
        if (s.epoch >= o->epochs) {
            st = cphil_err(CPHIL_E_ARG,
                           "%s: this run is finished (%s after %d epoch%s, step %llu); nothing to train. Raise "
                           "--epochs above %d to train further, or start a new run without --resume",
                           o->resume, s.n_rows < s.epoch ? "stopped early" : "all epochs done", s.n_rows,
                           s.n_rows == 1 ? "" : "s", (unsigned long long)s.step, s.epoch > s.n_rows ? s.n_rows : s.epoch);
            goto done;
        }
        if (o->max_steps > 0 && s.step >= (uint64_t)o->max_steps) {
            st = cphil_err(CPHIL_E_ARG,
                           "%s: the checkpoint is at step %llu and --max-steps is %lld: nothing to train "
                           "(raise --max-steps, or drop it to run all %d epochs)",
                           o->resume, (unsigned long long)s.step, o->max_steps, o->epochs);
            goto done;
        }
        /* Other --epochs or --max-steps than the run that wrote it: the schedule's length is laid
         * out again (at the next epoch start) over the new total. */
        if ((meta_epochs > 0 && meta_epochs != o->epochs) || meta_max_steps != o->max_steps) s.total_steps = 0;
        /* Another number of ranks (or batch slots per step): the position inside the epoch is
         * counted in the old global batches; carry it over as windows done, rounding down to a
         * whole new batch, and lay the schedule out again. */
        int ranks = cphil_dist_size(o->dist);
        if (meta_gb > 0 && o->global_batch > 0 && meta_gb != o->global_batch) {
            uint64_t windows = s.batch * (uint64_t)meta_gb, nb = windows / (uint64_t)o->global_batch;
            double mean = s.loss_n ? s.loss_sum / (double)s.loss_n : 0;
            note(cb, "%s was written by %lld rank%s with %lld batch slots per step; this run has %d rank%s with %lld: "
                     "the epoch's %llu windows done continue as batch %llu%s; the learning-rate schedule is laid out "
                     "again",
                 o->resume, (long long)meta_ranks, meta_ranks == 1 ? "" : "s", (long long)meta_gb, ranks,
                 ranks == 1 ? "" : "s", o->global_batch, (unsigned long long)windows, (unsigned long long)nb,
                 windows % (uint64_t)o->global_batch ? " (the windows of a partial batch are seen again)" : "");
            s.batch = nb;
            s.loss_n = nb;
            s.loss_sum = mean * (double)nb;
            s.total_steps = 0;
        } else if (meta_ranks != ranks) {
            note(cb, "%s was written by %lld rank%s; this run has %d rank%s (same %lld batch slots per step)", o->resume,
                 (long long)meta_ranks, meta_ranks == 1 ? "" : "s", ranks, ranks == 1 ? "" : "s", o->global_batch);
        }
        note(cb, "resumed from %s at epoch %d, batch %llu, step %llu", o->resume, s.epoch + 1,
             (unsigned long long)s.batch, (unsigned long long)s.step);
    }
    bool stop = false;
    /* data-parallel ranks: rank 0 alone writes; every rank runs the same steps */
    const bool root = cphil_dist_rank(o->dist) == 0, multi = cphil_dist_size(o->dist) > 1;
    /* A model that stages batches itself (the GPU policy): build and stage batch i+1 on the
     * loader thread while step i runs (prefetch.h); without a loader, one after the other. */
    const char *pf_env = getenv("CPHIL_PREFETCH");
    if (mops->prepare && !(pf_env && !strcmp(pf_env, "0")) && cphil_prefetch_open(dops, data, mops, model, &pf))
        pf = NULL; /* no thread: the serial loop computes the same steps */
    bool prefetching = pf != NULL, have_ahead = false;
    cphil_tr_batch ahead;
    size_t frames_ahead = 0;
    for (; s.epoch < o->epochs && !stop; s.epoch++) {
        size_t nb = 0;
        if ((st = dops->begin_epoch(data, o->seed, s.epoch, &nb)) != CPHIL_OK) goto done;
        if (nb == 0) {
            st = cphil_err(CPHIL_E_ARG, "no training batches: the training set is smaller than one batch "
                                        "(lower --batch-size or --window-size, or add replays)");
            goto done;
        }
        if (s.batch > nb) {
            st = cphil_err(CPHIL_E_MISMATCH,
                           "%s: the checkpoint is at batch %llu of epoch %d, but this epoch has %zu batches: the "
                           "data or batch shape differ from the run that wrote it (resume with the same data, "
                           "--batch-size and --window-size)",
                           o->resume ? o->resume : p_ckpt, (unsigned long long)s.batch, s.epoch + 1, nb);
            goto done;
        }
        if (s.total_steps == 0) {
            s.total_steps = (uint64_t)nb * (uint64_t)o->epochs;
            if (o->max_steps > 0 && (uint64_t)o->max_steps < s.total_steps) s.total_steps = (uint64_t)o->max_steps;
        }
        /* Resume inside an epoch: rebuild the walk up to the saved position. */
        for (uint64_t k = 0; k < s.batch; k++) {
            cphil_tr_batch b;
            if ((st = dops->next(data, &b)) != CPHIL_OK) goto done;
        }
        double t_ep = cphil_now_sec() - s.epoch_seconds, t_rate = cphil_now_sec();
        uint64_t frames_since = 0; /* frames with weight > 0 trained in this process's part of the epoch */
        while (s.batch < nb) {
            if (o->max_steps > 0 && s.step >= (uint64_t)o->max_steps) {
                stop = true;
                break;
            }
            cphil_tr_batch b;
            size_t frames_b;
            if (have_ahead) { /* fetched (and staged) by the loader during the previous step */
                b = ahead;
                frames_b = frames_ahead;
                have_ahead = false;
            } else {
                if ((st = dops->next(data, &b)) != CPHIL_OK) goto done;
                frames_b = count_frames(&b);
                bool staged = false;
                if (prefetching && (st = mops->prepare(model, &b, &staged)) != CPHIL_OK) goto done;
                if (!staged) prefetching = false;
            }
            double lr = cphil_tr_lr_at(o, s.step, s.total_steps), loss = 0;
            /* the next batch of this epoch, unless the run stops before it */
            bool fetch_ahead = prefetching && s.batch + 1 < nb &&
                               !(o->max_steps > 0 && s.step + 1 >= (uint64_t)o->max_steps);
            if (fetch_ahead) cphil_prefetch_start(pf);
            st = mops->train_step(model, &b, lr, &loss);
            if (fetch_ahead) {
                bool staged = false;
                cphil_status st2 = cphil_prefetch_wait(pf, &ahead, &staged, &frames_ahead);
                if (st == CPHIL_OK) st = st2;
                have_ahead = st2 == CPHIL_OK;
                if (!staged) prefetching = false; /* that batch is still valid, unstaged: train_step stages it */
            }
            if (st != CPHIL_OK) goto done;
            if (!isfinite(loss)) {
                FILE *f = fopen(p_ckpt, "rb");
                bool have = f != NULL;
                if (f) fclose(f);
                st = cphil_err(CPHIL_E_NUMERIC,
                               "the loss became %s at epoch %d, batch %llu (step %llu, learning rate %.3g). "
                               "Stopped; %s%s%s. Try a lower --lr, --precision f32, or a longer --warmup-steps",
                               isnan(loss) ? "NaN" : "infinite", s.epoch + 1, (unsigned long long)s.batch + 1,
                               (unsigned long long)s.step + 1, lr,
                               have ? "the last good checkpoint is kept: " : "no checkpoint was written yet",
                               have ? p_ckpt : "", have ? " (resume with --resume)" : "");
                goto done;
            }
            s.step++;
            s.batch++;
            s.loss_sum += loss;
            s.loss_n++;
            s.loss_ema = s.loss_n == 1 && s.loss_ema == 0 ? loss : 0.95 * s.loss_ema + 0.05 * loss;
            uint64_t frames = frames_b;
            bool interrupt = cphil_train_interrupt || (o->stop_after_steps > 0 && s.step == (uint64_t)o->stop_after_steps);
            if (multi) {
                /* Ctrl-C reaches the ranks at different steps: all stop at the first step any saw
                 * it, so no rank is left waiting in a collective; frames/s counts every rank's */
                double v[2] = {interrupt ? 1.0 : 0.0, (double)frames};
                if ((st = cphil_dist_sum_f64(o->dist, v, 2, "step agreement")) != CPHIL_OK) goto done;
                interrupt = v[0] > 0;
                frames = (uint64_t)v[1];
            }
            frames_since += frames;
            double now = cphil_now_sec();
            double fps = now > t_rate ? (double)frames_since / (now - t_rate) : 0;
            if (cb && cb->on_step) cb->on_step(cb->user, s.epoch, (size_t)s.batch, nb, s.loss_ema, fps);
            if (interrupt || (o->save_every > 0 && s.step % (uint64_t)o->save_every == 0 && s.batch < nb)) {
                s.epoch_seconds = cphil_now_sec() - t_ep;
                if (o->rank_state && (st = o->rank_state(model, true)) != CPHIL_OK) goto done;
                if (root && (st = save_ckpt(p_ckpt, o, mops, model, &s)) != CPHIL_OK) goto done;
            }
            if (interrupt) {
                if (root && (st = mops->save_policy(model, p_pol, o->meta_json)) != CPHIL_OK) goto done;
                note(cb, "interrupted at epoch %d, batch %llu (step %llu): saved %s and %s; continue with --resume %s",
                     s.epoch + 1, (unsigned long long)s.batch, (unsigned long long)s.step, p_ckpt, p_pol, p_ckpt);
                res->interrupted = true;
                goto done;
            }
        }
        double t_train = cphil_now_sec() - t_rate; /* training time of this epoch, validation excluded */
        if (s.batch < nb && stop && s.loss_n == 0) break; /* max_steps hit exactly at an epoch start */
        /* A --max-steps stop inside the epoch: the epoch is reported (validation, a curve row) but
         * the checkpoint keeps the exact position, so a resume with a larger --max-steps finishes
         * this epoch and the report's effects (best value, patience) do not leak into it. */
        bool partial = s.batch < nb;
        loop_state at_stop = s;
        at_stop.epoch_seconds = cphil_now_sec() - t_ep;
        /* End of the epoch (or of max_steps): validate, report, save. */
        cphil_tr_epoch_report r;
        memset(&r, 0, sizeof r);
        r.epoch = s.epoch + 1;
        r.epochs = o->epochs;
        r.step = s.step;
        r.train_loss = s.loss_n ? s.loss_sum / (double)s.loss_n : NAN;
        if ((st = validate(mops, model, dops, data, &logits, &logits_cap, &r.val_loss, &r.val, &r.has_val)) != CPHIL_OK)
            goto done;
        if (!r.has_val) r.val_loss = NAN;
        r.seconds = cphil_now_sec() - t_ep;
        r.frames_per_sec = t_train > 0 ? (double)frames_since / t_train : 0;
        double crit = r.has_val ? r.val_loss : r.train_loss;
        if (isfinite(crit) && crit < s.best_val - o->min_delta) {
            s.best_val = crit;
            s.best_epoch = r.epoch;
            s.bad_epochs = 0;
            r.best = true;
        } else {
            s.bad_epochs++;
        }
        r.epochs_without_improvement = s.bad_epochs;
        if (s.n_rows >= s.rows_cap) {
            st = cphil_err(CPHIL_E_INTERNAL, "curve rows: %d of room %d", s.n_rows + 1, s.rows_cap);
            goto done;
        }
        cphil_curve_row *row = &s.rows[s.n_rows++];
        row->epoch = r.epoch;
        row->step = s.step;
        row->train_loss = r.train_loss;
        row->val_loss = r.val_loss;
        for (int h = 0; h < CPHIL_TR_N_HEADS; h++) row->acc[h] = r.has_val ? r.val.acc[h] : NAN;
        row->seconds = r.seconds;
        row->best = r.best;
        if (o->early_stopping && s.bad_epochs >= o->patience && s.epoch + 1 < o->epochs) {
            r.early_stop = true;
            res->stopped_early = true;
            stop = true;
        }
        /* The state saved is "at the start of the next epoch". */
        int ep = s.epoch;
        s.epoch = ep + 1;
        s.batch = 0;
        s.loss_sum = 0;
        s.loss_n = 0;
        s.epoch_seconds = 0;
        if (r.early_stop) s.epoch = o->epochs; /* a resume of an early-stopped run says it is finished */
        const loop_state *saved = partial ? &at_stop : &s;
        /* the ranks must hold one model: a cheap cross-check before rank 0 saves it */
        if (multi && (st = cphil_dist_check_same(o->dist, state_hash(mops, model),
                                                 "the model state (parameters, AdamW moments and step)")) != CPHIL_OK)
            goto done;
        if (o->rank_state && (st = o->rank_state(model, true)) != CPHIL_OK) goto done;
        if (root) {
            if ((st = mops->save_policy(model, p_pol, o->meta_json)) != CPHIL_OK) goto done;
            if ((st = save_ckpt(p_ckpt, o, mops, model, saved)) != CPHIL_OK) goto done;
            if (r.best) {
                if ((st = mops->save_policy(model, p_bpol, o->meta_json)) != CPHIL_OK) goto done;
                if ((st = save_ckpt(p_bckpt, o, mops, model, saved)) != CPHIL_OK) goto done;
            }
            if ((st = cphil_curves_write_csv(p_csv, s.rows, s.n_rows)) != CPHIL_OK) goto done;
            if ((st = cphil_curves_write_svg(p_svg, s.rows, s.n_rows, o->title)) != CPHIL_OK) goto done;
        }
        if (cb && cb->on_epoch) cb->on_epoch(cb->user, &r);
        s.epoch = ep; /* the for loop increments */
        if (stop) break;
    }
done:
    cphil_prefetch_close(pf);
    res->epochs_done = s.n_rows;
    res->steps = s.step;
    res->best_val_loss = s.best_val;
    res->best_epoch = s.best_epoch;
    res->seconds = cphil_now_sec() - t_start;
    res->rows = s.rows;
    cphil_free(logits);
    return st;
}
