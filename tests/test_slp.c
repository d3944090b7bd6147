/* test_slp.c — the replay reader against the shared replays: every MANIFEST.tsv column of every
 * file, the P and D rows of EXPECTED.md, incremental/whole parity (byte at a time and random
 * pieces), stream reports, and damaged inputs (cuts, flipped bytes, empty, not a replay,
 * directory, missing) — these run under the sanitizers too, so they are sampled to stay fast. */
#include "core/core.h"
#include "game/ids.h"
#include "game/synth.h"
#include "harness.h"

#include <math.h>
#include <unistd.h>

/* ---- helpers --------------------------------------------------------------------------- */

static char *path_of(const char *rel) {
    static char buf[8][1024];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", harness_replays_dir(), rel);
    return buf[k];
}

static cphil_replay *load(const char *rel) {
    cphil_replay *r = NULL;
    cphil_status st = cphil_slp_read_file(path_of(rel), &r);
    CHECK_MSG(st == CPHIL_OK && r, "%s: %s", rel, cphil_last_error());
    return r;
}

/* Without the shared replays (a fresh clone) the whole-file tests that need no replay's specific
 * values run on synthetic games: "synth:N" names game N of a fixed series (cphil synth). */
static bool have_replays(void) {
    struct stat st;
    return stat(harness_replays_dir(), &st) == 0 && S_ISDIR(st.st_mode);
}
static const char *const synth_files[] = {"synth:0", "synth:1", "synth:2"};

static uint8_t *slurp(const char *rel, size_t *n) {
    uint8_t *d = NULL;
    if (!strncmp(rel, "synth:", 6)) {
        cphil_synth_opts o = {17, 1, 25};
        CPHIL_ASSERT(cphil_synth_game(&o, atoi(rel + 6), &d, n, NULL) == CPHIL_OK);
        return d;
    }
    cphil_status st = cphil_file_read(path_of(rel), (size_t)1 << 31, &d, n);
    CHECK_MSG(st == CPHIL_OK, "%s", cphil_last_error());
    return d;
}

/* Column-by-column equality of two replays' tables and headers; returns a description of the
 * first difference or NULL. */
static const char *replay_diff(const cphil_replay *a, const cphil_replay *b) {
    static char why[256];
    if (a->n_frames != b->n_frames) return "n_frames";
    if (a->first_frame != b->first_frame || a->last_frame != b->last_frame) return "first/last frame";
    if (a->frame_copies != b->frame_copies || a->rollback_resends != b->rollback_resends) return "copies";
    if (a->item_events != b->item_events || a->n_items != b->n_items) return "items count";
    if (a->n_stage_events != b->n_stage_events || a->stage_event_count != b->stage_event_count) return "stage count";
    if (memcmp(&a->game, &b->game, sizeof a->game)) return "game info";
    if (memcmp(&a->end, &b->end, sizeof a->end)) return "game end";
    if (memcmp(&a->meta, &b->meta, sizeof a->meta)) return "metadata";
    if (a->gecko_list_size != b->gecko_list_size ||
        (a->gecko_list_size && memcmp(a->gecko_list, b->gecko_list, a->gecko_list_size)))
        return "gecko list";
    if (a->truncated != b->truncated || a->in_progress != b->in_progress) return "flags";
    if (a->follower_mask != b->follower_mask) return "follower mask";
    uint32_t n = a->n_frames;
    if (memcmp(a->copies, b->copies, n) || memcmp(a->seed, b->seed, n * 4) ||
        memcmp(a->scene_frame, b->scene_frame, n * 4) || memcmp(a->latest_finalized, b->latest_finalized, n * 4) ||
        memcmp(a->item_count, b->item_count, n * 2) || memcmp(a->stage_count, b->stage_count, n * 2))
        return "frame columns";
    for (uint32_t i = 0; i < n; i++) {
        if (a->item_count[i] && memcmp(a->items + a->item_first[i], b->items + b->item_first[i],
                                       a->item_count[i] * sizeof(cphil_item)))
            return "items";
        if (a->stage_count[i] && memcmp(a->stage_events + a->stage_first[i], b->stage_events + b->stage_first[i],
                                        a->stage_count[i] * sizeof(cphil_stage_event)))
            return "stage events";
    }
    for (int p = 0; p < CPHIL_SLP_PORTS; p++)
        for (int k = 0; k < 2; k++) {
            const cphil_char_columns *x = k ? &a->ports[p].follower : &a->ports[p].leader;
            const cphil_char_columns *y = k ? &b->ports[p].follower : &b->ports[p].leader;
            if (x->allocated != y->allocated) {
                snprintf(why, sizeof why, "port %d %s allocation", p, k ? "follower" : "leader");
                return why;
            }
            if (!x->allocated) continue;
            if (memcmp(x->present, y->present, n)) return "present";
#define X(t, nm, o) if (memcmp(x->pre.nm, y->pre.nm, n * sizeof(t))) { snprintf(why, sizeof why, "pre.%s port %d", #nm, p); return why; }
            CPHIL_PRE_FIELDS(X)
#undef X
#define X(t, nm, o) if (memcmp(x->post.nm, y->post.nm, n * sizeof(t))) { snprintf(why, sizeof why, "post.%s port %d", #nm, p); return why; }
            CPHIL_POST_FIELDS(X)
#undef X
        }
    return NULL;
}

/* ---- MANIFEST.tsv ------------------------------------------------------------------------ */

#define MAX_COLS 16
static int split_tabs(char *line, char **cols) {
    int n = 0;
    cols[n++] = line;
    for (char *p = line; *p; p++)
        if (*p == '\t' && n < MAX_COLS) {
            *p = '\0';
            cols[n++] = p + 1;
        }
    return n;
}

TEST(manifest_every_column) {
    NEED_REPLAYS();
    size_t n;
    uint8_t *text = slurp("MANIFEST.tsv", &n);
    char *buf = cphil_alloc(n + 1);
    memcpy(buf, text, n);
    buf[n] = '\0';
    cphil_free(text);
    int files = 0, bad = 0;
    char *save = NULL;
    char *line = strtok_r(buf, "\n", &save); /* header */
    CHECK(line && !strncmp(line, "file\tslp_version", 16));
    while ((line = strtok_r(NULL, "\n", &save))) {
        char *c[MAX_COLS];
        int nc = split_tabs(line, c);
        if (nc < 15) continue;
        cphil_replay *r = NULL;
        cphil_status st = cphil_slp_read_file(path_of(c[0]), &r);
        CHECK_MSG(st == CPHIL_OK, "%s: %s", c[0], cphil_last_error());
        char got[15][256];
        cphil_replay_version_string(r, got[1], sizeof got[1]);
        snprintf(got[2], 256, "%u", r->raw_length);
        snprintf(got[3], 256, "%u", r->game.stage);
        got[4][0] = '\0';
        for (int p = 0; p < CPHIL_SLP_PORTS; p++) {
            if (r->game.players[p].type == 3) continue;
            size_t l = strlen(got[4]);
            snprintf(got[4] + l, 256 - l, "%sP%d:%u", l ? ";" : "", p + 1, r->game.players[p].character_stored);
        }
        snprintf(got[5], 256, "%u", r->n_frames);
        snprintf(got[6], 256, "%llu", (unsigned long long)r->frame_copies);
        snprintf(got[7], 256, "%d", r->first_frame);
        snprintf(got[8], 256, "%d", r->last_frame);
        if (r->end.present) snprintf(got[9], 256, "%u", r->end.method);
        else snprintf(got[9], 256, "none");
        snprintf(got[10], 256, "%s", r->meta.present ? "yes" : "no");
        if (r->meta.has_last_frame) snprintf(got[11], 256, "%d", r->meta.last_frame);
        else got[11][0] = '\0';
        snprintf(got[12], 256, "%llu", (unsigned long long)r->item_events);
        snprintf(got[13], 256, "%llu", (unsigned long long)r->rollback_resends);
        got[14][0] = '\0';
        for (int p = 0; p < CPHIL_SLP_PORTS; p++)
            if (r->follower_mask & (1u << p)) {
                size_t l = strlen(got[14]);
                snprintf(got[14] + l, 256 - l, "%s%d", l ? ";" : "", p);
            }
        for (int k = 1; k < 15; k++)
            if (strcmp(got[k], c[k])) {
                printf("  %s column %d: want '%s' got '%s'\n", c[0], k + 1, c[k], got[k]);
                bad++;
            }
        /* unique frames: every row holds a frame (no gaps), and metadata lastFrame agrees */
        CHECK(r->last_frame - r->first_frame + 1 == (int32_t)r->n_frames);
        cphil_replay_free(r);
        files++;
    }
    cphil_free(buf);
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(files, 65);
}


