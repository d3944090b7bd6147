/* test_data.c — dataset cache and batcher: damaged replays skipped with their reason, filters
 * and the split deterministic, rows equal to the agent's streamed embedding, targets, the cache
 * checks (checksum, truncation), windows and TBPTT streams (never crossing entries, every pair
 * once, no allocation per batch). Uses a few small replays so the sanitizer build stays fast. */
#include "harness.h"

#include "core/core.h"
#include "data/dataset.h"
#include "kernels/cpu/kernels.h"
#include "game/synth.h"

#include <stdio.h>

static char g_dir[512];  /* the test folder of replays */
static bool g_real;      /* built from the shared replays (else from synthetic games only) */

static void copy_file(const char *from, const char *to) {
    uint8_t *d = NULL;
    size_t n = 0;
    CPHIL_ASSERT(cphil_file_read(from, (size_t)1 << 30, &d, &n) == CPHIL_OK);
    CPHIL_ASSERT(cphil_file_write_atomic(to, d, n) == CPHIL_OK);
    cphil_free(d);
}

static void write_synth(uint64_t seed, int index, const char *to, bool teams, size_t keep) {
    cphil_synth_opts o = {seed, 1, 40};
    uint8_t *s = NULL;
    size_t sn = 0;
    CPHIL_ASSERT(cphil_synth_game(&o, index, &s, &sn, NULL) == CPHIL_OK);
    if (teams) {
        /* the raw array starts at byte 15 ({U\3raw[$U#l + length); its first event is Event
         * Payloads (0x35, size at [1]), then Game Start (0x36), whose byte 0x0D is "is teams" */
        uint8_t *raw = s + 15;
        CPHIL_ASSERT(raw[0] == 0x35);
        uint8_t *gs = raw + 1 + raw[1];
        CPHIL_ASSERT(gs[0] == 0x36);
        gs[0x0D] = 1;
    }
    CPHIL_ASSERT(cphil_file_write_atomic(to, s, keep && keep < sn ? keep : sn) == CPHIL_OK);
    cphil_free(s);
}

/* A folder of 9 files: game_a.slp and its duplicate sub/game_a_copy.slp, game_b.slp, a teams (or
 * doubles) game, a truncated replay, a non-replay and 3 synthetic games: 5 usable. With the shared
 * replays, game_a is Kirby v Mario, game_b a Fox ditto and doubles.slp a doubles game; without
 * them (a fresh clone), all are synthetic games (doubles.slp: a synthetic game marked as teams),
 * so the whole pipeline is tested either way. Built once. */
static const char *make_folder(void) {
    if (g_dir[0]) return g_dir;
    struct stat st;
    const char *R = harness_replays_dir();
    g_real = stat(R, &st) == 0 && S_ISDIR(st.st_mode);
    snprintf(g_dir, sizeof g_dir, "%s/data_replays", harness_tmpdir());
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s/sub'", g_dir, g_dir);
    CPHIL_ASSERT(system(cmd) == 0);
    char a[700], b[700];
    if (g_real) {
        snprintf(a, sizeof a, "%s/slippi-js/consistencyTest/KirbyVMario-nB.slp", R);
        snprintf(b, sizeof b, "%s/game_a.slp", g_dir);
        copy_file(a, b);
        snprintf(b, sizeof b, "%s/sub/game_a_copy.slp", g_dir); /* duplicate content */
        copy_file(a, b);
        snprintf(a, sizeof a, "%s/exphil/statestream/fox_ms_float.slp", R);
        snprintf(b, sizeof b, "%s/game_b.slp", g_dir);
        copy_file(a, b);
        snprintf(a, sizeof a, "%s/slippi-js/doubles.slp", R);
        snprintf(b, sizeof b, "%s/doubles.slp", g_dir);
        copy_file(a, b);
        /* damaged: the first 40 000 bytes of a replay */
        uint8_t *d = NULL;
        size_t n = 0;
        snprintf(a, sizeof a, "%s/exphil/statestream/fox_ms_frame1.slp", R);
        CPHIL_ASSERT(cphil_file_read(a, (size_t)1 << 30, &d, &n) == CPHIL_OK);
        snprintf(b, sizeof b, "%s/sub/truncated.slp", g_dir);
        CPHIL_ASSERT(cphil_file_write_atomic(b, d, 40000) == CPHIL_OK);
        cphil_free(d);
    } else {
        fprintf(stdout, "note: no shared replays at '%s': the dataset folder is synthetic games only\n", R);
        snprintf(b, sizeof b, "%s/game_a.slp", g_dir);
        write_synth(23, 0, b, false, 0);
        snprintf(b, sizeof b, "%s/sub/game_a_copy.slp", g_dir);
        write_synth(23, 0, b, false, 0);
        snprintf(b, sizeof b, "%s/game_b.slp", g_dir);
        write_synth(23, 1, b, false, 0);
        snprintf(b, sizeof b, "%s/doubles.slp", g_dir);
        write_synth(23, 2, b, true, 0);
        snprintf(b, sizeof b, "%s/sub/truncated.slp", g_dir);
        write_synth(23, 3, b, false, 40000);
    }
    snprintf(b, sizeof b, "%s/junk.slp", g_dir);
    CPHIL_ASSERT(cphil_file_write_atomic(b, "not a replay\n", 13) == CPHIL_OK);
    for (int i = 0; i < 3; i++) {
        snprintf(b, sizeof b, "%s/synth_%d.slp", g_dir, i);
        write_synth(11, i, b, false, 0);
    }
    return g_dir;
}

