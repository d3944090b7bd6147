/* train_data.c — training data over src/data/ (see train_data.h): a dataset cache (opened in
 * place) or replays built into a temporary cache with the same builder and filters as
 * `cphil dataset`, the split stored in it (by file), and two batchers (training: shuffled
 * windows or TBPTT streams; validation: windows in order). Whole entries ("replays": one replay
 * seen from one controlled port) are served to the evaluation.
 */
#include "train/train_data.h"

#include "data/dataset.h"
#include "game/ids.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cphil_tr_data {
    cphil_tr_data_opts o;
    cphil_dataset ds;
    bool ds_open;
    cphil_batcher *tb, *vb;
    cphil_batch tbatch, vbatch;
    bool tb_alloc, vb_alloc;
    cphil_tr_data_summary sum;
    uint32_t *list[2]; /* entry indices: [0] training, [1] held out */
    int n[2];
    /* targets of the last entry asked for (eval) */
    uint8_t *tbtn, *tcls;
    size_t tcap;
    int t_entry;
    /* distillation */
    const cphil_softlabels *sl;
    uint64_t *sl_idx[2]; /* soft-label frame indices: [0] training, [1] held out */
    uint64_t sl_n[2], sl_pos, sl_seed;
    int sl_B;
    float *b_cont, *b_w, *b_soft;
    int32_t *b_ids;
    uint8_t *b_btn, *b_cls;
    /* CPHIL_DIST_LOG_WINDOWS=PREFIX (a debug aid, tests/t_dist_mpi.sh): every training batch's
     * window ids (entry:start per slot) appended to PREFIX.rankR */
    FILE *wlog;
    int epoch;
    uint64_t batch_i;
};

static int sample_count(const cphil_tr_data *d, const cphil_ds_entry *e) {
    long long n = (long long)e->n_rows - 1 - d->o.frame_delay;
    return n > 0 ? (int)n : 0;
}

void cphil_tr_data_close(cphil_tr_data *d) {
    if (!d) return;
    if (d->wlog) fclose(d->wlog);
    if (d->tb_alloc) cphil_batch_free(&d->tbatch);
    if (d->vb_alloc) cphil_batch_free(&d->vbatch);
    cphil_batcher_close(d->tb);
    cphil_batcher_close(d->vb);
    if (d->ds_open) cphil_dataset_close(&d->ds);
    cphil_free(d->list[0]);
    cphil_free(d->list[1]);
    cphil_free(d->tbtn);
    cphil_free(d->tcls);
    for (int k = 0; k < 2; k++) cphil_free(d->sl_idx[k]);
    cphil_free(d->b_cont);
    cphil_free(d->b_w);
    cphil_free(d->b_soft);
    cphil_free(d->b_ids);
    cphil_free(d->b_btn);
    cphil_free(d->b_cls);
    cphil_free(d);
}

static cphil_status build_temp_cache(const cphil_tr_data_opts *o, char *path, size_t n, cphil_tr_data_summary *sum) {
    cphil_ds_build_opts b;
    cphil_ds_build_default_opts(&b);
    b.replays_dir = o->replays;
    const char *tmp = getenv("TMPDIR");
    snprintf(path, n, "%s/cphil-train-%ld.ds", tmp && *tmp ? tmp : "/tmp", (long)getpid());
    b.out_path = path;
    b.max_files = (int)o->max_files;
    for (int i = 0; i < o->n_characters && b.n_characters < CPHIL_DS_MAX_NAMES; i++) {
        int id = cphil_char_lookup(o->characters[i]);
        if (id < 0) return cphil_err(CPHIL_E_ARG, "--character: unknown character '%s' (names or aliases: falcon, fox, marth, ics, puff, gnw...)", o->characters[i]);
        b.characters[b.n_characters++] = id;
    }
    for (int i = 0; i < o->n_stages && b.n_stages < CPHIL_DS_MAX_NAMES; i++) {
        int id = cphil_stage_lookup(o->stages[i]);
        if (id < 0) return cphil_err(CPHIL_E_ARG, "--stage: unknown stage '%s' (fd, bf, ys, dl, fod, ps or a full name)", o->stages[i]);
        b.stages[b.n_stages++] = id;
    }
    if (o->train_character) {
        int id = cphil_char_lookup(o->train_character);
        if (id < 0) return cphil_err(CPHIL_E_ARG, "--train-character: unknown character '%s'", o->train_character);
        b.train_characters[b.n_train_characters++] = id;
    }
    b.player = (int)o->player;
    b.dual_port = o->dual_port;
    b.val_split = o->val_split;
    b.seed = o->seed;
    b.embed.prev_action = o->prev_action;
    b.jobs = o->threads > 0 ? o->threads : 2;
    b.quiet = o->quiet;
    cphil_ds_build_report rep;
    memset(&rep, 0, sizeof rep);
    cphil_status s = cphil_dataset_build(&b, &rep);
    if (s == CPHIL_OK) {
        sum->files_found = (int)rep.files_found;
        sum->files_used = (int)rep.files_used;
        sum->files_skipped = (int)(rep.files_found - rep.files_used);
        size_t k = 0;
        for (int r = 1; r < CPHIL_DS_SKIP_COUNT; r++)
            if (rep.skipped[r] && k < sizeof sum->skipped_note - 40)
                k += (size_t)snprintf(sum->skipped_note + k, sizeof sum->skipped_note - k, "%s%u %s", k ? ", " : "",
                                      rep.skipped[r], cphil_ds_skip_name((cphil_ds_skip)r));
    }
    cphil_ds_build_report_free(&rep);
    return s;
}