/* ---- EXPECTED.md, P rows ------------------------------------------------------------------- */

/* Players in port order, skipping empty slots (slippi-js's settings.players). */
static const cphil_player_info *nth_player(const cphil_replay *r, int k) {
    for (int p = 0; p < CPHIL_SLP_PORTS; p++)
        if (r->game.players[p].type != 3 && k-- == 0) return &r->game.players[p];
    return NULL;
}
static int n_players(const cphil_replay *r) {
    int n = 0;
    for (int p = 0; p < CPHIL_SLP_PORTS; p++) n += r->game.players[p].type != 3;
    return n;
}

TEST(expected_J1_J4_J23_sheik_fix_settings) {
    NEED_REPLAYS();
    cphil_replay *r = load("slippi-js/sheik_vs_ics_yoshis.slp");
    char v[32];
    cphil_replay_version_string(r, v, sizeof v);
    CHECK_STR(v, "0.1.0");
    CHECK_EQ_INT(r->game.stage, 8);
    CHECK_EQ_INT(nth_player(r, 0)->character, 0x13);        /* Sheik after the < 1.6.0 fix */
    CHECK_EQ_INT(nth_player(r, 0)->character_stored, 18);   /* Zelda as stored */
    CHECK_EQ_INT(nth_player(r, n_players(r) - 1)->character, 0xE);
    CHECK(!r->meta.has_last_frame);                          /* 0.1.0 metadata has no lastFrame */
    CHECK_EQ_INT(r->last_frame, 4667);                       /* J67's last finalized frame */
    cphil_replay_free(r);
}

TEST(expected_J5_J13_J56_J69_test_slp) {
    NEED_REPLAYS();
    cphil_replay *r = load("slippi-js/test.slp");
    CHECK_EQ_INT(r->last_frame, 3694);
    CHECK_STR(r->meta.start_at, "2017-12-18T21:14:14Z");
    CHECK_STR(r->meta.played_on, "dolphin");
    CHECK(r->end.present);
    CHECK_EQ_INT(r->end.method, 3);
    CHECK(!r->end.has_lras);       /* lrasInitiatorIndex null */
    CHECK(!r->end.has_placements); /* four null positions */
    CHECK_EQ_INT(n_players(r), 2);
    CHECK_EQ_INT(nth_player(r, 1)->port, 3);
    CHECK_EQ_INT(nth_player(r, 1)->type, 1); /* CPU */
    cphil_replay_free(r);
}

TEST(expected_J15_incomplete_raw_length_zero) {
    NEED_REPLAYS();
    cphil_replay *r = load("slippi-js/incomplete.slp");
    CHECK_EQ_INT(n_players(r), 2);
    CHECK(!r->meta.present);
    CHECK(r->in_progress);
    CHECK(!r->truncated); /* ends exactly on an event boundary */
    CHECK(!r->end.present);
    cphil_replay_free(r);
}

TEST(expected_J16_J18_nametags_shift_jis) {
    NEED_REPLAYS();
    cphil_replay *r = load("slippi-js/nametags.slp");
    CHECK_STR(nth_player(r, 0)->nametag, "AMN\xe3\x82\xa4"); /* AMNイ */
    CHECK_STR(nth_player(r, 1)->nametag, "");
    cphil_replay_free(r);
    r = load("slippi-js/nametags2.slp");
    CHECK_STR(nth_player(r, 0)->nametag, "A1=$");
    CHECK_STR(nth_player(r, 1)->nametag, "\xe3\x81\x8b\xe3\x80\x81" "9@"); /* か、9@ */
    cphil_replay_free(r);
    r = load("slippi-js/nametags3.slp");
    CHECK_STR(nth_player(r, 0)->nametag, "B  R");
    CHECK_STR(nth_player(r, 1)->nametag, ".  \xe3\x80\x82"); /* .  。 */
    cphil_replay_free(r);
}

TEST(expected_J20_J21_J22_console_pal_controller_fixes) {
    NEED_REPLAYS();
    cphil_replay *r = load("slippi-js/realtimeTest.slp");
    CHECK_STR(r->meta.console_nick, "Day 1");
    cphil_replay_free(r);
    r = load("slippi-js/pal.slp");
    CHECK(r->game.is_pal);
    cphil_replay_free(r);
    r = load("slippi-js/ntsc.slp");
    CHECK(!r->game.is_pal);
    cphil_replay_free(r);
    r = load("slippi-js/controllerFixes.slp");
    CHECK_EQ_INT(nth_player(r, 0)->dashback_fix, 2);
    CHECK_EQ_INT(nth_player(r, 0)->shielddrop_fix, 2);
    CHECK_EQ_INT(nth_player(r, 1)->dashback_fix, 1);
    CHECK_EQ_INT(nth_player(r, 1)->shielddrop_fix, 1);
    CHECK_EQ_INT(nth_player(r, 2)->dashback_fix, 0);
    CHECK_EQ_INT(nth_player(r, 2)->shielddrop_fix, 0);
    CHECK_EQ_INT(r->game.players[3].type, 3);
    cphil_replay_free(r);
}

TEST(expected_J25_gecko_list_reassembled) {
    NEED_REPLAYS();
    cphil_replay *r = load("slippi-js/geckoCodes.slp");
    CHECK_EQ_INT(r->payload_size[0x3D], 4960); /* the declared size wrapped */
    CHECK_EQ_INT(r->gecko_list_size, 70496);
    uint32_t first = 0;
    CHECK_EQ_INT(cphil_replay_gecko_codes(r, &first), 457);
    CHECK_EQ_INT(first, 0x8015ee98u);
    cphil_replay_free(r);
}

TEST(expected_J28_J31_match_info) {
    NEED_REPLAYS();
    cphil_replay *r = load("slippi-js/ranked_game1_tiebreak.slp");
    CHECK(r->game.has_match_info);
    CHECK_EQ_INT(r->game.game_number, 1);
    CHECK_EQ_INT(r->game.tiebreaker_number, 1);
    CHECK_STR(r->game.match_id, "mode.ranked-2022-12-20T05:36:47.50-0");
    cphil_replay_free(r);
    r = load("slippi-js/unranked_game1.slp");
    CHECK_EQ_INT(r->game.game_number, 1);
    CHECK_EQ_INT(r->game.tiebreaker_number, 0);
    CHECK_STR(r->game.match_id, "mode.unranked-2022-12-21T02:26:27.50-0");
    cphil_replay_free(r);
    r = load("slippi-js/unranked_game2.slp");
    CHECK_EQ_INT(r->game.game_number, 2);
    CHECK_EQ_INT(r->game.tiebreaker_number, 0);
    CHECK_STR(r->game.match_id, "mode.unranked-2022-12-21T02:26:27.50-0");
    cphil_replay_free(r);
    r = load("slippi-js/geckoCodes.slp");
    CHECK(!r->game.has_match_info);
    CHECK_STR(r->game.match_id, "");
    cphil_replay_free(r);
}

