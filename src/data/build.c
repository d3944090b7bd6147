/* build.c — `cphil dataset`: replays folder -> dataset cache (format in docs/data.md).
 *
 * Implements: the recursive listing of *.slp files (sorted, so results do not depend on the
 * directory order), parallel parsing and embedding (worker threads claim files in order),
 * filters (1v1, characters, stages, ports), duplicates by content hash (the first path in sorted
 * order is kept), the deterministic split by file, and the atomic write of the cache with its
 * checksum. Damaged replays are skipped with the reader's message. Deliberately not: quality
 * scoring, downsampling, or any change to the embedding (it calls cphil_embed_frame, the function
 * the agent uses).
 */
#include "data/dataset.h"

#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

const char *cphil_ds_skip_name(cphil_ds_skip s) {
    static const char *const n[CPHIL_DS_SKIP_COUNT] = {"used", "damaged", "duplicate", "not 1v1",
                                                       "character filter", "stage filter",
                                                       "port not in game", "no frames", "over --max-files"};
    return (unsigned)s < CPHIL_DS_SKIP_COUNT ? n[s] : "?";
}

void cphil_ds_build_default_opts(cphil_ds_build_opts *o) {
    memset(o, 0, sizeof *o);
    o->val_split = 0.1;
    o->seed = 1;
    o->jobs = 2;
}

/* ---- listing ---------------------------------------------------------------------------- */
typedef struct name_list {
    char **v;
    size_t n, cap;
} name_list;

static cphil_status list_push(name_list *l, const char *s) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        char **nv = cphil_realloc(l->v, l->cap * sizeof(char *), nc * sizeof(char *));
        if (!nv) return cphil_err(CPHIL_E_NOMEM, "dataset: out of memory listing files");
        l->v = nv;
        l->cap = nc;
    }
    if (!(l->v[l->n] = cphil_strdup(s))) return cphil_err(CPHIL_E_NOMEM, "dataset: out of memory");
    l->n++;
    return CPHIL_OK;
}

static bool ends_with_slp(const char *s) {
    size_t n = strlen(s);
    return n > 4 && (!strcmp(s + n - 4, ".slp") || !strcmp(s + n - 4, ".SLP"));
}

