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
#include <unistd.h>

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

/* Folders already walked, by (device, inode): each is listed once, so symlinks that point back
 * up the tree (two links to the folder itself gave 2^33 paths at depth 32) cost nothing. */
typedef struct seen_dirs {
    struct { dev_t dev; ino_t ino; } *v;
    size_t n, cap;
} seen_dirs;

/* true if (dev, ino) was new and is now recorded; false if seen before or out of memory (*oom) */
static bool seen_add(seen_dirs *s, const struct stat *st, bool *oom) {
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].dev == st->st_dev && s->v[i].ino == st->st_ino) return false;
    if (s->n == s->cap) {
        size_t nc = s->cap ? 2 * s->cap : 64;
        void *nv = cphil_realloc(s->v, s->cap * sizeof *s->v, nc * sizeof *s->v);
        if (!nv) {
            *oom = true;
            return false;
        }
        s->v = nv;
        s->cap = nc;
    }
    s->v[s->n].dev = st->st_dev;
    s->v[s->n].ino = st->st_ino;
    s->n++;
    return true;
}

static cphil_status walk(const char *root, const char *rel, name_list *out, int depth, seen_dirs *seen) {
    if (depth > 32) return CPHIL_OK;
    char path[4096];
    snprintf(path, sizeof path, "%s%s%s", root, rel[0] ? "/" : "", rel);
    struct stat ds;
    bool oom = false;
    if (stat(path, &ds) == 0 && !seen_add(seen, &ds, &oom))
        return oom ? cphil_err(CPHIL_E_NOMEM, "%s: out of memory listing folders", root) : CPHIL_OK;
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
        if (S_ISDIR(st.st_mode)) s = walk(root, sub, out, depth + 1, seen);
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
    pthread_cond_t cv;       /* a job finished, or the writer moved on */
    size_t next;             /* next file index to claim */
    size_t written;          /* files [0, written) are committed by the writer */
    size_t window;           /* claim at most this far ahead of `written` (bounds memory) */
    size_t done;
    uint64_t frames_done;
    bool stop;               /* --max-files reached: claim nothing more */
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
    const uint8_t *data = NULL;
    size_t size = 0;
    /* mapped: a file that is not a replay is refused after its first bytes, before the hash */
    cphil_status s = cphil_file_map(full, (size_t)1 << 31, &data, &size);
    if (s != CPHIL_OK) {
        if (s == CPHIL_E_NOMEM) return s;
        j->skip = CPHIL_DS_SKIP_DAMAGED;
        set_msg(j, cphil_last_error());
        return CPHIL_OK;
    }
    cphil_replay *r = NULL;
    s = cphil_slp_read_mem(data, size, j->rel, &r);
    if (s == CPHIL_OK) j->hash = content_hash(data, size);
    cphil_file_unmap(data, size);
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
    if (r->damaged) set_msg(j, r->warning); /* used, with the frames before the damage */
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
        while (!c->stop && !c->fatal && c->next < c->n_jobs && c->next >= c->written + c->window)
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->stop || c->fatal || c->next >= c->n_jobs) {
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
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
    }
}