/* The five usable files and what their Game Start says (read here, apart from the builder). */
static const char *const g_used[5] = {"game_a.slp", "game_b.slp", "synth_0.slp", "synth_1.slp", "synth_2.slp"};
typedef struct game_head {
    int stage, chars[2];
} game_head;

static void read_heads(game_head *h) {
    for (int i = 0; i < 5; i++) {
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", make_folder(), g_used[i]);
        cphil_replay *r = NULL;
        CPHIL_ASSERT(cphil_slp_read_file(p, &r) == CPHIL_OK);
        h[i].stage = r->game.stage;
        int k = 0;
        for (int q = 0; q < CPHIL_SLP_PORTS && k < 2; q++)
            if (r->game.players[q].type != 3) h[i].chars[k++] = r->game.players[q].character;
        CPHIL_ASSERT(k == 2);
        cphil_replay_free(r);
    }
}

static cphil_status build(const char *out, cphil_ds_build_opts *o, cphil_ds_build_report *rep) {
    o->replays_dir = make_folder();
    static char path[600];
    snprintf(path, sizeof path, "%s/%s", harness_tmpdir(), out);
    o->out_path = path;
    o->quiet = true;
    return cphil_dataset_build(o, rep);
}

static const cphil_ds_file_report *find(const cphil_ds_build_report *rep, const char *path) {
    for (uint32_t i = 0; i < rep->files_found; i++)
        if (!strcmp(rep->files[i].path, path)) return &rep->files[i];
    return NULL;
}

TEST(build_skips_damaged_with_reason) {
    cphil_ds_build_opts o;
    cphil_ds_build_default_opts(&o);
    o.val_split = 0.0;
    cphil_ds_build_report rep;
    CHECK(build("all.ds", &o, &rep) == CPHIL_OK);
    CHECK_EQ_INT(rep.files_found, 9);
    CHECK_EQ_INT(rep.files_used, 5); /* game_a, game_b, 3 synth */
    const cphil_ds_file_report *f = find(&rep, "sub/truncated.slp");
    CHECK(f && f->skip == CPHIL_DS_SKIP_DAMAGED && f->message && strstr(f->message, "truncated.slp"));
    f = find(&rep, "junk.slp");
    CHECK(f && f->skip == CPHIL_DS_SKIP_DAMAGED && f->message && f->message[0]);
    f = find(&rep, "sub/game_a_copy.slp");
    CHECK(f && f->skip == CPHIL_DS_SKIP_DUPLICATE && strstr(f->message, "game_a.slp"));
    f = find(&rep, "doubles.slp");
    CHECK(f && f->skip == CPHIL_DS_SKIP_NOT_1V1);
    CHECK_EQ_INT(rep.skipped[CPHIL_DS_SKIP_DAMAGED], 2);
    CHECK(rep.rows > 3000);
    cphil_ds_build_report_free(&rep);
}

/* The same options give the same bytes; the split is by file, its size round(n * v), and it
 * depends on the seed only. */