static cphil_status walk(const char *root, const char *rel, name_list *out, int depth) {
    if (depth > 32) return CPHIL_OK;
    char path[4096];
    snprintf(path, sizeof path, "%s%s%s", root, rel[0] ? "/" : "", rel);
    DIR *d = opendir(path);
    if (!d) return depth == 0 ? cphil_err(CPHIL_E_IO, "%s: cannot open folder (--replays)", root) : CPHIL_OK;
    struct dirent *e;
    cphil_status s = CPHIL_OK;
    while (s == CPHIL_OK && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char sub[4096];
        int n = snprintf(sub, sizeof sub, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
        if (n <= 0 || (size_t)n >= sizeof sub) continue;
        char full[8192];
        snprintf(full, sizeof full, "%s/%s", root, sub);
        struct stat st;
        if (stat(full, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) s = walk(root, sub, out, depth + 1);
        else if (S_ISREG(st.st_mode) && ends_with_slp(e->d_name)) s = list_push(out, sub);
    }
    closedir(d);
    return s;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* ---- per-file work ---------------------------------------------------------------------- */
typedef struct job_entry {
    uint32_t n_rows;
    int32_t first_frame;
    uint8_t port, opp, char_ext, opp_char_ext;
} job_entry;

typedef struct file_job {
    char *rel;
    cphil_ds_skip skip;
    char *msg;
    uint64_t hash;
    uint16_t stage;
    int n_entries;
    job_entry ent[CPHIL_SLP_PORTS];
    uint64_t rows;           /* all entries */
    float *cont;
    int16_t *ids;
    cphil_ds_target *tg;
    int processed;
} file_job;

typedef struct build_ctx {
    const cphil_ds_build_opts *o;
    cphil_embed_layout L;
    file_job *jobs;
    size_t n_jobs;
    pthread_mutex_t mu;
    size_t next;             /* next file index to claim */
    size_t done;
    uint64_t frames_done;
    uint64_t *pass_hashes;   /* unique content hashes of passing files (for --max-files) */
    size_t n_pass, cap_pass;
    bool stop;
    cphil_status fatal;
    char fatal_msg[512];
} build_ctx;

static bool in_set(const int *v, int n, int x) {
    for (int i = 0; i < n; i++)
        if (v[i] == x) return true;
    return false;
}

static uint64_t content_hash(const uint8_t *d, size_t n) {
    cphil_ds_hasher h;
    cphil_ds_hash_init(&h);
    cphil_ds_hash_update(&h, d, n);
    return cphil_ds_hash_final(&h);
}

static void set_msg(file_job *j, const char *m) {
    cphil_free(j->msg);
    j->msg = cphil_strdup(m);
}

/* Parse, filter and embed one file. Returns non-OK only for out-of-memory (fatal). */
static cphil_status process(build_ctx *c, file_job *j) {
    const cphil_ds_build_opts *o = c->o;
    char full[8192];
    snprintf(full, sizeof full, "%s/%s", o->replays_dir, j->rel);
    uint8_t *data = NULL;
    size_t size = 0;
    cphil_status s = cphil_file_read(full, (size_t)1 << 31, &data, &size);
    if (s != CPHIL_OK) {
        if (s == CPHIL_E_NOMEM) return s;
        j->skip = CPHIL_DS_SKIP_DAMAGED;
        set_msg(j, cphil_last_error());
        return CPHIL_OK;
    }
    j->hash = content_hash(data, size);
    cphil_replay *r = NULL;
    s = cphil_slp_read_mem(data, size, j->rel, &r);
    cphil_free(data);
    if (s != CPHIL_OK) {
        if (s == CPHIL_E_NOMEM) {
            cphil_replay_free(r);
            return s;
        }
        j->skip = CPHIL_DS_SKIP_DAMAGED;
        set_msg(j, cphil_last_error());
        cphil_replay_free(r);
        return CPHIL_OK;
    }
    const cphil_game_info *gi = &r->game;
    j->stage = gi->stage;
    int players[CPHIL_SLP_PORTS], np = 0;
    for (int p = 0; p < CPHIL_SLP_PORTS; p++)
        if (gi->players[p].type != 3) players[np++] = p;
    cphil_ds_skip skip = CPHIL_DS_USED;
    if (!o->any_players && (np != 2 || gi->teams)) skip = CPHIL_DS_SKIP_NOT_1V1;
    else if (np == 0 || r->n_frames == 0) skip = CPHIL_DS_SKIP_EMPTY;
    if (!skip && o->n_stages && !in_set(o->stages, o->n_stages, gi->stage)) skip = CPHIL_DS_SKIP_STAGE;
    if (!skip && o->n_characters) {
        bool any = false;
        for (int i = 0; i < np; i++) any |= in_set(o->characters, o->n_characters, gi->players[players[i]].character);
        if (!any) skip = CPHIL_DS_SKIP_CHARACTER;
    }
    /* controlled ports */
    int ctl[CPHIL_SLP_PORTS], nctl = 0;
    if (!skip) {
        if (o->n_train_characters) {
            for (int i = 0; i < np; i++)
                if (in_set(o->train_characters, o->n_train_characters, gi->players[players[i]].character))
                    ctl[nctl++] = players[i];
            if (!nctl) skip = CPHIL_DS_SKIP_CHARACTER;
        } else if (o->dual_port) {
            for (int i = 0; i < np; i++) ctl[nctl++] = players[i];
        } else if (o->player > 0) {
            if (gi->players[o->player - 1].type == 3) skip = CPHIL_DS_SKIP_PORT;
            else ctl[nctl++] = o->player - 1;
        } else {
            ctl[nctl++] = players[0];
        }
    }
    int32_t first_kept = CPHIL_DS_FIRST_FRAME > r->first_frame ? CPHIL_DS_FIRST_FRAME : r->first_frame;
    uint32_t row0 = (uint32_t)(first_kept - r->first_frame);
    uint32_t rows = r->n_frames > row0 ? r->n_frames - row0 : 0;
    if (!skip && rows < 2) skip = CPHIL_DS_SKIP_EMPTY;
    if (skip) {
        j->skip = skip;
        cphil_replay_free(r);
        return CPHIL_OK;
    }
    size_t total = (size_t)rows * (size_t)nctl;
    j->cont = cphil_alloc(total * (size_t)c->L.n_cont * sizeof(float) + 64);
    j->ids = cphil_alloc(total * (size_t)c->L.n_ids * sizeof(int16_t) + 64);
    j->tg = cphil_alloc(total * sizeof(cphil_ds_target) + 64);
    if (!j->cont || !j->ids || !j->tg) {
        cphil_replay_free(r);
        return cphil_err(CPHIL_E_NOMEM, "dataset: out of memory embedding %s", j->rel);
    }
    size_t row = 0;
    cphil_frame f;
    for (int k = 0; k < nctl; k++) {
        cphil_embed_game g;
        if (cphil_embed_game_init(&g, r, ctl[k], -1) != CPHIL_OK) continue;
        job_entry *e = &j->ent[j->n_entries++];
        e->n_rows = rows;
        e->first_frame = first_kept;
        e->port = (uint8_t)ctl[k];
        e->opp = g.opp >= 0 ? (uint8_t)g.opp : 255;
        e->char_ext = gi->players[ctl[k]].character;
        e->opp_char_ext = g.opp >= 0 ? gi->players[g.opp].character : 255;
        for (uint32_t i = 0; i < rows; i++, row++) {
            cphil_replay_get_frame(r, row0 + i, &f);
            int32_t ids[CPHIL_EMBED_MAX_IDS];
            cphil_embed_frame(&c->L, &g, &f, j->cont + row * (size_t)c->L.n_cont, ids);
            for (int q = 0; q < c->L.n_ids; q++) j->ids[row * (size_t)c->L.n_ids + q] = (int16_t)ids[q];
            cphil_ds_target *t = &j->tg[row];
            memset(t, 0, sizeof *t);
            const cphil_char_frame *cf = &f.ports[ctl[k]][0];
            if (cf->present & CPHIL_PRESENT_PRE) {
                cphil_controller ctl_in = {cf->pre.joystick_x, cf->pre.joystick_y, cf->pre.cstick_x,
                                           cf->pre.cstick_y, cf->pre.trigger_l, cf->pre.trigger_r,
                                           cf->pre.buttons_physical};
                cphil_target tt;
                cphil_controller_encode(&ctl_in, &tt);
                for (int b = 0; b < CPHIL_N_BUTTONS; b++) t->buttons |= (uint8_t)(tt.buttons[b] << b);
                memcpy(t->cls, tt.cls, CPHIL_N_AXES);
                t->flags = 1;
            } else {
                t->cls[0] = t->cls[1] = t->cls[2] = t->cls[3] = CPHIL_STICK_NEUTRAL;
            }
        }
    }
    j->rows = row;
    cphil_replay_free(r);
    return CPHIL_OK;
}

static void *worker(void *arg) {
    build_ctx *c = arg;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        if (c->stop || c->next >= c->n_jobs || c->fatal) {
            pthread_mutex_unlock(&c->mu);
            return NULL;
        }
        size_t i = c->next++;
        pthread_mutex_unlock(&c->mu);
        file_job *j = &c->jobs[i];
        cphil_status s = process(c, j);
        pthread_mutex_lock(&c->mu);
        j->processed = 1;
        c->done++;
        c->frames_done += j->rows;
        if (s != CPHIL_OK && !c->fatal) {
            c->fatal = s;
            snprintf(c->fatal_msg, sizeof c->fatal_msg, "%s", cphil_last_error());
        }
        if (c->o->max_files > 0 && j->skip == CPHIL_DS_USED) {
            bool seen = false;
            for (size_t k = 0; k < c->n_pass; k++) seen |= c->pass_hashes[k] == j->hash;
            if (!seen && c->n_pass < c->cap_pass) c->pass_hashes[c->n_pass++] = j->hash;
            if (c->n_pass >= (size_t)c->o->max_files) c->stop = true;
        }
        pthread_mutex_unlock(&c->mu);
    }
}

/* ---- split ------------------------------------------------------------------------------ */
typedef struct split_key {
    uint64_t key;
    size_t job;
} split_key;
static int cmp_split(const void *a, const void *b) {
    const split_key *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->job < y->job ? -1 : (x->job > y->job);
}
static uint64_t mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* ---- write ------------------------------------------------------------------------------ */
static uint64_t align64(uint64_t x) { return (x + 63) & ~(uint64_t)63; }
static const uint8_t zeros[64];

typedef struct writer {
    cphil_atomic_file af;
    cphil_ds_hasher hs;
    bool hashing;
    uint64_t pos;
    cphil_status s;
} writer;

static void wr(writer *w, const void *d, size_t n) {
    if (w->s || !n) return;
    if (w->hashing) cphil_ds_hash_update(&w->hs, d, n);
    else w->s = cphil_atomic_write(&w->af, d, n);
    w->pos += n;
}
static void wr_pad(writer *w) {
    uint64_t t = align64(w->pos);
    wr(w, zeros, (size_t)(t - w->pos));
}

/* The body after the header, either hashed or written (the same bytes twice). */
static void body(writer *w, const build_ctx *c, const size_t *order, size_t n_used,
                 const cphil_ds_entry *entries, uint32_t n_entries, const char *strings, size_t ssize) {
    wr(w, entries, n_entries * sizeof(cphil_ds_entry));
    wr_pad(w);
    wr(w, strings, ssize);
    wr_pad(w);
    for (size_t u = 0; u < n_used; u++) {
        const file_job *j = &c->jobs[order[u]];
        wr(w, j->cont, (size_t)j->rows * (size_t)c->L.n_cont * sizeof(float));
    }
    wr_pad(w);
    for (size_t u = 0; u < n_used; u++) {
        const file_job *j = &c->jobs[order[u]];
        wr(w, j->ids, (size_t)j->rows * (size_t)c->L.n_ids * sizeof(int16_t));
    }
    wr_pad(w);
    for (size_t u = 0; u < n_used; u++) {
        const file_job *j = &c->jobs[order[u]];
        wr(w, j->tg, (size_t)j->rows * sizeof(cphil_ds_target));
    }
    wr_pad(w);
}

cphil_status cphil_dataset_build(const cphil_ds_build_opts *o, cphil_ds_build_report *rep) {
    memset(rep, 0, sizeof *rep);
    if (!o->replays_dir || !o->out_path) return cphil_err(CPHIL_E_ARG, "dataset: --replays and --out are required");
    if (!(o->val_split >= 0.0 && o->val_split < 1.0))
        return cphil_err(CPHIL_E_ARG, "dataset: --val-split %g is not in [0, 1)", o->val_split);
    double t0 = cphil_now_sec();
    name_list names = {0};
    cphil_status s = walk(o->replays_dir, "", &names, 0);
    if (s) {
        for (size_t i = 0; i < names.n; i++) cphil_free(names.v[i]);
        cphil_free(names.v);
        return s;
    }
    if (names.n) qsort(names.v, names.n, sizeof(char *), cmp_str);
    build_ctx c;
    memset(&c, 0, sizeof c);
    c.o = o;
    cphil_embed_layout_init(&c.L, &o->embed);
    c.n_jobs = names.n;
    c.jobs = cphil_calloc(names.n ? names.n : 1, sizeof(file_job));
    c.cap_pass = names.n ? names.n : 1;
    c.pass_hashes = cphil_calloc(c.cap_pass, sizeof(uint64_t));
    size_t *order = cphil_calloc(names.n ? names.n : 1, sizeof(size_t));
    split_key *keys = cphil_calloc(names.n ? names.n : 1, sizeof(split_key));
    cphil_ds_entry *entries = NULL;
    char *strings = NULL;
    if (!c.jobs || !c.pass_hashes || !order || !keys) {
        s = cphil_err(CPHIL_E_NOMEM, "dataset: out of memory");
        goto done;
    }
    for (size_t i = 0; i < names.n; i++) {
        c.jobs[i].rel = names.v[i];
        names.v[i] = NULL;
    }
    pthread_mutex_init(&c.mu, NULL);
    int nt = o->jobs > 0 ? o->jobs : 1;
    if (nt > 64) nt = 64;
    pthread_t th[64];
    int started = 0;
    for (int t = 0; t < nt; t++)
        if (pthread_create(&th[t], NULL, worker, &c) == 0) started++;
    cphil_progress pr;
    cphil_progress_begin(&pr, "dataset", c.n_jobs, o->quiet);
    if (!started) worker(&c);
    for (;;) {
        pthread_mutex_lock(&c.mu);
        size_t done = c.done, claimed = c.next;
        bool fin = (c.stop || c.fatal || c.next >= c.n_jobs) && done == claimed;
        uint64_t fr = c.frames_done;
        pthread_mutex_unlock(&c.mu);
        char extra[64];
        snprintf(extra, sizeof extra, "%llu frames", (unsigned long long)fr);
        cphil_progress_update(&pr, done, extra);
        if (fin) break;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    cphil_progress_end(&pr);
    pthread_mutex_destroy(&c.mu);
    if (c.fatal) {
        s = cphil_err(c.fatal, "%s", c.fatal_msg);
        goto done;
    }

    /* fates in sorted order: duplicates, --max-files */
    size_t n_used = 0;
    rep->files_found = (uint32_t)c.n_jobs;
    for (size_t i = 0; i < c.n_jobs; i++) {
        file_job *j = &c.jobs[i];
        if (!j->processed) {
            j->skip = CPHIL_DS_SKIP_MAX_FILES;
            continue;
        }
        if (j->skip) continue;
        for (size_t u = 0; u < n_used; u++)
            if (c.jobs[order[u]].hash == j->hash) {
                j->skip = CPHIL_DS_SKIP_DUPLICATE;
                char m[600];
                snprintf(m, sizeof m, "same content as %s", c.jobs[order[u]].rel);
                set_msg(j, m);
                break;
            }
        if (j->skip) continue;
        if (o->max_files > 0 && n_used >= (size_t)o->max_files) {
            j->skip = CPHIL_DS_SKIP_MAX_FILES;
            continue;
        }
        order[n_used++] = i;
    }
    if (!n_used) {
        s = cphil_err(CPHIL_E_ARG, "dataset: no usable replay in %s (%u files found; see the skip reasons)",
                      o->replays_dir, rep->files_found);
        goto report;
    }
    /* split: the round(n * val_split) files with the smallest mix(hash ^ seed) are validation */
    size_t n_val = (size_t)(o->val_split * (double)n_used + 0.5);
    if (n_val >= n_used && o->val_split > 0) n_val = n_used - 1;
    for (size_t u = 0; u < n_used; u++) keys[u] = (split_key){mix64(c.jobs[order[u]].hash ^ mix64(o->seed)), order[u]};
    qsort(keys, n_used, sizeof *keys, cmp_split);
    uint8_t *is_val = cphil_calloc(c.n_jobs, 1);
    if (!is_val) {
        s = cphil_err(CPHIL_E_NOMEM, "dataset: out of memory");
        goto report;
    }
    for (size_t v = 0; v < n_val; v++) is_val[keys[v].job] = 1;

    /* entries and strings */
    uint32_t n_entries = 0;
    size_t ssize = 0;
    uint64_t n_rows = 0;
    for (size_t u = 0; u < n_used; u++) {
        n_entries += (uint32_t)c.jobs[order[u]].n_entries;
        ssize += strlen(c.jobs[order[u]].rel) + 1;
    }
    entries = cphil_calloc(n_entries ? n_entries : 1, sizeof(cphil_ds_entry));
    strings = cphil_alloc(ssize + 1);
    if (!entries || !strings) {
        cphil_free(is_val);
        s = cphil_err(CPHIL_E_NOMEM, "dataset: out of memory");
        goto report;
    }
    uint32_t ei = 0;
    size_t so = 0;
    for (size_t u = 0; u < n_used; u++) {
        file_job *j = &c.jobs[order[u]];
        size_t len = strlen(j->rel) + 1;
        memcpy(strings + so, j->rel, len);
        for (int k = 0; k < j->n_entries; k++) {
            cphil_ds_entry *e = &entries[ei++];
            e->row_start = n_rows;
            e->n_rows = j->ent[k].n_rows;
            e->first_frame = j->ent[k].first_frame;
            e->content_hash = j->hash;
            e->name_offset = (uint32_t)so;
            e->stage = j->stage;
            e->port = j->ent[k].port;
            e->opp = j->ent[k].opp;
            e->char_ext = j->ent[k].char_ext;
            e->opp_char_ext = j->ent[k].opp_char_ext;
            e->is_val = is_val[order[u]];
            n_rows += e->n_rows;
            rep->char_entries[e->char_ext < 63 ? e->char_ext : 63]++;
            if (e->is_val) rep->val_rows += e->n_rows;
            else rep->train_rows += e->n_rows;
        }
        rep->stage_files[j->stage < 63 ? j->stage : 63]++;
        for (uint64_t r = 0; r < j->rows; r++)
            for (int b = 0; b < CPHIL_N_BUTTONS; b++) rep->button_presses[b] += (j->tg[r].buttons >> b) & 1;
        so += len;
    }
    cphil_free(is_val);
    rep->files_used = (uint32_t)n_used;
    rep->entries = n_entries;
    rep->rows = n_rows;
    rep->val_files = (uint32_t)n_val;

    /* header: offsets first (a dry pass), then the checksum (a hashing pass), then the write */
    cphil_ds_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CPHIL_DS_MAGIC, 8);
    h.format_version = CPHIL_DS_FORMAT_VERSION;
    h.header_size = CPHIL_DS_HEADER_SIZE;
    h.layout_hash = c.L.hash;
    h.layout_version = CPHIL_EMBED_LAYOUT_VERSION;
    h.n_cont = (uint32_t)c.L.n_cont;
    h.n_ids = (uint32_t)c.L.n_ids;
    h.E = (uint32_t)c.L.E;
    h.flags = o->embed.prev_action ? 1u : 0u;
    h.n_entries = n_entries;
    h.n_rows = n_rows;
    uint64_t pos = CPHIL_DS_HEADER_SIZE;
    h.off_entries = pos;
    pos = align64(pos + n_entries * sizeof(cphil_ds_entry));
    h.off_strings = pos;
    h.size_strings = ssize;
    pos = align64(pos + ssize);
    h.off_cont = pos;
    pos = align64(pos + n_rows * h.n_cont * sizeof(float));
    h.off_ids = pos;
    pos = align64(pos + n_rows * h.n_ids * sizeof(int16_t));
    h.off_targets = pos;
    pos = align64(pos + n_rows * sizeof(cphil_ds_target));
    h.file_size = pos;
    h.n_files = (uint32_t)n_used;
    h.n_val_files = (uint32_t)n_val;
    h.val_split = o->val_split;
    h.split_seed = o->seed;
    h.first_frame_kept = CPHIL_DS_FIRST_FRAME;
    writer w;
    memset(&w, 0, sizeof w);
    w.hashing = true;
    cphil_ds_hash_init(&w.hs);
    w.pos = CPHIL_DS_HEADER_SIZE;
    body(&w, &c, order, n_used, entries, n_entries, strings, ssize);
    if (w.pos != h.file_size) {
        s = cphil_err(CPHIL_E_INTERNAL, "dataset: layout arithmetic mismatch (%llu vs %llu)",
                      (unsigned long long)w.pos, (unsigned long long)h.file_size);
        goto report;
    }
    h.checksum = cphil_ds_hash_final(&w.hs);
    memset(&w, 0, sizeof w);
    s = cphil_atomic_open(&w.af, o->out_path);
    if (s) goto report;
    wr(&w, &h, sizeof h);
    body(&w, &c, order, n_used, entries, n_entries, strings, ssize);
    if (w.s) {
        s = w.s;
        cphil_atomic_abort(&w.af);
        goto report;
    }
    s = cphil_atomic_commit(&w.af);
    rep->bytes_written = h.file_size;

report:
    rep->files = cphil_calloc(c.n_jobs ? c.n_jobs : 1, sizeof(cphil_ds_file_report));
    if (rep->files) {
        for (size_t i = 0; i < c.n_jobs; i++) {
            file_job *j = &c.jobs[i];
            rep->files[i].path = j->rel;
            rep->files[i].skip = j->skip;
            rep->files[i].message = j->msg;
            j->rel = NULL;
            j->msg = NULL;
        }
    }
    for (size_t i = 0; i < c.n_jobs; i++) rep->skipped[c.jobs[i].skip]++;
    rep->seconds = cphil_now_sec() - t0;
done:
    for (size_t i = 0; c.jobs && i < c.n_jobs; i++) {
        cphil_free(c.jobs[i].rel);
        cphil_free(c.jobs[i].msg);
        cphil_free(c.jobs[i].cont);
        cphil_free(c.jobs[i].ids);
        cphil_free(c.jobs[i].tg);
    }
    for (size_t i = 0; i < names.n; i++) cphil_free(names.v[i]);
    cphil_free(names.v);
    cphil_free(c.jobs);
    cphil_free(c.pass_hashes);
    cphil_free(order);
    cphil_free(keys);
    cphil_free(entries);
    cphil_free(strings);
    return s;
}

void cphil_ds_build_report_free(cphil_ds_build_report *rep) {
    if (!rep) return;
    if (rep->files)
        for (uint32_t i = 0; i < rep->files_found; i++) {
            cphil_free(rep->files[i].path);
            cphil_free(rep->files[i].message);
        }
    cphil_free(rep->files);
    memset(rep, 0, sizeof *rep);
}