static void free_rows(file_job *j) {
    cphil_free(j->cont);
    cphil_free(j->ids);
    cphil_free(j->tg);
    j->cont = NULL;
    j->ids = NULL;
    j->tg = NULL;
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
/* The file is written in one pass, in this order: header (rewritten at the end), cont rows
 * (streamed as files are committed in path order), ids and targets (streamed into two unlinked
 * scratch files beside the output, then appended), entries, strings. Only the files in flight
 * are in memory, so the size of a dataset is bounded by the disk, not by RAM. */
static uint64_t align64(uint64_t x) { return (x + 63) & ~(uint64_t)63; }
static const uint8_t zeros[64];

typedef struct out_stream {
    FILE *f;
    cphil_ds_hasher *hs; /* NULL: not hashed (scratch files are hashed when appended) */
    uint64_t pos;
    const char *path;
    cphil_status s;
} out_stream;

static void put(out_stream *w, const void *d, size_t n) {
    if (w->s || !n) return;
    if (fwrite(d, 1, n, w->f) != n) {
        w->s = cphil_err(CPHIL_E_IO, "%s: write failed (disk full?)", w->path);
        return;
    }
    if (w->hs) cphil_ds_hash_update(w->hs, d, n);
    w->pos += n;
}
static void put_pad(out_stream *w) { put(w, zeros, (size_t)(align64(w->pos) - w->pos)); }

/* Append scratch file `src` (its `n` bytes) to w. */
static void append(out_stream *w, FILE *src, uint64_t n, uint8_t *buf, size_t cap) {
    if (w->s) return;
    if (fflush(src) != 0 || fseek(src, 0, SEEK_SET) != 0) {
        w->s = cphil_err(CPHIL_E_IO, "%s: scratch file unreadable", w->path);
        return;
    }
    while (n && !w->s) {
        size_t k = n < cap ? (size_t)n : cap;
        if (fread(buf, 1, k, src) != k) {
            w->s = cphil_err(CPHIL_E_IO, "%s: scratch file read failed", w->path);
            return;
        }
        put(w, buf, k);
        n -= k;
    }
}

static FILE *scratch(const char *out, const char *tag) {
    char p[4200];
    snprintf(p, sizeof p, "%s.%s.tmp.%ld", out, tag, (long)getpid());
    FILE *f = fopen(p, "w+b");
    if (f) remove(p); /* unlinked: vanishes with the process */
    return f;
}

typedef struct grow {
    void *p;
    size_t n, cap, elem;
} grow;
static void *grow_push(grow *g) {
    if (g->n == g->cap) {
        size_t nc = g->cap ? g->cap * 2 : 256;
        void *np = cphil_realloc(g->p, g->cap * g->elem, nc * g->elem);
        if (!np) return NULL;
        g->p = np;
        g->cap = nc;
    }
    return (uint8_t *)g->p + g->elem * g->n++;
}

cphil_status cphil_dataset_build(const cphil_ds_build_opts *o, cphil_ds_build_report *rep) {
    memset(rep, 0, sizeof *rep);
    if (!o->replays_dir || !o->out_path) return cphil_err(CPHIL_E_ARG, "dataset: --replays and --out are required");
    if (!(o->val_split >= 0.0 && o->val_split < 1.0))
        return cphil_err(CPHIL_E_ARG, "dataset: --val-split %g is not in [0, 1)", o->val_split);
    double t0 = cphil_now_sec();
    name_list names = {0};
    seen_dirs seen = {0};
    cphil_status s = walk(o->replays_dir, "", &names, 0, &seen);
    cphil_free(seen.v);
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
    int nt = o->jobs > 0 ? o->jobs : 1;
    if (nt > 64) nt = 64;
    c.window = (size_t)nt * 4;
    c.jobs = cphil_calloc(names.n ? names.n : 1, sizeof(file_job));
    grow used = {NULL, 0, 0, sizeof(size_t)};           /* job index of each used file */
    grow ents = {NULL, 0, 0, sizeof(cphil_ds_entry)};
    grow strs = {NULL, 0, 0, 1};
    split_key *keys = NULL;
    FILE *f_ids = NULL, *f_tg = NULL;
    uint8_t *buf = NULL;
    size_t bufcap = (size_t)1 << 20;
    cphil_atomic_file af;
    memset(&af, 0, sizeof af);
    bool threads_up = false;
    pthread_t th[64];
    int started = 0;
    cphil_ds_hasher hs;
    cphil_ds_hash_init(&hs);
    if (!c.jobs) {
        s = cphil_err(CPHIL_E_NOMEM, "dataset: out of memory");
        goto done;
    }
    for (size_t i = 0; i < names.n; i++) {
        c.jobs[i].rel = names.v[i];
        names.v[i] = NULL;
    }
    rep->files_found = (uint32_t)c.n_jobs;
    if ((s = cphil_atomic_open(&af, o->out_path)) != CPHIL_OK) goto done;
    f_ids = scratch(o->out_path, "ids");
    f_tg = scratch(o->out_path, "tg");
    buf = cphil_alloc(bufcap);
    if (!f_ids || !f_tg || !buf) {
        s = cphil_err(CPHIL_E_IO, "%s: cannot create scratch files beside the output", o->out_path);
        goto done;
    }
    out_stream w = {af.f, &hs, 0, o->out_path, CPHIL_OK};
    out_stream wi = {f_ids, NULL, 0, o->out_path, CPHIL_OK}, wt = {f_tg, NULL, 0, o->out_path, CPHIL_OK};
    {
        cphil_ds_header blank;
        memset(&blank, 0, sizeof blank);
        out_stream w0 = {af.f, NULL, 0, o->out_path, CPHIL_OK}; /* the header is not hashed */
        put(&w0, &blank, sizeof blank);
        if ((s = w0.s)) goto done;
        w.pos = CPHIL_DS_HEADER_SIZE;
    }

    pthread_mutex_init(&c.mu, NULL);
    pthread_cond_init(&c.cv, NULL);
    threads_up = true;
    for (int t = 0; t < nt; t++)
        if (pthread_create(&th[t], NULL, worker, &c) == 0) started++;
    cphil_progress pr;
    cphil_progress_begin(&pr, "dataset", c.n_jobs, o->quiet);
    if (!started) {
        c.window = c.n_jobs + 1;
        worker(&c);
    }
    uint64_t n_rows = 0;
    /* the writer: commit files in path order as they finish */
    for (size_t i = 0; i < c.n_jobs; i++) {
        pthread_mutex_lock(&c.mu);
        while (!c.jobs[i].processed && !c.fatal && !(c.stop && i >= c.next)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 50 * 1000 * 1000;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&c.cv, &c.mu, &ts);
            char extra[64];
            snprintf(extra, sizeof extra, "%llu frames", (unsigned long long)c.frames_done);
            cphil_progress_update(&pr, c.done, extra);
        }
        bool fatal = c.fatal != CPHIL_OK;
        pthread_mutex_unlock(&c.mu);
        if (fatal) break;
        file_job *j = &c.jobs[i];
        if (!j->processed) j->skip = CPHIL_DS_SKIP_MAX_FILES;
        if (!j->skip)
            for (size_t u = 0; u < used.n; u++) {
                const file_job *k = &c.jobs[((size_t *)used.p)[u]];
                if (k->hash == j->hash) {
                    j->skip = CPHIL_DS_SKIP_DUPLICATE;
                    char m[600];
                    snprintf(m, sizeof m, "same content as %s", k->rel);
                    set_msg(j, m);
                    break;
                }
            }
        if (!j->skip && o->max_files > 0 && used.n >= (size_t)o->max_files) j->skip = CPHIL_DS_SKIP_MAX_FILES;
        if (!j->skip) {
            size_t *u = grow_push(&used);
            size_t so = strs.n, len = strlen(j->rel) + 1;
            bool ok = u != NULL;
            for (size_t b = 0; ok && b < len; b++) {
                char *ch = grow_push(&strs);
                if (ch) *ch = j->rel[b];
                else ok = false;
            }
            for (int k = 0; ok && k < j->n_entries; k++) {
                cphil_ds_entry *e = grow_push(&ents);
                if (!e) {
                    ok = false;
                    break;
                }
                memset(e, 0, sizeof *e);
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
                n_rows += e->n_rows;
                rep->char_entries[e->char_ext < 63 ? e->char_ext : 63]++;
            }
            if (!ok) {
                s = cphil_err(CPHIL_E_NOMEM, "dataset: out of memory");
                break;
            }
            *u = i;
            rep->stage_files[j->stage < 63 ? j->stage : 63]++;
            for (uint64_t r = 0; r < j->rows; r++)
                for (int b = 0; b < CPHIL_N_BUTTONS; b++) rep->button_presses[b] += (j->tg[r].buttons >> b) & 1;
            put(&w, j->cont, (size_t)j->rows * (size_t)c.L.n_cont * sizeof(float));
            put(&wi, j->ids, (size_t)j->rows * (size_t)c.L.n_ids * sizeof(int16_t));
            put(&wt, j->tg, (size_t)j->rows * sizeof(cphil_ds_target));
            if ((s = w.s ? w.s : wi.s ? wi.s : wt.s)) break;
        }
        free_rows(j);
        pthread_mutex_lock(&c.mu);
        c.written = i + 1;
        if (o->max_files > 0 && used.n >= (size_t)o->max_files) c.stop = true;
        pthread_cond_broadcast(&c.cv);
        pthread_mutex_unlock(&c.mu);
    }
    pthread_mutex_lock(&c.mu);
    c.stop = true;
    if (s && !c.fatal) c.fatal = s;
    pthread_cond_broadcast(&c.cv);
    pthread_mutex_unlock(&c.mu);
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    started = 0;
    cphil_progress_end(&pr);
    if (!s && c.fatal) s = cphil_err(c.fatal, "%s", c.fatal_msg);
    if (s) goto report;
    size_t n_used = used.n;
    if (!n_used) {
        s = rep->files_found
                ? cphil_err(CPHIL_E_ARG, "dataset: no usable replay in %s (%u .slp files found, all skipped; see the "
                            "skip reasons)", o->replays_dir, rep->files_found)
                : cphil_err(CPHIL_E_ARG, "dataset: no .slp replay in %s or its subfolders (point --replays at a "
                            "folder of Slippi replays, or make some with cphil synth)", o->replays_dir);
        goto report;
    }
    /* split: the round(n * val_split) files with the smallest mix(hash ^ seed) are validation */
    size_t n_val = (size_t)(o->val_split * (double)n_used + 0.5);
    if (n_val >= n_used && o->val_split > 0) n_val = n_used - 1;
    keys = cphil_calloc(n_used, sizeof(split_key));
    if (!keys) {
        s = cphil_err(CPHIL_E_NOMEM, "dataset: out of memory");
        goto report;
    }
    for (size_t u = 0; u < n_used; u++) {
        size_t ji = ((size_t *)used.p)[u];
        keys[u] = (split_key){mix64(c.jobs[ji].hash ^ mix64(o->seed)), ji};
    }
    qsort(keys, n_used, sizeof *keys, cmp_split);
    cphil_ds_entry *E = ents.p;
    for (size_t e = 0; e < ents.n; e++) {
        for (size_t v = 0; v < n_val; v++)
            if (c.jobs[keys[v].job].hash == E[e].content_hash) E[e].is_val = 1;
        if (E[e].is_val) rep->val_rows += E[e].n_rows;
        else rep->train_rows += E[e].n_rows;
    }
    rep->files_used = (uint32_t)n_used;
    rep->entries = (uint32_t)ents.n;
    rep->rows = n_rows;
    rep->val_files = (uint32_t)n_val;

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
    h.n_entries = (uint32_t)ents.n;
    h.n_rows = n_rows;
    h.off_cont = CPHIL_DS_HEADER_SIZE;
    put_pad(&w);
    h.off_ids = w.pos;
    append(&w, f_ids, wi.pos, buf, bufcap);
    put_pad(&w);
    h.off_targets = w.pos;
    append(&w, f_tg, wt.pos, buf, bufcap);
    put_pad(&w);
    h.off_entries = w.pos;
    put(&w, ents.p, ents.n * sizeof(cphil_ds_entry));
    put_pad(&w);
    h.off_strings = w.pos;
    h.size_strings = strs.n;
    put(&w, strs.p, strs.n);
    put_pad(&w);
    h.file_size = w.pos;
    h.checksum = cphil_ds_hash_final(&hs);
    h.n_files = (uint32_t)n_used;
    h.n_val_files = (uint32_t)n_val;
    h.val_split = o->val_split;
    h.split_seed = o->seed;
    h.first_frame_kept = CPHIL_DS_FIRST_FRAME;
    if ((s = w.s)) goto report;
    if (fseek(af.f, 0, SEEK_SET) != 0 || fwrite(&h, sizeof h, 1, af.f) != 1) {
        s = cphil_err(CPHIL_E_IO, "%s: cannot write the header", o->out_path);
        goto report;
    }
    s = cphil_atomic_commit(&af);
    if (s == CPHIL_OK) rep->bytes_written = h.file_size;

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
    for (size_t i = 0; i < c.n_jobs; i++) {
        rep->skipped[c.jobs[i].skip]++;
        if (c.jobs[i].skip == CPHIL_DS_USED && rep->files && rep->files[i].message) rep->damaged_kept++;
    }
    rep->seconds = cphil_now_sec() - t0;
done:
    if (started) { /* an early failure with threads running */
        pthread_mutex_lock(&c.mu);
        c.stop = true;
        pthread_cond_broadcast(&c.cv);
        pthread_mutex_unlock(&c.mu);
        for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    }
    if (threads_up) {
        pthread_mutex_destroy(&c.mu);
        pthread_cond_destroy(&c.cv);
    }
    if (af.f) cphil_atomic_abort(&af);
    if (f_ids) fclose(f_ids);
    if (f_tg) fclose(f_tg);
    for (size_t i = 0; c.jobs && i < c.n_jobs; i++) {
        cphil_free(c.jobs[i].rel);
        cphil_free(c.jobs[i].msg);
        free_rows(&c.jobs[i]);
    }
    for (size_t i = 0; i < names.n; i++) cphil_free(names.v[i]);
    cphil_free(names.v);
    cphil_free(c.jobs);
    cphil_free(used.p);
    cphil_free(ents.p);
    cphil_free(strs.p);
    cphil_free(keys);
    cphil_free(buf);
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
