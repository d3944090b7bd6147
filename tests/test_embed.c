/* test_embed.c — the game module: controller <-> action heads, action names, the embedding
 * layout and values (golden frames of real replays), synthetic games. */
#include "harness.h"

#include "core/core.h"
#include "game/actions.h"
#include "game/controller.h"
#include "game/embed.h"
#include "game/synth.h"
#include "slp/slp_writer.h"

#include <stdio.h>

/* The replays a whole-file test walks: the named shared replays (full paths into paths[]), or
 * without them (a fresh clone) two synthetic games written here, so the test still runs. */
static int test_files(const char *const *rel, int n_rel, char paths[][512], bool *real) {
    struct stat st;
    *real = stat(harness_replays_dir(), &st) == 0 && S_ISDIR(st.st_mode);
    if (*real) {
        for (int i = 0; i < n_rel; i++) snprintf(paths[i], 512, "%s/%s", harness_replays_dir(), rel[i]);
        return n_rel;
    }
    printf("note: no shared replays at '%s': on two synthetic games\n", harness_replays_dir());
    for (int i = 0; i < 2; i++) {
        snprintf(paths[i], 512, "%s/embed_synth_%d.slp", harness_tmpdir(), i);
        cphil_synth_opts o = {5, 2, 30};
        uint8_t *d = NULL;
        size_t n = 0;
        CPHIL_ASSERT(cphil_synth_game(&o, i, &d, &n, NULL) == CPHIL_OK);
        CPHIL_ASSERT(cphil_file_write_atomic(paths[i], d, n) == CPHIL_OK);
        cphil_free(d);
    }
    return 2;
}

static cphil_replay *read_replay(const char *rel) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", harness_replays_dir(), rel);
    cphil_replay *r = NULL;
    if (cphil_slp_read_file(path, &r) != CPHIL_OK) {
        cphil_replay_free(r);
        return NULL;
    }
    return r;
}

/* Embed frame number `frame` of r for player index self. */
static void embed_at(const cphil_embed_layout *L, const cphil_replay *r, int self, int frame, float *cont,
                     int32_t *ids) {
    cphil_embed_game g;
    CPHIL_ASSERT(cphil_embed_game_init(&g, r, self, -1) == CPHIL_OK);
    cphil_frame f;
    cphil_replay_get_frame(r, (uint32_t)(frame - r->first_frame), &f);
    cphil_embed_frame(L, &g, &f, cont, ids);
}

/* Every class of every head survives decode -> encode, and encode picks the nearest class. */
TEST(controller_roundtrip_every_class) {
    for (int h = 0; h < CPHIL_N_AXES; h++) {
        int nc = h == CPHIL_AXIS_SHOULDER ? CPHIL_SHOULDER_CLASSES : CPHIL_STICK_CLASSES;
        for (int k = 0; k < nc; k++) {
            cphil_target t = {{0}, {8, 8, 8, 8, 0}};
            t.cls[h] = (uint8_t)k;
            cphil_controller c;
            cphil_controller_decode(&t, &c);
            cphil_target t2;
            cphil_controller_encode(&c, &t2);
            for (int j = 0; j < CPHIL_N_AXES; j++) CHECK_EQ_INT(t2.cls[j], t.cls[j]);
        }
    }
    for (int b = 0; b < 256; b++) { /* every button combination */
        cphil_target t = {{0}, {8, 8, 8, 8, 0}};
        for (int i = 0; i < 8; i++) t.buttons[i] = (uint8_t)((b >> i) & 1);
        cphil_controller c;
        cphil_controller_decode(&t, &c);
        cphil_target t2;
        cphil_controller_encode(&c, &t2);
        for (int i = 0; i < 8; i++) CHECK_EQ_INT(t2.buttons[i], t.buttons[i]);
    }
}