TEST(expected_J41_J42_doubles_eliminated_port) {
    NEED_REPLAYS();
    cphil_replay *r = load("slippi-js/doubles.slp");
    CHECK_EQ_INT(n_players(r), 4);
    const cphil_char_columns *c = &r->ports[0].leader;
    int32_t f0 = r->first_frame;
#define PRESENT(f) (c->present[(f) - f0] != 0)
    CHECK(PRESENT(7754));
    for (int f = 7755; f <= 7782; f++) CHECK_MSG(!PRESENT(f), "frame %d present", f);
    for (int f = 7783; f <= 8236; f++) CHECK_MSG(PRESENT(f), "frame %d absent", f);
    for (int f = 8237; f <= r->meta.last_frame; f++) CHECK_MSG(!PRESENT(f), "frame %d present", f);
#undef PRESENT
    CHECK_EQ_INT(r->meta.last_frame, 8742);
    /* an absent row is all zero */
    CHECK(c->post.x[7760 - f0] == 0.0f && c->pre.buttons[7760 - f0] == 0);
    cphil_replay_free(r);
}

TEST(expected_J49_J94_not_stadium) {
    NEED_REPLAYS();
    cphil_replay *r = load("slippi-js/facingDirection.slp");
    CHECK(r->game.stage != 84 && r->game.major_scene != 0x20 && r->game.major_scene != 0x0F);
    cphil_replay_free(r);
    r = load("slippi-js/BTTDK.slp");
    CHECK_EQ_INT(r->game.major_scene, 0x0F);
    CHECK_EQ_INT(r->game.stage, 36);
    CHECK_EQ_INT(r->end.method, 6);
    cphil_replay_free(r);
}

TEST(expected_J51_item_owner_range) {
    NEED_REPLAYS();
    cphil_replay *r = load("slippi-js/itemExport.slp");
    CHECK_EQ_INT(r->n_items, 878);
    for (uint32_t i = 0; i < r->n_items; i++) CHECK(r->items[i].owner >= -1 && r->items[i].owner <= 3);
    cphil_replay_free(r);
}

static void check_placements(const char *rel, int a, int b, int c, int d) {
    cphil_replay *r = load(rel);
    CHECK_MSG(r->end.has_placements, "%s", rel);
    CHECK_EQ_INT(r->end.placements[0], a);
    CHECK_EQ_INT(r->end.placements[1], b);
    CHECK_EQ_INT(r->end.placements[2], c);
    CHECK_EQ_INT(r->end.placements[3], d);
    cphil_replay_free(r);
}

TEST(expected_J57_J64_J70_J71_placements_lras_teams) {
    NEED_REPLAYS();
    cphil_replay *r = load("slippi-js/unranked_game1.slp");
    CHECK_EQ_INT(r->end.method, 7);
    CHECK_EQ_INT(r->end.lras_initiator, 0); /* so the winner of this 2-player No Contest is index 1 */
    CHECK_EQ_INT(n_players(r), 2);
    CHECK(r->game.players[1].type != 3);
    cphil_replay_free(r);
    check_placements("slippi-js/placementsTest/ffa_1p2p_winner_2p.slp", 1, 0, -1, -1);
    check_placements("slippi-js/placementsTest/ffa_1p2p3p_winner_3p.slp", 1, 2, 0, -1);
    check_placements("slippi-js/placementsTest/ffa_1p2p4p_winner_4p.slp", 1, 2, -1, 0);
    check_placements("slippi-js/placementsTest/teams_p1p2_blueVSp4_green_winner_green.slp", 1, 2, -1, 0);
    check_placements("slippi-js/placementsTest/teams_time_p3_redVSp1p2_blueVSp4_green_winner_blue.slp", 1, 0, 3, 2);
    r = load("slippi-js/placementsTest/teams_p1p2_blueVSp4_green_winner_green.slp");
    CHECK(r->game.teams);
    CHECK_EQ_INT(nth_player(r, 0)->team_id, 1);
    CHECK_EQ_INT(nth_player(r, 1)->team_id, 1);
    CHECK_EQ_INT(nth_player(r, 2)->team_id, 2);
    CHECK_EQ_INT(nth_player(r, 2)->port, 4);
    cphil_replay_free(r);
    r = load("slippi-js/placementsTest/teams_time_p3_redVSp1p2_blueVSp4_green_winner_blue.slp");
    CHECK_EQ_INT(r->end.method, 1);
    int want[4] = {1, 1, 0, 2};
    for (int k = 0; k < 4; k++) CHECK_EQ_INT(nth_player(r, k)->team_id, want[k]);
    cphil_replay_free(r);
}

TEST(expected_X1_fox_multishine_characters) {
    NEED_REPLAYS();
    cphil_replay *r = load("exphil/fox_multishine_closed.slp");
    CHECK_EQ_INT(r->game.players[0].character, 2);
    CHECK_EQ_INT(r->game.players[1].character, 2);
    for (uint32_t i = 0; i < 300; i++)
        for (int p = 0; p < 2; p++) {
            CHECK(r->ports[p].leader.present[i] == 3);
            CHECK_EQ_INT(r->ports[p].leader.post.character[i], 1);
        }
    cphil_replay_free(r);
}

/* ---- EXPECTED.md, D rows ------------------------------------------------------------------- */

TEST(expected_J27_rollback_counts) {
    NEED_REPLAYS();
    cphil_replay *r = load("slippi-js/rollbackFrameTest.slp");
    CHECK_EQ_INT(r->rollback_resends, 4292);
    CHECK_EQ_INT(r->rollback_runs, 2543);
    CHECK(fabs((double)r->rollback_resends / (double)r->rollback_runs - 1.6877703499803383) < 1e-15);
    CHECK_EQ_INT(r->n_items, 517); /* items of the final copies only (693 over all copies) */
    CHECK_EQ_INT(r->item_events, 693);
    uint64_t copies = 0;
    for (uint32_t i = 0; i < r->n_frames; i++) copies += r->copies[i];
    CHECK_EQ_INT(copies, 13569);
    CHECK_EQ_INT(r->game.major_scene, 8);
    /* metadata character counts include re-sends */
    CHECK_EQ_INT(r->meta.players[0].n_characters, 1);
    CHECK_EQ_INT(r->meta.players[0].characters[0].frames, 13569);
    cphil_replay_free(r);
}

/* HRC distance from the Sandbag's (internal 32) x on the last frame (EXPECTED.md J47/J48). */
static double hrc_distance(const cphil_replay *r) {
    uint32_t last = r->n_frames - 1;
    for (int p = 0; p < CPHIL_SLP_PORTS; p++) {
        const cphil_char_columns *c = &r->ports[p].leader;
        if (!c->allocated || !(c->present[last] & CPHIL_PRESENT_POST) || c->post.character[last] != 32) continue;
        double x = c->post.x[last], s;
        if (r->game.has_language && r->game.language == 0) { /* meters (Japanese) */
            s = (float)(10.0 * floor(x - 70 * 1.04167));
            s = floor(s / 100 * 10) / 10;
        } else {
            s = (float)(10.0 * floor(x - 70 * 0.952462));
            s = floor(s / 30.4788 * 10) / 10;
        }
        s = round(s * 10) / 10;
        return s < 0 ? 0 : s;
    }
    return -1;
}

TEST(expected_J47_J48_home_run_distance) {
    NEED_REPLAYS();
    cphil_replay *r = load("slippi-js/homeRun_positive.slp");
    CHECK_EQ_INT(r->game.major_scene, 0x20);
    CHECK(fabs(hrc_distance(r) - 1070.9) < 0.5);
    cphil_replay_free(r);
    r = load("slippi-js/homeRun_jp.slp");
    CHECK(r->game.has_language && r->game.language == 0);
    CHECK(fabs(hrc_distance(r) - 110.8) < 0.5);
    cphil_replay_free(r);
}