cphil_status cphil_tr_data_open(const cphil_tr_data_opts *o, cphil_tr_data **out) {
    *out = NULL;
    cphil_tr_data *d = cphil_calloc(1, sizeof *d);
    if (!d) return cphil_err(CPHIL_E_NOMEM, "out of memory");
    d->o = *o;
    d->t_entry = -1;
    cphil_status s = CPHIL_OK;
    char tmp[1024] = "";
    if (o->data) {
        s = cphil_dataset_open(&d->ds, o->data, true);
    } else {
        s = build_temp_cache(o, tmp, sizeof tmp, &d->sum);
        if (s == CPHIL_OK) s = cphil_dataset_open(&d->ds, tmp, false);
        if (tmp[0]) unlink(tmp); /* the mapping stays valid; nothing is left behind */
    }
    if (s) goto fail;
    d->ds_open = true;
    const cphil_ds_header *h = d->ds.h;
    if (o->data) {
        d->sum.files_found = d->sum.files_used = (int)h->n_files;
        if (o->prev_action != ((h->flags & 1) != 0)) {
            s = cphil_err(CPHIL_E_MISMATCH, "%s: the cache was built %s --prev-action; build it again %s it, or %s "
                                            "--prev-action here",
                          o->data, (h->flags & 1) ? "with" : "without", o->prev_action ? "with" : "without",
                          (h->flags & 1) ? "add" : "drop");
            goto fail;
        }
    }
    d->sum.n_cont = (int)h->n_cont;
    d->sum.n_ids = (int)h->n_ids;
    d->sum.E = (int)h->E;
    d->sum.layout_hash = h->layout_hash;
    /* entry lists and frame counts */
    for (int k = 0; k < 2; k++) {
        d->list[k] = cphil_alloc((h->n_entries ? h->n_entries : 1) * sizeof(uint32_t));
        if (!d->list[k]) {
            s = cphil_err(CPHIL_E_NOMEM, "out of memory");
            goto fail;
        }
    }
    uint64_t presses[CPHIL_N_BUTTONS] = {0}, train_rows = 0;
    for (uint32_t i = 0; i < h->n_entries; i++) {
        const cphil_ds_entry *e = &d->ds.entries[i];
        int held = o->all_files_eval ? 1 : e->is_val != 0;
        d->list[held][d->n[held]++] = i;
        if (o->all_files_eval) d->list[0][d->n[0]++] = i;
        uint64_t ns = (uint64_t)sample_count(d, e);
        if (held) d->sum.val_frames += ns;
        else {
            d->sum.train_frames += ns;
            for (uint32_t r = 0; r < e->n_rows; r++) {
                uint8_t bt = d->ds.targets[e->row_start + r].buttons;
                for (int k = 0; k < CPHIL_N_BUTTONS; k++) presses[k] += (bt >> k) & 1;
            }
            train_rows += e->n_rows;
        }
    }
    for (int k = 0; k < CPHIL_N_BUTTONS; k++)
        d->sum.button_rates[k] = train_rows ? (double)presses[k] / (double)train_rows : 0;
    d->sum.train_files = (int)h->n_files - (int)h->n_val_files;
    d->sum.val_files = (int)h->n_val_files;
    if (o->all_files_eval) d->sum.val_files = (int)h->n_files;
    /* batchers */
    if (o->batch > 0 && o->window > 0) {
        cphil_batcher_opts bo;
        cphil_batcher_default_opts(&bo);
        bo.mode = o->tbptt > 0 ? CPHIL_BATCH_STREAMS : CPHIL_BATCH_WINDOWS;
        bo.split = CPHIL_SPLIT_TRAIN;
        int ranks = o->ranks > 1 ? o->ranks : 1;
        bo.B = o->batch * ranks; /* the global batch; this rank fills its share */
        bo.share_at = ranks > 1 ? o->rank * o->batch : 0;
        bo.share = ranks > 1 ? o->batch : 0;
        bo.W = o->window;
        bo.stride = o->stride > 0 ? o->stride : o->window;
        bo.frame_delay = (int)o->frame_delay;
        bo.seed = o->seed;
        bo.shuffle = true;
        bo.drop_last = true;
        bo.parallel_fill = o->parallel_fill;
        if (d->n[0] > 0 && !o->all_files_eval) {
            if ((s = cphil_batcher_open(&d->tb, &d->ds, &bo)) != CPHIL_OK) goto fail;
            if ((s = cphil_batch_alloc(&d->tbatch, d->tb)) != CPHIL_OK) goto fail;
            d->tb_alloc = true;
        }
        bo.mode = CPHIL_BATCH_WINDOWS;
        bo.split = CPHIL_SPLIT_VAL;
        bo.B = o->batch;
        bo.share_at = bo.share = 0;
        bo.stride = o->window;
        bo.shuffle = false;
        bo.drop_last = false;
        if (d->n[1] > 0 && !o->all_files_eval) {
            if ((s = cphil_batcher_open(&d->vb, &d->ds, &bo)) != CPHIL_OK) goto fail;
            if ((s = cphil_batch_alloc(&d->vbatch, d->vb)) != CPHIL_OK) goto fail;
            d->vb_alloc = true;
        }
    }
    const char *wl = getenv("CPHIL_DIST_LOG_WINDOWS");
    if (wl && *wl && d->tb) {
        char p[1024];
        snprintf(p, sizeof p, "%s.rank%d", wl, o->rank);
        if (!(d->wlog = fopen(p, "w"))) {
            s = cphil_err(CPHIL_E_IO, "CPHIL_DIST_LOG_WINDOWS: cannot write %s", p);
            goto fail;
        }
    }
    *out = d;
    return CPHIL_OK;
fail:
    cphil_tr_data_close(d);
    return s;
}