TEST(controller_nearest_class) {
    CHECK_EQ_INT(cphil_stick_class(0.0f), 8);
    CHECK_EQ_INT(cphil_stick_class(1.0f), 16);   /* ExPhil's floor(16u) never reached 16 */
    CHECK_EQ_INT(cphil_stick_class(-1.0f), 0);
    CHECK_EQ_INT(cphil_stick_class(0.9875f), 16); /* u = 0.99375 -> nearest 16/16 */
    CHECK_EQ_INT(cphil_stick_class(0.9f), 15);    /* u = 0.95 -> 15.2 -> 15 */
    CHECK_EQ_INT(cphil_stick_class(0.07f), 9);    /* 8.56 -> 9 */
    CHECK_EQ_INT(cphil_stick_class(0.06f), 8);    /* 8.48 -> 8 */
    CHECK_EQ_INT(cphil_stick_class(-0.07f), 7);
    CHECK_EQ_INT(cphil_stick_class(5.0f), 16);
    CHECK_EQ_INT(cphil_stick_class(0.0f / 0.0f), 8);
    CHECK_EQ_INT(cphil_shoulder_class(0.0f), 0);
    CHECK_EQ_INT(cphil_shoulder_class(1.0f), 4);
    CHECK_EQ_INT(cphil_shoulder_class(0.3f), 1);
    CHECK_EQ_INT(cphil_shoulder_class(0.4f), 2);
    CHECK_EQ_INT(cphil_shoulder_class(3.7793343e22f), 4); /* garbage R of 1.0.0 files */
    /* nearest: for many values, no other class centre is closer */
    for (int i = -1000; i <= 1000; i++) {
        float v = (float)i / 1000.0f;
        int k = cphil_stick_class(v);
        float d = fabsf(cphil_stick_value(k) - v);
        for (int j = 0; j < 17; j++) CHECK(d <= fabsf(cphil_stick_value(j) - v) + 1e-6f);
    }
    /* shoulder uses the larger trigger; buttons map to their heads */
    cphil_controller c = {0, 0, 0, 0, 0.2f, 0.8f, CPHIL_BTN_A | CPHIL_BTN_DUP | CPHIL_BTN_START};
    cphil_target t;
    cphil_controller_encode(&c, &t);
    CHECK_EQ_INT(t.cls[CPHIL_AXIS_SHOULDER], 3);
    CHECK_EQ_INT(t.buttons[0], 1);
    CHECK_EQ_INT(t.buttons[7], 1);
    for (int i = 1; i < 7; i++) CHECK_EQ_INT(t.buttons[i], 0);
    CHECK_STR(cphil_head_name(5), "shoulder");
    CHECK_STR(cphil_button_name(7), "D_UP");
}

TEST(action_names) {
    char buf[24];
    CHECK_STR(cphil_action_name(20, buf, sizeof buf), "DASH");
    CHECK_STR(cphil_action_name(27, buf, sizeof buf), "JUMP_AERIAL_F");
    CHECK_STR(cphil_action_name(322, buf, sizeof buf), "ENTRY");
    CHECK_STR(cphil_action_name(341, buf, sizeof buf), "SPECIAL_341");
    CHECK_STR(cphil_action_name(100, buf, sizeof buf), "ACTION_100");
    CHECK_STR(cphil_action_name(100, NULL, 0), "OTHER");
    CHECK_EQ_INT(cphil_action_from_name("guard"), 179);
    CHECK_EQ_INT(cphil_action_from_name("nope"), -1);
}

/* The rule: approach when far, jab when close and facing, shield against a jab, turn when
 * facing away, recover toward the stage. */
TEST(synth_rule) {
    cphil_synth_obs s = {CPHIL_ACT_WAIT, 5, 0, 0, 1, 0, 2, 0, 1 /* Fox */};
    cphil_synth_obs o = {CPHIL_ACT_WAIT, 5, 50, 0, -1, 0, 2, 0, 18 /* Marth */};
    cphil_controller c;
    cphil_synth_rule(&s, &o, 32, &c);
    CHECK(c.main_x == 1.0f && c.buttons == 0);
    o.x = -50;
    cphil_synth_rule(&s, &o, 32, &c);
    CHECK(c.main_x == -1.0f);
    o.x = 10;
    cphil_synth_rule(&s, &o, 32, &c);
    CHECK(c.buttons == CPHIL_BTN_A && c.main_x == 0.0f);
    o.x = -10;
    cphil_synth_rule(&s, &o, 32, &c);
    CHECK(c.buttons == 0 && c.main_x == -0.5f);
    o.x = 20;
    o.action = CPHIL_ACT_ATTACK_11;
    o.action_frame = 2;
    cphil_synth_rule(&s, &o, 32, &c);
    CHECK(c.buttons == CPHIL_BTN_R && c.r_trigger == 1.0f);
    s.action = CPHIL_ACT_ATTACK_11;
    cphil_synth_rule(&s, &o, 32, &c);
    CHECK(c.buttons == 0 && c.main_x == 0.0f && c.r_trigger == 0.0f);
    s.action = CPHIL_ACT_FALL;
    s.airborne = 1;
    s.x = -100;
    s.self_y_speed = -1;
    s.jumps = 1;
    cphil_synth_rule(&s, &o, 32, &c);
    CHECK(c.buttons == CPHIL_BTN_X && c.main_x == 1.0f);
}