TEST(build_deterministic_and_split) {
    cphil_ds_build_opts o;
    cphil_ds_build_default_opts(&o);
    o.val_split = 0.4;
    o.seed = 3;
    cphil_ds_build_report r1, r2;
    CHECK(build("s1.ds", &o, &r1) == CPHIL_OK);
    o.jobs = 1; /* thread count does not change the result */
    CHECK(build("s2.ds", &o, &r2) == CPHIL_OK);
    CHECK_EQ_INT(r1.val_files, 2); /* round(5 * 0.4) */
    char p1[600], p2[600];
    snprintf(p1, sizeof p1, "%s/s1.ds", harness_tmpdir());
    snprintf(p2, sizeof p2, "%s/s2.ds", harness_tmpdir());
    uint8_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    CHECK(cphil_file_read(p1, (size_t)1 << 30, &a, &na) == CPHIL_OK);
    CHECK(cphil_file_read(p2, (size_t)1 << 30, &b, &nb) == CPHIL_OK);
    CHECK(na == nb && !memcmp(a, b, na));
    cphil_free(a);
    cphil_free(b);
    cphil_dataset ds;
    CHECK(cphil_dataset_open(&ds, p1, true) == CPHIL_OK);
    uint32_t nval = 0;
    uint64_t vrows = 0;
    for (uint32_t i = 0; i < ds.h->n_entries; i++) {
        nval += ds.entries[i].is_val;
        if (ds.entries[i].is_val) vrows += ds.entries[i].n_rows;
    }
    CHECK_EQ_INT(nval, 2);
    CHECK_EQ_INT(vrows, r1.val_rows);
    /* other seeds pick other files at least once */
    uint64_t sig0 = 0;
    for (uint32_t i = 0; i < ds.h->n_entries; i++) sig0 |= (uint64_t)ds.entries[i].is_val << i;
    cphil_dataset_close(&ds);
    bool differs = false;
    for (uint64_t seed = 4; seed < 10 && !differs; seed++) {
        cphil_ds_build_report r3;
        o.seed = seed;
        CHECK(build("s3.ds", &o, &r3) == CPHIL_OK);
        snprintf(p2, sizeof p2, "%s/s3.ds", harness_tmpdir());
        CHECK(cphil_dataset_open(&ds, p2, true) == CPHIL_OK);
        uint64_t sig = 0;
        for (uint32_t i = 0; i < ds.h->n_entries; i++) sig |= (uint64_t)ds.entries[i].is_val << i;
        differs = sig != sig0;
        cphil_dataset_close(&ds);
        cphil_ds_build_report_free(&r3);
    }
    CHECK(differs);
    cphil_ds_build_report_free(&r1);
    cphil_ds_build_report_free(&r2);
}

/* Filters, with expectations from the files' own Game Start (read apart from the builder): with
 * the shared replays game_a is Kirby v Mario on Battlefield and game_b a Fox ditto. */
TEST(build_filters) {
    cphil_ds_build_opts o;
    cphil_ds_build_report rep;
    char p[600];
    cphil_dataset ds;
    game_head h[5];
    read_heads(h);
    if (g_real) CHECK(h[0].chars[0] == 4 && h[1].chars[0] == 2 && h[1].chars[1] == 2 && h[0].stage == 31);
    /* --character C (game_a's first player's character): the games where C plays */
    int c = h[0].chars[0], with_c = 0;
    for (int i = 0; i < 5; i++) with_c += h[i].chars[0] == c || h[i].chars[1] == c;
    cphil_ds_build_default_opts(&o);
    o.characters[o.n_characters++] = c;
    CHECK(build("f1.ds", &o, &rep) == CPHIL_OK);
    CHECK_EQ_INT(rep.files_used, with_c);
    CHECK_EQ_INT(rep.skipped[CPHIL_DS_SKIP_CHARACTER], 5 - with_c);
    if (g_real) CHECK_EQ_INT(with_c, 1); /* only the Kirby game */
    cphil_ds_build_report_free(&rep);
    /* --dual-port: two entries per game, ports 0 and 1, each the other's opponent */
    cphil_ds_build_default_opts(&o);
    o.dual_port = true;
    CHECK(build("f2.ds", &o, &rep) == CPHIL_OK);
    CHECK_EQ_INT(rep.entries, 10);
    snprintf(p, sizeof p, "%s/f2.ds", harness_tmpdir());
    CHECK(cphil_dataset_open(&ds, p, true) == CPHIL_OK);
    for (uint32_t i = 0; i + 1 < ds.h->n_entries; i += 2) {
        CHECK(ds.entries[i].name_offset == ds.entries[i + 1].name_offset);
        CHECK(ds.entries[i].port == ds.entries[i + 1].opp && ds.entries[i].opp == ds.entries[i + 1].port);
    }
    cphil_dataset_close(&ds);
    cphil_ds_build_report_free(&rep);
    /* --train-character C (game_b's first player's; Fox with the shared replays): one entry per
     * port playing C, other games none */
    int tc = h[1].chars[0], ports_c = 0;
    for (int i = 0; i < 5; i++) ports_c += (h[i].chars[0] == tc) + (h[i].chars[1] == tc);
    cphil_ds_build_default_opts(&o);
    o.train_characters[o.n_train_characters++] = tc;
    CHECK(build("f3.ds", &o, &rep) == CPHIL_OK);
    CHECK_EQ_INT(rep.entries, ports_c);
    CHECK(ports_c >= (g_real ? 2 : 1));
    CHECK_EQ_INT(rep.char_entries[tc], ports_c);
    cphil_ds_build_report_free(&rep);
    /* --player 2 and --max-files 2 (first two usable files in path order) */
    cphil_ds_build_default_opts(&o);
    o.player = 2;
    o.max_files = 2;
    CHECK(build("f4.ds", &o, &rep) == CPHIL_OK);
    CHECK_EQ_INT(rep.files_used, 2);
    snprintf(p, sizeof p, "%s/f4.ds", harness_tmpdir());
    CHECK(cphil_dataset_open(&ds, p, true) == CPHIL_OK);
    CHECK_STR(cphil_dataset_entry_name(&ds, 0), "game_a.slp");
    CHECK_STR(cphil_dataset_entry_name(&ds, 1), "game_b.slp");
    CHECK_EQ_INT(ds.entries[0].port, 1);
    cphil_dataset_close(&ds);
    cphil_ds_build_report_free(&rep);
    /* --stage S (game_a's; Battlefield with the shared replays): the games on S */
    int sg = h[0].stage, on_s = 0;
    for (int i = 0; i < 5; i++) on_s += h[i].stage == sg;
    cphil_ds_build_default_opts(&o);
    o.stages[o.n_stages++] = sg;
    CHECK(build("f5.ds", &o, &rep) == CPHIL_OK);
    CHECK_EQ_INT(rep.files_used, on_s);
    CHECK_EQ_INT(rep.stage_files[sg], on_s);
    for (int q = 0; q < 64; q++)
        if (q != sg) CHECK_EQ_INT(rep.stage_files[q], 0);
    cphil_ds_build_report_free(&rep);
}