TEST(expected_J50_item_spawn_ids_in_order) {
    NEED_REPLAYS();
    cphil_replay *r = load("slippi-js/itemExport.slp");
    int64_t largest = -1;
    for (uint32_t i = 0; i < r->n_frames; i++)
        for (uint32_t k = 0; k < r->item_count[i]; k++) {
            int64_t id = r->items[r->item_first[i] + k].spawn_id;
            if (id > largest) {
                CHECK_EQ_INT(id, largest + 1);
                largest = id;
            }
        }
    CHECK_EQ_INT(largest, 11);
    cphil_replay_free(r);
}

TEST(expected_J73_J74_stage_events) {
    NEED_REPLAYS();
    cphil_replay *r = load("slippi-js/FodPlatforms.slp");
    float h[2] = {28.0f, 20.0f}; /* platform 0 right starts at 28, 1 left at 20 */
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->n_frames; i++)
        for (uint32_t k = 0; k < r->stage_count[i]; k++) {
            const cphil_stage_event *e = &r->stage_events[r->stage_first[i] + k];
            CHECK_EQ_INT(e->code, 0x3F);
            CHECK(e->platform <= 1);
            CHECK_MSG(fabsf(e->height - h[e->platform]) < 0.2f, "frame %d", r->first_frame + (int)i);
            h[e->platform] = e->height;
            n++;
        }
    CHECK(n > 100);
    cphil_replay_free(r);
    r = load("slippi-js/Whispy.slp");
    int prev = 0;
    n = 0;
    for (uint32_t i = 0; i < r->n_frames; i++)
        for (uint32_t k = 0; k < r->stage_count[i]; k++) {
            const cphil_stage_event *e = &r->stage_events[r->stage_first[i] + k];
            CHECK_EQ_INT(e->code, 0x40);
            if (prev == 1 || prev == 2) CHECK_EQ_INT(e->direction, 0);
            else CHECK(e->direction != 0);
            prev = e->direction;
            n++;
        }
    CHECK(n > 10);
    cphil_replay_free(r);
}

static void lcancels(const cphil_replay *r, int port, int *ok, int *bad) {
    const cphil_char_columns *c = &r->ports[port].leader;
    *ok = *bad = 0;
    for (uint32_t i = 0; i < r->n_frames; i++) {
        if (!(c->present[i] & CPHIL_PRESENT_POST)) continue;
        unsigned as = c->post.action_state[i];
        if (as < 0x41 || as > 0x4A) continue;
        *ok += c->post.l_cancel[i] == 1;
        *bad += c->post.l_cancel[i] == 2;
    }
}

TEST(expected_J75_J81_l_cancels) {
    NEED_REPLAYS();
    int ok, bad;
    cphil_replay *r = load("slippi-js/lCancel.slp");
    lcancels(r, 0, &ok, &bad);
    CHECK(ok == 3 && bad == 4);
    lcancels(r, 1, &ok, &bad);
    CHECK(ok == 5 && bad == 4);
    cphil_replay_free(r);
    r = load("slippi-js/gnwActions.slp");
    lcancels(r, 1, &ok, &bad); /* players[0] is port 2 */
    CHECK(ok == 2 && bad == 0);
    cphil_replay_free(r);
}

static int has_spawn(const cphil_replay *r, uint32_t row, uint32_t id) {
    for (uint32_t k = 0; k < r->item_count[row]; k++)
        if (r->items[r->item_first[row] + k].spawn_id == id) return 1;
    return 0;
}

TEST(expected_J93_targets_broken) {
    NEED_REPLAYS();
    cphil_replay *r = load("slippi-js/BTTDK.slp");
    int broken = 0, targets = 0;
    for (uint32_t k = 0; k < r->item_count[0]; k++) {
        const cphil_item *it = &r->items[r->item_first[0] + k];
        if (it->type != 209) continue;
        targets++;
        for (uint32_t i = 1; i < r->n_frames; i++)
            if (has_spawn(r, i - 1, it->spawn_id) && !has_spawn(r, i, it->spawn_id)) {
                broken++;
                break;
            }
    }
    CHECK_EQ_INT(targets, 10);
    CHECK_EQ_INT(broken, 10);
    cphil_replay_free(r);
}

/* ---- incremental parser ---------------------------------------------------------------------- */

static uint32_t rng_state = 12345;
static uint32_t rng(void) {
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state >> 8;
}

/* Feed `d` in pieces (piece = 0: random sizes 1..8192; else that size) and compare with the
 * whole read. */
static void check_parity(const char *rel, size_t piece) {
    size_t n;
    uint8_t *d = slurp(rel, &n);
    cphil_replay *whole = NULL;
    cphil_status st = cphil_slp_read_mem(d, n, rel, &whole);
    CHECK_MSG(st == CPHIL_OK, "%s", cphil_last_error());
    cphil_slp_stream *s;
    CHECK(cphil_slp_stream_open(&s, NULL, rel) == CPHIL_OK);
    size_t pos = 0;
    while (pos < n) {
        size_t k = piece ? piece : 1 + rng() % 8192;
        if (k > n - pos) k = n - pos;
        st = cphil_slp_stream_feed(s, d + pos, k);
        CHECK_MSG(st == CPHIL_OK, "%s at %zu: %s", rel, pos, cphil_last_error());
        pos += k;
    }
    CHECK(cphil_slp_stream_finish(s) == CPHIL_OK);
    cphil_replay *inc = cphil_slp_stream_take(s);
    cphil_slp_stream_close(s);
    const char *why = replay_diff(whole, inc);
    CHECK_MSG(!why, "%s: piece %zu: %s differs", rel, piece, why);
    cphil_replay_free(whole);
    cphil_replay_free(inc);
    cphil_free(d);
}

TEST(parity_byte_at_a_time) {
    if (!have_replays()) {
        check_parity("synth:0", 1);
        return;
    }
    static const char *const files[] = {
        "slippi-js/nametags.slp",                    /* 1.7.1 */
        "slippi-js/sheik_vs_ics_yoshis.slp",         /* 0.1.0, followers, Sheik fix */
        "slippi-js/geckoCodes.slp",                  /* splitter, no Game End */
        "slippi-js/consistencyTest/NessVFox-Absorb.slp", /* rollback re-sends, items */
        "slippi-js/incomplete.slp",                  /* raw length 0 */
        "exphil/fox_multishine.slp",                 /* 3.19.1 */
    };
    for (size_t i = 0; i < CPHIL_ARRAY_LEN(files); i++) check_parity(files[i], 1);
}

TEST(parity_random_pieces_all_files) {
    if (!have_replays()) {
        for (size_t i = 0; i < CPHIL_ARRAY_LEN(synth_files); i++) check_parity(synth_files[i], 0);
        return;
    }
    size_t n;
    uint8_t *text = slurp("MANIFEST.tsv", &n);
    char *buf = cphil_alloc(n + 1);
    memcpy(buf, text, n);
    buf[n] = '\0';
    cphil_free(text);
    char *save = NULL;
    char *line = strtok_r(buf, "\n", &save);
    int files = 0;
    while ((line = strtok_r(NULL, "\n", &save))) {
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        *tab = '\0';
        check_parity(line, 0);
        files++;
    }
    cphil_free(buf);
    CHECK_EQ_INT(files, 65);
}

typedef struct report_log {
    uint32_t n_frames, n_starts, n_ends;
    int32_t expect;
    int bad;
    uint64_t *hash; /* per reported frame */
    uint64_t *copy_hash; /* per frame: the hash of its latest copy reported by on_copy */
    uint32_t cap;
    uint64_t n_copies;
} report_log;