void cphil_tr_data_get_summary(const cphil_tr_data *d, cphil_tr_data_summary *s) { *s = d->sum; }

static void to_tr_batch(const cphil_batch *x, bool streams, cphil_tr_batch *out) {
    memset(out, 0, sizeof *out);
    out->B = x->B;
    out->T = x->W;
    out->cont = x->cont;
    out->ids = x->ids;
    out->btn = x->buttons;
    out->cls = x->cls;
    out->tstride = 0;
    out->weight = x->weight;
    out->reset = streams ? x->reset : NULL;
}

static cphil_status d_begin(void *self, uint64_t seed, int epoch, size_t *nb) {
    cphil_tr_data *d = self;
    (void)seed; /* the batcher was opened with the run's seed; epoch e uses seed + e */
    if (!d->tb) {
        *nb = 0;
        return CPHIL_OK;
    }
    cphil_batcher_epoch(d->tb, (uint64_t)epoch);
    d->epoch = epoch;
    d->batch_i = 0;
    if (d->o.tbptt > 0) {
        /* streams: the count depends on the packing; walk the epoch once (filling batches is
         * cheap and deterministic), then restart it */
        size_t n = 0;
        while (cphil_batcher_next(d->tb, &d->tbatch)) n++;
        cphil_batcher_epoch(d->tb, (uint64_t)epoch);
        *nb = n;
    } else {
        *nb = (size_t)cphil_batcher_batches(d->tb);
    }
    return CPHIL_OK;
}