TEST(synth_deterministic) {
    cphil_synth_opts o = {42, 1, 20};
    uint8_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    cphil_synth_summary sa, sb;
    CHECK(cphil_synth_game(&o, 3, &a, &na, &sa) == CPHIL_OK);
    CHECK(cphil_synth_game(&o, 3, &b, &nb, &sb) == CPHIL_OK);
    CHECK(na == nb && na > 1000 && !memcmp(a, b, na));
    CHECK(sa.frames == sa.last_frame + 124);
    CHECK(a[0] == '{' && a[15] == 0x35);
    cphil_free(a);
    cphil_free(b);
}

/* The layout: blocks tile [0, E) without gaps, continuous first, ids absolute, hash stable. */
TEST(embed_layout) {
    cphil_embed_layout L, P;
    cphil_embed_layout_init(&L, NULL);
    cphil_embed_config c = {true};
    cphil_embed_layout_init(&P, &c);
    CHECK_EQ_INT(L.n_cont, 99);
    CHECK_EQ_INT(L.n_ids, 10);
    CHECK_EQ_INT(L.E, 2185);
    CHECK_EQ_INT(P.n_cont, 112);
    CHECK_EQ_INT(P.E, 2198);
    CHECK(L.hash != P.hash);
    cphil_embed_layout L2;
    cphil_embed_layout_init(&L2, NULL);
    CHECK(L.hash == L2.hash);
    int off = 0, seen_onehot = 0, ids = 0;
    for (int b = 0; b < L.n_blocks; b++) {
        const cphil_embed_block *bl = &L.blocks[b];
        CHECK_EQ_INT(bl->offset, off);
        if (bl->kind == CPHIL_EMBED_ONEHOT) {
            seen_onehot = 1;
            CHECK_EQ_INT(bl->id_index, ids);
            ids++;
        } else {
            CHECK(!seen_onehot); /* continuous first */
        }
        off += bl->width;
    }
    CHECK_EQ_INT(off, L.E);
    CHECK_EQ_INT(ids, L.n_ids);
    for (int i = 0; i < P.n_cont; i++) CHECK(cphil_embed_feature_info(&P, i) != NULL);
    CHECK(cphil_embed_feature_info(&L, L.n_cont) == NULL);
    CHECK_STR(cphil_embed_feature_info(&L, cphil_embed_layout_block(&L, "opp")->offset + 1)->name, "x");
    CHECK_STR(cphil_embed_feature_info(&P, 99)->name, "A");
    /* densify: continuous copied, one 1.0 per block at the id's column */
    float cont[CPHIL_EMBED_MAX_CONT];
    int32_t id[CPHIL_EMBED_MAX_IDS];
    for (int i = 0; i < L.n_cont; i++) cont[i] = (float)i * 0.5f;
    for (int k = 0; k < L.n_ids; k++) id[k] = L.blocks[L.n_blocks - L.n_ids + k].offset + k;
    float *dense = cphil_alloc(sizeof(float) * (size_t)L.E);
    CHECK(dense);
    cphil_embed_densify(&L, cont, id, dense);
    double sum = 0;
    for (int i = L.n_cont; i < L.E; i++) sum += dense[i];
    CHECK_NEAR(sum, L.n_ids, 0, 0);
    CHECK(dense[5] == 2.5f && dense[id[3]] == 1.0f);
    cphil_free(dense);
}

#define FEAT(blk, i) cont[cphil_embed_layout_block(&L, blk)->offset + (i)]