/* The dataset rows of a replay equal the embedding of the same replay fed one piece at a time
 * through the incremental parser (the agent's path), and the targets encode the Pre-Frame. */
typedef struct sctx {
    const cphil_dataset *ds;
    const cphil_ds_entry *e;
    cphil_embed_game g;
    int ok, checked, self;
} sctx;

static void s_start(void *u, const cphil_replay *r) {
    sctx *c = u;
    if (cphil_embed_game_init(&c->g, r, c->self, -1) != CPHIL_OK) c->ok = 0;
}
static void s_frame(void *u, const cphil_replay *r, const cphil_frame *f) {
    (void)r;
    sctx *c = u;
    if (f->frame < c->e->first_frame) return;
    uint64_t row = c->e->row_start + (uint64_t)(f->frame - c->e->first_frame);
    float cont[CPHIL_EMBED_MAX_CONT], dc[CPHIL_EMBED_MAX_CONT];
    int32_t ids[CPHIL_EMBED_MAX_IDS], di[CPHIL_EMBED_MAX_IDS];
    cphil_embed_frame(&c->ds->layout, &c->g, f, cont, ids);
    cphil_target t, dt;
    cphil_dataset_row(c->ds, row, dc, di, &dt);
    const cphil_pre_frame *p = &f->ports[c->self][0].pre;
    cphil_controller in = {p->joystick_x, p->joystick_y, p->cstick_x, p->cstick_y, p->trigger_l, p->trigger_r,
                           p->buttons_physical};
    cphil_controller_encode(&in, &t);
    if (memcmp(cont, dc, sizeof(float) * (size_t)c->ds->layout.n_cont) ||
        memcmp(ids, di, sizeof(int32_t) * (size_t)c->ds->layout.n_ids) || memcmp(&t, &dt, sizeof t))
        c->ok = 0;
    c->checked++;
}