static uint64_t frame_hash(const cphil_frame *f) {
    uint64_t h = 1469598103934665603ull;
    const uint8_t *p = (const uint8_t *)f->ports;
    for (size_t i = 0; i < sizeof f->ports; i++) h = (h ^ p[i]) * 1099511628211ull;
    p = (const uint8_t *)f->items;
    for (size_t i = 0; i < f->n_items * sizeof(cphil_item); i++) h = (h ^ p[i]) * 1099511628211ull;
    p = (const uint8_t *)f->stage_events;
    for (size_t i = 0; i < f->n_stage_events * sizeof(cphil_stage_event); i++) h = (h ^ p[i]) * 1099511628211ull;
    h ^= (uint64_t)(uint32_t)f->frame * 31 + f->n_items;
    return h;
}

static void on_start(void *u, const cphil_replay *r) {
    report_log *l = u;
    l->n_starts++;
    if (!r->has_game_start) l->bad++;
}
static void on_end(void *u, const cphil_replay *r) {
    report_log *l = u;
    l->n_ends++;
    if (!r->end.present) l->bad++;
}
static void on_frame(void *u, const cphil_replay *r, const cphil_frame *f) {
    report_log *l = u;
    (void)r;
    if (l->n_frames == 0) l->expect = f->frame;
    if (f->frame != l->expect || f->index != l->n_frames) l->bad++;
    l->expect++;
    if (l->n_frames < l->cap) l->hash[l->n_frames] = frame_hash(f);
    l->n_frames++;
}

static void on_copy(void *u, const cphil_replay *r, const cphil_frame *f) {
    report_log *l = u;
    (void)r;
    l->n_copies++;
    if (f->index < l->cap) l->copy_hash[f->index] = frame_hash(f);
    if (f->index > l->n_frames + 64) l->bad++; /* a copy is reported before its frame is final */
}

/* Each frame is reported once, in order, and (without late re-sends) equals the final row;
 * every copy is reported by on_copy, and the last copy of each frame equals the final row. */
static void check_reports(const char *rel, size_t piece, uint32_t *n_reported) {
    size_t n;
    uint8_t *d = slurp(rel, &n);
    report_log log;
    memset(&log, 0, sizeof log);
    log.cap = 1 << 16;
    log.hash = cphil_alloc(log.cap * sizeof *log.hash);
    log.copy_hash = cphil_alloc(log.cap * sizeof *log.copy_hash);
    cphil_slp_callbacks cb = {on_start, on_frame, on_end, &log};
    cphil_slp_stream *s;
    CHECK(cphil_slp_stream_open(&s, &cb, rel) == CPHIL_OK);
    cphil_slp_stream_on_copy(s, on_copy);
    for (size_t pos = 0; pos < n; pos += piece)
        CHECK(cphil_slp_stream_feed(s, d + pos, piece < n - pos ? piece : n - pos) == CPHIL_OK);
    CHECK(cphil_slp_stream_finish(s) == CPHIL_OK);
    const cphil_replay *r = cphil_slp_stream_replay(s);
    CHECK_EQ_INT(log.bad, 0);
    CHECK_EQ_INT(log.n_starts, 1);
    CHECK_EQ_INT(log.n_ends, r->end.count);
    CHECK_EQ_INT(log.n_frames, r->n_frames);
    CHECK_EQ_INT(cphil_slp_stream_final_frames(s), r->n_frames);
    CHECK_EQ_INT(log.n_copies, r->frame_copies);
    uint32_t same = 0, same_copy = 0;
    for (uint32_t i = 0; i < r->n_frames && i < log.cap; i++) {
        cphil_frame f;
        cphil_replay_get_frame(r, i, &f);
        same += frame_hash(&f) == log.hash[i];
        same_copy += frame_hash(&f) == log.copy_hash[i];
    }
    CHECK_EQ_INT(same_copy, r->n_frames);
    *n_reported = same;
    cphil_slp_stream_close(s);
    cphil_free(log.hash);
    cphil_free(log.copy_hash);
    cphil_free(d);
}

TEST(stream_reports_each_final_frame_once) {
    uint32_t same;
    if (!have_replays()) { /* no re-sends in a synthetic game: every report is the final row */
        size_t n;
        uint8_t *d = slurp("synth:0", &n);
        cphil_replay *r = NULL;
        CHECK(cphil_slp_read_mem(d, n, "synth:0", &r) == CPHIL_OK);
        check_reports("synth:0", 997, &same);
        CHECK_EQ_INT(same, r->n_frames);
        cphil_replay_free(r);
        cphil_free(d);
        return;
    }
    /* online (finalized by the Bookend's latest-finalized frame): every report is the final copy */
    check_reports("slippi-js/rollbackFrameTest.slp", 4096, &same);
    CHECK_EQ_INT(same, 9277);
    /* 0.1.0, no Frame Start/Bookend (J67: consecutive from -123 to 4667) */
    check_reports("slippi-js/sheik_vs_ics_yoshis.slp", 1000, &same);
    CHECK_EQ_INT(same, 4791);
    check_reports("slippi-js/itemExport.slp", 333, &same);
    CHECK_EQ_INT(same, 1991);
}

/* J26: the file fed progressively; values after each step. */
TEST(expected_J26_realtime_progressive) {
    NEED_REPLAYS();
    size_t n;
    uint8_t *d = slurp("slippi-js/realtimeTest.slp", &n);
    CHECK_EQ_INT(n, 535610);
    cphil_slp_stream *s;
    CHECK(cphil_slp_stream_open(&s, NULL, "realtimeTest") == CPHIL_OK);
    const cphil_replay *r = cphil_slp_stream_replay(s);
    size_t pos = 0, steps[] = {0x1d, 0x1a3, 0xe8 * 3, 0x8271b, 0xa7};
    CHECK(cphil_slp_stream_feed(s, d, steps[0]) == CPHIL_OK);
    pos += steps[0];
    CHECK(!r->has_game_start);
    CHECK(cphil_slp_stream_feed(s, d + pos, steps[1]) == CPHIL_OK);
    pos += steps[1];
    CHECK(r->has_game_start);
    CHECK_EQ_INT(r->game.stage, 8);
    CHECK(cphil_slp_stream_feed(s, d + pos, steps[2]) == CPHIL_OK);
    pos += steps[2];
    CHECK_EQ_INT(r->n_frames, 3);
    CHECK_EQ_INT(r->last_frame, -121);
    CHECK(cphil_slp_stream_feed(s, d + pos, steps[3]) == CPHIL_OK);
    pos += steps[3];
    CHECK_EQ_INT(r->n_frames, 2306);
    CHECK_EQ_INT(r->last_frame, 2182);
    CHECK(r->end.present && r->end.method == 7);
    CHECK(!r->meta.present);
    CHECK(cphil_slp_stream_feed(s, d + pos, steps[4]) == CPHIL_OK);
    pos += steps[4];
    CHECK_EQ_INT(pos, n);
    CHECK(cphil_slp_stream_finish(s) == CPHIL_OK);
    CHECK_STR(r->meta.played_on, "network");
    cphil_slp_stream_close(s);
    cphil_free(d);
}

/* ---- damaged input ------------------------------------------------------------------------- */

/* Cut `rel` at many points: a cut inside the raw data gives CPHIL_E_TRUNCATED with the frames
 * before the cut (equal to the whole file's rows); never a crash. */