static cphil_status d_next(void *self, cphil_tr_batch *out) {
    cphil_tr_data *d = self;
    if (!cphil_batcher_next(d->tb, &d->tbatch))
        return cphil_err(CPHIL_E_INTERNAL, "the batcher ended before the batches it announced");
    if (d->wlog) {
        fprintf(d->wlog, "%d %llu", d->epoch, (unsigned long long)d->batch_i);
        for (int k = 0; k < d->tbatch.B; k++)
            if (d->tbatch.entry[k] >= 0) fprintf(d->wlog, " %d:%u", d->tbatch.entry[k], d->tbatch.start[k]);
        fputc('\n', d->wlog);
        fflush(d->wlog);
    }
    d->batch_i++;
    to_tr_batch(&d->tbatch, d->o.tbptt > 0, out);
    return CPHIL_OK;
}

static cphil_status d_val_begin(void *self, size_t *nb) {
    cphil_tr_data *d = self;
    if (!d->vb) {
        *nb = 0;
        return CPHIL_OK;
    }
    cphil_batcher_epoch(d->vb, 0);
    *nb = (size_t)cphil_batcher_batches(d->vb);
    return CPHIL_OK;
}

static cphil_status d_val_next(void *self, cphil_tr_batch *out) {
    cphil_tr_data *d = self;
    if (!cphil_batcher_next(d->vb, &d->vbatch))
        return cphil_err(CPHIL_E_INTERNAL, "the validation batcher ended early");
    to_tr_batch(&d->vbatch, false, out);
    return CPHIL_OK;
}

const cphil_tr_data_ops cphil_tr_data_ops_impl = {d_begin, d_next, d_val_begin, d_val_next, 0};

int cphil_tr_data_n_replays(const cphil_tr_data *d, bool held_out) { return d->n[held_out ? 1 : 0]; }

size_t cphil_tr_data_replay_frames(const cphil_tr_data *d, bool held_out, int i) {
    return (size_t)sample_count(d, &d->ds.entries[d->list[held_out ? 1 : 0][i]]);
}

cphil_status cphil_tr_data_replay_inputs(cphil_tr_data *d, bool held_out, int i, size_t start, size_t n, float *cont,
                                         int32_t *ids) {
    const cphil_ds_entry *e = &d->ds.entries[d->list[held_out ? 1 : 0][i]];
    if (start + n > (size_t)sample_count(d, e)) return cphil_err(CPHIL_E_INTERNAL, "frames out of the replay");
    for (size_t t = 0; t < n; t++)
        cphil_dataset_row(&d->ds, e->row_start + start + t, cont + t * (size_t)d->sum.n_cont,
                          ids + t * (size_t)d->sum.n_ids, NULL);
    return CPHIL_OK;
}

cphil_status cphil_tr_data_replay_targets(cphil_tr_data *d, bool held_out, int i, const uint8_t **btn,
                                          const uint8_t **cls) {
    uint32_t ei = d->list[held_out ? 1 : 0][i];
    const cphil_ds_entry *e = &d->ds.entries[ei];
    size_t n = (size_t)sample_count(d, e);
    if ((int)ei != d->t_entry) {
        if (n > d->tcap) {
            cphil_free(d->tbtn);
            cphil_free(d->tcls);
            d->tbtn = cphil_alloc(n * CPHIL_N_BUTTONS + 1);
            d->tcls = cphil_alloc(n * CPHIL_N_CAT + 1);
            d->tcap = d->tbtn && d->tcls ? n : 0;
            if (!d->tcap) return cphil_err(CPHIL_E_NOMEM, "out of memory for targets");
        }
        for (size_t t = 0; t < n; t++) {
            cphil_target tg;
            cphil_dataset_row(&d->ds, e->row_start + t + 1 + (uint64_t)d->o.frame_delay, NULL, NULL, &tg);
            memcpy(d->tbtn + t * CPHIL_N_BUTTONS, tg.buttons, CPHIL_N_BUTTONS);
            memcpy(d->tcls + t * CPHIL_N_CAT, tg.cls, CPHIL_N_CAT);
        }
        d->t_entry = (int)ei;
    }
    *btn = d->tbtn;
    *cls = d->tcls;
    return CPHIL_OK;
}

uint64_t cphil_tr_data_replay_row(const cphil_tr_data *d, bool held_out, int i) {
    return d->ds.entries[d->list[held_out ? 1 : 0][i]].row_start;
}

void cphil_tr_data_identity(const cphil_tr_data *d, uint64_t *checksum, uint64_t *rows, uint32_t *flags,
                            uint32_t *frame_delay) {
    *checksum = d->ds.h->checksum;
    *rows = d->ds.h->n_rows;
    *flags = d->ds.h->flags;
    *frame_delay = (uint32_t)d->o.frame_delay;
}