TEST(rows_equal_streamed_embedding) {
    cphil_ds_build_opts o;
    cphil_ds_build_default_opts(&o);
    o.dual_port = true;
    o.embed.prev_action = true;
    cphil_ds_build_report rep;
    CHECK(build("rows.ds", &o, &rep) == CPHIL_OK);
    cphil_ds_build_report_free(&rep);
    char p[600];
    snprintf(p, sizeof p, "%s/rows.ds", harness_tmpdir());
    cphil_dataset ds;
    CHECK(cphil_dataset_open(&ds, p, true) == CPHIL_OK);
    CHECK(ds.layout.cfg.prev_action);
    for (uint32_t i = 0; i < ds.h->n_entries; i++) {
        const cphil_ds_entry *e = &ds.entries[i];
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", make_folder(), cphil_dataset_entry_name(&ds, i));
        uint8_t *d = NULL;
        size_t n = 0;
        CHECK(cphil_file_read(path, (size_t)1 << 30, &d, &n) == CPHIL_OK);
        sctx c = {&ds, e, {0}, 1, 0, e->port};
        cphil_slp_callbacks cb = {s_start, s_frame, NULL, &c};
        cphil_slp_stream *st = NULL;
        CHECK(cphil_slp_stream_open(&st, &cb, path) == CPHIL_OK);
        for (size_t off = 0; off < n; off += 4093)
            CHECK(cphil_slp_stream_feed(st, d + off, n - off < 4093 ? n - off : 4093) == CPHIL_OK);
        CHECK(cphil_slp_stream_finish(st) == CPHIL_OK);
        cphil_slp_stream_close(st);
        cphil_free(d);
        CHECK_MSG(c.ok, "%s port %d: dataset rows differ from the streamed embedding", path, e->port + 1);
        CHECK_EQ_INT(c.checked, e->n_rows);
    }
    cphil_dataset_close(&ds);
}

TEST(cache_rejects_damage) {
    cphil_ds_build_opts o;
    cphil_ds_build_default_opts(&o);
    cphil_ds_build_report rep;
    CHECK(build("dmg.ds", &o, &rep) == CPHIL_OK);
    cphil_ds_build_report_free(&rep);
    char p[600], q[600];
    snprintf(p, sizeof p, "%s/dmg.ds", harness_tmpdir());
    snprintf(q, sizeof q, "%s/dmg2.ds", harness_tmpdir());
    uint8_t *d = NULL;
    size_t n = 0;
    CHECK(cphil_file_read(p, (size_t)1 << 30, &d, &n) == CPHIL_OK);
    cphil_dataset ds;
    d[n / 2] ^= 0x10; /* one flipped bit in the body */
    CHECK(cphil_file_write_atomic(q, d, n) == CPHIL_OK);
    CHECK(cphil_dataset_open(&ds, q, true) == CPHIL_E_FORMAT);
    CHECK(strstr(cphil_last_error(), "checksum"));
    d[n / 2] ^= 0x10;
    CHECK(cphil_file_write_atomic(q, d, n - 100) == CPHIL_OK); /* truncated */
    CHECK(cphil_dataset_open(&ds, q, true) == CPHIL_E_TRUNCATED);
    d[0] = 'X';
    CHECK(cphil_file_write_atomic(q, d, n) == CPHIL_OK);
    CHECK(cphil_dataset_open(&ds, q, true) == CPHIL_E_FORMAT);
    d[0] = 'C';
    ((cphil_ds_header *)d)->layout_hash ^= 1;
    CHECK(cphil_file_write_atomic(q, d, n) == CPHIL_OK);
    CHECK(cphil_dataset_open(&ds, q, true) == CPHIL_E_MISMATCH);
    CHECK(cphil_dataset_open(&ds, "/nonexistent/x.ds", true) == CPHIL_E_IO);
    cphil_free(d);
}

/* ---- batcher ------------------------------------------------------------------------------ */
static size_t g_allocs;
static void *count_alloc(size_t size, size_t align, void *user) {
    (void)user;
    g_allocs++;
    void *p = NULL;
    return posix_memalign(&p, align, size) == 0 ? p : NULL;
}
static void count_free(void *p, void *user) {
    (void)user;
    free(p);
}

static const cphil_dataset *open_ds(cphil_dataset *ds) {
    static bool built;
    char p[600];
    snprintf(p, sizeof p, "%s/batch.ds", harness_tmpdir());
    if (!built) {
        cphil_ds_build_opts o;
        cphil_ds_build_default_opts(&o);
        o.val_split = 0.2;
        cphil_ds_build_report rep;
        if (build("batch.ds", &o, &rep) != CPHIL_OK) return NULL;
        cphil_ds_build_report_free(&rep);
        built = true;
    }
    return cphil_dataset_open(ds, p, false) == CPHIL_OK ? ds : NULL;
}

/* Locate a continuous row inside the dataset (rows are distinct enough: time and positions). */
static int64_t row_of(const cphil_dataset *ds, uint32_t e, const float *cont) {
    const cphil_ds_entry *en = &ds->entries[e];
    for (uint32_t r = 0; r < en->n_rows; r++)
        if (!memcmp(ds->cont + (en->row_start + r) * ds->h->n_cont, cont, sizeof(float) * ds->h->n_cont))
            return (int64_t)r;
    return -1;
}