/* Golden values, by hand from the format and docs/embedding.md: exphil/fox_multishine.slp
 * (3.19.1, Final Destination, P1 Fox internal 1, P2 Game & Watch internal 24), frame 600. The
 * raw values (slippi-js 9.1.2 reads the same): self x -44.2007942199707, y 16.930767059326172,
 * facing -1, percent 16, shield 60, stocks 4, airborne, jumps 0, action 366 frame 4, self y speed
 * -0.1066666692495346; opp action 16 (WALK_MIDDLE) frame 7 at x -1.424794316291809 y 0.0001,
 * percent 17.499998, grounded, jumps 2, air x / ground x speeds -0.5562661290168762 /
 * -0.556266188621521. */
TEST(embed_golden_fox_multishine) {
    NEED_REPLAYS();
    cphil_replay *r = read_replay("exphil/fox_multishine.slp");
    CHECK(r);
    cphil_embed_layout L;
    cphil_embed_layout_init(&L, NULL);
    float cont[CPHIL_EMBED_MAX_CONT];
    int32_t ids[CPHIL_EMBED_MAX_IDS];
    embed_at(&L, r, 0, 600, cont, ids);
    for (int i = 0; i < 5; i++) CHECK_NEAR(FEAT("game", i), 1.0, 0, 0); /* 3.19.1 has every field */
    CHECK_NEAR(FEAT("game", 5), 600.0 / 28800.0, 1e-6, 1e-5);
    CHECK_NEAR(FEAT("self", 0), 1.0, 0, 0);
    CHECK_NEAR(FEAT("self", 1), -2.210039711, 1e-6, 1e-5);   /* -44.2008 * 0.05 */
    CHECK_NEAR(FEAT("self", 2), 0.846538353, 1e-6, 1e-5);    /* 16.9308 * 0.05 */
    CHECK_NEAR(FEAT("self", 3), 0.16, 1e-6, 1e-5);           /* 16 % * 0.01 */
    CHECK_NEAR(FEAT("self", 4), 1.0, 1e-6, 1e-5);            /* shield 60 / 60 */
    CHECK_NEAR(FEAT("self", 5), 1.0, 1e-6, 1e-5);            /* 4 stocks / 4 */
    CHECK_NEAR(FEAT("self", 6), -1.0, 0, 0);          /* facing left */
    CHECK_NEAR(FEAT("self", 7), 0.0, 0, 0);           /* airborne */
    CHECK_NEAR(FEAT("self", 8), 0.0, 0, 0);           /* no jumps left */
    CHECK_NEAR(FEAT("self", 10), -0.0533333346, 1e-6, 1e-5); /* y speed * 0.5 */
    CHECK_NEAR(FEAT("self", 16), 4.0 / 60.0, 1e-6, 1e-5);    /* action frame 4 */
    CHECK_NEAR(FEAT("self", 22), 0.0, 0, 0);          /* on stage */
    CHECK_NEAR(FEAT("self", 23), 0.483428, 1e-5, 1e-5); /* (85.5657 - 44.2008) / 85.5657 */
    CHECK_NEAR(FEAT("opp", 1), -0.0712397158, 1e-6, 1e-5);
    CHECK_NEAR(FEAT("opp", 3), 0.17499998, 1e-6, 1e-5);
    CHECK_NEAR(FEAT("opp", 7), 1.0, 0, 0);            /* grounded */
    CHECK_NEAR(FEAT("opp", 8), 2.0 / 6.0, 1e-6, 1e-5);
    CHECK_NEAR(FEAT("opp", 9), -0.278133064, 1e-6, 1e-5);    /* air x speed * 0.5 */
    CHECK_NEAR(FEAT("opp", 13), -0.278133094, 1e-6, 1e-5);   /* ground x speed * 0.5 */
    CHECK_NEAR(FEAT("opp", 16), 7.0 / 60.0, 1e-6, 1e-5);
    CHECK_NEAR(FEAT("rel", 0), 0.21388, 1e-5, 1e-4);  /* (-1.4248 + 44.2008) * 0.005 */
    CHECK_NEAR(FEAT("rel", 1), -0.1693067, 1e-5, 1e-4); /* (0.0001 - 16.9308) * 0.01 */
    CHECK_NEAR(FEAT("rel", 2), 0.230024, 1e-5, 1e-4); /* sqrt(42.776^2 + 16.931^2) * 0.005 */
    CHECK_NEAR(FEAT("rel", 3), 0.0, 0, 0);            /* self faces left, opp is right */
    CHECK_NEAR(FEAT("rel", 4), 1.0, 0, 0);            /* opp faces left, toward self */
    CHECK_NEAR(FEAT("self_nana", 0), 0.0, 0, 0);
    CHECK_NEAR(FEAT("item0", 0), 0.0, 0, 0);
    CHECK_EQ_INT(ids[0], 99 + 366);   /* self action */
    CHECK_EQ_INT(ids[1], 499 + 16);   /* opp action */
    CHECK_EQ_INT(ids[2], 899 + 1);    /* Fox */
    CHECK_EQ_INT(ids[3], 933 + 24);   /* Game & Watch */
    CHECK_EQ_INT(ids[4], 967 + 399);  /* no Nana: other */
    CHECK_EQ_INT(ids[5], 1367 + 399);
    CHECK_EQ_INT(ids[6], 1767 + 32);  /* Final Destination */
    CHECK_EQ_INT(ids[7], 1801 + 127); /* empty item slots */
    CHECK_EQ_INT(ids[9], 2057 + 127);
    /* frame 95: one item (type 115, owner P2 = opp) at (-58.787, 1.5001), self at (-60, 13.997) */
    embed_at(&L, r, 0, 95, cont, ids);
    CHECK_NEAR(FEAT("item0", 0), 1.0, 0, 0);
    CHECK_NEAR(FEAT("item0", 1), 0.0, 0, 0);
    CHECK_NEAR(FEAT("item0", 2), 1.0, 0, 0);
    CHECK_NEAR(FEAT("item0", 3), 0.0606406, 1e-5, 1e-4);
    CHECK_NEAR(FEAT("item0", 4), -0.624867, 1e-5, 1e-4);
    CHECK_NEAR(FEAT("item0", 7), 0.0627801, 1e-5, 1e-4);
    CHECK_NEAR(FEAT("item1", 0), 0.0, 0, 0);
    CHECK_EQ_INT(ids[7], 1801 + 115);
    /* seen from P2: the same item is now owned by self; ego-centric blocks swap */
    embed_at(&L, r, 1, 95, cont, ids);
    CHECK_NEAR(FEAT("item0", 1), 1.0, 0, 0);
    CHECK_NEAR(FEAT("item0", 2), 0.0, 0, 0);
    CHECK_EQ_INT(ids[2], 899 + 24);
    CHECK_EQ_INT(ids[3], 933 + 1);
    cphil_replay_free(r);
}