/* ---- distillation batches ---------------------------------------------------------------- */
static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

cphil_status cphil_tr_data_attach_soft(cphil_tr_data *d, const cphil_softlabels *sl, const char *sl_path, int batch) {
    const cphil_ds_header *h = d->ds.h;
    if (sl->layout_hash != h->layout_hash)
        return cphil_err(CPHIL_E_MISMATCH, "%s: made with embedding layout %016llx, the dataset has %016llx "
                                           "(another cphil version or --prev-action setting)",
                         sl_path, (unsigned long long)sl->layout_hash, (unsigned long long)h->layout_hash);
    if (sl->dataset_checksum != h->checksum || sl->dataset_rows != h->n_rows)
        return cphil_err(CPHIL_E_MISMATCH, "%s: made on another dataset (checksum %016llx, %llu rows; this one has "
                                           "%016llx, %llu rows): run cphil soft-labels on this dataset",
                         sl_path, (unsigned long long)sl->dataset_checksum, (unsigned long long)sl->dataset_rows,
                         (unsigned long long)h->checksum, (unsigned long long)h->n_rows);
    d->o.frame_delay = sl->frame_delay;
    /* row -> held out? via the sorted entry starts */
    uint64_t *starts = cphil_alloc(((size_t)h->n_entries + 1) * sizeof(uint64_t));
    for (int k = 0; k < 2; k++) d->sl_idx[k] = cphil_alloc((size_t)(sl->n_frames ? sl->n_frames : 1) * sizeof(uint64_t));
    size_t nc = (size_t)d->sum.n_cont, ni = (size_t)d->sum.n_ids, B = (size_t)batch;
    d->b_cont = cphil_alloc(B * nc * sizeof(float) + 4);
    d->b_ids = cphil_alloc(B * ni * sizeof(int32_t) + 4);
    d->b_w = cphil_alloc(B * sizeof(float));
    d->b_soft = cphil_alloc(B * CPHIL_N_LOGITS * sizeof(float));
    d->b_btn = cphil_alloc(B * CPHIL_N_BUTTONS);
    d->b_cls = cphil_alloc(B * CPHIL_N_CAT);
    if (!starts || !d->sl_idx[0] || !d->sl_idx[1] || !d->b_cont || !d->b_ids || !d->b_w || !d->b_soft || !d->b_btn ||
        !d->b_cls) {
        cphil_free(starts);
        return cphil_err(CPHIL_E_NOMEM, "out of memory for distillation batches");
    }
    for (uint32_t i = 0; i < h->n_entries; i++) starts[i] = d->ds.entries[i].row_start * 2 + (d->ds.entries[i].is_val != 0);
    qsort(starts, h->n_entries, sizeof(uint64_t), cmp_u64); /* (row_start, is_val) packed, sorted by row */
    d->sl_n[0] = d->sl_n[1] = 0;
    for (uint64_t f = 0; f < sl->n_frames; f++) {
        uint64_t r = cphil_softlabels_row(sl, f);
        size_t lo = 0, hi = h->n_entries; /* last entry with start <= r */
        while (hi - lo > 1) {
            size_t mid = (lo + hi) / 2;
            if (starts[mid] / 2 <= r) lo = mid;
            else hi = mid;
        }
        int held = h->n_entries ? (int)(starts[lo] & 1) : 0;
        d->sl_idx[held][d->sl_n[held]++] = f;
    }
    cphil_free(starts);
    d->sl = sl;
    d->sl_B = batch;
    const char *wl = getenv("CPHIL_DIST_LOG_WINDOWS");
    if (wl && *wl && !d->wlog) {
        char p[1024];
        snprintf(p, sizeof p, "%s.rank%d", wl, d->o.rank);
        if (!(d->wlog = fopen(p, "w"))) return cphil_err(CPHIL_E_IO, "CPHIL_DIST_LOG_WINDOWS: cannot write %s", p);
    }
    d->sum.train_frames = d->sl_n[0];
    d->sum.val_frames = d->sl_n[1];
    return CPHIL_OK;
}

static uint64_t sm64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Frames per training step over all ranks: each step takes the next global batch of the
 * epoch's order, and rank r fills its slots [r x B, (r + 1) x B) of it (like the windows). */
static uint64_t sl_global(const cphil_tr_data *d) {
    return (uint64_t)d->sl_B * (uint64_t)(d->o.ranks > 1 ? d->o.ranks : 1);
}