TEST(batcher_windows) {
    cphil_dataset ds;
    CHECK(open_ds(&ds));
    cphil_batcher_opts o;
    cphil_batcher_default_opts(&o);
    o.B = 8;
    o.W = 60;
    o.stride = 30;
    o.frame_delay = 2;
    o.seed = 9;
    cphil_batcher *b = NULL;
    CHECK(cphil_batcher_open(&b, &ds, &o) == CPHIL_OK);
    uint64_t expect = 0;
    for (uint32_t i = 0; i < ds.h->n_entries; i++) {
        if (ds.entries[i].is_val) continue;
        uint32_t pairs = ds.entries[i].n_rows - 3;
        if (pairs >= 60) expect += (pairs - 60) / 30 + 1;
    }
    CHECK_EQ_INT(cphil_batcher_units(b), expect);
    cphil_batch x;
    CHECK(cphil_batch_alloc(&x, b) == CPHIL_OK);
    cphil_set_allocator(&(cphil_allocator){count_alloc, count_free, NULL});
    g_allocs = 0;
    uint64_t windows = 0, batches = 0;
    int64_t first_rows[4] = {-1, -1, -1, -1};
    while (cphil_batcher_next(b, &x)) {
        batches++;
        for (int k = 0; k < x.n_valid; k++, windows++) {
            uint32_t e = (uint32_t)x.entry[k];
            CHECK(!ds.entries[e].is_val);
            int64_t r = row_of(&ds, e, x.cont + (size_t)k * 60 * x.n_cont);
            CHECK(r >= 0 && r % 30 == 0);
            if (batches == 1 && k < 4) first_rows[k] = r;
            /* consecutive rows of one entry; targets from row t + 3 */
            for (int w = 0; w < 60; w += 7) {
                const float *c = x.cont + ((size_t)k * 60 + (size_t)w) * x.n_cont;
                CHECK(!memcmp(c, ds.cont + (ds.entries[e].row_start + (uint64_t)r + (uint64_t)w) * x.n_cont,
                              sizeof(float) * (size_t)x.n_cont));
                cphil_target t;
                cphil_dataset_row(&ds, ds.entries[e].row_start + (uint64_t)r + (uint64_t)w + 3, NULL, NULL, &t);
                CHECK(!memcmp(t.cls, x.cls + ((size_t)k * 60 + (size_t)w) * 5, 5));
                CHECK(!memcmp(t.buttons, x.buttons + ((size_t)k * 60 + (size_t)w) * 8, 8));
                for (int q = 0; q < x.n_ids; q++) {
                    int32_t id = x.ids[((size_t)k * 60 + (size_t)w) * (size_t)x.n_ids + (size_t)q];
                    CHECK(id >= (int32_t)ds.h->n_cont && id < (int32_t)ds.h->E);
                }
            }
        }
        for (int k = x.n_valid; k < x.B; k++) CHECK(x.weight[(size_t)k * 60] == 0.0f);
    }
    cphil_set_allocator(NULL);
    CHECK_EQ_INT(g_allocs, 0); /* building batches allocates nothing */
    CHECK_EQ_INT(windows, expect);
    CHECK_EQ_INT(batches, cphil_batcher_batches(b));
    /* the same seed gives the same order; epoch 1 another */
    cphil_batcher *b2 = NULL;
    CHECK(cphil_batcher_open(&b2, &ds, &o) == CPHIL_OK);
    CHECK(cphil_batcher_next(b2, &x));
    for (int k = 0; k < 4; k++) CHECK(row_of(&ds, (uint32_t)x.entry[k], x.cont + (size_t)k * 60 * x.n_cont) == first_rows[k]);
    cphil_batcher_epoch(b2, 1);
    CHECK(cphil_batcher_next(b2, &x));
    bool same = true;
    for (int k = 0; k < 4; k++) same &= row_of(&ds, (uint32_t)x.entry[k], x.cont + (size_t)k * 60 * x.n_cont) == first_rows[k];
    CHECK(!same);
    cphil_batcher_close(b2);
    cphil_batch_free(&x);
    cphil_batcher_close(b);
    cphil_dataset_close(&ds);
}

/* TBPTT streams: each slot walks one entry in consecutive chunks; every pair of every entry of
 * the split is visited exactly once; reset marks the first chunk of an entry. */