/* An old replay (0.1.0): the fields it lacks are 0 and the masks say so. slippi-js/test.slp,
 * frame 1000, P1 Falco (internal 22) dashing (20) at x -34.818546, Dream Land (edge 77.2713). */
TEST(embed_golden_old_version_masks) {
    NEED_REPLAYS();
    cphil_replay *r = read_replay("slippi-js/test.slp");
    CHECK(r);
    cphil_embed_layout L;
    cphil_embed_layout_init(&L, NULL);
    float cont[CPHIL_EMBED_MAX_CONT];
    int32_t ids[CPHIL_EMBED_MAX_IDS];
    embed_at(&L, r, 0, 1000, cont, ids);
    for (int i = 0; i < 5; i++) CHECK_NEAR(FEAT("game", i), 0.0, 0, 0);
    CHECK_NEAR(FEAT("self", 1), -1.74092731, 1e-6, 1e-5);
    CHECK_NEAR(FEAT("self", 3), 0.1592, 1e-6, 1e-5);
    CHECK_NEAR(FEAT("self", 7), 0.0, 0, 0);  /* unknown (mask 0), not "airborne" */
    CHECK_NEAR(FEAT("self", 16), 0.0, 0, 0); /* no action frame counter before 0.2.0 */
    CHECK_NEAR(FEAT("self", 23), 0.549400, 1e-5, 1e-4);
    CHECK_EQ_INT(ids[0], 99 + 20);
    CHECK_EQ_INT(ids[2], 899 + 22);
    CHECK_EQ_INT(ids[6], 1767 + 28);
    /* the opponent is port 3 (index 2): the lowest other occupied port */
    cphil_embed_game g;
    CHECK(cphil_embed_game_init(&g, r, 0, -1) == CPHIL_OK);
    CHECK_EQ_INT(g.opp, 2);
    CHECK(cphil_embed_game_init(&g, r, 1, -1) == CPHIL_E_ARG); /* port 2 is empty */
    cphil_replay_free(r);
}