static cphil_status sl_begin(void *self, uint64_t seed, int epoch, size_t *nb) {
    cphil_tr_data *d = self;
    /* the order of an epoch depends only on (seed, epoch): restart from the file order */
    uint64_t *v = d->sl_idx[0], n = d->sl_n[0];
    qsort(v, (size_t)n, sizeof(uint64_t), cmp_u64);
    uint64_t s = seed * 0x100000001B3ull + (uint64_t)epoch;
    for (uint64_t i = n; i > 1; i--) {
        uint64_t j = sm64(&s) % i, t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
    d->sl_pos = 0;
    d->epoch = epoch;
    d->batch_i = 0;
    *nb = (size_t)(n / sl_global(d)); /* drop the last partial batch */
    return CPHIL_OK;
}

static void sl_fill(cphil_tr_data *d, const uint64_t *idx, uint64_t n, cphil_tr_batch *out) {
    size_t nc = (size_t)d->sum.n_cont, ni = (size_t)d->sum.n_ids;
    for (int k = 0; k < d->sl_B; k++) {
        uint64_t f = idx[(uint64_t)k < n ? (uint64_t)k : 0];
        uint64_t row = cphil_softlabels_row(d->sl, f);
        cphil_target tg;
        cphil_dataset_row(&d->ds, row, d->b_cont + (size_t)k * nc, d->b_ids + (size_t)k * ni, NULL);
        cphil_dataset_row(&d->ds, row + 1 + d->sl->frame_delay, NULL, NULL, &tg);
        memcpy(d->b_btn + (size_t)k * CPHIL_N_BUTTONS, tg.buttons, CPHIL_N_BUTTONS);
        memcpy(d->b_cls + (size_t)k * CPHIL_N_CAT, tg.cls, CPHIL_N_CAT);
        cphil_softlabels_probs(d->sl, f, d->b_soft + (size_t)k * CPHIL_N_LOGITS);
        d->b_w[k] = (uint64_t)k < n ? 1.0f : 0.0f;
    }
    memset(out, 0, sizeof *out);
    out->B = d->sl_B;
    out->T = 1;
    out->cont = d->b_cont;
    out->ids = d->b_ids;
    out->btn = d->b_btn;
    out->cls = d->b_cls;
    out->weight = d->b_w;
    out->soft = d->b_soft;
}

static cphil_status sl_next(void *self, cphil_tr_batch *out) {
    cphil_tr_data *d = self;
    /* the loop never asks past the batches sl_begin announced; a guard, not a data check */
    const uint64_t G = sl_global(d), at = d->sl_pos + (uint64_t)(d->o.ranks > 1 ? d->o.rank : 0) * (uint64_t)d->sl_B;
    if (d->sl_pos + G > d->sl_n[0])
        return cphil_err(CPHIL_E_INTERNAL, "distillation batch %llu is past the epoch's %llu frames",
                         (unsigned long long)(d->sl_pos / G), (unsigned long long)d->sl_n[0]);
    sl_fill(d, d->sl_idx[0] + at, (uint64_t)d->sl_B, out);
    if (d->wlog) {
        fprintf(d->wlog, "%d %llu", d->epoch, (unsigned long long)d->batch_i);
        for (int k = 0; k < d->sl_B; k++) fprintf(d->wlog, " %llu", (unsigned long long)d->sl_idx[0][at + (uint64_t)k]);
        fputc('\n', d->wlog);
        fflush(d->wlog);
    }
    d->batch_i++;
    d->sl_pos += G;
    return CPHIL_OK;
}

static cphil_status sl_vbegin(void *self, size_t *nb) {
    cphil_tr_data *d = self;
    d->sl_pos = 0;
    *nb = (size_t)((d->sl_n[1] + (uint64_t)d->sl_B - 1) / (uint64_t)d->sl_B);
    return CPHIL_OK;
}

static cphil_status sl_vnext(void *self, cphil_tr_batch *out) {
    cphil_tr_data *d = self;
    uint64_t left = d->sl_n[1] - d->sl_pos;
    sl_fill(d, d->sl_idx[1] + d->sl_pos, left < (uint64_t)d->sl_B ? left : (uint64_t)d->sl_B, out);
    d->sl_pos += (uint64_t)d->sl_B;
    return CPHIL_OK;
}

const cphil_tr_data_ops cphil_tr_distill_ops = {sl_begin, sl_next, sl_vbegin, sl_vnext, 0};