TEST(batcher_streams) {
    cphil_dataset ds;
    CHECK(open_ds(&ds));
    cphil_batcher_opts o;
    cphil_batcher_default_opts(&o);
    o.mode = CPHIL_BATCH_STREAMS;
    o.split = CPHIL_SPLIT_ALL;
    o.B = 2;
    o.W = 50;
    o.seed = 4;
    cphil_batcher *b = NULL;
    CHECK(cphil_batcher_open(&b, &ds, &o) == CPHIL_OK);
    cphil_batch x;
    CHECK(cphil_batch_alloc(&x, b) == CPHIL_OK);
    uint64_t visited[64] = {0};
    int64_t next_row[64];
    for (int i = 0; i < 64; i++) next_row[i] = -1;
    uint64_t positions = 0;
    while (cphil_batcher_next(b, &x)) {
        for (int k = 0; k < x.B; k++) {
            if (x.entry[k] < 0) continue;
            uint32_t e = (uint32_t)x.entry[k];
            int64_t r = row_of(&ds, e, x.cont + (size_t)k * 50 * x.n_cont);
            CHECK(r >= 0);
            if (x.reset[k]) CHECK(r == 0);
            else CHECK(r == next_row[e]);
            int n = 0;
            while (n < 50 && ds.entries[e].row_start + (uint64_t)r + (uint64_t)n + 1 <
                                 ds.entries[e].row_start + ds.entries[e].n_rows)
                n++;
            for (int w = n; w < 50; w++) CHECK(x.weight[(size_t)k * 50 + (size_t)w] == 0.0f);
            visited[e] += (uint64_t)n;
            positions += (uint64_t)n;
            next_row[e] = r + n;
        }
    }
    uint64_t total = 0;
    for (uint32_t e = 0; e < ds.h->n_entries; e++) {
        CHECK_EQ_INT(visited[e], ds.entries[e].n_rows - 1);
        total += ds.entries[e].n_rows - 1;
    }
    CHECK_EQ_INT(positions, total);
    cphil_batch_free(&x);
    cphil_batcher_close(b);
    cphil_dataset_close(&ds);
}

/* Data-parallel shares (docs/distributed.md): two batchers that each fill half of a B-slot batch
 * see, slot for slot, the windows and stream chunks of one batcher that fills all B, with the
 * same targets and weights: the global batch dealt to the ranks, nothing lost, nothing twice. */
TEST(batcher_shares_are_the_global_batch) {
    NEED_REPLAYS();
    cphil_dataset ds;
    CHECK(open_ds(&ds));
    for (int mode = 0; mode < 2; mode++) {
        cphil_batcher_opts o;
        cphil_batcher_default_opts(&o);
        o.mode = mode ? CPHIL_BATCH_STREAMS : CPHIL_BATCH_WINDOWS;
        o.split = CPHIL_SPLIT_ALL;
        o.B = 6;
        o.W = 40;
        o.seed = 3;
        o.drop_last = true;
        cphil_batcher *all = NULL, *part[2] = {NULL, NULL};
        CHECK(cphil_batcher_open(&all, &ds, &o) == CPHIL_OK);
        for (int r = 0; r < 2; r++) {
            cphil_batcher_opts q = o;
            q.share_at = 3 * r;
            q.share = 3;
            CHECK(cphil_batcher_open(&part[r], &ds, &q) == CPHIL_OK);
        }
        cphil_batcher_opts bad = o;
        bad.share_at = 4;
        bad.share = 3;
        cphil_batcher *nb = NULL;
        CHECK(cphil_batcher_open(&nb, &ds, &bad) == CPHIL_E_ARG);
        cphil_batch xa, xp[2];
        CHECK(cphil_batch_alloc(&xa, all) == CPHIL_OK);
        CHECK(cphil_batch_alloc(&xp[0], part[0]) == CPHIL_OK && cphil_batch_alloc(&xp[1], part[1]) == CPHIL_OK);
        CHECK_EQ_INT(xp[0].B, 3);
        cphil_batcher_epoch(all, 2);
        cphil_batcher_epoch(part[0], 2);
        cphil_batcher_epoch(part[1], 2);
        int steps = 0, same = 1;
        size_t per = (size_t)o.W;
        while (cphil_batcher_next(all, &xa)) {
            for (int r = 0; r < 2; r++) {
                CHECK(cphil_batcher_next(part[r], &xp[r]));
                for (int k = 0; k < 3; k++) {
                    int g = 3 * r + k;
                    same &= xp[r].entry[k] == xa.entry[g] && xp[r].start[k] == xa.start[g] &&
                            xp[r].reset[k] == xa.reset[g];
                    same &= !memcmp(xp[r].weight + (size_t)k * per, xa.weight + (size_t)g * per, per * sizeof(float));
                    same &= !memcmp(xp[r].cls + (size_t)k * per * CPHIL_N_AXES, xa.cls + (size_t)g * per * CPHIL_N_AXES,
                                    per * CPHIL_N_AXES);
                    same &= !memcmp(xp[r].cont + (size_t)k * per * (size_t)xa.n_cont,
                                    xa.cont + (size_t)g * per * (size_t)xa.n_cont, per * (size_t)xa.n_cont * sizeof(float));
                }
            }
            steps++;
        }
        CHECK(steps > 2);
        CHECK(same);
        CHECK(!cphil_batcher_next(part[0], &xp[0]) && !cphil_batcher_next(part[1], &xp[1]));
        cphil_batch_free(&xa);
        for (int r = 0; r < 2; r++) {
            cphil_batch_free(&xp[r]);
            cphil_batcher_close(part[r]);
        }
        cphil_batcher_close(all);
    }
    cphil_dataset_close(&ds);
}