/* Every frame of every shared replay embeds to finite values inside the documented clamps and
 * ids inside their blocks (a few replays in the sanitizer build keep this fast). */
TEST(embed_all_frames_in_range) {
    static const char *const rel[] = {"exphil/fox_multishine.slp", "slippi-js/sheik_vs_ics_yoshis.slp",
                                      "slippi-js/itemExport.slp", "slippi-js/rollbackFrameTest.slp"};
    char files[4][512];
    bool real;
    int nf = test_files(rel, 4, files, &real);
    cphil_embed_config cfg = {true};
    cphil_embed_layout L;
    cphil_embed_layout_init(&L, &cfg);
    int nana_frames = 0;
    for (int k = 0; k < nf; k++) {
        cphil_replay *r = NULL;
        if (cphil_slp_read_file(files[k], &r) != CPHIL_OK) {
            cphil_replay_free(r);
            r = NULL;
        }
        CHECK_MSG(r, "cannot read %s: %s", files[k], cphil_last_error());
        int self = -1;
        for (int p = 0; p < 4 && self < 0; p++)
            if (r->game.players[p].type != 3) self = p;
        cphil_embed_game g;
        CHECK(cphil_embed_game_init(&g, r, self, -1) == CPHIL_OK);
        for (uint32_t i = 0; i < r->n_frames; i++) {
            cphil_frame f;
            cphil_replay_get_frame(r, i, &f);
            float cont[CPHIL_EMBED_MAX_CONT];
            int32_t ids[CPHIL_EMBED_MAX_IDS];
            cphil_embed_frame(&L, &g, &f, cont, ids);
            for (int c = 0; c < L.n_cont; c++) CHECK(isfinite(cont[c]) && fabsf(cont[c]) <= 10.0f);
            for (int q = 0; q < L.n_ids; q++) {
                const cphil_embed_block *b = &L.blocks[L.n_blocks - L.n_ids + q];
                CHECK(ids[q] >= b->offset && ids[q] < b->offset + b->width);
            }
            nana_frames += FEAT("self_nana", 0) > 0 || FEAT("opp_nana", 0) > 0;
        }
        cphil_replay_free(r);
    }
    if (real) CHECK(nana_frames > 1000); /* sheik_vs_ics_yoshis has Ice Climbers */
}

/* Feeding a replay to the incremental parser one byte-chunk at a time and embedding each frame
 * in on_frame (the agent's path) gives exactly the rows embedded from the whole replay's table
 * (the dataset's path). */
typedef struct stream_ctx {
    const cphil_embed_layout *L;
    cphil_embed_game g;
    bool have_game;
    int self;
    float *cont;
    int32_t *ids;
    int32_t *frames;
    uint32_t n, cap;
} stream_ctx;

static void on_start(void *user, const cphil_replay *r) {
    stream_ctx *c = user;
    c->have_game = cphil_embed_game_init(&c->g, r, c->self, -1) == CPHIL_OK;
}
static void on_frame(void *user, const cphil_replay *r, const cphil_frame *f) {
    (void)r;
    stream_ctx *c = user;
    if (!c->have_game || c->n >= c->cap) return;
    cphil_embed_frame(c->L, &c->g, f, c->cont + (size_t)c->n * (size_t)c->L->n_cont,
                      c->ids + (size_t)c->n * (size_t)c->L->n_ids);
    c->frames[c->n++] = f->frame;
}