static void check_cuts(const char *rel, int samples) {
    size_t n;
    uint8_t *d = slurp(rel, &n);
    cphil_replay *full = NULL;
    CHECK(cphil_slp_read_mem(d, n, rel, &full) == CPHIL_OK);
    size_t raw_end = 15 + (size_t)full->raw_length;
    for (int k = 0; k < samples; k++) {
        size_t cut;
        if (k < 20) cut = (size_t)k;                      /* header and Event Payloads */
        else if (k < 24) cut = raw_end - 2 + (size_t)(k - 20); /* around the end of raw */
        else if (k < 28) cut = n - 1 - (size_t)(k - 24);  /* inside the metadata */
        else cut = 20 + rng() % (n - 20);
        if (cut >= n) continue;
        uint8_t *c = cphil_alloc(cut ? cut : 1);
        memcpy(c, d, cut);
        cphil_replay *r = NULL;
        cphil_status st = cphil_slp_read_mem(c, cut, rel, &r);
        if (cut == 0) {
            CHECK(st == CPHIL_E_FORMAT && !r && strstr(cphil_last_error(), "empty"));
        } else {
            CHECK_MSG(st == CPHIL_E_TRUNCATED, "%s cut at %zu: status %s: %s", rel, cut, cphil_status_name(st),
                      cphil_last_error());
            CHECK(r && r->truncated);
            CHECK(strstr(cphil_last_error(), rel) && strstr(cphil_last_error(), "byte"));
            CHECK(r->n_frames <= full->n_frames);
            if (cut >= raw_end) CHECK_EQ_INT(r->n_frames, full->n_frames);
            /* every row but the last (possibly partial) one equals the whole file's */
            for (int p = 0; p < CPHIL_SLP_PORTS; p++) {
                const cphil_char_columns *a = &r->ports[p].leader, *b = &full->ports[p].leader;
                if (!a->allocated) continue;
                for (uint32_t i = 0; i + 1 < r->n_frames; i++)
                    if (a->present[i] != b->present[i] || a->post.x[i] != b->post.x[i] ||
                        a->pre.buttons[i] != b->pre.buttons[i])
                        CHECK_MSG(0, "%s cut at %zu: row %u differs", rel, cut, i);
            }
        }
        cphil_replay_free(r);
        cphil_free(c);
    }
    cphil_replay_free(full);
    cphil_free(d);
}

TEST(damaged_truncated_at_many_points) {
    if (!have_replays()) {
        check_cuts("synth:1", 80);
        return;
    }
    check_cuts("slippi-js/nametags.slp", 80);
    check_cuts("slippi-js/geckoCodes.slp", 80);
    check_cuts("slippi-js/consistencyTest/NessVFox-Absorb.slp", 60);
    check_cuts("slippi-js/unranked_game2.slp", 60);
}

TEST(expected_X2_truncated_by_5137_bytes) {
    NEED_REPLAYS();
    size_t n;
    uint8_t *d = slurp("exphil/fox_multishine_closed.slp", &n);
    cphil_replay *r = NULL;
    cphil_status st = cphil_slp_read_mem(d, n - 5137, "fox_multishine_closed.slp", &r);
    CHECK(st == CPHIL_E_TRUNCATED); /* strict: an error */
    CHECK(r && r->truncated && r->n_frames > 100); /* lenient: the frames before the cut */
    CHECK(!r->meta.present);
    cphil_replay_free(r);
    cphil_free(d);
}

TEST(damaged_flipped_bytes) {
    static const char *const real_files[] = {"slippi-js/nametags.slp", "slippi-js/unranked_game2.slp",
                                             "slippi-js/consistencyTest/KirbyVMario-nB.slp"};
    const char *const *files = have_replays() ? real_files : synth_files;
    int errors = 0, trials = 0;
    for (size_t fi = 0; fi < 3; fi++) {
        size_t n;
        uint8_t *d = slurp(files[fi], &n);
        uint8_t *c = cphil_alloc(n);
        for (int t = 0; t < 150; t++) {
            memcpy(c, d, n);
            int flips = 1 + (int)(rng() % 4);
            for (int k = 0; k < flips; k++) {
                /* half the flips land in the first 2 KB (header, payload table, Game Start) */
                size_t at = (rng() & 1) ? rng() % (n < 2048 ? n : 2048) : rng() % n;
                c[at] ^= (uint8_t)(1u << (rng() % 8));
            }
            cphil_replay *r = NULL;
            cphil_status st = cphil_slp_read_mem(c, n, files[fi], &r);
            trials++;
            if (st == CPHIL_OK || st == CPHIL_E_TRUNCATED) CHECK(r != NULL);
            else CHECK(r == NULL);
            if (st) {
                errors++;
                CHECK(strstr(cphil_last_error(), files[fi]) != NULL);
            }
            cphil_replay_free(r);
        }
        cphil_free(c);
        cphil_free(d);
    }
    CHECK(errors > 0 && errors < trials); /* some flips are harmless (inside floats), some are not */
}

static cphil_status read_bytes(const uint8_t *d, size_t n, cphil_replay **r) {
    return cphil_slp_read_mem(d, n, "synthetic.slp", r);
}

TEST(damaged_synthetic_absurd_sizes) {
    cphil_replay *r = NULL;
    /* raw length 0xFFFFFFF0 with a tiny body: truncated, not an allocation of 4 GB */
    uint8_t a[] = {'{', 'U', 3, 'r', 'a', 'w', '[', '$', 'U', '#', 'l', 0xFF, 0xFF, 0xFF, 0xF0,
                   0x35, 4, 0x36, 0x01, 0xA0};
    CHECK(read_bytes(a, sizeof a, &r) == CPHIL_E_TRUNCATED);
    CHECK(r && r->truncated && !r->has_game_start);
    cphil_replay_free(r);
    /* Event Payloads with a size that is not 3k+1 */
    uint8_t b[] = {'{', 'U', 3, 'r', 'a', 'w', '[', '$', 'U', '#', 'l', 0, 0, 0, 3, 0x35, 2, 0x36};
    CHECK(read_bytes(b, sizeof b, &r) == CPHIL_E_FORMAT && !r);
    CHECK(strstr(cphil_last_error(), "byte 15") != NULL);
    /* Pre-Frame declared with 2 bytes: too short to hold its frame number */
    uint8_t c[] = {'{', 'U', 3, 'r', 'a', 'w', '[', '$', 'U', '#', 'l', 0, 0, 0, 8,
                   0x35, 7, 0x36, 0x00, 0x04, 0x37, 0x00, 0x02, '}'};
    CHECK(read_bytes(c, sizeof c, &r) == CPHIL_E_FORMAT && !r);
    CHECK(strstr(cphil_last_error(), "0x37") != NULL);
    /* an event longer than what is left of the raw element */
    uint8_t e[] = {'{', 'U', 3, 'r', 'a', 'w', '[', '$', 'U', '#', 'l', 0, 0, 0, 6,
                   0x35, 4, 0x36, 0xFF, 0xFF, 0x36, '}'};
    CHECK(read_bytes(e, sizeof e, &r) == CPHIL_E_FORMAT && !r);
    CHECK(strstr(cphil_last_error(), "raw element") != NULL);
    /* an undeclared code inside a sized raw element, after Game Start: damage in the middle,
     * read like slippi-js (what came before is kept) with a warning, not an error */
    uint8_t f[] = {'{', 'U', 3, 'r', 'a', 'w', '[', '$', 'U', '#', 'l', 0, 0, 0, 11,
                   0x35, 4, 0x36, 0x00, 0x04, 0x36, 3, 0, 0, 0, 0x99, '}'};
    CHECK(read_bytes(f, sizeof f, &r) == CPHIL_OK);
    CHECK(r && r->damaged && r->damaged_at == 25 && r->n_frames == 0 && r->has_game_start);
    CHECK(r && strstr(r->warning, "byte 25") && strstr(r->warning, "0x99") && strstr(r->warning, "synthetic.slp"));
    cphil_replay_free(r);
    /* the same code before Game Start: nothing to keep, an error */
    uint8_t f2[] = {'{', 'U', 3, 'r', 'a', 'w', '[', '$', 'U', '#', 'l', 0, 0, 0, 6,
                    0x35, 4, 0x36, 0x00, 0x04, 0x99, '}'};
    CHECK(read_bytes(f2, sizeof f2, &r) == CPHIL_E_FORMAT && !r);
    CHECK(strstr(cphil_last_error(), "byte 20") && strstr(cphil_last_error(), "0x99"));
    /* declared-but-unknown codes (even of size 0) are skipped; no metadata element is fine */
    uint8_t g[] = {'{', 'U', 3, 'r', 'a', 'w', '[', '$', 'U', '#', 'l', 0, 0, 0, 14,
                   0x35, 7, 0x36, 0x00, 0x04, 0xFF, 0x00, 0x00, 0x36, 3, 0, 0, 0, 0xFF, '}'};
    CHECK(read_bytes(g, sizeof g, &r) == CPHIL_OK);
    CHECK(r && r->has_game_start && r->unknown_events == 1 && !r->meta.present && r->n_frames == 0);
    cphil_replay_free(r);
    /* a bare event stream (what Dolphin sends live) whose frame numbers start at INT32_MIN
     * (found by the fuzzer): a re-send, then the next frame; no overflow */
    uint8_t h[] = {0x35, 7, 0x36, 0x00, 0x04, 0x3A, 0x00, 0x04, 0x36, 3, 0, 0, 0,
                   0x3A, 0x80, 0, 0, 0, 0x3A, 0x80, 0, 0, 0, 0x3A, 0x80, 0, 0, 1};
    CHECK(read_bytes(h, sizeof h, &r) == CPHIL_OK);
    CHECK(r && r->in_progress && r->n_frames == 2 && r->frame_copies == 3 && r->rollback_resends == 1);
    CHECK(r->first_frame == INT32_MIN && r->last_frame == INT32_MIN + 1);
    cphil_replay_free(r);
    /* an empty last Message Splitter piece (found by the fuzzer): no copy from a NULL buffer */
    uint8_t sp[5 + 3 + 5 + 517];
    memset(sp, 0, sizeof sp);
    uint8_t sp_head[] = {0x35, 7, 0x36, 0x00, 0x04, 0x10, 0x02, 0x04, 0x36, 3, 0, 0, 0};
    memcpy(sp, sp_head, sizeof sp_head);
    sp[13] = 0x10;
    sp[13 + 0x203] = 0x3D; /* carried code */
    sp[13 + 0x204] = 1;    /* last piece; actual size 0 */
    CHECK(read_bytes(sp, sizeof sp, &r) == CPHIL_OK);
    CHECK(r && r->gecko_list_size == 0 && cphil_replay_gecko_codes(r, NULL) == 0);
    cphil_replay_free(r);
    /* not a replay at all */
    const char *txt = "hello, world\n";
    CHECK(read_bytes((const uint8_t *)txt, strlen(txt), &r) == CPHIL_E_FORMAT && !r);
    CHECK(strstr(cphil_last_error(), "not a Slippi replay") && strstr(cphil_last_error(), "byte 0"));
}