/* parallel_fill (the GPU trainer's loader) fills the same batches as one thread: whole batches,
 * the last partial one (slots cleared) and a rank's share, on 3 threads. */
static bool same_batch(const cphil_batch *a, const cphil_batch *b) {
    size_t n = (size_t)a->B * (size_t)a->W;
    return a->B == b->B && a->n_valid == b->n_valid && !memcmp(a->entry, b->entry, (size_t)a->B * sizeof(int32_t)) &&
           !memcmp(a->start, b->start, (size_t)a->B * sizeof(uint32_t)) && !memcmp(a->reset, b->reset, (size_t)a->B) &&
           !memcmp(a->cont, b->cont, n * (size_t)a->n_cont * sizeof(float)) &&
           !memcmp(a->ids, b->ids, n * (size_t)a->n_ids * sizeof(int32_t)) &&
           !memcmp(a->buttons, b->buttons, n * CPHIL_N_BUTTONS) && !memcmp(a->cls, b->cls, n * CPHIL_N_AXES) &&
           !memcmp(a->weight, b->weight, n * sizeof(float));
}

TEST(batcher_parallel_fill_same_batches) {
    NEED_REPLAYS();
    cphil_dataset ds;
    CHECK(open_ds(&ds));
    const int threads = cphil_threads_get();
    cphil_threads_set(3);
    for (int shared = 0; shared < 2; shared++) {
        cphil_batcher_opts o;
        cphil_batcher_default_opts(&o);
        o.split = CPHIL_SPLIT_ALL;
        o.B = 37; /* 5 parts of 7 or 8 slots */
        o.W = 30;
        o.stride = 7;
        o.seed = 5;
        o.drop_last = false;
        if (shared) o.share_at = 20, o.share = 17;
        cphil_batcher_opts q = o;
        q.parallel_fill = true;
        cphil_batcher *one = NULL, *par = NULL;
        CHECK(cphil_batcher_open(&one, &ds, &o) == CPHIL_OK && cphil_batcher_open(&par, &ds, &q) == CPHIL_OK);
        cphil_batch xa, xb;
        CHECK(cphil_batch_alloc(&xa, one) == CPHIL_OK && cphil_batch_alloc(&xb, par) == CPHIL_OK);
        cphil_batcher_epoch(one, 1);
        cphil_batcher_epoch(par, 1);
        int steps = 0, same = 1, partial = 0;
        while (cphil_batcher_next(one, &xa)) {
            CHECK(cphil_batcher_next(par, &xb));
            same &= same_batch(&xa, &xb);
            partial |= xa.n_valid < xa.B;
            steps++;
        }
        CHECK(!cphil_batcher_next(par, &xb));
        CHECK(steps > 2);
        printf("  %s: %d batches, last %d of %d slots filled\n", shared ? "share 20..36 of 37" : "37 slots", steps,
               xa.n_valid, xa.B);
        CHECK(partial); /* the last batch is partly filled: cleared slots compared too */
        CHECK(same);
        cphil_batch_free(&xa);
        cphil_batch_free(&xb);
        cphil_batcher_close(one);
        cphil_batcher_close(par);
    }
    cphil_threads_set(threads);
    cphil_dataset_close(&ds);
}

int main(void) {
    RUN(build_skips_damaged_with_reason);
    RUN(build_deterministic_and_split);
    RUN(build_filters);
    RUN(rows_equal_streamed_embedding);
    RUN(cache_rejects_damage);
    RUN(batcher_windows);
    RUN(batcher_streams);
    RUN(batcher_shares_are_the_global_batch);
    RUN(batcher_parallel_fill_same_batches);
    return harness_done();
}