TEST(embed_stream_equals_table) {
    static const char *const rel[] = {"exphil/fox_multishine.slp", "slippi-js/rollbackFrameTest.slp"};
    char files[2][512];
    bool real;
    int nf = test_files(rel, 2, files, &real);
    cphil_embed_config cfg = {true};
    cphil_embed_layout L;
    cphil_embed_layout_init(&L, &cfg);
    for (int k = 0; k < nf; k++) {
        const char *path = files[k];
        uint8_t *data = NULL;
        size_t size = 0;
        CHECK(cphil_file_read(path, (size_t)1 << 30, &data, &size) == CPHIL_OK);
        cphil_replay *r = NULL;
        CHECK(cphil_slp_read_mem(data, size, files[k], &r) == CPHIL_OK);
        stream_ctx c = {&L, {0}, false, 0, NULL, NULL, NULL, 0, r->n_frames};
        for (int p = 0; p < 4; p++)
            if (r->game.players[p].type != 3) {
                c.self = p;
                break;
            }
        c.cont = cphil_alloc(sizeof(float) * (size_t)c.cap * (size_t)L.n_cont);
        c.ids = cphil_alloc(sizeof(int32_t) * (size_t)c.cap * (size_t)L.n_ids);
        c.frames = cphil_alloc(sizeof(int32_t) * c.cap);
        CHECK(c.cont && c.ids && c.frames);
        cphil_slp_callbacks cb = {on_start, on_frame, NULL, &c};
        cphil_slp_stream *st = NULL;
        CHECK(cphil_slp_stream_open(&st, &cb, files[k]) == CPHIL_OK);
        for (size_t off = 0; off < size; off += 997) /* odd-sized pieces, like a socket */
            CHECK(cphil_slp_stream_feed(st, data + off, size - off < 997 ? size - off : 997) == CPHIL_OK);
        CHECK(cphil_slp_stream_finish(st) == CPHIL_OK);
        cphil_slp_stream_close(st);
        CHECK_EQ_INT(c.n, r->n_frames);
        cphil_embed_game g;
        CHECK(cphil_embed_game_init(&g, r, c.self, -1) == CPHIL_OK);
        for (uint32_t i = 0; i < c.n; i++) {
            cphil_frame f;
            cphil_replay_get_frame(r, (uint32_t)(c.frames[i] - r->first_frame), &f);
            float cont[CPHIL_EMBED_MAX_CONT];
            int32_t ids[CPHIL_EMBED_MAX_IDS];
            cphil_embed_frame(&L, &g, &f, cont, ids);
            CHECK_MSG(!memcmp(cont, c.cont + (size_t)i * (size_t)L.n_cont, sizeof(float) * (size_t)L.n_cont),
                      "%s frame %d: continuous features differ", files[k], c.frames[i]);
            CHECK(!memcmp(ids, c.ids + (size_t)i * (size_t)L.n_ids, sizeof(int32_t) * (size_t)L.n_ids));
        }
        cphil_free(c.cont);
        cphil_free(c.ids);
        cphil_free(c.frames);
        cphil_replay_free(r);
        cphil_free(data);
    }
}

/* The reader reads synthetic replays back exactly: re-writing them from what the reader
 * returns gives the same bytes; and every controller of frame t+1 is the rule applied to the
 * recorded state of frame t (the rule is a function of the replay's contents). */
static cphil_synth_obs obs_of(const cphil_frame *f, int p) {
    const cphil_post_frame *q = &f->ports[p][0].post;
    cphil_synth_obs o = {q->action_state, q->action_frame, q->x, q->y, q->facing, q->airborne, q->jumps,
                         q->self_y, q->character};
    return o;
}