/* Offsets of the events of a whole .slp in d[0..n): the Frame Start (0x3A) of frame `want`
 * and the Post-Frame (0x38) that follows it. Returns false when the file has no such event. */
static bool find_frame_events(const uint8_t *d, size_t n, int32_t want, size_t *frame_start, size_t *post) {
    if (n < 17 || d[15] != 0x35) return false;
    uint16_t size[256] = {0};
    size_t tab = d[16];
    for (size_t i = 0; i + 2 < tab && 17 + i + 2 < n; i += 3) size[d[17 + i]] = (uint16_t)(d[18 + i] << 8 | d[19 + i]);
    size_t raw_end = 15 + ((size_t)d[11] << 24 | (size_t)d[12] << 16 | (size_t)d[13] << 8 | d[14]);
    *frame_start = *post = 0;
    for (size_t o = 16 + tab; o < raw_end && o < n; o += 1u + size[d[o]]) {
        if (d[o] != 0x35 && !size[d[o]]) return false;
        if (d[o] == 0x3A && o + 5 <= n && (int32_t)((uint32_t)d[o + 1] << 24 | (uint32_t)d[o + 2] << 16 | (uint32_t)d[o + 3] << 8 | d[o + 4]) == want) *frame_start = o;
        if (*frame_start && d[o] == 0x38) {
            *post = o;
            return true;
        }
    }
    return false;
}

/* A replay damaged in the middle (a run of zero bytes in place of events, written to a temp
 * file) keeps the frames before the damage, identical to the intact file's, with a warning
 * naming the file and the offset; the metadata after the raw element still reads. */
TEST(damaged_zero_run_keeps_frames_before) {
    const char *rel = have_replays() ? "exphil/Game_20260715T195318.slp" : "synth:0";
    size_t n;
    uint8_t *d = slurp(rel, &n);
    cphil_replay *orig = NULL;
    CHECK(cphil_slp_read_mem(d, n, rel, &orig) == CPHIL_OK && orig && orig->n_frames > 200);
    if (!orig) return;
    int32_t F = orig->first_frame + (int32_t)(orig->n_frames / 2);
    size_t fs = 0, post = 0;
    CHECK_MSG(find_frame_events(d, n, F, &fs, &post), "%s: no Frame Start / Post-Frame for frame %d", rel, (int)F);
    uint8_t *c = cphil_alloc(n);
    char path[512];
    snprintf(path, sizeof path, "%s/damaged_zero_run.slp", harness_tmpdir());
    /* case 0: zeros from the Frame Start of F (an event boundary): frames up to F-1 kept;
     * case 1: zeros from inside F's Post-Frame, after its frame number: F is dropped too */
    for (int k = 0; k < 2; k++) {
        size_t at = k == 0 ? fs : post + 9, len = 3000;
        memcpy(c, d, n);
        memset(c + at, 0, len);
        FILE *fp = fopen(path, "wb");
        CHECK(fp && fwrite(c, 1, n, fp) == n);
        if (fp) fclose(fp);
        cphil_replay *r = NULL;
        cphil_status st = cphil_slp_read_file(path, &r);
        CHECK_MSG(st == CPHIL_OK && r, "case %d: %s", k, cphil_status_name(st));
        if (!r) continue;
        /* the first undeclared byte: at the boundary for case 0; for case 1 the first event
         * boundary inside the zeros, where 0x00 is read as a code */
        CHECK(r->damaged && r->damaged_at >= at && r->damaged_at < at + len);
        if (k == 0) CHECK(r->damaged_at == at);
        char want[64];
        snprintf(want, sizeof want, "byte %llu", (unsigned long long)r->damaged_at);
        CHECK_MSG(strstr(r->warning, path) && strstr(r->warning, want), "warning: %s", r->warning);
        CHECK_MSG(r->last_frame == F - 1 && r->first_frame == orig->first_frame, "case %d: last frame %d, want %d", k,
                  (int)r->last_frame, (int)(F - 1));
        CHECK(r->meta.present && r->meta.last_frame == orig->meta.last_frame);
        CHECK(!r->truncated);
        cphil_frame a, b;
        for (uint32_t i = 0; i < r->n_frames && i < orig->n_frames; i++) {
            cphil_replay_get_frame(r, i, &a);
            cphil_replay_get_frame(orig, i, &b);
            uint64_t ha = frame_hash(&a), hb = frame_hash(&b);
            if (ha != hb) {
                CHECK_MSG(ha == hb, "case %d: row %u differs from the intact file", k, i);
                break;
            }
        }
        cphil_replay_free(r);
    }
    /* zeros up to the end of the file (the metadata lost too): still the frames before */
    memcpy(c, d, n);
    memset(c + fs, 0, n - fs);
    cphil_replay *r = NULL;
    CHECK(cphil_slp_read_mem(c, n, rel, &r) == CPHIL_OK && r);
    if (r) {
        CHECK(r->damaged && r->last_frame == F - 1 && !r->meta.present && strstr(r->warning, "metadata unreadable"));
        cphil_replay_free(r);
    }
    cphil_free(c);
    cphil_free(d);
    cphil_replay_free(orig);
}

/* A pre-1.6.0 bare stream (20 bytes) whose Post-Frame is declared with the 6-byte minimum: the
 * Sheik/Zelda fix needs byte 7 of the frame -123 Post-Frame and must not read it when the event
 * is shorter. The bytes sit at the end of an exact heap block so ASan sees any over-read. */
TEST(damaged_short_post_frame_sheik_fix) {
    static const uint8_t bytes[20] = {0x35, 7, 0x36, 0x00, 0x04, 0x38, 0x00, 0x06, /* payloads */
                                      0x36, 0, 1, 0, 0,                            /* 0.1.0 */
                                      0x38, 0xFF, 0xFF, 0xFF, 0x85, 0, 0};         /* frame -123 */
    uint8_t *d = malloc(sizeof bytes);
    CHECK(d);
    memcpy(d, bytes, sizeof bytes);
    cphil_replay *r = NULL;
    CHECK(read_bytes(d, sizeof bytes, &r) == CPHIL_OK);
    CHECK(r && r->has_game_start && r->n_frames == 1 && r->game.players[0].character == 0);
    cphil_replay_free(r);
    free(d);
}

TEST(damaged_files_empty_dir_missing) {
    const char *dir = harness_tmpdir();
    char path[512];
    cphil_replay *r = NULL;
    snprintf(path, sizeof path, "%s/empty.slp", dir);
    FILE *f = fopen(path, "wb");
    CHECK(f);
    fclose(f);
    CHECK(cphil_slp_read_file(path, &r) == CPHIL_E_FORMAT && !r);
    CHECK(strstr(cphil_last_error(), "empty.slp") && strstr(cphil_last_error(), "empty file"));
    snprintf(path, sizeof path, "%s/text.slp", dir);
    f = fopen(path, "wb");
    fputs("{\"not\": \"a replay\"}\n", f);
    fclose(f);
    CHECK(cphil_slp_read_file(path, &r) == CPHIL_E_FORMAT && !r);
    CHECK(strstr(cphil_last_error(), "text.slp") && strstr(cphil_last_error(), "byte 1"));
    CHECK(cphil_slp_read_file(dir, &r) == CPHIL_E_IO && !r);
    CHECK(strstr(cphil_last_error(), "directory"));
    snprintf(path, sizeof path, "%s/does-not-exist.slp", dir);
    CHECK(cphil_slp_read_file(path, &r) == CPHIL_E_IO && !r);
    CHECK(strstr(cphil_last_error(), "does-not-exist.slp"));
}

/* Every allocation failure while reading returns CPHIL_E_NOMEM and leaks nothing (ASan checks
 * the leaks in the sanitizer build). */
static int alloc_budget;
static void *budget_alloc(size_t size, size_t align, void *user) {
    (void)user;
    if (alloc_budget-- <= 0) return NULL;
    void *p = NULL;
    return posix_memalign(&p, align, size ? size : 1) ? NULL : p;
}
static void budget_free(void *p, void *user) { (void)user; free(p); }

TEST(allocation_failures_are_clean) {
    size_t n;
    uint8_t *d = slurp(have_replays() ? "slippi-js/consistencyTest/NessVFox-Absorb.slp" : "synth:2", &n);
    cphil_allocator a = {budget_alloc, budget_free, NULL};
    int ok_at = -1;
    for (int k = 0; k < 64 && ok_at < 0; k++) {
        alloc_budget = k;
        cphil_set_allocator(&a);
        cphil_replay *r = NULL;
        cphil_status st = cphil_slp_read_mem(d, n, "NessVFox", &r);
        cphil_set_allocator(NULL);
        if (st == CPHIL_OK) ok_at = k;
        else CHECK_MSG(st == CPHIL_E_NOMEM && !r, "budget %d: %s", k, cphil_last_error());
        cphil_replay_free(r);
    }
    CHECK(ok_at > 3);
    cphil_free(d);
}

/* Storage is not zeroed on allocation: reading with allocations poisoned by two different
 * patterns must give identical tables (no column row is left unwritten), and a replay reused
 * for other files equals fresh reads. */
static uint8_t poison;
static void *poison_alloc(size_t size, size_t align, void *user) {
    (void)user;
    void *p = NULL;
    if (posix_memalign(&p, align, size ? size : 1)) return NULL;
    memset(p, poison, size);
    return p;
}

TEST(table_fully_written_and_reuse) {
    static const char *const real_files[] = {"slippi-js/consistencyTest/PichuVSelf-All-22.slp", /* Nana dies */
                                             "slippi-js/doubles.slp",                           /* eliminated */
                                             "slippi-js/consistencyTest/NessVFox-Absorb.slp",   /* rollback */
                                             "slippi-js/nametags.slp", "slippi-js/FodPlatforms.slp"};
    const char *const *files = have_replays() ? real_files : synth_files;
    size_t n_files = have_replays() ? CPHIL_ARRAY_LEN(real_files) : CPHIL_ARRAY_LEN(synth_files);
    cphil_allocator a = {poison_alloc, budget_free, NULL};
    cphil_replay *reused = NULL;
    for (size_t i = 0; i < n_files; i++) {
        size_t n;
        uint8_t *d = slurp(files[i], &n);
        cphil_replay *x = NULL, *y = NULL;
        cphil_set_allocator(&a);
        poison = 0xA5;
        CHECK(cphil_slp_read_mem(d, n, files[i], &x) == CPHIL_OK);
        poison = 0x5A;
        CHECK(cphil_slp_read_mem(d, n, files[i], &y) == CPHIL_OK);
        cphil_set_allocator(NULL);
        const char *why = replay_diff(x, y);
        CHECK_MSG(!why, "%s: %s depends on uninitialized memory", files[i], why);
        CHECK(cphil_slp_read_mem_reuse(d, n, files[i], &reused) == CPHIL_OK && reused);
        why = replay_diff(x, reused);
        CHECK_MSG(!why, "%s: reused replay differs in %s", files[i], why);
        cphil_replay_free(x);
        cphil_replay_free(y);
        cphil_free(d);
    }
    cphil_replay_free(reused);
}

int main(void) {
    RUN(manifest_every_column);
    RUN(expected_J1_J4_J23_sheik_fix_settings);
    RUN(expected_J5_J13_J56_J69_test_slp);
    RUN(expected_J15_incomplete_raw_length_zero);
    RUN(expected_J16_J18_nametags_shift_jis);
    RUN(expected_J20_J21_J22_console_pal_controller_fixes);
    RUN(expected_J25_gecko_list_reassembled);
    RUN(expected_J28_J31_match_info);
    RUN(expected_J41_J42_doubles_eliminated_port);
    RUN(expected_J49_J94_not_stadium);
    RUN(expected_J51_item_owner_range);
    RUN(expected_J57_J64_J70_J71_placements_lras_teams);
    RUN(expected_X1_fox_multishine_characters);
    RUN(expected_J27_rollback_counts);
    RUN(expected_J47_J48_home_run_distance);
    RUN(expected_J50_item_spawn_ids_in_order);
    RUN(expected_J73_J74_stage_events);
    RUN(expected_J75_J81_l_cancels);
    RUN(expected_J93_targets_broken);
    RUN(expected_J26_realtime_progressive);
    RUN(parity_byte_at_a_time);
    RUN(parity_random_pieces_all_files);
    RUN(stream_reports_each_final_frame_once);
    RUN(damaged_truncated_at_many_points);
    RUN(expected_X2_truncated_by_5137_bytes);
    RUN(damaged_flipped_bytes);
    RUN(damaged_synthetic_absurd_sizes);
    RUN(damaged_zero_run_keeps_frames_before);
    RUN(damaged_short_post_frame_sheik_fix);
    RUN(damaged_files_empty_dir_missing);
    RUN(allocation_failures_are_clean);
    RUN(table_fully_written_and_reuse);
    return harness_done();
}