TEST(synth_read_back_exactly) {
    cphil_synth_opts o = {5, 2, 60};
    for (int game = 0; game < 2; game++) {
        uint8_t *data = NULL;
        size_t size = 0;
        cphil_synth_summary sum;
        CHECK(cphil_synth_game(&o, game, &data, &size, &sum) == CPHIL_OK);
        cphil_replay *r = NULL;
        CHECK(cphil_slp_read_mem(data, size, "synth", &r) == CPHIL_OK);
        CHECK_EQ_INT(r->n_frames, sum.frames);
        CHECK_EQ_INT(r->game.stage, sum.stage);
        CHECK(r->end.present && r->end.method == sum.end_method);
        CHECK(r->meta.present && r->meta.last_frame == sum.last_frame);
        /* re-write from the reader's values */
        cphil_slpw_game g;
        memset(&g, 0, sizeof g);
        g.stage = r->game.stage;
        g.random_seed = r->game.random_seed;
        for (int p = 0; p < 4; p++) {
            const cphil_player_info *pi = &r->game.players[p];
            g.players[p].type = pi->type;
            g.players[p].character_ext = pi->character;
            g.players[p].stocks = pi->stocks;
            g.players[p].costume = pi->costume;
            snprintf(g.players[p].netplay, sizeof g.players[p].netplay, "%s", pi->display_name);
            snprintf(g.players[p].code, sizeof g.players[p].code, "%s", pi->connect_code);
        }
        snprintf(g.start_at, sizeof g.start_at, "%.31s", r->meta.start_at);
        cphil_slpw w;
        CHECK(cphil_slpw_begin(&w, &g) == CPHIL_OK);
        int agree = 0, total = 0;
        for (uint32_t i = 0; i < r->n_frames; i++) {
            cphil_frame f;
            cphil_replay_get_frame(r, i, &f);
            cphil_slpw_pre pre[2];
            cphil_slpw_post post[2];
            for (int p = 0; p < 2; p++) {
                const cphil_pre_frame *a = &f.ports[p][0].pre;
                const cphil_post_frame *b = &f.ports[p][0].post;
                pre[p] = (cphil_slpw_pre){f.frame, (uint8_t)p, 0, a->random_seed, a->action_state, a->x, a->y,
                                          a->facing, a->joystick_x, a->joystick_y, a->cstick_x, a->cstick_y,
                                          a->trigger, a->buttons, a->buttons_physical, a->trigger_l,
                                          a->trigger_r, a->raw_x, a->percent, a->raw_y, a->raw_cx, a->raw_cy};
                post[p] = (cphil_slpw_post){f.frame, (uint8_t)p, 0, b->character, b->action_state, b->x, b->y,
                                            b->facing, b->percent, b->shield, b->last_attack_landed,
                                            b->combo_count, b->last_hit_by, b->stocks, b->action_frame,
                                            {b->flags1, b->flags2, b->flags3, b->flags4, b->flags5},
                                            b->misc_as, b->airborne, b->ground, b->jumps, b->l_cancel,
                                            b->hurtbox, b->self_air_x, b->self_y, b->attack_x, b->attack_y,
                                            b->self_ground_x, b->hitlag, b->animation,
                                            b->last_hit_by_instance, b->instance_id};
            }
            cphil_slpw_frame(&w, f.frame, f.seed, pre, post, 2);
            if (i > 0 && f.frame > -39) { /* the rule drives every frame from -39 on */
                cphil_frame prev;
                cphil_replay_get_frame(r, i - 1, &prev);
                for (int p = 0; p < 2; p++) {
                    cphil_synth_obs s = obs_of(&prev, p), op = obs_of(&prev, 1 - p);
                    cphil_controller want;
                    cphil_synth_rule(&s, &op, r->game.stage, &want);
                    const cphil_pre_frame *a = &f.ports[p][0].pre;
                    agree += want.buttons == a->buttons_physical && want.main_x == a->joystick_x &&
                             want.r_trigger == a->trigger_r;
                    total++;
                }
            }
        }
        cphil_slpw_end(&w, r->end.method, r->end.lras_initiator, r->end.placements);
        const uint8_t *again;
        size_t n_again;
        CHECK(cphil_slpw_finish(&w, &again, &n_again) == CPHIL_OK);
        CHECK_EQ_INT(n_again, size);
        CHECK(!memcmp(again, data, size));
        CHECK_EQ_INT(agree, total);
        CHECK(total > 1000);
        cphil_slpw_free(&w);
        cphil_replay_free(r);
        cphil_free(data);
    }
}

int main(void) {
    RUN(embed_golden_fox_multishine);
    RUN(embed_golden_old_version_masks);
    RUN(embed_all_frames_in_range);
    RUN(embed_stream_equals_table);
    RUN(synth_read_back_exactly);
    RUN(embed_layout);
    RUN(controller_roundtrip_every_class);
    RUN(controller_nearest_class);
    RUN(action_names);
    RUN(synth_rule);
    RUN(synth_deterministic);
    return harness_done();
}
